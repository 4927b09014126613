"""`python -m babylm publish`: milestones as git branches, read back by a clone and by eval_export; pushed
to git remotes without showing their passwords; uploaded to the hub through huggingface_hub (against
the local stand-in of the hub's HTTP API in tests/hub_server.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from babylm import checkpoint
from babylm.errors import InputError
from babylm.integrity import write_checksums
from babylm.publish import PublishConfig, publish, revisions
from eval_export.loading import load_model
from tests.conftest import run_cli
from tests.hub_server import GITATTRIBUTES, HubServer
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
    out = publish(PublishConfig(run=str(run_dir)))
    repo, done = out.repo, out.branches
    assert repo == run_dir / "myrun.git" and out.hub == []
    assert [p.branch for p in done] == ["chck_1M", "chck_2M", "chck_3M", "chck_10M", "main"] and all(p.changed for p in done)
    # main's history is the milestones in word order, each commit naming its progress
    log = _git("--git-dir", str(repo), "log", "--format=%s", "main").splitlines()
    assert log == ["main: 11,000 words seen at step 11 (final/)", "chck_10M: 10,000 words seen at step 10 (chck_10M/)",
                   "chck_3M: 3,000 words seen at step 3 (chck_3M/)", "chck_2M: 2,000 words seen at step 2 (chck_2M/)",
                   "chck_1M: 1,000 words seen at step 1 (chck_1M/)"]
    files = set(_git("--git-dir", str(repo), "ls-tree", "--name-only", "main").splitlines())
    assert files == {p.name for p in (run_dir / "final").iterdir()} - {checkpoint.STATE_FILE} | {"README.md"}
    assert "model.safetensors" in files and "tokenizer.json" in files and not (run_dir / "final" / "README.md").exists()
    # every branch carries a model card the 2026 leaderboard accepts: licence metadata, 200+ characters of text,
    # the words seen by that revision and the run's milestones
    card = _git("--git-dir", str(repo), "show", "chck_2M:README.md")
    assert card.startswith("---\nlicense: apache-2.0\n") and "Words seen: 2,000 at step 2." in card
    assert "| chck_1M | 1,000 |" in card and "| chck_10M | 10,000 |" in card and "`chck_2M`" in card

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
    again = publish(PublishConfig(run=str(run_dir))).branches
    assert [p.commit for p in again] == [p.commit for p in done] and not any(p.changed for p in again)
    fresh = publish(PublishConfig(run=str(run_dir), repo=str(tmp_path / "other.git"))).branches
    assert [p.commit for p in fresh] == [p.commit for p in done]


def test_published_run_config_holds_no_local_absolute_path(run, tmp_path):
    """Every revision goes to the hub: the options' absolute paths (a corpus under the user's home) are
    reduced to their last part there; the run's own copy keeps them, since --resume compares them."""
    run_dir, _ = run
    own = run_dir / "chck_2M" / "run_config.json"
    home = tmp_path / "home" / "ana"
    meta = {"command": "train", "progress": {"step": 2, "words_seen": 2000},
            "config": {"corpus": str(home / "babylm_10M") + "/", "tokenizer": "outputs/tokenizer", "lr": 0.001,
                       "files": [str(home / "a.train"), "b.train"], "init_from": None}}
    own.write_text(json.dumps(meta))
    write_checksums(own.parent)  # as if training had written it: publish refuses files changed after the record
    repo = publish(PublishConfig(run=str(run_dir), model_card=False)).repo
    published = json.loads(_git("--git-dir", str(repo), "show", "chck_2M:run_config.json"))
    assert published["config"] == {"corpus": "<local>/babylm_10M", "tokenizer": "outputs/tokenizer", "lr": 0.001,
                                   "files": ["<local>/a.train", "b.train"], "init_from": None}
    assert published["progress"] == meta["progress"] and str(tmp_path) not in json.dumps(published)
    assert json.loads(own.read_text()) == meta  # the run folder is not written to
    # a revision without absolute paths is published byte for byte
    assert _git("--git-dir", str(repo), "show", "chck_3M:run_config.json") == \
        (run_dir / "chck_3M" / "run_config.json").read_text().rstrip("\n")


