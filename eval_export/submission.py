"""Write the official files: per-task predictions (2025/2026 result tree), the collated leaderboard
file, the 2024 and 2023 formats, and a human summary (Markdown, JSON, PNG).

Every file goes through :mod:`babylm.files` (temp file + rename). JSON meant for the organisers is
written like Python's ``json.dump`` defaults, as the official code does: separators ", " and ": ",
ASCII escapes, no indent, bare ``NaN`` allowed, no trailing newline (babylm-org/babylm-eval,
``strict/evaluation_pipeline/collate_preds.py``).
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

from babylm import files
from babylm.challenge import DEFAULT_RULES, Rules, milestones
from babylm.errors import InputError
from eval_export import collation, zero_shot
from eval_export import tasks as tasks_lib

# Top-level keys of the 2025 collated file, in the official order (babylm-org/babylm-eval at 45fe2c1,
# strict/evaluation_pipeline/collate_preds.py); the 2026 file is eval_export.collation's.
COLLATED_KEYS = ("blimp", "blimp_supplement", "ewok", "entity_tracking", "wug_adj", "wug_past", "comps", "reading", "aoa", "glue")
FAST_KEYS = ("blimp", "blimp_supplement", "ewok", "entity_tracking", "wug_adj", "wug_past", "reading")
GLUE_TASKS = ("boolq", "mnli", "mrpc", "multirc", "qqp", "rte", "wsc")
# section of the collated file -> (--tasks name, task folder, full data folder, fast data folder)
SECTIONS = {
    "blimp": ("blimp", "blimp", "blimp_filtered", "blimp_fast"),
    "blimp_supplement": ("blimp_supplement", "blimp", "supplement_filtered", "supplement_fast"),
    "ewok": ("ewok", "ewok", "ewok_filtered", "ewok_fast"),
    "entity_tracking": ("entity_tracking", "entity_tracking", "entity_tracking", "entity_tracking_fast"),
    "wug_adj": ("wug_adj", "wug_adj", "wug_adj_nominalization", "wug_adj_nominalization"),
    "wug_past": ("wug_past", "wug_past", "wug_past_tense", "wug_past_tense"),
    "comps": ("comps", "comps", "comps", "comps"),
    "reading": ("reading", "reading", "", ""),
}


def dumps(obj: Any) -> str:
    """Python ``json.dump`` defaults: ", " / ": ", ASCII escapes, NaN allowed, no newline."""
    return json.dumps(obj)


def revision_dir(results: Path, model: str, revision: str) -> Path:
    """``results/<model>/<revision>``: everything scored for one revision of a model."""
    return Path(results) / model / revision


def task_dir(results: Path, model: str, revision: str, backend: str, task: str, data_dir: str) -> Path:
    """``results/<model>/<revision>/zero_shot/<backend>/<task>/<data_dir>`` (reading has no data_dir)."""
    path = revision_dir(results, model, revision) / "zero_shot" / backend / task
    return path / data_dir if data_dir else path


# Options of `score` that change what a task's predictions hold, beyond the model, revision, backend and
# data folder that the result's path already names. Each is recorded with the result (summary.json,
# "run") and an existing result is reused only when it was made with the same values.
RESULT_OPTIONS = ("weights", "year", "tie_seed", "limit", "bos_rule", "pll_variant", "reduction", "temperature",
                  "reading_token_types", "dtype", "trust_remote_code")
READING_OPTIONS = ("reading_space", "reading_token_types")  # they change the reading task alone


def _recorded(made: dict[str, Any], name: str) -> Any:
    """An option as a result records it. A kit result without a year was made by the 2025 rules (the
    only ones the kit knew before --year, and what --year 2025 still writes); its tie seed broke no tie."""
    if name == "year":
        return made.get("year", Rules.Y2025.value)
    if name == "tie_seed" and made.get("year", Rules.Y2025) == Rules.Y2025:
        return None
    return made.get(name)


def made_otherwise(out_dir: Path, options: dict[str, Any]) -> str | None:
    """How the result in ``out_dir`` was made differently from ``options`` (``--limit 5, not 0``), or
    None when it may be reused: same values of every :data:`RESULT_OPTIONS` entry it recorded. A
    result with no record of an option (written by another tool, or before the option existed)
    is not held against it, except the year: a kit result without one was made by the 2025 rules."""
    path = Path(out_dir) / "summary.json"
    summary = files.read_json(path) if path.is_file() else {}
    made = summary.get("run") or {}
    if not made:
        return None
    for name in RESULT_OPTIONS:
        if name in READING_OPTIONS and summary.get("task") != "reading":
            continue
        theirs, ours = _recorded(made, name), _recorded(options, name)
        if theirs is not None and ours is not None and theirs != ours:
            if name == "weights":  # the same folder name, other weights: another model, or the run trained again
                return f"other weights (fingerprint {theirs}, not {ours}: another model or a retrained one)"
            return f"--{name} {theirs}, not {ours}"
    return None


# ---------------------------------------------------------------------------------------------
# Per-task predictions
# ---------------------------------------------------------------------------------------------


def predictions_object(result: zero_shot.TaskResult) -> dict[str, Any]:
    """The official per-task object: ``{UID: {"predictions": [{"id": "<UID>_<n>", "pred": ...}]}}``.

    ``n`` counts the items of one UID in file order; ``pred`` is the chosen candidate's official
    string; WUG entries add ``prob``; reading uses integer ids with ``pred`` and ``prev_pred``.
    """
    data = result.data
    if data.kind == "reading":
        preds = [{"id": r.index, "pred": s, "prev_pred": p}
                 for r, s, p in zip(data.rows, result.surprisal, result.prev_surprisal)]
        return {"reading": {"predictions": preds}}
    out: dict[str, Any] = {}
    for k, (it, best) in enumerate(zip(data.items, result.chosen)):
        block = out.setdefault(it.uid, {"predictions": []})["predictions"]
        entry: dict[str, Any] = {"id": f"{it.uid}_{len(block)}", "pred": it.preds[best]}
        if data.kind == "wug":
            entry["prob"] = result.probs[k]
        block.append(entry)
    return out


def write_task(result: zero_shot.TaskResult, out_dir: Path, meta: dict[str, Any], overwrite: bool) -> Path:
    """Write ``predictions.json`` (official), ``scores.json`` and ``summary.json`` (ours) atomically."""
    with files.atomic_dir(out_dir, overwrite=overwrite) as tmp:
        files.write_text(tmp / "predictions.json", dumps(predictions_object(result)))
        summary = {**zero_shot.task_summary(result), "run": meta}
        files.write_json(tmp / "summary.json", _finite(summary))
        if result.scores:
            per_item = [{"uid": it.uid, "scores": s, "chosen": c, "tie": t}
                        for it, s, c, t in zip(result.data.items, result.scores, result.chosen, result.ties)]
            files.write_text(tmp / "scores.json", json.dumps(per_item))
    return out_dir


def _finite(obj: Any) -> Any:
    """NaN -> None for our own (strict JSON) summaries."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------------------------
