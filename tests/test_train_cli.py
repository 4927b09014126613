"""``python -m babylm train`` end to end: SIGKILL + resume, milestones, test command, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REPO, cli

ENV = {"OMP_NUM_THREADS": "1"}  # tiny models: one thread each avoids oversubscribing the CI cores
# The same in this process, where most runs go (tests.conftest.cli): the kill and SIGTERM tests
# start a process of their own, with ENV, and compare it bitwise with runs made here.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    from babylm.tokenizer import TokenizerConfig, train_tokenizer

    out = tmp_path_factory.mktemp("tok") / "tok"
    train_tokenizer(TokenizerConfig(out_dir=str(out), vocab_size=300))
    return out


def _args(tok_dir, save_dir, name, *extra):
    return ["train", "--tokenizer", tok_dir, "--save_dir", save_dir, "--run_name", name, "--block_size", "32",
            "--batch_size", "8", "--hidden", "32", "--heads", "2", "--device", "cpu", "--progress", "false",
            "--tensorboard", "false", "--val_fraction", "0.01", *map(str, extra)]


def _losses(run_dir: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["train/loss"]) for r in rows if "train/loss" in r]


def _stopped_at(signal_name: str, step: int, *args) -> subprocess.CompletedProcess:
    """``python -m babylm train ...`` sent SIGKILL/SIGTERM right after its metrics record of ``step``."""
    cmd = [sys.executable, "-m", "tests.stop_at", signal_name, str(step), *map(str, args)]
    return subprocess.run(cmd, cwd=REPO, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "gpt-bert"])
def test_sigkill_then_resume_is_bitwise_identical(arch, tok_dir, tmp_path):
    # gpt-bert: every step's objective and mask rate must replay too (a causal step every 4 here)
    hybrid = ("--causal_share", "0.25") if arch == "gpt-bert" else ()
    # A log line every 3 steps and a checkpoint every 8: the checkpoints cut log intervals in two,
    # and the resumed run's first train/loss must still be the mean over the whole interval.
    common = ("--arch", arch, *hybrid, "--words", "2500", "--save_every", "8", "--log_every", "3", "--dropout", "0.1",
              "--eval_every", "15", "--eval_batches", "2", "--milestone_unit_words", "500", "--warmup_steps", "5")
    ref = cli("babylm", *_args(tok_dir, tmp_path, "ref", *common), env=ENV)
    assert ref.returncode == 0, ref.stderr[-3000:]

    # Killed after step 21's record: two resume checkpoints (8, 16) exist, and records past the last one.
    killed = _stopped_at("KILL", 21, *_args(tok_dir, tmp_path, "killed", *common))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert (tmp_path / "killed" / "latest").read_text().strip() == "step_0000016"
    assert max(s for s, _ in _losses(tmp_path / "killed")) == 21
    assert not (tmp_path / "killed" / "final").exists()

    resumed = cli("babylm", *_args(tok_dir, tmp_path, "killed", *common, "--resume", "true"), env=ENV)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    a = load_file(str(tmp_path / "ref" / "final" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "final" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    ref_curve, res_curve = _losses(tmp_path / "ref"), _losses(tmp_path / "killed")
    assert len(ref_curve) > 8 and ref_curve == res_curve  # one record per 3 steps, identical floats (18: 16..18)
    assert json.loads((tmp_path / "killed" / "final" / "run_config.json").read_text())["progress"] == \
        json.loads((tmp_path / "ref" / "final" / "run_config.json").read_text())["progress"]
    names = sorted(p.name for p in (tmp_path / "ref").glob("chck_*"))
    assert names == sorted(p.name for p in (tmp_path / "killed").glob("chck_*"))
    assert {"chck_1M", "chck_2M", "chck_3M", "chck_4M", "chck_5M"} <= set(names)
    # Resuming with a different config is refused with one line and changes nothing.
    before = (tmp_path / "killed" / "latest").read_text()
    bad = cli("babylm", *_args(tok_dir, tmp_path, "killed", *common, "--resume", "true", "--lr", "0.5"), env=ENV)
    assert bad.returncode != 0
    assert bad.stderr.strip().count("\n") == 0 and "--lr" in bad.stderr
    assert (tmp_path / "killed" / "latest").read_text() == before


@pytest.mark.slow
def test_sigterm_stops_train_and_says_how_to_resume(tok_dir, tmp_path):
    from babylm.errors import INTERRUPTED, RESUME_HINT

    common = ("--words", "1500", "--save_every", "4", "--log_every", "2", "--milestone_unit_words", "500")
    stopped = _stopped_at("TERM", 6, *_args(tok_dir, tmp_path, "r", *common))
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    assert stopped.stderr.strip().splitlines()[-1] == f"error: {INTERRUPTED}; {RESUME_HINT}", stopped.stderr[-3000:]
    assert (tmp_path / "r" / "latest").read_text().strip() == "step_0000004"
    resumed = cli("babylm", *_args(tok_dir, tmp_path, "r", *common, "--resume", "true"), env=ENV)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (tmp_path / "r" / "final" / "model.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "gpt-bert"])
def test_milestones_layout_and_test_command(arch, tok_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from babylm.models import register_kit_models

    register_kit_models()  # gpt-bert loads through the Auto classes with the kit's own code
    # gpt-bert starts above the uniform perplexity (its published initialisation): let it learn in the few steps
    learn = ("--lr", "3e-3", "--warmup_steps", "2") if arch == "gpt-bert" else ()
    res = cli("babylm", *_args(tok_dir, tmp_path, "run", "--arch", arch, *learn, "--words", "1200",
                                   "--milestone_unit_words", "100", "--log_every", "5", "--save_every", "0"), env=ENV)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    meta = json.loads((run / "final" / "run_config.json").read_text())
    words = meta["progress"]["words_seen"]
    assert 1200 <= words < 1200 + 8 * 32  # stops at the budget: less than one batch of blocks over it
    expected = [f"chck_{m}M" for m in list(range(1, 11)) + [20, 30, 40, 50, 60, 70, 80, 90, 100] if m * 100 <= words]
    assert sorted(p.name for p in run.glob("chck_*")) == sorted(expected)
    for name in expected[:2] + ["final", "best"]:
        folder = run / name
        info = json.loads((folder / "run_config.json").read_text())
        assert info["config"]["arch"] == arch and info["code_version"]
        assert info["objective"] == ("hybrid" if arch == "gpt-bert" else "clm")
        assert json.loads((folder / "manifest.json").read_text())["stages"][0]["files"]
        if name.startswith("chck_"):
            assert info["progress"]["words_seen"] >= int(name[5:-1]) * 100
        model = AutoModelForCausalLM.from_pretrained(folder)
        assert AutoTokenizer.from_pretrained(folder).vocab_size == model.config.vocab_size
    assert {"metrics.jsonl", "train.log", "latest", "train_config.json"} <= {p.name for p in run.iterdir()}
    assert "words" in (run / "train.log").read_text()

    out = cli("babylm", "test", "--model", run / "final", "--block_size", "32", "--device", "cpu", env=ENV)
    assert out.returncode == 0, out.stderr[-2000:]
    metrics = json.loads(out.stdout.strip().splitlines()[-1])
    assert metrics["test/ppl"] == pytest.approx(2.718281828 ** metrics["test/loss"], rel=1e-6)
    assert 1.0 < metrics["test/ppl"] < 300  # below uniform over the 300-token vocabulary
    if arch == "gpt-bert":  # masked next-token prediction at 15% (test/loss) and causal, both learnt
        assert metrics["test/causal_ppl"] == pytest.approx(2.718281828 ** metrics["test/causal_loss"], rel=1e-6)
        assert 1.0 < metrics["test/causal_ppl"] < 300 and metrics["test/causal_loss"] != metrics["test/loss"]
    else:
        assert "test/causal_loss" not in metrics


@pytest.mark.slow
@pytest.mark.parametrize("extra, message", [
    (["--arch", "gpt2", "--objective", "mlm"], "--objective mlm needs a masked architecture"),
    (["--arch", "gpt3"], "--arch"),
    (["--arch", "gpt-bert", "--objective", "clm"], "gpt-bert trains with the hybrid objective"),
    (["--arch", "roberta", "--objective", "hybrid"], "--objective hybrid needs --arch gpt-bert"),
    (["--arch", "gpt-bert", "--causal_share", "1.5"], "--causal_share must be in [0, 1]"),
    (["--arch", "gpt-bert", "--size", "medium"], "not one of tiny, small, base for gpt-bert"),
    (["--block_size", "64", "--positions", "32"], "over the model's 32 positions"),
    (["--init_from", "VOCAB"], "vocabulary"),
])
def test_bad_input_one_line_errors(extra, message, tok_dir, tmp_path):
    if extra == ["--init_from", "VOCAB"]:  # a saved model with a smaller vocabulary than the tokenizer
        from babylm import checkpoint, models
        from babylm.tokenizer import load_tokenizer

        tok = load_tokenizer(tok_dir)
        model = models.build_model("gpt2", models.resolve_shape("tiny", hidden=32, positions=32), tok)
        model.resize_token_embeddings(100)
        checkpoint.save_model(tmp_path / "small_vocab", model, tok, {})
        extra = ["--init_from", tmp_path / "small_vocab"]
    (tmp_path / "runs" / "x").mkdir(parents=True)
    res = cli("babylm", *_args(tok_dir, tmp_path / "runs", "y", "--words", "200", *extra), env=ENV)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], res.stderr[-2000:]
    assert not (tmp_path / "runs" / "y").exists()


def test_existing_run_dir_is_not_overwritten(tok_dir, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("mine")
    res = cli("babylm", *_args(tok_dir, tmp_path, "run", "--words", "200"), env=ENV)
    assert res.returncode == 2 and "already exists" in res.stderr and res.stderr.count("\n") == 1
    assert (run / "keep.txt").read_text() == "mine" and len(list(run.iterdir())) == 1
