"""Scoring core: batched, length-sorted, head-only scores equal a one-sentence, one-mask-at-a-time
brute-force reference (and the model's own ``labels=`` loss) on tiny seeded models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from babylm.tokenizer import make_legacy_readable
from eval_export import scoring
from tests import export_models as em
from tests import official_pipeline as op

pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


@pytest.fixture(scope="module")
def items(shared):
    """Whole-sentence items (BLiMP, incl. a supplement dialogue with a newline) and context items."""
    out = []
    for name in ("adjunct_island", "determiner_noun_agreement_1", "principle_A_case_1"):
        with open(shared / "data/eval/blimp_fast" / f"{name}.jsonl") as fh:
            for _, line in zip(range(2), fh):
                row = json.loads(line)
                out += [("", row["sentence_good"]), ("", row["sentence_bad"])]
    with open(shared / "data/eval/supplement_fast/turn_taking.jsonl") as fh:
        row = json.loads(fh.readline())
        out += [("", row["sentence_good"]), ("", row["sentence_bad"])]
    out += [("Box 0 contains the hat. Box 0 contains ", "the hat."), ("Box 0 contains the hat. Box 0 contains ", "nothing."),
            ("The cup is on the table.", " The cup is up."), ("The cup is on the table.", " The cup is down."),
            ("", "Who will Karen flee from after appreciating Holly?")]  # a duplicate of a BLiMP sentence
    return out


@pytest.fixture(scope="module")
def built(lines):
    return {kind: em.build(kind, lines, seed=3) for kind in em.KINDS}


def brute_force(model, req: scoring.Request, backend: str, variant: str = "original") -> float:
    """One sentence, one masked copy per forward, full-vocabulary logits, float32 log-softmax."""
    total = 0.0
    targets = req.targets or [req.ids[p] for p in req.scored]
    with torch.no_grad():
        if backend == "causal":
            logp = torch.log_softmax(model(torch.tensor([req.ids])).logits[0].float(), -1)
            return float(sum(logp[p - 1, t] for p, t in zip(req.scored, targets) if p > 0))
        for p, t in zip(req.scored, targets):
            ids = list(req.ids)
            hide = [p]
            if variant == "within_word_l2r" and req.words[p] is not None:
                hide += [q for q in range(p + 1, len(ids)) if req.words[q] == req.words[p]]
            for q in hide:
                ids[q] = MASK[0]
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
            read = p - 1 if backend == "mntp" else p
            total += float(logp[read, t])
    return total


MASK = [None]  # the mask id of the tokenizer under test (set per test)


def test_invert_permutation_restores_order():
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 100):
        lengths = rng.integers(1, 20, size=n)
        perm = scoring.length_order(lengths)
        assert list(lengths[perm]) == sorted(lengths, reverse=True)
        inv = scoring.invert_permutation(perm)
        assert np.array_equal(lengths[perm][inv], lengths)
        assert np.array_equal(perm[inv], np.arange(n))
    # equal lengths keep their original order (deterministic tie-break)
    assert list(scoring.length_order([3, 5, 3, 5, 3])) == [1, 3, 0, 2, 4]


def test_pack_batches_respects_budget():
    lengths = [10, 9, 9, 5, 5, 5, 2, 1]
    batches = scoring.pack_batches(lengths, 20)
    assert batches[0] == (0, 2) and batches[-1][1] == len(lengths)
    assert all(lengths[a] * (b - a) <= 20 for a, b in batches)
    assert scoring.pack_batches([50, 3], 20) == [(0, 1), (1, 2)]  # a row over budget gets its own batch
    # equal-length packing: one length per batch (no padding), budget kept, all rows covered in order
    lengths = [9, 9, 9, 7, 7, 4, 4, 4, 4, 4, 1]
    batches = scoring.pack_equal_batches(lengths, 20)
    assert [i for a, b in batches for i in range(a, b)] == list(range(len(lengths)))
    assert all(len(set(lengths[a:b])) == 1 and (b - a == 1 or lengths[a] * (b - a) <= 20) for a, b in batches)
    assert batches == [(0, 2), (2, 3), (3, 5), (5, 10), (10, 11)]


CASES = [("gpt2", "causal", "original", rule) for rule in ("2023", "2024", "2025")] + \
        [("llama", "causal", "original", rule) for rule in ("2024", "2025")] + \
        [(kind, "mlm", variant, "2025") for kind in ("bert", "roberta", "deberta") for variant in scoring.PLL_VARIANTS] + \
        [("bert", "mntp", "original", "2025"), ("roberta", "mntp", "within_word_l2r", "2025"), ("roberta", "mlm", "original", "2024"),
         ("bert", "mlm", "original", "2023")]


@pytest.mark.parametrize("kind,backend,variant,rule", CASES)
def test_batched_equals_brute_force(built, items, kind, backend, variant, rule):
    model, tok = built[kind]
    MASK[0] = tok.mask_token_id
    if backend != "causal":  # BERT and RoBERTa take the last-layer shortcut, DeBERTa the plain split
        assert scoring._EncoderShortcut(scoring._SplitModel(model)).ok == (kind in ("bert", "roberta"))
    reqs = scoring.build_requests(tok, items, backend, rule)
    got = scoring.score_requests(model, reqs, backend, scoring.ScoringOptions(pll_variant=variant, token_budget=64),
                                 pad_id=scoring.pad_id_of(tok), mask_id=tok.mask_token_id)
    want = np.array([brute_force(model, r, backend, variant) for r in reqs])
    np.testing.assert_allclose(got.logprob, want, rtol=0, atol=1e-5 * np.maximum(1, np.abs(want)).max())
    assert np.all(got.logprob < 0)
    # the batch budget must not change anything
    again = scoring.score_requests(model, reqs, backend, scoring.ScoringOptions(pll_variant=variant, token_budget=4096),
                                   pad_id=scoring.pad_id_of(tok), mask_id=tok.mask_token_id)
    np.testing.assert_allclose(again.logprob, got.logprob, atol=1e-5)
    np.testing.assert_allclose(got.reduce("mean"), got.logprob / got.n_tokens)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_causal_equals_model_loss(built, items, kind):
    model, tok = built[kind]
    reqs = scoring.build_requests(tok, items, "causal", "2025")
    got = scoring.score_requests(model, reqs, "causal", pad_id=scoring.pad_id_of(tok))
    for r, lp, n in zip(reqs, got.logprob, got.n_tokens):
        labels = torch.full((1, len(r.ids)), -100)
        labels[0, list(r.scored)] = torch.tensor([r.ids[p] for p in r.scored])
        with torch.no_grad():
            loss = model(torch.tensor([r.ids]), labels=labels).loss
        assert n == len([p for p in r.scored if p > 0])
        assert abs(-float(loss) * n - lp) < 1e-4


def test_official_span_rule_with_and_without_bos(built):
    sentence = "Who will Karen flee from after appreciating Holly?"
    gpt2_tok, llama_tok = built["gpt2"][1], built["llama"][1]
    # GPT-2 style (no BOS): the first token has nothing before it and is not scored (2025 rule).
    (r,) = scoring.build_requests(gpt2_tok, [("", sentence)], "causal", "2025")
    n = len(gpt2_tok(sentence)["input_ids"])
    assert r.ids[0] != gpt2_tok.bos_token_id and r.scored == tuple(range(1, n))
    # Llama style (BOS added by the tokenizer): every word token is scored, BOS never.
    (r,) = scoring.build_requests(llama_tok, [("", sentence)], "causal", "2025")
    assert r.ids[0] == llama_tok.bos_token_id and r.scored == tuple(range(1, len(r.ids)))
    assert len(r.scored) == n
    # 2024 rule: a prefix token (BOS) + " " + sentence without special tokens, all scored.
    (r,) = scoring.build_requests(gpt2_tok, [("", sentence)], "causal", "2024")
    assert r.ids[0] == gpt2_tok.bos_token_id
    assert list(r.ids[1:]) == gpt2_tok(" " + sentence, add_special_tokens=False)["input_ids"]
    (r,) = scoring.build_requests(gpt2_tok, [("", sentence)], "causal", "2023")
    assert r.ids[0] == gpt2_tok.eos_token_id and r.scored == tuple(range(1, len(r.ids)))
    # Context: only tokens ending after the context's last character are scored.
    context, completion = "The cup is on the table.", " The cup is up."
    for tok in (gpt2_tok, llama_tok, built["bert"][1]):
        backend = "mlm" if tok.mask_token_id is not None and tok.cls_token_id is not None else "causal"
        (r,) = scoring.build_requests(tok, [(context, completion)], backend, "2025")
        enc = tok(context + completion, return_offsets_mapping=True)
        assert all(enc["offset_mapping"][p][1] > len(context) for p in r.scored)
        assert tok.decode([r.ids[p] for p in r.scored]).replace(" ", "").lower() == completion.replace(" ", "").lower()
    # BERT: CLS and SEP are never scored
    (r,) = scoring.build_requests(built["bert"][1], [("", sentence)], "mlm", "2025")
    assert 0 not in r.scored and len(r.ids) - 1 not in r.scored


def test_bf16_model_scores_in_float32(built, items):
    model, tok = em.build("gpt2", [s for _, s in items], seed=3)
    reqs = scoring.build_requests(tok, items[:6], "causal", "2025")
    fp32 = scoring.score_requests(model, reqs, "causal").logprob
    bf16 = scoring.score_requests(model.to(torch.bfloat16), reqs, "causal").logprob
    assert bf16.dtype == np.float64 and np.all(np.isfinite(bf16))
    np.testing.assert_allclose(bf16, fp32, rtol=0.05, atol=0.5)


def test_empty_sentence_is_rejected(built):
    from babylm.errors import InputError

    with pytest.raises(InputError, match="empty sentence"):
        scoring.build_requests(built["gpt2"][1], [("", "  ")], "causal", "2025")


def test_models_without_a_single_head_fall_back_to_full_logits(lines, items):
    """DistilBERT's head is four modules: the split is refused and the full forward is used."""
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    tok = em.wordpiece(lines)
    torch.manual_seed(0)
    model = DistilBertForMaskedLM(DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                                   max_position_embeddings=1024)).eval()
    assert not scoring._SplitModel(model).split
    MASK[0] = tok.mask_token_id
    reqs = scoring.build_requests(tok, items[:6], "mlm", "2025")
    got = scoring.score_requests(model, reqs, "mlm", scoring.ScoringOptions(token_budget=64), mask_id=tok.mask_token_id)
    np.testing.assert_allclose(got.logprob, [brute_force(model, r, "mlm") for r in reqs], atol=1e-4)


