"""GPT-BERT: the model against loop references, the hybrid loss and gradients against full logits,
the step schedule, scoring against one-sentence-at-a-time references, and loading in fresh
processes (transformers 5 from the saved code file, and the official transformers 4.51.3)."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from babylm import checkpoint, gpt_bert, models
from babylm.errors import UsageError
from babylm.objective import CAUSAL, MNTP, HybridLoss, count_predicted, hybrid_mode, loss_module, mask_rate_at, mask_tokens
from bench import official_env
from tests.train_fixtures import make_tokenizer, sentences

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tok"))


def _tiny(vocab: int, seed: int = 0, causal: bool = False, **overrides):
    cfg = dict(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
               max_position_embeddings=64, position_bucket_size=8, hidden_dropout_prob=0.0,
               attention_probs_dropout_prob=0.0)
    cfg.update(overrides)
    torch.manual_seed(seed)
    cls = gpt_bert.GPTBertForCausalLM if causal else gpt_bert.GPTBertForMaskedLM
    model = cls(gpt_bert.GPTBertConfig(**cfg)).eval()
    _perturb(model, seed)
    return model


def _perturb(model, seed: int) -> None:
    """Move every parameter off its initial value (zeros, ones, identity layer weights), so a test
    cannot pass because some term happens to vanish at initialisation."""
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))


def _causal_twin(model):
    twin = gpt_bert.GPTBertForCausalLM(model.config).eval()
    twin.load_state_dict(model.state_dict())
    return twin


# --------------------------------------------------------------------------- the model


def _bucket_reference(q: int, k: int, buckets: int, max_distance: int) -> int:
    """Scalar rule: exact distances below buckets/2, log-spaced buckets beyond, signed, shifted to >= 0."""
    rel, half = q - k, buckets // 2
    if abs(rel) <= half:
        return rel + buckets - 1
    top = max(max_distance - 1, half + 1)
    d = min(abs(rel), top)
    b = min(half + math.ceil(math.log(d / half) / math.log(top / half) * (half - 1)), buckets - 1)
    return int(math.copysign(b, rel)) + buckets - 1


@pytest.mark.parametrize("length,buckets,max_distance", [(40, 8, 64), (70, 32, 512), (12, 4, 5)])
def test_relative_buckets_match_scalar_rule(length, buckets, max_distance):
    got = gpt_bert.relative_buckets(length, buckets, max_distance)
    want = torch.tensor([[_bucket_reference(q, k, buckets, max_distance) for k in range(length)] for q in range(length)])
    assert torch.equal(got, want)
    assert got.min() >= 0 and got.max() <= 2 * buckets - 2


def _attention_reference(attn, x, relative, buckets, allowed):
    """One attention sub-layer in float64 with explicit loops over heads, queries and keys."""
    x, relative = x.double(), relative.double()
    lin = {name: (getattr(attn, name).weight.double(), getattr(attn, name).bias.double()) for name in ("qk", "vg", "out")}
    h = F.layer_norm(x, x.shape[-1:], eps=1e-5)
    qk = h @ lin["qk"][0].T + lin["qk"][1]
    vg = h @ lin["vg"][0].T + lin["vg"][1]
    pos = relative @ lin["qk"][0].T + lin["qk"][1]  # (R, 2H)
    hidden = x.shape[-1]
    nh, d = attn.heads, attn.head_size
    scale = 1.0 / math.sqrt(3 * d)
    b_size, t = x.shape[:2]
    out = torch.zeros(b_size, t, hidden, dtype=torch.float64)
    for b in range(b_size):
        for head in range(nh):
            cols = slice(head * d, (head + 1) * d)
            for qi in range(t):
                q = qk[b, qi, :hidden][cols]
                scores = []
                for ki in range(t):
                    k = qk[b, ki, hidden:][cols]
                    r = int(buckets[qi, ki])
                    pq, pk = pos[r, :hidden][cols], pos[r, hidden:][cols]
                    s = (q @ k + q @ pk + k @ pq) * scale
                    scores.append(s if allowed[b][qi][ki] else torch.tensor(float("-inf"), dtype=torch.float64))
                p = torch.softmax(torch.stack(scores), dim=0)
                out[b, qi, cols] = sum(p[ki] * vg[b, ki, :hidden][cols] for ki in range(t))
    ctx = out * F.gelu(vg[..., hidden:])
    ctx = F.layer_norm(ctx, ctx.shape[-1:], eps=1e-5)
    return ctx @ lin["out"][0].T + lin["out"][1]


@pytest.mark.parametrize("kind", ["bidirectional", "causal", "padded"])
def test_attention_matches_loop_reference(kind):
    model = _tiny(50, seed=3)
    attn = model.model.encoder.attention[1]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 7, 32, generator=gen)
    relative = model.model.embedding(torch.zeros(1, 1, dtype=torch.long))[1]  # (R, H)
    buckets = gpt_bert.relative_buckets(7, 8, 64)
    mask = torch.ones(2, 7, dtype=torch.long)
    if kind == "padded":
        mask[1, 4:] = 0
    blocked = gpt_bert._blocked(mask if kind == "padded" else None, kind == "causal", 7, x.device)
    allowed = [[[(kind != "causal" or ki <= qi) and (bool(mask[b, ki]) or ki == qi) for ki in range(7)]
                for qi in range(7)] for b in range(2)]
    with torch.no_grad():
        got = attn(x, relative, buckets, blocked)
        want = _attention_reference(attn, x, relative, buckets, allowed)
    rows = slice(None) if kind != "padded" else slice(0, 4)  # padding queries are never read
    torch.testing.assert_close(got[1, rows].double(), want[1, rows], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[0].double(), want[0], rtol=1e-5, atol=1e-5)


def test_attention_kinds_and_masks():
    masked = _tiny(60, seed=1)
    causal = _causal_twin(masked)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 60, (2, 10), generator=gen)
    changed = ids.clone()
    changed[:, 6:] = 7
    with torch.no_grad():
        c1, c2 = causal(ids).logits, causal(changed).logits
        m1, m2 = masked(ids).logits, masked(changed).logits
        # Causal: positions before the change do not see it; bidirectional ones do.
        torch.testing.assert_close(c1[:, :6], c2[:, :6], rtol=0, atol=1e-6)
        assert (m1[:, :6] - m2[:, :6]).abs().max() > 1e-3
        assert (c1[:, :6] - m1[:, :6]).abs().max() > 1e-3
        # The official --causal fine-tuning passes a (B, T, T) lower-triangular mask to AutoModel.
        base = masked.model
        tril = torch.ones(2, 10, 10, dtype=torch.long).tril()
        torch.testing.assert_close(base(ids, attention_mask=tril).last_hidden_state,
                                   causal.model(ids).last_hidden_state, rtol=0, atol=1e-6)
        # Right padding changes nothing at the real positions, in either attention kind.
        padded = torch.cat([ids[:1, :6], torch.zeros(1, 4, dtype=torch.long)], dim=1)
        pad_mask = torch.tensor([[1] * 6 + [0] * 4])
        for model in (masked, causal):
            torch.testing.assert_close(model(padded, attention_mask=pad_mask).logits[:, :6],
                                       model(ids[:1, :6]).logits, rtol=0, atol=1e-5)
        # A causal call on the masked model's body equals the causal model.
        torch.testing.assert_close(masked(ids, causal=True).logits, c1, rtol=0, atol=1e-6)


def test_tied_output_and_parameter_count(tok):
    shape = models.resolve_shape("small", positions=128, arch="gpt-bert")
    assert shape == models.ModelShape(12, 384, 6, 1280, 128, 0.0)
    base = models.resolve_shape("base", arch="gpt-bert")
    assert (base.layers, base.hidden, base.heads, base.intermediate) == (12, 768, 12, 2560)
    assert models.resolve_shape("tiny", hidden=96, arch="gpt-bert").intermediate == 320
    with pytest.raises(UsageError, match="for gpt-bert"):
        models.resolve_shape("medium", arch="gpt-bert")
    assert models.objective_of("gpt-bert") == "hybrid"
    model = models.build_model("gpt-bert", shape, tok, seed=0)
    assert type(model).__name__ == "GPTBertForMaskedLM"
    assert model.head.decoder.weight is model.model.embedding.word.weight
    assert model.config.pad_token_id == tok.pad_token_id and model.config.max_position_embeddings == 512
    v, h, f, n = len(tok), 384, 1280, 12
    per_layer = 2 * (h * 2 * h + 2 * h) + (h * h + h) + h * 2 * f + f * h
    mix = sum(i + 2 for i in range(2 * n))
    expected = v * h + 63 * h + 2 * h + n * per_layer + mix + (h * h + h) + v
    assert models.count_parameters(model) == expected
    # The published strict-small model, with its 8192-token vocabulary: about 30M parameters.
    assert 29e6 < expected - v * h - v + 8192 * h + 8192 < 31e6
    with pytest.raises(UsageError, match="own head"):
        models.build_model("gpt-bert", shape, tok, custom_head=True)


# --------------------------------------------------------------------------- the hybrid objective


def _batch(vocab: int, mode: str, mask_id: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (3, 12), generator=gen)  # (B, T)
    if mode == CAUSAL:
        return ids, ids
    inputs, labels = mask_tokens(ids, gen, vocab, mask_id, [0, 1, 2, 3, 4], prob=0.3)
    inputs[0, 0], labels[0, 0] = mask_id, ids[0, 0]  # a mask at position 0 has no output to be read at
    return inputs, labels


def _reference_loss(model, inputs, labels, mode, z_loss):
    """Full logits in the mode's attention, float64 log-softmax, label t read at output t-1, plain loops."""
    logits = model(input_ids=inputs, causal=mode == CAUSAL).logits.double()  # (B, T, V)
    total = logits.new_zeros(())
    for b in range(labels.size(0)):
        for t in range(1, labels.size(1)):
            if labels[b, t] == -100:
                continue
            row = logits[b, t - 1]
            lse = torch.logsumexp(row, dim=0)
            total = total + lse - row[labels[b, t]] + z_loss * lse ** 2
    return total


