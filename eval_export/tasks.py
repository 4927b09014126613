"""Zero-shot tasks: read the official evaluation files into uniform items, check their counts.

Each ranking item lists its candidates as ``(context, completion)`` pairs, gold first (label 0
everywhere, as in the official sentence_zero_shot code), the ``pred`` string the official output
uses for each candidate, and its subtask key (UID). Keys, the scored span and the pred strings
follow the 2025/2026 pipeline (babylm-org/babylm-eval, strict/evaluation_pipeline/sentence_zero_shot/
dataset.py and collate_preds.py). Everything is read and checked before any model runs, so bad
input never leaves partial results behind.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable

from babylm.challenge import DEFAULT_RULES, RULES, Rules
from babylm.errors import InputError, UsageError
from babylm.files import read_jsonl
from eval_export import global_piqa

# --tasks names, in the order of the collated file (strict/evaluation_pipeline/collate_preds.py).
TASKS = ("blimp", "blimp_supplement", "ewok", "entity_tracking", "wug_adj", "wug_past", "comps", *global_piqa.TASKS,
         "reading")
# The tasks of each year's set: WUG adjective nominalization and past tense are gone at 3d57ddc, GlobalPIQA
# is new (strict/evaluation_pipeline/sentence_zero_shot/run.py's --task choices, collate_preds.py).
YEAR_TASKS: dict[str, tuple[str, ...]] = {
    Rules.Y2025: tuple(t for t in TASKS if t not in global_piqa.TASKS),
    Rules.Y2026: tuple(t for t in TASKS if t not in ("wug_adj", "wug_past")),
}
# Hidden 2025 tasks and GlobalPIQA (hub-only data): scored when their files are present, skipped (with a note) otherwise.
OPTIONAL_TASKS = ("wug_past", "comps", *global_piqa.TASKS)
EVAL_SETS = ("full", "fast")

# (task folder in the result tree, data folder) per --tasks name and eval set (strict/scripts/eval_zero_shot*.sh).
DATA_DIRS = {
    ("blimp", "full"): ("blimp", "blimp_filtered"), ("blimp", "fast"): ("blimp", "blimp_fast"),
    ("blimp_supplement", "full"): ("blimp", "supplement_filtered"), ("blimp_supplement", "fast"): ("blimp", "supplement_fast"),
    ("ewok", "full"): ("ewok", "ewok_filtered"), ("ewok", "fast"): ("ewok", "ewok_fast"),
    ("entity_tracking", "full"): ("entity_tracking", "entity_tracking"),
    ("entity_tracking", "fast"): ("entity_tracking", "entity_tracking_fast"),
    ("wug_adj", "full"): ("wug_adj", "wug_adj_nominalization"), ("wug_adj", "fast"): ("wug_adj", "wug_adj_nominalization"),
    ("wug_past", "full"): ("wug_past", "wug_past_tense"), ("wug_past", "fast"): ("wug_past", "wug_past_tense"),
    ("comps", "full"): ("comps", "comps"), ("comps", "fast"): ("comps", "comps"),
    ("reading", "full"): ("reading", ""), ("reading", "fast"): ("reading", ""),
    # GlobalPIQA: <task>/<task> in both sets (the same data under full_eval/ and fast_eval/)
    **{(t, s): (t, t) for t in global_piqa.TASKS for s in ("full", "fast")},
}

# Sizes hard-coded in the official collator (strict/evaluation_pipeline/collate_preds.py): per-UID counts where the
# document lists them, otherwise the number of UIDs and the total.
SUPPLEMENT_COUNTS = {"hypernym": 842, "qa_congruence_easy": 64, "qa_congruence_tricky": 165,
                     "subject_aux_inversion": 3867, "turn_taking": 280}
EXPECTED: dict[str, dict[str, Any]] = {
    "blimp_filtered": {"n_uids": 67, "total": 59875},
    "blimp_fast": {"n_uids": 67, "per_uid": 200},
    "supplement_filtered": {"counts": SUPPLEMENT_COUNTS},
    "supplement_fast": {"counts": {k: 50 for k in SUPPLEMENT_COUNTS}},
    "ewok_filtered": {"n_uids": 11, "total": 7618},
    "ewok_fast": {"n_uids": 11, "per_uid": 100},
    "entity_tracking": {"n_uids": 18, "total": 9483},
    "entity_tracking_fast": {"n_uids": 6, "total": 3152},  # the `regular` file only
    "wug_adj_nominalization": {"counts": {"wug_adj": 200}},
    "wug_past_tense": {"counts": {"wug_past": 50}},
    "comps": {"counts": {"base": 49340, "wugs": 13896, "wugs_dist_before": 13896, "wugs_dist_in_between": 13896}},
    "reading": {"counts": {"reading": 1726}},
    **{t: {"n_uids": n, "per_uid": 1} for t, n in global_piqa.SIZES.items()},  # keyed by example id
}
# Entity tracking by the 2026 rules, items with "nothing" in an option dropped: the per-subtask sizes of
# collate_preds.py @ 3d57ddc (ENTITY_TRACKING_SIZES; the fast set is its `regular` subtasks).
ENTITY_TRACKING_2026 = {
    "regular_0_ops": 517, "regular_1_ops": 409, "regular_2_ops": 405, "regular_3_ops": 425, "regular_4_ops": 388,
    "regular_5_ops": 94, "ambiref_0_ops": 508, "ambiref_1_ops": 428, "ambiref_2_ops": 413, "ambiref_3_ops": 409,
    "ambiref_4_ops": 434, "ambiref_5_ops": 123, "move_contents_0_ops": 516, "move_contents_1_ops": 437,
    "move_contents_2_ops": 399, "move_contents_3_ops": 406, "move_contents_4_ops": 353, "move_contents_5_ops": 116,
}
EXPECTED_2026: dict[str, dict[str, Any]] = {
    "entity_tracking": {"counts": ENTITY_TRACKING_2026},
    "entity_tracking_fast": {"counts": {k: v for k, v in ENTITY_TRACKING_2026.items() if k.startswith("regular_")}},
}
EWOK_PASSWORD_ENV = "BABYLM_EWOK_PASSWORD"
# The official evaluation_data folder: $BABYLM_EVAL_DATA, else ./evaluation_data (where the
# official README has it unpacked).
DEFAULT_EVAL_DATA = os.environ.get("BABYLM_EVAL_DATA", "evaluation_data")


@dataclasses.dataclass
class Item:
    """One ranking item: candidates (gold first) and the official ``pred`` string of each."""

    uid: str
    candidates: list[tuple[str, str]]  # (context, completion)
    preds: list[str]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. the human "ratio" of WUG items
    gold: int = 0  # index of the right candidate (GlobalPIQA keeps the file's order and names it by label)


@dataclasses.dataclass
class ReadingRow:
    index: int  # the CSV's unnamed index column (the official integer id)
    item: str  # preceding text
    word: str
    prev_item: str | None
    prev_word: str | None
    measures: dict[str, float]


@dataclasses.dataclass
class TaskData:
    """A loaded task: where its predictions go and what to score."""

    name: str  # --tasks name (or "custom")
    task: str  # task folder in the result tree
    data_dir: str  # data folder stem in the result tree ("" for reading)
    kind: str  # "ranking", "wug" or "reading"
    source: str  # where the data came from (a folder, a zip, a CSV)
    items: list[Item] = dataclasses.field(default_factory=list)
    rows: list[ReadingRow] = dataclasses.field(default_factory=list)
    official: bool = True  # counts checked against the official sizes
    reduction: str = ""  # the task's own score reduction (GlobalPIQA: mean); "" = the scoring options' one
    year: str = DEFAULT_RULES.value  # the rules the items were read by

    def uid_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for it in self.items:
            counts[it.uid] = counts.get(it.uid, 0) + 1
        if self.kind == "reading":
            counts["reading"] = len(self.rows)
        return counts


def _field(row: dict, key: str, name: str) -> Any:
    if key not in row:
        raise InputError(f"{name}:{row['__line__']}: missing field {key!r}")
    return row[key]


def _text(row: dict, key: str, name: str) -> str:
    value = _field(row, key, name)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name}:{row['__line__']}: field {key!r} is empty or not a string")
    return value


def find_folder(root: Path, folder: str) -> Path | None:
    """``folder`` under the data root, also inside the official ``full_eval/`` and ``fast_eval/``."""
    for base in (root, root / "full_eval", root / "fast_eval"):
        if (base / folder).is_dir():
            return base / folder
    return None


def _jsonl_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise InputError(f"{folder}: no *.jsonl files")
    return files


def minimal_pair_items(files: Iterable[tuple[str, bytes | Path]], uid_from_field: bool) -> list[Item]:
    """BLiMP-format pairs: ``sentence_good`` vs ``sentence_bad``, whole sentences scored."""
    items = []
    for name, data in files:
        stem = Path(name).stem
        for row in read_jsonl(data, name):
            good, bad = _text(row, "sentence_good", name), _text(row, "sentence_bad", name)
            uid = str(row.get("UID") or stem) if uid_from_field else stem
            items.append(Item(uid, [("", good), ("", bad)], [good, bad],
                              {"field": row.get("field"), "term": row.get("linguistics_term")}))
    return items


def ewok_items(files: Iterable[tuple[str, bytes | Path]], year: str = DEFAULT_RULES) -> list[Item]:
    """EWoK, key = Domain. 2025: ``Context1 + " " + Target{1,2}``, only ``" " + Target`` scored, pred
    ``" " + Target``. 2026 (read_files.py @ 3d57ddc, ``decode_ewok``): ``" " + Target1`` after
    ``Context1`` (gold) against the same ``" " + Target1`` after ``Context2``, only ``" " + Target1``
    scored; the pred is the whole chosen sentence, ``Context + " " + Target1``."""
    items = []
    for name, data in files:
        for row in read_jsonl(data, name):
            context = _text(row, "Context1", name)
            domain = str(_field(row, "Domain", name))
            if Rules(year) is Rules.Y2026:
                other, t1 = _text(row, "Context2", name), " " + _text(row, "Target1", name)
                items.append(Item(domain, [(context, t1), (other, t1)], [context + t1, other + t1]))
                continue
            t1, t2 = " " + _text(row, "Target1", name), " " + _text(row, "Target2", name)
            items.append(Item(domain, [(context, t1), (context, t2)], [t1, t2]))
    return items


def entity_tracking_items(files: Iterable[tuple[str, bytes | Path]], year: str = DEFAULT_RULES) -> list[Item]:
    """Entity tracking: ``input_prefix + option`` for the 5 options; key ``<file stem>_<numops>_ops``.
    2026: an item with "nothing" in any option (a case-sensitive substring) is dropped, as
    read_files.py @ 3d57ddc (``decode_entity_tracking``) drops it before scoring."""
    drop_nothing = Rules(year) is Rules.Y2026
    items = []
    for name, data in files:
        stem = Path(name).stem
        for row in read_jsonl(data, name):
            prefix = _field(row, "input_prefix", name)
            options = _field(row, "options", name)
            if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) and o.strip() for o in options):
                raise InputError(f"{name}:{row['__line__']}: 'options' must be a list of non-empty strings")
            if drop_nothing and any("nothing" in o for o in options):
                continue
            uid = f"{stem}_{_field(row, 'numops', name)}_ops"
            items.append(Item(uid, [(prefix, o) for o in options], list(options)))
    return items


def wug_items(files: Iterable[tuple[str, bytes | Path]], key: str) -> list[Item]:
    """WUG: the tab-separated ``sentences`` are the two candidates (whole strings scored)."""
    items = []
    for name, data in files:
        for row in read_jsonl(data, name):
            parts = _text(row, "sentences", name).split("\t")
            if len(parts) != 2 or not all(p.strip() for p in parts):
                raise InputError(f"{name}:{row['__line__']}: 'sentences' must hold two candidates separated by a tab")
            items.append(Item(key, [("", parts[0]), ("", parts[1])], parts, {"ratio": float(_field(row, "ratio", name))}))
    return items


def comps_key(stem: str) -> str:
    """COMPS file name -> key, as the 2025 reader maps them (anything else is the in-between set)."""
    return {"comps_base": "base", "comps_wugs": "wugs", "comps_wugs_dist-before": "wugs_dist_before"}.get(stem, "wugs_dist_in_between")


def comps_items(files: Iterable[tuple[str, bytes | Path]]) -> list[Item]:
    """COMPS: ``prefix + " " + property_phrase``; the property is scored; pred = the full sentence."""
    items = []
    for name, data in files:
        key = comps_key(Path(name).stem)
        for row in read_jsonl(data, name):
            good, bad = _text(row, "prefix_acceptable", name), _text(row, "prefix_unacceptable", name)
            prop = " " + _text(row, "property_phrase", name)
            items.append(Item(key, [(good, prop), (bad, prop)], [good + prop, bad + prop]))
    return items


# pandas.read_csv's default missing-value strings: the official reader (pandas) turns these cells
# into NaN. It then fills a missing ``item`` with "None" and gives rows whose ``prev_item`` is
# missing no previous-word surprisal (NaN), so row 971 ("None of" / prev_item "None") has none.
PANDAS_NA = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                       "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})

READING_MEASURES = ("RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound", "self_paced_reading_time",
                    "Subtlex_log10", "length", "context_length", "prev_length")


def reading_rows(path: Path) -> list[ReadingRow]:
    """The reading CSV, read as the official pandas reader sees it: ``item`` cells that pandas takes
    for missing (:data:`PANDAS_NA`) become "None"; a row whose ``prev_item`` pandas takes for
    missing has no previous word (``prev_item`` and ``prev_word`` None)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for col in ("item", "word", "prev_word", "prev_item"):
            if col not in (reader.fieldnames or []):
                raise InputError(f"{path}: missing column {col!r}")
        for n, rec in enumerate(reader, start=2):
            if not (rec.get("word") or "").strip():
                raise InputError(f"{path}:{n}: empty 'word'")
            index = rec.get("") or rec.get(reader.fieldnames[0])
            try:
                idx = int(index)
            except (TypeError, ValueError):
                raise InputError(f"{path}:{n}: the first (index) column must be an integer") from None
            measures = {}
            for m in READING_MEASURES:
                try:
                    measures[m] = float(rec[m]) if rec.get(m) not in (None, "") else math.nan
                except ValueError:
                    measures[m] = math.nan
            item = rec.get("item") or ""
            prev_item = rec.get("prev_item") or ""
            has_prev = prev_item not in PANDAS_NA and bool(rec.get("prev_word"))
            rows.append(ReadingRow(idx, "None" if item in PANDAS_NA else item, rec["word"],
                                   prev_item if has_prev else None, rec["prev_word"] if has_prev else None, measures))
    return rows


