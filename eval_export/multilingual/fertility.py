"""Fertility of a tokenizer per language: tokens per whitespace word (English, Dutch) and tokens per
character (Chinese, written without spaces), over the corpus's per-language samples."""

from __future__ import annotations

from pathlib import Path

PER_CHARACTER = {"zho"}  # no spaces between words: characters are the unit


def fertility(tokenizer, lines: list[str], lang: str) -> dict:
    tokens = sum(len(tokenizer.encode(line, add_special_tokens=False)) for line in lines)
    if lang in PER_CHARACTER:
        units = sum(len("".join(line.split())) for line in lines)
        unit = "character"
    else:
        units = sum(len(line.split()) for line in lines)
        unit = "word"
    return {"language": lang, "tokens": tokens, unit + "s": units,
            f"tokens_per_{unit}": round(tokens / units, 4) if units else None}


def fertility_table(tokenizer, samples_dir: str | Path) -> list[dict]:
    """One row per ``<lang>.sample`` file the corpus command wrote."""
    rows = []
    for path in sorted(Path(samples_dir).glob("*.sample")):
        lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        rows.append(fertility(tokenizer, lines, path.stem))
    return rows
