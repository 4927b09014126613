"""The loop itself on tiny in-memory inputs: NaN stop, curriculum, continuation, crash-safe saves, presets."""

from __future__ import annotations

import json
import math

import pytest
import torch

from babylm import checkpoint, config
from babylm.distributed import Dist
from babylm.errors import InputError
from babylm.run import Run, TrainConfig, build
from babylm.train import fit
from tests.train_fixtures import make_blocks, make_tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tok"))


def _run(tok, tmp_path, stages, val=None, **kw) -> Run:
    base = dict(block_size=32, batch_size=4, hidden=32, heads=2, save_dir=str(tmp_path), log_every=1, save_every=0,
                milestone_unit_words=100, warmup_steps=2, progress=False, tensorboard=False, dropout=0.0)
    cfg = TrainConfig(**{**base, **kw})
    cfg.validate()
    return Run(cfg, tmp_path / cfg.name, tok, stages, val, cfg.objective, "cpu", Dist(), {"stages": []})


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tok, tmp_path):
    run = _run(tok, tmp_path, [make_blocks(tok, 32, 200)], lr=1e4, schedule="constant", warmup_steps=0,
               grad_clip=0.0, save_every=1, milestones=False)
    model, opt = build(run)
    with pytest.raises(InputError, match=r"loss is not finite at step \d+; stopped\. Last good checkpoint: .*step_") as err:
        fit(run, model, opt)
    assert "\n" not in str(err.value)
    good = checkpoint.latest(run.run_dir)
    assert good is not None and (good / "model.safetensors").is_file()
    assert not (run.run_dir / "final").exists()
    from safetensors.torch import load_file

    assert all(torch.isfinite(t).all() for t in load_file(str(good / "model.safetensors")).values())


def test_curriculum_stages_in_order_and_words_exact(tok, tmp_path):
    easy, hard = make_blocks(tok, 32, 120, seed=1), make_blocks(tok, 32, 120, seed=2)
    run = _run(tok, tmp_path, [easy, hard], curriculum=["easy", "hard"], epochs=1, eval_every=0)
    model, opt = build(run)
    state = fit(run, model, opt)
    per_stage = [len(s) // 4 for s in (easy, hard)]
    assert state.step == sum(per_stage) and state.position.stage == 1
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "train/loss" in r] == list(range(1, state.step + 1))
    # Exact words: every block of each stage is used except the dropped remainder of each epoch.
    assert state.words_seen <= sum(easy["n_words"]) + sum(hard["n_words"])
    assert state.words_seen >= sum(easy["n_words"]) + sum(hard["n_words"]) - 2 * 3 * 40


def test_continue_from_saved_model_with_and_without_optimizer(tok, tmp_path):
    blocks = make_blocks(tok, 32, 200)
    first = _run(tok, tmp_path, [blocks], run_name="first", epochs=1)
    model, opt = build(first)
    fit(first, model, opt)
    final = first.run_dir / "final"
    saved = checkpoint.load_state(final)["optimizer"]
    for with_opt in (False, True):
        second = _run(tok, tmp_path, [make_blocks(tok, 32, 80, seed=5)], run_name=f"second{with_opt}",
                      init_from=str(final), init_optimizer=with_opt, epochs=1)
        model2, opt2 = build(second)
        w = {k: v.clone() for k, v in model2.state_dict().items()}
        assert all(torch.equal(w[k], v) for k, v in model.state_dict().items())  # starts from the saved weights
        state = opt2.state_dict()["state"]
        if with_opt:
            assert torch.equal(state[0]["exp_avg"], saved["state"][0]["exp_avg"])
        else:
            assert state == {}
        fit(second, model2, opt2)
        assert (second.run_dir / "final" / "model.safetensors").is_file()


class _BrokenTokenizer:
    """Fails half-way through a checkpoint write (after the weights are on disk)."""

    def save_pretrained(self, folder):
        raise OSError("disk full")


def test_crash_while_saving_keeps_previous_checkpoint(tok, tmp_path):
    run = _run(tok, tmp_path, [make_blocks(tok, 32, 80)], epochs=1, save_every=2)
    model, opt = build(run)
    fit(run, model, opt)
    before = checkpoint.latest(run.run_dir)
    files = sorted(p.name for p in before.iterdir())
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_resume(run.run_dir, 999, model, _BrokenTokenizer(), {}, {"x": torch.zeros(1)})
    assert checkpoint.latest(run.run_dir) == before
    assert sorted(p.name for p in before.iterdir()) == files
    assert not (run.run_dir / "step_0000999").exists()
    assert not [p for p in run.run_dir.iterdir() if p.name.startswith(".tmp-")]
    state = checkpoint.load_state(before)  # weights_only load of the surviving state
    assert "optimizer" in state and json.loads(state["loop"])["step"] > 0