# ---------------------------------------------------------------------------------------------
# Loading tasks
# ---------------------------------------------------------------------------------------------


def open_ewok_zip(path: Path, password: str | None) -> list[tuple[str, bytes]]:
    """Read the encrypted ``ewok_fast.zip`` in memory; nothing is extracted to disk."""
    if not password:
        raise UsageError(f"{path} is password-protected: pass --ewok_password or set {EWOK_PASSWORD_ENV} "
                         "(the password is in the official 2025 evaluation README), or leave ewok out of --tasks")
    try:
        with zipfile.ZipFile(path) as zf:
            zf.setpassword(password.encode("utf-8"))
            names = sorted(n for n in zf.namelist() if n.endswith(".jsonl"))
            return [(f"{path.name}:{Path(n).name}", zf.read(n)) for n in names]
    except RuntimeError as exc:
        if "password" in str(exc).lower():
            raise InputError(f"{path}: wrong EWoK password") from None
        raise InputError(f"{path}: cannot read the zip ({exc})") from None
    except (zlib.error, zipfile.BadZipFile) as exc:
        # ZipCrypto checks a password against one byte only: about one wrong password in 256 passes
        # it and then decrypts to data that does not inflate or fails its CRC
        if isinstance(exc, zlib.error) or "CRC" in str(exc):
            raise InputError(f"{path}: wrong EWoK password (the archive's data does not decrypt with it)") from None
        raise InputError(f"{path}: not a valid zip ({exc})") from None


