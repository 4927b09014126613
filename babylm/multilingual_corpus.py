"""The multilingual track's training corpus: English, Dutch and Chinese mixed under one budget.

Budget unit. The track's corpora (BabyBabelLM, built by babylm-org/multilingual-babylm) are cut by
UTF-8 *bytes*, not words: Chinese has no spaces, so a word count means nothing across the three
languages. The builder's tiers are English-equivalent sizes, 5.43 MB per million English words
(``eng_sizes_per_tier`` in ``src/pad_utils.py``: tier_1M 5.430, tier_10M 54.30, tier_100M 543.00 MB),
and a language's share of a tier is that size times its byte premium (``byte_coefs_20240233.tsv``:
eng 1.0, nld 1.0516, zho 0.936), the bytes it takes to say what English says in one byte. The kit
therefore counts every text in *English-equivalent words*::

    words_eq(text, lang) = utf8_bytes(text) / byte_premium[lang] / 5.43

so that 100M English-equivalent words are 543 MB of English, 571 MB of Dutch or 508 MB of Chinese,
and a mixture is within the 100M budget when the sum over its languages is. Milestones (chck_1M ...)
are named in the same unit.

Local layout. ``--data DIR`` holds one folder per language, named by its ISO 639-3 code (``eng``,
``nld``, ``zho``; the BabyBabelLM dataset names), each with text files (one document or line per
line) and/or JSON Lines files whose rows carry a ``text`` field (the hub datasets' rows). The
mixed corpus is written to ``<out_dir>/train/mixed.train``: the languages' lines interleaved in
proportion to their sizes, so that any prefix of training sees the three in the same shares, and
``<out_dir>/multilingual_corpus.json`` records the counts per language.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Iterator

from babylm.errors import InputError, UsageError
from babylm.files import atomic_dir, write_json

log = logging.getLogger(__name__)

# babylm-org/multilingual-babylm, resources/byte_coefs_20240233.tsv (to four decimals, as the 2026 track
# states them): bytes per English byte of the same content.
BYTE_PREMIUM = {"eng": 1.0, "nld": 1.0516, "zho": 0.936}
# The same languages' two-letter codes, used by the fine-tuning data (finetune/data/multilingual/<xx>).
ISO2 = {"eng": "en", "nld": "nl", "zho": "zh"}
# MB (10^6 bytes) of English per million words: src/pad_utils.py eng_sizes_per_tier (543.00 MB = 100M).
ENG_BYTES_PER_WORD = 5.43
BUDGET_WORDS = 100_000_000  # the multilingual track's budget, in English-equivalent words
MANIFEST = "multilingual_corpus.json"
SAMPLE_LINES = 2000  # lines per language kept for the fertility table
TEXT_SUFFIXES = {".txt", ".text", ".train", ""}
JSONL_SUFFIXES = {".jsonl", ".json"}
# Fields of the official fine-tuning files that hold text (SOURCES: finetune/ fields per task);
# the smoke corpus is made of them.
FINETUNE_TEXT_FIELDS = ("sentence", "premise", "hypothesis", "sentence1", "sentence2")


def parse_languages(value: str | list[str]) -> list[str]:
    """``eng,nld,zho`` (any order, no repeats) -> the list; UsageError naming an unknown code."""
    items = value.split(",") if isinstance(value, str) else list(value)
    langs = [x.strip() for x in items if x.strip()]
    if not langs:
        raise UsageError("--languages: give at least one of eng, nld, zho")
    for lang in langs:
        if lang not in BYTE_PREMIUM:
            raise UsageError(f"--languages: unknown language {lang!r}; the track's languages are eng, nld, zho")
    if len(set(langs)) != len(langs):
        raise UsageError(f"--languages: {','.join(langs)} names a language twice")
    return langs


def words_equivalent(n_bytes: int, lang: str) -> float:
    """English-equivalent words of ``n_bytes`` UTF-8 bytes of ``lang`` (see the module docstring)."""
    return n_bytes / BYTE_PREMIUM[lang] / ENG_BYTES_PER_WORD


@dataclasses.dataclass
class LanguageText:
    lang: str
    lines: list[str]
    files: list[str]

    @property
    def bytes(self) -> int:
        # each line is written with its newline, which the byte count includes as the builder's does
        return sum(len(line.encode("utf-8")) + 1 for line in self.lines)

    @property
    def words_eq(self) -> float:
        return words_equivalent(self.bytes, self.lang)


def _jsonl_texts(path: Path, fields: tuple[str, ...]) -> Iterator[str]:
    # Streamed line by line, not files.read_jsonl (which holds the whole file): a language's corpus
    # file can be hundreds of megabytes.
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not JSON ({exc.msg}); each line must be one JSON object") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{number}: a JSON object with a 'text' field is expected")
            for field in fields:
                text = row.get(field)
                if isinstance(text, str) and text.strip():
                    yield " ".join(text.split())


def _text_lines(path: Path) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield line.rstrip("\n")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); convert it or remove it") from None


def read_language(folder: Path, lang: str) -> LanguageText:
    """Every line of a language folder's text and JSON Lines files (sorted by path)."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no folder for language {lang}; put its text files there or drop {lang} "
                         "from --languages")
    lines: list[str] = []
    files: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.suffix in JSONL_SUFFIXES:
            lines.extend(_jsonl_texts(path, ("text",)))
        elif path.suffix in TEXT_SUFFIXES and path.name.lower() not in ("readme", "license"):
            lines.extend(_text_lines(path))
        else:
            continue
        files.append(str(path.relative_to(folder)))
    if not lines:
        raise InputError(f"{folder}: no text for language {lang} (no non-empty line in a .txt/.train or "
                         ".jsonl 'text' file); add its data or drop {lang} from --languages")
    return LanguageText(lang, lines, files)


