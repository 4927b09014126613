"""Run report: one Markdown page with PNG plots, built from a run's training folders and results.

``--run`` is any of the three folders the kit writes: what reproduce.sh wrote (``<run>/models/<name>/``
and ``<run>/results/``), one training run (``train --save_dir runs --run_name demo`` -> ``runs/demo``,
its results wherever ``score --results`` put them), or a ``--save_dir`` holding several runs. A
training run without ``final/`` stopped before its end (or is still running): it is shown, labelled.

Every input is optional; a section whose input is absent is left out and listed at the end with
the file it would have needed, and so is every value or file the report could not use. The inputs
are the kit's and the challenge's own files:

- ``<training run>/metrics.jsonl``: JSON lines with ``step``, ``words_seen`` (or ``words``) and
  ``train/loss`` and/or ``val/loss`` (loss curves); ``test_results.json`` beside it (test loss,
  perplexity).
- ``<results>/<model>/<revision>/zero_shot/<backend>/<task>/<data_dir>/predictions.json``:
  the official prediction files, scored against the gold items of ``eval_data/<data_dir>/`` as
  :mod:`eval_export.tasks` reads them, the way the official collator does (a prediction is
  right when its stripped ``pred`` is the stripped gold candidate; :func:`eval_export.zero_shot.score_predictions`).
  Revisions ``chck_<N>M`` give BLiMP-fast accuracy against words seen.
- ``<results>/<model>/all_full_preds_and_fast_scores_<backend>.json``: the collated
  submission; its ``fast_eval_results`` is used for the words-seen curve when the per-checkpoint
  prediction files are gone.
- ``<results>/<model>/main/finetune/<task>/predictions.json``: fine-tuning predictions, scored
  against ``glue_data/<task>.valid.jsonl``; a metrics JSON beside them adds its F1/MCC.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from babylm import files
from babylm.challenge import RULES, TRACKS, Rules, milestones, words_of_milestone
from babylm.config import option
from babylm.errors import InputError, KitError, UsageError
from babylm.files import write_bytes, write_text
from babylm.runtime import code_version
from eval_export import tasks

# Published scores of the official baselines: babylm-org/babylm-eval README @ 45fe2c1 (2026) and
# the draft results table of babylm/evaluation-pipeline-2025 README @ 19993f9 (2025). They are
# the organisers' numbers, not measured by this kit.
# (track, model, year, BLiMP, supplement, source)
OFFICIAL_BASELINES: list[tuple[str, str, str, float, float, str]] = [
    ("strict-small", "GPT-2 (official 2026 baseline)", "2026", 65.08, 57.25, "babylm-org/babylm-eval README @ 45fe2c1"),
    ("strict", "GPT-2 (official 2026 baseline)", "2026", 74.53, 65.00, "babylm-org/babylm-eval README @ 45fe2c1"),
    ("strict-small", "GPT-2 small (official 2025 baseline, causal)", "2025", 67.29, 59.09,
     "babylm/evaluation-pipeline-2025 README draft @ 19993f9"),
    ("strict-small", "GPT-BERT mixed (official 2025 baseline, MNTP)", "2025", 71.29, 63.30,
     "babylm/evaluation-pipeline-2025 README draft @ 19993f9"),
    ("strict", "GPT-2 small (official 2025 baseline, causal)", "2025", 75.07, 64.96,
     "babylm/evaluation-pipeline-2025 README draft @ 19993f9"),
    ("strict", "GPT-BERT causal-focus (official 2025 baseline, causal)", "2025", 79.29, 70.42,
     "babylm/evaluation-pipeline-2025 README draft @ 19993f9"),
]

@dataclasses.dataclass
class ReportConfig:
    run: str = option("", "a run folder: what reproduce.sh wrote (models/ and results/), one training run "
                          "(<save_dir>/<run_name>: metrics.jsonl, final/), or a --save_dir holding several")
    results: str | None = option(None, "the --results folder `eval_export score` wrote (default: <run>/results)")
    out: str | None = option(None, "where report.md and its PNG plots go (default: <run>/report); written aside "
                                   "and renamed into place, so it is a whole report or the previous one")
    eval_data: str | None = option(None, "evaluation_data folder holding the gold files "
                                          "(blimp_fast/, blimp_filtered/, supplement_*/ ...)")
    glue_data: str | None = option(None, "folder with <task>.valid.jsonl gold files for fine-tuning")
    track: str = option("strict-small", "track, for the official checkpoint order", choices=TRACKS)

    def validate(self) -> None:
        if not self.run:
            raise UsageError("--run is required: the run folder written by reproduce.sh or by train")


@dataclasses.dataclass
class Section:
    title: str
    lines: list[str]


@dataclasses.dataclass
class Layout:
    """Where a report's inputs are: the training runs by name, the results folder, and the models of the
    result tree that belong to the run (None: every one, as in a reproduce.sh run folder)."""

    runs: dict[str, Path]
    results: Path
    models: set[str] | None

    def wants(self, model: str) -> bool:
        return self.models is None or model in self.models

    def model_dirs(self) -> list[Path]:
        """The result-tree folders of the run's models (``<results>/<model>/``)."""
        if not self.results.is_dir():
            return []
        return [p for p in sorted(self.results.iterdir()) if p.is_dir() and self.wants(p.name)]


