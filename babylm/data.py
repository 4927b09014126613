"""Tokenized, packed training data, cached on disk.

:func:`pack_corpus` turns a :class:`~babylm.corpus.Corpus` into a ``datasets.Dataset`` of
fixed-length blocks:

1. the corpus's text units are written once to an Arrow file (bounded memory);
2. ``datasets.map`` (batched, ``num_proc`` processes) tokenizes each unit with the tokenizer's own
   special tokens (BOS if it adds one) and ends it with EOS, the document separator;
3. one streaming pass concatenates the units and cuts blocks of ``block_size`` ids; the single
   incomplete block at the very end of the corpus is dropped (once per corpus, not per batch as
   in the ``run_clm`` recipe, which drops a remainder per map batch).

Columns: ``input_ids`` (exactly ``block_size`` ids, int64) and ``n_words``: the words of the text
units whose first token lands in that block, so ``sum(n_words)`` is the word count of the text
kept and training can count words seen exactly. The result lives under
``<cache_dir>/packed-<hash>/`` where the hash covers the tokenizer (its full ``tokenizer.json``
and special tokens), the block size and the corpus selection (file names, sizes, modification
times, word counts); a second call with the same inputs loads it without any work.
``pack_info.json`` records the size and sha256 of the blocks file; an entry that no longer matches
(a truncated or altered file) is rebuilt, with one warning.

The order in which training reads the blocks is here too (:class:`BatchPlan`): a deterministic
sequence of global batches over the curriculum's stages, epoch after epoch, that both training
engines follow, so a resumed run and the other engine see exactly the same batches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from babylm.config import option, to_dict
from babylm.corpus import Corpus, CorpusConfig, load_corpus
from babylm.errors import InputError, UsageError
from babylm.files import atomic_dir, remove_dir, write_json
from babylm.integrity import sha256
from babylm.synthetic import kit_cache_dir
from babylm.tokenizer import load_tokenizer, tokenizer_fingerprint

log = logging.getLogger(__name__)

PACK_FORMAT_VERSION = 1  # bump when the packed layout changes, so old caches are not reused
MIN_BLOCK, MAX_BLOCK = 2, 65_536
INFO_FILE = "pack_info.json"
DATA_FILE = "data.arrow"


@dataclasses.dataclass
class PrepareConfig(CorpusConfig):
    tokenizer: str = option("outputs/tokenizer", "tokenizer folder (from `python -m babylm tokenizer`) or hub id")
    block_size: int = option(128, "ids per training block (at most the model's positions)", ge=MIN_BLOCK, le=MAX_BLOCK)
    num_proc: int = option(1, "processes for tokenization (datasets.map num_proc)", ge=1)
    cache_dir: str = option("", "where packed datasets are cached (default: $BABYLM_CACHE/packed or ~/.cache/babylm/packed)")

def check_block_size(block_size: int) -> None:
    if not MIN_BLOCK <= block_size <= MAX_BLOCK:
        raise UsageError(f"--block_size: {block_size} is outside {MIN_BLOCK}..{MAX_BLOCK}")


def default_cache_dir() -> Path:
    return kit_cache_dir() / "packed"


def cache_key(corpus: Corpus, tokenizer, block_size: int) -> str:
    """Hash of everything that decides the packed blocks."""
    payload = {"version": PACK_FORMAT_VERSION, "tokenizer": tokenizer_fingerprint(tokenizer),
               "block_size": block_size, "corpus": corpus.fingerprint(),
               "files": [f.name for f in corpus.files], "unit_words": corpus.unit_words}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _tokenize_batch(batch: dict[str, list], tokenizer, eos_id: int) -> dict[str, list]:
    # The tokenizer's own special tokens (BOS when it adds one, CLS/SEP style for masked models),
    # then EOS as the separator unless the tokenizer already ended the unit with it.
    # The Rust backend directly: same ids as tokenizer(...), without offsets or the Python wrapper.
    backend = tokenizer.backend_tokenizer
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
    enc = [e.ids for e in encode(batch["text"], add_special_tokens=True)]
    return {"ids": [ids if ids and ids[-1] == eos_id else ids + [eos_id] for ids in enc]}


def _write_texts(corpus: Corpus, path: Path, rows_per_batch: int = 10_000) -> tuple[int, int]:
    """Write the corpus's text units (and their word counts) to an Arrow stream file."""
    import pyarrow as pa
    from tqdm import tqdm

    schema = pa.schema([("text", pa.string()), ("n_words", pa.int64())])
    units = words = 0
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer, \
            tqdm(total=corpus.total_words, unit="word", unit_scale=True, desc="read", leave=False) as bar:
        texts: list[str] = []
        counts: list[int] = []

        def flush() -> None:
            writer.write_batch(pa.record_batch([pa.array(texts, pa.string()), pa.array(counts, pa.int64())], schema=schema))
            bar.update(sum(counts))
            texts.clear()
            counts.clear()

        for text in corpus.iter_texts():
            texts.append(text)
            counts.append(len(text.split()))
            units += 1
            words += counts[-1]
            if len(texts) == rows_per_batch:
                flush()
        if texts:
            flush()
    return units, words


