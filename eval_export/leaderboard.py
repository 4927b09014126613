"""What the 2026 leaderboard makes of a collated file: the scores it computes, computed here.

The leaderboard (the Hugging Face Space BabyLM-community/BabyLM-Leaderboard-2026) scores an uploaded
``all_full_preds_and_fast_scores_<backend>.json`` itself; the rules below are read from its public code
(state of July 2026) and are named where they are used:

* ``src/submission/eval_submission.py`` (``evaluate_submission``): each zero-shot subtask is the share
  of predictions whose stripped ``pred`` equals the stripped gold target, items matched by position
  (``zip``: a short list is scored on the items it has); a subtask absent from the file scores 0; entity
  tracking is read from ``entity_tracking_filtered`` only, its gold without the items whose target holds
  "nothing"; GlobalPIQA is read per ``example_id``, a missing example counting as wrong; GLUE subtasks
  are scored by F1 (MRPC, QQP: binary, class 1, 0 when undefined) or accuracy (the rest); reading is the
  gain in R² of the official regressions (``spr``, ``rt``), 0 for both when absent; AoA is the number
  in ``{"aoa": <float>}``, anything else 0.
* ``src/leaderboard/read_evals.py`` (``init_from_json_file``, ``to_dict``): a benchmark's column is the
  mean of its subtask scores x 100; GlobalPIQA is the mean of its parallel and nonparallel columns; AoA
  is zeroed without ``aoa_surprisals`` in the file and entity tracking without ``entity_tracking_filtered``;
  the overall average is the plain mean of nine columns, a missing one counting 0: BLiMP, BLiMP
  supplement, EWoK, entity tracking, COMPS, GLUE, GlobalPIQA (the "NLP" average of seven) and reading,
  AoA (the "human-like" average of two).

The gold targets come from the official evaluation data (the folders of babylm-org/babylm-eval at
3d57ddc, ``evaluation_data/full_eval``): the leaderboard keeps its own copy with a ``target`` per item,
which is taken here to be the gold candidate as the 3d57ddc pipeline writes its predictions (BLiMP:
``sentence_good``; EWoK: ``Context1 + " " + Target1``; entity tracking: the first option; COMPS: the
acceptable prefix and the property; GlobalPIQA: ``solution<label>``; GLUE: the label).

The same comparisons give the fast-eval metrics of the 3d57ddc collator (``collate_preds.py``,
``_calculate_target_results``, ``_calculate_target_et_results``, ``_calculate_global_piqa_results``,
``_calculate_reading_results``), which :mod:`eval_export.submission` writes into ``fast_eval_results``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from babylm import files
from babylm.errors import InputError
from eval_export import glue as glue_lib
from eval_export import tasks

# Subtask metric of GLUE (eval_submission.py GLUE_SUBTASK_METRICS, from the Space's about.py): F1 for
# MRPC and QQP, accuracy for the others.
GLUE_METRIC = {"mrpc": "f1", "qqp": "f1"}
GLUE_TASKS = ("boolq", "mnli", "mrpc", "multirc", "qqp", "rte", "wsc")
GLOBAL_PIQA = ("global_piqa_parallel", "global_piqa_nonparallel")
# Columns of the overall average, in the order read_evals.py lists them.
NLP_COLUMNS = ("blimp", "blimp_supplement", "ewok", "entity_tracking", "comps", "glue", "global_piqa")
HUMAN_COLUMNS = ("reading", "aoa")
COLUMN_NAMES = {"blimp": "BLiMP", "blimp_supplement": "BLiMP supplement", "ewok": "EWoK",
                "entity_tracking": "entity tracking", "comps": "COMPS", "glue": "GLUE (SuperGLUE)",
                "global_piqa": "GlobalPIQA", "reading": "reading", "aoa": "AoA"}
# The regressions of evaluation_pipeline/reading (and of collate_preds.py / eval_submission.py):
# baseline predictors, in the order patsy builds their columns (main effects, then pairwise products).
EYE_TRACKING = ("RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound")
RT_BASE = ("Subtlex_log10", "length", "context_length")
SPR_BASE = ("Subtlex_log10", "length", "context_length", "prev_length", "prev_pred")


# ---------------------------------------------------------------------------------------------
# Gold targets
# ---------------------------------------------------------------------------------------------


def _rows(name: str, data: bytes | Path) -> list[dict]:
    return files.read_jsonl(data, name)


def _stem(name: str) -> str:
    """A data file's subtask: its stem (``ewok_fast.zip:agent-properties.jsonl`` -> ``agent-properties``)."""
    return Path(name.rsplit(":", 1)[-1]).stem


