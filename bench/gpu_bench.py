"""GPU training throughput and MFU: GPT-2 124M and RoBERTa 125M, kit loop vs transformers Trainer.

Run by bench/gpu_train.sh on a GPU. Random token blocks (throughput does not depend on the
text), vocabulary 50,257 (GPT-2) / 50,265 (RoBERTa) so the parameter counts match the published
models. MFU = achieved model FLOP/s / measured dense bf16 matmul FLOP/s of this card, with model
FLOPs per token = 6 N + 12 L H T (PaLM appendix B; N = non-embedding-free parameter count).
``--smoke`` runs tiny sizes on CPU to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def matmul_peak(device: str, dtype, n: int = 8192, reps: int = 20) -> float:
    """Measured dense matmul FLOP/s (the denominator of MFU)."""
    import torch

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - start)


def one(arch: str, seq: int, batch: int, steps: int, engine: str, tok, work: Path, smoke: bool, precision: str,
        compile_: bool):
    import torch
    from datasets import Dataset

    from babylm import hf_engine, models, train
    from babylm.distributed import Dist
    from babylm.run import Run, TrainConfig, build

    vocab = 50257 if arch == "gpt2" else 50265
    shape = models.resolve_shape("tiny" if smoke else "base", positions=seq)
    if smoke:
        vocab = 512
    config = models.build_config(arch, shape, vocab, models.special_ids(tok))
    import transformers as tf

    torch.manual_seed(0)
    auto = tf.AutoModelForCausalLM if arch == "gpt2" else tf.AutoModelForMaskedLM
    model = auto.from_config(config, attn_implementation="sdpa")
    n_params = models.count_parameters(model)
    gen = torch.Generator().manual_seed(0)
    n_blocks = batch * (steps + 1)
    ids = torch.randint(5, min(vocab, len(tok)) if smoke else vocab, (n_blocks, seq), generator=gen)
    data = Dataset.from_dict({"input_ids": ids.tolist(), "n_words": [seq // 2] * n_blocks})
    cfg = TrainConfig(arch=arch, block_size=seq, batch_size=batch, epochs=1, val_fraction=0, milestones=False,
                      save_every=0, log_every=10, warmup_steps=10, dropout=0.0, precision=precision,
                      engine=engine, run_name=f"{arch}_{seq}_{engine}{'_compiled' if compile_ else ''}",
                      save_dir=str(work), tensorboard=False, progress=False, compile=compile_ and not smoke)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    run = Run(cfg, work / cfg.run_name, tok, [data], None, "auto", device, Dist(), {})
    model, optimizer = build(run, model)
    start = time.perf_counter()
    done = (train if engine == "torch" else hf_engine).fit(run, model, optimizer).step
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = sorted(r["train/tokens_per_s"] for r in records if r.get("train/tokens_per_s"))[1:] if not smoke else []
    # Steady state: the median logged interval after the first (which holds compile/warm-up time).
    tokens_per_s = rates[len(rates) // 2] if rates else done * batch * seq / seconds
    flops_per_token = 6 * n_params + 12 * shape.layers * shape.hidden * seq
    loss = [r for r in records if "train/loss" in r]
    return {"arch": arch, "seq": seq, "batch": batch, "engine": engine, "compile": cfg.compile, "params": n_params, "steps": done,
            "seconds": round(seconds, 2), "tokens_per_s": round(tokens_per_s), "model_flops_per_s": tokens_per_s * flops_per_token,
            "records": len(loss), "final_loss": loss[-1]["train/loss"] if loss else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench/results/gpu_train.json")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU: checks the script only")
    parser.add_argument("--budget_s", type=float, default=0, help="skip the remaining rows after this many seconds")
    args = parser.parse_args()

    import torch

    from babylm.runtime import environment_summary
    from babylm.tokenizer import TokenizerConfig, train_tokenizer

    work = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    train_tokenizer(TokenizerConfig(out_dir=str(work / "tok"), vocab_size=512 if args.smoke else 2048))
    from babylm.tokenizer import load_tokenizer

    tok = load_tokenizer(work / "tok")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = "fp32" if args.smoke else "bf16"
    peak = matmul_peak(device, torch.float32 if args.smoke else torch.bfloat16, n=1024 if args.smoke else 8192)
    print(f"measured matmul peak: {peak / 1e12:.1f} TFLOP/s ({precision}, {device})", flush=True)
    rows: list[dict] = []
    # (arch, seq, batch, engine, compile). The kit loop compiles (its documented GPU setting); the
    # Trainer runs as configured by default (no compile), then once compiled too, for an honest pair.
    plan = [(a, s, b, e, e == "torch") for a, s, b in (("gpt2", 512, 64), ("roberta", 512, 64),
                                                       ("gpt2", 128, 256), ("roberta", 128, 256))
            for e in ("torch", "hf")] + [("gpt2", 512, 64, "hf", True)]
    if args.smoke:
        plan = [("gpt2", 32, 4, "torch", False), ("gpt2", 32, 4, "hf", False), ("roberta", 32, 4, "torch", False),
                ("roberta", 32, 4, "hf", False)]
    started = time.perf_counter()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ratios: dict[str, float] = {}
    for arch, seq, batch, engine, compile_ in plan:
        if args.budget_s and time.perf_counter() - started > args.budget_s:
            print(f"time budget of {args.budget_s} s spent: skipped {arch} seq {seq} {engine}", flush=True)
            continue
        row = one(arch, seq, batch, 4 if args.smoke else args.steps, engine, tok, work, args.smoke, precision, compile_)
        row["mfu"] = row.pop("model_flops_per_s") / peak
        rows.append(row)
        label = f"{engine}{'+compile' if row['compile'] else ''}"
        print(f"{arch:>8} seq {seq:>4} batch {batch:>3} {label:>13}: {row['tokens_per_s']:>9,} tok/s  "
              f"MFU {row['mfu']:.1%}  ({row['seconds']:.0f} s with start-up)", flush=True)
        # Kit (compiled) against the Trainer as configured by default, and against the compiled Trainer.
        for r in rows:
            if (r["arch"], r["seq"], r["engine"]) != (arch, seq, "torch"):
                continue
            for h in rows:
                if (h["arch"], h["seq"], h["engine"]) == (arch, seq, "hf"):
                    key = f"{arch}_{seq}_vs_hf{'_compiled' if h['compile'] else ''}"
                    ratios[key] = r["tokens_per_s"] / max(1, h["tokens_per_s"])
        result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "environment": environment_summary(),
                  "matmul_peak_flops": peak, "precision": precision, "rows": rows, "ratios": ratios}
        out.write_text(json.dumps(result, indent=2) + "\n")  # after every row: a timeout keeps what was measured
    for key, ratio in ratios.items():
        print(f"{key}: kit/hf = {ratio:.2f}x")
    bad = [r for r in rows if not (r["tokens_per_s"] > 0 and math.isfinite(r["mfu"]) and r["steps"] > 0)]
    if bad:
        sys.exit(f"self-check failed: {bad}")
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
