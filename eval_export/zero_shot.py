"""Score a loaded task with a model, and the task metrics (accuracy + ties, WUG rho, reading R² gain).

All candidates of a task go to the scorer in one call, so the length sort and packing see the whole
task. The ranking rule is the official one of the year (babylm-org/babylm-eval,
strict/evaluation_pipeline/sentence_zero_shot/compute_results.py, ``rank_and_evaluate``):

- 2025 (45fe2c1): the first index of the maximum wins, so a tie counts as correct; a NaN score wins
  (``torch.max`` propagates it, as ``np.argmax`` does).
- 2026 (3d57ddc): a NaN score counts as minus infinity and a tie is broken at random. The official
  code draws from torch's unseeded generator; the kit draws from a generator seeded by
  ``--tie_seed`` and the task, so two runs write the same file, and an official run may differ from
  it on tied items only.

Ties are counted under both rules so they can be reported.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from typing import Any, NamedTuple

import numpy as np
import torch

from babylm.challenge import Rules
from babylm.errors import InputError, UsageError
from babylm.objective import body_and_head
from eval_export import scoring
from eval_export.scoring import ScoringOptions  # noqa: F401  (the options travel from here too)
from eval_export.tasks import TaskData


class Prepared(NamedTuple):
    """A task tokenised for one tokenizer and backend (see :func:`prepare`)."""

    requests: list[scoring.Request]
    plan: Any  # reading: (the word each request belongs to, token types or None); None for the others


@dataclasses.dataclass
class TaskResult:
    data: TaskData
    scores: list[list[float]] = dataclasses.field(default_factory=list)  # per item, per candidate
    chosen: list[int] = dataclasses.field(default_factory=list)
    ties: list[bool] = dataclasses.field(default_factory=list)
    probs: list[float] = dataclasses.field(default_factory=list)  # WUG: softmax probability of candidate 0
    surprisal: list[float] = dataclasses.field(default_factory=list)  # reading
    prev_surprisal: list[float] = dataclasses.field(default_factory=list)  # reading (NaN: no previous word)
    model_tokens: int = 0  # causal: tokens the model ran on
    plain_tokens: int = 0  # causal: tokens the plain path would have run on


def prepare_requests(tokenizer: Any, backend: str, data: TaskData, opts: ScoringOptions) -> list[scoring.Request]:
    """Tokenise every string of a task (all candidates, or reading words and their previous words)."""
    return prepare(tokenizer, backend, data, opts).requests


def prepare(tokenizer: Any, backend: str, data: TaskData, opts: ScoringOptions) -> Prepared:
    """The task's requests and, for reading, the rest of its plan: (the word each request belongs
    to, token types or None), see :func:`reading_plan`; None for the other tasks."""
    if data.kind == "reading":
        requests, owner, types = reading_plan(tokenizer, backend, data, opts)
        return Prepared(requests, (owner, types))
    flat = [cand for it in data.items for cand in it.candidates]
    return Prepared(scoring.build_requests(tokenizer, flat, backend, opts.bos_rule), None)


def check_lengths(model: Any, requests: list[scoring.Request], data: TaskData) -> None:
    """Fail before scoring when a string is longer than the model's position table."""
    limit = scoring.max_positions(model)
    longest = max((len(r.ids) for r in requests), default=0)
    if limit is not None and longest > limit:
        raise InputError(f"{data.source}: a string of task {data.name} is {longest} tokens long, but the model "
                         f"takes at most {limit} positions")