def is_training_run(folder: Path) -> bool:
    """A folder ``babylm train`` wrote: its metrics, or its final model."""
    return folder.is_dir() and ((folder / "metrics.jsonl").is_file() or (folder / "final").is_dir())


def find_layout(cfg: ReportConfig) -> Layout:
    """The run's training folders and results, for each of the three folders ``--run`` may name."""
    run = Path(cfg.run)
    results = Path(cfg.results) if cfg.results else run / "results"
    if (run / "models").is_dir():  # reproduce.sh: models/<name>/, results/ beside it
        return Layout({p.name: p for p in sorted((run / "models").iterdir()) if is_training_run(p)}, results, None)
    if is_training_run(run):  # one training run; its results are those of the model named after it
        return Layout({run.name: run}, results, {run.name})
    runs = {p.name: p for p in sorted(run.iterdir()) if is_training_run(p)}  # a --save_dir
    return Layout(runs, results, set(runs) or None)


# ---------------------------------------------------------------------------------------------
# Reading inputs (defensively: a bad line or file is noted, never fatal)
# ---------------------------------------------------------------------------------------------


def read_jsonl(path: Path, notes: list[str]) -> list[dict]:
    """Rows of a JSON-lines file (the kit's ``metrics.jsonl``); a run killed mid-write may leave a
    torn last line, so malformed lines are skipped and counted in ``notes``, never fatal."""
    rows, bad = [], 0
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            bad += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    if bad:
        notes.append(f"{path}: skipped {bad} malformed line(s)")
    return rows


def read_json(path: Path, notes: list[str]) -> Any:
    """A JSON file, or None with a note when it cannot be read."""
    try:
        return files.read_json(path)
    except (OSError, KitError) as exc:
        notes.append(str(exc))
        return None


def words_of_checkpoint(run: Path | None, revision: str) -> int | None:
    """Words seen at a milestone: the checkpoint's own record (run_config.json ``progress``) in the
    training run's folder, else the official name (``chck_20M`` -> 20,000,000). Smoke runs lower the
    words per "M", so the record is the truth where it exists."""
    record = run / revision / "run_config.json" if run is not None else None
    if record is not None and record.is_file():
        try:
            words = json.loads(record.read_text(encoding="utf-8")).get("progress", {}).get("words_seen")
        except (OSError, json.JSONDecodeError, AttributeError):
            words = None
        if isinstance(words, int) and words > 0:
            return words
    return words_of_milestone(revision)


