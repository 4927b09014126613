"""Packed datasets: blocks against a brute-force reference, exact word accounting, cache hits."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest

from babylm.corpus import load_corpus
from babylm.data import pack_corpus, pack_info
from babylm.errors import UsageError
from babylm.tokenizer import train_tokenizer_from_texts
from tests.conftest import cli

LINES = [f"the {a} {v} the {b} number {i} ." for i in range(60)
         for a, v, b in (("dog", "sees", "cats"), ("cats", "like", "ball"))] + ["Ünïcödé 日本語 😀 !"]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer_from_texts(iter(LINES), "bpe", vocab_size=300, min_frequency=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("packcorpus")
    (root / "a.train").write_text("\n".join(LINES[:70]) + "\n\n", encoding="utf-8")
    (root / "b.train").write_text("\n".join(LINES[70:]) + "\n", encoding="utf-8")
    return load_corpus(root)


def _reference(corpus, tok, block_size):
    """Brute force: tokenize each unit, append EOS, concatenate, cut; n_words by first-token block."""
    ids, words = [], []
    for text in corpus.iter_texts():
        unit = tok(text)["input_ids"] + [tok.eos_token_id]
        words.append((len(ids) // block_size, len(text.split())))
        ids += unit
    n = len(ids) // block_size
    blocks = [ids[i * block_size:(i + 1) * block_size] for i in range(n)]
    n_words = [sum(w for b, w in words if b == i) for i in range(n)]
    return blocks, n_words, len(ids)


def test_blocks_match_reference_and_words_add_up(corpus, tok, tmp_path):
    ds = pack_corpus(corpus, tok, 16, cache_dir=tmp_path, map_batch_size=7)  # small map batches on purpose
    blocks, n_words, total_tokens = _reference(corpus, tok, 16)
    assert ds.column_names == ["input_ids", "n_words"]
    assert ds["input_ids"] == blocks and ds["n_words"] == n_words
    assert all(len(b) == 16 for b in ds["input_ids"])
    # the remainder is dropped once for the whole corpus, not once per map batch
    assert len(ds) == total_tokens // 16
    info = pack_info(ds)
    assert info["words"] == corpus.total_words == sum(len(t.split()) for t in LINES)
    assert sum(ds["n_words"]) == info["words_kept"] == info["words"] - info["words_dropped"]
    assert info["tokens_dropped"] == total_tokens % 16
    # every unit starts with the tokenizer's BOS and ends with the EOS separator
    flat = np.array(blocks).ravel()
    assert (flat == tok.bos_token_id).sum() == (flat == tok.eos_token_id).sum() + (flat[-1] != tok.eos_token_id)


def test_num_proc_gives_identical_blocks(corpus, tok, tmp_path):
    one = pack_corpus(corpus, tok, 16, cache_dir=tmp_path / "one", map_batch_size=10)
    two = pack_corpus(corpus, tok, 16, cache_dir=tmp_path / "two", num_proc=2, map_batch_size=10)
    assert one["input_ids"] == two["input_ids"] and one["n_words"] == two["n_words"]


def test_second_call_is_a_cache_hit(corpus, tok, tmp_path, monkeypatch):
    first = pack_corpus(corpus, tok, 12, cache_dir=tmp_path)
    entries = sorted(p.name for p in tmp_path.iterdir())
    assert len(entries) == 1 and entries[0].startswith("packed-")
    assert not list(tmp_path.glob(".tmp-*"))

    def no_map(*args, **kwargs):
        raise AssertionError("datasets.map ran on a cache hit")

    monkeypatch.setattr(datasets.Dataset, "map", no_map)
    again = pack_corpus(corpus, tok, 12, cache_dir=tmp_path)
    assert again["input_ids"] == first["input_ids"]
    with pytest.raises(AssertionError, match="cache hit"):  # another block size is another entry
        pack_corpus(corpus, tok, 13, cache_dir=tmp_path)


def test_block_size_limits(corpus, tok, tmp_path):
    for bad in (1, 65_537):
        with pytest.raises(UsageError, match="--block_size"):
            pack_corpus(corpus, tok, bad, cache_dir=tmp_path)


def test_stream_corpus_packs_all_words(shared, tok, tmp_path):
    c = load_corpus(shared / "data/babylm/2024_samples/train_600k", files="bnc_spoken_dev.train")
    assert [f.name for f in c.files] == ["bnc_spoken_dev.train"] and c.files[0].streamed
    ds = pack_corpus(c, tok, 256, cache_dir=tmp_path)
    info = pack_info(ds)
    assert info["units"] == 100_000 // c.unit_words + 1
    assert sum(ds["n_words"]) + info["words_dropped"] == 100_000


def test_prepare_cli(corpus, tok, tmp_path):
    tok.save_pretrained(tmp_path / "tok")
    args = ["prepare", "--corpus", corpus.root, "--tokenizer", tmp_path / "tok", "--block_size", "16",
            "--cache_dir", tmp_path / "cache"]
    r = cli("babylm", *args)
    assert r.returncode == 0, r.stderr
    folder = next((tmp_path / "cache").glob("packed-*"))
    info = json.loads((folder / "pack_info.json").read_text())
    assert info["config"]["block_size"] == 16 and info["blocks"] == len(datasets.Dataset.from_file(str(folder / "data.arrow")))
    assert str(folder) in r.stdout
    r = cli("babylm", *args[:-4], "--block_size", "1")
    assert r.returncode == 2 and "--block_size must be in [2, 65536], got 1" in r.stderr  # the declared range
