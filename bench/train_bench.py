"""Training throughput: the kit's loop against the transformers Trainer engine, same everything.

Same model (GPT-2 built from the same seed), same packed blocks of the embedded corpus, same
batch, optimizer settings, precision and machine, in one process. Prints tokens/s of each and
the ratio (target: kit loop >= 1.2x Trainer on CPU). Not a test.

    .venv/bin/python bench/train_bench.py [--steps 40] [--arch gpt2] [--size small] [--block 128] [--batch 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--arch", default="gpt2")
    parser.add_argument("--size", default="small")
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=2, help="alternate the engines this many times; best of each")
    args = parser.parse_args()

    import torch

    from babylm import hf_engine, train
    from babylm.run import TrainConfig, build, setup
    from babylm.tokenizer import TokenizerConfig, train_tokenizer

    work = Path(tempfile.mkdtemp(prefix="train-bench-"))
    tok_dir = work / "tok"
    train_tokenizer(TokenizerConfig(out_dir=str(tok_dir), vocab_size=args.vocab,
                                    target="masked" if args.arch in ("bert", "roberta", "deberta-v2") else "causal"))
    results = {"torch": 0.0, "hf": 0.0}
    # Tokens per CPU-second as well: on a shared machine wall time includes waiting for the cores,
    # CPU time (all threads of this process) counts only the work each engine did.
    cpu_results = {"torch": 0.0, "hf": 0.0}
    # Alternating rounds, best of each: the first run in a process pays one-off warm-up costs and a
    # shared machine's load drifts, so a single ordered pair would favour whichever runs second.
    for round_ in range(args.rounds):
        for engine in ("torch", "hf"):
            cfg = TrainConfig(tokenizer=str(tok_dir), arch=args.arch, size=args.size, block_size=args.block,
                              batch_size=args.batch, epochs=1, val_fraction=0, milestones=False, save_every=0,
                              log_every=10, eval_every=0, warmup_steps=10, dropout=0.0, precision=args.precision,
                              device=args.device, engine=engine, run_name=engine, save_dir=str(work / f"runs{round_}"),
                              tensorboard=False, progress=False)
            run = setup(cfg)
            # Same number of steps for both: cut the plan to --steps global batches.
            run.stages = [run.stages[0].select(range(args.steps * args.batch))]
            model, optimizer = build(run)
            start, cpu_start = time.perf_counter(), time.process_time()
            steps = (train if engine == "torch" else hf_engine).fit(run, model, optimizer).step
            if run.device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
            tokens = steps * args.batch * args.block
            results[engine] = max(results[engine], tokens / seconds)
            cpu_results[engine] = max(cpu_results[engine], tokens / cpu_seconds)
            print(f"round {round_ + 1} {engine:>5}: {steps} steps in {seconds:6.1f} s ({cpu_seconds:6.1f} CPU-s) -> "
                  f"{tokens / seconds:9.0f} tokens/s, {tokens / cpu_seconds:9.0f} tokens/CPU-s", flush=True)
    print(f"model {args.arch}/{args.size}, block {args.block}, batch {args.batch}, {args.precision}, "
          f"threads {torch.get_num_threads()}, device {run.device}")
    print(f"best: kit {results['torch']:.0f} tokens/s, hf {results['hf']:.0f} tokens/s")
    print(f"ratio kit/hf = {results['torch'] / results['hf']:.2f}x (target >= 1.2x on CPU)")
    print(f"per CPU-second: kit {cpu_results['torch']:.0f}, hf {cpu_results['hf']:.0f} tokens -> "
          f"ratio {cpu_results['torch'] / cpu_results['hf']:.2f}x")


if __name__ == "__main__":
    main()