def test_changed_milestone_rewrites_it_and_later_branches_and_push_needs_force(run, tmp_path):
    run_dir, _ = run
    remote = tmp_path / "remote.git"
    _git("init", "--quiet", "--bare", str(remote))
    out = publish(PublishConfig(run=str(run_dir), remote=str(remote)))
    repo, first = out.repo, out.branches

    def heads(r):
        return dict(line.split()[::-1] for line in _git("--git-dir", str(r), "show-ref", "--heads").splitlines())

    assert heads(remote) == heads(repo) == {f"refs/heads/{p.branch}": p.commit for p in first}

    tok = make_tokenizer(tmp_path / "tok2")
    new_logits = _save(run_dir, "chck_2M", 22, tok, 2000)  # chck_2M re-saved with other weights
    with pytest.raises(InputError, match=r"git push to .*remote\.git failed .*\[rejected\] chck_2M -> chck_2M "
                                         r"\(non-fast-forward\).*--force true replaces them"):  # history changed
        publish(PublishConfig(run=str(run_dir), remote=str(remote)))
    local = heads(repo)  # the local branches were written before the push was refused
    changed = {ref.rsplit("/", 1)[1] for ref, commit in local.items() if heads(remote)[ref] != commit}
    assert changed == {"chck_2M", "chck_3M", "chck_10M", "main"}  # chck_1M kept its commit
    second = publish(PublishConfig(run=str(run_dir), remote=str(remote), force=True)).branches
    assert not any(p.changed for p in second) and heads(remote) == local
    with torch.no_grad():
        assert torch.equal(load_model(str(remote), "chck_2M").model(IDS).logits, new_logits)


def test_cli_bad_runs_fail_in_one_line_and_write_nothing(run, tmp_path):
    run_dir, _ = run
    res = run_cli("babylm", "publish", "--run", tmp_path / "nope")
    assert res.returncode == 1 and res.stderr.strip().count("\n") == 0 and "no such folder" in res.stderr
    weights = (run_dir / "chck_3M" / "model.safetensors").read_bytes()
    (run_dir / "chck_3M" / "model.safetensors").unlink()  # a broken milestone: checked before anything is written
    res = run_cli("babylm", "publish", "--run", run_dir)
    assert res.returncode == 1 and "chck_3M: not a saved model" in res.stderr, res.stderr
    assert not (run_dir / "myrun.git").exists()
    (run_dir / "chck_3M" / "model.safetensors").write_bytes(weights)  # back to a folder that passes the check
    res = run_cli("babylm", "publish", "--run", run_dir, "--repo", run_dir / "final")  # not a bare repository
    assert res.returncode == 1 and "is not a bare git repository" in res.stderr, res.stderr


# ---------------------------------------------------------------- credentials in a --remote URL


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def dumb_http_remote(tmp_path):
    """A bare repository served as static files on 127.0.0.1: git falls back to its dumb-HTTP push,
    which fails (no WebDAV here) with messages that repeat the URL it was given."""
    served = tmp_path / "served"
    _git("init", "--quiet", "--bare", str(served / "x.git"))
    _git("--git-dir", str(served / "x.git"), "update-server-info")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}/x.git"
    server.shutdown()
    server.server_close()


def test_redact_hides_url_passwords_and_tokens():
    from babylm.publish import redact

    assert redact("https://me:hf_abc@host/x.git") == "https://me:***@host/x.git"
    assert redact("fatal: 'http://hf_abc@host:8080/x' failed") == "fatal: 'http://***@host:8080/x' failed"
    assert redact("https://me:p@ss@host/x") == "https://me:***@host/x"  # an unescaped '@' in the password
    assert redact("ssh://git@host/x and git@host:a/b") == "ssh://git@host/x and git@host:a/b"  # no secret there
    assert redact("see https://huggingface.co/x", "hf_abc") == "see https://huggingface.co/x"
    assert redact("header Bearer hf_abc", "hf_abc") == "header Bearer ***"