def words_of_record(record: dict) -> float | None:
    """Words seen at a metrics.jsonl record (``words_seen``; the trainer writes ``words``)."""
    return _number(record.get("words_seen", record.get("words")))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def find_prediction_files(layout: Layout) -> list[tuple[str, str, str, str, str, Path]]:
    """(model, backend, revision, task, data_dir, path) of every zero-shot predictions.json of the run's models."""
    found = []
    for model_dir in layout.model_dirs():
        for path in sorted(model_dir.glob("*/zero_shot/*/*/*/predictions.json")):
            data_dir, task, backend, _zs, revision = (p.name for p in list(path.parents)[:5])
            found.append((model_dir.name, backend, revision, task, data_dir, path))
    return found


def model_labels(found: list[tuple]) -> dict[tuple[str, str], str]:
    """(model, backend) -> the name the report shows: the model's, or ``<model> (<backend>)`` for a model
    scored with several backends (GPT-BERT: mntp and causal), so their numbers are never mixed."""
    backends: dict[str, set[str]] = defaultdict(set)
    for model, backend, *_ in found:
        backends[model].add(backend)
    return {(m, b): (m if len(bs) == 1 else f"{m} ({b})") for m, bs in backends.items() for b in bs}


def result_year(folder: Path) -> str:
    """The rules a per-task result was scored by: the year its ``summary.json`` records; a kit result
    without one (or with no summary) was scored by the 2025 rules."""
    try:
        run = json.loads((folder / "summary.json").read_text(encoding="utf-8")).get("run") or {}
    except (OSError, ValueError, AttributeError):
        run = {}
    year = run.get("year") if isinstance(run, dict) else None
    return year if year in RULES else Rules.Y2025.value


def load_gold(eval_data: Path | None, data_dir: str, cache: dict, year: str = "2025"):
    """The gold items of one evaluation folder (:class:`eval_export.tasks.TaskData`) as ``year``'s
    rules read them (the rules the predictions were scored by), or None.

    Official folders are read as their task (``blimp_fast`` -> BLiMP fast); any other folder of
    BLiMP-format files (a custom set) as a custom minimal-pair task.
    """
    if eval_data is None:
        return None
    if (data_dir, year) not in cache:
        official = next(((name, eval_set) for (name, eval_set), (_, folder) in tasks.DATA_DIRS.items()
                         if folder == data_dir and name != "reading"), None)
        data = None
        if official is not None:
            try:
                data = tasks.load_task(official[0], official[1], eval_data, year=year)
            except KitError:  # not the official set (e.g. a subset): read what is there as custom pairs
                data = None
        folder = tasks.find_folder(eval_data, data_dir)
        if data is None and folder is not None:
            try:
                data = tasks.load_task(str(folder), "full", eval_data)
            except KitError:
                data = None
        cache[(data_dir, year)] = data
    data = cache[(data_dir, year)]
    return data if data is not None and data.kind == "ranking" else None  # WUG and reading have no gold candidate


def mean_accuracy(scores: dict[str, tuple[int, int]]) -> float | None:
    """Mean over UIDs of the per-UID accuracy (the official BLiMP average), in percent."""
    accs = [c / n for c, n in scores.values() if n]
    return 100.0 * sum(accs) / len(accs) if accs else None


# ---------------------------------------------------------------------------------------------
# Plots (matplotlib with the Agg backend: no display needed)
# ---------------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    write_bytes(path, buf.getvalue())


