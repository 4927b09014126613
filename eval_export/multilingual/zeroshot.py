"""Zero-shot scoring of the multilingual tasks through lm-evaluation-harness, called as a library.

The model is lm-eval's ``HFLM`` with the tokenisation of the official ``hf-bos`` model
(babylm-eval 3d57ddc, ``multilingual/scripts/bos_hf_model.py``): every string is encoded without the
tokenizer's own special tokens and exactly one BOS is put in front, so a kit tokenizer that adds
``<s>`` (or one that also adds ``</s>``) gives the same context/continuation split as the official run.
A minimal pair is then scored as the summed log-probability of ``" " + sentence`` after ``<s>``.

Output, under ``<results>/<model>/<revision>/zeroshot/``: ``results.json`` (``{"results": {...}}``,
lm-eval's results dict: one entry per language group ``zeroshot_<lang>`` / ``global_piqa_<lang>``, task
and subtask, with the official aliases' indentation and the groups' size-weighted mean), and
``samples_<task>.jsonl`` for every subtask (doc_id, doc_hash, per-choice scores, target, metrics), from
which the Hanzi predictions are collated. The folder is written whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from babylm.files import atomic_dir, write_text
from eval_export.multilingual import spec
from eval_export.multilingual.tasks import Task, lm_eval_config

log = logging.getLogger(__name__)


def bos_model(model: str, revision: str | None = None, batch_size: int = 16, device: str = "cpu",
              trust_remote_code: bool = False):
    """lm-eval's HFLM with the official hf-bos tokenisation (lm_eval is imported here: an optional extra)."""
    from lm_eval.models.huggingface import HFLM

    class BosHFLM(HFLM):
        def tok_encode(self, string, add_special_tokens=None, left_truncate_len=None, **kwargs):
            ids = self.tokenizer.encode(string, add_special_tokens=False)
            if self.add_bos_token and self.prefix_token_id is not None:
                ids = [self.prefix_token_id] + ids
            return ids[-left_truncate_len:] if left_truncate_len else ids

    args: dict[str, Any] = {"pretrained": model, "batch_size": batch_size, "device": device,
                            "add_bos_token": True, "trust_remote_code": trust_remote_code}
    if revision and revision != "main":
        args["revision"] = revision
    return BosHFLM(**args)


def doc_hash(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def run_tasks(lm, tasks: list[Task], limit: int | None = None) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """Score every subtask with lm-eval; returns (results per subtask, samples per subtask)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    configs = [lm_eval_config(sub, lm.tokenizer) for task in tasks for sub in task.subtasks]
    out = lm_eval.simple_evaluate(model=lm, tasks=configs, limit=limit, log_samples=True, bootstrap_iters=0,
                                  task_manager=TaskManager(include_defaults=False), verbosity="WARNING")
    results = {name: {k: v for k, v in res.items() if k != "alias"} for name, res in out["results"].items()}
    samples = {name: [{"doc_id": s["doc_id"], "doc_hash": s.get("doc_hash") or doc_hash(s["doc"]),
                       "target": s["target"], "filtered_resps": [[float(r[0]), bool(r[1])] for r in s["filtered_resps"]],
                       **{m: s[m] for m in ("acc", "acc_norm") if m in s}}
                       for s in sorted(rows, key=lambda s: s["doc_id"])]
               for name, rows in out["samples"].items()}
    return results, samples


def _weighted(rows: list[tuple[dict, int]], metric: str) -> float | None:
    pairs = [(r[metric], n) for r, n in rows if metric in r]
    total = sum(n for _, n in pairs)
    return sum(v * n for v, n in pairs) / total if total else None


def assemble(tasks: list[Task], results: dict[str, dict], samples: dict[str, list]) -> dict[str, dict]:
    """lm-eval's results dict of the official groups: language group (alias indent 0), task (indent 1),
    subtask (indent 2); a group's metric is the size-weighted mean of its members (weight_by_size)."""
    out: dict[str, dict] = {}
    by_lang: dict[str, list[tuple[str, dict, int]]] = {}
    for task in tasks:
        metrics = ("acc_norm",) if task.name.startswith("global_piqa") else ("acc", "acc_norm")
        members = [(results[s.name], len(samples[s.name])) for s in task.subtasks]
        size = sum(n for _, n in members)
        if task.is_group:
            entry = {"alias": f" - {task.name}", "samples": size}
            for metric in metrics:
                value = _weighted(members, f"{metric},none")
                if value is not None:
                    entry[f"{metric},none"] = value
            out[task.name] = entry
            for sub, (res, n) in zip(task.subtasks, members):
                out[sub.name] = {"alias": f"  - {sub.name}", **res, "samples": n}
        else:
            out[task.name] = {"alias": f" - {task.name}", **members[0][0], "samples": size}
        group = ("global_piqa_" if task.name.startswith("global_piqa") else "zeroshot_") + (spec.language_of(task.name) or "")
        by_lang.setdefault(group, []).append((task.name, out[task.name], size))
    for group, members in by_lang.items():
        metric = "acc_norm,none" if group.startswith("global_piqa") else "acc,none"
        value = _weighted([(entry, n) for _, entry, n in members], metric)
        out[group] = {"alias": group, metric: value, "samples": sum(n for *_, n in members)}
    return out


def write_zeroshot(out_dir: str | Path, tasks: list[Task], results: dict, samples: dict, record: dict) -> Path:
    """``results.json`` and ``samples_<subtask>.jsonl`` under ``out_dir`` (whole or not at all)."""
    with atomic_dir(out_dir, overwrite=True) as tmp:
        write_text(tmp / "results.json", json.dumps({"results": assemble(tasks, results, samples), "run": record},
                                                    indent=2) + "\n")
        for name, rows in samples.items():
            write_text(tmp / f"samples_{name}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return Path(out_dir)
