"""Model builders, the custom-head model and its trust_remote_code round trip, schedule and masking."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from babylm import checkpoint, models
from babylm.data import BatchPlan, Position
from babylm.errors import InputError, UsageError
from babylm.objective import mask_tokens
from babylm.train import lr_at
from tests.train_fixtures import make_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tok"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


IDS = torch.tensor([[2, 30, 41, 52, 63, 74, 85, 3]])


@pytest.mark.parametrize("arch", list(models.ARCHS))
def test_stock_model_round_trip(arch, tok, tmp_path):
    import transformers as tf

    shape = models.resolve_shape("tiny", hidden=32, heads=2, positions=64)
    model = models.build_model(arch, shape, tok, seed=1).eval()
    assert model.config.vocab_size == len(tok)
    assert model.config.pad_token_id == tok.pad_token_id
    if arch != "deberta-v2":
        assert model.config._attn_implementation == "sdpa"
    checkpoint.save_model(tmp_path / "m", model, tok, {"run_config.json": {"x": 1}})
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "run_config.json"} <= files
    auto = tf.AutoModelForCausalLM if models.ARCHS[arch] == "causal" else tf.AutoModelForMaskedLM
    loaded = auto.from_pretrained(tmp_path / "m").eval()
    assert type(loaded) is type(model)
    with torch.no_grad():
        assert torch.equal(loaded(IDS).logits, model(IDS).logits)
    base = tf.AutoModel.from_pretrained(tmp_path / "m")
    assert base.config.model_type == arch
    reloaded_tok = tf.AutoTokenizer.from_pretrained(tmp_path / "m")
    assert reloaded_tok("the dog sees")["input_ids"] == tok("the dog sees")["input_ids"]
    assert json.loads((tmp_path / "m" / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_size_preset_and_overrides():
    assert models.resolve_shape("small", positions=128) == models.ModelShape(4, 256, 4, 1024, 128, 0.0)
    assert models.resolve_shape("tiny", hidden=32).intermediate == 128
    with pytest.raises(UsageError, match="divisible"):
        models.resolve_shape("tiny", hidden=30, heads=4)
    with pytest.raises(UsageError, match="unknown architecture 'gpt5'"):
        models.objective_of("gpt5")


def test_check_fits(tok):
    model = models.build_model("roberta", models.resolve_shape("tiny", hidden=32, positions=32), tok)
    models.check_fits(model, tok, 32)
    with pytest.raises(UsageError, match="over the model's 32 positions"):
        models.check_fits(model, tok, 33)
    small = models.build_model("gpt2", models.resolve_shape("tiny", hidden=32, positions=32), tok)
    small.resize_token_embeddings(len(tok) - 10)
    with pytest.raises(InputError, match="vocabulary"):
        models.check_fits(small, tok, 16)


_LOAD = """
import sys, torch
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM
ids = torch.tensor([[2, 30, 41, 52, 63, 74, 85, 3]])
for folder, kind in zip(sys.argv[1::2], sys.argv[2::2]):
    try:  # without trust_remote_code the Auto classes must refuse the custom code
        AutoModel.from_pretrained(folder)
        print("loaded without trust_remote_code")
    except Exception:
        pass
    auto = AutoModelForCausalLM if kind == "causal" else AutoModelForMaskedLM
    m = auto.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        torch.save(m(ids).logits, folder + "/logits.pt")
    print(type(m).__name__)
