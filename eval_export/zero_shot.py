"""Score a loaded task with a model, and the task metrics (accuracy + ties, WUG rho, reading R² gain).

All candidates of a task go to the scorer in one call, so the length sort and packing see the whole
task. The ranking rule is the official one: the first index of the maximum wins, so a tie counts
as correct (eval-formats.md 2.4 and pain point 1); ties are counted so they can be reported.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from babylm.errors import InputError
from eval_export import scoring
from eval_export.tasks import TaskData


@dataclasses.dataclass
class ScoringOptions:
    bos_rule: str = "2025"
    pll_variant: str = "original"
    reduction: str = "sum"
    token_budget: int = 1024
    temperature: float = 1.0
    reading_space: bool = False  # official quirk: the reading target word is tokenised without its space
    progress: bool = False


@dataclasses.dataclass
class TaskResult:
    data: TaskData
    scores: list[list[float]] = dataclasses.field(default_factory=list)  # per item, per candidate
    chosen: list[int] = dataclasses.field(default_factory=list)
    ties: list[bool] = dataclasses.field(default_factory=list)
    probs: list[float] = dataclasses.field(default_factory=list)  # WUG: softmax probability of candidate 0
    surprisal: list[float] = dataclasses.field(default_factory=list)  # reading
    prev_surprisal: list[float] = dataclasses.field(default_factory=list)  # reading (NaN: no previous word)


def prepare_requests(tokenizer: Any, backend: str, data: TaskData, opts: ScoringOptions) -> list[scoring.Request]:
    """Tokenise every string of a task (all candidates, or reading words and their previous words)."""
    if data.kind == "reading":
        pairs = [(r.item, r.word) for r in data.rows] + [(r.prev_item, r.prev_word) for r in data.rows if r.prev_word]
        return [_reading_request(tokenizer, ctx, word, backend, opts.reading_space) for ctx, word in pairs]
    flat = [cand for it in data.items for cand in it.candidates]
    return scoring.build_requests(tokenizer, flat, backend, opts.bos_rule)


def check_lengths(model: Any, requests: list[scoring.Request], data: TaskData) -> None:
    """Fail before scoring when a string is longer than the model's position table."""
    limit = scoring.max_positions(model)
    longest = max((len(r.ids) for r in requests), default=0)
    if limit is not None and longest > limit:
        raise InputError(f"{data.source}: a string of task {data.name} is {longest} tokens long, but the model "
                         f"takes at most {limit} positions")


def score_task(model: Any, tokenizer: Any, backend: str, data: TaskData, opts: ScoringOptions,
               requests: list[scoring.Request] | None = None) -> TaskResult:
    """Score every candidate of ``data`` and pick the winner of each item."""
    if requests is None:
        requests = prepare_requests(tokenizer, backend, data, opts)
    scores = scoring.score_requests(model, requests, backend, opts.pll_variant, opts.token_budget, opts.temperature,
                                    pad_id=scoring.pad_id_of(tokenizer), mask_id=tokenizer.mask_token_id,
                                    progress=opts.progress, desc=f"{data.name} ({len(requests)} strings)")
    result = TaskResult(data)
    if data.kind == "reading":
        return _reading_result(result, scores.logprob)
    reduced = scores.reduce(opts.reduction)
    pos = 0
    for it in data.items:
        cand = reduced[pos: pos + len(it.candidates)]
        pos += len(it.candidates)
        best = int(np.argmax(cand))  # first index of the maximum, like torch.max in the 2025 code
        result.scores.append([float(s) for s in cand])
        result.chosen.append(best)
        result.ties.append(bool(np.sum(cand == cand[best]) > 1))
        if data.kind == "wug":
            # softmax over the two summed scores, probability of candidate 0
            result.probs.append(float(1.0 / (1.0 + math.exp(min(cand[1] - cand[0], 700.0)))))
    return result


def _reading_result(result: TaskResult, logprob: np.ndarray) -> TaskResult:
    """Surprisal -ln p(word | item) of every row and of its previous word (eval-formats.md 2.4).

    Causal: the word's pieces are appended to the context and scored with teacher forcing. Masked:
    three mask tokens are appended to the context and the first piece is read at the first mask
    (mlm) or at the position before it (mntp), as in the official code (after Samuel 2024).
    The target word is tokenised on its own without special tokens and, by default, without a
    leading space: the official quirk (``--reading_space true`` adds the space).
    """
    rows = result.data.rows
    result.surprisal = [float(-s) for s in logprob[: len(rows)]]
    result.prev_surprisal = [math.nan] * len(rows)
    with_prev = [i for i, r in enumerate(rows) if r.prev_word]
    for i, s in zip(with_prev, logprob[len(rows):]):
        result.prev_surprisal[i] = float(-s)
    return result