_CUDA = pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(),
                                                                         reason="needs CUDA")])


@pytest.mark.parametrize("mode", [CAUSAL, MNTP])
@pytest.mark.parametrize("z_loss", [0.0, 1e-2])
@pytest.mark.parametrize("device", ["cpu", _CUDA])
def test_hybrid_loss_and_gradients_match_full_logits_reference(mode, z_loss, device):
    model = _tiny(60, seed=2).to(device)  # on CUDA the attention bias takes SDPA's fused kernels
    module = loss_module(model, "hybrid")
    assert isinstance(module, HybridLoss)
    module.z_loss = z_loss
    assert {id(p) for p in module.parameters()} == {id(p) for p in model.parameters()}
    inputs, labels = (t.to(device) for t in _batch(60, mode, mask_id=4))
    params = list(model.parameters())

    loss = module(inputs, labels, mode)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    # The reference runs a float64 copy of the model end to end, so its own rounding is far below the
    # float32 module's, whatever the CPU's kernels: the comparison measures the module's error alone.
    ref_model = copy.deepcopy(model).double()
    ref = _reference_loss(ref_model, inputs, labels, mode, z_loss)
    ref_grads = torch.autograd.grad(ref, list(ref_model.parameters()), allow_unused=True)

    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5 if device == "cpu" else 1e-4)
    n = count_predicted(labels)
    assert n == (3 * 11 if mode == CAUSAL else int((labels != -100).sum() - (labels[:, 0] != -100).sum()))
    assert n > 6
    # float32 rounding scales with a gradient's size, not with each entry's: an entry near zero carries
    # the absolute error of its large neighbours. So the bound is relative to the largest entry.
    rel = 1e-4 if device == "cpu" else 1e-3
    for (name, _), g, r in zip(model.named_parameters(), grads, ref_grads):
        assert r is not None and g is not None, name
        scale = r.abs().max().item()
        err = (g.double() - r).abs().max().item()
        assert scale > 0, f"{name}: the reference gradient is zero"
        assert err <= rel * scale, f"{name}: max |diff| {err:.3g} > {rel:g} x max |grad| {scale:.3g}"
    with pytest.raises(ValueError, match="mode"):
        module(inputs, labels, "mlm")


