"""The HF Trainer engine against the kit's loop, and two-process torchrun against one process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REPO, run_cli
from tests.test_train_cli import ENV, _args, tok_dir  # noqa: F401  (module fixture reused)


def _records(run: Path, key: str) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r[key] for r in rows if key in r}


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "roberta"])
def test_hf_engine_matches_layout_and_loss(arch, tok_dir, tmp_path):  # noqa: F811
    import transformers as tf

    common = ("--arch", arch, "--words", "2000", "--milestone_unit_words", "500", "--log_every", "5",
              "--eval_every", "10", "--eval_batches", "4", "--save_every", "0", "--dropout", "0", "--lr", "3e-3",
              "--warmup_steps", "3")
    for engine in ("torch", "hf"):
        res = run_cli("babylm", *_args(tok_dir, tmp_path, engine, "--engine", engine, *common), env=ENV)
        assert res.returncode == 0, res.stderr[-3000:]
    torch_run, hf_run = tmp_path / "torch", tmp_path / "hf"
    layout = {"final", "best", "metrics.jsonl", "train.log", "chck_1M", "chck_2M", "chck_3M", "chck_4M"}
    for run in (torch_run, hf_run):
        assert layout <= {p.name for p in run.iterdir()}, run
    assert sorted(p.name for p in torch_run.glob("chck_*")) == sorted(p.name for p in hf_run.glob("chck_*"))
    auto = tf.AutoModelForCausalLM if arch == "gpt2" else tf.AutoModelForMaskedLM
    for run in (torch_run, hf_run):
        model = auto.from_pretrained(run / "final")
        assert type(model).__name__ == ("GPT2LMHeadModel" if arch == "gpt2" else "RobertaForMaskedLM")
    meta = [json.loads((r / "final" / "run_config.json").read_text())["progress"]["words_seen"] for r in (torch_run, hf_run)]
    assert meta[0] == meta[1]  # same block order, same exact word count
    ours, theirs = _records(torch_run, "train/loss"), _records(hf_run, "train/loss")
    first, last = min(ours), max(set(ours) & set(theirs))
    assert ours[last] < ours[first] - 0.3 and theirs[last] < theirs[first] - 0.3  # both learn
    assert abs(ours[last] - theirs[last]) < 0.15 * ours[last]  # and land close to each other
    val_ours, val_theirs = _records(torch_run, "val/loss"), _records(hf_run, "val/loss")
    assert abs(val_ours[max(val_ours)] - val_theirs[max(val_theirs)]) < 0.15 * val_ours[max(val_ours)]


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tok_dir, tmp_path):  # noqa: F811
    import os
    import subprocess

    common = ("--words", "1500", "--milestone_unit_words", "500", "--log_every", "1", "--eval_every", "10",
              "--save_every", "10", "--dropout", "0", "--warmup_steps", "5")
    single = run_cli("babylm", *_args(tok_dir, tmp_path, "single", *common), env=ENV)
    assert single.returncode == 0, single.stderr[-3000:]
    args = [str(a) for a in _args(tok_dir, tmp_path, "ddp", *common, "--batch_size", "4")]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "babylm", *args], cwd=REPO, env={**os.environ, **ENV}, capture_output=True, text=True,
                         timeout=400)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("run folder:") == 1  # rank 0 only
    a = load_file(str(tmp_path / "single" / "final" / "model.safetensors"))
    b = load_file(str(tmp_path / "ddp" / "final" / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    la, lb = _records(tmp_path / "single", "train/loss"), _records(tmp_path / "ddp", "train/loss")
    assert la.keys() == lb.keys() and len(la) > 10
    for step in la:
        assert la[step] == pytest.approx(lb[step], rel=1e-5)
    wa = json.loads((tmp_path / "single" / "final" / "run_config.json").read_text())["progress"]
    wb = json.loads((tmp_path / "ddp" / "final" / "run_config.json").read_text())["progress"]
    assert wa == wb  # words counted across both ranks
    assert sorted(p.name for p in (tmp_path / "ddp").glob("chck_*")) == ["chck_1M", "chck_2M", "chck_3M"]


@pytest.fixture(scope="module")
def real_tok(tmp_path_factory, shared):
    """A BPE trained by the kit on the real 2024 slice (switchboard, official layout)."""
    from babylm.tokenizer import TokenizerConfig, train_tokenizer

    out = tmp_path_factory.mktemp("real_tok") / "tok"
    train_tokenizer(TokenizerConfig(corpus=str(shared / "data/babylm/2024"), out_dir=str(out), vocab_size=400))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["torch", "hf"])
@pytest.mark.parametrize("arch", ["gpt2", "llama", "bert", "roberta", "deberta-v2"])
def test_every_arch_trains_with_both_engines_on_the_real_slice(arch, engine, real_tok, shared, tmp_path):
    """Five architectures x two engines on the real 2024 slice: milestones, word budget, manifest, Auto loading."""
    import transformers as tf

    from babylm.commands import run_training
    from babylm.run import TrainConfig

    corpus = shared / "data/babylm/2024"
    cfg = TrainConfig(corpus=str(corpus), tokenizer=str(real_tok), arch=arch, engine=engine, hidden=32, heads=2,
                      layers=2, block_size=32, batch_size=8, words=3000, milestone_unit_words=1000, lr=3e-3,
                      warmup_steps=2, log_every=2, eval_every=0, val_files=["dev"], dropout=0.0, device="cpu",
                      save_dir=str(tmp_path), run_name="r", progress=False, tensorboard=False)
    run = run_training(cfg)
    assert sorted(p.name for p in run.glob("chck_*")) == ["chck_1M", "chck_2M", "chck_3M"]  # 1,000 words per "M"
    auto = tf.AutoModelForCausalLM if arch in ("gpt2", "llama") else tf.AutoModelForMaskedLM
    model = auto.from_pretrained(run / "final")
    assert model.config.model_type == arch
    meta = json.loads((run / "final" / "run_config.json").read_text())
    assert 3000 <= meta["progress"]["words_seen"] < 3000 + 8 * 32  # stops at the budget, within one batch
    manifest = json.loads((run / "final" / "manifest.json").read_text())
    train_files = {f["name"]: f["words"] for stage in manifest["stages"] for f in stage.get("files", [])}
    assert train_files == {"train_10M/switchboard.train": len((corpus / "train_10M/switchboard.train").read_text().split())}
    losses = list(_records(run, "train/loss").values())
    assert losses[-1] < losses[0]  # it learns from the real text