# Collation (2025/2026 leaderboard file)
# ---------------------------------------------------------------------------------------------


def collate(results: Path, model: str, backend: str, track: str, allow_partial: bool = False,
            eval_data: Path | None = None, year: str = DEFAULT_RULES,
            ewok_password: str | None = None) -> tuple[Path, list[str]]:
    """Build ``results/<model>/all_full_preds_and_fast_scores_<backend>.json`` by ``year``'s rules.

    2026 (the default): the final 2026 collator, see :mod:`eval_export.collation` (its fast metrics are
    computed from the milestones' predictions against the fast gold data under ``eval_data``).

    2025: reads the full-eval predictions of revision ``main``, the fine-tuning predictions (``glue``)
    and the fast-eval predictions of every ``chck_*`` milestone (``fast_eval_results``, metrics in
    the official checkpoint order, taken from each task's ``summary.json``). Missing pieces and wrong
    counts raise InputError, unless ``allow_partial``: then what exists is collated into
    ``..._partial.json`` (not a valid submission; for smoke runs) and the problems are returned.
    """
    if Rules(year) is Rules.Y2026:
        return collation.collate(results, model, backend, track, Path(eval_data or tasks_lib.DEFAULT_EVAL_DATA),
                                 allow_partial, ewok_password)
    base = Path(results) / model
    if not base.is_dir():
        raise InputError(f"{base}: no results for model {model!r}; run `python -m eval_export score` first")
    missing: list[str] = []
    out: dict[str, Any] = {}
    for key in COLLATED_KEYS:
        if key == "aoa":
            path = base / "main" / "zero_shot" / backend / "AoA_word" / "surprisal.json"
            if path.is_file():
                out["aoa"] = files.read_json(path)
            else:
                missing.append(f"aoa ({path})")
            continue
        if key == "glue":
            glue = {}
            for t in GLUE_TASKS:
                path = base / "main" / "finetune" / t / "predictions.json"
                if path.is_file():
                    glue.update(files.read_json(path))
                else:
                    missing.append(f"glue.{t} ({path})")
            out["glue"] = glue
            continue
        _, task, full_dir, _ = SECTIONS[key]
        path = task_dir(results, model, "main", backend, task, full_dir) / "predictions.json"
        if not path.is_file():
            missing.append(f"{key} ({path})")
            continue
        obj = files.read_json(path)
        problem = _count_problem(obj, full_dir or "reading")
        if problem and not allow_partial:
            raise InputError(f"{path}: {problem}")
        if problem:
            missing.append(f"{key}: {problem} ({path})")
        out[key] = obj
    fast: dict[str, list] = {k: [] for k in FAST_KEYS}
    for chck in milestones(track):
        for key in FAST_KEYS:
            _, task, _, fast_dir = SECTIONS[key]
            folder = task_dir(results, model, chck, backend, task, fast_dir)
            metric = _fast_metric(key, folder)
            if metric is None:
                missing.append(f"fast_eval_results.{key}[{chck}] ({folder / 'summary.json'})")
            else:
                fast[key].append(metric)
    out["fast_eval_results"] = fast
    if missing and not allow_partial:
        shown = "; ".join(missing[:5]) + (f"; ... {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(f"cannot collate {model}: {len(missing)} missing piece(s): {shown}. "
                         "Score them, or pass --allow_partial true for a smoke-run file (not a valid submission)")
    name = f"all_full_preds_and_fast_scores_{backend}{'_partial' if missing else ''}.json"
    path = files.write_text(base / name, dumps(out))
    if missing:
        files.write_json(base / f"collate_missing_{backend}.json", {"file": name, "missing": missing})
    return path, missing


