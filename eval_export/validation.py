"""Check a predictions file against the gold data: every key, every count, the order, the preds.

Accepted files: a per-task ``predictions.json`` of the 2025 result tree (the task is read from
its path), the collated ``all_full_preds_and_fast_scores_<backend>.json``, the 2024
``*_textonly_predictions.json.gz`` and the 2023 ``all_predictions.json`` (JSON Lines). The first
problem is raised as an InputError with its path inside the file, e.g.
``blimp.adjunct_island.predictions[17].pred``. Sections whose gold files are not available are
checked for structure only and listed as not checked.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import math
import os
from pathlib import Path
from typing import Any

from babylm import files
from babylm.challenge import TRACKS, milestones
from babylm.errors import InputError, KitError
from eval_export import submission, tasks


@dataclasses.dataclass
class Report:
    file: Path
    kind: str
    checked: list[str] = dataclasses.field(default_factory=list)
    unchecked: list[str] = dataclasses.field(default_factory=list)

    def text(self) -> str:
        lines = [f"OK {self.file} ({self.kind}): checked against gold: {', '.join(self.checked) or 'nothing'}"]
        if self.unchecked:
            lines.append("not checked against gold (structure only): " + "; ".join(self.unchecked))
        return "\n".join(lines)


class _Problem(Exception):
    def __init__(self, where: str, what: str):
        super().__init__(f"{where}: {what}")


class _Gold:
    """Gold data, loaded lazily: (section, eval set) -> {uid: [candidate strings per item]}."""

    def __init__(self, root: Path, ewok_password: str | None):
        self.root = root
        self.password = ewok_password or os.environ.get(tasks.EWOK_PASSWORD_ENV)

    def get(self, section: str, eval_set: str) -> tuple[Any, str | None]:
        """(gold, None), (gold, note) for a non-official set, or (None, reason it is unavailable)."""
        return _load_gold(self.root.resolve(), section, eval_set, self.password)

    def glue(self, task: str) -> tuple[list[int] | None, str | None]:
        folder = tasks.find_folder(self.root, "glue_filtered")
        path = folder / f"{task}.valid.jsonl" if folder else None
        if path is None or not path.is_file():
            return None, f"no glue_filtered/{task}.valid.jsonl"
        return [int(r["label"]) for r in files.read_jsonl(path, str(path))], None


@functools.lru_cache(maxsize=16)
def _load_gold(root: Path, section: str, eval_set: str, password: str | None) -> tuple[Any, str | None]:
    """Candidate strings per item of one gold task (cached: validating several files reads it once)."""
    try:
        data = tasks.load_task(section, eval_set, root, password)
    except KitError as exc:
        # Not the official set (e.g. the kit's synthetic pairs linked as blimp_filtered/ by the
        # smoke run): check against the files that are there, as a custom minimal-pair set.
        folder = tasks.find_folder(root, tasks.DATA_DIRS[(section, eval_set)][1]) if (section, eval_set) in tasks.DATA_DIRS else None
        if section not in ("blimp", "blimp_supplement") or folder is None:
            return None, str(exc)
        try:
            data = tasks.load_task(str(folder), eval_set, root)
        except KitError:
            return None, str(exc)
        reason = f"custom set {folder}, not the official one"
    else:
        reason = None
    if data.kind == "reading":
        return [r.index for r in data.rows], None
    gold: dict[str, list[set[str]]] = {}
    for it in data.items:
        gold.setdefault(it.uid, []).append({p.strip() for p in it.preds})
    return gold, reason


def validate_file(path: Path, eval_data: Path, ewok_password: str | None = None) -> Report:
    """Validate one file; raises InputError naming the first problem's path inside the file."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    gold = _Gold(eval_data, ewok_password)
    try:
        kind, obj = _read(path)
        report = Report(path, kind)
        if kind == "per-task":
            section, eval_set = _section_of(path)
            _check_section(section, section, obj, eval_set, gold, report)
        elif kind == "collated":
            if path.name.endswith("_partial.json"):
                report.kind = "collated, PARTIAL: not a valid submission"
            # collate --allow_partial names its output *_partial.json: every section it holds is
            # checked as strictly as in a full file; the absent ones are listed, not failed.
            _check_collated(obj, gold, report, partial=path.name.endswith("_partial.json"))
        elif kind == "2024":
            for key in ("glue", "blimp", "blimp_supplement"):
                if key not in obj:
                    raise _Problem(key, "missing section")
            if "ewok" not in obj:
                report.unchecked.append("ewok: absent from the file")
            for key, value in obj.items():
                if key == "glue":
                    _check_glue(value, gold, report, "glue")
                elif key in submission.SECTIONS:
                    _check_section(key, key, value, "full", gold, report)
                else:
                    report.unchecked.append(f"{key}: no gold data (multimodal)")
        else:  # 2023 JSON Lines
            _check_2023(obj, gold, report)
    except _Problem as exc:
        raise InputError(f"{path}: {exc}") from None
    return report