def plot_losses(curves: dict[str, list[dict]], path: Path) -> None:
    """Loss against words seen (against steps for a run that logs no word counts: never both on one axis)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    by_words = any(words_of_record(r) is not None for rows in curves.values() for r in rows)
    for name, rows in curves.items():
        for key, style in (("train/loss", "-"), ("val/loss", "o--")):
            pts = [(words_of_record(r) if by_words else _number(r.get("step")), _number(r.get(key))) for r in rows]
            pts = [(x, y) for x, y in pts if x is not None and y is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, style, label=f"{name} {key.split('/')[0]}", markersize=3)
    ax.set_xlabel("words seen" if by_words else "optimizer step")
    ax.set_ylabel("loss (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_blimp_curve(points: dict[str, list[tuple[int, float]]], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for model, pts in points.items():
        xs, ys = zip(*sorted(pts))
        ax.plot(xs, ys, "o-", label=model)
    ax.axhline(50, color="grey", lw=0.8, ls=":", label="chance")
    ax.set_xscale("log")
    ax.set_xlabel("words seen (milestone checkpoint)")
    ax.set_ylabel("BLiMP accuracy (%; fast set where scored)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_phenomena(accs: dict[str, float], path: Path) -> None:
    plt = _pyplot()
    names = sorted(accs, key=accs.get)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(names) + 1))
    ax.barh(names, [accs[n] for n in names], color="tab:blue")
    ax.axvline(50, color="grey", lw=0.8, ls=":")
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%)")
    ax.tick_params(axis="y", labelsize=7)
    _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    header = list(header)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        out.append("| " + " | ".join("—" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
                                     for v in row) + " |")
    return out


# The fields of a metrics.jsonl record the report reads; each must be a finite number where present.
LOGGED = ("step", "words_seen", "words", "train/loss", "val/loss")


def _written(value: Any) -> str:
    """A value as the file holds it: NaN, Infinity, 'text'."""
    return repr(value) if isinstance(value, str) else json.dumps(value)


def unusable_values(records: list[dict]) -> tuple[int, list[str]]:
    """(records holding a logged value that is not a finite number, one phrase per such value)."""
    bad, phrases = 0, []
    for i, record in enumerate(records):
        found = [key for key in LOGGED if key in record and _number(record[key]) is None]
        if found:
            bad += 1
            step = _number(record.get("step"))
            where = f"step {int(step)}" if step is not None else f"record {i + 1}"
            phrases += [f"{key} = {_written(record[key])} ({where})" for key in found]
    return bad, phrases


def last_value(records: list[dict], key: str) -> float | str | None:
    """The last record's ``key`` as written: a diverged run shows NaN, not its last finite loss."""
    for record in reversed(records):
        if key in record:
            value = record[key]
            return _number(value) if _number(value) is not None else _written(value)
    return None


def training_section(layout: Layout, out: Path, notes: list[str]) -> tuple[Section | None, dict[str, int]]:
    """Loss curves and final losses per training run; returns the final words seen per run too."""
    curves, final_words, rows = {}, {}, []
    for name, folder in layout.runs.items():
        metrics = folder / "metrics.jsonl"
        records = read_jsonl(metrics, notes) if metrics.is_file() else []
        if not records:
            continue
        bad, phrases = unusable_values(records)
        if bad:
            shown = "; ".join(phrases[:3]) + (f"; and {len(phrases) - 3} more" if len(phrases) > 3 else "")
            notes.append(f"{metrics}: {bad} record(s) with a value that is not a finite number ({shown}); "
                         "left out of the plot (the table shows the last value as written)")
        label = name
        if not (folder / "final").is_dir():
            label = f"{name} (unfinished: no final/)"
            notes.append(f"{folder}: no final/ (the run stopped before its end, or is still running); "
                         "shown as far as its metrics go")
        curves[label] = records
        words = [int(w) for r in records if (w := words_of_record(r)) is not None]
        if words:
            final_words[name] = max(words)
        test_file = folder / "test_results.json"
        test = read_json(test_file, notes) if test_file.is_file() else None
        test = test if isinstance(test, dict) else {}
        ppl = _number(test.get("test/ppl", test.get("perplexity", test.get("test/perplexity"))))
        test_loss = _number(test.get("loss", test.get("test/loss")))
        words_txt = f"{final_words[name]:,}" if name in final_words else None
        rows.append((label, words_txt, last_value(records, "train/loss"), last_value(records, "val/loss"),
                     test_loss, ppl))
    if not curves:
        return None, final_words
    plot_losses(curves, out / "loss.png")
    lines = ["![loss curves](loss.png)", ""]
    lines += _table(["run", "words seen", "last train loss", "last val loss", "test loss", "test perplexity"], rows)
    return Section("Training", lines), final_words


# Tasks scored by a correlation or a fit, not against gold candidates: their numbers come from the
# summary.json that `score` wrote (metric_rows), so their predictions are not re-scored here.
METRIC_TASKS = ("wug_adj", "wug_past", "reading")