def _reading_request(tokenizer: Any, context: str, word: str, backend: str, space: bool) -> scoring.Request:
    enc = tokenizer(context, return_special_tokens_mask=True)
    ids, special = list(enc["input_ids"]), list(enc["special_tokens_mask"])
    tail: list[int] = []
    while ids and special[-1]:  # trailing EOS/SEP: the word continues the text before them
        tail.insert(0, ids.pop())
        special.pop()
    pieces = tokenizer((" " + word) if space else word, add_special_tokens=False)["input_ids"]
    if backend == "causal":
        return scoring.Request(tuple(ids + pieces), tuple(range(len(ids), len(ids) + len(pieces))))
    mask = tokenizer.mask_token_id
    return scoring.Request(tuple(ids + [mask] * 3 + tail), (len(ids),), targets=(pieces[0],), premasked=True)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def accuracy_by_uid(result: TaskResult) -> dict[str, dict[str, float]]:
    """{uid: {"accuracy", "n", "ties"}} with the official rule (a tie goes to the first candidate, the gold)."""
    out: dict[str, dict[str, float]] = {}
    for it, best, tie in zip(result.data.items, result.chosen, result.ties):
        row = out.setdefault(it.uid, {"correct": 0, "n": 0, "ties": 0})
        row["n"] += 1
        row["correct"] += int(best == 0)
        row["ties"] += int(tie)
    return {uid: {"accuracy": r["correct"] / r["n"], "n": r["n"], "ties": r["ties"]} for uid, r in out.items()}


def task_score(name: str, per_uid: dict[str, float]) -> float:
    """Task aggregate as the official scorer does: mean over subtasks; entity tracking averages
    over numops inside each split first, then over the splits."""
    if not per_uid:
        return math.nan
    if name == "entity_tracking":
        splits: dict[str, list[float]] = {}
        for uid, acc in per_uid.items():
            splits.setdefault(uid.rsplit("_", 2)[0], []).append(acc)
        return float(np.mean([np.mean(v) for v in splits.values()]))
    return float(np.mean(list(per_uid.values())))


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rho (average ranks for ties)."""
    def ranks(v):
        v = np.asarray(v, dtype=np.float64)
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=np.float64)
        for value in np.unique(v):  # average ranks of tied values
            idx = v == value
            r[idx] = r[idx].mean()
        return r
    if len(x) < 2:
        return math.nan
    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def wug_rho(result: TaskResult) -> float:
    return spearman(result.probs, [it.extra["ratio"] for it in result.data.items])


def _r2(columns: list[np.ndarray], y: np.ndarray) -> float:
    X = np.column_stack([np.ones(len(y))] + columns)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    return 1.0 - float(resid @ resid) / float(((y - y.mean()) ** 2).sum())


def _gain(base: list[np.ndarray], extra: list[np.ndarray], y: np.ndarray) -> float:
    keep = np.isfinite(y) & np.all([np.isfinite(c) for c in base + extra], axis=0)
    if keep.sum() < len(base) + len(extra) + 2:
        return math.nan
    b = _r2([c[keep] for c in base], y[keep])
    m = _r2([c[keep] for c in base + extra], y[keep])
    return (m - b) / (1.0 - b)


def reading_metrics(rows: list, surprisal: list[float], prev_surprisal: list[float]) -> dict[str, float]:
    """Gain in R² when surprisal joins the official OLS baseline, as fractions.

    ``rt``: mean over the four eye-tracking measures; baseline Subtlex_log10, length, context_length
    and their pairwise interactions. ``spr``: self-paced reading with 1-word spillover (prev_length
    in the baseline, previous-word surprisal added with surprisal). Reimplemented from the
    description in eval-formats.md 2.4, not from the official code.
    """
    col = {m: np.array([r.measures[m] for r in rows]) for m in rows[0].measures} if rows else {}
    if not rows:
        return {"spr": math.nan, "rt": math.nan}
    f, ln, cl = col["Subtlex_log10"], col["length"], col["context_length"]
    base = [f, ln, cl, f * ln, f * cl, ln * cl]
    s, ps = np.array(surprisal), np.array(prev_surprisal)
    rt = [_gain(base, [s], col[m]) for m in ("RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound")]
    spr = _gain(base + [col["prev_length"]], [s, ps], col["self_paced_reading_time"])
    return {"spr": float(spr), "rt": float(np.nanmean(rt)) if np.isfinite(rt).any() else math.nan}
