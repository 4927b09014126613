"""`eval_export report` on bad or odd inputs: every value it cannot use is named in the report, never
plotted or dropped in silence, and a report that cannot be finished leaves no half-written folder."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from eval_export.report import ReportConfig, write_report
from tests.conftest import REPO, run_cli


def _jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def _blimp_gold(eval_data: Path, data_dir: str, n: int = 4) -> dict[str, list[dict]]:
    gold = {}
    for uid, term in (("anaphor_gender_agreement", "anaphor_agreement"), ("adjunct_island", "island_effects")):
        rows = [{"sentence_good": f"{uid} good {i}.", "sentence_bad": f"{uid} bad {i}.", "UID": uid,
                 "linguistics_term": term} for i in range(n)]
        _jsonl(eval_data / data_dir / f"{uid}.jsonl", rows)
        gold[uid] = rows
    return gold


def _answers(path: Path, gold: dict[str, list[dict]], right: int) -> None:
    """Official predictions choosing the good sentence for the first ``right`` items of each paradigm."""
    obj = {uid: {"predictions": [{"id": f"{uid}_{i}", "pred": r["sentence_good" if i < right else "sentence_bad"]}
                                 for i, r in enumerate(rows)]} for uid, rows in gold.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_non_finite_and_non_numeric_metrics_are_named_and_kept_out_of_the_table(tmp_path):
    """NaN, Infinity and a step that is not a number: named in the notes; the table shows the last loss as it
    was written (a diverged run does not show its last finite loss as if it were the end)."""
    run = tmp_path / "run"
    rows = [{"step": s, "words": 1000 * s, "train/loss": 4.0 - 0.1 * s} for s in range(1, 6)]
    rows += ['{"step": 6, "words": 6000, "train/loss": NaN}',
             '{"step": 7, "words": 7000, "train/loss": Infinity, "val/loss": 3.1}',
             {"step": "eight", "train/loss": 3.0},  # neither a numeric step nor a word count: nowhere to plot it
             '{"step": 9, "words": 9000, "train/loss": NaN}']
    _jsonl(run / "models" / "diverged" / "metrics.jsonl", rows)
    (run / "models" / "diverged" / "final").mkdir()
    md = write_report(ReportConfig(run=str(run))).read_text()
    training = _section(md, "Training")
    assert "| diverged | 9,000 | NaN | 3.10 |" in training
    notes = _section(md, "Not in this report")
    assert "4 record(s) with a value that is not a finite number" in notes
    assert "train/loss = NaN (step 6)" in notes and "train/loss = Infinity (step 7)" in notes
    assert "step = 'eight'" in notes
    assert "left out of the plot" in notes


def test_an_empty_predictions_file_is_noted_not_dropped_in_silence(tmp_path):
    run, eval_data = tmp_path / "run", tmp_path / "eval"
    gold = _blimp_gold(eval_data, "blimp_filtered")
    _blimp_gold(eval_data, "supplement_filtered")
    res = run / "results" / "m" / "main" / "zero_shot" / "causal" / "blimp"
    _answers(res / "blimp_filtered" / "predictions.json", gold, right=3)  # 75.00
    (res / "supplement_filtered").mkdir(parents=True)
    (res / "supplement_filtered" / "predictions.json").write_text("{}")
    ft = run / "results" / "m" / "main" / "finetune" / "rte"
    ft.mkdir(parents=True)
    (ft / "predictions.json").write_text(json.dumps({"rte": {"predictions": []}}))
    md = write_report(ReportConfig(run=str(run), eval_data=str(eval_data))).read_text()
    assert "| m | 75.00 |" in _section(md, "Zero-shot scores")
    notes = _section(md, "Not in this report")
    assert f"{res / 'supplement_filtered' / 'predictions.json'}: no predictions in the file" in notes
    assert f"{ft / 'predictions.json'}: no predictions in the file" in notes


def test_wug_with_eval_data_is_not_called_unscored(tmp_path):
    """WUG has no gold candidate: its Spearman rho comes from summary.json, and --eval_data was given."""
    run, eval_data = tmp_path / "run", tmp_path / "eval"
    _jsonl(eval_data / "wug_adj_nominalization" / "wug_adj_nominalization.jsonl",
           [{"sentences": "a", "ratings": 3.0}])
    wug = run / "results" / "m" / "main" / "zero_shot" / "causal" / "wug_adj" / "wug_adj_nominalization"
    wug.mkdir(parents=True)
    (wug / "predictions.json").write_text(json.dumps({"wug_adj_nominalization": {"predictions": [
        {"id": "wug_adj_nominalization_0", "pred": 0.1}]}}))
    (wug / "summary.json").write_text(json.dumps({"task": "wug_adj", "data_dir": "wug_adj_nominalization",
                                                  "metrics": {"wug_adj": 0.25}}))
    md = write_report(ReportConfig(run=str(run), eval_data=str(eval_data))).read_text()
    assert "| m | wug_adj | wug_adj_nominalization | wug_adj | 0.25 |" in md
    assert "not scored" not in md
    # without --eval_data, a ranking task's predictions cannot be scored, and the note says so
    gold = _blimp_gold(eval_data, "blimp_fast")
    _answers(run / "results" / "m" / "main" / "zero_shot" / "causal" / "blimp" / "blimp_fast" / "predictions.json",
             gold, right=2)
    md = write_report(ReportConfig(run=str(run))).read_text()
    assert "blimp_fast not scored: no gold files (pass --eval_data)" in md and "wug_adj_nominalization not" not in md
    # --eval_data without the task's folder: the folder is named
    md = write_report(ReportConfig(run=str(run), eval_data=str(tmp_path / "elsewhere"))).read_text()
    assert f"blimp_fast not scored: no gold files for it under {tmp_path / 'elsewhere'}" in md


def _full_disk(fsize: int):
    def set_limit():
        # a write over the limit fails with EFBIG, as on a full disk (Python ignores SIGXFSZ already;
        # said here so that the test does not depend on it)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return set_limit


def test_full_disk_or_kill_leaves_no_partial_report(tmp_path):
    run = tmp_path / "run"
    _jsonl(run / "models" / "m" / "metrics.jsonl",
           [{"step": s, "words": 100 * s, "train/loss": 5.0 / s} for s in range(1, 30)])
    # matplotlib's font cache is built first, without a limit: the limit is meant for the report's own files
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl")}
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env, check=True, timeout=120)

    def report(limit: int | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "eval_export", "report", "--run", str(run)], cwd=REPO,
                              capture_output=True, text=True, timeout=300, env=env,
                              preexec_fn=_full_disk(limit) if limit else None)

    # a first report on a fresh run that runs out of space (no file over 4 KB): nothing is left behind
    full = report(limit=4096)
    assert full.returncode == 1, full.stderr
    assert full.stderr.count("\n") == 1 and "cannot write (File too large)" in full.stderr
    assert sorted(p.name for p in run.iterdir()) == ["models"]
    # a complete report, then a second one out of space: the first stays whole
    assert report().returncode == 0
    before = {p.name: p.read_bytes() for p in (run / "report").iterdir()}
    assert "report.md" in before and "loss.png" in before
    assert report(limit=4096).returncode == 1
    assert {p.name: p.read_bytes() for p in (run / "report").iterdir()} == before
    assert sorted(p.name for p in run.iterdir()) == ["models", "report"]
    # a kill between the two renames leaves the old report set aside and the new one unfinished;
    # the next report puts things right and replaces it
    (run / "report").rename(run / ".old-report-4242")
    (run / ".tmp-report-abc123").mkdir()
    (run / ".tmp-report-abc123" / "loss.png").write_bytes(b"\x89PNG")
    assert report().returncode == 0
    assert sorted(p.name for p in run.iterdir()) == ["models", "report"]
    assert sorted(p.name for p in (run / "report").iterdir()) == ["loss.png", "report.md"]


def test_out_folder_holding_other_files_is_refused(tmp_path):
    run = tmp_path / "run"
    (run / "results").mkdir(parents=True)
    (run / "results" / "keep.json").write_text("{}")
    proc = run_cli("eval_export", "report", "--run", run, "--out", run / "results")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--out" in proc.stderr and "keep.json" in proc.stderr
    assert (run / "results" / "keep.json").read_text() == "{}"
