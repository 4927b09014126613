"""Benchmark (not a test): words/s of tokenizing + packing, ours against the run_clm recipe.

Both run in this process on the same files with the same tokenizer:

* ours: :func:`babylm.data.pack_corpus` (text units -> batched ``datasets.map`` with ``num_proc``
  processes -> one vectorised packing pass), into a fresh cache folder;
* baseline: the plain single-process recipe of the transformers ``run_clm`` example:
  ``load_dataset("text")``, a batched ``map`` that tokenizes, then a batched ``map`` that
  concatenates and cuts each map batch into blocks (``group_texts``).

Usage::

    .venv/bin/python bench/data_bench.py [--corpus <an official BabyLM text folder>] [--files train]
        [--block_size 128] [--num_proc 2] [--vocab_size 8192] [--tokenizer DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from itertools import chain
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")


def run_clm_recipe(files: list[str], tokenizer, block_size: int, cache_dir: str):
    """The run_clm example's data path, single process (its default without preprocessing_num_workers)."""
    from datasets import load_dataset

    raw = load_dataset("text", data_files={"train": files}, cache_dir=cache_dir)["train"]

    def tokenize_function(examples):
        return tokenizer(examples["text"])

    tokenized = raw.map(tokenize_function, batched=True, remove_columns=["text"], desc="baseline tokenize")

    def group_texts(examples):
        concatenated = {k: list(chain(*examples[k])) for k in examples}
        total = len(concatenated["input_ids"]) // block_size * block_size  # remainder dropped per map batch
        return {k: [t[i:i + block_size] for i in range(0, total, block_size)] for k, t in concatenated.items()}

    return tokenized.map(group_texts, batched=True, desc="baseline group")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True, help="a corpus folder in an official BabyLM layout (e.g. the 2023 release)")
    ap.add_argument("--files", default="train")
    ap.add_argument("--block_size", type=int, default=128)
    ap.add_argument("--num_proc", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--vocab_size", type=int, default=8192)
    ap.add_argument("--tokenizer", default="")
    args = ap.parse_args()

    from babylm.corpus import load_corpus
    from babylm.data import pack_corpus, pack_info
    from babylm.tokenizer import load_tokenizer, train_tokenizer_from_texts

    corpus = load_corpus(args.corpus, files=args.files, allow_over_budget=True)
    words = corpus.total_words
    print(f"corpus: {args.corpus} files={args.files}: {len(corpus.files)} files, {words:,} words")
    if args.tokenizer:
        tok = load_tokenizer(args.tokenizer)
    else:
        t0 = time.perf_counter()
        tok = train_tokenizer_from_texts(corpus.iter_texts(), "bpe", vocab_size=args.vocab_size)
        print(f"tokenizer: byte-level BPE {len(tok)} trained in {time.perf_counter() - t0:.1f}s (not timed below)")

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ds = pack_corpus(corpus, tok, args.block_size, cache_dir=Path(tmp) / "ours", num_proc=args.num_proc)
        ours_s = time.perf_counter() - t0
        info = pack_info(ds)

        t0 = time.perf_counter()
        base = run_clm_recipe([str(f.path) for f in corpus.files], tok, args.block_size, str(Path(tmp) / "hf"))
        base_s = time.perf_counter() - t0

    ours_wps, base_wps = words / ours_s, words / base_s
    print(f"ours    pack_corpus(num_proc={args.num_proc}): {ours_s:7.2f}s  {ours_wps:12,.0f} words/s  "
          f"{len(ds):,} blocks, words kept {info['words_kept']:,}")
    print(f"baseline run_clm recipe (1 process):  {base_s:7.2f}s  {base_wps:12,.0f} words/s  {len(base):,} blocks")
    print(f"ratio ours/baseline: {ours_wps / base_wps:.2f}x")


if __name__ == "__main__":
    main()
