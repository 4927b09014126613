"""What the 2026 leaderboard makes of a file: its scores (against a case computed by hand), its upload rules
(validate --year 2026: one line naming the first problem) and its checks of the model (card, Auto loading)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from babylm import model_card
from babylm.errors import InputError
from eval_export import leaderboard, validation
from tests import result_trees as rt


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture()
def tiny_gold(shared, tmp_path) -> Path:
    """A made-up evaluation_data folder small enough to score by hand (reading: the official CSV)."""
    full = tmp_path / "evaluation_data" / "full_eval"
    pairs = lambda n, tag: [{"sentence_good": f"good {tag} {i}.", "sentence_bad": f"bad {tag} {i}."} for i in range(n)]  # noqa: E731
    _jsonl(full / "blimp_filtered" / "a.jsonl", pairs(4, "a"))
    _jsonl(full / "blimp_filtered" / "b.jsonl", pairs(2, "b"))
    _jsonl(full / "supplement_filtered" / "s.jsonl", pairs(2, "s"))
    _jsonl(full / "ewok_filtered" / "dom.jsonl", [{"Context1": f"C1 {i}.", "Context2": f"C2 {i}.", "Target1": f"T1 {i}.",
                                                    "Target2": f"T2 {i}."} for i in range(2)])
    _jsonl(full / "entity_tracking" / "regular.jsonl", [
        {"numops": 0, "input_prefix": "Box 1 holds", "options": ["x", "y"]},
        {"numops": 0, "input_prefix": "Box 2 holds", "options": ["nothing", "z"]},  # dropped in 2026
        {"numops": 1, "input_prefix": "Box 3 holds", "options": ["p", "q"]}])
    _jsonl(full / "comps" / "comps_base.jsonl", [{"prefix_acceptable": f"A{i}", "prefix_unacceptable": f"U{i}",
                                                  "property_phrase": "can fly"} for i in range(2)])
    for task in leaderboard.GLUE_TASKS:
        labels = [2, 0, 1, 1] if task == "mnli" else [1, 0, 1, 1]
        _jsonl(full / "glue_filtered" / f"{task}.valid.jsonl", [{"label": y} for y in labels])
    _jsonl(full / "global_piqa_parallel" / "eng_latn.jsonl", [
        {"example_id": f"p{i}", "prompt": "Goal", "solution0": f"s0 {i}", "solution1": f"s1 {i}", "solution2": "x",
         "solution3": "y", "label": 1} for i in range(2)])
    _jsonl(full / "global_piqa_nonparallel" / "eng_latn.jsonl", [
        {"example_id": "n0", "prompt": "Goal", "solution0": "first", "solution1": "second", "label": 0}])
    (full / "reading").mkdir()
    (full / "reading" / "reading_data.csv").symlink_to(shared / "data/eval/reading/reading_data.csv")
    return tmp_path / "evaluation_data"


def _hand_file() -> dict:
    glue = {t: {"predictions": [{"id": f"{t}_{i}", "pred": p} for i, p in
                                enumerate([2, 1, 1, 0] if t == "mnli" else [1, 1, 1, 0])]}
            for t in leaderboard.GLUE_TASKS if t != "wsc"}
    return {
        "blimp": {"a": {"predictions": [{"id": f"a_{i}", "pred": p} for i, p in
                                        enumerate(["good a 0.", "bad a 1.", " good a 2. ", "good a 3."])]}},  # b absent
        "blimp_supplement": {"s": {"predictions": [{"id": "s_0", "pred": "good s 0."}]}},  # one of two: zip scores 1/1
        "ewok": {"dom": {"predictions": [{"id": "dom_0", "pred": "C1 0. T1 0."}, {"id": "dom_1", "pred": "C2 1. T1 1."}]}},
        "entity_tracking_filtered": {"regular_0_ops": {"predictions": [{"id": "regular_0_ops_0", "pred": "x"}]},
                                     "regular_1_ops": {"predictions": [{"id": "regular_1_ops_0", "pred": "q"}]}},
        "comps": {"base": {"predictions": [{"id": "base_0", "pred": "A0 can fly"}, {"id": "base_1", "pred": "U1 can fly"}]}},
        "global_piqa_parallel": {"p0": {"predictions": [{"id": "p0_0", "pred": " s1 0"}]}},  # p1 missing: wrong
        "global_piqa_nonparallel": {"n0": {"predictions": [{"id": "n0_0", "pred": " first"}]}},
        "aoa_surprisals": {"metadata": {}, "results": [{"step": "chck_1M"}]},
        "aoa": {"aoa": 0.25},
        "glue": glue,  # wsc absent
    }


def test_scores_equal_a_case_computed_by_hand(tiny_gold):
    scores = leaderboard.score_file(_hand_file(), tiny_gold)
    # BLiMP: a 3/4, b absent 0 -> 37.5; supplement: the one prediction, right -> 100; EWoK 1/2; entity tracking
    # (the "nothing" item dropped) 1/1 and 0/1 -> 50; COMPS 1/2; GLUE: accuracy 2/4 on boolq, mnli, multirc, rte,
    # F1 = 2TP / (2TP + FP + FN) = 4/6 on mrpc and qqp, wsc absent 0 -> (4 x 0.5 + 2 x 2/3 + 0) / 7;
    # GlobalPIQA (1/2 + 1/1) / 2; reading absent 0; AoA 0.25
    glue = (4 * 0.5 + 2 * (2 / 3)) / 7
    want = {"blimp": 37.5, "blimp_supplement": 100.0, "ewok": 50.0, "entity_tracking": 50.0, "comps": 50.0,
            "glue": 100 * glue, "global_piqa": 75.0, "reading": 0.0, "aoa": 25.0}
    assert scores.columns == pytest.approx(want)
    assert scores.subtasks["glue"]["mrpc"] == pytest.approx(2 / 3) and scores.subtasks["glue"]["wsc"] == 0.0
    nlp = (37.5 + 100 + 50 + 50 + 50 + 100 * glue + 75) / 7
    assert scores.nlp == pytest.approx(nlp) and scores.human_like == pytest.approx(12.5)
    assert scores.overall == pytest.approx((7 * nlp + 25) / 9)
    assert scores.notes == [] and scores.unscored == []
    # a 2025 file: entity tracking under its old key and raw AoA surprisals score 0, and the text says why
    old = _hand_file()
    old["entity_tracking"] = old.pop("entity_tracking_filtered")
    old["aoa"] = old.pop("aoa_surprisals")
    old_scores = leaderboard.score_file(old, tiny_gold)
    assert old_scores.columns["entity_tracking"] == 0.0 and old_scores.columns["aoa"] == 0.0
    assert any("entity_tracking_filtered" in n for n in old_scores.notes) and any("AoA" in n for n in old_scores.notes)
    assert old_scores.overall == pytest.approx((37.5 + 100 + 50 + 0 + 50 + 100 * glue + 75 + 0 + 0) / 9)


def test_leaderboard_command_prints_the_columns_and_the_mean(tiny_gold, tmp_path, capsys):
    from eval_export.commands import LeaderboardConfig
    from eval_export.commands import leaderboard as command

    path = tmp_path / "all_full_preds_and_fast_scores_causal.json"
    path.write_text(json.dumps(_hand_file()))
    command(LeaderboardConfig(file=str(path), eval_data=str(tiny_gold)))
    lines = {line.split("  ")[0].strip(): line for line in capsys.readouterr().out.splitlines()}
    assert "37.50" in lines["BLiMP"] and "75.00" in lines["GlobalPIQA"]
    assert lines["overall average"].split()[2] == f"{leaderboard.score_file(_hand_file(), tiny_gold).overall:.2f}"


# ----------------------------------------------------------------------------- validate --year 2026


@pytest.fixture(scope="module")
def data(shared, tmp_path_factory) -> Path:
    return rt.eval_data(shared, tmp_path_factory.mktemp("eval") / "evaluation_data")


@pytest.fixture(scope="module")
def good(data) -> dict:
    return rt.collated_2026(data)


def _validate(obj: dict, tmp_path: Path, data: Path, name: str = "all_full_preds_and_fast_scores_causal.json", **kw):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return validation.validate_file(path, data, structure_only=True, **kw)


def test_a_complete_2026_file_passes(good, data, tmp_path):
    report = _validate(good, tmp_path, data)
    assert "2026 rules" in report.kind and {"entity_tracking_filtered", "global_piqa_parallel", "glue.wsc",
                                           "fast_eval_results.ewok"} <= set(report.checked)
    assert any(u.startswith("comps: structure only") for u in report.unchecked)  # no COMPS gold here


def test_the_verdict_names_exactly_the_tasks_without_data(good, data, tmp_path):
    """A complete file over this evaluation folder, then one with a present task taken out: the verdict line
    names the absent tasks with why (here: no COMPS, no AoA word list, no BoolQ/MultiRC training file), and
    a present task left out turns it into INCOMPLETE."""
    report = _validate(good, tmp_path, data)
    assert report.verdict == ("complete for every task whose data is present; absent: comps (no comps/ under "
                              f"{data}), aoa_surprisals (no aoa/cdi_childes.json), aoa (no aoa/cdi_childes.json), glue.boolq (no "
                              "glue_filtered/boolq.train.jsonl), glue.multirc (no glue_filtered/multirc.train.jsonl)")
    assert report.text().splitlines()[-1] == report.verdict
    partial = {**good, "entity_tracking_filtered": None, "glue": {t: v for t, v in good["glue"].items() if t != "rte"}}
    report = _validate(partial, tmp_path, data, name="all_full_preds_and_fast_scores_causal_partial.json")
    assert report.verdict.startswith("INCOMPLETE: not in the file although their data is present: "
                                      "entity_tracking_filtered, glue.rte; absent: comps ("), report.verdict


def test_a_file_scored_with_limit_is_checked_against_the_first_n_gold_items(good, data, tmp_path):
    limited = {"blimp": {sub: {"predictions": block["predictions"][:3]} for sub, block in good["blimp"].items()},
               "fast_eval_results": {}}
    name = "all_full_preds_and_fast_scores_causal_partial.json"
    with pytest.raises(InputError, match=r"blimp\.adjunct_island\.predictions: 3 predictions, the gold data has 928"):
        _validate(limited, tmp_path, data, name=name)
    report = _validate(limited, tmp_path, data, name=name, limit=3)
    assert report.counts["blimp"] == f"{3 * len(good['blimp']):,} predictions"
    assert any(u.startswith("blimp: counts differ from the official set") and u.endswith("scored with --limit 3)")
               for u in report.unchecked), report.unchecked
    wrong = copy.deepcopy(limited)  # the limit cuts gold, it does not loosen the check of what is there
    first = wrong["blimp"]["adjunct_island"]["predictions"][2]
    first["pred"] = first["pred"] + " x"
    with pytest.raises(InputError, match=r"blimp\.adjunct_island\.predictions\[2\]\.pred: .* is not a candidate"):
        _validate(wrong, tmp_path, data, name=name, limit=3)


@pytest.mark.parametrize("case,pattern", [
    ("2025 file", r"\(top level\): a 2025 file \(entity_tracking\).*collate it again with --year 2026"),
    ("missing key", r"blimp: missing \(null\): the leaderboard scores it 0"),
    ("wrong count", r"entity_tracking_filtered\.regular_0_ops\.predictions: 516 predictions, the gold data has 517"),
    ("glue float", r"glue\.boolq\.predictions\[0\]\.pred: expected an integer label in \[0, 1\], got 1\.0"),
    ("reading int", r"reading\.reading\.predictions\[0\]\.pred: expected a float, got 12"),
    ("two per example", r"global_piqa_parallel\.eng_par_0000\.predictions: 2 predictions, the leaderboard wants exactly 1"),
    ("20 checkpoints", r"fast_eval_results\.blimp: 20 checkpoints: the leaderboard takes at most 19 for strict-small"),
    ("aoa raw", r"aoa: expected \{\"aoa\": <number>\}"),
])
def test_the_first_problem_in_one_line(case, pattern, good, data, tmp_path):
    """Each case breaks one rule in a file holding little else (a partial file: the sections it holds are
    checked in full, the absent ones listed), which keeps each check short."""
    obj: dict = {}
    name = "all_full_preds_and_fast_scores_causal_partial.json"
    if case == "2025 file":
        obj = {"blimp": good["blimp"], "entity_tracking": good["entity_tracking_filtered"], "fast_eval_results": {}}
    elif case == "missing key":  # a complete file but for one null part (the first checked)
        obj, name = {"blimp": None, "fast_eval_results": {}}, name.replace("_partial", "")
    elif case == "wrong count":
        obj["entity_tracking_filtered"] = copy.deepcopy(good["entity_tracking_filtered"])
        obj["entity_tracking_filtered"]["regular_0_ops"]["predictions"].pop()
    elif case == "glue float":
        obj["glue"] = copy.deepcopy(good["glue"])
        obj["glue"]["boolq"]["predictions"][0]["pred"] = float(obj["glue"]["boolq"]["predictions"][0]["pred"])
    elif case == "reading int":
        obj["reading"] = copy.deepcopy(good["reading"])
        obj["reading"]["reading"]["predictions"][0]["pred"] = 12
    elif case == "two per example":
        obj["global_piqa_parallel"] = copy.deepcopy(good["global_piqa_parallel"])
        block = obj["global_piqa_parallel"]["eng_par_0000"]["predictions"]
        block.append(dict(block[0]))
    elif case == "20 checkpoints":
        blimp = good["fast_eval_results"]["blimp"]
        obj["fast_eval_results"] = {"blimp": blimp + blimp[:1]}
    else:
        obj["aoa"] = {"aoa": "0.25"}
    with pytest.raises(InputError, match=pattern) as err:
        _validate(obj, tmp_path, data, name=name, track="strict-small")
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- the model, as the hub check sees it


def _folder(tmp_path: Path, arch: str) -> Path:
    from babylm import checkpoint, models
    from tests.train_fixtures import make_tokenizer

    tok = make_tokenizer(tmp_path / f"tok_{arch}")
    shape = models.resolve_shape("tiny", hidden=16, heads=2, positions=32, arch=arch)
    return checkpoint.save_model(tmp_path / arch, models.build_model(arch, shape, tok, seed=0), tok, {})


def test_model_card_and_auto_loading_as_the_leaderboard_checks_them(tmp_path):
    gpt2 = _folder(tmp_path, "gpt2")
    assert validation.check_model(gpt2) == [f"{gpt2}/README.md: no model card; the leaderboard asks for one "
                                            "(publish writes it)"]
    (gpt2 / "README.md").write_text(model_card.card_text("main", gpt2, "run", [("main", gpt2)]))
    assert validation.check_model(gpt2) == []
    (gpt2 / "README.md").write_text("---\nlicense: mit\n---\nA short card.\n")
    assert "the card's text is 14 characters; the leaderboard asks for at least 200" in model_card.card_problem(gpt2)
    (gpt2 / "README.md").write_text("---\nlibrary_name: transformers\n---\n" + "Described at length. " * 12)
    assert "no licence in the card's metadata" in model_card.card_problem(gpt2)
    (gpt2 / "README.md").write_text("---\nlicense_name: my-licence\nlicense_link: LICENSE\n---\n" + "Long. " * 40)
    assert model_card.card_problem(gpt2) is None
    # GPT-BERT ships its own code: the leaderboard's hub check loads without it, so it is not taken automatically
    bert = _folder(tmp_path, "gpt-bert")
    (bert / "README.md").write_text(model_card.card_text("main", bert, "run", [("main", bert)]))
    (problem,) = validation.check_model(bert)
    assert "needs code shipped with the checkpoint (trust_remote_code)" in problem and "automatically" in problem
