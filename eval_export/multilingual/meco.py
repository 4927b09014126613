"""MECO per-word surprisals, the raw predictions the leaderboard scores reading times from.

Source: babylm-eval 3d57ddc, ``multilingual/meco/meco_py/surprisal.py`` and ``cli.py``. The stimulus
file (``meco_l2_stims.tsv``, ``meco_l1_stims.tsv``) has one row per word: ``itemid``, ``wordnum``,
``word``, ``FullText`` (the passage up to and including the word) and ``FullTextMarked`` (the same with
the word in ``*...*``; L1 files add ``lang``). A word's surprisal is minus the summed natural-log
probability of its tokens in context, a causal model reading ``<s>`` + the passage tokenised once
without special tokens; a word's tokens are those whose character span overlaps the word. A passage
longer than the model's window is read, for each word past it, in a window ending at that word.

``predictions_meco.json`` is ``{"meco_l1": {lang: {"<itemid>:<wordnum>": surprisal}}, "meco_l2": {...}}``;
L2 (English read by Dutch and Chinese natives) is written for each of nld and zho in the languages when
English is among them (``TRACK_TO_L2`` and ``--l2 auto`` there); the first of duplicate ids is kept.
L1 (each language read by its natives, ``meco_l1_stims.tsv``, rows of the language's MECO code) is
written per language when that file is in the folder. The local delta-log-likelihood scores need the
MECO reading-time tables, which are not distributed with the stimuli; the leaderboard computes them
from these surprisals.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

from babylm.errors import InputError

log = logging.getLogger(__name__)
TRACK_TO_L2 = ("nld", "zho")  # cli.py TRACK_TO_L2
MECO_L1_CODES = {"eng": "en", "nld": "du", "zho": "ch_s"}  # frame.py: the L1 file's lang codes
MARGIN = 8  # tokens kept free at the end of the window (surprisal.py margin)


def read_stims(path: str | Path, lang_code: str | None = None) -> dict[str, list[dict]]:
    """Rows per passage (itemid), in file order; L1 files are filtered to ``lang_code``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: MECO stimulus file not found; give --meco_dir the folder of {path.name}")
    passages: dict[str, list[dict]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        need = {"itemid", "wordnum", "FullText", "FullTextMarked"} | ({"lang"} if lang_code is not None else set())
        if not need <= set(reader.fieldnames or ()):
            raise InputError(f"{path}:1: columns {sorted(need - set(reader.fieldnames or ()))} missing")
        for row in reader:
            if lang_code is not None and row.get("lang") != lang_code:
                continue
            passages.setdefault(_id(row["itemid"]), []).append(row)
    return passages


def _id(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return str(value)
    return str(int(number)) if number.is_integer() else str(value)


def passage_surprisals(model, tokenizer, rows: list[dict], max_len: int) -> dict[str, float]:
    """``{"itemid:wordnum": surprisal}`` of one passage's words."""
    import torch

    text = max((r["FullText"] for r in rows), key=len)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    budget = max_len - len(bos) - MARGIN
    logp_cache: dict[int, torch.Tensor] = {}

    def logprobs(start: int, end: int) -> torch.Tensor:
        key = start * 1_000_000 + end
        if key not in logp_cache:
            with torch.no_grad():
                logits = model(torch.tensor([bos + ids[start:end]])).logits[0]
            logp_cache[key] = torch.log_softmax(logits.float(), dim=-1)
        return logp_cache[key]

    out: dict[str, float] = {}
    for row in rows:
        marked = row["FullTextMarked"].split("*")
        if len(marked) < 2:
            raise InputError(f"MECO item {row['itemid']}:{row['wordnum']}: FullTextMarked has no *word*")
        start, end = len(marked[0]), len(marked[0]) + len(marked[1])
        tokens = [i for i, (s, e) in enumerate(offsets) if e > start and s < end]
        if not tokens:
            value = 0.0
        else:
            last = tokens[-1] + 1
            first_in = 0 if last <= budget else last - budget
            lp = logprobs(first_in, last if first_in else min(len(ids), budget))
            total = 0.0
            for t in tokens:
                pos = t - first_in + len(bos)  # position of token t in the window
                if pos == 0:
                    continue  # no BOS and no context: the first token cannot be scored
                total += lp[pos - 1, ids[t]].item()
            value = -total
        if not math.isfinite(value):
            raise InputError(f"MECO item {row['itemid']}:{row['wordnum']}: surprisal is not finite")
        out.setdefault(f"{_id(row['itemid'])}:{_id(row['wordnum'])}", value)
    return out


def l2_predictions(model, tokenizer, stims: str | Path, languages: list[str], max_len: int,
                   limit: int | None = None) -> dict[str, dict[str, float]]:
    """meco_l2 predictions: the surprisals of the English stimuli, under each of nld/zho asked for."""
    if "eng" not in languages:
        return {}
    passages = read_stims(stims)
    surprisal: dict[str, float] = {}
    for rows in list(passages.values())[:limit]:
        surprisal.update(passage_surprisals(model, tokenizer, rows, max_len))
    return {lang: surprisal for lang in languages if lang in TRACK_TO_L2}


def l1_predictions(model, tokenizer, stims: str | Path, languages: list[str], max_len: int,
                   limit: int | None = None) -> dict[str, dict[str, float]]:
    """meco_l1 predictions: each language's own passages (the rows of its MECO code), read as L2 is read.

    cli.py filters the L1 file to the codes of the languages asked for and groups the rows by (lang,
    itemid), so a passage is one language's item; the ids repeat across languages, hence one map each."""
    out: dict[str, dict[str, float]] = {}
    for lang in languages:
        passages = read_stims(stims, MECO_L1_CODES[lang])
        if not passages:
            raise InputError(f"{stims}: no rows with lang {MECO_L1_CODES[lang]!r} (MECO L1 of {lang}); "
                             "give the official meco_l1_stims.tsv or leave the language out")
        surprisal: dict[str, float] = {}
        for rows in list(passages.values())[:limit]:
            for key, value in passage_surprisals(model, tokenizer, rows, max_len).items():
                surprisal.setdefault(key, value)
        out[lang] = surprisal
    return out
