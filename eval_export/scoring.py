"""Sentence scores: causal log-likelihood and masked pseudo-log-likelihood (PLL).

Pipeline (minicons' shape, lm-eval's batching):

1. ``build_requests`` turns (context, completion) strings into :class:`Request` objects: the token
   ids the model sees and the positions whose log-probability counts. Which tokens count follows
   the official rule of the chosen challenge year (``BOS_RULES``).
2. ``score_requests`` scores all requests of a task together: identical requests are scored
   once, the rest sorted by length (descending, ties by original index), packed into batches of
   at most ``token_budget`` tokens, and the original order restored with the inverse permutation.
   Masked copies are packed by exact length (a sentence's copies all share its length), so PLL
   batches carry no padding and no attention mask. Causal requests are packed as prefix trees
   (:class:`PrefixForest`): every token prefix that several requests share is computed once, with
   a tree-shaped attention mask and each token's own position; ``prefix_sharing=False`` runs each
   request on its own (the plain path).
3. Log-softmax always runs in float32 over the rows that are actually scored: the vocabulary
   projection is applied only at the scored (causal) or masked (PLL) positions, never over the
   whole padded batch. For BERT-family encoders the last layer itself runs only at the read
   position (:class:`_EncoderShortcut`; keys and values still see every position).

Natural logs, summed by default (every official pipeline sums, except the 2024 masked path
which used minicons' default mean: babylm/evaluation-pipeline-2024, lm_eval/models/huggingface.py,
and minicons' MaskedLMScorer.conditional_score).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import torch

from babylm.challenge import BACKENDS, DEFAULT_RULES
from babylm.errors import InputError, UsageError
from babylm.objective import body_and_head

# Beginning-of-sentence handling of each challenge year (babylm/evaluation-pipeline-2023 and -2024,
# lm_eval/models/huggingface.py; babylm-org/babylm-eval strict/evaluation_pipeline/sentence_zero_shot).
#   2023: causal = EOS + continuation (" " + sentence), no special tokens.
#   2024: causal = BOS (else EOS, else PAD) + continuation, no special tokens.
#   2025/2026: the tokenizer's own special tokens; character offsets decide the scored span.
BOS_RULES = ("2023", "2024", "2025", "2026")
PLL_VARIANTS = ("original", "within_word_l2r")
REDUCTIONS = ("sum", "mean")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScoringOptions:
    """How tasks are scored: built once from the command line (``eval_export.commands.score``) and
    passed, whole, from there down to the model call."""

    year: str = DEFAULT_RULES.value  # rules of the ranking step (ties, NaN) and of what the tasks read
    bos_rule: str = "2025"  # see BOS_RULES
    pll_variant: str = "original"  # see PLL_VARIANTS
    reduction: str = "sum"  # see REDUCTIONS
    token_budget: int = 2048  # padded tokens per forward pass
    temperature: float = 1.0  # logits are divided by it before the log-softmax
    prefix_sharing: bool = True  # causal: shared token prefixes computed once (False: the plain path)
    row_tokens: int = 0  # causal prefix trees: nodes per packed row (0: default_row_tokens)
    progress: bool = False
    reading_space: bool = False  # official quirk: the reading target word is tokenised without its space
    reading_token_types: str = "official"  # reading: token types the official call would pass (or "drop")
    tie_seed: int = 0  # 2026: seed of the generator that breaks ties


@dataclasses.dataclass(frozen=True)
class Request:
    """One string to score, as token ids.

    Attributes:
        ids: the token ids fed to the model (special tokens included).
        scored: positions whose token counts towards the score.
        targets: token to predict at each scored position; None means ``ids[p]``. Only set for
            inputs that already hold mask tokens (the reading task's appended masks).
        words: word index of every position (None for special tokens), for ``within_word_l2r``.
        premasked: the masked positions are already in ``ids``; PLL must not add masks.
    """

    ids: tuple[int, ...]
    scored: tuple[int, ...]
    targets: tuple[int, ...] | None = None
    words: tuple[int | None, ...] | None = None
    premasked: bool = False


# ---------------------------------------------------------------------------------------------
# Building requests from strings
# ---------------------------------------------------------------------------------------------


def build_requests(tokenizer: Any, items: Sequence[tuple[str, str]], backend: str, bos_rule: str = "2025") -> list[Request]:
    """Tokenise ``(context, completion)`` pairs into requests scoring only the completion.

    Args:
        tokenizer: a fast tokenizer (offsets are needed for the 2025 rule).
        items: (context, completion) pairs; for whole-sentence tasks the context is "".
        backend: ``causal``, ``mlm`` or ``mntp``.
        bos_rule: challenge year whose beginning-of-sentence handling to follow.

    Raises:
        InputError: an empty completion, or a completion that yields no scorable token.
    """
    if bos_rule not in BOS_RULES:
        raise UsageError(f"--bos_rule: {bos_rule!r} is not one of {', '.join(BOS_RULES)}")
    for context, completion in items:
        if not completion.strip():
            raise InputError(f"empty sentence to score (context {context[:40]!r}); check the task file")
    if backend == "causal" and bos_rule in ("2023", "2024"):
        return _build_causal_prefix(tokenizer, items, bos_rule)
    if bos_rule == "2023":  # masked: continuation with the tokenizer's special tokens, context ignored
        texts = [(" " + c, 0) for _, c in items]
    elif bos_rule == "2024":  # masked via minicons: prefix (EOS string for an empty context) + " " + stimulus
        texts = []
        for context, completion in items:
            prefix = context if context else str(tokenizer.eos_token)
            stimulus = " " + completion if not context else completion
            texts.append((prefix + " " + stimulus, len(prefix) + 1))
    else:
        texts = [(context + completion, len(context)) for context, completion in items]
    return _build_offset_requests(tokenizer, texts, drop_first=(backend == "causal"))


def _build_offset_requests(tokenizer: Any, texts: list[tuple[str, int]], drop_first: bool) -> list[Request]:
    """2025 rule: default special tokens; a token is scored when its end offset passes ``start``.

    Special tokens carry offset (0, 0) and are never scored. For causal models position 0 has no
    left context, so it is dropped (GPT-2-style tokenizers without BOS never score the first word).
    """
    enc = tokenizer([t for t, _ in texts], return_offsets_mapping=True, return_special_tokens_mask=True)
    out = []
    for i, (text, start) in enumerate(texts):
        ids = enc["input_ids"][i]
        special = enc["special_tokens_mask"][i]
        offsets = enc["offset_mapping"][i]
        scored = tuple(p for p, ((_, end), sp) in enumerate(zip(offsets, special))
                       if not sp and end > start and not (drop_first and p == 0))
        if not scored:
            raise InputError(f"nothing to score in {text[:60]!r}: the completion yields no scorable token")
        out.append(Request(tuple(ids), scored, words=tuple(enc.word_ids(i))))
    return out


def _build_causal_prefix(tokenizer: Any, items: Sequence[tuple[str, str]], bos_rule: str) -> list[Request]:
    """2023/2024 (lm-eval) rule: no special tokens; an empty context becomes one prefix token.

    lm-eval puts its target delimiter (one space) in front of every choice and moves trailing
    spaces of the context into the continuation, then encodes context + continuation together
    and splits at the context's token length.
    """
    if bos_rule == "2023":
        prefix_id = tokenizer.eos_token_id
    else:
        prefix_id = next((t for t in (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
                          if t is not None), None)
    out = []
    for context, completion in items:
        continuation = completion if context else " " + completion
        stripped = context.rstrip(" ")
        continuation = context[len(stripped):] + continuation
        context = stripped
        if context:
            whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
            n_ctx = len(tokenizer(context, add_special_tokens=False)["input_ids"])
            ids, first = whole, n_ctx
        else:
            if prefix_id is None:
                raise InputError(f"bos rule {bos_rule} needs a BOS/EOS token but the tokenizer has none; use --bos_rule 2025")
            ids = [prefix_id] + tokenizer(continuation, add_special_tokens=False)["input_ids"]
            first = 1
        scored = tuple(range(max(first, 1), len(ids)))
        if not scored:
            raise InputError(f"nothing to score in {completion[:60]!r}")
        out.append(Request(tuple(ids), scored))
    return out


# ---------------------------------------------------------------------------------------------
# Ordering helpers
# ---------------------------------------------------------------------------------------------


def length_order(lengths: Sequence[int]) -> np.ndarray:
    """Indices sorting ``lengths`` descending; equal lengths keep their original order (stable)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.argsort(-lengths, kind="stable")


def invert_permutation(perm: np.ndarray) -> np.ndarray:
    """``inv`` with ``inv[perm[i]] == i``: ``sorted_values[inv]`` restores the original order."""
    perm = np.asarray(perm, dtype=np.int64)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm), dtype=np.int64)
    return inv