def read_finetune_language(finetune_dir: Path, lang: str, max_bytes: int) -> LanguageText:
    """A language's text from the official fine-tuning training files (``<dir>/<xx>/<task>/*.train.jsonl``),
    at most ``max_bytes`` bytes: the smoke corpus, real text of all three languages."""
    folder = finetune_dir / ISO2[lang]
    paths = sorted(folder.glob("*/*.train.jsonl")) if folder.is_dir() else []
    if not paths:
        raise InputError(f"{folder}: no <task>/<task>_{ISO2[lang]}.train.jsonl for language {lang}; give the "
                         "official fine-tuning folder (finetune/data/multilingual) or drop it from --languages")
    share = max_bytes // len(paths)  # the same bytes from every task file: all kinds of text
    lines: list[str] = []
    for path in paths:
        used = 0
        for text in _jsonl_texts(path, FINETUNE_TEXT_FIELDS):
            size = len(text.encode("utf-8")) + 1
            if used + size > share:
                break
            lines.append(text)
            used += size
    return LanguageText(lang, lines, [str(p.relative_to(finetune_dir)) for p in paths])


def interleave(texts: list[LanguageText]) -> list[str]:
    """The languages' lines merged so that every prefix holds each language in proportion to its
    line count (largest remainder by position: line i of a language of n lines sits at (i + 0.5) / n)."""
    keyed = [((i + 0.5) / len(t.lines), k, line) for k, t in enumerate(texts) for i, line in enumerate(t.lines)]
    keyed.sort(key=lambda x: (x[0], x[1]))
    return [line for _, _, line in keyed]


def check_budget(texts: list[LanguageText], budget_words: int) -> float:
    total = sum(t.words_eq for t in texts)
    if total > budget_words:
        parts = ", ".join(f"{t.lang} {t.bytes:,} bytes = {t.words_eq:,.0f}" for t in texts)
        raise InputError(f"corpus over budget: {total:,.0f} English-equivalent words ({parts}) > {budget_words:,} "
                         "(bytes / byte premium / 5.43); use less data or raise --budget_words for a test run")
    return total


def build_corpus(texts: list[LanguageText], out_dir: str | Path, budget_words: int = BUDGET_WORDS,
                 overwrite: bool = False) -> dict:
    """Check the budget, then write the mixed corpus and its manifest (whole or not at all)."""
    total = check_budget(texts, budget_words)
    mixed = interleave(texts)
    whitespace_words = sum(len(line.split()) for line in mixed)
    manifest = {
        "unit": "English-equivalent words = UTF-8 bytes / byte premium / 5.43",
        "byte_premium": {t.lang: BYTE_PREMIUM[t.lang] for t in texts},
        "budget_words": budget_words,
        "words_equivalent": round(total, 1),
        "languages": {t.lang: {"bytes": t.bytes, "lines": len(t.lines), "words_equivalent": round(t.words_eq, 1),
                               "whitespace_words": sum(len(x.split()) for x in t.lines), "files": t.files}
                      for t in texts},
        "whitespace_words": whitespace_words,
        # The trainer counts whitespace-separated words; this many of them stand for one million
        # English-equivalent words in this mixture (its languages are interleaved evenly), which is
        # what --milestone_unit_words takes so that chck_<N>M is named in the track's unit.
        "milestone_unit_words": max(1, round(whitespace_words / total * 1_000_000)) if total else 1,
    }
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        (tmp / "train").mkdir()
        with (tmp / "train" / "mixed.train").open("w", encoding="utf-8") as f:
            for line in mixed:
                f.write(line + "\n")
        write_json(tmp / MANIFEST, manifest)
        # per-language samples for the tokenizer's fertility table (suffix .sample: no corpus file)
        (tmp / "by_language").mkdir()
        for t in texts:
            (tmp / "by_language" / f"{t.lang}.sample").write_text("".join(x + "\n" for x in t.lines[:SAMPLE_LINES]),
                                                                encoding="utf-8")
    log.info("mixed corpus: %s", ", ".join(f"{t.lang} {t.bytes:,} bytes ({t.words_eq:,.0f} words eq.)" for t in texts))
    return manifest