def _count_problem(obj: dict, data_dir: str) -> str | None:
    expected = tasks_lib.EXPECTED.get(data_dir)
    if not expected or not isinstance(obj, dict):
        return None
    counts = {k.lower(): len(v.get("predictions", [])) for k, v in obj.items()}
    if "counts" in expected:
        for key, n in expected["counts"].items():
            if counts.get(key.lower()) != n:
                return f"{key} has {counts.get(key.lower(), 0)} predictions, the official set has {n}"
        return None
    if len(counts) != expected["n_uids"]:
        return f"{len(counts)} subtasks, the official set has {expected['n_uids']}"
    if "total" in expected and sum(counts.values()) != expected["total"]:
        return f"{sum(counts.values())} predictions in all, the official set has {expected['total']}"
    return None


def _fast_metric(key: str, folder: Path) -> dict | None:
    """One checkpoint's entry of ``fast_eval_results``: {UID: accuracy} (fractions), {"wug_adj": rho},
    or {"spr": x, "rt": y}; taken from the ``summary.json`` written at scoring time."""
    path = folder / "summary.json"
    if not (path.is_file() and (folder / "predictions.json").is_file()):
        return None
    summary = files.read_json(path)
    if key == "reading" or key.startswith("wug"):
        return summary.get("metrics")
    return {uid: v["accuracy"] for uid, v in summary.get("subtasks", {}).items()}


# ---------------------------------------------------------------------------------------------
# 2024 and 2023 formats
# ---------------------------------------------------------------------------------------------


def _load_revision_sections(results: Path, model: str, revision: str, backend: str) -> dict[str, dict]:
    sections = {}
    for key in ("blimp", "blimp_supplement", "ewok"):
        _, task, full_dir, _ = SECTIONS[key]
        path = task_dir(results, model, revision, backend, task, full_dir) / "predictions.json"
        if path.is_file():
            sections[key] = files.read_json(path)
    glue = {}
    for t in GLUE_TASKS:
        path = Path(results) / model / revision / "finetune" / t / "predictions.json"
        if path.is_file():
            glue.update(files.read_json(path))
    sections["glue"] = glue
    return sections


def _leading_space(section: dict) -> dict:
    """2024 zero-shot preds are the continuation as lm-eval saw it: with one leading space."""
    return {uid: {"predictions": [{"id": p["id"], "pred": p["pred"] if p["pred"].startswith(" ") else " " + p["pred"]}
                                  for p in v["predictions"]]} for uid, v in section.items()}


def write_2024(results: Path, model: str, backend: str, revision: str = "main") -> Path:
    """``results/<model>/<model>_textonly_predictions.json.gz``: keys glue, blimp, blimp_supplement, ewok."""
    sections = _load_revision_sections(results, model, revision, backend)
    if "blimp" not in sections:
        raise InputError(f"{results}/{model}: no full BLiMP predictions to export; run score --eval_set full first")
    out = {"glue": sections["glue"]}
    for key in ("blimp", "blimp_supplement", "ewok"):
        if key in sections:
            out[key] = _leading_space(sections[key])
    data = gzip.compress(dumps(out).encode("ascii"), mtime=0)  # mtime=0: byte-identical reruns
    return files.write_bytes(Path(results) / model / f"{model}_textonly_predictions.json.gz", data)