def _read(path: Path) -> tuple[str, Any]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except OSError as exc:
            raise InputError(f"{path}: not a gzip file ({exc})") from None
    text = raw.decode("utf-8")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) > 1:  # JSON Lines: the 2023 format
            rows = []
            for n, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise InputError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            return "2023", rows
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object at the top level")
    if path.name.endswith(".json.gz") or (path.suffix == ".gz"):
        return "2024", obj
    if "fast_eval_results" in obj or path.name.startswith("all_full_preds_and_fast_scores"):
        return "collated", obj
    return "per-task", obj


def _section_of(path: Path) -> tuple[str, str]:
    """Which task a per-task ``predictions.json`` holds, from its folder (the official layout)."""
    folder = path.parent.name
    for section, (_, task, full_dir, fast_dir) in submission.SECTIONS.items():
        if section == "reading" and folder == "reading":
            return "reading", "full"
        if folder == full_dir and path.parent.parent.name == task:
            return section, "full"
        if folder == fast_dir and path.parent.parent.name == task:
            return section, "fast"
    raise InputError(f"{path}: cannot tell the task from the path; keep the official layout "
                     "<task>/<data_dir>/predictions.json (e.g. blimp/blimp_filtered/predictions.json)")


def _check_collated(obj: dict, gold: _Gold, report: Report, partial: bool = False) -> None:
    present = [k for k in submission.COLLATED_KEYS if k in obj]
    order = [k for k in obj if k in submission.COLLATED_KEYS]
    if order != present:
        raise _Problem("(top level)", f"sections out of the official order: {', '.join(order)}")
    for key in submission.COLLATED_KEYS:
        if key not in obj:
            if not partial:
                raise _Problem(key, "missing section")
            report.unchecked.append(f"{key}: absent (partial file, not a valid submission)")
    for key in present:
        if key == "glue":
            _check_glue(obj["glue"], gold, report, "glue")
        elif key == "aoa":
            if not isinstance(obj["aoa"], dict) or "results" not in obj["aoa"]:
                raise _Problem("aoa", "expected the surprisal.json object with 'metadata' and 'results'")
            report.unchecked.append("aoa: no gold data here")
        else:
            _check_section(key, key, obj[key], "full", gold, report)
    fast = obj.get("fast_eval_results")
    if partial and fast is None:
        report.unchecked.append("fast_eval_results: absent (partial file)")
        return
    if not isinstance(fast, dict):
        raise _Problem("fast_eval_results", "missing or not an object")
    lengths = set()
    for key in submission.FAST_KEYS:
        if partial and key not in fast:
            report.unchecked.append(f"fast_eval_results.{key}: absent (partial file)")
            continue
        if not isinstance(fast.get(key), list):
            raise _Problem(f"fast_eval_results.{key}", "missing list")
        lengths.add(len(fast[key]))
        for i, element in enumerate(fast[key]):
            if not isinstance(element, dict):
                raise _Problem(f"fast_eval_results.{key}[{i}]", "expected an object of metrics")
    valid = {len(milestones(t)) for t in TRACKS}
    if partial:
        report.checked.append(f"fast_eval_results (shape; partial: {sorted(lengths)} checkpoint(s))")
        return
    if len(lengths) != 1 or not lengths <= valid:
        raise _Problem("fast_eval_results", "lists must all hold one entry per checkpoint "
                                            f"({' or '.join(map(str, sorted(valid)))}), got {sorted(lengths)}")
    report.checked.append("fast_eval_results (shape)")


def _check_section(section: str, where: str, obj: Any, eval_set: str, gold: _Gold, report: Report) -> None:
    if not isinstance(obj, dict):
        raise _Problem(where, "expected an object of subtasks")
    ref, reason = gold.get(section, eval_set)
    if section == "reading":
        _check_reading(obj, ref, where)
    elif ref is None:
        _check_structure(obj, where)
    else:
        _check_ranking(obj, ref, where, wug=section.startswith("wug"))
    if ref is None:
        report.unchecked.append(f"{where}: {reason}")
    else:
        report.checked.append(f"{where} ({reason})" if reason else where)


def _match_keys(obj: dict, ref: dict, where: str) -> dict[str, str]:
    """gold uid -> key used in the file (exact, else case-insensitive as the official check)."""
    lower = {k.lower(): k for k in obj}
    mapping = {}
    for uid in ref:
        key = uid if uid in obj else lower.get(uid.lower())
        if key is None:
            raise _Problem(f"{where}.{uid}", "missing subtask")
        mapping[uid] = key
    extra = sorted(set(obj) - set(mapping.values()))
    if extra:
        raise _Problem(f"{where}.{extra[0]}", "unexpected subtask (not in the gold data)")
    return mapping


def _predictions(obj: dict, key: str, where: str) -> list:
    block = obj[key]
    preds = block.get("predictions") if isinstance(block, dict) else None
    if not isinstance(preds, list):
        raise _Problem(f"{where}.{key}.predictions", "missing list of predictions")
    return preds


