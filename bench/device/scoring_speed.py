"""Stage 4 of the device run: zero-shot scoring speed, full BLiMP + the supplement at the 124M shapes.

For each backend, a seeded random model of the published size (causal: GPT-2 124M, 12 x 768,
vocabulary 50,257; masked: BERT-base shape, 50,265) with a BPE/WordPiece of 16,384 trained on the
2023 strict-small slices (``bench/score_bench.py``'s models). First the equality check: on the
first pairs of every file, in float32, the kit's scorer and the straightforward per-sentence one
must decide every item alike but for near ties (else the stage fails). Then the timed run: the
kit's scorer on all 65,093 pairs (130,186 sentences), weights bf16 (log-softmax float32), 65,536
padded tokens per forward pass (``eval_export score``'s GPU default), tokenisation included, after a
warm-up; targets: causal under 10 s, masked under 60 s.
``--smoke``: 2 layers x 64 on the CPU, the first pair of each file, float32.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.device.results import StagePart, md_table, millions  # noqa: E402  (after the path line)

TARGETS_S = {"causal": 10.0, "mlm": 60.0}
MODEL_VOCAB = {"causal": 50257, "mlm": 50265}
TASKS = ["blimp", "blimp_supplement"]


def first_items(data, n: int):
    """A copy of a loaded task with the first ``n`` items of each subtask (the equality check's subset)."""
    import dataclasses

    seen: dict[str, int] = {}
    kept = []
    for it in data.items:
        seen[it.uid] = seen.get(it.uid, 0) + 1
        if seen[it.uid] <= n:
            kept.append(it)
    return dataclasses.replace(data, items=kept)


def check_equal(model, tok, backend: str, data_list, device: str) -> dict:
    """The kit's scorer against the per-sentence one on ``data_list`` (float32): decisions and the largest gap."""
    import numpy as np
    import torch

    from bench import score_bench
    from eval_export import scoring, zero_shot

    model.to(device=device, dtype=torch.float32)
    opts = zero_shot.ScoringOptions()
    ours, base = [], []
    for data in data_list:
        requests = zero_shot.prepare_requests(tok, backend, data, opts)
        ours.append(scoring.score_requests(model, requests, backend, pad_id=scoring.pad_id_of(tok),
                                           mask_id=tok.mask_token_id).logprob)
        base.append(score_bench.straightforward(model, requests, backend, tok.mask_token_id))
    ours_all, base_all = np.concatenate(ours), np.concatenate(base)
    m_o, m_b = score_bench.margins(data_list, ours_all), score_bench.margins(data_list, base_all)
    flips = (m_o >= 0) != (m_b >= 0)
    real = flips & ((np.abs(m_o) > score_bench.NEAR_TIE) | (np.abs(m_b) > score_bench.NEAR_TIE))
    return {"items": len(m_o), "max_abs_diff": float(np.abs(ours_all - base_all).max()),
            "near_tie_flips": int((flips & ~real).sum()), "other_flips": int(real.sum())}


def timed(model, tok, backend: str, data_list, device: str, dtype, budget: int) -> dict:
    """The kit's scorer on every item of ``data_list``, tokenisation included, after a warm-up."""
    import numpy as np
    import torch

    from bench import score_bench
    from eval_export import scoring, zero_shot

    model.to(device=device, dtype=dtype)
    opts = zero_shot.ScoringOptions(token_budget=budget)
    warm = zero_shot.prepare_requests(tok, backend, data_list[0], opts)[:64]
    scoring.score_requests(model, warm, backend, scoring.ScoringOptions(token_budget=budget), pad_id=scoring.pad_id_of(tok),
                           mask_id=tok.mask_token_id)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    scores = []
    for data in data_list:
        requests = zero_shot.prepare_requests(tok, backend, data, opts)
        scores.append(scoring.score_requests(model, requests, backend, scoring.ScoringOptions(token_budget=budget),
                                             pad_id=scoring.pad_id_of(tok), mask_id=tok.mask_token_id).logprob)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    sentences = sum(len(it.candidates) for d in data_list for it in d.items)
    return {"sentences": sentences, "seconds": round(seconds, 2), "sentences_per_s": round(sentences / seconds),
            "accuracy": round(100 * score_bench.accuracy(data_list, np.concatenate(scores)), 2)}


def table(rows: list[dict]) -> str:
    body = [[{"causal": "causal (GPT-2 shape)", "mlm": "masked (BERT-base shape)"}[r["backend"]],
             millions(r["params"]), r["dtype"], f"{r['sentences']:,}", r["seconds"], f"{r['sentences_per_s']:,}",
             f"< {r['target_s']:g} s: {'met' if r['met'] else 'NOT met'}", r["equal"]] for r in rows]
    return md_table(["backend", "params", "weights", "sentences", "seconds", "sentences/s", "target",
                     "float32 check against the per-sentence scorer"], body)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True)
    p.add_argument("--eval_data", default="", help="evaluation data (default: <work>/data/eval)")
    p.add_argument("--corpus", default="", help="tokenizer text (default: <work>/data/corpus/2023/babylm_10M)")
    p.add_argument("--token_budget", type=int, default=65536, help="padded tokens per forward pass (default: what "
                   "`eval_export score` uses on a GPU)")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)

    import torch

    from bench import score_bench

    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("stage 4: no CUDA device visible to torch (SMOKE=1 runs the CPU path)")
    eval_root = Path(args.eval_data or Path(args.work) / "data" / "eval")
    corpus = args.corpus or str(Path(args.work) / "data" / "corpus" / "2023" / "babylm_10M")
    device = "cpu" if args.smoke else "cuda"
    dtype = torch.float32 if args.smoke else torch.bfloat16
    part = StagePart(args.work, 4, "Scoring speed: full BLiMP + supplement at the 124M shapes", args.smoke)
    full = score_bench.load_tasks(TASKS, "full", eval_root, 1 if args.smoke else 0)
    subset = [first_items(data, 3) for data in full]
    failed = []
    for backend in ("causal", "mlm"):
        hidden, layers = (64, 2) if args.smoke else (768, 12)
        model, tok = score_bench.tiny_model(backend, eval_root, hidden, layers, 2000 if args.smoke else 16384, corpus,
                                            0 if args.smoke else MODEL_VOCAB[backend])
        check = check_equal(model, tok, backend, subset, device)
        row = {"backend": backend, "params": sum(q.numel() for q in model.parameters()),
               "dtype": str(dtype).removeprefix("torch."), "token_budget": args.token_budget,
               "target_s": TARGETS_S[backend], "check": check,
               **timed(model, tok, backend, full, device, dtype, args.token_budget)}
        row["met"] = row["seconds"] < row["target_s"]
        row["equal"] = (f"{check['items']:,} items: {check['other_flips']} decided otherwise, "
                        f"{check['near_tie_flips']} near ties; max gap {check['max_abs_diff']:.1e} nats")
        part.add(row, table(part.rows + [row]))
        print(f"{backend}: {row['sentences']:,} sentences in {row['seconds']} s ({row['sentences_per_s']:,}/s); "
              f"accuracy {row['accuracy']}%; check: {row['equal']}", flush=True)
        if check["other_flips"]:
            failed.append(f"{backend}: {check['other_flips']} items decided otherwise than by the per-sentence scorer")
        del model
    if args.smoke:
        part.note("smoke: timings of tiny CPU models on one pair per file say nothing about the targets")
    part.finish()
    if failed:
        raise SystemExit("stage 4: " + "; ".join(failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