def _jsonl(folder: Path) -> list[tuple[str, Path]]:
    return [(p.stem, p) for p in sorted(folder.glob("*.jsonl"))]


def _folder(root: Path, name: str, fast: bool = False) -> Path | None:
    """``name`` under the data root; a fast set looks in ``fast_eval/`` first (GlobalPIQA and reading have
    the same folder name in both, and the collator reads the fast one: ``--fast_eval_dir``)."""
    if fast and (root / "fast_eval" / name).is_dir():
        return root / "fast_eval" / name
    return tasks.find_folder(root, name)


def _no_nothing(row: dict) -> bool:
    """Entity-tracking items kept in 2026 (read_files.py @ 3d57ddc drops those with "nothing" in an option;
    in the official files those are exactly the items whose target holds it)."""
    return not any("nothing" in option for option in row["options"])


def gold_items(root: Path, section: str, eval_set: str = "full",
               ewok_password: str | None = None) -> dict[str, list[list[Any]]] | None:
    """{subtask: [candidates of each item, gold first]} of one section of the 2026 collated file, as
    its predictions spell them (the gold candidate is the leaderboard's target), or None when the
    evaluation data does not hold the section. Subtasks are keyed as the predictions key them."""
    fast = eval_set == "fast"
    if section in ("blimp", "blimp_supplement"):
        folder = _folder(root, ("blimp" if section == "blimp" else "supplement") + ("_fast" if fast else "_filtered"))
        return None if folder is None else {
            stem: [[_get(r, "sentence_good", p), _get(r, "sentence_bad", p)] for r in _rows(str(p), p)]
            for stem, p in _jsonl(folder)}
    if section == "ewok":  # read_files.py @ 3d57ddc: Target1 after Context1 (gold) or after Context2
        found = _ewok_files(root, eval_set, ewok_password)
        return None if found is None else {
            _stem(name): [[f"{_get(r, 'Context1', name)} {_get(r, 'Target1', name)}",
                               f"{_get(r, 'Context2', name)} {_get(r, 'Target1', name)}"] for r in _rows(name, data)]
            for name, data in found}
    if section == "entity_tracking_filtered":
        folder = _folder(root, "entity_tracking_fast" if fast else "entity_tracking")
        if folder is None and fast:  # the fast set is the full set's `regular` file (identical bytes)
            folder = _folder(root, "entity_tracking")
        if folder is None:
            return None
        gold: dict[str, list] = {}
        for stem, p in _jsonl(folder):
            if fast and stem != "regular":
                continue
            for r in filter(_no_nothing, _rows(str(p), p)):
                gold.setdefault(f"{stem}_{_get(r, 'numops', p)}_ops", []).append(list(r["options"]))
        return gold
    if section == "comps":
        folder = _folder(root, "comps")
        return None if folder is None else {
            tasks.comps_key(stem): [[f"{_get(r, 'prefix_acceptable', p)} {_get(r, 'property_phrase', p)}",
                                     f"{_get(r, 'prefix_unacceptable', p)} {r['property_phrase']}"] for r in _rows(str(p), p)]
            for stem, p in _jsonl(folder)}
    if section in GLOBAL_PIQA:
        folder = _folder(root, section, fast)
        path = folder / "eng_latn.jsonl" if folder else None
        if path is None or not path.is_file():
            return None
        out = {}
        for r in _rows(str(path), path):
            label = _get(r, "label", path)
            solutions = [r[f"solution{k}"] for k in range(4) if f"solution{k}" in r]
            out[_get(r, "example_id", path)] = [[solutions[label], *(s for k, s in enumerate(solutions) if k != label)]]
        return out
    if section == "glue":
        folder = _folder(root, "glue_filtered")
        found = {t: folder / f"{t}.valid.jsonl" for t in GLUE_TASKS} if folder else {}
        if not found or not all(p.is_file() for p in found.values()):
            return None
        return {t: [[int(_get(r, "label", p))] for r in _rows(str(p), p)] for t, p in found.items()}
    raise ValueError(f"no gold data for section {section!r}")