def test_remote_passwords_are_never_printed_even_when_git_repeats_them(run, tmp_path, dumb_http_remote):
    run_dir, _ = run
    secret = "remote-SECRET-42"
    repo = publish(PublishConfig(run=str(run_dir))).repo
    # git itself repeats the URL with its password in these messages: what the kit must not pass on
    for url in (f"http://me:{secret}@{dumb_http_remote}", f"http://{secret}@{dumb_http_remote}"):
        raw = subprocess.run(["git", "--git-dir", str(repo), "push", "--quiet", url, "main"],
                             capture_output=True, text=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
        assert raw.returncode != 0 and secret in raw.stderr, raw.stderr
        res = run_cli("babylm", "publish", "--run", run_dir, "--remote", url)
        assert res.returncode == 1 and res.stderr.strip().count("\n") == 0, res.stderr
        assert secret not in res.stdout + res.stderr
        assert "git push to http://" in res.stderr and f"***@{dumb_http_remote}" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
    # a push that works: the summary names the remote without its password
    remote = tmp_path / "remote.git"
    _git("init", "--quiet", "--bare", str(remote))
    res = run_cli("babylm", "publish", "--run", run_dir, "--remote", f"file://me:{secret}@localhost{remote}")
    assert res.returncode == 0, res.stderr
    assert f"(pushed to file://me:***@localhost{remote})" in res.stdout and secret not in res.stdout + res.stderr
    assert "main" in _git("--git-dir", str(remote), "branch", "--list").split()


# ---------------------------------------------------------------- the hub, through huggingface_hub

TOKEN = "hf_kitTestToken0123456789"
HUB_REPO = "kid/babylm-demo"
ORDER = ["chck_1M", "chck_2M", "chck_3M", "chck_10M", "main"]


def _hub_env(endpoint: str, **extra: str) -> dict[str, str]:
    """The real client, online, against the stand-in at ``endpoint``.

    HF_ENDPOINT points there too: huggingface_hub makes a few calls of its own to its default endpoint
    (a registry fetched for its user-agent header: utils/_detect_agent.py), which must stay on this
    machine; HF_HUB_DISABLE_TELEMETRY=1 turns that fetch off. HF_HUB_DISABLE_XET=1: with hf_xet
    installed the library sends large files to the hub's xet storage servers, whose protocol the
    stand-in does not speak; with it set, the library uses git LFS (preupload says lfs -> LFS batch
    -> PUT -> verify), which the stand-in serves."""
    env = {"HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_TOKEN": TOKEN,
           "HF_ENDPOINT": endpoint}
    return {**env, **extra}


def _publish_to(endpoint: str, run_dir: Path, *args: str, **env: str):
    return run_cli("babylm", "publish", "--run", run_dir, "--hub_repo", HUB_REPO, "--hub_endpoint", endpoint, *args,
                   env=_hub_env(endpoint, **env))


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != checkpoint.STATE_FILE}


def _root(hub: HubServer, sha: str) -> str:
    while hub.commits[sha].parent is not None:
        sha = hub.commits[sha].parent
    return sha