def write_2023(results: Path, model: str, backend: str, revision: str = "main") -> Path:
    """``results/<model>/all_predictions.json``: JSON Lines ``{"task", "sub_task", "predictions"}``,
    GLUE first, then BLiMP and the supplement (2023 order). Sub-tasks are the 2025 data's UIDs
    (the 2023 data grouped BLiMP into 12 phenomenon files that are not available here), and GLUE
    preds are strings, as the 2023 collector copied them from text files."""
    sections = _load_revision_sections(results, model, revision, backend)
    if "blimp" not in sections:
        raise InputError(f"{results}/{model}: no full BLiMP predictions to export; run score --eval_set full first")
    lines = []
    for sub, v in sections["glue"].items():
        lines.append({"task": "glue", "sub_task": sub, "predictions": [{"id": p["id"], "pred": str(p["pred"])} for p in v["predictions"]]})
    for key, task in (("blimp", "blimp"), ("blimp_supplement", "supplement")):
        for sub, v in _leading_space(sections.get(key, {})).items():
            lines.append({"task": task, "sub_task": sub, "predictions": v["predictions"]})
    return files.write_text(Path(results) / model / "all_predictions.json", "".join(json.dumps(x) + "\n" for x in lines))


# ---------------------------------------------------------------------------------------------
# Human summary
# ---------------------------------------------------------------------------------------------


def write_summary(results: Path, model: str, revision: str, backend: str) -> list[Path]:
    """Collect every ``summary.json`` of a revision into ``summary.md``, ``summary.json`` and
    ``blimp_accuracy.png`` (BLiMP accuracy per phenomenon) under ``results/<model>/<revision>/``."""
    root = Path(results) / model / revision
    found = sorted((root / "zero_shot" / backend).glob("**/summary.json"))
    if not found:
        raise InputError(f"{root / 'zero_shot' / backend}: no scored tasks; run `python -m eval_export score` first")
    tasks_out = []
    for path in found:
        s = files.read_json(path)
        s.pop("run", None)
        s["path"] = str(path.parent.relative_to(root))
        tasks_out.append(s)
    md = [f"# {model} @ {revision} ({backend})", ""]
    md += ["| task | data | score | ties | items |", "|---|---|---|---|---|"]
    for s in tasks_out:
        score = s.get("accuracy")
        score_txt = f"{100 * score:.2f}% acc" if isinstance(score, float) else \
            ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} n/a" for k, v in (s.get("metrics") or {}).items())
        if isinstance(score, float) and s.get("metrics"):
            score_txt += "; " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} n/a" for k, v in s["metrics"].items())
        flag = "" if s.get("official_counts") else " (subset)"
        md.append(f"| {s['task']} | {s['data_dir'] or '-'}{flag} | {score_txt} | {s.get('ties', '-')} | {s['n_items']} |")
    for s in tasks_out:
        if s.get("subtasks"):
            md += ["", f"## {s['task']} / {s['data_dir']}", "", "| subtask | accuracy | ties | n |", "|---|---|---|---|"]
            for uid, v in s["subtasks"].items():
                md.append(f"| {uid} | {100 * v['accuracy']:.2f}% | {v['ties']} | {v['n']} |")
    written = [files.write_text(root / "summary.md", "\n".join(md) + "\n"),
               files.write_json(root / "summary.json", {"model": model, "revision": revision, "backend": backend, "tasks": tasks_out})]
    blimp = next((s for s in tasks_out if s["task"] == "blimp" and s["data_dir"] in ("blimp_filtered", "blimp_fast")), None)
    if blimp is None:
        blimp = next((s for s in tasks_out if s.get("subtasks") and s["task"] in ("blimp", "custom")), None)
    if blimp is not None:
        written.append(_bar_chart(blimp, root / "blimp_accuracy.png", f"{model} @ {revision}: {blimp['data_dir']}"))
    return written


def _bar_chart(summary: dict, path: Path, title: str) -> Path:
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    names = sorted(summary["subtasks"])
    acc = [100 * summary["subtasks"][n]["accuracy"] for n in names]
    fig, ax = plt.subplots(figsize=(8, max(3, 0.18 * len(names) + 1)))
    ax.barh(range(len(names)), acc, color="#4c72b0")
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.axvline(50, color="grey", linestyle="--", linewidth=0.8)  # chance for a minimal pair
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.invert_yaxis()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return files.write_bytes(path, buf.getvalue())
