"""Corpus discovery, selection, exact word counts and bad input, on the real corpus slices of the reference data."""

from __future__ import annotations

import json
import re

import pytest

from babylm import corpus as corpus_lib
from babylm.corpus import count_file, iter_text_units, load_corpus, select_files
from babylm.errors import InputError
from tests.conftest import run_cli


def _sources_table(shared) -> dict[str, int]:
    """file (relative to data/babylm) -> words, parsed from the SOURCES.md table."""
    words = {}
    for line in (shared / "data/babylm/SOURCES.md").read_text().splitlines():
        m = re.match(r"\| `([^`]+)` \|(?:[^|]*\|){5}\s*([\d,]+) \|", line)
        if m:
            words[m.group(1)] = int(m.group(2).replace(",", ""))
    assert len(words) == 25, "SOURCES.md table changed"
    return words


@pytest.fixture(scope="module")
def expected(shared):
    return _sources_table(shared)


@pytest.fixture(scope="module")
def c2023(shared):
    # every 2023 file, counted once for the module
    return load_corpus(shared / "data/babylm/2023", files=["train", "dev", "test"])


@pytest.fixture(scope="module")
def samples(shared):
    return load_corpus(shared / "data/babylm/2024_samples/train_600k", files=["train", "dev"])


def test_2023_layout_counts_match_sources(c2023, expected):
    assert c2023.layout == "2023"
    assert len(c2023.files) == 12
    for f in c2023.files:
        assert f.words == expected[f"2023/{f.name}"], f.name
        assert f.lines > 0 and not f.streamed
    assert {f.split for f in c2023.files} == {"train", "dev", "test"}
    assert c2023.total_words == sum(v for k, v in expected.items() if k.startswith("2023/"))


def test_2024_layout(shared, expected):
    c = load_corpus(shared / "data/babylm/2024")
    assert c.layout == "2024"
    assert [f.name for f in c.files] == ["train_10M/switchboard.train"]
    assert c.total_words == expected["2024/train_10M/switchboard.train"] == 146_789
    dev = load_corpus(shared / "data/babylm/2024", files="dev,test")
    assert [(f.name, f.words) for f in dev.files] == [("dev/switchboard.dev", 148_340), ("test/switchboard.test", 167_133)]


def test_track_strict_needs_100M_folder(shared):
    with pytest.raises(InputError, match="babylm_100M"):
        load_corpus(shared / "data/babylm/2023", track="strict")


def test_samples_are_streams_with_exact_counts(samples, expected):
    assert len(samples.files) == 10
    for f in samples.files:
        assert f.words == expected[f"2024_samples/train_600k/{f.name}"]
        assert f.streamed and f.lines == 0
    assert {f.name: f.split for f in samples.files}["childes_dev.train"] == "dev"
    # one file streamed into units: no unit is the whole file, no word is split or lost
    f = next(f for f in samples.files if f.name == "childes_dev.train")
    units = list(iter_text_units(f.path, unit_words=500))
    assert len(units) == 200 and all(len(u.split()) == 500 for u in units)
    assert sum(len(u.split()) for u in units) == 100_000
    text = f.path.read_text(encoding="utf-8")
    assert " ".join(units).split() == text.split()


def test_stream_chunking_never_splits_words(tmp_path, monkeypatch):
    # tiny read chunks and line limit force every boundary case of the streaming reader
    monkeypatch.setattr(corpus_lib, "READ_CHUNK_BYTES", 7)
    monkeypatch.setattr(corpus_lib, "MAX_LINE_CHARS", 20)
    words = ["wörd", "日本語", "a", "bb", "x\u00e9y"] * 40
    seps = [" ", "  ", "\t", "\u3000", "\x85", " \u2028"]
    text = "".join(w + seps[i % len(seps)] for i, w in enumerate(words)) + "end\nshort line\n\nlast"
    p = tmp_path / "s.txt"
    p.write_text(text, encoding="utf-8")
    units = list(iter_text_units(p, unit_words=3))
    assert [w for u in units for w in u.split()] == text.split()
    assert count_file(p)[0] == len(text.split())
    assert max(len(u.split()) for u in units) <= 3 or "short line" in units