def test_hub_gets_every_branch_byte_for_byte_in_order_and_a_rerun_uploads_nothing(run):
    run_dir, _ = run
    folders = dict(revisions(run_dir))
    assert (run_dir / "final" / checkpoint.STATE_FILE).is_file()  # present, so leaving it out is tested
    with HubServer(TOKEN) as hub:
        # the endpoint from HF_ENDPOINT, as huggingface_hub reads it, instead of --hub_endpoint
        res = run_cli("babylm", "publish", "--run", run_dir, "--hub_repo", HUB_REPO, "--private", "true",
                      env=_hub_env(hub.url))
        assert res.returncode == 0, res.stderr
        assert not hub.unhandled and hub.repos[HUB_REPO].private
        heads = hub.repos[HUB_REPO].branches
        assert set(heads) == set(ORDER)
        # milestones created in word order, each from the commit just uploaded to the one before
        assert [(b, s) for _, b, s in hub.created_branches] == [
            ("chck_1M", _root(hub, heads["main"])), ("chck_2M", heads["chck_1M"]), ("chck_3M", heads["chck_2M"]),
            ("chck_10M", heads["chck_3M"])]
        # one commit per branch, main last; each carries only the files its folder changed
        assert [b for _, b, _, _ in hub.received_commits] == ORDER
        paths = {b: sorted(p) for _, b, _, p in hub.received_commits}
        assert paths["chck_2M"] == sorted(["README.md"] + [name for name, data in _folder_files(folders["chck_2M"]).items()
                                                           if _folder_files(folders["chck_1M"])[name] != data])
        assert "model.safetensors" in paths["chck_2M"] and "tokenizer.json" not in paths["chck_2M"]
        assert hub.history(HUB_REPO, "chck_3M")[0] == "chck_3M: 3,000 words seen at step 3 (chck_3M/)"
        # each branch holds exactly its folder's files, byte for byte, and the model card (as in the local
        # branches), beside the hub's own .gitattributes
        local = publish(PublishConfig(run=str(run_dir))).repo
        for branch in ORDER:
            files = hub.files(HUB_REPO, branch)
            assert files.pop(".gitattributes") == GITATTRIBUTES
            assert files.pop("README.md").decode() == _git("--git-dir", str(local), "show", f"{branch}:README.md") + "\n"
            # the checksums of what the branch holds: the card in, the training state out
            record = json.loads(files.pop("checksums.json"))["files"]
            assert "README.md" in record and checkpoint.STATE_FILE not in record
            assert files.pop("checksums.json", None) is None and {k: v for k, v in _folder_files(folders[branch]).items()
                                                                   if k != "checksums.json"} == files, branch
        # the weights went through large-file storage, each distinct file once
        weights = {hashlib.sha256((folders[b] / "model.safetensors").read_bytes()).hexdigest() for b in ORDER}
        assert sorted(hub.lfs_puts) == sorted(weights) and len(weights) == 5
        # the token: a bearer header on every hub call, never on the storage PUTs, never printed
        api_calls = [r for r in hub.requests if not r.path.startswith("/lfs-storage/")]  # storage: pre-signed
        assert len(api_calls) > 10 and {r.authorization for r in api_calls} == {f"Bearer {TOKEN}"}
        assert {r.authorization for r in hub.requests if r.path.startswith("/lfs-storage/")} == {None}
        assert TOKEN not in res.stdout + res.stderr
        lines = res.stdout.splitlines()
        assert f"hub: {hub.url}/{HUB_REPO}" in lines
        assert [line.split()[0] for line in lines if line.endswith("  uploaded")] == ORDER
        assert f"from the hub: python -m eval_export score --model {HUB_REPO} --revision chck_1M" in lines

        # again: nothing sent, nothing committed, every hub branch reported unchanged
        commits, puts, created = len(hub.received_commits), len(hub.lfs_puts), len(hub.created_branches)
        before = len(hub.requests)
        res = _publish_to(hub.url, run_dir)
        assert res.returncode == 0, res.stderr
        assert (len(hub.received_commits), len(hub.lfs_puts), len(hub.created_branches)) == (commits, puts, created)
        # what it still asks: create (exists: 409), whether the card's metadata is valid, which files the hub has
        # (preupload), whether it holds the weights
        asked = {re.sub(r"/(chck_\d+M|main)$", "", r.path) for r in hub.requests[before:] if r.method != "GET"}
        assert asked == {"/api/repos/create", "/api/validate-yaml", f"/api/models/{HUB_REPO}/preupload",
                         f"/{HUB_REPO}.git/info/lfs/objects/batch"}, asked
        hub_lines = res.stdout.split(f"hub: {hub.url}/{HUB_REPO}\n")[1].splitlines()
        assert [line.split()[0] for line in hub_lines if line.endswith("  unchanged")] == ORDER
        assert "No files have been modified" not in res.stderr  # the library's warning: said as 'unchanged'

        # a stray file on the hub's main is removed by the next publish; a model card written there is kept
        # when publish writes none
        hub.commit(HUB_REPO, "main", {"README.md": b"# card\n", "stray.bin": b"old weights"}, "edited on the hub")
        res = _publish_to(hub.url, run_dir, "--model_card", "false")
        assert res.returncode == 0, res.stderr
        # (each branch's checksums.json no longer lists a card: the one file that changes on the others)
        assert [(b, sorted(p)) for _, b, _, p in hub.received_commits[commits:]] == \
            [(b, ["checksums.json"]) for b in ORDER[:-1]] + [("main", ["checksums.json", "stray.bin"])]
        files = hub.files(HUB_REPO, "main")
        assert files.pop("README.md") == b"# card\n" and files.pop(".gitattributes") == GITATTRIBUTES
        assert "README.md" not in json.loads(files.pop("checksums.json"))["files"]
        assert files == {k: v for k, v in _folder_files(folders["main"]).items() if k != "checksums.json"}
        assert not hub.unhandled