def score_task(model: Any, tokenizer: Any, backend: str, data: TaskData, opts: ScoringOptions,
               prepared: Prepared | None = None) -> TaskResult:
    """Score every candidate of ``data`` and pick the winner of each item by ``opts.year``'s rule
    (``prepared``: from :func:`prepare`, when the caller tokenised already)."""
    requests, plan = prepared if prepared is not None else prepare(tokenizer, backend, data, opts)
    if data.kind == "reading":
        owner, types = plan
        if types and _types_matter(model, requests[0], types[0], backend):
            logprob = _typed_logprob(model, requests, types, backend, scoring.pad_id_of(tokenizer), opts)
            return _reading_result(TaskResult(data), logprob, owner)
    scores = scoring.score_requests(model, requests, backend, opts, pad_id=scoring.pad_id_of(tokenizer),
                                    mask_id=tokenizer.mask_token_id,
                                    desc=f"{data.name} ({len(data.items) or len(data.rows)} "
                                         f"{'words' if data.kind == 'reading' else 'items'}, {len(requests)} strings)")
    result = TaskResult(data, model_tokens=scores.model_tokens, plain_tokens=scores.plain_tokens)
    if data.kind == "reading":
        return _reading_result(result, scores.logprob, owner)
    reduced = scores.reduce(data.reduction or opts.reduction)  # GlobalPIQA: length-normalised
    pick = _tie_breaker(data, opts) if Rules(opts.year) is Rules.Y2026 else None
    pos = 0
    for k, it in enumerate(data.items):
        cand = reduced[pos: pos + len(it.candidates)]
        pos += len(it.candidates)
        if pick is None:
            best = int(np.argmax(cand))  # first index of the maximum, like torch.max in the 2025 code
            tie = bool(np.sum(cand == cand[best]) > 1)
        else:
            best, tie = pick(k, cand)
        result.scores.append([float(s) for s in cand])
        result.chosen.append(best)
        result.ties.append(tie)
        if data.kind == "wug":
            # softmax over the two summed scores, probability of candidate 0
            result.probs.append(float(1.0 / (1.0 + math.exp(min(cand[1] - cand[0], 700.0)))))
    return result


def _tie_breaker(data: TaskData, opts: ScoringOptions):
    """The 2026 ranking rule as ``pick(k, scores) -> (chosen, tie)`` for item k: NaN counts as minus
    infinity, a tie goes to one of the tied candidates at random. One uniform number per item is
    drawn up front from a generator seeded by ``opts.tie_seed`` and the task's data folder, so an
    item's pick depends on neither the other items' ties nor the other tasks scored."""
    stream = zlib.crc32(f"{data.task}/{data.data_dir}".encode("utf-8"))
    draws = np.random.default_rng([opts.tie_seed, stream]).random(len(data.items))  # (N,) in [0, 1)

    def pick(k: int, cand: np.ndarray) -> tuple[int, bool]:
        cand = np.where(np.isnan(cand), -np.inf, cand)
        tied = np.flatnonzero(cand == cand.max())
        if len(tied) == 1:
            return int(tied[0]), False
        return int(tied[int(draws[k] * len(tied))]), True

    return pick


def _reading_result(result: TaskResult, logprob: np.ndarray, owner: np.ndarray) -> TaskResult:
    """Surprisal -ln p(word | item) of every row and of its previous word: the log-probabilities of
    a word's steps (see :func:`reading_plan`) are summed, i.e. its step probabilities multiplied."""
    rows = result.data.rows
    with_prev = [i for i, r in enumerate(rows) if r.prev_item is not None]
    word_lp = np.zeros(len(rows) + len(with_prev), dtype=np.float64)
    np.add.at(word_lp, owner, logprob)
    result.surprisal = [float(-s) for s in word_lp[: len(rows)]]
    result.prev_surprisal = [math.nan] * len(rows)
    for i, s in zip(with_prev, word_lp[len(rows):]):
        result.prev_surprisal[i] = float(-s)
    return result


READING_MASKS = 3  # mask tokens appended for mlm/mntp (official --number_of_mask_tokens_to_append default)