assert "babylm" not in sys.modules, "loaded the kit instead of the saved code file"
"""


@pytest.mark.slow
def test_custom_head_loads_in_fresh_process(tok, tmp_path):
    expected, argv = {}, []
    for arch in ("gpt2", "llama", "roberta", "deberta-v2"):
        model = models.build_model(arch, models.resolve_shape("tiny", hidden=32, positions=64), tok, custom_head=True).eval()
        folder = tmp_path / arch
        checkpoint.save_model(folder, model, tok, {})
        cfg = json.loads((folder / "config.json").read_text())
        assert cfg["model_type"] == "babylm-head" and "auto_map" in cfg
        assert (folder / "custom_model.py").is_file()
        with torch.no_grad():
            expected[arch] = model(IDS).logits
        argv += [str(folder), models.ARCHS[arch]]
    # A fresh interpreter outside the repo: only the saved code file can define the model.
    out = subprocess.run([sys.executable, "-c", _LOAD, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "loaded without trust_remote_code" not in out.stdout
    classes = [w for w in out.stdout.split() if w.startswith("BabyLMFor")]
    assert classes == ["BabyLMForCausalLM", "BabyLMForCausalLM", "BabyLMForMaskedLM", "BabyLMForMaskedLM"]
    for arch, logits in expected.items():
        assert torch.equal(torch.load(tmp_path / arch / "logits.pt", weights_only=True), logits), arch


def test_lr_schedule_is_pure_function_of_step():
    peak, warm, total = 1e-3, 10, 110
    assert lr_at(0, peak, warm, total) == pytest.approx(1e-4)
    assert lr_at(9, peak, warm, total) == pytest.approx(peak)
    assert lr_at(10, peak, warm, total) == pytest.approx(peak)
    assert lr_at(60, peak, warm, total) == pytest.approx(peak * (0.1 + 0.9 * 0.5))  # cosine midpoint
    assert lr_at(110, peak, warm, total) == pytest.approx(peak * 0.1)
    assert lr_at(500, peak, warm, total) == pytest.approx(peak * 0.1)  # clamps past the end
    assert lr_at(60, peak, warm, total, "linear") == pytest.approx(peak * (1 - 0.9 * 0.5))
    assert lr_at(60, peak, warm, total, "constant") == peak
    cos = [lr_at(s, peak, warm, total) for s in range(warm, total)]
    assert all(a >= b for a, b in zip(cos, cos[1:]))  # monotone decay after warm-up
    assert [lr_at(s, peak, warm, total) for s in range(total)] == [lr_at(s, peak, warm, total) for s in range(total)]


def test_mask_tokens_rates_and_specials():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 200, (64, 128))
    ids[:, 0] = 2  # a special token in every row
    inputs, labels = mask_tokens(ids, gen, vocab_size=200, mask_id=4, special_ids=[0, 1, 2, 3, 4], prob=0.15)
    selected = labels != -100
    assert not selected[:, 0].any()
    assert abs(selected.float().mean().item() - 0.15 * 127 / 128) < 0.01
    masked = (inputs == 4) & selected
    unchanged = (inputs == ids) & selected
    n = selected.sum().item()
    assert abs(masked.sum().item() / n - 0.8) < 0.03
    assert abs(unchanged.sum().item() / n - (0.1 + 0.1 / 190)) < 0.03  # "keep" + random hits of the same id
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(inputs[~selected], ids[~selected])
    again = mask_tokens(ids, torch.Generator().manual_seed(0), 200, 4, [0, 1, 2, 3, 4])
    assert torch.equal(again[0], inputs)


def test_batch_plan_is_deterministic_and_resumable():
    plan = BatchPlan([10, 7], batch=3, seed=1, epochs=2, repeat=False)
    seen, pos = [], Position()
    while (nxt := plan.next(pos)) is not None:
        stage, idx, pos, _ = nxt
        seen.append((stage, tuple(idx.tolist())))
    assert len(seen) == plan.total_batches() == 2 * 3 + 2 * 2
    assert [s for s, _ in seen] == [0] * 6 + [1] * 4
    first_epoch = [i for _, b in seen[:3] for i in b]
    assert len(set(first_epoch)) == 9  # no block twice in an epoch
    # Restarting from a stored position gives the same continuation.
    pos = Position(0, 1, 1)
    assert [tuple(plan.next(pos)[1].tolist())] == [seen[4][1]]
    endless = BatchPlan([6], batch=3, seed=1, epochs=1, repeat=True)
    pos = Position()
    for _ in range(10):
        _, _, pos, _ = endless.next(pos)
    assert pos.epoch == 4