def _empty(preds: Any) -> bool:
    """A predictions object with no prediction in it ({} or sections with empty lists)."""
    return isinstance(preds, dict) and not any(isinstance(v, dict) and v.get("predictions") for v in preds.values())


def zero_shot_sections(layout: Layout, cfg: ReportConfig, out: Path,
                       notes: list[str]) -> tuple[list[Section], dict[str, dict[str, float]]]:
    """BLiMP-fast against words seen, BLiMP per phenomenon, and the final scores per task."""
    eval_data = Path(cfg.eval_data) if cfg.eval_data else None
    gold_cache: dict = {}
    curve: dict[str, list[tuple[int, float]]] = defaultdict(list)
    final: dict[str, dict[str, float]] = defaultdict(dict)  # model -> task/data_dir -> accuracy
    final_blimp: dict[str, tuple[dict, Any]] = {}  # model -> (scores, gold task) of its final BLiMP
    unscored = set()
    milestone: dict[tuple[str, int], dict[bool, float]] = defaultdict(dict)
    found = find_prediction_files(layout)
    labels = model_labels(found)
    for run_name, backend, revision, task, data_dir, path in found:
        if task in METRIC_TASKS:
            continue
        model = labels[(run_name, backend)]
        gold = load_gold(eval_data, data_dir, gold_cache, result_year(path.parent))
        if gold is None:
            unscored.add(data_dir)
            continue
        preds = read_json(path, notes)
        from eval_export.zero_shot import score_predictions  # imports torch: only once there is something to score

        if not isinstance(preds, dict) or _empty(preds):
            if preds is not None:
                what = "no predictions in the file" if _empty(preds) else "not a JSON object of predictions"
                notes.append(f"{path}: {what}; {data_dir} of {model} at {revision} left out")
            continue
        scores = score_predictions(preds, gold)
        acc = mean_accuracy(scores)
        if acc is None:
            notes.append(f"{path}: no prediction matches an item of {data_dir}; left out")
            continue
        words = words_of_checkpoint(layout.runs.get(run_name), revision) if words_of_milestone(revision) else None
        if words is not None and task in ("blimp", "custom"):
            # the fast set where a checkpoint has it (the official milestone evaluation), else its one
            # set; the supplement (same task folder) and a custom set of pairs (the smoke run's
            # synthetic_blimp/) are curves of their own, never mixed into BLiMP's
            if task == "custom":
                series = f"{model}: {data_dir} (custom pairs)"
            elif data_dir.startswith("supplement"):
                series = f"{model}: BLiMP supplement"
            else:
                series = model
            milestone[(series, words)]["fast" in data_dir] = acc
        if revision == "main":
            final[model][data_dir] = acc
            # The full filtered set is preferred for the per-phenomenon view; fast if that is all.
            # (the supplement shares the task folder blimp/ but has no phenomena of BLiMP's)
            if data_dir in ("blimp_filtered", "blimp_fast") and (model not in final_blimp or "fast" not in data_dir):
                final_blimp[model] = (scores, gold)
    for (model, words), accs in milestone.items():
        curve[model].append((words, accs.get(True, accs.get(False))))
    if unscored:
        where = "(pass --eval_data)" if eval_data is None else f"for it under {eval_data}"
        notes += [f"{d} not scored: no gold files {where}" for d in sorted(unscored)]
    if not curve:
        curve = collated_curve(layout, cfg.track, notes)
    sections = blimp_sections(curve, final_blimp, out)
    if final:
        dirs = sorted({d for accs in final.values() for d in accs})
        lines = ["Mean accuracy over subtasks (%), final model, each data set as scored.", ""]
        lines += _table(["model", *dirs], [(m, *(final[m].get(d) for d in dirs)) for m in sorted(final)])
        sections.append(Section("Zero-shot scores", lines))
    metrics = metric_rows(layout, notes)
    if metrics:
        lines = ["Tasks scored by a correlation or a fit rather than an accuracy (final model), as the "
                 "scoring command computed them (`summary.json` beside each `predictions.json`).", ""]
        lines += _table(["model", "task", "data", "metric", "value"], metrics)
        sections.append(Section("Other zero-shot metrics", lines))
    return sections, final