def reading_steps(tokenizer: Any, context: str, word: str, space: bool = False) -> list[tuple[str, int]]:
    """(text before the piece, id to predict) for each piece of ``word``, as the official pipeline
    re-tokenises (babylm-org/babylm-eval, strict/evaluation_pipeline/reading/evaluation_functions.py, ``get_p2*``).

    The word is tokenised on its own without special tokens (so, by default, without its leading
    space). The first piece is predicted after ``context``. Each later piece is decoded to text on
    its own, and what is predicted is the first id of that text re-tokenised, after ``context`` plus
    the decoded text of all earlier pieces (not the original id after the original ids). The word's
    probability is the product over its steps.
    """
    pieces = tokenizer((" " + word) if space else word, add_special_tokens=False)["input_ids"]
    if not pieces:
        raise InputError(f"reading: the word {word!r} yields no token")
    steps = [(context, int(pieces[0]))]
    text = context + tokenizer.decode([pieces[0]])
    for piece in pieces[1:]:
        piece_text = tokenizer.decode([piece])
        again = tokenizer(piece_text, add_special_tokens=False)["input_ids"]
        # official: the first id of the re-tokenised piece; it would crash on an empty result, we keep the id
        steps.append((text, int(again[0]) if again else int(piece)))
        text += piece_text
    return steps


def reading_plan(tokenizer: Any, backend: str, data: TaskData, opts: ScoringOptions
                 ) -> tuple[list[scoring.Request], np.ndarray, list[tuple[int, ...]] | None]:
    """One single-position request per reading step; ``owner``: the word each step belongs to
    (rows first, then the previous words of the rows that have one, in row order); and the token
    types of each request's model input when the official call would pass them (see
    :func:`official_input_names`; None otherwise, and always with ``--reading_token_types drop``).

    Causal: the step's text is tokenised with the tokenizer's special tokens and the logit at its
    last position predicts the target (official ``get_p``). mlm/mntp: ``READING_MASKS`` mask tokens
    are appended to the text as a string; the prediction is read at the first mask when the
    encoding ends with a mask, else one position earlier (official ``get_p_mlm``); mntp reads the
    position before that.
    """
    words = [(r.item, r.word) for r in data.rows] + [(r.prev_item, r.prev_word) for r in data.rows
                                                     if r.prev_item is not None]
    steps, owner = [], []
    for w, (context, word) in enumerate(words):
        for step in reading_steps(tokenizer, context, word, opts.reading_space):
            steps.append(step)
            owner.append(w)
    masked = backend != "causal"
    if masked and tokenizer.mask_token is None:
        raise InputError("reading: masked scoring needs a mask token but the tokenizer has none; use --backend causal")
    suffix = str(tokenizer.mask_token) * READING_MASKS if masked else ""
    if opts.reading_token_types not in READING_TOKEN_TYPES:
        raise UsageError(f"--reading_token_types: {opts.reading_token_types!r} is not one of "
                         f"{', '.join(READING_TOKEN_TYPES)}")
    with_types = opts.reading_token_types == "official" and "token_type_ids" in official_input_names(tokenizer)
    enc = tokenizer([text + suffix for text, _ in steps], return_token_type_ids=with_types)  # one batched call
    encoded = enc["input_ids"]
    requests = []
    for (text, target), ids in zip(steps, encoded):
        if masked:
            at = len(ids) - READING_MASKS - (0 if ids[-1] == tokenizer.mask_token_id else 1)
            requests.append(scoring.Request(tuple(ids), (at,), targets=(target,), premasked=True))
        else:
            if not ids:
                raise InputError(f"reading: the context {text[:60]!r} yields no token to predict from")
            requests.append(scoring.Request((*ids, target), (len(ids),)))
    types = [tuple(t) for t in enc["token_type_ids"]] if with_types else None
    return requests, np.asarray(owner, dtype=np.int64), types


READING_TOKEN_TYPES = ("official", "drop")
# transformers 4.x's PreTrainedTokenizerBase.model_input_names default (tokenization_utils_base.py
# in 4.51.3, the official pipeline's version) includes token types; transformers 5 dropped them from
# the default. Classes that name their own inputs (GPT2TokenizerFast, BertTokenizerFast, ...) return
# the same in both versions, so only tokenizers of the generic classes differ.
_V4_DEFAULT_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
_GENERIC_TOKENIZERS = ("PreTrainedTokenizerBase", "PreTrainedTokenizer", "PreTrainedTokenizerFast",
                       "TokenizersBackend", "PythonBackend")


