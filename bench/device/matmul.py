"""Stage 1 of the device run: the card's dense bf16 matrix-product rate, the denominator of every MFU.

An n x n x n bf16 product (n = 8192 fills an H100/H200) through torch, on random data (zeros run
faster than real data on these cards), rotating over three input pairs; three warm-ups, then ``reps``
products each timed with CUDA events; the median and the best rate are kept. Also records the card
(name, memory, multiprocessors, driver) and the environment. ``--smoke``: fp32 on the CPU, n = 512.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.device.results import StagePart, md_table, tflops  # noqa: E402  (after the path line: runs from a checkout)


def card() -> str:
    """The GPU as nvidia-smi and torch describe it (or the CPU)."""
    import torch

    if not torch.cuda.is_available():
        return f"CPU ({torch.get_num_threads()} torch thread(s))"
    p = torch.cuda.get_device_properties(0)
    text = f"{p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} multiprocessors"
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
        if smi:
            text += f", driver / max SM clock {smi}"
    except (OSError, subprocess.SubprocessError):
        pass
    return text


def rate(device: str, dtype, n: int, reps: int) -> list[float]:
    """FLOP/s of each of ``reps`` timed n^3 products."""
    import torch

    gen = torch.Generator(device=device).manual_seed(0)
    pairs = [(torch.randn(n, n, device=device, dtype=dtype, generator=gen),
              torch.randn(n, n, device=device, dtype=dtype, generator=gen)) for _ in range(3)]
    cuda = device.startswith("cuda")
    for a, b in pairs:  # warm-up: handles, kernel choice, clocks
        a @ b
    if cuda:
        torch.cuda.synchronize()
    rates = []
    for i in range(reps):
        a, b = pairs[i % len(pairs)]
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            a @ b
            end.record()
            end.synchronize()
            seconds = start.elapsed_time(end) / 1e3
        else:
            t0 = time.perf_counter()
            a @ b
            seconds = time.perf_counter() - t0
        rates.append(2 * n**3 / seconds)
    return rates


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)

    import torch

    from babylm.runtime import environment_summary

    part = StagePart(args.work, 1, "Matrix-product rate (the MFU denominator)", args.smoke)
    device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    if not args.smoke and device == "cpu":
        raise SystemExit("stage 1: no CUDA device visible to torch (SMOKE=1 runs the CPU path)")
    part.facts.update(device=card(), environment=environment_summary())
    dtype, n, reps = (torch.float32, 512, 5) if args.smoke else (torch.bfloat16, 8192, 20)
    rates = rate(device, dtype, n, reps)
    row = {"dtype": str(dtype).removeprefix("torch."), "n": n, "reps": reps, "median_flops": statistics.median(rates),
           "best_flops": max(rates)}
    part.facts["matmul_flops"] = row["median_flops"]
    part.add(row, md_table(["dtype", "n", "timed products", "median TFLOP/s", "best TFLOP/s"],
                           [[row["dtype"], n, reps, tflops(row["median_flops"]), tflops(row["best_flops"])]]))
    print(f"{part.facts['device']}: {row['dtype']} {n}^3 product {tflops(row['median_flops'])} TFLOP/s (median of {reps})",
          flush=True)
    part.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
