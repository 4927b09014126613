"""Check a predictions file against the gold data: every key, every count, the order, the preds.

Accepted files: a per-task ``predictions.json`` of the 2025 result tree (the task is read from
its path), the collated ``all_full_preds_and_fast_scores_<backend>.json``, the 2024
``*_textonly_predictions.json.gz`` and the 2023 ``all_predictions.json`` (JSON Lines). The first
problem is raised as an InputError with its path inside the file, e.g.
``blimp.adjunct_island.predictions[17].pred``.

"OK" means checked against gold. A section whose gold data is not there (no ``--eval_data``
folder, a task folder missing from it, a wrong EWoK password) is an error, unless the user asks
for ``structure_only``: then such sections are checked for their format alone and listed as such.
Sections for which no gold data exists anywhere (AoA, the multimodal tasks, MSGS) are always
checked for format alone and listed. Beyond gold, every value is checked for its type and range:
labels are integers (``true`` is not ``1``), surprisals are not negative, accuracies lie in [0, 1],
and unknown sections, tasks and keys are errors.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import math
import os
import zlib
from pathlib import Path
from typing import Any

from babylm import files, model_card
from babylm.challenge import DEFAULT_RULES, TRACKS, Rules, milestones
from babylm.errors import InputError, KitError
from eval_export import aoa, collation, leaderboard, submission, tasks

# GLUE task names of each format (2025/2026: the seven of the leaderboard; 2023 and 2024: eleven).
GLUE_2024 = ("cola", "sst2", "mrpc", "qqp", "mnli", "mnli-mm", "qnli", "rte", "boolq", "multirc", "wsc")
# Sections of the older formats for which no gold data exists in the evaluation data.
MULTIMODAL_2024 = ("vqa", "winoground", "devbench")
TASKS_2023 = ("glue", "msgs", "blimp", "supplement")
# fast_eval_results entries that are accuracies per subtask, and the metric keys of the others.
FAST_ACCURACY = ("blimp", "blimp_supplement", "ewok", "entity_tracking")
FAST_METRICS = {"wug_adj": ("wug_adj",), "wug_past": ("wug_past",), "reading": ("spr", "rt")}


@dataclasses.dataclass
class Report:
    file: Path
    kind: str
    checked: list[str] = dataclasses.field(default_factory=list)  # sections checked against gold
    unchecked: list[str] = dataclasses.field(default_factory=list)  # "section: why" (format only, or absent)
    counts: dict[str, str] = dataclasses.field(default_factory=dict)  # what was compared, per checked section
    verdict: str = ""  # a 2026 collated file: complete for every task whose data is present, or what is not

    def text(self) -> str:
        done = [f"{name} ({self.counts[name]})" if name in self.counts else name for name in self.checked]
        lines = [f"OK {self.file} ({self.kind}): checked against gold: {', '.join(done) or 'nothing'}"]
        if self.unchecked:
            lines.append("not checked against gold: " + "; ".join(self.unchecked))
        if self.verdict:
            lines.append(self.verdict)
        return "\n".join(lines)


class _Problem(Exception):
    def __init__(self, where: str, what: str):
        super().__init__(f"{where}: {what}")


class _Gold:
    """Gold data, loaded lazily: (section, eval set) -> {uid: [candidate strings per item]}."""

    def __init__(self, root: Path, ewok_password: str | None, structure_only: bool, limit: int = 0):
        self.root = root
        self.password = ewok_password or os.environ.get(tasks.EWOK_PASSWORD_ENV)
        self.structure_only = structure_only
        self.limit = limit  # the file was scored with `score --limit N`: gold is its first N items per subtask

    def get(self, section: str, eval_set: str) -> tuple[Any, str | None]:
        """(gold, None), (gold, note) for a non-official set, or (None, reason it is unavailable)."""
        if not self.root.is_dir():
            return None, f"--eval_data {self.root} is not a folder"
        ref, reason = _load_gold(self.root.resolve(), section, eval_set, self.password)
        return self.cut(ref), reason

    def cut(self, ref: Any) -> Any:
        """Gold as `score --limit N` scored it: the first N items of each subtask (reading: the first N rows)."""
        if not self.limit or ref is None:
            return ref
        if isinstance(ref, dict):
            return {uid: items[:self.limit] for uid, items in ref.items()}
        return ref[:self.limit]

    def glue(self, task: str) -> tuple[list[int] | None, str | None]:
        folder = tasks.find_folder(self.root, "glue_filtered") if self.root.is_dir() else None
        path = folder / f"{task}.valid.jsonl" if folder else None
        if path is None or not path.is_file():
            return None, f"no glue_filtered/{task}.valid.jsonl under {self.root}"
        return [int(r["label"]) for r in files.read_jsonl(path, str(path))], None

    def missing(self, where: str, reason: str, report: Report) -> None:
        """Gold for ``where`` is not there: an error, or (structure_only) a format check alone, listed."""
        if not self.structure_only:
            raise _Problem(where, f"no gold data to check it against ({reason}); point --eval_data at the evaluation "
                                  "data, or pass --structure_only true to check its structure alone")
        report.unchecked.append(f"{where}: structure only ({reason})")


@functools.lru_cache(maxsize=16)
def _load_gold(root: Path, section: str, eval_set: str, password: str | None) -> tuple[Any, str | None]:
    """Candidate strings per item of one gold task (cached: validating several files reads it once)."""
    try:
        data = tasks.load_task(section, eval_set, root, password, year=Rules.Y2025)  # the 2025 path's gold
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


def validate_file(path: Path, eval_data: Path, ewok_password: str | None = None,
                  structure_only: bool = False, year: str = DEFAULT_RULES, track: str = "", limit: int = 0) -> Report:
    """Validate one file by ``year``'s rules; raises InputError naming the first problem's path inside the file.

    Without ``structure_only`` every section that has gold data anywhere must be checked against
    it: missing gold (``eval_data`` absent, a task folder or the EWoK password missing) is an error.
    ``track`` fixes the number of milestones of a 2026 collated file (else told by its lists).
    ``limit``: the file was scored with ``score --limit N``; each subtask is checked against its first N
    gold items (such a file is partial: the leaderboard wants the official counts).
    """
    y2026 = Rules(year) is Rules.Y2026
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    kind, obj = _read(path)
    if not structure_only and not Path(eval_data).is_dir():
        raise InputError(f"--eval_data: {eval_data} is not a folder, so {path.name} cannot be checked against gold "
                         "data; point it at the evaluation_data folder (or set BABYLM_EVAL_DATA), or pass "
                         "--structure_only true to check its structure alone")
    gold = _Gold(Path(eval_data), ewok_password, structure_only, limit)
    report = Report(path, kind)
    try:
        if kind == "per-task" and y2026:
            section, eval_set = _per_task_2026(path)
            _check_section_2026(section, obj, eval_set, gold, report, partial=False, official_counts=False)
        elif kind == "per-task":
            section, eval_set = _section_of(path)
            _check_section(section, section, obj, eval_set, gold, report)
        elif kind == "collated":
            partial = path.name.endswith("_partial.json")
            report.kind = f"collated, {year} rules" + (", PARTIAL: not a valid submission" if partial else "")
            # collate --allow_partial names its output *_partial.json: every section it holds is
            # checked as strictly as in a full file; the absent ones are listed, not failed.
            if y2026:
                _check_collated_2026(obj, gold, report, partial, track)
                report.verdict = completeness(obj, gold)
            else:
                _check_collated(obj, gold, report, partial=partial)
        elif kind == "2024":
            _check_2024(obj, gold, report)
        else:  # 2023 JSON Lines
            _check_2023(obj, gold, report)
    except _Problem as exc:
        raise InputError(f"{path}: {exc}") from None
    if structure_only:
        report.kind += "; --structure_only: gold data used where it was there"
    elif not report.checked:
        raise InputError(f"{path}: holds nothing that gold data could check ({'; '.join(report.unchecked) or 'empty'})")
    return report


def _read(path: Path) -> tuple[str, Any]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: not a complete gzip file ({exc}); write or download it again") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); write the file as UTF-8 JSON") from None
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
    newer = [k for k in ("entity_tracking_filtered", "global_piqa_parallel", "aoa_surprisals") if k in obj]
    if newer:
        raise _Problem(newer[0], "a section of the 2026 file: check it with --year 2026")
    unknown = [k for k in obj if k not in submission.COLLATED_KEYS and k != "fast_eval_results"]
    if unknown:
        raise _Problem(unknown[0], f"unknown section (the collated file holds {', '.join(submission.COLLATED_KEYS)} "
                                   "and fast_eval_results)")
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
            _check_glue(obj["glue"], gold, report, "glue", submission.GLUE_TASKS)
        elif key == "aoa":
            if not isinstance(obj["aoa"], dict) or "results" not in obj["aoa"]:
                raise _Problem("aoa", "expected the surprisal.json object with 'metadata' and 'results'")
            report.unchecked.append("aoa: structure only (no gold data exists for it)")
        else:
            _check_section(key, key, obj[key], "full", gold, report)
    fast = obj.get("fast_eval_results")
    if partial and fast is None:
        report.unchecked.append("fast_eval_results: absent (partial file)")
        return
    _check_fast(fast, gold, report, partial)


def _check_fast(fast: Any, gold: _Gold, report: Report, partial: bool) -> None:
    """``fast_eval_results``: one list per task, one object of metrics per checkpoint, each a number in range
    under the keys the task has (its subtasks, from the fast gold data, or its metric names)."""
    if not isinstance(fast, dict):
        raise _Problem("fast_eval_results", "missing or not an object")
    unknown = [k for k in fast if k not in submission.FAST_KEYS]
    if unknown:
        raise _Problem(f"fast_eval_results.{unknown[0]}", f"unknown task (known: {', '.join(submission.FAST_KEYS)})")
    lengths = set()
    for key in submission.FAST_KEYS:
        where = f"fast_eval_results.{key}"
        if partial and key not in fast:
            report.unchecked.append(f"{where}: absent (partial file)")
            continue
        if not isinstance(fast.get(key), list):
            raise _Problem(where, "missing list")
        entries = fast[key]
        lengths.add(len(entries))
        for i, element in enumerate(entries):
            if not isinstance(element, dict):
                raise _Problem(f"{where}[{i}]", "expected an object of metrics")
        if not entries:
            continue
        if key in FAST_ACCURACY:
            ref, reason = gold.get(key, "fast")
            known = {uid.lower(): uid for uid in ref} if ref is not None else None
            if known is None:
                gold.missing(where, reason, report)
            for i, element in enumerate(entries):
                for uid, value in element.items():
                    if known is not None and uid.lower() not in known:
                        raise _Problem(f"{where}[{i}].{uid}", "unknown subtask (not in the fast gold data)")
                    _number(value, f"{where}[{i}].{uid}", 0.0, 1.0, "an accuracy in [0, 1]")
                if known is not None and not partial and len(element) != len(known):
                    absent = sorted(set(known) - {u.lower() for u in element})
                    raise _Problem(f"{where}[{i}]", f"missing subtask {known[absent[0]]}" if absent else "duplicate subtasks")
            if known is not None:
                report.checked.append(where)
                report.counts[where] = f"subtask names of {len(entries)} checkpoint(s)"
        else:
            names = FAST_METRICS[key]
            for i, element in enumerate(entries):
                for name, value in element.items():
                    if name not in names:
                        raise _Problem(f"{where}[{i}].{name}", f"unknown key (expected {', '.join(names)})")
                    # a correlation or a gain in R² (as a share or in percent); NaN when undefined
                    low, high, what = (-1.0, 1.0, "a correlation in [-1, 1]") if key != "reading" else \
                        (-100.0, 100.0, "a gain in [-100, 100]")
                    _number(value, f"{where}[{i}].{name}", low, high, what, nan=True)
                if set(element) != set(names):
                    raise _Problem(f"{where}[{i}]", f"expected the keys {', '.join(names)}")
    valid = {len(milestones(t)) for t in TRACKS}
    if partial:
        return
    if len(lengths) != 1 or not lengths <= valid:
        raise _Problem("fast_eval_results", "lists must all hold one entry per checkpoint "
                                            f"({' or '.join(map(str, sorted(valid)))}), got {sorted(lengths)}")


def _number(value: Any, where: str, low: float, high: float, what: str, nan: bool = False) -> None:
    """``value`` is a number in [low, high]; with ``nan`` also NaN (or null, as the kit's own summaries
    write it) for a metric that is undefined."""
    if nan and value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        (nan and math.isnan(value)) or (math.isfinite(value) and low <= value <= high))
    if not ok:
        raise _Problem(where, f"expected {what}, got {value!r}")


def _check_section(section: str, where: str, obj: Any, eval_set: str, gold: _Gold, report: Report) -> None:
    if not isinstance(obj, dict):
        raise _Problem(where, "expected an object of subtasks")
    ref, reason = gold.get(section, eval_set)
    if section == "reading":
        _check_reading(obj, ref, where)
    elif ref is None:
        _check_structure(obj, where, wug=section.startswith("wug"))
    else:
        _check_ranking(obj, ref, where, wug=section.startswith("wug"))
    if ref is None:
        gold.missing(where, reason, report)
    else:
        report.checked.append(where)
        n = sum(len(v.get("predictions", [])) for v in obj.values() if isinstance(v, dict))
        report.counts[where] = f"{n:,} predictions" + (f"; {reason}" if reason else "")


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
    extra = sorted(set(block) - {"predictions"})
    if extra:
        raise _Problem(f"{where}.{key}.{extra[0]}", "unknown key (a subtask holds only 'predictions')")
    return preds


def _entry(p: Any, at: str, keys: tuple[str, ...]) -> dict:
    """One prediction object, holding only the official keys."""
    if not isinstance(p, dict):
        raise _Problem(at, f"expected an object with {', '.join(keys)}")
    extra = sorted(set(p) - set(keys))
    if extra:
        raise _Problem(f"{at}.{extra[0]}", f"unknown key (a prediction holds {', '.join(keys)})")
    return p


def _check_ranking(obj: dict, ref: dict, where: str, wug: bool) -> None:
    keys = ("id", "pred", "prob") if wug else ("id", "pred")
    for uid, key in _match_keys(obj, ref, where).items():
        preds = _predictions(obj, key, where)
        items = ref[uid]
        if len(preds) != len(items):
            raise _Problem(f"{where}.{key}.predictions", f"{len(preds)} predictions, the gold data has {len(items)}")
        for i, (p, cands) in enumerate(zip(preds, items)):
            at = f"{where}.{key}.predictions[{i}]"
            p = _entry(p, at, keys)
            if p.get("id") != f"{key}_{i}":
                raise _Problem(f"{at}.id", f"expected {key}_{i!s}, got {p.get('id')!r} (order must follow the gold file)")
            pred = p.get("pred")
            if not isinstance(pred, str):
                raise _Problem(f"{at}.pred", f"expected a string, got {type(pred).__name__}")
            if pred.strip() not in cands:
                raise _Problem(f"{at}.pred", f"{pred.strip()[:60]!r} is not a candidate of gold item {i}")
            if wug:
                _number(p.get("prob"), f"{at}.prob", 0.0, 1.0, "a probability")


def _check_structure(obj: dict, where: str, wug: bool = False) -> None:
    keys = ("id", "pred", "prob") if wug else ("id", "pred")
    for key in obj:
        for i, p in enumerate(_predictions(obj, key, where)):
            at = f"{where}.{key}.predictions[{i}]"
            p = _entry(p, at, keys)
            if p.get("id") != f"{key}_{i}":
                raise _Problem(f"{at}.id", f"expected {key}_{i}")
            if not isinstance(p.get("pred"), str):
                raise _Problem(f"{at}.pred", "expected the chosen candidate as a string")
            if wug:
                _number(p.get("prob"), f"{at}.prob", 0.0, 1.0, "a probability")


def _check_reading(obj: dict, ref: list[int] | None, where: str) -> None:
    if set(obj) != {"reading"}:
        raise _Problem(where, "expected exactly one key, 'reading'")
    preds = _predictions(obj, "reading", where)
    if ref is not None and len(preds) != len(ref):
        raise _Problem(f"{where}.reading.predictions", f"{len(preds)} predictions, the gold data has {len(ref)}")
    for i, p in enumerate(preds):
        at = f"{where}.reading.predictions[{i}]"
        p = _entry(p, at, ("id", "pred", "prev_pred"))
        want = ref[i] if ref is not None else None
        if not isinstance(p.get("id"), int) or isinstance(p["id"], bool) or (want is not None and p["id"] != want):
            raise _Problem(f"{at}.id", f"expected the integer row index {want if want is not None else ''}".rstrip())
        # a surprisal is -ln p: finite and not negative
        _number(p.get("pred"), f"{at}.pred", 0.0, math.inf, "a surprisal (a finite number >= 0)")
        _number(p.get("prev_pred"), f"{at}.prev_pred", 0.0, math.inf,
                "a surprisal (a number >= 0, NaN when there is no previous word)", nan=True)


def _check_glue(obj: Any, gold: _Gold, report: Report, where: str, known: tuple[str, ...],
                text_labels: bool = False) -> None:
    """GLUE predictions: integer labels (``text_labels``: the 2023 format's "0"/"1" strings) of the gold
    label set, one per validation row, for the task names of the file's format."""
    if not isinstance(obj, dict):
        raise _Problem(where, "expected an object of tasks")
    for task in sorted(obj):
        if task not in known:
            raise _Problem(f"{where}.{task}", f"unknown task (known: {', '.join(known)})")
        labels, reason = gold.glue(task)
        preds = _predictions(obj, task, where)
        if labels is not None and len(preds) != len(labels):
            raise _Problem(f"{where}.{task}.predictions", f"{len(preds)} predictions, the gold data has {len(labels)}")
        allowed = set(labels) if labels is not None else None
        for i, p in enumerate(preds):
            at = f"{where}.{task}.predictions[{i}]"
            p = _entry(p, at, ("id", "pred"))
            if p.get("id") != f"{task}_{i}":
                raise _Problem(f"{at}.id", f"expected {task}_{i}")
            pred = p.get("pred")
            if text_labels and isinstance(pred, str) and pred.strip().lstrip("-").isdigit():
                pred = int(pred)  # the 2023 format stores labels as text
            if not isinstance(pred, int) or isinstance(pred, bool) or (allowed is not None and pred not in allowed):
                within = f" in {sorted(allowed)}" if allowed else ""
                raise _Problem(f"{at}.pred", f"expected an integer label{within}, got {p.get('pred')!r}")
        if labels is None:
            gold.missing(f"{where}.{task}", reason, report)
        else:
            report.checked.append(f"{where}.{task}")
            report.counts[f"{where}.{task}"] = f"{len(preds):,} predictions"


def _check_2024(obj: dict, gold: _Gold, report: Report) -> None:
    for key in ("glue", "blimp", "blimp_supplement"):
        if key not in obj:
            raise _Problem(key, "missing section")
    if "ewok" not in obj:
        report.unchecked.append("ewok: absent from the file")
    for key, value in obj.items():
        if key == "glue":
            _check_glue(value, gold, report, "glue", GLUE_2024)
        elif key in ("blimp", "blimp_supplement", "ewok"):
            _check_section(key, key, value, "full", gold, report)
        elif key in MULTIMODAL_2024:
            report.unchecked.append(f"{key}: not checked (multimodal; no gold data exists for it)")
        else:
            raise _Problem(key, f"unknown section (the 2024 file holds glue, blimp, blimp_supplement, ewok and "
                                f"{', '.join(MULTIMODAL_2024)})")


def _check_2023(rows: list, gold: _Gold, report: Report) -> None:
    sections: dict[str, dict] = {}
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or not {"task", "sub_task", "predictions"} <= set(row):
            raise _Problem(f"line {n + 1}", "expected an object with task, sub_task and predictions")
        if row["task"] not in TASKS_2023:
            raise _Problem(f"line {n + 1}.task", f"unknown task {row['task']!r} (known: {', '.join(TASKS_2023)})")
        sections.setdefault(row["task"], {})[row["sub_task"]] = {"predictions": row["predictions"]}
    for task, value in sections.items():
        if task == "glue":
            _check_glue(value, gold, report, "glue", GLUE_2024, text_labels=True)
        elif task in ("blimp", "supplement"):
            _check_section("blimp" if task == "blimp" else "blimp_supplement", task, value, "full", gold, report)
        else:  # msgs
            for sub in value:
                for i, p in enumerate(_predictions(value, sub, task)):
                    _entry(p, f"{task}.{sub}.predictions[{i}]", ("id", "pred"))
            report.unchecked.append(f"{task}: structure only (no gold data exists for it)")


# ---------------------------------------------------------------------------------------------
# The 2026 rules: the final collator (babylm-eval 3d57ddc) and what the leaderboard accepts
# ---------------------------------------------------------------------------------------------
# The leaderboard's upload check (BabyLM-community/BabyLM-Leaderboard-2026, src/submission/check_validity.py,
# is_valid_full_predictions / is_valid_fast_metrics) refuses: a task with the wrong number of predictions,
# GLUE predictions that are not integers, reading predictions that are not floats, any other prediction
# that is not a string, a GlobalPIQA example with other than one prediction, more fast-eval checkpoints
# than the track has (19 strict-small, 28 strict), and a checkpoint entry missing a subtask. It accepts
# missing parts and scores them 0 (eval_submission.py, read_evals.py); here they are errors, since a
# submission should not lose them, except in a file collate marked partial.

LEGACY_2025 = ("entity_tracking", "wug_adj", "wug_past")  # keys only a 2025 collated file has


def _per_task_2026(path: Path) -> tuple[str, str]:
    """Section and eval set of a per-task predictions file of the 2026 tree, from its folders."""
    folder, parent = path.parent.name, path.parent.parent.name
    if folder == "reading":
        return "reading", "full"
    if folder in collation.GLOBAL_PIQA_SIZES and parent == folder:
        return folder, "full"
    for key, (full, fast) in collation.DATA_FOLDERS.items():
        if folder in (full, fast) and parent == collation.SECTIONS[key][0].split("/")[0]:
            return key, "fast" if folder == fast else "full"
    if folder == "comps" and parent == "comps":
        return "comps", "full"
    if parent in ("wug_adj", "wug_past"):
        raise InputError(f"{path}: WUG is not part of the 2026 set (it was in 2025: validate with --year 2025)")
    raise InputError(f"{path}: cannot tell the task from the path; keep the official layout "
                     "<task>/<data_dir>/predictions.json (e.g. entity_tracking/entity_tracking/predictions.json)")


def _gold_items(gold: _Gold, section: str, eval_set: str) -> tuple[Any, str | None]:
    if not gold.root.is_dir():
        return None, f"--eval_data {gold.root} is not a folder"
    try:
        items = leaderboard.gold_items(gold.root, section, eval_set, gold.password)
    except KitError as exc:
        return None, str(exc)
    folder = collation.DATA_FOLDERS.get(section, (section, section))[int(eval_set == "fast")]
    return gold.cut(items), None if items is not None else f"no {folder}/ under {gold.root}"


def _check_section_2026(section: str, obj: Any, eval_set: str, gold: _Gold, report: Report, partial: bool,
                        official_counts: bool = True) -> None:
    """One zero-shot section: each prediction against gold, then (a section of the collated file, which the
    leaderboard reads) the official counts, which a custom gold set would not catch."""
    if not isinstance(obj, dict):
        raise _Problem(section, "expected an object of subtasks")
    _check_gold_2026(section, obj, eval_set, gold, report)  # first: its messages say which item is wrong
    if not official_counts:
        return
    problem = collation.size_problem(section, obj, eval_set == "fast")
    if problem and not partial:
        raise _Problem(section, f"{problem}: the leaderboard refuses a wrong number of predictions")
    if problem:
        why = f"scored with --limit {gold.limit}" if gold.limit else "partial file"
        report.unchecked.append(f"{section}: counts differ from the official set ({problem}; {why})")


def _check_gold_2026(section: str, obj: dict, eval_set: str, gold: _Gold, report: Report) -> None:
    if section == "reading":
        ref, reason = gold.get("reading", "full")
        _check_reading(obj, ref, section)
        for i, p in enumerate(obj["reading"]["predictions"]):  # check_validity.py: reading preds are floats
            if not isinstance(p["pred"], float):
                raise _Problem(f"reading.reading.predictions[{i}].pred", f"expected a float, got {p['pred']!r} (the "
                                                                          "leaderboard refuses integers here)")
    else:
        ref, reason = _gold_items(gold, section, eval_set)
        if section in collation.GLOBAL_PIQA_SIZES:
            _check_global_piqa(obj, ref, section)
        elif ref is None:
            _check_structure(obj, section)
        else:
            _check_ranking(obj, {uid: [{c.strip() for c in item} for item in items] for uid, items in ref.items()},
                           section, wug=False)
    if ref is None:
        gold.missing(section, reason, report)
    else:
        report.checked.append(section)
        n = sum(len(v.get("predictions", [])) for v in obj.values() if isinstance(v, dict))
        report.counts[section] = f"{n:,} predictions"


def _check_global_piqa(obj: dict, ref: dict | None, where: str) -> None:
    """Predictions keyed by example id, one each (``<id>_0``), the chosen solution as a string."""
    if ref is not None:
        absent = sorted(set(ref) - set(obj))
        if absent:
            raise _Problem(f"{where}.{absent[0]}", "missing example (scored as wrong)")
        extra = sorted(set(obj) - set(ref))
        if extra:
            raise _Problem(f"{where}.{extra[0]}", "unknown example id (not in the gold data)")
    for eid in obj:
        preds = _predictions(obj, eid, where)
        if len(preds) != 1:
            raise _Problem(f"{where}.{eid}.predictions", f"{len(preds)} predictions, the leaderboard wants exactly 1")
        p = _entry(preds[0], f"{where}.{eid}.predictions[0]", ("id", "pred"))
        if p.get("id") != f"{eid}_0":
            raise _Problem(f"{where}.{eid}.predictions[0].id", f"expected {eid}_0, got {p.get('id')!r}")
        if not isinstance(p.get("pred"), str):
            raise _Problem(f"{where}.{eid}.predictions[0].pred", "expected the chosen solution as a string")
        if ref is not None and p["pred"].strip() not in {s.strip() for s in ref[eid][0]}:
            raise _Problem(f"{where}.{eid}.predictions[0].pred", f"{p['pred'].strip()[:60]!r} is not a solution of it")


def _track_of(obj: dict, track: str) -> str:
    """The track the file is for: ``track`` when given, else told by its lists of checkpoints."""
    if track:
        return track
    lengths = {len(v) for v in (obj.get("fast_eval_results") or {}).values() if isinstance(v, list)}
    by_length = {len(milestones(t)): t for t in TRACKS}
    found = [by_length[n] for n in lengths if n in by_length]
    return found[0] if len(found) == 1 else "strict-small"


def _check_collated_2026(obj: dict, gold: _Gold, report: Report, partial: bool, track: str) -> None:
    legacy = [k for k in LEGACY_2025 if k in obj]
    if isinstance(obj.get("aoa"), dict) and "results" in obj["aoa"]:
        legacy.append("aoa holding surprisals")
    if legacy:
        raise _Problem("(top level)", f"a 2025 file ({legacy[0]}): the 2026 leaderboard scores entity tracking (read "
                                      "only from entity_tracking_filtered) and AoA (read only as {\"aoa\": <float>}) 0; "
                                      "collate it again with --year 2026, or check it as a 2025 file with --year 2025")
    unknown = [k for k in obj if k not in collation.KEYS]
    if unknown:
        raise _Problem(unknown[0], f"unknown section (the 2026 file holds {', '.join(collation.KEYS)})")
    order = [k for k in collation.KEYS if k in obj]
    if list(obj) != order:
        raise _Problem("(top level)", f"sections out of the official order: {', '.join(obj)}")
    track = _track_of(obj, track)
    for key in collation.KEYS:
        value = obj.get(key)
        if value is None or (key == "glue" and not value):
            if not partial:
                raise _Problem(key, "missing (null): the leaderboard scores it 0; score it and collate again")
            report.unchecked.append(f"{key}: absent (partial file, not a valid submission)")
        elif key == "glue":
            _check_glue(value, gold, report, "glue", submission.GLUE_TASKS)
            absent = [t for t in submission.GLUE_TASKS if t not in value]
            if absent and not partial:
                raise _Problem(f"glue.{absent[0]}", "missing task: the leaderboard scores it 0; fine-tune it and collate again")
        elif key == "aoa_surprisals":
            problem = collation.aoa_problem(value, track)
            if problem and not partial:
                raise _Problem(key, f"{problem} ({track})")
            report.unchecked.append(f"{key}: structure only ({'; '.join(filter(None, [problem])) or 'no gold data exists for it'})")
        elif key == "aoa":
            score = value.get("aoa") if isinstance(value, dict) else None
            if set(value) != {"aoa"} or not isinstance(score, (int, float)) or isinstance(score, bool) or \
                    not math.isfinite(score):
                raise _Problem(key, f'expected {{"aoa": <number>}} (aoa_score.json), got {json.dumps(value)[:80]}: '
                                    "the leaderboard scores anything else 0")
            report.unchecked.append("aoa: structure only (the score is computed from the surprisal curves)")
        elif key == "fast_eval_results":
            _check_fast_2026(value, gold, report, partial, track)
        else:
            _check_section_2026(key, value, "full", gold, report, partial)


def _check_fast_2026(fast: Any, gold: _Gold, report: Report, partial: bool, track: str) -> None:
    """One list per fast task, one entry per milestone of the track, each the task's subtask scores."""
    if not isinstance(fast, dict):
        raise _Problem("fast_eval_results", "expected an object of tasks")
    unknown = [k for k in fast if k not in collation.FAST_KEYS]
    if unknown:
        raise _Problem(f"fast_eval_results.{unknown[0]}", f"unknown task (known: {', '.join(collation.FAST_KEYS)})")
    n = len(milestones(track))
    for key in collation.FAST_KEYS:
        where = f"fast_eval_results.{key}"
        entries = fast.get(key)
        if partial and (entries is None or (isinstance(entries, list) and all(e is None for e in entries))):
            report.unchecked.append(f"{where}: absent (partial file)")
            continue
        if not isinstance(entries, list):
            raise _Problem(where, "missing list (the leaderboard scores the task's checkpoints 0)")
        if len(entries) > n:
            raise _Problem(where, f"{len(entries)} checkpoints: the leaderboard takes at most {n} for {track}")
        if len(entries) < n and not partial:
            raise _Problem(where, f"{len(entries)} checkpoints, {track} has {n} (the missing ones score 0)")
        names, reason = _fast_subtasks(key, gold)
        for i, entry in enumerate(entries):
            at = f"{where}[{i}] ({milestones(track)[i]})"
            if entry is None:
                if not partial:
                    raise _Problem(at, "null: this checkpoint was not scored (the leaderboard scores it 0)")
                continue
            if not isinstance(entry, dict):
                raise _Problem(at, "expected an object of subtask scores")
            if names is not None and set(entry) != set(names):
                absent = sorted(set(names) - set(entry))
                raise _Problem(at, f"missing subtask {absent[0]}" if absent else
                               f"unknown subtask {sorted(set(entry) - set(names))[0]}")
            for name, value in entry.items():
                if key == "reading":
                    _number(value, f"{at}.{name}", -math.inf, math.inf, "a number (a gain in R²)", nan=True)
                else:
                    _number(value, f"{at}.{name}", 0.0, 1.0, "an accuracy in [0, 1]")
        if names is None:
            gold.missing(where, reason, report)
        else:
            report.checked.append(where)
            report.counts[where] = f"subtask names of {sum(e is not None for e in entries)} checkpoint(s)"


def _fast_subtasks(key: str, gold: _Gold) -> tuple[list[str] | None, str | None]:
    """The subtask names one checkpoint entry of a fast task has (from the fast gold data)."""
    if key == "reading":
        return ["spr", "rt"], None
    if key in collation.GLOBAL_PIQA_SIZES:
        return [key], None
    items, reason = _gold_items(gold, key, "fast")
    return (None, reason) if items is None else (list(items), None)


def _data_absent(key: str, gold: _Gold) -> str | None:
    """Why the evaluation data holds nothing to score section ``key`` of the 2026 file with, or None when it does."""
    if not gold.root.is_dir():
        return f"--eval_data {gold.root} is not a folder"
    if key in ("aoa", "aoa_surprisals"):  # the AoA word list and human norms (eval_export/aoa.py)
        return None if aoa.find(gold.root) else f"no aoa/{aoa.WORDS_FILE}"
    if key == "reading":
        ref, why = gold.get("reading", "full")
        return why if ref is None else None
    return _gold_items(gold, key, "full")[1]


def _glue_absent(task: str, gold: _Gold) -> str | None:
    """Why ``task`` cannot be fine-tuned and checked: its training or validation file is missing."""
    folder = tasks.find_folder(gold.root, "glue_filtered") if gold.root.is_dir() else None
    for split in ("train", "valid"):
        if folder is None or not (folder / f"{task}.{split}.jsonl").is_file():
            return f"no glue_filtered/{task}.{split}.jsonl"
    return None


def completeness(obj: dict, gold: _Gold) -> str:
    """One line on a checked 2026 collated file: complete for every task whose data is present (naming the
    absent ones and why), or which tasks were left out although their data is there. The fast results follow
    their full sections' data (a milestone's fast entry is scored from the same task)."""
    absent: list[str] = []
    unscored: list[str] = []
    for key in collation.KEYS:
        if key == "fast_eval_results":
            continue
        if key == "glue":
            done = obj.get("glue") or {}
            for task in submission.GLUE_TASKS:
                why = _glue_absent(task, gold)
                if why:
                    absent.append(f"glue.{task} ({why})")
                elif task not in done:
                    unscored.append(f"glue.{task}")
            continue
        why = _data_absent(key, gold)
        if why:
            absent.append(f"{key} ({why})")
        elif obj.get(key) is None:
            unscored.append(key)
    tail = f"; absent: {', '.join(absent)}" if absent else ""
    if unscored:
        return f"INCOMPLETE: not in the file although their data is present: {', '.join(unscored)}{tail}"
    if absent:
        return f"complete for every task whose data is present{tail}"
    return "complete: every task of the 2026 set is in the file"


def check_model(folder: Path) -> list[str]:
    """What the leaderboard's hub check would say of the model in ``folder``: the model card, then whether the
    Auto classes load its config and tokenizer without remote code (empty: both pass)."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise InputError(f"--model {folder}: no config.json; give the model folder (a revision of the published "
                         "repository, or a run's final/)")
    return [p for p in (model_card.card_problem(folder), model_card.loading_problem(folder)) if p]