def official_input_names(tokenizer: Any) -> list[str]:
    """The inputs ``tokenizer`` returns when loaded by the official pipeline's transformers 4.51:
    the names its ``tokenizer_config.json`` records, else its class's, else the 4.x default."""
    named = getattr(tokenizer, "init_kwargs", {}).get("model_input_names")
    if named:
        return list(named)
    for cls in type(tokenizer).__mro__:
        if "model_input_names" in vars(cls):
            return list(_V4_DEFAULT_INPUTS) if cls.__name__ in _GENERIC_TOKENIZERS else list(cls.model_input_names)
    return list(_V4_DEFAULT_INPUTS)


def _model_input(r: scoring.Request, types: tuple[int, ...], backend: str) -> tuple[tuple[int, ...], tuple[int, ...], int, int]:
    """(ids, token types, read position, target) of one reading request as the official code runs
    it: causal reads the last position of the context; mlm the first appended mask, mntp one before."""
    p = r.scored[0]
    if backend == "causal":
        return r.ids[:p], types[:p], p - 1, r.ids[p]
    return r.ids, types, (p - 1 if backend == "mntp" else p), (r.targets[0] if r.targets else r.ids[p])


@torch.no_grad()
def _types_matter(model: Any, request: scoring.Request, types: tuple[int, ...], backend: str) -> bool:
    """Whether token types change the model's logits, on one real reading input.

    GPT-2 adds ``wte(token_type_ids)`` to every position (the official reading surprisals of a
    GPT-2 whose tokenizer returns token types differ from the model's own); encoders whose default
    token types are these zeros (BERT, RoBERTa, DeBERTa) give identical logits and keep the packed
    scorer. A forward that refuses token types would fail in the official call as well; we keep it
    as trained.
    """
    ids, tt, _, _ = _model_input(request, types, backend)
    device = next(model.parameters()).device
    x = torch.tensor([ids], device=device)  # (1, T)
    try:
        typed = model(input_ids=x, token_type_ids=torch.tensor([tt], device=device)).logits  # (1, T, V)
    except (TypeError, ValueError):
        return False
    return not torch.equal(typed, model(input_ids=x).logits)


@torch.no_grad()
def _typed_logprob(model: Any, requests: list[scoring.Request], types: list[tuple[int, ...]], backend: str,
                   pad_id: int, opts: ScoringOptions) -> np.ndarray:
    """log p(target) of every single-position reading request with the token types passed to the
    model beside ids and mask, as the official ``model(**tokenizer(text))`` call does.

    Length-sorted and packed to ``opts.token_budget`` like the scorer; the LM head runs on the read
    rows only when the model splits into body and head (checked against its own logits).
    """
    device = next(model.parameters()).device
    split = body_and_head(model)
    body, head = (getattr(model, n) for n in split) if split else (None, None)
    rows = [_model_input(r, t, backend) for r, t in zip(requests, types)]
    lengths = [len(ids) for ids, _, _, _ in rows]
    perm = scoring.length_order(lengths)
    out = np.zeros(len(rows), dtype=np.float64)
    for start, stop in scoring.pack_batches([lengths[i] for i in perm], opts.token_budget):
        batch = perm[start:stop]
        width = lengths[batch[0]]
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)  # (B, T), right-padded
        tt = torch.zeros_like(ids)  # (B, T)
        mask = torch.zeros_like(ids)  # (B, T)
        for b, i in enumerate(batch):
            x, t, _, _ = rows[i]
            ids[b, :len(x)], tt[b, :len(x)], mask[b, :len(x)] = torch.tensor(x), torch.tensor(t), 1
        inputs = {"input_ids": ids.to(device), "attention_mask": mask.to(device), "token_type_ids": tt.to(device)}
        b_idx = torch.arange(len(batch), device=device)  # (B,)
        at = torch.tensor([rows[i][2] for i in batch], device=device)  # (B,)
        if body is not None:
            logits = head(body(**inputs)[0][b_idx, at])  # (B, V): head on the read rows only
        else:
            logits = model(**inputs).logits[b_idx, at]  # (B, V)
        logits = logits.float() / opts.temperature
        target = torch.tensor([rows[i][3] for i in batch], device=device)  # (B,)
        lp = logits.gather(1, target[:, None])[:, 0] - torch.logsumexp(logits, dim=-1)  # (B,)
        out[batch] = lp.double().cpu().numpy()
    return out


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def accuracy_by_uid(result: TaskResult) -> dict[str, dict[str, float]]:
    """{uid: {"accuracy", "n", "ties"}}: an item is right when the chosen candidate is its gold one; a
    tie was decided by the year's rule (2025: for the first candidate, 2026: at random)."""
    out: dict[str, dict[str, float]] = {}
    for it, best, tie in zip(result.data.items, result.chosen, result.ties):
        row = out.setdefault(it.uid, {"correct": 0, "n": 0, "ties": 0})
        row["n"] += 1
        row["correct"] += int(best == it.gold)
        row["ties"] += int(tie)
    return {uid: {"accuracy": r["correct"] / r["n"], "n": r["n"], "ties": r["ties"]} for uid, r in out.items()}