def collated_curve(layout: Layout, track: str, notes: list[str]) -> dict[str, list[tuple[int, float]]]:
    """BLiMP-fast against words seen from the collated submissions' ``fast_eval_results``, for when the
    per-checkpoint prediction files are gone."""
    curve: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for model_dir in layout.model_dirs():
        for sub in sorted(model_dir.glob("all_full_preds_and_fast_scores_*.json")):
            data = read_json(sub, notes)
            fast = data.get("fast_eval_results", {}).get("blimp") if isinstance(data, dict) else None
            if not isinstance(fast, list):
                continue
            for name, per_uid in zip(milestones(track), fast):
                vals = [v for v in per_uid.values() if _number(v) is not None] if isinstance(per_uid, dict) else []
                if vals:
                    curve[model_dir.name].append((words_of_milestone(name), 100.0 * sum(vals) / len(vals)))
    return curve


def blimp_sections(curve: dict[str, list[tuple[int, float]]], final_blimp: dict[str, tuple[dict, Any]],
                   out: Path) -> list[Section]:
    """The BLiMP curve over the milestones, and the final model's BLiMP per phenomenon."""
    sections = []
    if curve:
        plot_blimp_curve(curve, out / "blimp_fast_curve.png")
        rows = [(m, f"{w:,}", a) for m, pts in curve.items() for w, a in sorted(pts)]
        lines = ["Mean over paradigms; BLiMP-fast where the checkpoint was scored on it (the official milestone "
                 "evaluation), else the one set it was scored on.", "",
                 "![BLiMP accuracy against words seen](blimp_fast_curve.png)", ""]
        lines += _table(["model", "words seen", "BLiMP accuracy (%)"], rows)
        sections.append(Section("BLiMP across the milestone checkpoints", lines))
    for model, (scores, gold) in sorted(final_blimp.items()):
        by_term: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        terms = {it.uid: it.extra.get("term") for it in gold.items}
        for uid, (correct, total) in scores.items():
            term = str(terms.get(uid) or uid)
            by_term[term][0] += correct
            by_term[term][1] += total
        accs = {t: 100.0 * c / n for t, (c, n) in by_term.items() if n}
        png = "blimp_phenomena_{}.png".format(re.sub(r"[^\w.-]+", "_", model).strip("_"))  # "m (mntp)" -> m_mntp
        plot_phenomena(accs, out / png)
        lines = [f"Final model `{model}`; pairs pooled per phenomenon (BLiMP's `linguistics_term`).", "",
                 f"![BLiMP per phenomenon]({png})", ""]
        lines += _table(["phenomenon", "pairs", "accuracy (%)"],
                        [(t, by_term[t][1], accs[t]) for t in sorted(accs)])
        sections.append(Section(f"BLiMP per phenomenon: {model}", lines))
    return sections


def metric_rows(layout: Layout, notes: list[str]) -> list[tuple[str, str, str, str, float]]:
    """(model, task, data, metric, value) of the final model's tasks that report metrics, not
    accuracies (WUG: Spearman rho; reading: the regression fits), from their summary.json."""
    rows = []
    paths = [p for d in layout.model_dirs() for p in sorted(d.glob("main/zero_shot/*/**/summary.json"))]
    results = layout.results
    labels = model_labels([(p.relative_to(results).parts[0], p.relative_to(results).parts[3]) for p in paths])
    for path in paths:
        data = read_json(path, notes)
        if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
            continue
        parts = path.relative_to(results).parts
        model = labels[(parts[0], parts[3])]
        for key, value in sorted(data["metrics"].items()):
            if _number(value) is not None:
                rows.append((model, str(data.get("task", path.parent.name)), str(data.get("data_dir") or "—"),
                             key, float(value)))
    return rows