def official_surprisal(model, tok, context: str, word: str, backend: str, token_types: bool) -> float:
    """The official reading recipe written out plainly: one forward per piece on the re-tokenised
    text, softmax over the full vocabulary, probabilities multiplied (strict/evaluation_pipeline/reading/
    evaluation_functions.py). The model gets everything the tokenizer returns (``model(**enc)``), token
    types included when ``token_types``: these tokenizers name no inputs, and under the official
    transformers 4.51 such a tokenizer returns them."""
    def p_next(text: str, piece_text: str) -> float:
        if backend == "causal":
            enc, at = tok(text, return_tensors="pt", return_token_type_ids=token_types), -1
        else:
            enc = tok(text + tok.mask_token * 3, return_tensors="pt", return_token_type_ids=token_types)
            at = -3 if int(enc["input_ids"][0, -1]) == tok.mask_token_id else -4
            at -= backend == "mntp"
        with torch.no_grad():
            logits = model(**enc).logits[0, at].float()
        target = tok(piece_text, add_special_tokens=False)["input_ids"][0]
        return float(torch.softmax(logits, -1)[target])

    pieces = tok(word, add_special_tokens=False)["input_ids"]
    p = p_next(context, word)
    text = context + tok.decode(pieces[0])
    for piece in pieces[1:]:
        piece_text = tok.decode(piece)
        p *= p_next(text, piece_text)
        text += piece_text
    return -float(np.log(p))


