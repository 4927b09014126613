"""Zero-shot scoring by the final 2026 rules (babylm-eval 3d57ddc) and, unchanged, by the 2025 rules.

EWoK 2026 is checked against a brute-force score of the official strings (``" ".join([Context, Target1])``
with ``" " + Target1`` as the scored completion), the 2026 ranking rule against a reading of the official
``rank_and_evaluate`` in torch, ties on real tied scores, and ``--year 2025`` against the files the kit
wrote before the 2026 rules existed (tests/golden/score_2025.json).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from babylm.errors import UsageError
from eval_export import submission, tasks, zero_shot
from eval_export.commands import ScoreConfig, score
from tests import export_models as em
from tests.conftest import run_cli

GOLDEN = Path(__file__).parent / "golden" / "score_2025.json"


@pytest.fixture(scope="module")
def root(shared):
    return shared / "data" / "eval"


@pytest.fixture(scope="module")
def models(shared, tmp_path_factory):
    """The tiny seeded GPT-2 and RoBERTa the golden file was written with, saved as checkpoints."""
    em.one_thread()
    lines = em.corpus_lines(shared, n_per_file=4)
    out = tmp_path_factory.mktemp("models")
    built = {}
    for kind in ("gpt2", "roberta"):
        model, tok = em.build(kind, lines)
        built[kind] = (model, tok, em.save(model, tok, out / kind))
    return built


def _score(model_dir: Path, results: Path, root: Path, **kw) -> None:
    cfg = ScoreConfig(model=str(model_dir), eval_data=str(root), results=str(results), progress=False, **kw)
    cfg.validate()
    score(cfg)


# ---------------------------------------------------------------------------------------------
# 2025: the files of before
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_year_2025_writes_the_files_of_before(models, root, tmp_path):
    """The hash of every predictions.json, every summary (paths aside) and the reading surprisals of
    tiny GPT-2 / RoBERTa scored with --year 2025 equal what the kit wrote before --year existed."""
    golden = json.loads(GOLDEN.read_text())
    password = os.environ.get(tasks.EWOK_PASSWORD_ENV, "")
    results = tmp_path / "results"
    for kind in ("gpt2", "roberta"):
        fast = ["blimp", "blimp_supplement", "entity_tracking", "wug_adj"] + (["ewok"] if password else [])
        _score(models[kind][2], results, root, tasks=fast, eval_set="fast", limit=4, year="2025", ewok_password=password)
        _score(models[kind][2], results, root, tasks=["entity_tracking", "reading"], limit=30, year="2025")
    checked = 0
    for key, want in golden.items():
        if "/ewok/" in key and not password:
            continue
        folder = results / key
        summary = json.loads((folder / "summary.json").read_text())
        assert "year" not in summary["run"] and "tie_seed" not in summary["run"]  # recorded as before
        summary.pop("source"), summary.pop("run")
        assert summary == want["summary"], key
        if "reading" in want:
            got = json.loads((folder / "predictions.json").read_text())["reading"]["predictions"]
            flat = [v for p in got for v in (p["pred"], p["prev_pred"])]
            ref = [math.nan if v is None else v for r in want["reading"] for v in r]
            np.testing.assert_allclose(flat, ref, rtol=0, atol=1e-6)
        else:
            assert hashlib.sha256((folder / "predictions.json").read_bytes()).hexdigest() == want["predictions_sha256"], key
        checked += 1
    assert checked == len(golden) - (0 if password else 2)


# ---------------------------------------------------------------------------------------------
# 2026 ranking: NaN as minus infinity, seeded ties
# ---------------------------------------------------------------------------------------------


def _official_2026(scores: list[float]) -> tuple[set[int], bool]:
    """compute_results.py @ 3d57ddc, rank_and_evaluate, read in torch: the candidates it may choose."""
    stacked = torch.tensor([scores], dtype=torch.float64)
    stacked = torch.where(torch.isnan(stacked), torch.tensor(float("-inf"), dtype=torch.float64), stacked)
    best, index = torch.max(stacked, dim=1)
    tied = stacked[0] == best[0]
    if tied.sum() > 1:
        return set(torch.where(tied)[0].tolist()), True
    return {int(index[0])}, False


def _data(n: int, name: str = "ewok") -> tasks.TaskData:
    items = [tasks.Item("u", [("", "a"), ("", "b"), ("", "c")], ["a", "b", "c"]) for _ in range(n)]
    return tasks.TaskData(name, name, f"{name}_fast", "ranking", "x", items)


def test_nan_counts_as_minus_infinity_and_ties_draw_from_the_seed():
    nan, inf = math.nan, math.inf
    cases = [[nan, -3.0, -4.0], [-3.0, nan, -3.0], [nan, nan, nan], [-1.0, -1.0, -1.0], [-2.0, -1.0, -1.5],
             [-inf, nan, -inf], [-1.0, -1.0 - 1e-12, -5.0], [0.5, 0.5, -0.5]]
    data = _data(len(cases) * 50)
    pick = zero_shot._tie_breaker(data, zero_shot.ScoringOptions(tie_seed=3))
    chosen: dict[int, set[int]] = {}
    for k in range(len(data.items)):
        scores = cases[k % len(cases)]
        may, tie = _official_2026(scores)
        got, got_tie = pick(k, np.array(scores))
        assert got in may and got_tie == tie, scores
        chosen.setdefault(k % len(cases), set()).add(got)
    assert chosen[0] == {1} and chosen[4] == {1} and chosen[6] == {0}  # NaN loses; untied items are decided
    assert chosen[2] == chosen[3] == {0, 1, 2} and chosen[1] == {0, 2} and chosen[7] == {0, 1}  # ties drawn
    # same seed and task: the same picks; another seed or another task folder: other picks
    again = zero_shot._tie_breaker(data, zero_shot.ScoringOptions(tie_seed=3))
    tied = np.array([[-1.0, -1.0, -1.0]])[0]
    picks = [pick(k, tied)[0] for k in range(200)]
    assert picks == [again(k, tied)[0] for k in range(200)]
    assert picks != [zero_shot._tie_breaker(data, zero_shot.ScoringOptions(tie_seed=4))(k, tied)[0] for k in range(200)]
    assert picks != [zero_shot._tie_breaker(_data(len(data.items), "blimp"), zero_shot.ScoringOptions(tie_seed=3))(k, tied)[0]
                     for k in range(200)]
    assert abs(np.mean(np.array(picks) == 0) - 1 / 3) < 0.1  # about a third of the ties go to the gold


def _ewok_rows(n: int, same_context: bool = False) -> list[dict]:
    """Hand-made rows in EWoK's format (not EWoK data)."""
    rows = []
    for i in range(n):
        c1 = ["The ball is red.", "Ann gave Bob a book.", "The cup sits on the shelf.", "Tom is taller than Sue."][i % 4]
        c2 = c1 if same_context else ["The ball is blue.", "Bob gave Ann a book.", "The cup sits under the shelf.",
                                      "Sue is taller than Tom."][i % 4]
        t1 = ["It is red.", "Bob has the book.", "The cup is up.", "Tom is tall."][i % 4]
        rows.append({"Domain": ["physical-properties", "social-interactions"][i % 2], "Context1": c1, "Context2": c2,
                     "Target1": t1, "Target2": t1 if same_context else "Something else."})
    return rows