def zero_shot_gold(root: Path, section: str, eval_set: str = "full",
                   ewok_password: str | None = None) -> dict[str, list[Any]] | None:
    """{subtask: [gold target of each item]}, or None when the evaluation data does not hold the section.

    EWoK fast is the exception the 3d57ddc collator makes: its fast metric compares each prediction with
    ``Target1`` alone (``collate_preds.py``, ``_calculate_target_results``: ``data_key = "Target1"``)."""
    if section == "ewok" and eval_set == "fast":
        found = _ewok_files(root, eval_set, ewok_password)
        return None if found is None else {_stem(n): [_get(r, "Target1", n) for r in _rows(n, d)] for n, d in found}
    items = gold_items(root, section, eval_set, ewok_password)
    return None if items is None else {k: [c[0] for c in v] for k, v in items.items()}


def _get(row: dict, key: str, where: Any) -> Any:
    if key not in row:
        raise InputError(f"{where}:{row.get('__line__', '?')}: missing field {key!r}; is this the official evaluation data?")
    return row[key]


def _ewok_files(root: Path, eval_set: str, password: str | None) -> list[tuple[str, bytes | Path]] | None:
    folder = _folder(root, "ewok_fast" if eval_set == "fast" else "ewok_filtered")
    if folder is not None:
        return [(str(p), p) for _, p in _jsonl(folder)]
    if eval_set != "fast":
        return None
    # the fast set as the official release ships it: an encrypted zip, read in memory
    for path in (root / "ewok_fast.zip", root / "ewok" / "ewok_fast.zip", root / "fast_eval" / "ewok_fast.zip"):
        if path.is_file():
            return tasks.open_ewok_zip(path, password or os.environ.get(tasks.EWOK_PASSWORD_ENV))
    return None


def reading_csv(root: Path, fast: bool = False) -> Path | None:
    folder = _folder(root, "reading", fast)
    path = folder / "reading_data.csv" if folder else None
    return path if path is not None and path.is_file() else None


# ---------------------------------------------------------------------------------------------
# Comparisons
# ---------------------------------------------------------------------------------------------


def _same(pred: Any, target: Any) -> bool:
    """Official comparison: strings are compared stripped, anything else as it is."""
    pred = pred.strip() if isinstance(pred, str) else pred
    target = target.strip() if isinstance(target, str) else target
    return pred == target


def subtask_accuracy(preds: list[dict], targets: list[Any]) -> tuple[int, int]:
    """(correct, compared) with predictions and targets matched by position, as ``zip`` does."""
    pairs = list(zip(preds, targets))
    return sum(_same(p["pred"], t) for p, t in pairs), len(pairs)


def fast_accuracies(block: dict, gold: dict[str, list]) -> dict[str, float]:
    """One checkpoint's fast metrics: {subtask: share right}, subtasks in the file's order
    (collate_preds.py @ 3d57ddc). A subtask without gold items raises InputError."""
    out = {}
    for subtask, entry in block.items():
        right, n = subtask_accuracy(entry["predictions"], gold.get(subtask, []))
        if n == 0:
            raise InputError(f"subtask {subtask}: no gold items to compare with (the official collator divides by zero)")
        out[subtask] = right / n
    return out