@pytest.mark.parametrize("mode", ["official", "drop"])
@pytest.mark.parametrize("kind,backend", [("gpt2", "causal"), ("llama", "causal"), ("bert", "mlm"), ("roberta", "mntp")])
def test_reading_surprisal_equals_official_recipe(built, shared, kind, backend, mode, tmp_path):
    """Our packed reading scorer equals the official recipe. With $BABYLM_OFFICIAL set (a checkout of
    the official code), the reference of the default mode is the official reading run itself, in
    the official-versions environment; otherwise the brute-force recipe above."""
    import os

    from eval_export import tasks, zero_shot

    model, tok = built[kind]
    source = shared / "data/eval/reading/reading_data.csv"
    rows = tasks.reading_rows(source)

    def retokenised(r) -> bool:  # several pieces, and the official steps differ from teacher forcing
        pieces, ctx = tok(r.word, add_special_tokens=False)["input_ids"], tok(r.item)["input_ids"]
        steps = zero_shot.reading_steps(tok, r.item, r.word)
        return len(pieces) > 1 and any(tok(text)["input_ids"] != ctx + pieces[:k] or target != pieces[k]
                                       for k, (text, target) in enumerate(steps))

    multi = [r for r in rows if retokenised(r)][:3]
    pick = rows[:2] + multi + [r for r in rows if r.index == 971]  # 971: no previous word (pandas NA)
    official_run = mode == "official" and os.environ.get(op.ENV)
    if official_run:  # the official run needs enough rows for its regressions
        csv_path = tmp_path / "reading_data.csv"
        kept = op.write_reading_csv(source, csv_path, [r.index for r in pick])
        pick = tasks.reading_rows(csv_path)
        assert [r.index for r in pick] == kept
    data = tasks.TaskData("reading", "reading", "", "reading", "x", rows=pick)
    opts = zero_shot.ScoringOptions(token_budget=64, reading_token_types=mode)
    result = zero_shot.score_task(model, tok, backend, data, opts)
    if official_run:
        folder = em.save(model, tok, tmp_path / kind)
        make_legacy_readable(folder)  # a transformers 5 folder, readable by 4.51; names no inputs, like tok
        got = op.reading(op.strict_dir(), folder, backend, csv_path, tmp_path)
        want, want_prev = [g[0] for g in got], [g[1] for g in got]
    else:
        types = mode == "official"
        want = [official_surprisal(model, tok, r.item, r.word, backend, types) for r in pick]
        want_prev = [official_surprisal(model, tok, r.prev_item, r.prev_word, backend, types) if r.prev_item
                     else np.nan for r in pick]
    np.testing.assert_allclose(result.surprisal, want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(result.prev_surprisal, want_prev, rtol=1e-5, atol=1e-4)
    assert np.isnan(result.prev_surprisal[[r.index for r in pick].index(971)]) and len(multi) == 3
    if kind == "gpt2":  # the trap is real: GPT-2 adds wte(token_type_ids) to every position
        other = zero_shot.score_task(model, tok, backend, data, zero_shot.ScoringOptions(
            token_budget=64, reading_token_types="drop" if mode == "official" else "official"))
        assert np.abs(np.asarray(other.surprisal) - result.surprisal).max() > 1e-3
