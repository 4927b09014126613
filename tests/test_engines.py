"""The HF Trainer engine against the kit's loop, and two-process torchrun against one process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REPO, cli
from tests.test_train_cli import ENV, _args, tok_dir  # noqa: F401  (module fixture reused)


def _records(run: Path, key: str) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r[key] for r in rows if key in r}


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "roberta", "gpt-bert"])
def test_hf_engine_matches_layout_and_loss(arch, tok_dir, tmp_path):  # noqa: F811
    import transformers as tf

    from babylm.models import register_kit_models

    register_kit_models()

    common = ("--arch", arch, "--words", "2000", "--milestone_unit_words", "500", "--log_every", "5",
              "--eval_every", "10", "--eval_batches", "4", "--save_every", "0", "--dropout", "0", "--lr", "3e-3",
              "--warmup_steps", "3")
    for engine in ("torch", "hf"):
        res = cli("babylm", *_args(tok_dir, tmp_path, engine, "--engine", engine, *common), env=ENV)
        assert res.returncode == 0, res.stderr[-3000:]
    torch_run, hf_run = tmp_path / "torch", tmp_path / "hf"
    layout = {"final", "best", "metrics.jsonl", "train.log", "chck_1M", "chck_2M", "chck_3M", "chck_4M"}
    for run in (torch_run, hf_run):
        assert layout <= {p.name for p in run.iterdir()}, run
    assert sorted(p.name for p in torch_run.glob("chck_*")) == sorted(p.name for p in hf_run.glob("chck_*"))
    auto = tf.AutoModelForCausalLM if arch == "gpt2" else tf.AutoModelForMaskedLM
    for run in (torch_run, hf_run):
        model = auto.from_pretrained(run / "final")
        assert type(model).__name__ == {"gpt2": "GPT2LMHeadModel", "roberta": "RobertaForMaskedLM",
                                        "gpt-bert": "GPTBertForMaskedLM"}[arch]
    meta = [json.loads((r / "final" / "run_config.json").read_text())["progress"]["words_seen"] for r in (torch_run, hf_run)]
    assert meta[0] == meta[1]  # same block order, same exact word count
    ours, theirs = _records(torch_run, "train/loss"), _records(hf_run, "train/loss")
    first, last = min(ours), max(set(ours) & set(theirs))
    assert ours[last] < ours[first] - 0.3 and theirs[last] < theirs[first] - 0.3  # both learn
    assert abs(ours[last] - theirs[last]) < 0.15 * ours[last]  # and land close to each other
    val_ours, val_theirs = _records(torch_run, "val/loss"), _records(hf_run, "val/loss")
    assert abs(val_ours[max(val_ours)] - val_theirs[max(val_theirs)]) < 0.15 * val_ours[max(val_ours)]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "gpt-bert"])
def test_torchrun_two_processes_match_one(arch, tok_dir, tmp_path):  # noqa: F811
    import os
    import subprocess

    hybrid = ("--causal_share", "0.25") if arch == "gpt-bert" else ()  # both objectives, every rank the same one
    common = ("--arch", arch, *hybrid, "--words", "1500", "--milestone_unit_words", "500", "--log_every", "1",
              "--eval_every", "10", "--save_every", "10", "--dropout", "0", "--warmup_steps", "5")
    single = cli("babylm", *_args(tok_dir, tmp_path, "single", *common), env=ENV)
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
    # Two ranks add the same float32 terms in another order (each rank's half of the batch, then the
    # all-reduce of the gradients), and the optimizer carries the rounding on from step to step. So
    # the losses agree to the bound the weights are held to above (1e-4 relative), not to float32's
    # rounding of one sum: how close they come depends on the CPU's kernels.
    gaps = {step: abs(la[step] - lb[step]) / abs(la[step]) for step in la}
    worst = max(gaps, key=gaps.get)
    assert gaps[worst] < 1e-4, f"step {worst}: one process {la[worst]!r}, two {lb[worst]!r} ({gaps[worst]:.1e} relative)"
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
@pytest.mark.parametrize("arch", ["gpt2", "llama", "bert", "roberta", "deberta-v2", "gpt-bert"])
def test_every_arch_trains_with_both_engines_on_the_real_slice(arch, engine, real_tok, shared, tmp_path):
    """Six architectures x two engines on the real 2024 slice: milestones, word budget, manifest, Auto loading."""
    import transformers as tf

    from babylm.commands import run_training
    from babylm.models import register_kit_models
    from babylm.run import TrainConfig

    register_kit_models()

    corpus = shared / "data/babylm/2024"
    cfg = TrainConfig(corpus=str(corpus), tokenizer=str(real_tok), arch=arch, engine=engine, hidden=32, heads=2,
                      layers=2, block_size=32, batch_size=8, words=3000, milestone_unit_words=1000, lr=3e-3,
                      warmup_steps=2, log_every=2, eval_every=0, val_files=["dev"], dropout=0.0, device="cpu",
                      save_dir=str(tmp_path), run_name="r", progress=False, tensorboard=False)
    run = run_training(cfg)
    assert sorted(p.name for p in run.glob("chck_*")) == ["chck_1M", "chck_2M", "chck_3M"]  # 1,000 words per "M"
    auto = tf.AutoModelForCausalLM if arch in ("gpt2", "llama") else tf.AutoModelForMaskedLM
    model = auto.from_pretrained(run / "final")
    assert model.config.model_type == {"gpt-bert": "babylm-gpt-bert"}.get(arch, arch)
    meta = json.loads((run / "final" / "run_config.json").read_text())
    assert 3000 <= meta["progress"]["words_seen"] < 3000 + 8 * 32  # stops at the budget, within one batch
    manifest = json.loads((run / "final" / "manifest.json").read_text())
    train_files = {f["name"]: f["words"] for stage in manifest["stages"] for f in stage.get("files", [])}
    assert train_files == {"train_10M/switchboard.train": len((corpus / "train_10M/switchboard.train").read_text().split())}
    losses = list(_records(run, "train/loss").values())
    assert losses[-1] < losses[0]  # it learns from the real text
    if arch == "gpt-bert" and engine == "torch":
        _scores_both_ways(run, shared, tmp_path)


def _scores_both_ways(run: Path, shared: Path, tmp_path: Path) -> None:
    """A trained GPT-BERT loads as a causal LM too and is scored with --backend mntp (its default) and causal."""
    import transformers as tf

    from eval_export.commands import ScoreConfig, score

    assert type(tf.AutoModelForCausalLM.from_pretrained(run / "final")).__name__ == "GPTBertForCausalLM"
    accuracy = {}
    for backend in ("mntp", "causal"):
        score(ScoreConfig(model=str(run), backend=backend, tasks=["blimp"], eval_set="fast",
                          eval_data=str(shared / "data/eval"), limit=4, results=str(tmp_path / "results"),
                          device="cpu", progress=False))
        summary = json.loads((tmp_path / "results" / "r" / "main" / "zero_shot" / backend / "blimp" / "blimp_fast" /
                              "summary.json").read_text())
        assert summary["n_items"] == 67 * 4
        accuracy[backend] = summary["accuracy"]
    assert all(0.0 <= a <= 1.0 for a in accuracy.values())


@pytest.fixture(scope="module")
def small_tok(tmp_path_factory):
    from tests.train_fixtures import make_tokenizer

    return make_tokenizer(tmp_path_factory.mktemp("small_tok"))


def test_hf_engine_trains_gpt_bert_step_for_step_like_the_kit_loop(small_tok, tmp_path, monkeypatch):
    """With gradient accumulation, the Trainer's optimizer step s runs the kit's step s: the same objective on
    every micro-batch (its step counting), the same masks and the same loss normalisation, so the losses and the
    weights of the two engines agree."""
    from babylm import hf_engine, train
    from babylm.objective import HybridLoss, hybrid_mode
    from babylm.run import build
    from tests.test_loop import _losses, _run
    from tests.train_fixtures import make_blocks

    torch.set_num_threads(1)
    calls: list[str] = []
    summed = HybridLoss.summed

    def spy(self, inputs, labels, mode, z_loss):
        calls.append(mode)
        return summed(self, inputs, labels, mode, z_loss)

    monkeypatch.setattr(HybridLoss, "summed", spy)
    blocks = [make_blocks(small_tok, 32, 160)]
    common = dict(arch="gpt-bert", causal_share=0.25, batch_size=2, grad_accum=2, epochs=1, schedule="constant",
                  warmup_steps=0, lr=3e-3, eval_every=0, milestones=False, val_fraction=0)
    seen = {}
    for engine, fit in (("torch", train.fit), ("hf", hf_engine.fit)):
        run = _run(small_tok, tmp_path / engine, blocks, engine=engine, **common)
        model, opt = build(run)
        calls.clear()
        state = fit(run, model, opt)
        seen[engine] = (list(calls), _losses(run), {k: v.clone() for k, v in model.state_dict().items()}, state.step)
    steps = seen["torch"][3]
    assert steps == seen["hf"][3] == len(blocks[0]) // 4 and steps >= 12
    want = [hybrid_mode(s, 42, 0.25) for s in range(steps) for _ in range(2)]  # both micro-batches of each step
    assert want.count("causal") == 2 * steps // 4
    assert seen["torch"][0] == want and seen["hf"][0] == want
    ours, theirs = seen["torch"][1], seen["hf"][1]
    assert len(ours) == len(theirs) == steps
    assert theirs == pytest.approx(ours, rel=1e-5)
    for k, v in seen["torch"][2].items():
        torch.testing.assert_close(seen["hf"][2][k], v, rtol=1e-4, atol=1e-5, msg=k)