def pack_batches(lengths_sorted: Sequence[int], token_budget: int) -> list[tuple[int, int]]:
    """Cut a descending list of row lengths into ``[start, stop)`` batches of at most ``token_budget``
    padded tokens (the first row of a batch fixes its padded length); a row longer than the budget
    gets a batch of its own."""
    batches, start = [], 0
    n = len(lengths_sorted)
    while start < n:
        width = max(int(lengths_sorted[start]), 1)
        rows = max(token_budget // width, 1)
        stop = min(start + rows, n)
        batches.append((start, stop))
        start = stop
    return batches


def pack_equal_batches(lengths_sorted: Sequence[int], token_budget: int) -> list[tuple[int, int]]:
    """Like :func:`pack_batches`, but every batch holds rows of one length only: no padding, so no
    attention mask is needed (the masked copies of a sentence all share its length)."""
    lengths = np.asarray(lengths_sorted, dtype=np.int64)
    cuts = np.flatnonzero(np.diff(lengths)) + 1  # where the length changes
    batches = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(lengths)]):
        batches += [(int(a) + x, int(a) + y) for x, y in pack_batches(lengths[a:b], token_budget)]
    return batches


# ---------------------------------------------------------------------------------------------
# Model split: body (hidden states) + head (vocabulary projection)
# ---------------------------------------------------------------------------------------------