def global_piqa_accuracy(block: dict, gold: dict[str, list]) -> float:
    """Share of gold examples whose prediction is the right solution; a missing example is wrong."""
    right = sum(bool(block.get(eid)) and _same(block[eid]["predictions"][0]["pred"], target[0])
                for eid, target in gold.items())  # gold: {example id: [target]}
    return right / len(gold) if gold else 0.0


# ---------------------------------------------------------------------------------------------
# Reading: the official regressions (statsmodels OLS on patsy design matrices), in numpy
# ---------------------------------------------------------------------------------------------


def _r2(y: np.ndarray, columns: list[np.ndarray]) -> float:
    """R² of an ordinary least-squares fit with an intercept, computed as statsmodels' OLS does with its
    default ``pinv`` method: coefficients from the SVD pseudo-inverse (singular values below 1e-15 of
    the largest dropped), R² = 1 - SSR / centred total sum of squares."""
    X = np.column_stack([np.ones(len(y)), *columns])  # (n, k)
    u, s, vt = np.linalg.svd(X, full_matrices=False)
    inv = np.where(s > 1e-15 * s.max(), 1.0 / np.where(s == 0, 1.0, s), 0.0)
    pinv = np.dot(vt.T, inv[:, None] * u.T)  # (k, n)
    beta = np.dot(pinv, y)
    resid = y - np.dot(X, beta)
    # statsmodels' OLS is a WLS with unit weights: its centred sum of squares is np.sum, not a dot product
    return 1.0 - float(np.dot(resid, resid)) / float(np.sum((y - np.average(y, weights=np.ones_like(y))) ** 2))


def _design(cols: dict[str, np.ndarray], main: tuple[str, ...], extra: tuple[str, ...] = ()) -> list[np.ndarray]:
    """patsy's columns for the official formulas ``a + b + ... + a:b + a:c + ... [+ pred]``: in formula
    order, the main effects, their pairwise products, then ``extra``."""
    pairs = [cols[a] * cols[b] for k, a in enumerate(main) for b in main[k + 1:]]
    return [cols[m] for m in main] + pairs + [cols[e] for e in extra]


def _gain(cols: dict[str, np.ndarray], y_name: str, main: tuple[str, ...]) -> float:
    """(R²(baseline + pred) - R²(baseline)) / (1 - R²(baseline)), each fit on its own complete rows."""
    def fit(names: tuple[str, ...], extra: tuple[str, ...]) -> float:
        keep = np.all([~np.isnan(cols[n]) for n in (y_name, *names, *extra)], axis=0)
        return _r2(cols[y_name][keep], _design({n: cols[n][keep] for n in (*names, *extra)}, names, extra))

    base = fit(main, ())
    return (fit(main, ("pred",)) - base) / (1 - base)


# Powers of ten as pandas' float parser holds them (a table of doubles, 1e0 ... 1e308).
_TENS = [10.0 ** k for k in range(309)]


def pandas_float(text: str) -> float:
    """A CSV number as pandas' default C parser reads it (``float_precision=None``, its "high" converter,
    ``precise_xstrtod`` in pandas/_libs/src/parser/tokenizer.c): up to 17 significant digits accumulated
    in a double, then one multiplication or division by a power of ten. It is not correctly rounded:
    45 of the 15,504 numbers of the official reading CSV come out one unit in the last place away from
    Python's ``float``, which moves the regressions' R² in the 13th digit."""
    p = text.strip()
    i, negative = 0, p[:1] == "-"
    i += p[:1] in ("-", "+")
    start, number, exponent, digits = i, 0.0, 0, 0
    while i < len(p) and p[i] in "0123456789":
        if digits < 17:
            number, digits = number * 10.0 + (ord(p[i]) - 48), digits + 1
        else:
            exponent += 1
        i += 1
    if i < len(p) and p[i] == ".":
        i += 1
        while i < len(p) and p[i] in "0123456789":
            if digits < 17:
                number, digits, exponent = number * 10.0 + (ord(p[i]) - 48), digits + 1, exponent - 1
            i += 1
    if i < len(p) and p[i] in "eE":
        j = i + 1 + (p[i + 1:i + 2] in ("-", "+"))
        k = j
        while k < len(p) and p[k] in "0123456789":
            k += 1
        exponent += int(p[j:k] or "0") * (-1 if p[i + 1:i + 2] == "-" else 1)
        i = k
    if i != len(p) or i == start:
        raise ValueError(f"not a number: {text!r}")
    if exponent > 308:
        number = math.inf
    elif exponent >= 0:
        number *= _TENS[exponent]
    elif exponent < -308:
        number = 0.0 if exponent < -616 else number / _TENS[-308 - exponent] / _TENS[308]
    else:
        number /= _TENS[-exponent]
    return -number if negative else number