def test_selection_by_name_glob_group(c2023, shared):
    root = shared / "data/babylm/2023"
    cands = corpus_lib._candidates(root, "2023", "strict-small")
    names = lambda fs: [f.name for f in fs]  # noqa: E731
    assert names(select_files(cands, ["cbt"])) == ["babylm_10M/cbt.train"]
    assert names(select_files(cands, ["switchboard.dev"])) == ["babylm_dev/switchboard.dev"]
    assert names(select_files(cands, ["c*.train"])) == ["babylm_10M/cbt.train", "babylm_10M/children_stories.train"]
    # curriculum: easy files first, then hard ones
    assert names(select_files(cands, ["easy", "hard"])) == [
        "babylm_10M/aochildes.train", "babylm_10M/switchboard.train",
        "babylm_10M/cbt.train", "babylm_10M/children_stories.train"]
    assert names(select_files(cands, ["hard", "dev"])) == ["babylm_dev/cbt.dev", "babylm_dev/children_stories.dev"]
    assert len(select_files(cands, ["test"])) == 4
    with pytest.raises(InputError, match=r"'wikipedia'.*known sub-corpora: aochildes, cbt"):
        select_files(cands, ["wikipedia"])
    with pytest.raises(InputError, match="glob"):
        select_files(cands, ["zz*"])


def test_plain_folder_2026_names_and_groups(tmp_path):
    # the 2026 Hugging Face files (<source>.train.txt) in a local folder
    (tmp_path / "childes.train.txt").write_text("where is the ball\nthere it is\n")
    (tmp_path / "gutenberg.train.txt").write_text("It was a dark night .\n")
    (tmp_path / "childes.dev.txt").write_text("hi there\n")
    (tmp_path / "README.md").write_text("not text data")
    c = load_corpus(tmp_path, files="hard,easy")
    assert [(f.name, f.subcorpus, f.words) for f in c.files] == [("gutenberg.train.txt", "gutenberg", 6),
                                                                  ("childes.train.txt", "childes", 7)]
    assert list(c.iter_texts()) == ["It was a dark night .", "where is the ball", "there it is"]
    assert load_corpus(tmp_path, files="dev").total_words == 2


def test_hf_dataset_object_and_offline_id():
    import datasets

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["the dog runs", "", "a cat  sleeps here"]}),
        "validation": datasets.Dataset.from_dict({"text": ["hello"]}),
    })
    c = load_corpus(dd)
    assert c.layout == "hf" and [f.name for f in c.files] == ["train"] and c.total_words == 7
    assert list(c.iter_texts()) == ["the dog runs", "a cat  sleeps here"]
    assert load_corpus(dd, files="dev").total_words == 1
    with pytest.raises(InputError, match="cannot load Hugging Face dataset 'nobody/none'"):
        load_corpus("hf:nobody/none")


def test_undecodable_bytes_name_file_and_offset(tmp_path, monkeypatch):
    p = tmp_path / "bad.train"
    raw = b"good words\nmore \xc3\xa9 here \xff oops\n"
    p.write_bytes(raw)
    assert raw.index(b"\xff") == 24
    with pytest.raises(InputError, match=r"bad.train: undecodable UTF-8 byte 0xff at byte offset 24;"):
        load_corpus(tmp_path)
    # across a read-chunk boundary (the decoder holds an incomplete sequence)
    monkeypatch.setattr(corpus_lib, "READ_CHUNK_BYTES", 4)
    q = tmp_path / "sub"
    q.mkdir()
    (q / "x.txt").write_bytes(b"abc\xc3Zdef")
    with pytest.raises(InputError, match="byte 0xc3 at byte offset 3"):
        load_corpus(q)


def test_missing_and_empty(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_corpus(tmp_path / "nope")
    with pytest.raises(InputError, match="holds no text files"):
        load_corpus(tmp_path)
    (tmp_path / "a.train").write_text("\n  \n")
    with pytest.raises(InputError, match="contain no words"):
        load_corpus(tmp_path)


def test_budget_cli(tmp_path):
    # a real 10,000,001-word file: one word over the strict-small budget
    data = tmp_path / "big"
    data.mkdir()
    (data / "big.train").write_bytes(b"w " * 10_000_001)
    out = tmp_path / "out"
    r = run_cli("babylm", "corpus", "--corpus", data, "--out_dir", out)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "10,000,001 words, over the strict-small budget" in r.stderr
    assert not (out / "corpus_manifest.json").exists()
    r = run_cli("babylm", "corpus", "--corpus", data, "--out_dir", out, "--allow_over_budget", "true")
    assert r.returncode == 0, r.stderr
    assert "10,000,001" in r.stdout
    manifest = json.loads((out / "corpus_manifest.json").read_text())
    assert manifest["total_words"] == 10_000_001 and manifest["files"][0]["streamed"]
    assert json.loads((out / "corpus_config.json").read_text())["config"]["allow_over_budget"] is True
    r = run_cli("babylm", "corpus", "--corpus", data, "--track", "strict", "--out_dir", out)
    assert r.returncode == 0, r.stderr


def test_cli_unknown_subcorpus_is_one_line(shared, tmp_path):
    r = run_cli("babylm", "corpus", "--corpus", shared / "data/babylm/2024", "--files", "childes",
                "--out_dir", tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith("error: --files:") and r.stderr.strip().count("\n") == 0