class _SplitModel:
    """Run the transformer body on the batch and the LM head only on the rows that are read.

    Works for any HF LM whose only child besides the base model is the head (GPT-2, Llama, BERT,
    RoBERTa, DeBERTa-v2 ...). The split is verified against the model's own forward on a probe
    input; when it does not reproduce the logits, the full forward is used instead.
    """

    def __init__(self, model: Any):
        self.model = model
        names = body_and_head(model)  # verified against the model's own logits, else None
        self.body, self.head = (getattr(model, n) for n in names) if names else (None, None)

    @property
    def split(self) -> bool:
        return self.body is not None

    def hidden(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        extra = {} if positions is None else {"position_ids": positions}
        if self.body is not None:
            return self.body(input_ids=ids, attention_mask=mask, **extra)[0]  # (B, T, H)
        return self.model(input_ids=ids, attention_mask=mask, **extra).logits  # (B, T, V): "hidden" = logits

    def logits(self, hidden_rows: torch.Tensor) -> torch.Tensor:
        return self.head(hidden_rows) if self.head is not None else hidden_rows  # (N, V)


class _EncoderShortcut:
    """BERT-family encoders (BERT, RoBERTa and look-alikes): hidden states at one position per row,
    computing the last layer only where it is read.

    The last layer's keys and values need every position, but its query, attention output, feed-
    forward block and layer norms are per position, so they run on the read row alone; with L layers
    and T tokens that removes about (T-1)/T of 10/12 of one layer's matrix work. Inputs carry no
    padding (rows of one length per batch), so no attention mask is built. Used only when the
    module layout matches and a probe reproduces the model's own logits; otherwise the plain split
    is used.
    """

    def __init__(self, split: _SplitModel):
        self.ok = False
        body = split.body
        cfg = getattr(split.model, "config", None)
        layers = getattr(getattr(body, "encoder", None), "layer", None)
        if split.head is None or cfg is None or not layers or getattr(body, "embeddings", None) is None:
            return
        if getattr(cfg, "is_decoder", False) or getattr(cfg, "chunk_size_feed_forward", 0) or \
                getattr(cfg, "position_embedding_type", "absolute") not in (None, "absolute"):
            return
        last = layers[-1]
        try:
            sa, out_a = last.attention.self, last.attention.output
            parts = (sa.query, sa.key, sa.value, sa.scaling, sa.attention_head_size, out_a.dense, out_a.LayerNorm,
                     last.intermediate, last.output.dense, last.output.LayerNorm)
        except AttributeError:
            return
        if any(x is None for x in parts) or type(body).forward is None:
            return
        self.split, self.body, self.layers = split, body, layers
        self.ok = self._verified()

    @torch.no_grad()
    def _verified(self) -> bool:
        model = self.split.model
        device = next(model.parameters()).device
        vocab = model.get_input_embeddings().weight.shape[0]
        gen = torch.Generator().manual_seed(1)
        ids = torch.randint(0, vocab, (3, 9), generator=gen).to(device)  # (B, T)
        read = torch.tensor([0, 4, 8], device=device)  # (B,)
        try:
            full = model(input_ids=ids).logits[torch.arange(3, device=device), read]  # (B, V)
            short = self.split.logits(self.hidden_at(ids, read))  # (B, V)
        except Exception:  # a look-alike whose modules do not compose this way: keep the plain split
            return False
        tol = 1e-4 if short.dtype == torch.float32 else 2e-2
        return full.shape == short.shape and torch.allclose(full.float(), short.float(), atol=tol, rtol=tol)

    def hidden_at(self, ids: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
        """Final hidden state at ``read[b]`` of each unpadded row ``ids[b]``: (B, T) -> (B, H)."""
        h = self.body.embeddings(input_ids=ids)  # (B, T, H)
        for layer in self.layers[:-1]:
            h = layer(h)
            h = h[0] if isinstance(h, tuple) else h  # (B, T, H)
        last = self.layers[-1]
        sa = last.attention.self
        b, t, _ = h.shape
        d = sa.attention_head_size
        x = h[torch.arange(b, device=h.device), read]  # (B, H): the read rows only
        q = sa.query(x).view(b, 1, -1, d).transpose(1, 2)  # (B, nh, 1, d)
        k = sa.key(h).view(b, t, -1, d).transpose(1, 2)  # (B, nh, T, d)
        v = sa.value(h).view(b, t, -1, d).transpose(1, 2)  # (B, nh, T, d)
        ctx = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=sa.scaling)  # (B, nh, 1, d)
        a = last.attention.output(ctx.transpose(1, 2).reshape(b, -1), x)  # (B, H): dense + residual + LayerNorm
        return last.output(last.intermediate(a), a)  # (B, H): feed-forward + residual + LayerNorm


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Scores:
    """Per-request results, in the order the requests were given."""

    logprob: np.ndarray  # (R,) float64 summed natural-log probability of the scored tokens
    n_tokens: np.ndarray  # (R,) int64 number of scored tokens
    model_tokens: int = 0  # causal: tokens the model ran on (padding excluded)
    plain_tokens: int = 0  # causal: tokens the plain path runs on (every distinct request's ids)
    shared_prefixes: bool = False  # causal: whether shared prefixes were computed once

    def reduce(self, reduction: str = "sum") -> np.ndarray:
        if reduction == "sum":
            return self.logprob
        if reduction == "mean":
            return self.logprob / np.maximum(self.n_tokens, 1)
        raise UsageError(f"--reduction: {reduction!r} is not one of {', '.join(REDUCTIONS)}")


def score_requests(model: Any, requests: Sequence[Request], backend: str, opts: ScoringOptions | None = None,
                   pad_id: int = 0, mask_id: int | None = None, desc: str = "scoring") -> Scores:
    """Score every request; results come back in the order of ``requests``.

    Args:
        model: a HF ``*ForCausalLM`` (backend causal) or ``*ForMaskedLM`` (mlm, mntp).
        requests: from :func:`build_requests` (or built by hand).
        backend: ``causal``, ``mlm`` (read the masked position) or ``mntp`` (read the position before it).
        opts: what this reads of it: ``pll_variant``, ``original`` (Salazar et al.; the official one)
            or ``within_word_l2r`` (Kauf & Ivanova: also mask the later pieces of the same word),
            ignored for causal; ``token_budget``, at most this many padded tokens per forward pass;
            ``temperature``, logits are divided by it before the log-softmax (official default 1.0);
            ``prefix_sharing``, causal only: compute every shared token prefix once
            (:class:`PrefixForest`), False runs each request on its own (the plain path, for
            checking); a model whose attention does not follow a tree mask and position ids exactly
            (checked on a probe) is scored on the plain path; ``row_tokens``, nodes per packed row
            of the prefix trees (0: :func:`default_row_tokens`); ``progress``.
        pad_id: id used for padding (hidden by the attention mask, so any valid id works).
        mask_id: the tokenizer's mask token id (needed for mlm/mntp).
        desc: the progress bar's label.
    """
    opts = opts or ScoringOptions()
    variant = opts.pll_variant
    if backend not in BACKENDS:
        raise UsageError(f"--backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    if variant not in PLL_VARIANTS:
        raise UsageError(f"--pll_variant: {variant!r} is not one of {', '.join(PLL_VARIANTS)}")
    # Score each distinct request once (minimal pairs and EWoK repeat sentences).
    unique: dict[Request, int] = {}
    back = np.fromiter((unique.setdefault(r, len(unique)) for r in requests), dtype=np.int64, count=len(requests))
    distinct = list(unique)
    split = _SplitModel(model)
    if backend != "causal":
        logprob, n_tok = _score_masked(split, distinct, backend, opts, mask_id, desc)
        return Scores(logprob[back], n_tok[back])
    plain = sum(len(r.ids) for r in distinct)
    if opts.prefix_sharing and _tree_ready(split):
        forest = plant_forest(distinct, opts.row_tokens or default_row_tokens(distinct, opts.token_budget))
        logprob, n_tok = _score_forest(split, forest, opts, pad_id, len(distinct), desc)
        return Scores(logprob[back], n_tok[back], forest.n_tokens, plain, True)
    logprob, n_tok = _score_causal(split, distinct, opts.token_budget, opts.temperature, pad_id, opts.progress, desc)
    return Scores(logprob[back], n_tok[back], plain, plain, False)


def _rows_logprob(split: _SplitModel, hidden_rows: torch.Tensor, targets: torch.Tensor, temperature: float,
                  row_of: np.ndarray | None = None) -> torch.Tensor:
    """log p(target) for each target: head on the gathered rows only, log-softmax in float32.

    ``row_of`` (sorted, one entry per target) says which row each target is read from, so that a row
    that predicts several targets (the last shared token before the options of an item diverge) goes
    through the head and its logsumexp once; None: target i is read from row i.

    Rows go through the head in chunks of about ``_LOGIT_CHUNK`` logits: a (rows, vocabulary) block
    that big stays in cache on a CPU, while one block for a whole causal batch (2,000 rows x 50k
    vocabulary) is hundreds of MB of fresh memory per step for the head and logsumexp to fault in.
    """
    vocab = split.model.get_input_embeddings().weight.shape[0]
    limit = _LOGIT_CHUNK if hidden_rows.device.type == "cpu" else 64 * _LOGIT_CHUNK
    step = max(1, limit // max(vocab, 1))
    out = []
    for a in range(0, hidden_rows.shape[0], step):
        logits = split.logits(hidden_rows[a:a + step]).float()  # (n, V)
        if temperature != 1.0:
            logits = logits / temperature
        lse = torch.logsumexp(logits, dim=-1)  # (n,)
        if row_of is None:
            rows, tgt = slice(None), targets[a:a + step]
        else:
            lo, hi = np.searchsorted(row_of, [a, a + step])
            rows, tgt = torch.from_numpy(row_of[lo:hi] - a).to(logits.device), targets[lo:hi]
        # log_softmax(x)[t] = x[t] - logsumexp(x), in float32 whatever the model dtype
        out.append(logits[rows].gather(1, tgt[:, None])[:, 0] - lse[rows])  # (targets of these rows,)
    return torch.cat(out) if out else hidden_rows.new_zeros(0, dtype=torch.float32)


_LOGIT_CHUNK = 1 << 20  # logits per head chunk on a CPU (4 MB in float32)


def _progress(total: int, enabled: bool, desc: str, unit: str):
    """A bar whose unit says what it counts: ``string`` (one candidate sentence run on its own),
    ``packed row`` (causal strings sharing prefixes, packed into one model row) or ``masked copy``
    (PLL: one copy of a sentence per scored token)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit=f" {unit}", leave=False)


@torch.no_grad()
def _score_causal(split: _SplitModel, reqs: list[Request], token_budget: int, temperature: float, pad_id: int,
                  progress: bool, desc: str) -> tuple[np.ndarray, np.ndarray]:
    device = next(split.model.parameters()).device
    lengths = [len(r.ids) for r in reqs]
    perm = length_order(lengths)  # longest first: the first batch is the biggest (OOM shows at once)
    sorted_lp = np.zeros(len(reqs), dtype=np.float64)
    sorted_n = np.zeros(len(reqs), dtype=np.int64)
    bar = _progress(len(reqs), progress, desc, "string")
    for start, stop in pack_batches([lengths[i] for i in perm], token_budget):
        batch = [reqs[i] for i in perm[start:stop]]
        width = len(batch[0].ids)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)  # (B, T), right-padded
        mask = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
        rows, read, tgt = [], [], []
        for b, r in enumerate(batch):
            ids[b, : len(r.ids)] = torch.tensor(r.ids)
            mask[b, : len(r.ids)] = 1
            targets = r.targets or tuple(r.ids[p] for p in r.scored)
            for p, t in zip(r.scored, targets):
                if p == 0:
                    continue  # nothing to predict the first token from
                rows.append(b)
                read.append(p - 1)  # the logit at p-1 predicts token p
                tgt.append(t)
        hidden = split.hidden(ids.to(device), mask.to(device))  # (B, T, H)
        rows_t = torch.tensor(rows, dtype=torch.long, device=device)  # (N,)
        picked = hidden[rows_t, torch.tensor(read, device=device)]  # (N, H)
        lp = _rows_logprob(split, picked, torch.tensor(tgt, device=device), temperature).double().cpu()  # (N,)
        sums = torch.zeros(len(batch), dtype=torch.float64).index_add_(0, rows_t.cpu(), lp)  # (B,)
        counts = torch.bincount(rows_t.cpu(), minlength=len(batch))  # (B,)
        sorted_lp[start:stop] = sums.numpy()
        sorted_n[start:stop] = counts.numpy()
        bar.update(stop - start)
    bar.close()
    inv = invert_permutation(perm)
    return sorted_lp[inv], sorted_n[inv]


# ---------------------------------------------------------------------------------------------
# Causal scoring with shared prefixes (prefix trees packed into rows)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class PrefixForest:
    """The inputs of many causal requests as prefix trees in token space, packed into rows.

    A causal model's hidden state at position i depends on tokens 0..i only, so requests whose ids
    agree up to position i share every hidden state up to i: the options of an entity-tracking item
    share its context (and the items of one story share the story), a BLiMP pair shares the words
    before its first difference. The inputs (``ids`` up to the last scored position; the last token
    is only ever a target, as in the official ``tokens[:-1]``) are sorted, so that requests sharing
    a prefix become neighbours, and laid out depth-first, each shared token once per row: a node is
    followed by its descendants, and the descendants of node ``n`` are the nodes ``n+1 .. end[n]-1``.
    With a mask that lets each node attend to itself and its ancestors only, and its depth as its
    position id, every node computes exactly the hidden state it has in its own request.

    Attributes:
        tokens: (N,) token id of every node; the rows one after another.
        depth: (N,) the node's position in its requests (its depth in the tree).
        end: (N,) one past the node's last descendant.
        row_starts: (R + 1,) where each row begins in the node arrays (the last entry is N).
        read_node, read_target: (U,) the distinct (node, target) pairs whose log-probability is read,
            sorted by node: the node's hidden state predicts the target.
        owner, read: (S,) for every scored token of every request, its request and its pair.
        plain_tokens: tokens the plain path feeds the model (every request's ids).
    """

    tokens: np.ndarray
    depth: np.ndarray
    end: np.ndarray
    row_starts: np.ndarray
    read_node: np.ndarray
    read_target: np.ndarray
    owner: np.ndarray
    read: np.ndarray
    plain_tokens: int

    @property
    def n_tokens(self) -> int:
        return int(self.row_starts[-1])


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def plant_forest(reqs: Sequence[Request], row_tokens: int) -> PrefixForest:
    """Pack the inputs of ``reqs`` into prefix-tree rows of about ``row_tokens`` nodes.

    Requests are visited in lexicographic order of their inputs: the deepest node a request can
    reuse in the current row is then on the path of the request before it, at their common prefix.
    A request whose new nodes do not fit starts a new row and repeats its shared prefix there (a
    single input longer than ``row_tokens`` gets a row of its own length).
    """
    inputs = []
    wanted = []  # per request: (positions p > 0 whose token is scored, their targets)
    for r in reqs:
        targets = r.targets or tuple(r.ids[p] for p in r.scored)
        pairs = [(p, t) for p, t in zip(r.scored, targets) if p > 0]  # position 0 has nothing before it
        wanted.append(pairs)
        inputs.append(r.ids[: max((p for p, _ in pairs), default=0)])
    order = sorted(range(len(reqs)), key=inputs.__getitem__)
    size = sum(len(x) for x in inputs)
    tokens = np.empty(size, dtype=np.int64)
    depth = np.empty(size, dtype=np.int64)
    end = np.empty(size, dtype=np.int64)
    row_starts = [0]
    owner, node, target = [], [], []
    n = 0
    prev: Sequence[int] = ()
    open_nodes = np.empty(0, dtype=np.int64)  # the nodes of the previous path, root first
    for i in order:
        path = inputs[i]
        shared = _common_prefix(prev, path)
        if n > row_starts[-1] and n - row_starts[-1] + len(path) - shared > row_tokens:
            end[open_nodes] = n  # the row is closed: every open subtree ends here
            row_starts.append(n)
            shared, open_nodes = 0, open_nodes[:0]
        end[open_nodes[shared:]] = n  # the previous path's branch below the common prefix is complete
        new = len(path) - shared
        tokens[n: n + new] = path[shared:]
        depth[n: n + new] = np.arange(shared, len(path))
        open_nodes = np.concatenate([open_nodes[:shared], np.arange(n, n + new, dtype=np.int64)])
        n += new
        prev = path
        for p, t in wanted[i]:
            owner.append(i)
            node.append(open_nodes[p - 1])  # the hidden state at p - 1 predicts token p
            target.append(t)
    end[open_nodes] = n
    row_starts.append(n)
    owner_a = np.asarray(owner, dtype=np.int64)
    node_a = np.asarray(node, dtype=np.int64)
    target_a = np.asarray(target, dtype=np.int64)
    # one head row per distinct (node, target): identical requests and shared scored prefixes read once
    width = int(target_a.max()) + 1 if len(target_a) else 1
    keys, read = np.unique(node_a * width + target_a, return_inverse=True)
    return PrefixForest(tokens[:n], depth[:n], end[:n], np.asarray(row_starts, dtype=np.int64), keys // width,
                        keys % width, owner_a, read.reshape(-1).astype(np.int64), sum(len(r.ids) for r in reqs))


def default_row_tokens(reqs: Sequence[Request], token_budget: int) -> int:
    """Nodes per packed row: twice the longest request, so that requests sharing a long context (an
    entity-tracking story, its questions and its options) fit in one row, and at least 128; at most
    the token budget (or the longest request). Attention over a row is dense, its cost grows with
    the row's length squared, and more, shorter rows repeat more shared prefixes; at 128-1,200
    nodes both stay small next to the per-token matrix work (docs/benchmarks.md)."""
    longest = max((len(r.ids) for r in reqs), default=1)
    return int(min(max(128, 2 * longest), max(token_budget, longest)))


# Model types whose attention sees positions only through ``position_ids`` (absolute or rotary) and
# follows a 4D mask: a tree row then reproduces each request exactly. ALiBi (BLOOM, MPT, Falcon) and
# sliding windows (GPT-Neo's local layers, Mistral/Qwen2 with a window) measure distances by index
# in the row, which a tree row does not preserve; anything not listed is scored on the plain path.
TREE_MODEL_TYPES = frozenset({"gpt2", "llama", "gpt_neox", "opt"})


def _tree_ready(split: _SplitModel) -> bool:
    """Whether shared prefixes may be used: a listed model type (the kit's custom head: its body's)
    whose tree scores equal the plain path's on a probe."""
    cfg = split.model.config
    kind = getattr(cfg, "model_type", "")
    if kind == "babylm-head":
        kind = getattr(getattr(split.body, "config", None), "model_type", "") if split.split else ""
    if kind not in TREE_MODEL_TYPES or getattr(cfg, "sliding_window", None):
        return False
    return _forest_agrees(split)


@torch.no_grad()
def _forest_agrees(split: _SplitModel) -> bool:
    """Probe: every token's log-probability through tree rows equals the one of its string run on its
    own, on random ids with long and short branches (a node's index in its row far from its depth),
    a repeated path, a path that continues another, two rows and padding. Catches attention
    implementations that ignore a 4D mask or explicit position ids."""
    model = split.model
    device = next(model.parameters()).device
    vocab = model.get_input_embeddings().weight.shape[0]
    ids = torch.randint(0, vocab, (4, 24), generator=torch.Generator().manual_seed(2)).tolist()
    stem = ids[0][:3]
    paths = [stem + ids[1], stem + ids[2][:5], stem + ids[1][:4] + ids[3][:6], ids[3][6:12], stem + ids[2][:5]]
    reqs = [Request(tuple(p), tuple(range(1, len(p)))) for p in paths]
    try:
        forest = plant_forest(reqs, 40)
        # per scored token, grouped by request, positions in order (see plant_forest)
        got = _forest_pair_logprob(split, forest, 4096, 1.0, 0)[forest.read][np.argsort(forest.owner, kind="stable")]
        want = []
        for r in reqs:  # each string on its own, no padding, no mask to honour
            x = torch.tensor([r.ids], device=device)  # (1, T)
            hidden = split.hidden(x, torch.ones_like(x))[0]  # (T, H)
            read = torch.tensor([p - 1 for p in r.scored], device=device)
            want.append(_rows_logprob(split, hidden[read], x[0, read + 1], 1.0).double().cpu().numpy())
        want = np.concatenate(want)
    except Exception:  # e.g. an attention implementation that refuses a 4D mask
        return False
    tol = 1e-5 if next(model.parameters()).dtype == torch.float32 else 2e-2
    return got.shape == want.shape and bool(np.all(np.abs(got - want) <= tol * np.maximum(1.0, np.abs(want))))


def tree_mask(end: torch.Tensor, additive_dtype: torch.dtype | None = None) -> torch.Tensor:
    """(B, T) subtree ends -> (B, 1, T, T) attention mask: query i sees key j when j is i or one of
    i's ancestors, i.e. ``j <= i < end[j]`` in depth-first order.

    Boolean (True = attend) for SDPA; with ``additive_dtype``, 0 / the dtype's minimum, which eager
    attention adds to its scores. Padding positions carry ``end = position + 1``: they see only
    themselves (no empty softmax rows) and nothing sees them.
    """
    t = end.shape[1]
    idx = torch.arange(t, device=end.device)
    allowed = (idx[None, None, :] <= idx[None, :, None]) & (idx[None, :, None] < end[:, None, :])  # (B, T, T)
    allowed = allowed[:, None]  # (B, 1, T, T)
    if additive_dtype is None:
        return allowed
    return torch.zeros(allowed.shape, dtype=additive_dtype, device=end.device).masked_fill(
        ~allowed, torch.finfo(additive_dtype).min)


def _attention_kind(split: _SplitModel) -> str | None:
    """The attention implementation the body runs (the custom-head wrapper: its body's)."""
    for module in (split.body, split.model):
        impl = getattr(getattr(module, "config", None), "_attn_implementation", None)
        if impl is not None:
            return impl
    return None


def _score_forest(split: _SplitModel, forest: PrefixForest, opts: ScoringOptions, pad_id: int,
                  n_requests: int, desc: str = "scoring") -> tuple[np.ndarray, np.ndarray]:
    """(R,) summed log-probability and number of scored tokens of every request of ``forest``."""
    pair_lp = _forest_pair_logprob(split, forest, opts.token_budget, opts.temperature, pad_id, opts.progress, desc)
    logprob = np.bincount(forest.owner, weights=pair_lp[forest.read], minlength=n_requests)
    return logprob, np.bincount(forest.owner, minlength=n_requests).astype(np.int64)


@torch.no_grad()
def _forest_pair_logprob(split: _SplitModel, forest: PrefixForest, token_budget: int, temperature: float,
                         pad_id: int, progress: bool = False, desc: str = "scoring") -> np.ndarray:
    """(U,) log-probability of every distinct (node, target) pair of ``forest``, rows packed into
    batches of at most ``token_budget`` nodes."""
    device = next(split.model.parameters()).device
    dtype = next(split.model.parameters()).dtype
    additive = None if _attention_kind(split) == "sdpa" else dtype
    starts = forest.row_starts
    lengths = np.diff(starts)
    perm = length_order(lengths)
    read_lo = np.searchsorted(forest.read_node, starts[:-1])  # the pairs of row k: read_lo[k]:read_hi[k]
    read_hi = np.searchsorted(forest.read_node, starts[1:])
    pair_lp = np.zeros(len(forest.read_node), dtype=np.float64)
    bar = _progress(len(lengths), progress, desc, "packed row")
    for a, b in pack_batches(lengths[perm], token_budget):
        rows = perm[a:b]
        width = int(lengths[rows[0]])
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)  # (B, T)
        pos = np.zeros((len(rows), width), dtype=np.int64)  # (B, T)
        end = np.tile(np.arange(1, width + 1, dtype=np.int64), (len(rows), 1))  # (B, T): pads see themselves
        pair_parts, batch_row, col = [], [], []
        for k, row in enumerate(rows):
            s, e = int(starts[row]), int(starts[row + 1])
            ids[k, : e - s] = forest.tokens[s:e]
            pos[k, : e - s] = forest.depth[s:e]
            end[k, : e - s] = forest.end[s:e] - s
            pairs = np.arange(read_lo[row], read_hi[row])
            pair_parts.append(pairs)
            batch_row.append(np.full(len(pairs), k, dtype=np.int64))
            col.append(forest.read_node[pairs] - s)
        order = np.argsort(np.concatenate(pair_parts), kind="stable")  # by pair, hence by node
        pairs = np.concatenate(pair_parts)[order]
        batch_row, col = np.concatenate(batch_row)[order], np.concatenate(col)[order]
        end_t = torch.from_numpy(end).to(device)
        hidden = split.hidden(torch.from_numpy(ids).to(device), tree_mask(end_t, additive),
                              torch.from_numpy(pos).to(device))  # (B, T, H)
        # a node that predicts several targets (where the options of an item diverge) is one head row
        _, first, row_of = np.unique(forest.read_node[pairs], return_index=True, return_inverse=True)
        picked = hidden[torch.from_numpy(batch_row[first]).to(device),
                        torch.from_numpy(col[first]).to(device)]  # (U, H): the read nodes only
        targets = torch.from_numpy(forest.read_target[pairs]).to(device)
        pair_lp[pairs] = _rows_logprob(split, picked, targets, temperature, row_of.reshape(-1)).double().cpu().numpy()
        bar.update(b - a)
    bar.close()
    return pair_lp


def _mask_sets(r: Request, variant: str) -> list[tuple[int, tuple[int, ...]]]:
    """(scored position, positions to mask) for each masked copy of one request."""
    if r.premasked:
        return [(p, ()) for p in r.scored]
    out = []
    for p in r.scored:
        if variant == "within_word_l2r" and r.words is not None and r.words[p] is not None:
            # Kauf & Ivanova (2023): also hide the later pieces of the same word (left-to-right).
            later = tuple(q for q in range(p + 1, len(r.ids)) if r.words[q] == r.words[p])
            out.append((p, (p, *later)))
        else:
            out.append((p, (p,)))
    return out


def _masked_rows(reqs: list[Request], perm: np.ndarray, backend: str, variant: str):
    """Every masked copy, in sorted request order, as flat arrays.

    Returns (owner, read, target, mask_row, mask_pos): ``owner[j]`` is the sorted index of the
    request copy j belongs to, ``read[j]`` the position whose prediction is read, ``target[j]`` the
    token it must predict; copy ``mask_row[k]`` gets a mask token at ``mask_pos[k]`` (sorted by row).
    """
    owner, read, target, mask_row, mask_pos = [], [], [], [], []
    for s, i in enumerate(perm):
        r = reqs[i]
        targets = r.targets or tuple(r.ids[p] for p in r.scored)
        for (p, masked), t in zip(_mask_sets(r, variant), targets):
            at = p - 1 if backend == "mntp" else p  # mntp: token p is predicted at p-1 (GPT-BERT)
            if at < 0:
                continue
            mask_row += [len(owner)] * len(masked)
            mask_pos += masked
            owner.append(s)
            read.append(at)
            target.append(t)
    return tuple(np.asarray(x, dtype=np.int64) for x in (owner, read, target, mask_row, mask_pos))


@torch.inference_mode()
def _score_masked(split: _SplitModel, reqs: list[Request], backend: str, opts: ScoringOptions, mask_id: int | None,
                  desc: str) -> tuple[np.ndarray, np.ndarray]:
    """(R,) summed pseudo-log-probability and number of scored tokens of every request (rows of one
    length per batch: no padding)."""
    if mask_id is None:
        raise InputError("masked scoring needs a mask token but the tokenizer has none; use --backend causal")
    device = next(split.model.parameters()).device
    lengths = np.asarray([len(r.ids) for r in reqs], dtype=np.int64)
    perm = length_order(lengths)
    owner, read, target, mask_row, mask_pos = _masked_rows(reqs, perm, backend, opts.pll_variant)
    row_len = lengths[perm][owner]  # (N,) non-increasing: copies of a sentence share its length
    shortcut = _EncoderShortcut(split) if split.split else None
    sorted_lp = torch.zeros(len(reqs), dtype=torch.float64)
    sorted_n = np.bincount(owner, minlength=len(reqs)).astype(np.int64)
    bar = _progress(len(owner), opts.progress, desc, "masked copy")
    by_length: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # length -> (first sorted index, ids of those requests)
    for start, stop in pack_equal_batches(row_len, opts.token_budget):
        width = int(row_len[start])
        if width not in by_length:  # the requests of this length are contiguous in sorted order
            first = int(np.searchsorted(-lengths[perm], -width, side="left"))
            count = int((lengths == width).sum())
            by_length[width] = (first, np.asarray([reqs[i].ids for i in perm[first:first + count]], dtype=np.int64))
        first, ids_of = by_length[width]
        ids = ids_of[owner[start:stop] - first]  # (B, T), a copy of each owner's ids
        a, b = np.searchsorted(mask_row, [start, stop])
        ids[mask_row[a:b] - start, mask_pos[a:b]] = mask_id
        ids_t = torch.from_numpy(ids).to(device)  # (B, T)
        read_t = torch.from_numpy(read[start:stop]).to(device)  # (B,)
        if shortcut is not None and shortcut.ok:
            picked = shortcut.hidden_at(ids_t, read_t)  # (B, H)
        else:
            hidden = split.hidden(ids_t, torch.ones_like(ids_t))  # (B, T, H or V)
            picked = hidden[torch.arange(stop - start, device=device), read_t]  # (B, H): only the read positions
        lp = _rows_logprob(split, picked, torch.from_numpy(target[start:stop]).to(device), opts.temperature)
        sorted_lp.index_add_(0, torch.from_numpy(owner[start:stop]), lp.double().cpu())
        bar.update(stop - start)
    bar.close()
    inv = invert_permutation(perm)
    return sorted_lp.numpy()[inv], sorted_n[inv]


def sentence_scores(model: Any, tokenizer: Any, items: Sequence[tuple[str, str]], backend: str,
                    opts: ScoringOptions | None = None) -> np.ndarray:
    """Convenience: build requests for ``(context, completion)`` pairs and return reduced scores."""
    opts = opts or ScoringOptions()
    requests = build_requests(tokenizer, items, backend, opts.bos_rule)
    scores = score_requests(model, requests, backend, opts, pad_id=pad_id_of(tokenizer), mask_id=tokenizer.mask_token_id)
    return scores.reduce(opts.reduction)


def max_positions(model: Any) -> int | None:
    """Longest input the model's position table allows (None: no fixed limit known)."""
    cfg = model.config
    limit = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
    if limit and getattr(cfg, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # RoBERTa offsets its positions by padding_idx + 1
    return int(limit) if limit else None


def pad_id_of(tokenizer: Any) -> int:
    """Padding id: pad, else EOS, else CLS, else 0 (padding is masked out, so it never changes scores)."""
    for t in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.cls_token_id):
        if t is not None:
            return int(t)
    return 0