def _files(folder: Path) -> list[tuple[str, Path]]:
    return [(str(f), f) for f in _jsonl_files(folder)]


def check_year_task(name: str, year: str) -> None:
    """A task of the other year's set, asked for by name: one line saying which --year has it."""
    if name in TASKS and name not in YEAR_TASKS[Rules(year)]:
        has = next(y for y in RULES if name in YEAR_TASKS[y])
        raise UsageError(f"--tasks: {name} is not in the {Rules(year).value} task set; score it with --year {has}")


def load_task(name: str, eval_set: str, root: Path, ewok_password: str | None = None, limit: int = 0,
              year: str = DEFAULT_RULES) -> TaskData:
    """Load one task by its --tasks name (or a folder path for a custom BLiMP-format task) by
    ``year``'s rules; a task that holds no item is refused in one line."""
    data = _load_task(name, eval_set, root, ewok_password, Rules(year))
    data.year = Rules(year).value
    if not data.items and not data.rows:
        raise InputError(f"{data.source or root}: task {data.name} holds no item to score; check the file(s) "
                         "(an empty *.jsonl, or every entity-tracking item dropped by the 2026 \"nothing\" rule)")
    return _limited(data, limit)


def _load_task(name: str, eval_set: str, root: Path, ewok_password: str | None, year: Rules) -> TaskData:
    if name not in TASKS:
        folder = Path(name)
        if folder.is_dir():
            items = minimal_pair_items(_files(folder), uid_from_field=True)
            return TaskData("custom", "custom", folder.name, "ranking", str(folder), items, official=False)
        raise UsageError(f"--tasks: unknown task {name!r}; tasks are {', '.join(YEAR_TASKS[year])} or a folder of "
                         "BLiMP-format *.jsonl")
    check_year_task(name, year)
    if eval_set not in EVAL_SETS:
        raise UsageError(f"--eval_set: {eval_set!r} is not one of {', '.join(EVAL_SETS)}")
    task, data_dir = DATA_DIRS[(name, eval_set)]
    if name == "reading":  # its results folder has no data sub-folder
        folder = find_folder(root, "reading")
        path = folder / "reading_data.csv" if folder else None
        if path is None or not path.is_file():
            raise InputError(f"{root}: no reading/reading_data.csv; check --eval_data")
        return TaskData(name, task, "", "reading", str(path), rows=reading_rows(path))
    folder = find_folder(root, data_dir)
    source = str(folder) if folder else ""
    if name == "ewok":
        if folder is not None:
            files: list = _files(folder)
        else:
            zipped = next((p for p in (root / "ewok_fast.zip", root / "ewok" / "ewok_fast.zip", root / "fast_eval" / "ewok_fast.zip")
                           if p.is_file()), None)
            if eval_set != "fast" or zipped is None:
                raise InputError(f"{root}: no {data_dir}/ folder" + ("" if eval_set == "fast" else
                                 " (full EWoK must be built from the gated HF dataset; --eval_set fast uses ewok_fast.zip)"))
            files, source = open_ewok_zip(zipped, ewok_password or os.environ.get(EWOK_PASSWORD_ENV)), f"{zipped} (encrypted)"
        data = TaskData(name, task, data_dir, "ranking", source, ewok_items(files, year))
    elif name in global_piqa.TASKS:
        data = global_piqa_task(name, eval_set, root)
    elif name == "entity_tracking" and folder is None and eval_set == "fast":
        # The official fast set is the `regular` file only, byte-identical to the full one
        # (evaluation_data/fast_eval/entity_tracking_fast of the official OSF release).
        full = find_folder(root, "entity_tracking")
        if full is None or not (full / "regular.jsonl").is_file():
            raise InputError(f"{root}: no entity_tracking_fast/ or entity_tracking/regular.jsonl")
        regular = full / "regular.jsonl"
        data = TaskData(name, task, data_dir, "ranking", str(regular), entity_tracking_items([(str(regular), regular)], year))
    else:
        if folder is None:
            raise InputError(f"{root}: no {data_dir}/ folder for task {name} (looked in ., full_eval/, fast_eval/); check --eval_data")
        files = _files(folder)
        if name in ("blimp", "blimp_supplement"):
            items = minimal_pair_items(files, uid_from_field=(name == "blimp"))
        elif name == "entity_tracking":
            items = entity_tracking_items(files, year)
        elif name in ("wug_adj", "wug_past"):
            items = wug_items(files, name)
        else:
            items = comps_items(files)
        data = TaskData(name, task, data_dir, "wug" if name.startswith("wug") else "ranking", source, items)
    return data