def score_predictions(predictions: dict, data: TaskData) -> dict[str, tuple[int, int]]:
    """(correct, total) per UID of an official predictions object against the gold items.

    A prediction is right when its stripped ``pred`` is the stripped gold candidate,
    as the official collator decides; predictions are matched to gold items by position.
    """
    gold: dict[str, list[str]] = {}
    for it in data.items:
        gold.setdefault(it.uid, []).append(it.preds[it.gold].strip())
    scores = {}
    for uid, entry in predictions.items():
        rows = gold.get(uid)
        preds = entry.get("predictions", []) if isinstance(entry, dict) else []
        if not rows or not preds:
            continue
        correct = sum(str(p.get("pred", "")).strip() == g for p, g in zip(preds, rows) if isinstance(p, dict))
        scores[uid] = (correct, min(len(preds), len(rows)))
    return scores


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

    As in the official ``evaluation_pipeline/reading/run.py``: ``rt`` is the mean over the four
    eye-tracking measures, baseline Subtlex_log10, length, context_length and their pairwise
    interactions; ``spr`` (self-paced reading, 1-word spillover) has a baseline of Subtlex_log10,
    length, context_length, prev_length, prev_pred (the previous word's surprisal) and all their
    pairwise interactions, and adds the current word's surprisal. Rows with a missing value in
    a model's columns are dropped, as ``dropna`` does.
    """
    col = {m: np.array([r.measures[m] for r in rows]) for m in rows[0].measures} if rows else {}
    if not rows:
        return {"spr": math.nan, "rt": math.nan}
    s, ps = np.array(surprisal), np.array(prev_surprisal)

    def with_interactions(xs: list[np.ndarray]) -> list[np.ndarray]:
        return xs + [a * b for k, a in enumerate(xs) for b in xs[k + 1:]]

    base = with_interactions([col["Subtlex_log10"], col["length"], col["context_length"]])
    rt = [_gain(base, [s], col[m]) for m in ("RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound")]
    spill = with_interactions([col["Subtlex_log10"], col["length"], col["context_length"], col["prev_length"], ps])
    spr = _gain(spill, [s], col["self_paced_reading_time"])
    return {"spr": float(spr), "rt": float(np.nanmean(rt)) if np.isfinite(rt).any() else math.nan}


def task_summary(result: TaskResult) -> dict[str, Any]:
    """Metrics of one scored task (written as ``summary.json`` beside ``predictions.json``)."""
    data = result.data
    out: dict[str, Any] = {"task": data.name, "data_dir": data.data_dir, "source": data.source,
                           "official_counts": data.official, "n_items": len(data.items) or len(data.rows)}
    if data.kind == "reading":
        out["metrics"] = reading_metrics(data.rows, result.surprisal, result.prev_surprisal)
        return out
    per_uid = accuracy_by_uid(result)
    out["subtasks"] = per_uid
    out["accuracy"] = task_score(data.name, {u: v["accuracy"] for u, v in per_uid.items()})
    out["ties"] = sum(v["ties"] for v in per_uid.values())
    if data.kind == "wug":
        out["metrics"] = {data.name: wug_rho(result)}
    return out