def finetune_section(layout: Layout, cfg: ReportConfig, notes: list[str]) -> Section | None:
    glue = Path(cfg.glue_data) if cfg.glue_data else None
    rows = []
    for pred_file in [p for d in layout.model_dirs() for p in sorted(d.glob("main/finetune/*/predictions.json"))]:
        task = pred_file.parent.name
        model = pred_file.parents[3].name
        metrics: dict[str, float] = {}
        # Metrics the fine-tuning command wrote beside its predictions (any JSON of numbers).
        for extra in sorted(pred_file.parent.glob("*.json")):
            if extra.name == "predictions.json":
                continue
            data = read_json(extra, notes)
            if isinstance(data, dict):
                if isinstance(data.get("n_valid"), int):
                    metrics["n"] = data["n_valid"]
                if isinstance(data.get("metrics"), dict):  # eval_export finetune's results.json
                    data = data["metrics"]
                for key, value in data.items():
                    if _number(value) is not None:
                        metrics[key.split("/")[-1].lower()] = float(value)
        gold_file = glue / f"{task}.valid.jsonl" if glue else None
        preds = read_json(pred_file, notes)
        entries = preds.get(task, {}).get("predictions", []) if isinstance(preds, dict) else []
        if preds is not None and not entries:
            notes.append(f"{pred_file}: no predictions in the file; {task} of {model} scored from its metrics "
                         "file alone, if any")
        if gold_file is not None and gold_file.is_file() and entries:
            gold = read_jsonl(gold_file, notes)
            n = min(len(gold), len(entries))
            if n:
                metrics["accuracy"] = sum(e.get("pred") == g.get("label") for e, g in zip(entries, gold)) / n
                metrics["n"] = n
        if metrics:
            rows.append((model, task, int(metrics["n"]) if "n" in metrics else None,
                         *(_percent(metrics.get(key)) for key in ("accuracy", "f1", "mcc"))))
    if not rows:
        return None
    lines = ["Validation sets; accuracy, F1 and MCC in percent (MCC ×100)."]
    lines += [""] + _table(["model", "task", "examples", "accuracy", "F1", "MCC"], rows)
    return Section("Fine-tuning", lines)


def _percent(value: float | None) -> float | None:
    """Fractions as percentages; values already above 1 are taken as percentages."""
    return None if value is None else (100 * value if value <= 1 else value)


def comparison_section(final: dict[str, dict[str, float]], track: str, synthetic: bool = False) -> Section:
    ours = []
    tiny = False
    for model, accs in sorted(final.items()):
        blimp = accs.get("blimp_filtered", accs.get("blimp_fast"))
        supp = accs.get("supplement_filtered", accs.get("supplement_fast"))
        sets = [name for name in ("blimp_filtered", "supplement_filtered") if name in accs]
        sets += [name for name in ("blimp_fast", "supplement_fast") if name in accs and name.replace("fast", "filtered") not in accs]
        source = "measured here" + (f" ({', '.join(sets)})" if sets else "")
        if synthetic and blimp is not None:
            # the smoke run scores the kit's own synthetic pairs: a pipeline check, not BLiMP
            blimp, source = f"{blimp:.2f} (synthetic pairs: not comparable)", "measured here on the kit's synthetic pairs"
        elif "synthetic_blimp" in accs:
            # the smoke run with the official data: a tiny model that never saw natural text
            tiny = True
            source += "; a smoke model trained on synthetic text only"
        ours.append((f"**{model}** (this run)", "this kit", blimp, supp, source))
    theirs = [(m, y, b, s, f"published: {src}") for t, m, y, b, s, src in OFFICIAL_BASELINES if t == track]
    lines = [f"Track `{track}`. Rows marked *published* are the organisers' own numbers for their "
             "baselines, copied from their READMEs (see `eval_export/report.py`); they were not measured by "
             "this kit, and their models trained far longer than a smoke run. Ours is the mean over "
             "BLiMP paradigms (UIDs) on the data set scored (filtered if present, else fast).", ""]
    if tiny:
        lines += ["The smoke model (2 layers, 64 hidden units, a few hundred thousand words of the kit's "
                  "synthetic child-directed text) scores the official BLiMP and supplement at or below chance (50%), "
                  "as expected: the row shows that the official tasks run end to end, not what the kit's "
                  "models reach. Its score on the synthetic pairs (`synthetic_blimp` above) is the pipeline "
                  "check.", ""]
    lines += _table(["model", "year", "BLiMP", "supplement", "source"], ours + theirs)
    return Section("Comparison with the official baselines", lines)


