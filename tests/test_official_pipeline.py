"""The kit's scores equal the official pipeline's own code, run on the same model folders and files.

Needs $BABYLM_OFFICIAL, a checkout of babylm-org/babylm-eval (skipped otherwise; CI does not set
it). The official modules run unchanged in the cached official-versions environment (transformers
4.51.3, see ``tests/official_pipeline.py``); the kit scores in this process with transformers 5.
Reading: every surprisal within 1e-4 nats. Minimal pairs: the same chosen candidate for every
item that neither side sees tied (by the 2026 rules both break ties at random; the counts are
reported), and per-candidate scores within 1e-4 (float32 sums in another order). The kit scores by
the rules of the checkout's revision (3d57ddc: 2026, 45fe2c1: 2025).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from babylm import checkpoint, models
from babylm.tokenizer import make_legacy_readable, train_tokenizer_from_texts
from bench.official_bench import NEAR_TIE, build_tree
from eval_export import tasks, zero_shot
from eval_export.loading import load_model
from tests import export_models as em
from tests import official_pipeline as op


@pytest.fixture(scope="module")
def strict():
    return op.strict_dir()


@pytest.fixture(scope="module")
def folders(shared, strict, tmp_path_factory):
    """name -> (model folder, backend): kit checkpoints (causal and masked) and a foreign GPT-2 whose
    tokenizer names no inputs (so transformers 4.51 hands it token types)."""
    em.one_thread()
    root = tmp_path_factory.mktemp("official_models")
    lines = em.corpus_lines(shared)
    out = {}
    for arch, target, backend in (("gpt2", "causal", "causal"), ("roberta", "masked", "mlm"),
                                  ("gpt-bert", "masked", "mntp")):
        tok = train_tokenizer_from_texts(iter(lines * 3), vocab_size=600, min_frequency=1, target=target,
                                         add_eos=target == "masked")
        model = models.build_model(arch, models.resolve_shape("tiny", hidden=32, positions=512), tok, seed=5).eval()
        out[f"kit_{arch}"] = (checkpoint.save_model(root / f"kit_{arch}", model, tok, {"run_config.json": {}}), backend)
    model, tok = em.build("gpt2", lines, seed=3)
    folder = em.save(model, tok, root / "foreign_gpt2")
    make_legacy_readable(folder)  # readable by 4.51; names no inputs, as many hub tokenizers do not
    out["foreign_gpt2"] = (folder, "causal")
    model, tok = em.build("bert", lines, seed=3)
    folder = em.save(model, tok, root / "foreign_bert")
    make_legacy_readable(folder)
    out["foreign_bert"] = (folder, "mntp")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kit_gpt2", "foreign_gpt2", "kit_roberta", "foreign_bert"])
def test_reading_equals_official(folders, strict, shared, tmp_path, name):
    folder, backend = folders[name]
    csv_path = tmp_path / "reading_data.csv"
    kept = op.write_reading_csv(shared / "data/eval/reading/reading_data.csv", csv_path, [971])
    theirs = op.reading(strict, folder, backend, csv_path, tmp_path)
    loaded = load_model(str(folder), backend=backend)
    rows = tasks.reading_rows(csv_path)
    assert [r.index for r in rows] == kept and len(theirs) == len(rows)
    data = tasks.TaskData("reading", "reading", "", "reading", str(csv_path), rows=rows)
    ours = zero_shot.score_task(loaded.model, loaded.tokenizer, backend, data, zero_shot.ScoringOptions())
    bad = [(r.index, t, (s, p)) for r, t, s, p in zip(rows, theirs, ours.surprisal, ours.prev_surprisal)
           if not (op.nan_equal_close(t[0], s, 1e-4) and op.nan_equal_close(t[1], p, 1e-4))]
    assert not bad, f"{name}: {len(bad)} of {len(rows)} rows differ, e.g. {bad[:3]}"
    assert math.isnan(ours.prev_surprisal[kept.index(971)])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kit_gpt2", "kit_roberta", "kit_gpt-bert", "foreign_bert"])
def test_minimal_pairs_equal_official(folders, strict, shared, tmp_path, name):
    folder, backend = folders[name]
    year = op.rules(strict)
    password = op.ewok_password(strict)
    wanted = [t for t in ("blimp", "blimp_supplement", "ewok", "entity_tracking", "wug_adj")
              if t in tasks.YEAR_TASKS[year] and (t != "ewok" or password)]
    tree = tmp_path / "evaluation_data" / "fast_eval"
    names = build_tree(tree, wanted, "fast", shared / "data" / "eval", limit=4, password=password, year=year)
    assert names == wanted
    loaded = load_model(str(folder), backend=backend)
    for task_name in names:
        task, data_dir = tasks.DATA_DIRS[(task_name, "fast")]
        theirs, their_scores = op.minimal_pairs(strict, folder, backend, task, tree / data_dir, tmp_path)
        data = tasks.load_task(task_name, "fast", tree, limit=4, year=year)
        result = zero_shot.score_task(loaded.model, loaded.tokenizer, backend, data, zero_shot.ScoringOptions(year=year))
        seen: dict[str, int] = {}
        differ, near, worst, ties = [], [], 0.0, [0, 0]
        for item, chosen, scores, tie in zip(data.items, result.chosen, result.scores, result.ties):
            key = f"{item.uid}_{seen.get(item.uid, 0)}"
            seen[item.uid] = seen.get(item.uid, 0) + 1
            official = [-math.inf if math.isnan(s) else s for s in their_scores[key]]
            their_tie = official.count(max(official)) > 1
            ties[0] += their_tie
            ties[1] += tie
            if theirs[key]["pred"] != item.preds[chosen] and not (their_tie or tie):
                i = item.preds.index(theirs[key]["pred"])
                # both sides within float32 summation noise of each other's choice: a near tie, decided either way
                close = official[i] - official[chosen] <= NEAR_TIE and scores[chosen] - scores[i] <= NEAR_TIE
                (near if close else differ).append(key)
            worst = max(worst, float(np.abs(np.asarray(their_scores[key]) - scores).max()))
        assert len(theirs) == len(data.items) > 0, task_name
        print(f"{name} {task_name}: {len(data.items)} items, ties official/kit {ties[0]}/{ties[1]}, "
              f"near ties decided otherwise {len(near)}, max |score diff| {worst:.1e}")
        assert not differ, f"{name} {task_name}: {len(differ)} of {len(theirs)} untied predictions differ: {differ[:5]}"
        assert worst <= 1e-4, f"{name} {task_name}: max |score difference| {worst:.2e}"


def test_bench_tree_holds_what_the_kit_limit_keeps(shared, tmp_path):
    """The official-layout tree the bench builds with --limit N holds exactly the items the kit's own
    --limit N keeps from the original files, so both sides score the same items (no checkout needed)."""
    from bench.official_bench import READING_MIN_ROWS

    root = shared / "data" / "eval"
    for year in ("2025", "2026"):
        names = [t for t in ("blimp", "blimp_supplement", "entity_tracking", "wug_adj", "reading")
                 if t in tasks.YEAR_TASKS[year]]
        tree = tmp_path / year / "fast_eval"
        assert build_tree(tree, names, "fast", root, limit=3, password=None, year=year) == names
        assert sorted(p.name for p in tree.iterdir()) == sorted(
            ["blimp_fast", "entity_tracking_fast", "reading", "supplement_fast"] +
            (["wug_adj_nominalization"] if year == "2025" else []))
        for name in names[:-1]:
            cut = tasks.load_task(name, "fast", tree, limit=3, year=year)
            original = tasks.load_task(name, "fast", root, limit=3, year=year)
            assert [(i.uid, i.candidates) for i in cut.items] == [(i.uid, i.candidates) for i in original.items]
            assert max(cut.uid_counts().values()) == 3 and len(cut.items) >= 3
    rows = tasks.load_task("reading", "fast", tmp_path / "2026" / "fast_eval", limit=10**6).rows
    assert [r.index for r in rows] == list(range(READING_MIN_ROWS))
