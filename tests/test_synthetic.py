"""The embedded synthetic corpus: determinism, counts, minimal pairs, no leakage into the text."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from babylm import synthetic
from babylm.corpus import load_corpus
from babylm.synthetic import GenerateConfig, generate_corpus, is_grammatical
from tests.conftest import cli

SMALL = dict(train_words=20_000, dev_words=2_000, test_words=2_000, pairs_per_phenomenon=80)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return generate_corpus(GenerateConfig(seed=3, **SMALL), out_dir=tmp_path_factory.mktemp("syn") / "a")


def _pairs(root: Path) -> dict[str, list[dict]]:
    return {p.stem: [json.loads(line) for line in p.read_text().splitlines()] for p in sorted((root / "blimp").glob("*.jsonl"))}


def test_same_seed_same_bytes(small, tmp_path):
    again = generate_corpus(GenerateConfig(seed=3, **SMALL), out_dir=tmp_path / "b")
    assert _files(small) == _files(again)
    other = generate_corpus(GenerateConfig(seed=4, **SMALL), out_dir=tmp_path / "c")
    assert _files(other)["synthetic.train"] != _files(small)["synthetic.train"]


def test_layout_and_counts(small):
    files = _files(small)
    assert set(files) == {"README.md", "synthetic_info.json", "synthetic.train", "synthetic.dev", "synthetic.test",
                          "blimp/synthetic_subject_verb_agreement.jsonl", "blimp/synthetic_determiner_noun_agreement.jsonl",
                          "blimp/synthetic_anaphor_agreement.jsonl", "blimp/synthetic_question_formation.jsonl"}
    assert "SYNTHETIC" in files["README.md"].decode()
    info = json.loads(files["synthetic_info.json"])
    for split, target in (("train", 20_000), ("dev", 2_000), ("test", 2_000)):
        words = len(files[f"synthetic.{split}"].decode().split())
        assert info["words"][split] == words
        assert target <= words < target + 20  # stops after the sentence that reaches the target
    assert 150 <= info["vocabulary_size"] <= 500
    c = load_corpus(small, files="train,dev,test")
    assert [f.name for f in c.files] == ["synthetic.train", "synthetic.dev", "synthetic.test"]
    assert c.total_words == sum(info["words"].values())


def test_pairs_are_blimp_format_minimal_and_grammatical(small):
    pairs = _pairs(small)
    assert len(pairs) == 4
    for uid, items in pairs.items():
        assert len(items) == 80
        assert [p["pair_id"] for p in items] == list(range(80))
        assert len({p["sentence_good"] for p in items}) == 80
        for p in items:
            assert p["UID"] == uid and uid.startswith("synthetic_")
            assert {"sentence_good", "sentence_bad", "field", "linguistics_term", "UID", "pair_id",
                    "simple_LM_method", "lexically_identical"} <= set(p)
            good, bad = synthetic._tokens(p["sentence_good"]), synthetic._tokens(p["sentence_bad"])
            assert is_grammatical(p["sentence_good"]), p
            assert not is_grammatical(p["sentence_bad"]), p
            if p["lexically_identical"]:  # one word moved: same words, different order
                assert Counter(good) == Counter(bad) and good != bad
                moved = [i for i in range(len(good)) if good[i] != bad[i]]
                assert any(good[:i] + good[i + 1:] == [w for k, w in enumerate(bad) if k != j]
                           for i in moved for j in range(len(bad)) if bad[j] == good[i])
            else:  # one word replaced
                assert len(good) == len(bad) and sum(a != b for a, b in zip(good, bad)) == 1


def test_pair_sentences_never_in_text(small):
    lines = set()
    for split in ("train", "dev", "test"):
        for line in (small / f"synthetic.{split}").read_text().splitlines():
            lines.add(line)
            if ", " in line:
                head = line.split(", ", 1)[1]  # after an interjection ("Look, the dog ...")
                lines.add(head[:1].upper() + head[1:])
    goods = [p["sentence_good"] for items in _pairs(small).values() for p in items]
    assert not [g for g in goods if g in lines]


def test_text_lines_are_grammatical(small):
    lines = (small / "synthetic.train").read_text().splitlines()
    assert all(is_grammatical(line) for line in lines[:1500])
    assert not is_grammatical("The dogs is happy.") and not is_grammatical("Anna sees himself.")
    assert is_grammatical("Look, the dogs near the cat are happy.")


def test_embedded_default_is_generated_once(tmp_path):
    c = load_corpus("embedded", cache_dir=tmp_path)
    assert c.layout == "embedded" and [f.name for f in c.files] == ["synthetic.train"]
    assert 200_000 <= c.total_words < 200_020
    stamp = (c.root / "synthetic_info.json").stat().st_mtime_ns
    load_corpus("embedded", cache_dir=tmp_path)
    assert (c.root / "synthetic_info.json").stat().st_mtime_ns == stamp


def test_generate_cli(tmp_path):
    out = tmp_path / "gen"
    args = ["generate", "--out_dir", out, "--train_words", 500, "--dev_words", 50, "--test_words", 50,
            "--pairs_per_phenomenon", 5, "--seed", 9]
    r = cli("babylm", *args)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "generate_config.json").read_text())["config"]["seed"] == 9
    r = cli("babylm", *args)
    assert r.returncode == 2 and "--overwrite true" in r.stderr
    r = cli("babylm", "generate", "--out_dir", tmp_path / "x", "--train_words", 0)
    assert r.returncode == 2 and "--train_words" in r.stderr


def test_vocabulary_contains_all_words(small):
    vocab = synthetic.vocabulary()
    text = (small / "synthetic.train").read_text()
    words = {w.strip(".,?!") for w in text.split()}
    assert {w[:1].lower() + w[1:] if w not in vocab else w for w in words} <= vocab