def _pack(tokenized, block_size: int, path: Path, batch_rows: int = 20_000) -> dict[str, int]:
    """Concatenate the tokenized units and write full blocks; drop the final partial block once."""
    import pyarrow as pa
    from tqdm import tqdm

    schema = pa.schema([("input_ids", pa.list_(pa.int64(), block_size)), ("n_words", pa.int64())])
    carry = np.zeros(0, dtype=np.int64)  # ids of the block being filled
    carry_words = 0  # words of units starting in that block
    blocks = words_kept = tokens = 0
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer, \
            tqdm(total=len(tokenized), unit="unit", unit_scale=True, desc="pack", leave=False) as bar:
        for table in tokenized.with_format("arrow").iter(batch_size=batch_rows):
            ids_col = table.column("ids").combine_chunks()
            lengths = ids_col.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
            flat = ids_col.flatten().to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            n_words = table.column("n_words").to_numpy().astype(np.int64)
            tokens += len(flat)
            buf = np.concatenate([carry, flat])
            starts = len(carry) + np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
            full = len(buf) // block_size
            per_block = np.bincount(starts // block_size, weights=n_words, minlength=full + 1).astype(np.int64)
            per_block[0] += carry_words
            if full:
                ids = pa.FixedSizeListArray.from_arrays(pa.array(buf[:full * block_size]), block_size)
                writer.write_batch(pa.record_batch([ids, pa.array(per_block[:full])], schema=schema))
                blocks += full
                words_kept += int(per_block[:full].sum())
            carry = buf[full * block_size:]
            carry_words = int(per_block[full:].sum())
            bar.update(table.num_rows)
    return {"blocks": blocks, "tokens": tokens, "tokens_kept": blocks * block_size, "words_kept": words_kept,
            "words_dropped": carry_words, "tokens_dropped": len(carry)}


def pack_corpus(corpus: Corpus, tokenizer, block_size: int, cache_dir: str | Path | None = None,
                num_proc: int = 1, map_batch_size: int = 1000, extra_info: dict[str, Any] | None = None):
    """Tokenize and pack ``corpus`` into blocks of ``block_size`` ids, cached on disk.

    Args:
        corpus: the selection to pack (e.g. from :func:`babylm.corpus.load_corpus`).
        tokenizer: a fast tokenizer, or a path / hub id for :func:`babylm.tokenizer.load_tokenizer`.
        block_size: ids per block (2..65536).
        cache_dir: cache root (default: :func:`default_cache_dir`).
        num_proc: processes for the tokenizing ``datasets.map``.
        map_batch_size: texts per ``map`` batch.
        extra_info: recorded in ``pack_info.json`` (e.g. the command's resolved config).

    Returns:
        ``datasets.Dataset`` with columns ``input_ids`` and ``n_words``; its statistics are in
        ``<cache>/pack_info.json`` (see :func:`pack_info`).
    """
    import datasets

    check_block_size(block_size)
    if num_proc < 1:
        raise UsageError(f"--num_proc: must be at least 1, got {num_proc}")
    if isinstance(tokenizer, (str, Path)):
        tokenizer = load_tokenizer(tokenizer)
    if tokenizer.eos_token_id is None:
        raise UsageError("--tokenizer: has no eos token, which separates documents; train one with the kit")
    key = cache_key(corpus, tokenizer, block_size)
    final = Path(cache_dir or default_cache_dir()) / f"packed-{key}"
    if (final / INFO_FILE).is_file():
        problem = _cache_problem(final)
        if problem is None:
            log.info("packed data cache hit: %s", final)
            return datasets.Dataset.from_file(str(final / DATA_FILE))
        log.warning("packed data cache %s: %s; building it again", final, problem)
        remove_dir(final)
    try:
        with atomic_dir(final) as tmp:
            work = tmp / "work"
            work.mkdir()
            units, words = _write_texts(corpus, work / "texts.arrow")
            texts = datasets.Dataset.from_file(str(work / "texts.arrow"))
            tokenized = texts.map(_tokenize_batch, batched=True, batch_size=map_batch_size, num_proc=num_proc,
                                  fn_kwargs={"tokenizer": tokenizer, "eos_id": tokenizer.eos_token_id},
                                  remove_columns=["text"], cache_file_name=str(work / "tokenized.arrow"),
                                  new_fingerprint=key, desc="tokenize")
            stats = _pack(tokenized, block_size, tmp / DATA_FILE)
            del tokenized, texts
            shutil.rmtree(work)
            data = tmp / DATA_FILE
            write_json(tmp / INFO_FILE, {"key": key, "block_size": block_size, "units": units, "words": words,
                                         **stats, "data_bytes": data.stat().st_size, "data_sha256": sha256(data),
                                         "corpus": corpus.manifest(), **(extra_info or {})})
    except FileExistsError:  # another process finished the same cache entry first
        pass
    if not (final / INFO_FILE).is_file():
        raise RuntimeError(f"packed data missing at {final}")
    return datasets.Dataset.from_file(str(final / DATA_FILE))


def _cache_problem(folder: Path) -> str | None:
    """Why a cache entry cannot be used (damaged, truncated, or written without a checksum), or None."""
    try:
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        want_bytes, want_sha = info["data_bytes"], info["data_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{INFO_FILE} is unreadable or has no checksum of {DATA_FILE}"
    data = folder / DATA_FILE
    if not data.is_file() or data.stat().st_size != want_bytes:
        size = data.stat().st_size if data.is_file() else 0
        return f"{DATA_FILE} holds {size:,} bytes, not the {want_bytes:,} written"
    if sha256(data) != want_sha:
        return f"{DATA_FILE} differs from the checksum recorded when it was written"
    return None


def pack_info(dataset) -> dict[str, Any]:
    """The ``pack_info.json`` statistics of a dataset returned by :func:`pack_corpus`."""
    files = [Path(f["filename"]) for f in dataset.cache_files]
    return json.loads((files[0].parent / INFO_FILE).read_text())


def prepare(cfg: PrepareConfig) -> Path:
    """Load the corpus and tokenizer of ``cfg`` and pack (or find cached) blocks; return the cache folder."""
    corpus = load_corpus(cfg.corpus, files=cfg.files, track=cfg.track, allow_over_budget=cfg.allow_over_budget)
    ds = pack_corpus(corpus, cfg.tokenizer, cfg.block_size, cache_dir=cfg.cache_dir or None, num_proc=cfg.num_proc,
                     extra_info={"command": "prepare", "config": to_dict(cfg)})
    return Path(ds.cache_files[0]["filename"]).parent


# ----------------------------------------------------------------------------- data order

@dataclasses.dataclass
class Position:
    """Where the data order stands: stage, epoch within the stage, global batches taken in the epoch."""

    stage: int = 0
    epoch: int = 0
    cursor: int = 0


class BatchPlan:
    """Deterministic global batches over ordered stages (curriculum), epoch after epoch.

    Each global batch holds ``batch`` block indices of one stage; an epoch's incomplete last
    batch is dropped. With ``repeat`` the last stage is repeated until the caller stops (word
    budgets); otherwise each stage runs ``epochs`` times (a fraction ends that epoch early).
    The order of each (stage, epoch) is a permutation drawn from a generator seeded by
    (seed, stage, epoch), independent of any global RNG, so any position can be resumed.
    """

    def __init__(self, stage_sizes: list[int], batch: int, seed: int, epochs: float, repeat: bool):
        self.sizes, self.batch, self.seed, self.epochs, self.repeat = stage_sizes, batch, seed, epochs, repeat
        for i, n in enumerate(stage_sizes):
            if n < batch:
                raise InputError(f"stage {i + 1} has {n} blocks, fewer than one global batch of {batch}; "
                                 "lower --batch_size/--grad_accum/--block_size or add data")
        self._perm_key: tuple[int, int] | None = None
        self._perm = None

    def batches_per_epoch(self, stage: int) -> int:
        return self.sizes[stage] // self.batch

    def _endless(self, stage: int) -> bool:
        return self.repeat and stage == len(self.sizes) - 1

    def _epoch_batches(self, stage: int, epoch: int) -> int:
        full = self.batches_per_epoch(stage)
        whole = int(self.epochs)
        if epoch < whole or self._endless(stage):
            return full
        return int(round(full * (self.epochs - whole)))

    def _epochs_of(self, stage: int) -> int:
        return 1 << 30 if self._endless(stage) else math.ceil(self.epochs)

    def total_batches(self) -> int:
        """Global batches in the whole plan (the endless last stage of a word budget counted once)."""
        return sum(self._epoch_batches(s, e) for s in range(len(self.sizes))
                   for e in range(1 if self._endless(s) else self._epochs_of(s)))

    def planned_steps(self, words_per_epoch: int, words: int | None) -> int:
        """Optimizer steps the run is planned for: every batch of the plan, or, under a word budget,
        the budget over the mean words of a global batch (the loop itself stops on the exact count).

        The length of the schedules that depend on progress (learning rate, GPT-BERT's mask rate),
        the same for both engines.
        """
        if words is None:
            return self.total_batches()
        words_per_step = words_per_epoch / max(1, sum(self.sizes)) * self.batch
        return math.ceil(words / max(words_per_step, 1e-9))

    def _order(self, stage: int, epoch: int):
        import torch

        if self._perm_key != (stage, epoch):
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + stage * 10_007 + epoch)
            self._perm = torch.randperm(self.sizes[stage], generator=gen)
            self._perm_key = (stage, epoch)
        return self._perm

    def next(self, pos: Position):
        """The global batch at ``pos`` and the position after it: (stage, indices, new_pos, epoch_ended).

        Returns None when the plan is exhausted.
        """
        stage, epoch, cursor = pos.stage, pos.epoch, pos.cursor
        while True:
            if stage >= len(self.sizes):
                return None
            if epoch >= self._epochs_of(stage):
                stage, epoch, cursor = stage + 1, 0, 0
                continue
            if cursor >= self._epoch_batches(stage, epoch):
                epoch, cursor = epoch + 1, 0
                continue
            break
        idx = self._order(stage, epoch)[cursor * self.batch:(cursor + 1) * self.batch]
        new = Position(stage, epoch, cursor + 1)
        ended = new.cursor >= self._epoch_batches(stage, epoch)
        return stage, idx, new, ended


def flat_order(stages: list[Any], plan: BatchPlan, words_budget: int | None):
    """The whole plan unrolled: (block indices into the stages concatenated, words seen after each
    global batch, 1-based batch numbers that end an epoch). Stops once ``words_budget`` is reached.

    For engines that read a dataset sequentially (the Trainer): the order is fixed up front, so
    the words seen after each optimizer step are known exactly.
    """
    offsets = np.cumsum([0] + [len(s) for s in stages])
    words = [column(s, "n_words").astype(np.int64) for s in stages]
    order, step_words, epoch_ends, pos, total = [], [], set(), Position(), 0
    while (nxt := plan.next(pos)) is not None:
        stage, idx, pos, ended = nxt
        idx = idx.numpy()
        order.extend((idx + offsets[stage]).tolist())
        total += int(words[stage][idx].sum())
        step_words.append(total)
        if ended:
            epoch_ends.add(len(step_words))
        if words_budget is not None and total >= words_budget:
            break
    return order, step_words, epoch_ends


def column(ds, name: str) -> np.ndarray:
    """One column of a datasets.Dataset as a numpy array ((N, T) for input_ids, (N,) for n_words)."""
    col = ds.with_format("numpy")[name] if hasattr(ds, "with_format") else ds[name]
    if isinstance(col, np.ndarray) and col.dtype != object:
        return col
    return np.stack([np.asarray(row) for row in col]) if len(col) else np.zeros((0,), dtype=np.int64)