@functools.lru_cache(maxsize=4)
def reading_table(csv_path: Path) -> dict[str, np.ndarray]:
    """The numeric columns of the reading CSV as the official reader (pandas.read_csv) has them: its missing
    markers (``tasks.PANDAS_NA``) are NaN, every other cell is read by :func:`pandas_float`."""
    import csv

    columns = (*EYE_TRACKING, "self_paced_reading_time", *RT_BASE, "prev_length")
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{csv_path}: no column {missing[0]!r}; is this the official reading_data.csv?")
        values: dict[str, list[float]] = {c: [] for c in columns}
        for n, rec in enumerate(reader, start=2):
            for c in columns:
                cell = rec[c] or ""
                try:
                    values[c].append(math.nan if cell in tasks.PANDAS_NA else pandas_float(cell))
                except ValueError:
                    raise InputError(f"{csv_path}:{n}: column {c}: {cell!r} is not a number") from None
    return {c: np.array(v, dtype=np.float64) for c, v in values.items()}


def reading_scores(csv_path: Path, block: dict) -> dict[str, float]:
    """{"spr": gain, "rt": mean gain over the four eye-tracking measures} of a reading predictions block."""
    cols = dict(reading_table(Path(csv_path)))  # a copy: the cached table is shared between checkpoints
    preds = block["reading"]["predictions"]
    n_rows = len(cols["length"])
    if len(preds) != n_rows:
        raise InputError(f"reading: {len(preds)} predictions for the {n_rows} rows of {csv_path}")
    cols["pred"] = np.array([_float(p["pred"]) for p in preds])
    cols["prev_pred"] = np.array([_float(p["prev_pred"]) for p in preds])
    rt = [_gain(cols, dv, RT_BASE) for dv in EYE_TRACKING]
    return {"spr": _gain(cols, "self_paced_reading_time", SPR_BASE), "rt": sum(rt) / len(rt)}


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