def _one_line_failure(res, *needles: str, secret: str = TOKEN) -> None:
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert res.stderr.strip().count("\n") == 0 and "Traceback" not in res.stderr, res.stderr
    assert secret not in res.stdout + res.stderr
    for needle in needles:
        assert needle in res.stderr, (needle, res.stderr)


def test_hub_failures_are_one_line_naming_the_repo_and_what_to_do(run, tmp_path):
    run_dir, _ = run
    with HubServer(TOKEN) as hub:
        # no token anywhere (HF_HOME is the tests' empty one): stopped before anything is written
        res = _publish_to(hub.url, run_dir, HF_TOKEN="")
        _one_line_failure(res, f"--hub_repo {HUB_REPO}: no hub token", "HF_TOKEN", "hf auth login")
        assert not (run_dir / "myrun.git").exists() and not hub.requests
        res = _publish_to(hub.url, run_dir, HF_HUB_OFFLINE="1")
        _one_line_failure(res, "HF_HUB_OFFLINE is set")
        res = run_cli("babylm", "publish", "--run", run_dir, "--hub_repo", "https://huggingface.co/kid/x")
        _one_line_failure(res, "namespace/name")

        # a token the hub refuses: 401, the wrong token never printed
        wrong = "hf_wrongToken987"
        res = _publish_to(hub.url, run_dir, HF_TOKEN=wrong)
        _one_line_failure(res, f"hub {hub.url}/{HUB_REPO}, creating the repository: the token was refused (401",
                          "HF_TOKEN", secret=wrong)
        assert {r.authorization for r in hub.requests} == {f"Bearer {wrong}"} and not hub.repos
        # a repository that must exist but does not: 404
        res = _publish_to(hub.url, run_dir, "--create", "false")
        _one_line_failure(res, f"{HUB_REPO}, reading its branches: no such repository (404", "--create true")
        assert not hub.repos
    with HubServer(TOKEN, read_only=True) as hub:  # a read token on an existing repository: 403
        hub.add_repo(HUB_REPO)
        res = _publish_to(hub.url, run_dir)
        _one_line_failure(res, f"{HUB_REPO}, branch chck_1M: the token may not write to {HUB_REPO} (403",
                          "write access to kid")
        assert set(hub.repos[HUB_REPO].branches) == {"main"} and not hub.unhandled
    # nothing listening: a network error names the repository and says to run again
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    res = _publish_to(closed, run_dir)
    _one_line_failure(res, f"hub {closed}/{HUB_REPO}, creating the repository: network error", "run the command again")
    with HubServer(TOKEN) as hub:
        # the library's default for large files: the xet storage, which the stand-in does not serve
        res = _publish_to(hub.url, run_dir, HF_HUB_DISABLE_XET="0")
        _one_line_failure(res, f"{HUB_REPO}, branch chck_1M: network error, on the way to the hub's xet storage",
                          "HF_HUB_DISABLE_XET=1")
        assert hub.unhandled == [f"GET /api/models/{HUB_REPO}/xet-write-token/chck_1M"]
        assert not hub.received_commits