def global_piqa_task(name: str, eval_set: str, root: Path) -> TaskData:
    """A GlobalPIQA task: one item per example (key = example id), options in the file's order."""
    folder = global_piqa.data_folder(root, name, eval_set == "fast")
    if folder is None:
        raise InputError(f"{root}: no {name}/ folder (looked in full_eval/, fast_eval/ and .); the GlobalPIQA data "
                         "is on the hub only: `python -m eval_export download-evals` fetches it")
    items = [Item(eid, [(prompt, c) for c in completions], completions, gold=label)
             for eid, prompt, completions, label in global_piqa.read(folder, name)]
    return TaskData(name, name, name, "ranking", str(folder), items, reduction=global_piqa.REDUCTION)


def ewok_unavailable(eval_set: str, root: Path, password: str | None) -> str | None:
    """Why EWoK cannot be scored here (None: it can). Its plain text is never shipped: the full set is
    built from the gated HF dataset, the fast set comes as an encrypted zip."""
    if find_folder(root, DATA_DIRS[("ewok", eval_set)][1]) is not None:
        return None
    if eval_set == "full":
        return "no ewok_filtered/ (build it from the gated HF dataset ewok-core/ewok-core-1.0 with the official filter)"
    zipped = any(p.is_file() for p in (root / "ewok_fast.zip", root / "ewok" / "ewok_fast.zip", root / "fast_eval" / "ewok_fast.zip"))
    if not zipped:
        return "no ewok_fast/ folder or ewok_fast.zip"
    if not (password or os.environ.get(EWOK_PASSWORD_ENV)):
        return f"ewok_fast.zip is encrypted: pass --ewok_password or set {EWOK_PASSWORD_ENV}"
    return None