@torch.no_grad()
def _brute_force(model, tok, sentence: str, completion: str, backend: str) -> float:
    """Sum of log p over the tokens of ``completion`` at the end of ``sentence`` (a token counts when its
    end offset passes the completion's first character, as dataset.py does), one forward per token."""
    enc = tok(sentence, return_offsets_mapping=True, return_special_tokens_mask=True)
    ids, start = enc["input_ids"], len(sentence) - len(completion)
    total = 0.0
    for p, ((_, end), special) in enumerate(zip(enc["offset_mapping"], enc["special_tokens_mask"])):
        if special or end <= start or (backend == "causal" and p == 0):
            continue
        if backend == "causal":
            logits = model(torch.tensor([ids[:p]])).logits[0, -1]
        else:
            masked = list(ids)
            masked[p] = tok.mask_token_id
            logits = model(torch.tensor([masked])).logits[0, p]
        total += float(torch.log_softmax(logits.float(), -1)[ids[p]])
    return total


@pytest.mark.parametrize("kind,backend", [("gpt2", "causal"), ("roberta", "mlm")])
def test_ewok_2026_scores_equal_brute_force(models, kind, backend):
    model, tok, _ = models[kind]
    rows = _ewok_rows(8)
    data = tasks.TaskData("ewok", "ewok", "ewok_fast", "ranking", "hand-made",
                          tasks.ewok_items([("d.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())], "2026"))
    result = zero_shot.score_task(model, tok, backend, data, zero_shot.ScoringOptions(token_budget=256))
    preds = submission.predictions_object(result)
    flat = [p["pred"] for block in preds.values() for p in block["predictions"]]
    by_domain = sorted(range(len(rows)), key=lambda i: rows[i]["Domain"])  # predictions are grouped by key
    for k, row in enumerate(rows):
        sentences = [" ".join([row["Context1"], row["Target1"]]), " ".join([row["Context2"], row["Target1"]])]
        want = [_brute_force(model, tok, s, " " + row["Target1"], backend) for s in sentences]
        np.testing.assert_allclose(result.scores[k], want, rtol=0, atol=1e-4)
        assert result.chosen[k] == int(np.argmax(want)) and not result.ties[k]
        assert flat[by_domain.index(k)] == sentences[result.chosen[k]]  # the whole chosen sentence


def test_ewok_2026_ties_are_real_and_seeded(models):
    """Context1 == Context2 (and Target1 == Target2, for 2025): both candidates are one string, so every
    item is a tie. 2026 draws each
    from the seeded generator (the same picks on every run, tie counts in the summary); 2025 gives
    every tie to the gold."""
    model, tok, _ = models["gpt2"]
    rows = _ewok_rows(40, same_context=True)
    blob = "".join(json.dumps(r) + "\n" for r in rows).encode()
    runs = {}
    for year, seed in (("2026", 0), ("2026", 0), ("2026", 1), ("2025", 0)):
        data = tasks.TaskData("ewok", "ewok", "ewok_fast", "ranking", "hand-made", tasks.ewok_items([("d.jsonl", blob)], year))
        result = zero_shot.score_task(model, tok, "causal", data, zero_shot.ScoringOptions(year=year, tie_seed=seed))
        summary = zero_shot.task_summary(result)
        assert summary["ties"] == 40 and all(result.ties)
        assert summary["accuracy"] == pytest.approx(np.mean(np.array(result.chosen) == 0))
        runs.setdefault((year, seed), []).append(result.chosen)
    first, second = runs[("2026", 0)]
    assert first == second and set(first) == {0, 1} and first != runs[("2026", 1)][0]
    assert runs[("2025", 0)][0] == [0] * 40


# ---------------------------------------------------------------------------------------------
# The command: task sets, rules recorded with each result, bad input
# ---------------------------------------------------------------------------------------------


def test_result_made_by_other_rules_is_refused(models, root, tmp_path):
    gpt2 = models["gpt2"][2]
    results = tmp_path / "results"
    kw = {"tasks": ["blimp_supplement"], "eval_set": "fast", "limit": 2}
    _score(gpt2, results, root, year="2025", **kw)
    out = results / "gpt2/main/zero_shot/causal/blimp/supplement_fast"
    stale = out.parent / ".tmp-supplement_fast-1234"  # what a killed score leaves behind
    stale.mkdir()
    (stale / "predictions.json").write_text("{")
    with pytest.raises(UsageError, match=r"made with --year 2025, not 2026; pass --overwrite true"):
        _score(gpt2, results, root, **kw)
    assert not stale.exists()
    _score(gpt2, results, root, year="2025", **kw)  # the same rules: kept
    _score(gpt2, results, root, overwrite=True, **kw)
    run = json.loads((out / "summary.json").read_text())["run"]
    assert run["year"] == "2026" and run["tie_seed"] == 0
    with pytest.raises(UsageError, match=r"made with --tie_seed 0, not 5"):
        _score(gpt2, results, root, tie_seed=5, **kw)
    with pytest.raises(UsageError, match=r"made with --year 2026, not 2025"):
        _score(gpt2, results, root, year="2025", **kw)


def test_tasks_all_is_the_year_set(models, root, tmp_path, capsys):
    gpt2 = models["gpt2"][2]
    data = tmp_path / "data"
    data.mkdir()
    for folder in ("supplement_fast", "wug_adj_nominalization"):
        (data / folder).symlink_to(root / folder)
    with pytest.raises(Exception, match="blimp_fast"):  # the 2026 set needs BLiMP: nothing scored
        _score(gpt2, tmp_path / "r", data, eval_set="fast", limit=1)
    _score(gpt2, tmp_path / "r", data, tasks=["blimp_supplement"], eval_set="fast", limit=1)
    assert not (tmp_path / "r/gpt2/main/zero_shot/causal/wug_adj").exists()
    with pytest.raises(UsageError, match="^--tasks: wug_adj is not in the 2026 task set; score it with --year 2025$"):
        _score(gpt2, tmp_path / "r", data, tasks=["wug_adj"], limit=1)
    _score(gpt2, tmp_path / "r", data, tasks=["wug_adj"], limit=1, year="2025")
    assert (tmp_path / "r/gpt2/main/zero_shot/causal/wug_adj/wug_adj_nominalization/predictions.json").is_file()


def test_bad_score_input_is_one_line(root, tmp_path):
    """Each fails before a model is loaded: one line on stderr, exit status 2, nothing written."""
    (tmp_path / "m").mkdir()
    base = ["score", "--model", tmp_path / "m", "--eval_data", root, "--results", tmp_path / "r"]
    env = {tasks.EWOK_PASSWORD_ENV: ""}
    for extra, message in ((["--tasks", "wug_past"], "wug_past is not in the 2026 task set; score it with --year 2025"),
                           (["--tasks", "ewok", "--eval_set", "fast"], "--tasks ewok: ewok_fast.zip is encrypted"),
                           (["--limit", "-1"], "--limit")):
        res = run_cli("eval_export", *base, *extra, env=env)
        assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "r").exists()
    res = run_cli("eval_export", "score", "--help")
    text = " ".join(res.stdout.split())
    assert "official run may differ from the kit's on tied items only" in text and "--year" in text


def test_report_reads_gold_by_the_rules_a_result_was_scored_by(root, tmp_path):
    """The report scores a 2026 entity-tracking file against the items the 2026 rules keep, and a
    result that records no year (written before --year) against the 2025 items."""
    from eval_export import report

    folder = tmp_path / "entity_tracking"
    folder.mkdir()
    assert report.result_year(folder) == "2025"  # no summary
    (folder / "summary.json").write_text(json.dumps({"run": {"model": "m"}}))
    assert report.result_year(folder) == "2025"
    (folder / "summary.json").write_text(json.dumps({"run": {"year": "2026"}}))
    assert report.result_year(folder) == "2026"
    cache: dict = {}
    new, old = (report.load_gold(root, "entity_tracking", cache, y) for y in ("2026", "2025"))
    assert len(new.items) == 6780 and len(old.items) == 9483
    preds = {}
    for it in new.items:  # every 2026 item answered right
        block = preds.setdefault(it.uid, {"predictions": []})["predictions"]
        block.append({"id": f"{it.uid}_{len(block)}", "pred": it.preds[0]})
    assert all(c == n for c, n in zero_shot.score_predictions(preds, new).values())
    assert not all(c == n for c, n in zero_shot.score_predictions(preds, old).values())
