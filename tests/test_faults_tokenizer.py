"""A tokenizer whose vocabulary is not the size asked for says why, in one line; one that cannot be
trained at that size is a one-line error."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from babylm.tokenizer import SPECIAL_TOKENS, TRAIN_INFO, TokenizerConfig, load_tokenizer, train_tokenizer
from tests.conftest import run_cli

WORDS = ["giraffe", "elephant", "cat", "dog", "happy", "near"]


@pytest.fixture(scope="module")
def one_word_lines(tmp_path_factory):
    """Each line one word: the byte-level pre-tokens are exactly the six words."""
    root = tmp_path_factory.mktemp("words")
    (root / "words.train").write_text("".join(f"{w}\n" for w in WORDS * 3), encoding="utf-8")
    return root


def _notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("note: the vocabulary")]


def test_bpe_that_runs_out_of_merges_says_so(one_word_lines, tmp_path, capsys):
    out = train_tokenizer(TokenizerConfig(corpus=str(one_word_lines), vocab_size=800, min_frequency=1,
                                          add_bos=False, out_dir=str(tmp_path / "bpe")))
    tok = load_tokenizer(out)
    assert all(len(tok(w)["input_ids"]) == 1 for w in WORDS)  # every word is one token: nothing left to merge
    merges = len(json.loads((out / "tokenizer.json").read_text())["model"]["merges"])
    assert len(tok) == len(SPECIAL_TOKENS) + 256 + merges < 800
    (note,) = _notes(capsys.readouterr().err)
    assert note == (f"note: the vocabulary holds {len(tok)} of the 800 tokens asked for (5 special tokens + 256 byte "
                    f"symbols + {merges} merges): after the last merge each of the 6 distinct words of the training "
                    "text was one token, so nothing was left to merge; more (or more varied) training text gives a "
                    "larger vocabulary")
    info = json.loads((out / TRAIN_INFO).read_text())
    assert info["vocab_size"] == len(tok) and info["vocab_size_asked"] == 800
    assert info["vocab_size_note"] == note.removeprefix("note: ")


def test_bpe_stopped_by_min_frequency_names_it(one_word_lines, tmp_path, capsys):
    pairs = Counter(w[i:i + 2] for w in WORDS * 3 for i in range(len(w) - 1))
    above = max(pairs.values()) + 1  # no pair of letters is that frequent: no merge at all, six words still split
    train_tokenizer(TokenizerConfig(corpus=str(one_word_lines), vocab_size=800, min_frequency=above,
                                    out_dir=str(tmp_path / "bpe")))
    (note,) = _notes(capsys.readouterr().err)
    assert "(5 special tokens + 256 byte symbols + 0 merges)" in note
    assert (f"no pair of adjacent symbols in the 6 words still split occurred --min_frequency {above} times or "
            "more; lower --min_frequency to merge further") in note


def test_wordpiece_below_its_alphabet_says_what_it_kept(one_word_lines, tmp_path, capsys):
    out = train_tokenizer(TokenizerConfig(corpus=str(one_word_lines), model="wordpiece", vocab_size=10,
                                          out_dir=str(tmp_path / "wp")))
    tok = load_tokenizer(out)
    alone = set("".join(WORDS))
    continuing = {c for w in WORDS for c in w[1:]}  # "##c"
    assert len(tok) == len(SPECIAL_TOKENS) + len(alone) + len(continuing)  # the alphabet, nothing merged
    (note,) = _notes(capsys.readouterr().err)
    assert note.startswith(f"note: the vocabulary holds {len(tok)} tokens, more than the --vocab_size 10 asked for "
                           f"(5 special tokens + {len(alone) + len(continuing)} characters")
    assert "wordpiece always keeps the special tokens and every character of the text" in note


def test_no_note_when_the_size_is_met(one_word_lines, tmp_path, capsys):
    train_tokenizer(TokenizerConfig(corpus=str(one_word_lines), vocab_size=270, min_frequency=1,
                                    out_dir=str(tmp_path / "bpe")))
    assert not _notes(capsys.readouterr().err)


def test_unigram_below_its_alphabet_is_one_line(one_word_lines, tmp_path):
    chars = len(set("".join(WORDS))) + 1  # and its word-start mark
    proc = run_cli("babylm", "tokenizer", "--corpus", one_word_lines, "--model", "unigram", "--vocab_size", "8",
                   "--out_dir", tmp_path / "uni")
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: --vocab_size: 8 is too small for unigram on this text: it keeps each of the {chars} "
                      "characters of the training text (its word-start mark \u2581 included) as a piece; ask for at "
                      f"least {chars}"]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "uni").exists()