def _check_ranking(obj: dict, ref: dict, where: str, wug: bool) -> None:
    for uid, key in _match_keys(obj, ref, where).items():
        preds = _predictions(obj, key, where)
        items = ref[uid]
        if len(preds) != len(items):
            raise _Problem(f"{where}.{key}.predictions", f"{len(preds)} predictions, the gold data has {len(items)}")
        for i, (p, cands) in enumerate(zip(preds, items)):
            at = f"{where}.{key}.predictions[{i}]"
            if not isinstance(p, dict):
                raise _Problem(at, "expected an object with id and pred")
            if p.get("id") != f"{key}_{i}":
                raise _Problem(f"{at}.id", f"expected {key}_{i!s}, got {p.get('id')!r} (order must follow the gold file)")
            pred = p.get("pred")
            if not isinstance(pred, str):
                raise _Problem(f"{at}.pred", f"expected a string, got {type(pred).__name__}")
            if pred.strip() not in cands:
                raise _Problem(f"{at}.pred", f"{pred.strip()[:60]!r} is not a candidate of gold item {i}")
            if wug:
                prob = p.get("prob")
                if not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
                    raise _Problem(f"{at}.prob", f"expected a probability, got {prob!r}")


def _check_structure(obj: dict, where: str) -> None:
    for key in obj:
        for i, p in enumerate(_predictions(obj, key, where)):
            if not isinstance(p, dict) or p.get("id") != f"{key}_{i}":
                raise _Problem(f"{where}.{key}.predictions[{i}].id", f"expected {key}_{i}")
            if "pred" not in p:
                raise _Problem(f"{where}.{key}.predictions[{i}].pred", "missing")


def _check_reading(obj: dict, ref: list[int] | None, where: str) -> None:
    if set(obj) != {"reading"}:
        raise _Problem(where, "expected exactly one key, 'reading'")
    preds = _predictions(obj, "reading", where)
    if ref is not None and len(preds) != len(ref):
        raise _Problem(f"{where}.reading.predictions", f"{len(preds)} predictions, the gold data has {len(ref)}")
    for i, p in enumerate(preds):
        at = f"{where}.reading.predictions[{i}]"
        want = ref[i] if ref is not None else None
        if not isinstance(p, dict) or not isinstance(p.get("id"), int) or (want is not None and p["id"] != want):
            raise _Problem(f"{at}.id", f"expected the integer row index {want if want is not None else ''}".rstrip())
        if not isinstance(p.get("pred"), (int, float)) or not math.isfinite(p["pred"]):
            raise _Problem(f"{at}.pred", "expected a finite surprisal")
        if not isinstance(p.get("prev_pred"), (int, float)):
            raise _Problem(f"{at}.prev_pred", "expected a number (NaN when there is no previous word)")


def _check_glue(obj: Any, gold: _Gold, report: Report, where: str) -> None:
    if not isinstance(obj, dict):
        raise _Problem(where, "expected an object of tasks")
    for task in sorted(obj):
        labels, reason = gold.glue(task)
        preds = _predictions(obj, task, where)
        if labels is not None and len(preds) != len(labels):
            raise _Problem(f"{where}.{task}.predictions", f"{len(preds)} predictions, the gold data has {len(labels)}")
        allowed = set(labels) if labels is not None else None
        for i, p in enumerate(preds):
            at = f"{where}.{task}.predictions[{i}]"
            if not isinstance(p, dict) or p.get("id") != f"{task}_{i}":
                raise _Problem(f"{at}.id", f"expected {task}_{i}")
            pred = p.get("pred")
            if isinstance(pred, str) and pred.strip().lstrip("-").isdigit():
                pred = int(pred)  # the 2023 format stores labels as text
            if not isinstance(pred, int) or (allowed is not None and pred not in allowed):
                within = f" in {sorted(allowed)}" if allowed else ""
                raise _Problem(f"{at}.pred", f"expected an integer label{within}, got {p.get('pred')!r}")
        if labels is None:
            report.unchecked.append(f"{where}.{task}: {reason}")
        else:
            report.checked.append(f"{where}.{task}")


def _check_2023(rows: list, gold: _Gold, report: Report) -> None:
    sections: dict[str, dict] = {}
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or not {"task", "sub_task", "predictions"} <= set(row):
            raise _Problem(f"line {n + 1}", "expected an object with task, sub_task and predictions")
        sections.setdefault(row["task"], {})[row["sub_task"]] = {"predictions": row["predictions"]}
    for task, value in sections.items():
        if task == "glue":
            _check_glue(value, gold, report, "glue")
        elif task in ("blimp", "supplement"):
            _check_section("blimp" if task == "blimp" else "blimp_supplement", task, value, "full", gold, report)
        else:
            _check_structure(value, task)
            report.unchecked.append(f"{task}: no gold data")