def write_report(cfg: ReportConfig) -> Path:
    """Build ``report.md`` and its PNGs; returns the Markdown path.

    The report is written into a temporary folder beside ``--out`` and renamed into place only when
    it is complete: a full disk or a kill leaves the previous report (or none), never half of one.
    """
    run = Path(cfg.run)
    if not run.is_dir():
        raise InputError(f"run folder {run} does not exist; pass the folder reproduce.sh or train wrote "
                         "(runs/<preset>, or <save_dir>/<run_name>)")
    out = Path(cfg.out) if cfg.out else run / "report"
    check_out(out)
    clear_leftovers(out)
    layout = find_layout(cfg)
    with files.atomic_dir(out, overwrite=True) as tmp:
        write_text(tmp / "report.md", report_text(cfg, layout, tmp))
    return out / "report.md"


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that holds anything but a report: the whole folder is replaced."""
    if out.is_file():
        raise UsageError(f"--out: {out} is a file; give a folder for report.md and its plots")
    if out.is_dir():
        other = next((p.name for p in sorted(out.iterdir()) if not (p.name == "report.md" or p.suffix == ".png")), None)
        if other is not None:
            raise UsageError(f"--out: {out} holds {other}, which is not part of a report, and the folder is replaced "
                             "as a whole; choose a new folder or the report's own")


def clear_leftovers(out: Path) -> None:
    """What a killed report left beside ``out``: its unfinished temporary folder, or the previous report
    set aside between the two renames (put back when ``out`` is missing). Only the report's own names
    are touched: the run folder may hold a training run's temporary files."""
    if not out.parent.is_dir():
        return
    for entry in sorted(out.parent.iterdir()):
        if entry.name.startswith(f".old-{out.name}-") and not out.exists():
            entry.rename(out)
        elif entry.name.startswith((f".tmp-{out.name}-", f".old-{out.name}-")) and entry.is_dir():
            files.remove_dir(entry)


def report_text(cfg: ReportConfig, layout: Layout, out: Path) -> str:
    """The Markdown of the report; its plots are written into ``out``."""
    run = Path(cfg.run)
    notes: list[str] = []
    sections: list[Section] = []
    missing: list[str] = []

    training, _ = training_section(layout, out, notes)
    if training:
        sections.append(training)
    else:
        missing.append(f"training curves: no metrics.jsonl of a training run in {run} (its models/<run>/, "
                       "the run folder itself, or the runs of a --save_dir)")
    zs, final = zero_shot_sections(layout, cfg, out, notes)
    sections += zs
    if not zs:
        missing.append(f"zero-shot results: no scored predictions under {layout.results}/"
                       + (" (pass --results: the folder `eval_export score --results` wrote)" if not cfg.results else ""))
    ft = finetune_section(layout, cfg, notes)
    if ft:
        sections.append(ft)
    else:
        missing.append(f"fine-tuning: no {layout.results}/<model>/main/finetune/<task>/ results")
    # The smoke run links the kit's synthetic minimal pairs as blimp_filtered/ (UIDs synthetic_*).
    synthetic = any(p.is_file() and '"synthetic_' in p.read_text(encoding="utf-8")[:200]
                    for d in layout.model_dirs()
                    for p in d.glob("main/zero_shot/*/blimp/blimp_filtered/predictions.json"))
    sections.append(comparison_section(final, cfg.track, synthetic))


    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# BabyLM run report: `{run.name}`", "",
             f"Run folder `{run}`, generated {stamp} by babylm-kit {code_version()}.", ""]
    for section in sections:
        lines += [f"## {section.title}", "", *section.lines, ""]
    if missing or notes:
        lines += ["## Not in this report", ""] + [f"- {m}" for m in missing + notes] + [""]
    return "\n".join(lines)
