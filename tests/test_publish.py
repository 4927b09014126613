"""`python -m babylm publish`: milestones as git branches, read back by a clone and by eval_export."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from babylm import checkpoint
from babylm.errors import InputError
from babylm.publish import PublishConfig, publish
from eval_export.loading import load_model
from tests.conftest import run_cli
from tests.train_fixtures import make_tokenizer

IDS = torch.tensor([[2, 7, 11, 19, 23, 3]])  # (1, 6)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout.strip()


def _model(seed: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=300, n_embd=32, n_layer=1, n_head=2, n_positions=16,
                                      bos_token_id=2, eos_token_id=3)).eval()


def _save(run: Path, name: str, seed: int, tok, words: int) -> torch.Tensor:
    model = _model(seed)
    meta = {"run_config.json": {"progress": {"step": seed, "words_seen": words}}}
    checkpoint.save_model(run / name, model, tok, meta)
    with torch.no_grad():
        return model(IDS).logits


@pytest.fixture()
def run(tmp_path):
    """A run folder as training leaves it: milestones (10M after 3M, to catch text ordering), a
    resume checkpoint and final/ derived from it, whose train_state.pt must not be published."""
    tok = make_tokenizer(tmp_path / "tok")
    run = tmp_path / "myrun"
    logits = {name: _save(run, name, seed, tok, seed * 1000)
              for seed, name in ((1, "chck_1M"), (2, "chck_2M"), (3, "chck_3M"), (10, "chck_10M"), (11, "step_0000011"))}
    (run / "step_0000011" / checkpoint.STATE_FILE).write_bytes(b"optimizer state")
    checkpoint.derive(run / "step_0000011", run / "final", {"run_config.json": {"progress": {"step": 11, "words_seen": 11000}}})
    logits["main"] = logits.pop("step_0000011")
    return run, logits


def test_branches_load_like_the_folders_and_commits_are_reproducible(run, tmp_path):
    run_dir, logits = run
    repo, done = publish(PublishConfig(run=str(run_dir)))
    assert repo == run_dir / "myrun.git"
    assert [p.branch for p in done] == ["chck_1M", "chck_2M", "chck_3M", "chck_10M", "main"] and all(p.changed for p in done)
    # main's history is the milestones in word order, each commit naming its progress
    log = _git("--git-dir", str(repo), "log", "--format=%s", "main").splitlines()
    assert log == ["main: 11,000 words seen at step 11 (final/)", "chck_10M: 10,000 words seen at step 10 (chck_10M/)",
                   "chck_3M: 3,000 words seen at step 3 (chck_3M/)", "chck_2M: 2,000 words seen at step 2 (chck_2M/)",
                   "chck_1M: 1,000 words seen at step 1 (chck_1M/)"]
    files = set(_git("--git-dir", str(repo), "ls-tree", "--name-only", "main").splitlines())
    assert files == {p.name for p in (run_dir / "final").iterdir()} - {checkpoint.STATE_FILE}
    assert "model.safetensors" in files and "tokenizer.json" in files

    # a plain git clone of each branch is a model folder that AutoModel loads with the same logits
    from transformers import AutoModelForCausalLM

    for branch in ("chck_2M", "chck_10M", "main"):
        clone = tmp_path / f"clone_{branch}"
        _git("clone", "--quiet", "--branch", branch, str(repo), str(clone))
        with torch.no_grad():
            out = AutoModelForCausalLM.from_pretrained(clone).eval()(IDS).logits
        assert torch.equal(out, logits[branch]), branch
    # eval_export reads a branch as a revision, names results after the repository
    loaded = load_model(str(repo), "chck_3M")
    assert loaded.name == "myrun" and loaded.revision == "chck_3M"
    with torch.no_grad():
        assert torch.equal(loaded.model(IDS).logits, logits["chck_3M"])
    with pytest.raises(InputError, match="no branch 'chck_4M'; branches: chck_10M, chck_1M, chck_2M, chck_3M, main"):
        load_model(str(repo), "chck_4M")

    # a repository with a lost object: one line naming the revision, no half-loaded model
    broken = tmp_path / "broken.git"
    _git("clone", "--quiet", "--bare", str(repo), str(broken))
    blob = _git("--git-dir", str(broken), "rev-parse", "chck_1M:model.safetensors")
    (broken / "objects" / blob[:2] / blob[2:]).unlink()
    with pytest.raises(InputError, match=r"cannot read revision 'chck_1M' \(error: invalid object .* for 'model\.safetensors'") as err:
        load_model(str(broken), "chck_1M")
    assert "\n" not in str(err.value)

    # same files -> same commits: again in place (nothing rewritten) and in a fresh repository
    _, again = publish(PublishConfig(run=str(run_dir)))
    assert [p.commit for p in again] == [p.commit for p in done] and not any(p.changed for p in again)
    _, fresh = publish(PublishConfig(run=str(run_dir), repo=str(tmp_path / "other.git")))
    assert [p.commit for p in fresh] == [p.commit for p in done]


def test_changed_milestone_rewrites_it_and_later_branches_and_push_needs_force(run, tmp_path):
    run_dir, _ = run
    remote = tmp_path / "remote.git"
    _git("init", "--quiet", "--bare", str(remote))
    repo, first = publish(PublishConfig(run=str(run_dir), remote=str(remote)))
    def heads(r):
        return dict(line.split()[::-1] for line in _git("--git-dir", str(r), "show-ref", "--heads").splitlines())

    assert heads(remote) == heads(repo) == {f"refs/heads/{p.branch}": p.commit for p in first}

    tok = make_tokenizer(tmp_path / "tok2")
    new_logits = _save(run_dir, "chck_2M", 22, tok, 2000)  # chck_2M re-saved with other weights
    with pytest.raises(InputError, match=r"git push to .*remote\.git failed"):  # history changed: not a fast-forward
        publish(PublishConfig(run=str(run_dir), remote=str(remote)))
    local = heads(repo)  # the local branches were written before the push was refused
    changed = {ref.rsplit("/", 1)[1] for ref, commit in local.items() if heads(remote)[ref] != commit}
    assert changed == {"chck_2M", "chck_3M", "chck_10M", "main"}  # chck_1M kept its commit
    _, second = publish(PublishConfig(run=str(run_dir), remote=str(remote), force=True))
    assert not any(p.changed for p in second) and heads(remote) == local
    with torch.no_grad():
        assert torch.equal(load_model(str(remote), "chck_2M").model(IDS).logits, new_logits)


def test_cli_bad_runs_fail_in_one_line_and_write_nothing(run, tmp_path):
    run_dir, _ = run
    res = run_cli("babylm", "publish", "--run", tmp_path / "nope")
    assert res.returncode == 1 and res.stderr.strip().count("\n") == 0 and "no such folder" in res.stderr
    (run_dir / "chck_3M" / "model.safetensors").unlink()  # a broken milestone: checked before anything is written
    res = run_cli("babylm", "publish", "--run", run_dir)
    assert res.returncode == 1 and "chck_3M: not a saved model" in res.stderr, res.stderr
    assert not (run_dir / "myrun.git").exists()
    (run_dir / "chck_3M" / "model.safetensors").write_bytes(b"")  # back to a folder that passes the check
    res = run_cli("babylm", "publish", "--run", run_dir, "--repo", run_dir / "final")  # not a bare repository
    assert res.returncode == 1 and "is not a bare git repository" in res.stderr, res.stderr