PRESETS = sorted(config.PRESET_DIR.glob("*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_presets_build(path):
    """Every section of every preset builds the config of the command it is named after."""
    from babylm.commands import COMMANDS as KIT
    from eval_export.commands import COMMANDS as EXPORT

    commands = {**EXPORT, **KIT}
    raw = config.load_file(path)
    assert raw and set(raw) <= set(commands), f"{path.name}: sections must be command names"
    # `model` is what the run supplies (reproduce.sh passes it), never the preset
    def needs(name):
        field = commands[name].config.__dataclass_fields__.get("model")
        return {"model": "runs/x/final"} if getattr(field, "default", None) == "" else {}

    built = {name: config.build(commands[name].config, {"config": path.stem, **needs(name)}, command=name) for name in raw}
    if "train" in built:
        assert built["train"].arch in ("gpt2", "bert", "gpt-bert")
        if path.stem.startswith("small_"):
            assert built["train"].run_name == path.stem
    if "tokenizer" in built and path.stem not in ("smoke", "cpu_real"):  # the CPU presets keep the output layer small
        assert built["tokenizer"].vocab_size >= 8192
    if path.stem.startswith(("small_gpt_", "small_bert_")):
        order = path.stem.split("_")[2:]
        assert built["train"].curriculum == order and built["train"].size == "small"


def test_preset_small_gpt_is_the_seed_shape():
    from babylm.models import resolve_shape

    cfg = config.build(TrainConfig, {"config": "small_gpt"}, command="train")
    shape = resolve_shape(cfg.size, cfg.layers, cfg.hidden, cfg.heads, cfg.intermediate, cfg.block_size)
    assert (shape.layers, shape.hidden, shape.heads) == (4, 256, 4)
    assert cfg.words == 100_000_000 and cfg.track == "strict-small"


def test_final_model_is_the_last_resume_checkpoint_with_its_own_metadata(tok, tmp_path):
    run = _run(tok, tmp_path, [make_blocks(tok, 32, 40)], epochs=1, eval_every=0, milestones=False)
    model, opt = build(run)
    fit(run, model, opt)
    final, last = run.run_dir / "final", checkpoint.latest(run.run_dir)
    # Weights and optimizer state are linked, not written twice; the metadata is the final one.
    for name in ("model.safetensors", checkpoint.STATE_FILE):
        assert (final / name).stat().st_ino == (last / name).stat().st_ino, name
    meta = json.loads((final / "run_config.json").read_text())
    assert meta["progress"]["stop_reason"] == "budget reached"
    assert "stop_reason" not in json.loads((last / "run_config.json").read_text())["progress"]
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(final).eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model.eval()(ids).logits)
    assert set(checkpoint.load_state(final)) >= {"optimizer"}


def _losses(run: Run) -> list[float]:
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["train/loss"] for r in rows if "train/loss" in r]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "roberta", "gpt-bert"])
def test_gpu_code_paths_on_cpu_compile_and_bf16_follow_the_eager_fp32_run(tok, tmp_path, arch):
    """The settings used on GPUs (torch.compile of model + loss, bf16 autocast), run on the CPU:
    the compiled run gives the eager run's losses; bf16 stays within bf16 rounding of them."""
    blocks = [make_blocks(tok, 32, 120)]
    # gpt-bert: both objectives (one compiled graph each), a causal step in every 4
    common = dict(arch=arch, epochs=1, eval_every=0, milestones=False, layers=2,
                  **({"causal_share": 0.25} if arch == "gpt-bert" else {}))
    from torch._dynamo.utils import counters

    runs = {}
    for name, kw in (("eager", {}), ("compiled", {"compile": True}), ("bf16", {"precision": "bf16"})):
        run = _run(tok, tmp_path / name, blocks, **common, **kw)
        model, opt = build(run)
        counters.clear()
        fit(run, model, opt)
        runs[name] = _losses(run)
        assert (counters["stats"]["unique_graphs"] > 0) == (name == "compiled"), name  # compiled only when asked
    eager = runs["eager"]
    assert len(eager) >= 4 and all(math.isfinite(x) for x in eager)
    assert eager[-1] < eager[0]  # it learns
    assert runs["compiled"] == pytest.approx(eager, rel=1e-4)
    assert runs["bf16"] == pytest.approx(eager, rel=3e-2)
    assert runs["bf16"] != eager  # autocast really ran in bf16