def test_hybrid_loss_refuses_other_models(tok):
    bert = models.build_model("bert", models.resolve_shape("tiny", hidden=32, positions=64), tok)
    with pytest.raises(ValueError, match="gpt-bert"):
        loss_module(bert, "hybrid")


def test_hybrid_mode_schedule_is_exact_and_resumable():
    modes = [hybrid_mode(s, seed=42) for s in range(4800)]
    causal = [s for s, m in enumerate(modes) if m == CAUSAL]
    assert len(causal) == 300  # 1 in 16
    assert all(sum(m == CAUSAL for m in modes[a:a + 16]) == 1 for a in range(0, 4800 - 16))
    assert modes == [hybrid_mode(s, seed=42) for s in range(4800)]  # a pure function of (step, seed)
    assert modes != [hybrid_mode(s, seed=7) for s in range(4800)]  # the seed moves the phase
    for share in (0.0, 0.25, 0.5, 1.0, 1 / 3):
        got = sum(hybrid_mode(s, 3, share) == CAUSAL for s in range(999))
        assert math.floor(999 * share) <= got <= math.ceil(999 * share), share
    with pytest.raises(ValueError):
        hybrid_mode(0, 0, 1.5)
    assert mask_rate_at(0, 100) == pytest.approx(0.30)
    assert mask_rate_at(50, 100) == pytest.approx(0.225)
    assert mask_rate_at(100, 100) == mask_rate_at(500, 100) == pytest.approx(0.15)