def task_available(name: str, eval_set: str, root: Path) -> bool:
    task, data_dir = DATA_DIRS[(name, eval_set)]
    if name in global_piqa.TASKS:
        return global_piqa.data_folder(root, name, eval_set == "fast") is not None
    return find_folder(root, data_dir or task) is not None


def _limited(data: TaskData, limit: int) -> TaskData:
    """Keep the first ``limit`` items of each subtask (smoke runs); counts are then unofficial."""
    if limit > 0:
        seen: dict[str, int] = {}
        kept = []
        for it in data.items:
            group = data.name if data.name in global_piqa.TASKS else it.uid  # one item per GlobalPIQA key
            seen[group] = seen.get(group, 0) + 1
            if seen[group] <= limit:
                kept.append(it)
        data.items = kept
        data.rows = data.rows[:limit]
        data.official = False
    elif data.official:
        check_counts(data)
    return data


def check_counts(data: TaskData) -> None:
    """Compare the loaded counts with the official sizes; mismatch -> InputError."""
    expected = (EXPECTED_2026 if data.year == Rules.Y2026 else {}).get(data.data_dir) or \
        EXPECTED.get(data.data_dir or "reading")
    if expected is None:
        return
    counts = data.uid_counts()
    where = f"{data.source}"
    if "counts" in expected:
        want = expected["counts"]
        got = {k.lower(): v for k, v in counts.items()}
        for key, n in want.items():
            if got.get(key.lower(), 0) != n:
                raise InputError(f"{where}: {key} has {got.get(key.lower(), 0)} items, the official set has {n}; "
                                 "re-download the evaluation data (or use --limit for a smoke run)")
        extra = sorted(set(got) - {k.lower() for k in want})
        if extra:
            raise InputError(f"{where}: unexpected subtask(s) {', '.join(extra)}")
        return
    if len(counts) != expected["n_uids"]:
        raise InputError(f"{where}: {len(counts)} subtasks, the official set has {expected['n_uids']}")
    if "per_uid" in expected:
        bad = next((k for k, v in counts.items() if v != expected["per_uid"]), None)
        if bad is not None:
            raise InputError(f"{where}: {bad} has {counts[bad]} items, the official set has {expected['per_uid']}")
    if "total" in expected and sum(counts.values()) != expected["total"]:
        raise InputError(f"{where}: {sum(counts.values())} items in all, the official set has {expected['total']}")

