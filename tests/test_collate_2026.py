"""The leaderboard file by the final 2026 rules (babylm-eval 3d57ddc) and, unchanged, by the 2025 rules.

Trees are written in the official layout from the gold files (tests/result_trees.py): each prediction
is right or wrong by a fixed rule, so every fast accuracy is known without the collator. With
$BABYLM_OFFICIAL set (a babylm-eval checkout at 3d57ddc), the official collator runs on the same trees
and must write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from babylm.challenge import milestones
from babylm.errors import InputError
from eval_export import collation, leaderboard, submission
from tests import result_trees as rt

# sha256 of the 2025 file that the kit wrote before the 2026 rules existed (commit 6e5feff), for the tree of
# rt.kit_tree_2025 over the reference data: `--year 2025` must keep writing exactly this file.
GOLDEN_2025 = "48632d48ce13c01d85cf389f20c73c0ec1c2b6e252392dcbfa1b84fd19111f17"


@pytest.fixture(scope="module")
def data(shared, tmp_path_factory):
    return rt.eval_data(shared, tmp_path_factory.mktemp("eval") / "evaluation_data")


def test_2025_rules_write_the_same_file_as_before(data, tmp_path):
    rt.kit_tree_2025(tmp_path / "results", data, "tiny", "causal", "strict-small")
    path, missing = submission.collate(tmp_path / "results", "tiny", "causal", "strict-small", year="2025")
    assert missing == [] and path.name == "all_full_preds_and_fast_scores_causal.json"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == GOLDEN_2025


def _expected_share(n_items: int, revision: int) -> float:
    return sum(not rt.wrong(i, revision) for i in range(n_items)) / n_items


def test_2026_file_keys_fast_metrics_and_missing_parts(data, tmp_path):
    results = tmp_path / "results"
    # two milestones scored, AoA surprisals cut short: everything else is missing or wrong
    rt.official_tree(results, data, "tiny", "causal", "strict-small", revisions=["chck_1M", "chck_20M"], aoa_rows=10)
    with pytest.raises(InputError, match=r"cannot collate tiny: \d+ missing or wrong part\(s\): aoa_surprisals: 10 surprisal "
                                         r"rows for chck_1M, the official set has 8005"):
        submission.collate(results, "tiny", "causal", "strict-small", eval_data=data)
    assert not list((results / "tiny").glob("*.json"))  # nothing written
    path, missing = submission.collate(results, "tiny", "causal", "strict-small", eval_data=data, allow_partial=True)
    assert path.name == "all_full_preds_and_fast_scores_causal_partial.json"
    assert len(missing) == 1 + 17 * len(collation.FAST_KEYS)
    text = path.read_text()
    obj = json.loads(text)
    assert text == json.dumps(obj)  # json.dump defaults, as the official collator
    assert list(obj) == list(collation.KEYS)  # entity_tracking_filtered, GlobalPIQA, aoa_surprisals; no WUG
    # a partial file keeps a full-eval part whose counts differ (the official collator writes null there)
    assert len(obj["aoa_surprisals"]["results"]) == 19 * 10 and obj["aoa"] == {"aoa": 0.123456789}
    main = results / "tiny" / "main" / "zero_shot" / "causal"
    assert obj["entity_tracking_filtered"] == json.loads((main / "entity_tracking/entity_tracking/predictions.json").read_text())
    assert sum(len(v["predictions"]) for v in obj["entity_tracking_filtered"].values()) == 6780
    assert list(obj["glue"]) == list(collation.GLUE_SIZES)
    fast = obj["fast_eval_results"]
    assert list(fast) == list(collation.FAST_KEYS) and {len(v) for v in fast.values()} == {19}
    at = {m: k for k, m in enumerate(milestones("strict-small"))}
    for name, n in (("chck_1M", 1), ("chck_20M", 11)):
        k = at[name]
        assert fast["blimp"][k]["adjunct_island"] == _expected_share(200, n)
        assert fast["blimp_supplement"][k] == {s: _expected_share(50, n) for s in collation.SUPPLEMENT_SIZES}
        # EWoK fast: the 3d57ddc collator compares whole sentences with Target1, so it is 0.0 for any model
        assert fast["ewok"][k] == {d: 0.0 for d in sorted(collation.EWOK_SIZES)}
        assert fast["entity_tracking_filtered"][k] == _entity_shares(data, n)
        assert fast["global_piqa_nonparallel"][k] == {"global_piqa_nonparallel": _expected_share(100, n)}
        spr, rt_gain = _reading_reference(data, results / "tiny" / name / "zero_shot/causal/reading/predictions.json")
        assert fast["reading"][k]["spr"] == pytest.approx(spr, rel=1e-9)
        assert fast["reading"][k]["rt"] == pytest.approx(rt_gain, rel=1e-9)
    assert fast["blimp"][at["chck_2M"]] is None and fast["reading"][at["chck_100M"]] is None  # not scored: null
    report = json.loads((results / "tiny" / "collate_missing_causal.json").read_text())
    assert report["file"] == path.name and report["missing"] == missing


def _entity_shares(data, revision: int) -> dict[str, float]:
    counts: dict[str, list[int]] = {}
    rows = [r for r in rt.rows(data / "fast_eval/entity_tracking_fast/regular.jsonl")
            if not any("nothing" in o for o in r["options"])]
    for i, r in enumerate(rows):
        right_total = counts.setdefault(f"regular_{r['numops']}_ops", [0, 0])
        right_total[0] += not rt.wrong(i, revision)
        right_total[1] += 1
    return {k: right / total for k, (right, total) in counts.items()}


def _reading_reference(data, predictions) -> tuple[float, float]:
    """The official regressions by plain least squares (numpy lstsq), for comparison within 1e-9."""
    cols = {k: v.copy() for k, v in leaderboard.reading_table(data / "fast_eval/reading/reading_data.csv").items()}
    preds = json.loads(predictions.read_text())["reading"]["predictions"]
    cols["pred"] = np.array([p["pred"] for p in preds], dtype=float)
    cols["prev_pred"] = np.array([p["prev_pred"] for p in preds], dtype=float)

    def r2(y_name, names):
        keep = np.all([~np.isnan(cols[n]) for n in (y_name, *names)], axis=0)
        main = [n for n in names if n != "pred"]
        X = np.column_stack([np.ones(keep.sum())] + [cols[n][keep] for n in names] +
                            [cols[a][keep] * cols[b][keep] for i, a in enumerate(main) for b in main[i + 1:]])
        y = cols[y_name][keep]
        resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
        return 1 - resid @ resid / ((y - y.mean()) ** 2).sum()

    def gain(y_name, names):
        base = r2(y_name, names)
        return (r2(y_name, (*names, "pred")) - base) / (1 - base)

    rt_gain = np.mean([gain(dv, leaderboard.RT_BASE) for dv in leaderboard.EYE_TRACKING])
    return gain("self_paced_reading_time", leaderboard.SPR_BASE), rt_gain


# ----------------------------------------------------------------------------- against the official collator


@pytest.fixture(scope="module")
def official_collate(tmp_path_factory):
    """Runs 3d57ddc's collate_preds.py (with --fast, as scripts/collate_preds.sh) on a results tree."""
    from tests import official_pipeline as op

    strict = op.strict_dir()

    def run(results, data, model, backend, track):
        op._run(strict, ["-m", "evaluation_pipeline.collate_preds", "--model_path_or_name", model, "--backend", backend,
                         "--fast", "--track", track, "--results_dir", str(results),
                         "--fast_eval_dir", str(data / "fast_eval")], cwd=tmp_path_factory.mktemp("official_cwd"))
        return (results / model / f"all_full_preds_and_fast_scores_{backend}.json").read_bytes()
    return run