# ---------------------------------------------------------------------------------------------
# The leaderboard's scores of a whole file
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Scores:
    """The leaderboard's view of a file: per-subtask scores (fractions) and the columns (x 100)."""

    subtasks: dict[str, dict[str, float]]  # section -> {subtask: score}
    columns: dict[str, float]  # column -> score x 100, as displayed
    notes: list[str]  # why a column is 0 (a rule of the leaderboard), or was not computed here
    unscored: list[str]  # columns whose gold data is not under --eval_data (not computed)

    @property
    def nlp(self) -> float:
        return sum(self.columns.get(c, 0.0) for c in NLP_COLUMNS) / len(NLP_COLUMNS)

    @property
    def human_like(self) -> float:
        return sum(self.columns.get(c, 0.0) for c in HUMAN_COLUMNS) / len(HUMAN_COLUMNS)

    @property
    def overall(self) -> float:
        cols = NLP_COLUMNS + HUMAN_COLUMNS
        return sum(self.columns.get(c, 0.0) for c in cols) / len(cols)

    def text(self) -> str:
        lines = [f"{'column':<18} {'score':>8}  subtasks"]
        for col in NLP_COLUMNS + HUMAN_COLUMNS:
            if col in self.unscored:
                lines.append(f"{COLUMN_NAMES[col]:<18} {'n/a':>8}  no gold data under --eval_data (counted as 0 below)")
                continue
            parts = self.subtasks.get(col, {})
            shown = ", ".join(f"{k} {100 * v:.2f}" for k, v in parts.items()) if len(parts) <= 9 else f"{len(parts)} subtasks"
            lines.append(f"{COLUMN_NAMES[col]:<18} {self.columns[col]:>8.2f}  {shown}")
        lines.append(f"{'NLP average':<18} {self.nlp:>8.2f}  mean of {len(NLP_COLUMNS)} columns")
        lines.append(f"{'human-like average':<18} {self.human_like:>8.2f}  mean of {len(HUMAN_COLUMNS)} columns")
        lines.append(f"{'overall average':<18} {self.overall:>8.2f}  mean of {len(NLP_COLUMNS + HUMAN_COLUMNS)} columns")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def score_file(obj: dict, root: Path) -> Scores:
    """The leaderboard's scores of a collated file (its parsed JSON), against the gold data under ``root``."""
    sub: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    unscored: list[str] = []
    for section, column in (("blimp", "blimp"), ("blimp_supplement", "blimp_supplement"), ("ewok", "ewok"),
                            ("entity_tracking_filtered", "entity_tracking"), ("comps", "comps")):
        gold = zero_shot_gold(root, section)
        if gold is None:
            unscored.append(column)
            continue
        given = obj.get(section) or {}
        sub[column] = {}
        for name, targets in sorted(gold.items()):  # the gold files, in name order; absent -> 0
            entry = given.get(name)
            right, n = subtask_accuracy(entry["predictions"], targets) if entry else (0, 0)
            sub[column][name] = right / n if n else 0.0
    gold = zero_shot_gold(root, "glue")
    if gold is None:
        unscored.append("glue")
    else:
        sub["glue"] = {t: _glue_score(t, (obj.get("glue") or {}).get(t), labels) for t, labels in gold.items()}
    for task in GLOBAL_PIQA:
        gold = zero_shot_gold(root, task)
        if gold is None:
            unscored.append("global_piqa")
            break
        sub.setdefault("global_piqa", {})[task] = global_piqa_accuracy(obj.get(task) or {}, gold)
    path = reading_csv(root)
    if path is None:
        unscored.append("reading")
    else:
        sub["reading"] = reading_scores(path, obj["reading"]) if obj.get("reading") else {"spr": 0.0, "rt": 0.0}
    aoa = obj.get("aoa")
    ok = isinstance(aoa, dict) and isinstance(aoa.get("aoa"), (int, float)) and not isinstance(aoa.get("aoa"), bool)
    sub["aoa"] = {"aoa": float(aoa["aoa"]) if ok else 0.0}
    if not ok:
        notes.append("AoA scores 0: the file has no {\"aoa\": <number>} (2025 files hold raw surprisals there)")
    columns = {c: 100.0 * float(np.mean(list(v.values()))) if v else 0.0 for c, v in sub.items()}
    if "global_piqa" in sub:  # one column: the mean of the parallel and nonparallel columns
        columns["global_piqa"] = sum(100.0 * sub["global_piqa"][t] for t in GLOBAL_PIQA) / 2
    if ok and not obj.get("aoa_surprisals"):
        columns["aoa"] = 0.0
        notes.append("AoA scores 0: the leaderboard counts it only with the surprisals under aoa_surprisals")
    if not obj.get("entity_tracking_filtered"):
        columns["entity_tracking"] = 0.0
        notes.append("entity tracking scores 0: the leaderboard reads it only under entity_tracking_filtered "
                     "(2026 rules; collate --year 2026)")
    for col in unscored:
        columns[col] = 0.0
    return Scores(sub, columns, notes, unscored)


def _glue_score(task: str, entry: dict | None, labels: list[int]) -> float:
    if not entry:
        return 0.0
    preds = [p["pred"] for p in entry["predictions"]][:len(labels)]
    labels = labels[:len(preds)]
    if not labels:
        return 0.0
    if GLUE_METRIC.get(task) == "f1":
        return glue_lib.f1([int(t == 1) for t in labels], [int(p == 1) for p in preds])
    return sum(p == t for p, t in zip(preds, labels)) / len(labels)
