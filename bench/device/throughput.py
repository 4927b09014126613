"""Stage 2 of the device run: training throughput, the kit's loop against the transformers Trainer engine.

GPT-2 124M at sequence 512 (batch 64) and RoBERTa 125M at sequence 128 (batch 256), bf16, both engines
compiled (the kit: model and loss as one graph; the Trainer: its ``torch_compile``), one row per
(model, engine), in that order, each row saved as soon as it is measured. Random token blocks
(throughput does not depend on the text); vocabularies of 50,257 (GPT-2) and 50,265 (RoBERTa) so the
parameter counts are the published models'. Tokens/s is the median of the logged intervals after
the first (which holds compilation); MFU = model FLOP/s / the card's measured bf16 product rate
(stage 1), with 6 N + 12 L H T FLOPs per token (PaLM, appendix B; N = all parameters: the tied
embedding is also the output projection). A row that would not end within ``--budget_s`` (judged
by its model's previous row) is skipped and said so. ``--smoke``: tiny models, fp32, eager, CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.device.results import StagePart, md_table, millions, read_part  # noqa: E402  (after the path line)

# (arch, sequence, batch) in the order they run; each runs with the kit loop, then the Trainer.
SHAPES = (("gpt2", 512, 64), ("roberta", 128, 256))
SMOKE_SHAPES = (("gpt2", 32, 4), ("roberta", 32, 4))


def measure(arch: str, seq: int, batch: int, steps: int, engine: str, tok, work: Path, smoke: bool) -> dict:
    """Train ``steps`` steps of one (model, engine) on random blocks; its tokens/s, FLOPs per token."""
    import torch
    import transformers as tf
    from datasets import Dataset

    from babylm import hf_engine, models, train
    from babylm.distributed import Dist
    from babylm.run import Run, TrainConfig, build

    vocab = 512 if smoke else 50257 if arch == "gpt2" else 50265
    shape = models.resolve_shape("tiny" if smoke else "base", positions=seq)
    config = models.build_config(arch, shape, vocab, models.special_ids(tok))
    torch.manual_seed(0)
    auto = tf.AutoModelForCausalLM if arch == "gpt2" else tf.AutoModelForMaskedLM
    model = auto.from_config(config, attn_implementation="sdpa")
    n_params = models.count_parameters(model)
    gen = torch.Generator().manual_seed(0)
    n_blocks = batch * (steps + 1)
    ids = torch.randint(5, min(vocab, len(tok)) if smoke else vocab, (n_blocks, seq), generator=gen)
    data = Dataset.from_dict({"input_ids": ids.tolist(), "n_words": [seq // 2] * n_blocks})
    cfg = TrainConfig(arch=arch, block_size=seq, batch_size=batch, epochs=1, val_fraction=0, milestones=False,
                      save_every=0, log_every=2 if smoke else 10, warmup_steps=10, dropout=0.0,
                      precision="fp32" if smoke else "bf16", engine=engine, run_name=f"{arch}_{seq}_{engine}",
                      save_dir=str(work), tensorboard=False, progress=False, compile=not smoke)
    device = "cpu" if smoke else "cuda"
    run = Run(cfg, work / cfg.run_name, tok, [data], None, "auto", device, Dist(), {})
    model, optimizer = build(run, model)
    start = time.perf_counter()
    done = (train if engine == "torch" else hf_engine).fit(run, model, optimizer).step
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = [r["train/tokens_per_s"] for r in records if r.get("train/tokens_per_s")]
    # Steady state: the median logged interval after the first (which holds compilation and warm-up).
    steady = sorted(logged[1:])
    tokens_per_s = steady[len(steady) // 2] if steady else done * batch * seq / seconds
    return {"arch": arch, "seq": seq, "batch": batch, "engine": engine, "compiled": cfg.compile,
            "precision": cfg.precision, "params": n_params, "steps": done, "seconds_with_start": round(seconds, 1),
            "tokens_per_s": round(tokens_per_s), "flops_per_token": 6 * n_params + 12 * shape.layers * shape.hidden * seq}


def table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else None
        kit = next((k for k in rows if (k["arch"], k["seq"], k["engine"]) == (r["arch"], r["seq"], "torch")), None)
        ratio = f"{kit['tokens_per_s'] / r['tokens_per_s']:.2f}x" if kit and r["engine"] == "hf" and r["tokens_per_s"] else None
        body.append([f"{r['arch']} {millions(r['params'])}", r["seq"], r["batch"],
                     {"torch": "kit loop", "hf": "Trainer"}[r["engine"]] + (" (compiled)" if r["compiled"] else ""),
                     r["precision"], f"{r['tokens_per_s']:,}", mfu, ratio, r["seconds_with_start"]])
    return md_table(["model", "seq", "batch", "engine", "precision", "tokens/s", "MFU", "kit / Trainer",
                     "row seconds (with compile)"], body)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--steps", type=int, default=40, help="training steps per row")
    p.add_argument("--budget_s", type=float, default=0, help="seconds the stage may take: a row starts only when its "
                   "model's last row (else the longest so far) still fits (0: no limit)")
    args = p.parse_args(argv)
    started = time.perf_counter()  # the budget counts from here: imports and the tokenizer too

    import torch

    from babylm.tokenizer import TokenizerConfig, load_tokenizer, train_tokenizer

    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("stage 2: no CUDA device visible to torch (SMOKE=1 runs the CPU path)")
    part = StagePart(args.work, 2, "Training throughput: kit loop against the Trainer engine", args.smoke)
    work = Path(args.work) / "throughput"
    matmul = (read_part(Path(args.work), 1) or {}).get("facts", {}).get("matmul_flops")
    part.facts["matmul_flops"] = matmul
    if not matmul:
        part.note("no stage-1 matrix-product rate: MFU is left out")
    # The embedded corpus's tokenizer: the ids are random anyway; it gives the special tokens.
    train_tokenizer(TokenizerConfig(out_dir=str(work / "tok"), vocab_size=512, overwrite=True))
    tok = load_tokenizer(work / "tok")
    took: dict[str, float] = {}  # seconds of the last row of each model: what its next row needs
    for arch, seq, batch in SMOKE_SHAPES if args.smoke else SHAPES:
        for engine in ("torch", "hf"):
            elapsed = time.perf_counter() - started
            need = took.get(arch, max(took.values(), default=0.0))
            if args.budget_s and elapsed + need > args.budget_s:
                part.note(f"skipped {arch} seq {seq} {engine}: about {need:.0f} s needed, "
                          f"{args.budget_s - elapsed:.0f} s of the stage left")
                continue
            row = measure(arch, seq, batch, 4 if args.smoke else args.steps, engine, tok, work, args.smoke)
            took[arch] = time.perf_counter() - started - elapsed
            row["mfu"] = row["tokens_per_s"] * row["flops_per_token"] / matmul if matmul else None
            part.add(row, table(part.rows + [row]))
            print(f"{arch} seq {seq} {engine}: {row['tokens_per_s']:,} tokens/s"
                  + (f", MFU {100 * row['mfu']:.1f}%" if row["mfu"] is not None else ""), flush=True)
    part.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
