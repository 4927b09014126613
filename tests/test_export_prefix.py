"""Shared prefixes in causal scoring: the prefix-tree layout on a hand-made example, and scores,
token counts and predictions equal to the plain path for every causal architecture the kit builds,
every BOS rule, BLiMP pairs, entity-tracking items (5 options, several items of one story) and
EWoK-format items, including requests cut to a window and strings that fill the position table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from babylm.errors import InputError
from babylm.models import build_model, resolve_shape
from eval_export import scoring, tasks, zero_shot
from tests import export_models as em

pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


def ewok_format_items() -> list[tasks.Item]:
    """EWoK-format rows written for this test (EWoK itself ships encrypted): each row twice, as is
    and with contexts and targets swapped, as the official builder writes them."""
    rows = []
    for a, b, left, right in (("piano", "Ali", "left", "right"), ("cup", "Chen", "up", "down"),
                              ("ball", "Sam", "in front of", "behind")):
        c1 = f"The {a} is next to {b}. {b} turns {left}."
        c2 = f"The {a} is next to {b}. {b} turns {right}."
        t1, t2 = f"The {a} is {right} of {b}.", f"The {a} is {left} of {b}."
        for ctx1, ctx2, tg1, tg2 in ((c1, c2, t1, t2), (c2, c1, t2, t1)):
            rows.append({"Domain": "spatial-relations", "ConceptA": a, "ConceptB": b, "ContextType": "t",
                         "ContextDiff": "d", "TargetDiff": "d", "Context1": ctx1, "Context2": ctx2,
                         "Target1": tg1, "Target2": tg2})
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return tasks.ewok_items([("spatial-relations.jsonl", data)])


def story_items(root, n: int = 3) -> list[tasks.Item]:
    """``n`` entity-tracking items of one story (one sample_id, growing numbers of operations): their
    contexts extend each other, so they share prefixes across items too."""
    rows = [json.loads(x) for x in (root / "entity_tracking" / "regular.jsonl").read_text().splitlines()]
    sample = rows[0]["sample_id"]
    mine = [r for r in rows if r["sample_id"] == sample][:n]
    return [tasks.Item("regular", [(r["input_prefix"], o) for o in r["options"]], r["options"]) for r in mine]


@pytest.fixture(scope="module")
def groups(root):
    """name -> items: BLiMP pairs (one with a newline), entity tracking, EWoK format."""
    blimp = tasks.load_task("blimp", "fast", root, limit=2).items[:12]
    blimp += tasks.load_task("blimp_supplement", "fast", root, limit=1).items
    return {"blimp": blimp, "entity_tracking": story_items(root) + tasks.load_task("entity_tracking", "fast", root, limit=1).items[:2],
            "ewok": ewok_format_items()}


def causal_models(lines):
    """Every causal architecture the kit builds (stock GPT-2 with SDPA and eager attention, Llama, and
    both bodies with the kit's own head), seeded, 2 layers."""
    gpt2_tok, llama_tok = em.byte_bpe(lines, bos=False), em.byte_bpe(lines, bos=True)
    shape = resolve_shape("tiny", hidden=32, layers=2, heads=2, positions=1024)
    eager, _ = em.build("gpt2", lines, seed=5)
    eager.config._attn_implementation = "eager"
    return {"gpt2": (build_model("gpt2", shape, gpt2_tok, seed=1).eval(), gpt2_tok),
            "gpt2_eager": (eager, gpt2_tok),
            "llama": (build_model("llama", shape, llama_tok, seed=2).eval(), llama_tok),
            "gpt2_custom_head": (build_model("gpt2", shape, gpt2_tok, custom_head=True, seed=3).eval(), gpt2_tok),
            "llama_custom_head": (build_model("llama", shape, llama_tok, custom_head=True, seed=4).eval(), llama_tok)}


@pytest.fixture(scope="module")
def models(lines):
    return causal_models(lines)


def test_forest_layout_by_hand():
    reqs = [scoring.Request((5, 6, 7, 8), (1, 2, 3)), scoring.Request((5, 6, 9), (1, 2)),
            scoring.Request((5, 7), (1,)), scoring.Request((4, 1, 2), (2,))]
    # inputs (ids up to the last scored position) sorted: (4, 1) (5,) (5, 6) (5, 6, 7)
    f = scoring.plant_forest(reqs, row_tokens=100)
    assert f.tokens.tolist() == [4, 1, 5, 6, 7] and f.depth.tolist() == [0, 1, 0, 1, 2]
    assert f.end.tolist() == [2, 2, 5, 5, 5] and f.row_starts.tolist() == [0, 5]
    # (node, target) read once each: node 2 ("5") predicts 6 for both (5, 6, ...) requests
    assert list(zip(f.read_node.tolist(), f.read_target.tolist())) == [(1, 2), (2, 6), (2, 7), (3, 7), (3, 9), (4, 8)]
    pairs = [(int(o), int(f.read_node[r]), int(f.read_target[r])) for o, r in zip(f.owner, f.read)]
    assert sorted(pairs) == sorted([(0, 2, 6), (0, 3, 7), (0, 4, 8), (1, 2, 6), (1, 3, 9), (2, 2, 7), (3, 1, 2)])
    assert f.n_tokens == 5 and f.plain_tokens == 4 + 3 + 2 + 3
    # rows of at most 3 nodes: (5, 6) starts a new row and repeats its shared "5" there
    f = scoring.plant_forest(reqs, row_tokens=3)
    assert f.tokens.tolist() == [4, 1, 5, 5, 6, 7] and f.depth.tolist() == [0, 1, 0, 0, 1, 2]
    assert f.end.tolist() == [2, 2, 3, 6, 6, 6] and f.row_starts.tolist() == [0, 3, 6]
    # a node sees itself and its ancestors only; padding (end = position + 1) sees only itself
    mask = scoring.tree_mask(torch.tensor([[2, 2, 5, 5, 5, 6]]))[0, 0]
    assert [torch.nonzero(row).flatten().tolist() for row in mask] == [[0], [0, 1], [2], [2, 3], [2, 3, 4], [5]]
    additive = scoring.tree_mask(torch.tensor([[2, 2, 5, 5, 5, 6]]), torch.float32)[0, 0]
    assert torch.equal(additive == 0, mask) and additive.min() == torch.finfo(torch.float32).min


def both_paths(model, tok, reqs, **kw):
    pad = scoring.pad_id_of(tok)
    plain = scoring.score_requests(model, reqs, "causal", scoring.ScoringOptions(prefix_sharing=False, **kw), pad_id=pad)
    shared = scoring.score_requests(model, reqs, "causal", scoring.ScoringOptions(**kw), pad_id=pad)
    return plain, shared


def chosen(items, logprob) -> list[int]:
    out, pos = [], 0
    for it in items:
        out.append(int(np.argmax(logprob[pos: pos + len(it.candidates)])))
        pos += len(it.candidates)
    return out


@pytest.mark.parametrize("kind", ["gpt2", "gpt2_eager", "llama", "gpt2_custom_head", "llama_custom_head"])
@pytest.mark.parametrize("rule", scoring.BOS_RULES)
def test_shared_prefixes_equal_plain_path(models, groups, kind, rule):
    model, tok = models[kind]
    for name, items in groups.items():
        reqs = scoring.build_requests(tok, [c for it in items for c in it.candidates], "causal", rule)
        plain, shared = both_paths(model, tok, reqs, token_budget=512)
        assert shared.shared_prefixes and not plain.shared_prefixes
        np.testing.assert_allclose(shared.logprob, plain.logprob, rtol=0, atol=1e-4, err_msg=f"{name} {rule}")
        assert np.array_equal(shared.n_tokens, plain.n_tokens)
        assert chosen(items, shared.logprob) == chosen(items, plain.logprob)
        assert plain.model_tokens == plain.plain_tokens == sum(len(r.ids) for r in set(reqs))
        assert shared.plain_tokens == plain.plain_tokens and shared.model_tokens < plain.model_tokens
    # one story's items share their opening: far fewer tokens than five options x three contexts
    reqs = scoring.build_requests(tok, [c for it in groups["entity_tracking"][:3] for c in it.candidates], "causal", rule)
    _, shared = both_paths(model, tok, reqs)
    assert shared.model_tokens < 0.3 * shared.plain_tokens


@pytest.mark.parametrize("chunk", [0, 3000])
def test_row_size_budget_and_head_chunks_do_not_change_scores(models, groups, monkeypatch, chunk):
    """Rows of several lengths per batch, and (chunk 3000) the head run on a few rows at a time, so
    that a node read for several targets and its neighbours fall in different chunks."""
    model, tok = models["llama"]
    items = groups["entity_tracking"] + groups["blimp"]
    reqs = scoring.build_requests(tok, [c for it in items for c in it.candidates], "causal", "2025")
    plain, _ = both_paths(model, tok, reqs)
    if chunk:
        monkeypatch.setattr(scoring, "_LOGIT_CHUNK", chunk)  # about 7 rows of the 400-token vocabulary
    for row_tokens, budget in ((16, 64), (300, 600), (5000, 5000)):
        got = scoring.score_requests(model, reqs, "causal", scoring.ScoringOptions(token_budget=budget, row_tokens=row_tokens),
                                     pad_id=scoring.pad_id_of(tok))
        np.testing.assert_allclose(got.logprob, plain.logprob, rtol=0, atol=1e-4)


def test_windowed_requests_and_the_position_limit(lines, groups, models):
    """Requests cut to a window from the left (the context loses its opening, as a left-truncating
    scorer does) or the right (scored span cut short) score the same on both paths; a string that
    fills the model's position table exactly scores the same; one token more is refused before
    scoring, whichever path is chosen."""
    model, tok = models["gpt2"]
    reqs = scoring.build_requests(tok, [c for it in groups["entity_tracking"] for c in it.candidates], "causal", "2025")
    cut = []
    for r in reqs:
        k = len(r.ids) - 40  # left: keep the last 40 tokens and the scored positions among them
        cut.append(scoring.Request(r.ids[k:], tuple(p - k for p in r.scored if p >= k + 1)))
        cut.append(scoring.Request(r.ids[:-2], tuple(p for p in r.scored if p < len(r.ids) - 2) or (1,)))
    plain, shared = both_paths(model, tok, cut)
    np.testing.assert_allclose(shared.logprob, plain.logprob, rtol=0, atol=1e-4)
    assert np.array_equal(shared.n_tokens, plain.n_tokens) and shared.shared_prefixes
    longest = max(len(r.ids) for r in reqs)
    shape = resolve_shape("tiny", hidden=32, layers=2, heads=2, positions=longest)
    small = build_model("gpt2", shape, tok, seed=7).eval()
    plain, shared = both_paths(small, tok, reqs)
    np.testing.assert_allclose(shared.logprob, plain.logprob, rtol=0, atol=1e-4)
    data = tasks.TaskData("entity_tracking", "entity_tracking", "x", "ranking", "test", groups["entity_tracking"])
    zero_shot.check_lengths(small, reqs, data)
    too_small = build_model("gpt2", resolve_shape("tiny", hidden=32, layers=2, heads=2, positions=longest - 1), tok).eval()
    with pytest.raises(InputError, match=f"is {longest} tokens long, but the model takes at most {longest - 1}"):
        zero_shot.check_lengths(too_small, reqs, data)


def test_task_scores_and_token_counts(models, groups, root):
    """score_task on both paths: same scores, choices and ties; the token counts travel with the result."""
    model, tok = models["llama"]
    data = tasks.TaskData("entity_tracking", "entity_tracking", "x", "ranking", "test", groups["entity_tracking"])
    opts = zero_shot.ScoringOptions(token_budget=1024)
    shared = zero_shot.score_task(model, tok, "causal", data, opts)
    plain = zero_shot.score_task(model, tok, "causal", data, zero_shot.ScoringOptions(token_budget=1024, prefix_sharing=False))
    np.testing.assert_allclose(shared.scores, plain.scores, rtol=0, atol=1e-4)
    assert shared.chosen == plain.chosen and shared.ties == plain.ties
    assert 0 < shared.model_tokens < plain.model_tokens == plain.plain_tokens == shared.plain_tokens


def test_models_outside_the_list_use_the_plain_path(lines):
    """BLOOM measures attention distances by index in the row (ALiBi), which a tree row does not keep:
    it is scored on the plain path, and so is GPT-BERT; GPT-NeoX and OPT (listed) take the shared
    path exactly."""
    from transformers import BloomConfig, BloomForCausalLM, GPTNeoXConfig, GPTNeoXForCausalLM, OPTConfig, OPTForCausalLM

    tok = em.byte_bpe(lines, bos=True)
    torch.manual_seed(0)
    built = {"bloom": BloomForCausalLM(BloomConfig(vocab_size=len(tok), hidden_size=32, n_layer=2, n_head=2)),
             "gpt_neox": GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                                         num_attention_heads=2, intermediate_size=64)),
             "opt": OPTForCausalLM(OPTConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, ffn_dim=64,
                                             num_attention_heads=2, word_embed_proj_dim=32))}
    reqs = scoring.build_requests(tok, [("The cup is on the table.", " It is up."), ("The cup is on the table.", " It is down.")],
                                  "causal", "2025")
    for name, model in built.items():
        plain, shared = both_paths(model.eval(), tok, reqs)
        assert shared.shared_prefixes == (name != "bloom")
        np.testing.assert_allclose(shared.logprob, plain.logprob, rtol=0, atol=1e-4)
    # and the probe alone tells BLOOM apart
    assert not scoring._forest_agrees(scoring._SplitModel(built["bloom"]))
    # GPT-BERT's attention is relative (position buckets by index): scored causally, it takes the plain path
    gpt_bert = build_model("gpt-bert", resolve_shape("tiny", hidden=32, heads=2, positions=64, arch="gpt-bert"), tok).eval()
    plain, shared = both_paths(gpt_bert, tok, reqs)
    assert not shared.shared_prefixes and np.array_equal(shared.logprob, plain.logprob)