def test_hybrid_training_lowers_both_losses(tok):
    """A tiny model on the synthetic sentences: both objectives fall when trained together."""
    vocab = len(tok)
    model = models.build_model("gpt-bert", models.resolve_shape("tiny", hidden=32, heads=2, positions=64,
                                                                arch="gpt-bert"), tok, seed=0).train()
    module = loss_module(model, "hybrid")
    text = " ".join(sentences(200))
    ids = torch.tensor(tok(text, add_special_tokens=False)["input_ids"][: 16 * 24]).view(16, 24)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)

    def evaluate():
        with torch.no_grad():
            model.eval()
            out = {}
            for mode in (CAUSAL, MNTP):
                x, y = (ids, ids) if mode == CAUSAL else mask_tokens(ids, torch.Generator().manual_seed(1), vocab,
                                                                     tok.mask_token_id, [0, 1, 2, 3, 4], 0.15)
                out[mode] = module(x, y, mode).item() / count_predicted(y)
            model.train()
            return out

    before = evaluate()
    for step in range(60):
        mode = hybrid_mode(step, seed=0, causal_share=0.25)
        x, y = (ids, ids) if mode == CAUSAL else mask_tokens(ids, gen, vocab, tok.mask_token_id, [0, 1, 2, 3, 4],
                                                             mask_rate_at(step, 60))
        loss = module(x, y, mode) / count_predicted(y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = evaluate()
    assert after[CAUSAL] < 0.6 * before[CAUSAL] and after[MNTP] < 0.7 * before[MNTP], (before, after)


# --------------------------------------------------------------------------- scoring


TEXTS = ["The cats with the dog see themselves.", "A dog sees the cats.", "Those girls like their ball."]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny trained-shape GPT-BERT saved with a masked-style tokenizer (<s> ... </s>)."""
    from babylm.tokenizer import train_tokenizer_from_texts

    folder = tmp_path_factory.mktemp("gptbert") / "model"
    tk = train_tokenizer_from_texts(iter(TEXTS * 30), vocab_size=300, min_frequency=1, target="masked", add_eos=True)
    model = models.build_model("gpt-bert", models.resolve_shape("tiny", hidden=32, heads=2, positions=64,
                                                                arch="gpt-bert"), tk, seed=5).eval()
    _perturb(model, 5)
    checkpoint.save_model(folder, model, tk, {"run_config.json": {}})
    return folder, model, tk


def _brute_scores(model, tk, items, backend):
    """One sentence at a time: tokenise with the tokenizer's specials, score tokens ending after the context."""
    out = []
    for context, completion in items:
        enc = tk(context + completion, return_offsets_mapping=True, return_special_tokens_mask=True)
        ids = enc["input_ids"]
        total = 0.0
        for p, ((_, end), special) in enumerate(zip(enc["offset_mapping"], enc["special_tokens_mask"])):
            if special or end <= len(context) or p == 0:
                continue
            x = list(ids)
            if backend == "mntp":
                x[p] = tk.mask_token_id
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([x])).logits[0, p - 1].double()  # token p is read at p-1
            total += float(torch.log_softmax(logits, dim=-1)[ids[p]])
        out.append(total)
    return out


def test_scores_match_one_sentence_references(saved):
    from babylm.challenge import default_backend
    from eval_export.loading import load_model
    from eval_export.scoring import ScoringOptions, sentence_scores

    folder, model, tk = saved
    items = [("", t) for t in TEXTS] + [("The cats", " see the dog."), ("", "Dog the see cats.")]
    loaded = {}
    for backend in (None, "causal"):
        lm = load_model(str(folder), backend=backend)  # trust_remote_code off: the kit's own classes
        assert type(lm.model).__module__ == "babylm.gpt_bert"
        loaded[lm.backend] = lm.model
    assert set(loaded) == {"mntp", "causal"} and default_backend(loaded["mntp"].config) == "mntp"
    assert type(loaded["causal"]).__name__ == "GPTBertForCausalLM"
    for backend, lm in loaded.items():
        got = sentence_scores(lm, tk, items, backend, ScoringOptions(token_budget=40))
        want = _brute_scores(lm, tk, items, backend)
        assert want[0] != want[3]
        assert got == pytest.approx(want, rel=1e-5, abs=1e-4), backend
    # The two backends read the same weights differently.
    assert sentence_scores(loaded["mntp"], tk, items[:1], "mntp")[0] != pytest.approx(
        sentence_scores(loaded["causal"], tk, items[:1], "causal")[0], abs=1e-3)


