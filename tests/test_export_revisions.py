"""Several revisions in one `eval_export score` process: `--revision all` (milestones in words-seen
order, then main) and comma lists write exactly what one call per revision writes, load each
checkpoint once and tokenise each task once per tokenizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from babylm import checkpoint
from babylm.config import build
from babylm.errors import InputError, UsageError
from eval_export import commands, loading, zero_shot
from tests import export_models as em
from tests.conftest import run_cli
from tests.train_fixtures import make_tokenizer

TASKS = "blimp_supplement,entity_tracking,reading"
REVISIONS = ["chck_1M", "chck_2M", "chck_10M", "main"]


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


@pytest.fixture(scope="module")
def run(shared, tmp_path_factory):
    """A run folder: three milestones sharing one tokenizer (BOS added), the final model in final/ with
    another tokenizer (no BOS), so that two tokenizers are in play."""
    lines = em.corpus_lines(shared)
    milestone_tok, final_tok = em.byte_bpe(lines, bos=True), em.byte_bpe(lines, bos=False, vocab_size=380)
    run = tmp_path_factory.mktemp("runs") / "tinyrun"
    for seed, (name, tok) in enumerate([("chck_10M", milestone_tok), ("chck_2M", milestone_tok),
                                        ("chck_1M", milestone_tok), ("final", final_tok)]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=1024,
                                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).eval()
        em.save(model, tok, run / name)
    return run


def _score(run, shared, results, revision: str, **extra) -> None:
    flags = {"model": str(run), "revision": revision, "eval_data": str(shared / "data" / "eval"),
             "results": str(results), "tasks": TASKS, "eval_set": "fast", "limit": 2, "progress": False, **extra}
    commands.score(build(commands.ScoreConfig, flags, "score"))


def _outputs(results, revision: str) -> dict:
    """Every file a revision's scoring wrote, by path below the revision folder."""
    folder = results / "tinyrun" / revision
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}


def test_revision_order_and_lists(run, tmp_path):
    assert loading.resolve_revisions(str(run), "all") == REVISIONS
    assert loading.resolve_revisions(str(run), " chck_2M, main,chck_2M ") == ["chck_2M", "main"]
    assert loading.milestone_order(["main", "chck_100M", "chck_20M", "chck_3M"]) == ["chck_3M", "chck_20M", "chck_100M", "main"]
    with pytest.raises(UsageError, match="give a comma list"):
        loading.resolve_revisions("some-org/some-model", "all")
    with pytest.raises(InputError, match="no chck_\\* milestone"):
        loading.resolve_revisions(str(tmp_path), "all")


def test_revisions_of_a_published_repository(tmp_path):
    from babylm.publish import PublishConfig, publish

    tok = make_tokenizer(tmp_path / "tok")
    src = tmp_path / "pub"
    for seed, name in ((1, "chck_10M"), (2, "chck_1M"), (3, "final")):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_embd=32, n_layer=1, n_head=2, n_positions=16)).eval()
        checkpoint.save_model(src / name, model, tok, {"run_config.json": {"progress": {"step": seed, "words_seen": seed}}})
    repo = publish(PublishConfig(run=str(src))).repo
    assert loading.resolve_revisions(str(repo), "all") == ["chck_1M", "chck_10M", "main"]


def test_all_revisions_in_one_process_equal_one_call_each(run, shared, tmp_path, monkeypatch, capsys):
    calls = []
    real = zero_shot.prepare

    def counted(tokenizer, backend, data, opts):
        calls.append((len(tokenizer), data.name))
        return real(tokenizer, backend, data, opts)

    monkeypatch.setattr(zero_shot, "prepare", counted)
    _score(run, shared, tmp_path / "together", "all")
    printed = capsys.readouterr().out
    # each task tokenised once per tokenizer: the three milestones share one, main has its own
    assert sorted(calls) == sorted((n, t) for n in {len(loading.load_model(str(run), r).tokenizer) for r in ("chck_1M", "main")}
                                   for t in TASKS.split(","))
    summaries = [line.split("summary: ")[1] for line in printed.splitlines() if line.startswith("summary: ")]
    assert [s.split("/tinyrun/")[1].split("/")[0] for s in summaries] == REVISIONS  # words-seen order, then main
    assert "tokens " in printed  # the causal path says how many tokens it ran on
    calls.clear()
    for revision in REVISIONS:
        _score(run, shared, tmp_path / "apart", revision)
    assert len(calls) == 4 * len(TASKS.split(","))
    for revision in REVISIONS:
        together, apart = _outputs(tmp_path / "together", revision), _outputs(tmp_path / "apart", revision)
        assert list(together) == list(apart) and any(k.endswith("predictions.json") for k in together)
        for name, path in together.items():
            if name.endswith("predictions.json"):
                assert path.read_bytes() == apart[name].read_bytes(), f"{revision}/{name}"
            elif name.endswith("scores.json"):
                a, b = json.loads(path.read_text()), json.loads(apart[name].read_text())
                np.testing.assert_allclose([s for it in a for s in it["scores"]], [s for it in b for s in it["scores"]],
                                           rtol=0, atol=1e-4)
            elif name.endswith("summary.json") and "zero_shot" in name:
                a, b = json.loads(path.read_text()), json.loads(apart[name].read_text())
                a["run"].pop("results"), b["run"].pop("results")  # the two result roots differ by design
                assert a == b and a["run"]["revision"] == revision
    # what exists is skipped, revision by revision
    monkeypatch.setattr(zero_shot, "prepare", real)
    _score(run, shared, tmp_path / "together", "all")
    assert capsys.readouterr().out.count("exists (--overwrite true to redo)") == 4 * len(TASKS.split(","))


def test_cli_comma_list_and_the_plain_path(run, shared, tmp_path):
    """The command line with a comma list and --prefix_sharing false writes the same predictions as
    the shared-prefix default, and only the revisions listed."""
    _score(run, shared, tmp_path / "shared", "chck_1M,main")
    res = run_cli("eval_export", "score", "--model", run, "--revision", "chck_1M,main", "--eval_data", shared / "data" / "eval",
                  "--results", tmp_path / "plain", "--tasks", TASKS, "--eval_set", "fast", "--limit", "2",
                  "--progress", "false", "--prefix_sharing", "false", env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    for revision in ("chck_1M", "main"):
        shared_files, plain_files = _outputs(tmp_path / "shared", revision), _outputs(tmp_path / "plain", revision)
        preds = [k for k in shared_files if k.endswith("predictions.json")]
        assert len(preds) == len(TASKS.split(","))
        for k in preds:  # same choices; WUG probabilities and reading surprisals within float32 rounding
            a, b = json.loads(shared_files[k].read_text()), json.loads(plain_files[k].read_text())
            assert a.keys() == b.keys()
            for key in a:
                for x, y in zip(a[key]["predictions"], b[key]["predictions"], strict=True):
                    assert x.keys() == y.keys() and x["id"] == y["id"]
                    for field in set(x) - {"id"}:
                        assert x[field] == y[field] if isinstance(x[field], str) else abs(x[field] - y[field]) < 1e-4
    assert not (tmp_path / "plain" / "tinyrun" / "chck_2M").exists()
