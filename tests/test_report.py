"""Run report: Markdown and PNGs from small synthetic run folders, with hand-computed numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval_export.report import ReportConfig, write_report
from tests.conftest import run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _gold(eval_data: Path, data_dir: str) -> dict[str, list[dict]]:
    """Two BLiMP paradigms of one phenomenon and one of another, four pairs each."""
    gold = {}
    for uid, term in (("anaphor_gender_agreement", "anaphor_agreement"),
                      ("anaphor_number_agreement", "anaphor_agreement"),
                      ("adjunct_island", "island_effects")):
        rows = [{"sentence_good": f"{uid} good {i}.", "sentence_bad": f"{uid} bad {i}.",
                 "UID": uid, "linguistics_term": term} for i in range(4)]
        _jsonl(eval_data / data_dir / f"{uid}.jsonl", rows)
        gold[uid] = rows
    return gold


def _predictions(path: Path, gold: dict[str, list[dict]], n_correct: dict[str, int]) -> None:
    """Official prediction file choosing the good sentence for the first n_correct[uid] items."""
    out = {}
    for uid, rows in gold.items():
        preds = []
        for i, row in enumerate(rows):
            chosen = row["sentence_good"] if i < n_correct[uid] else row["sentence_bad"]
            preds.append({"id": f"{uid}_{i}", "pred": " " + chosen})  # stripped before comparing
        out[uid] = {"predictions": preds}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))


@pytest.fixture()
def run_folder(tmp_path: Path) -> tuple[Path, Path, Path]:
    run, eval_data, glue = tmp_path / "runs" / "smoke", tmp_path / "eval", tmp_path / "glue"
    model = run / "models" / "tiny-gpt"
    metrics = [{"step": s, "words_seen": 1000 * s, "train/loss": 5.0 - 0.1 * s} for s in range(1, 21)]
    # the trainer names the count "words"; both spellings are read
    metrics += [{"step": 10, "words": 10_000, "val/loss": 4.2}, {"step": 20, "words": 20_000, "val/loss": 3.9}]
    _jsonl(model / "metrics.jsonl", metrics)
    with open(model / "metrics.jsonl", "a") as fh:
        fh.write("{not json\n")  # a torn last line, as a killed run can leave
    (model / "test_results.json").write_text(json.dumps({"loss": 3.5, "perplexity": 33.1}))
    (model / "final").mkdir()  # the run finished

    # chck_2M records the words it really saw (a smoke run lowers the words per "M")
    (model / "chck_2M").mkdir()
    (model / "chck_2M" / "run_config.json").write_text(json.dumps({"progress": {"words_seen": 1_900_000}}))
    fast = _gold(eval_data, "blimp_fast")
    full = _gold(eval_data, "blimp_filtered")
    res = run / "results" / "tiny-gpt"
    # chck_1M: 2/4, 2/4, 4/4 -> mean over UIDs 66.67; chck_2M: 4/4, 3/4, 4/4 -> 91.67
    _predictions(res / "chck_1M/zero_shot/causal/blimp/blimp_fast/predictions.json", fast,
                 {"anaphor_gender_agreement": 2, "anaphor_number_agreement": 2, "adjunct_island": 4})
    _predictions(res / "chck_2M/zero_shot/causal/blimp/blimp_fast/predictions.json", fast,
                 {"anaphor_gender_agreement": 4, "anaphor_number_agreement": 3, "adjunct_island": 4})
    # chck_1M also scored the supplement (same task folder): its own curve, never BLiMP's (1/4 -> 25.00)
    supp = _gold(eval_data, "supplement_fast")
    _predictions(res / "chck_1M/zero_shot/causal/blimp/supplement_fast/predictions.json", supp, dict.fromkeys(supp, 1))
    # final: anaphor_agreement pooled 3+1 of 8 = 50.00; island_effects 4/4 = 100.00; UID mean 66.67
    _predictions(res / "main/zero_shot/causal/blimp/blimp_filtered/predictions.json", full,
                 {"anaphor_gender_agreement": 3, "anaphor_number_agreement": 1, "adjunct_island": 4})

    labels = [0, 1, 1, 0, 1]
    _jsonl(glue / "rte.valid.jsonl", [{"sentence1": "a", "sentence2": "b", "label": y} for y in labels])
    ft = res / "main/finetune/rte"
    ft.mkdir(parents=True)
    preds = [0, 1, 0, 0, 1]  # 4 of 5 right
    (ft / "predictions.json").write_text(json.dumps({"rte": {"predictions": [
        {"id": f"rte_{i}", "pred": p} for i, p in enumerate(preds)]}}))
    (ft / "metrics.json").write_text(json.dumps({"f1": 0.8, "mcc": 0.61}))
    return run, eval_data, glue


def _png_ok(path: Path) -> None:
    from matplotlib import image

    assert path.read_bytes()[:8] == PNG_MAGIC
    height, width = image.imread(path).shape[:2]
    assert height > 100 and width > 100


def test_report_from_synthetic_run(run_folder):
    run, eval_data, glue = run_folder
    md_path = write_report(ReportConfig(run=str(run), eval_data=str(eval_data), glue_data=str(glue)))
    assert md_path == run / "report" / "report.md"
    md = md_path.read_text()

    for png in ("loss.png", "blimp_fast_curve.png", "blimp_phenomena_tiny-gpt.png"):
        assert f"]({png})" in md
        _png_ok(run / "report" / png)

    # training table: 20,000 words, last losses, test perplexity; the torn line is reported
    assert "| tiny-gpt | 20,000 | 3.00 | 3.90 | 3.50 | 33.10 |" in md
    assert "skipped 1 malformed line" in md
    # BLiMP-fast against words seen, mean over UIDs
    assert "| tiny-gpt | 1,000,000 | 66.67 |" in md
    assert "| tiny-gpt | 1,900,000 | 91.67 |" in md
    assert "| tiny-gpt: BLiMP supplement | 1,000,000 | 25.00 |" in md
    # per phenomenon, pooled pairs
    assert "| anaphor_agreement | 8 | 50.00 |" in md
    assert "| island_effects | 4 | 100.00 |" in md
    # fine-tuning: accuracy from predictions vs gold, F1 and MCC from the metrics file
    assert "| tiny-gpt | rte | 5 | 80.00 | 80.00 | 61.00 |" in md
    # comparison: our filtered BLiMP beside the organisers' numbers, marked as theirs
    assert "| **tiny-gpt** (this run) | this kit | 66.67 |" in md
    assert "| GPT-2 (official 2026 baseline) | 2026 | 65.08 | 57.25 | published:" in md
    assert "74.53" not in md  # the strict track's baselines stay out of a strict-small report


def test_report_cli_in_fresh_process(run_folder, tmp_path):
    run, eval_data, glue = run_folder
    out = tmp_path / "elsewhere"
    proc = run_cli("eval_export", "report", "--run", run, "--eval_data", eval_data, "--track", "strict",
                   "--out", out)
    assert proc.returncode == 0, proc.stderr
    md = (out / "report.md").read_text()
    assert "74.53" in md and "65.08" not in md  # strict-track baselines now
    # without --glue_data there is no gold to score accuracy; the metrics file still gives F1/MCC
    assert "| tiny-gpt | rte | — | — | 80.00 | 61.00 |" in md


def test_report_skips_absent_inputs(tmp_path):
    run = tmp_path / "empty-run"
    run.mkdir()
    md = write_report(ReportConfig(run=str(run))).read_text()
    assert "## Training" not in md and "## BLiMP" not in md and "## Fine-tuning" not in md
    assert "## Comparison with the official baselines" in md
    assert f"training curves: no metrics.jsonl of a training run in {run}" in md
    assert not list((run / "report").glob("*.png"))


def test_report_curve_from_collated_submission(tmp_path):
    """Without per-checkpoint prediction files, fast_eval_results of the submission gives the curve."""
    run = tmp_path / "run"
    sub = run / "results" / "m" / "all_full_preds_and_fast_scores_causal.json"
    sub.parent.mkdir(parents=True)
    fast = [{"a": 0.5, "b": 0.7}, {"a": 0.9, "b": 0.8}]  # chck_1M -> 60.00, chck_2M -> 85.00
    sub.write_text(json.dumps({"blimp": {}, "fast_eval_results": {"blimp": fast}}))
    md = write_report(ReportConfig(run=str(run))).read_text()
    assert "| m | 1,000,000 | 60.00 |" in md and "| m | 2,000,000 | 85.00 |" in md
    _png_ok(run / "report" / "blimp_fast_curve.png")


def test_report_bad_run_folder(tmp_path):
    proc = run_cli("eval_export", "report", "--run", tmp_path / "missing")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "missing" in proc.stderr


def test_synthetic_scores_are_not_put_beside_the_official_baselines():
    from eval_export.report import comparison_section

    text = "\n".join(comparison_section({"m": {"blimp_filtered": 88.4}}, "strict-small", synthetic=True).lines)
    assert "88.40 (synthetic pairs: not comparable)" in text and "published" in text
    text = "\n".join(comparison_section({"m": {"blimp_filtered": 61.0}}, "strict-small").lines)
    assert "| 61.00 |" in text and "not comparable" not in text


def test_a_model_scored_with_two_backends_is_reported_per_backend(run_folder):
    """GPT-BERT is scored with mntp and causal: the report keeps the two apart, never averages or overwrites."""
    run, eval_data, glue = run_folder
    res = run / "results" / "tiny-gpt"
    full = {uid: [json.loads(line) for line in (eval_data / "blimp_filtered" / f"{uid}.jsonl").read_text().splitlines()]
            for uid in ("anaphor_gender_agreement", "anaphor_number_agreement", "adjunct_island")}
    # mntp: 4/4, 4/4, 2/4 -> UID mean 83.33 (causal stays 66.67); chck_1M mntp: 4/4 everywhere -> 100.00
    _predictions(res / "main/zero_shot/mntp/blimp/blimp_filtered/predictions.json", full,
                 {"anaphor_gender_agreement": 4, "anaphor_number_agreement": 4, "adjunct_island": 2})
    fast = {uid: rows for uid, rows in full.items()}
    _predictions(res / "chck_1M/zero_shot/mntp/blimp/blimp_fast/predictions.json", fast, dict.fromkeys(fast, 4))
    md = write_report(ReportConfig(run=str(run), eval_data=str(eval_data), glue_data=str(glue))).read_text()
    assert "| tiny-gpt (causal) | 66.67 |" in md and "| tiny-gpt (mntp) | 83.33 |" in md
    assert "| tiny-gpt (causal) | 1,000,000 | 66.67 |" in md and "| tiny-gpt (mntp) | 1,000,000 | 100.00 |" in md
    for png in ("blimp_phenomena_tiny-gpt_causal.png", "blimp_phenomena_tiny-gpt_mntp.png"):
        assert f"]({png})" in md
        _png_ok(run / "report" / png)


def _train_run(folder: Path, finished: bool, loss: float) -> None:
    """What `babylm train` leaves in <save_dir>/<run_name>: metrics.jsonl, a milestone, and final/ at the end."""
    _jsonl(folder / "metrics.jsonl", [{"step": s, "words": 500 * s, "train/loss": loss - 0.1 * s} for s in range(1, 5)])
    (folder / "chck_1M").mkdir()
    (folder / "chck_1M" / "run_config.json").write_text(json.dumps({"progress": {"words_seen": 1500}}))
    if finished:
        (folder / "final").mkdir()


def test_report_of_a_train_run_folder_with_results_elsewhere(tmp_path):
    """The README's own layout: `train --save_dir runs --run_name demo`, `score --results results`."""
    runs, results, eval_data = tmp_path / "runs", tmp_path / "results", tmp_path / "eval"
    _train_run(runs / "demo", finished=True, loss=4.0)
    _train_run(runs / "broken", finished=False, loss=6.0)  # killed before its end: no final/
    gold = _gold(eval_data, "blimp_fast")
    _predictions(results / "demo/chck_1M/zero_shot/causal/blimp/blimp_fast/predictions.json", gold,
                 {"anaphor_gender_agreement": 4, "anaphor_number_agreement": 2, "adjunct_island": 0})  # 50.00
    _predictions(results / "demo/main/zero_shot/causal/blimp/blimp_fast/predictions.json", gold,
                 dict.fromkeys(gold, 3))  # 75.00
    _predictions(results / "other/main/zero_shot/causal/blimp/blimp_fast/predictions.json", gold,
                 dict.fromkeys(gold, 1))  # another model's results in the same folder: not this run's

    md_path = write_report(ReportConfig(run=str(runs / "demo"), results=str(results), eval_data=str(eval_data)))
    assert md_path == runs / "demo" / "report" / "report.md"
    md = md_path.read_text()
    assert "| demo | 2,000 | 3.60 |" in md  # the training section of the run folder itself
    assert "| demo | 1,500 | 50.00 |" in md  # the milestone's words from its own record
    assert "| demo | 75.00 |" in md and "| other |" not in md and "broken" not in md
    assert "## Not in this report" not in md or "training curves" not in md

    # the whole --save_dir: every run, the one without final/ labelled as such
    md = write_report(ReportConfig(run=str(runs), results=str(results), eval_data=str(eval_data),
                                   out=str(tmp_path / "all"))).read_text()
    assert "| demo | 2,000 | 3.60 |" in md
    assert "| broken (unfinished: no final/) | 2,000 | 5.60 |" in md
    assert f"{runs / 'broken'}: no final/" in md
    assert "| other |" not in md  # results of models that are not runs of this folder stay out
