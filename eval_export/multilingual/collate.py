"""The two files the multilingual track submits, collated and checked.

Keys and sections follow babylm-eval 3d57ddc, ``multilingual/scripts/collate_results.py``:

* scores file ``{task: {key: float}}``: a zero-shot task (alias indent 1 in lm-eval's results, or a known
  task name) under its own name, ``acc,none`` (``acc_norm,none`` for Global PIQA); a fine-tuning task
  ``{task: {xx: eval_accuracy}}``; server-scored tasks (Hanzi, MECO) never appear;
* predictions file: ``zeroshot`` (lm-eval's results dicts merged), ``finetune``
  (``{"<task>_<xx>": [{"index": i, "prediction": label}]}``), ``hidden`` (Hanzi per item
  ``"<doc_id>:<doc_hash>": {"scores": [good, bad], "has_unk": bool}`` and MECO surprisals) and, with the
  milestones, ``fast_eval_results``: one summary per revision chck_1M .. chck_1000M (Hanzi accuracy
  included; empty for a revision not scored).

:func:`check_files` checks them as the leaderboard checks multilingual files: the scores file is a
dict of dicts of finite numbers with no server-scored task; the predictions file is an object with at
least one of the sections, each of its type.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from babylm.errors import InputError
from babylm.files import read_json, write_json
from eval_export.multilingual import spec

log = logging.getLogger(__name__)
SECTIONS = ("zeroshot", "finetune", "hidden")


def parse_zeroshot(results: dict, include_server_scored: bool = False) -> dict[str, dict[str, float]]:
    expected = set().union(*spec.EXPECTED_ZEROSHOT.values())
    out = {}
    for task, data in results.items():
        alias = data.get("alias", task)
        indent = len(alias) - len(alias.lstrip())
        score = data.get(spec.metric_of(task))
        if (include_server_scored or task not in spec.SERVER_SCORED_TASKS) and (indent == 1 or task in expected) \
                and isinstance(score, (int, float)):
            out[task] = {task: score}
    return out


def _zeroshot_results(rev_dir: Path) -> dict:
    path = rev_dir / "zeroshot" / "results.json"
    return read_json(path)["results"] if path.is_file() else {}


def _hanzi(rev_dir: Path) -> dict[str, dict]:
    out = {}
    for task in ("hanzi_structure", "hanzi_pinyin"):
        path = rev_dir / "zeroshot" / f"samples_{task}.jsonl"
        if not path.is_file():
            continue
        items = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            sample = json.loads(line)
            scores = [float(r[0]) for r in sample["filtered_resps"]]
            if len(scores) != 2 or not all(math.isfinite(s) for s in scores):
                raise InputError(f"{path}:{number}: a Hanzi item needs two finite scores")
            prediction = max(range(2), key=scores.__getitem__)
            items[f"{sample['doc_id']}:{sample['doc_hash']}"] = {
                "scores": scores, "has_unk": prediction == int(sample["target"]) and float(sample["acc"]) == 0.0}
        out[task] = items
    return out


def _finetune(rev_dir: Path) -> tuple[dict[str, dict[str, float]], dict[str, list[dict]]]:
    scores: dict[str, dict[str, float]] = {}
    preds: dict[str, list[dict]] = {}
    for result in sorted((rev_dir / "finetune_multilingual").glob("*/*/eval_results.json")):
        xx, task = result.parts[-3], result.parts[-2]
        if xx == "pos":  # the joint POS model writes pos/<xx>/ (collate_results.py _finetune_lang_task)
            xx, task = task, xx
        acc = read_json(result).get("eval_accuracy")
        if acc is not None:
            scores.setdefault(task, {})[xx] = acc
        lines = (result.parent / "predictions.txt").read_text(encoding="utf-8").splitlines()[1:]
        preds[f"{task}_{xx}"] = [{"index": int(i), "prediction": p} for i, _, p in (x.partition("\t") for x in lines if x)]
    return scores, preds


def _meco(rev_dir: Path) -> dict:
    path = rev_dir / "meco" / "predictions_meco.json"
    data = read_json(path) if path.is_file() else {}
    return {k: data[k] for k in ("meco_l1", "meco_l2") if data.get(k)}


def collate(model_dir: str | Path, fast: bool = False) -> tuple[dict, dict]:
    """(scores, predictions) of a results folder ``<results>/<model>`` (revision main, and the
    milestones chck_* with ``fast``)."""
    root = Path(model_dir)
    main = root / "main"
    raw = _zeroshot_results(main)
    ft_scores, ft_preds = _finetune(main)
    hidden = {**_hanzi(main), **_meco(main)}
    scores = {**parse_zeroshot(raw), **ft_scores}
    for lang, expected in spec.EXPECTED_ZEROSHOT.items():
        found = expected & (set(scores) | set(hidden))
        for task in sorted(expected - found) if found else ():
            log.warning("zero-shot task %s (%s) is missing: the leaderboard counts it 0", task, lang)
    predictions: dict[str, Any] = {"zeroshot": raw, "finetune": ft_preds, "hidden": hidden}
    if fast:
        predictions["fast_eval_results"] = [
            {task: v[task] for task, v in parse_zeroshot(_zeroshot_results(root / rev), True).items()}
            for rev in spec.REVISIONS]
    if not scores and not hidden:
        raise InputError(f"{root}: no zero-shot, fine-tuning or hidden-task results under main/; run zeroshot or "
                         "finetune first")
    return scores, predictions


def check_files(scores_path: str | Path, predictions_path: str | Path | None = None) -> list[str]:
    """The leaderboard's checks of multilingual files; raises InputError naming the first problem."""
    scores = read_json(scores_path)
    if not isinstance(scores, dict) or not scores:
        raise InputError(f"{scores_path}: the scores file must be a non-empty JSON object {{task: {{key: number}}}}")
    for task, values in scores.items():
        if task in spec.SERVER_SCORED_TASKS:
            raise InputError(f"{scores_path}: {task}: a server-scored task must not be in the scores file "
                             "(its predictions go to the predictions file's hidden section)")
        if not isinstance(values, dict) or not values:
            raise InputError(f"{scores_path}: {task}: expected an object {{subtask_or_language: number}}")
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{scores_path}: {task}.{key}: {value!r} is not a finite number")
    notes = [f"{len(scores)} tasks in the scores file"]
    if predictions_path is not None:
        preds = read_json(predictions_path)
        if not isinstance(preds, dict) or not any(preds.get(s) for s in SECTIONS):
            raise InputError(f"{predictions_path}: the predictions file needs at least one of the sections "
                             f"{', '.join(SECTIONS)}")
        for section, value in preds.items():
            kind = list if section.startswith("fast_eval") else dict
            if section not in SECTIONS and not section.startswith("fast_eval"):
                raise InputError(f"{predictions_path}: unknown section {section!r}; known: {', '.join(SECTIONS)}, "
                                 "fast_eval_*")
            if not isinstance(value, kind):
                raise InputError(f"{predictions_path}: {section}: expected a JSON {kind.__name__}")
        notes.append("predictions sections: " + ", ".join(f"{s} ({len(preds[s])})" for s in preds))
    return notes


def write_files(scores: dict, predictions: dict, scores_path: str | Path, predictions_path: str | Path) -> None:
    write_json(scores_path, scores)
    write_json(predictions_path, predictions)
