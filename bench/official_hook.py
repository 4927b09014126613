"""Run a module of the official evaluation pipeline unchanged, recording the scores it ranks.

    python bench/official_hook.py SCORES.json evaluation_pipeline.sentence_zero_shot.run --task blimp ...

The official zero-shot code (babylm-org/babylm-eval, ``strict/evaluation_pipeline/sentence_zero_shot``)
writes only the chosen candidate of each item. To compare scores item by item, and to count its
ties, this wrapper replaces the module attributes ``rank_and_evaluate`` and (2025 code only)
``rank_and_evaluate_wug`` of ``compute_results`` by functions that note the per-candidate
log-probabilities they receive (at the first temperature) and then call the original. The model,
the data and every computation are the official code's own; the run is the module's ``__main__``
with the given arguments (``runpy``), in this interpreter (run it with the official environment on
PYTHONPATH). Any other module (e.g. ``evaluation_pipeline.reading.run``) runs with nothing recorded.

SCORES.json: ``[{"uid": ..., "id": "<uid>_<n>", "scores": [...]}, ...]`` in the official order.
"""

from __future__ import annotations

import json
import runpy
import sys


def _recorder(original, records: list):
    def rank(args, subset_to_stats, all_log_probs, raw_sentences, labels, metadatas, uids, predictions):
        temp = next(iter(all_log_probs))
        import torch

        stacked = torch.stack(all_log_probs[temp], dim=1)  # (B, candidates)
        for uid, row in zip(uids, stacked.tolist()):
            records.append({"uid": uid, "scores": row})
        return original(args, subset_to_stats, all_log_probs, raw_sentences, labels, metadatas, uids, predictions)
    return rank


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python bench/official_hook.py SCORES.json MODULE [official arguments ...]")
    out, module, rest = argv[0], argv[1], argv[2:]
    records: list[dict] = []
    if module.startswith("evaluation_pipeline.sentence_zero_shot"):
        from evaluation_pipeline.sentence_zero_shot import compute_results

        for name in ("rank_and_evaluate", "rank_and_evaluate_wug"):
            if hasattr(compute_results, name):  # the 2026 code (3d57ddc) has no WUG ranking
                setattr(compute_results, name, _recorder(getattr(compute_results, name), records))
    sys.argv = [module, *rest]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        seen: dict[str, int] = {}
        for rec in records:  # the official prediction ids: "<uid>_<n>", n counting that uid's items
            rec["id"] = f"{rec['uid']}_{seen.get(rec['uid'], 0)}"
            seen[rec["uid"]] = seen.get(rec["uid"], 0) + 1
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(records, fh)


if __name__ == "__main__":
    main(sys.argv[1:])