@pytest.mark.slow
def test_official_collator_writes_the_same_file(official_collate, data, tmp_path):
    """A complete strict-small tree (19 milestones, 8,005 AoA rows each), then one with parts missing and
    wrong: the kit's file and the official one are the same bytes (EWoK fast 0.0 on both sides)."""
    results = tmp_path / "results"
    rt.official_tree(results, data, "tiny", "causal", "strict-small")
    kit, missing = submission.collate(results, "tiny", "causal", "strict-small", eval_data=data)
    ours = kit.read_bytes()
    kit.unlink()
    assert missing == [] and official_collate(results, data, "tiny", "causal", "strict-small") == ours
    # missing and wrong parts: the official file has null there, the kit's partial file too
    base = results / "tiny"
    shutil.rmtree(base / "main/finetune/mrpc")
    shutil.rmtree(base / "chck_5M/zero_shot/causal/reading")
    short = base / "chck_3M/zero_shot/causal/blimp/blimp_fast/predictions.json"
    obj = json.loads(short.read_text())
    obj["adjunct_island"]["predictions"].pop()
    short.write_text(json.dumps(obj))
    (base / "main/zero_shot/causal/AoA_word/aoa_score.json").unlink()
    (base / "all_full_preds_and_fast_scores_causal.json").unlink()
    kit, missing = submission.collate(results, "tiny", "causal", "strict-small", eval_data=data, allow_partial=True)
    assert len(missing) == 4
    assert official_collate(results, data, "tiny", "causal", "strict-small") == kit.read_bytes()