def test_resume_weights_and_finetune_backbone(saved):
    """Resume loading keeps the head tied; fine-tuning gets the bidirectional body through AutoModel."""
    from eval_export import classifier as clf

    folder, model, tk = saved
    fresh = models.build_model("gpt-bert", models.resolve_shape("tiny", hidden=32, heads=2, positions=64,
                                                                arch="gpt-bert"), tk, seed=9)
    checkpoint.load_weights(fresh, folder)
    assert fresh.head.decoder.weight is fresh.model.embedding.word.weight
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))

    backbone = clf.load_backbone(str(folder), "main", "right", 512)
    assert not backbone.decoder and backbone.max_length == 512  # first-token pooling, official input length
    classifier = clf.build_classifier(backbone, 2, "official", "auto", 0.1, official=False).eval()
    assert type(classifier.backbone).__name__ == "GPTBertModel"
    enc = tk(TEXTS[:2], padding=True, return_tensors="pt")
    batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    with torch.no_grad():
        want = model.model(enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state[:, 0]
        torch.testing.assert_close(classifier.pooled(batch), want, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- loading elsewhere


_LOAD = """
import json, sys, torch, transformers
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM
folder, ids = sys.argv[1], torch.tensor(json.loads(sys.argv[2]))
try:  # without trust_remote_code the Auto classes must refuse the checkpoint's code
    AutoModelForMaskedLM.from_pretrained(folder)
    print("loaded without trust_remote_code")
except Exception:
    pass
out = {"version": transformers.__version__}
with torch.no_grad():
    for name, auto in (("mntp", AutoModelForMaskedLM), ("causal", AutoModelForCausalLM), ("base", AutoModel)):
        m = auto.from_pretrained(folder, trust_remote_code=True).eval()
        out[name + "_class"] = type(m).__name__
        if name != "base":
            out[name + "_tied"] = m.head.decoder.weight is m.model.embedding.word.weight
        res = m(input_ids=ids, attention_mask=torch.ones_like(ids))
        out[name] = (res.logits if name != "base" else res.last_hidden_state).tolist()
assert "babylm" not in sys.modules, "loaded the kit instead of the saved code file"
print()  # a refused load leaves its prompt on stdout without a line end
print("RESULT", json.dumps(out))
"""


def _fresh_load(folder, ids, env):
    res = subprocess.run([sys.executable, "-c", _LOAD, str(folder), json.dumps(ids.tolist())], cwd=folder.parent,
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "loaded without trust_remote_code" not in res.stdout
    return json.loads(res.stdout.split("\nRESULT ", 1)[1])


def _expected(model, ids):
    causal = _causal_twin(model)
    with torch.no_grad():
        return {"mntp": model(ids).logits, "causal": causal(ids).logits, "base": model.model(ids).last_hidden_state}


@pytest.mark.slow
@pytest.mark.parametrize("versions", ["current", "official"])
def test_checkpoint_loads_with_its_own_code(saved, versions, request):
    folder, model, tk = saved
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model_type"] == "babylm-gpt-bert" and (folder / "gpt_bert.py").is_file()
    assert set(cfg["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoModelForMaskedLM"}
    ids = tk(TEXTS[0], return_tensors="pt")["input_ids"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if versions == "official":
        from tests.test_official_versions import OFFICIAL

        env = official_env.environ(request.getfixturevalue("official_site"), base=env)
    got = _fresh_load(folder, ids, env)
    if versions == "official":
        assert got["version"] == OFFICIAL["transformers"]
    assert (got["mntp_class"], got["causal_class"], got["base_class"]) == (
        "GPTBertForMaskedLM", "GPTBertForCausalLM", "GPTBertModel")
    assert got["mntp_tied"] and got["causal_tied"]
    for name, want in _expected(model, ids).items():
        torch.testing.assert_close(torch.tensor(got[name]), want, rtol=0, atol=1e-5, msg=f"{versions}: {name}")
