"""The training objective as one module: (input ids, labels) -> summed cross-entropy.

:func:`loss_module` builds what the training loop compiles and wraps in DistributedDataParallel, so
``torch.compile`` sees the model *and* the loss (the float32 upcast and log-softmax of the
logits fuse into the graph instead of materialising a float copy of the (B, T, V) logits).

For masked objectives only about 15% of positions carry a label, so the vocabulary projection
(the largest single matmul of a small model) is applied to those rows alone: the body runs on
the whole batch, the LM head on the selected rows. The split into body and head is verified
once against the model's own forward on a probe batch; a model it does not fit keeps the plain
full-logits path. The loss is the same sum either way; only the work differs.

The targets come from here too: :class:`Targets` turns a batch of ids into (inputs, labels) for
the objective, with BERT-style masking (:func:`mask_tokens`) whose random draws come from a
generator seeded per step, so a resumed run masks exactly as the uninterrupted one did.

GPT-BERT (``babylm.gpt_bert``) trains one model on two objectives, chosen per optimizer step:
:func:`hybrid_mode` says which, :class:`HybridLoss` computes it (see its docstring for what the
training loop does each step).
"""

from __future__ import annotations

import dataclasses
import math
import random

import torch
import torch.nn.functional as F
from torch import nn

from babylm.errors import InputError


def body_and_head(model: nn.Module) -> tuple[str, str] | None:
    """Names of the (body, head) children of a HF LM whose head maps hidden rows to logits.

    ``None`` when the model is not made of exactly a base model plus one head that together hold
    every parameter, or when ``head(body(ids)[0])`` does not reproduce ``model(ids).logits`` on a
    probe batch (one row padded). Used by training (masked rows only) and by the scorer (read
    rows only).
    """
    prefix = getattr(model, "base_model_prefix", "")
    children = dict(model.named_children())
    heads = [name for name in children if name != prefix]
    if prefix not in children or len(heads) != 1:
        return None
    body, head = children[prefix], children[heads[0]]
    if {id(p) for p in model.parameters()} != {id(p) for m in (body, head) for p in m.parameters()}:
        return None  # parameters held outside the two children would be left out
    device = next(model.parameters()).device
    vocab = model.get_input_embeddings().weight.shape[0]
    ids = torch.randint(0, vocab, (2, 7), generator=torch.Generator().manual_seed(0)).to(device)  # (2, 7)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    was_training = model.training
    model.eval()  # no dropout: both paths must see the same activations
    try:
        with torch.no_grad():
            full = model(input_ids=ids, attention_mask=mask).logits  # (2, 7, V)
            split = head(body(input_ids=ids, attention_mask=mask)[0])  # (2, 7, V)
    except Exception:  # an architecture the split does not fit: use the plain forward
        return None
    finally:
        model.train(was_training)
    tol = 1e-4 if split.dtype == torch.float32 else 2e-2  # same kernels either way; looser for bf16/fp16 rounding
    same = full.shape == split.shape and torch.allclose(full.float(), split.float(), atol=tol, rtol=tol)
    return (prefix, heads[0]) if same else None


def loss_module(model: nn.Module, objective: str, split_head: bool = True) -> nn.Module:
    """The module whose ``forward(inputs, labels)`` is the summed cross-entropy (float32).

    ``objective`` is ``clm`` (labels are the inputs; position t predicts token t+1) or ``mlm``
    (labels are -100 except at the masked positions); ``hybrid`` gives GPT-BERT's
    :class:`HybridLoss`, whose ``forward`` also takes the step's mode. Two classes, not one with a branch: each
    has its own ``forward`` code, so ``torch.compile`` never checks one kind's guards on the other.
    """
    if objective == "hybrid":
        return hybrid_loss(model)
    split = body_and_head(model) if (objective == "mlm" and split_head) else None
    if split is not None:
        return MaskedRowsLoss(*(getattr(model, name) for name in split))
    return FullLogitsLoss(model, objective)


class FullLogitsLoss(nn.Module):
    """Cross-entropy from the model's own (B, T, V) logits."""

    def __init__(self, model: nn.Module, objective: str):
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self.model(input_ids=inputs).logits  # (B, T, V)
        if self.objective == "clm":
            # Predict token t+1 from tokens <= t. Shift the labels, not the logits: slicing the
            # (B, T, V) logits would copy them (and their gradient) on every step.
            labels = F.pad(labels[:, 1:], (0, 1), value=-100)  # (B, T), last position ignored
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100,
                               reduction="sum")


class MaskedRowsLoss(nn.Module):
    """Masked LM loss with the head applied only to the labelled rows.

    Body and head are this module's own children; together they hold every parameter of the
    model (checked by :func:`body_and_head`), so DDP and the optimizer see the same parameters.
    """

    def __init__(self, body: nn.Module, head: nn.Module):
        super().__init__()
        self.body = body
        self.head = head

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        hidden = self.body(input_ids=inputs)[0]  # (B, T, H)
        keep = labels != -100  # (B, T)
        logits = self.head(hidden[keep])  # (M, V): the projection only where a label is read
        return F.cross_entropy(logits.float(), labels[keep], reduction="sum")


# ----------------------------------------------------------------------------- targets

def mask_tokens(ids: torch.Tensor, gen: torch.Generator, vocab_size: int, mask_id: int, special_ids: list[int],
                prob: float = 0.15, mask_prob: float = 0.8, random_prob: float = 0.1):
    """BERT-style masking of a (B, T) id tensor with generator ``gen``.

    ``prob`` of the non-special tokens are selected; of those, ``mask_prob`` become the mask
    token, ``random_prob`` a random token and the rest stay unchanged (Devlin et al. 2019, 80/10/10).

    Returns:
        (inputs, labels): labels hold the original id at selected positions and -100 elsewhere.
    """
    special = torch.isin(ids, torch.tensor(special_ids, dtype=ids.dtype))  # (B, T)
    draw = torch.rand(ids.shape, generator=gen)  # (B, T) one uniform draw decides select/replace
    kind = torch.rand(ids.shape, generator=gen)  # (B, T) which replacement
    rand_tok = torch.randint(vocab_size, ids.shape, generator=gen, dtype=ids.dtype)  # (B, T)
    selected = (draw < prob) & ~special
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    inputs = ids.clone()
    inputs[selected & (kind < mask_prob)] = mask_id
    use_rand = selected & (kind >= mask_prob) & (kind < mask_prob + random_prob)
    inputs[use_rand] = rand_tok[use_rand]
    return inputs, labels


class Targets:
    """Turns a (G, T) id batch into model inputs, labels and the number of predicted positions.

    For ``hybrid`` (GPT-BERT) the step's ``mode`` and ``mask_rate`` (:class:`HybridPlan`) say what
    to make: causal steps keep the ids as labels, MNTP steps mask at ``mask_rate`` with the same
    80/10/10 replacement; the count is :func:`count_predicted` (position 0 is never read).
    """

    def __init__(self, tokenizer, objective: str, mlm_probability: float = 0.15, mask_replace_prob: float = 0.8,
                 random_replace_prob: float = 0.1):
        self.objective = objective
        self.probs = (mlm_probability, mask_replace_prob, random_replace_prob)
        self.vocab = len(tokenizer)
        self.mask_id = tokenizer.mask_token_id
        # Special tokens are never selected for prediction (unk is an ordinary token here).
        unk = {tokenizer.unk_token_id} if tokenizer.unk_token_id is not None else set()
        self.specials = sorted(set(tokenizer.all_special_ids) - unk)
        if objective in ("mlm", "hybrid") and self.mask_id is None:
            raise InputError(f"the tokenizer has no mask token; the {objective} objective needs one")

    def make(self, ids: torch.Tensor, mask_seed: int, mode: str | None = None, mask_rate: float | None = None):
        """(inputs, labels, n_targets) for a global (G, T) id batch.

        ``mode`` and ``mask_rate`` are the hybrid objective's (ignored otherwise); ``mask_rate``
        None masks at ``mlm_probability``.
        """
        if self.objective == "clm" or (self.objective == "hybrid" and mode == CAUSAL):
            return ids, ids, ids.size(0) * (ids.size(1) - 1)
        gen = torch.Generator().manual_seed(mask_seed)
        prob, replace, rand = self.probs
        if self.objective == "hybrid":
            if mode != MNTP:
                raise ValueError(f"the hybrid objective needs mode {CAUSAL!r} or {MNTP!r}, got {mode!r}")
            inputs, labels = mask_tokens(ids, gen, self.vocab, self.mask_id, self.specials,
                                         prob if mask_rate is None else mask_rate, replace, rand)
            return inputs, labels, count_predicted(labels)
        inputs, labels = mask_tokens(ids, gen, self.vocab, self.mask_id, self.specials, prob, replace, rand)
        return inputs, labels, int((labels != -100).sum())

# ---------------------------------------------------------------------------------------------
# GPT-BERT: causal LM and masked next-token prediction (MNTP) on one model
# ---------------------------------------------------------------------------------------------

CAUSAL, MNTP = "causal", "mntp"
# Published default mix: 1 causal : 15 masked (ltgoslo/gpt-bert pretraining/train_multi_gpu.py,
# hybrid_numerator=15 / hybrid_denominator=16).
CAUSAL_SHARE = 1 / 16
# Mask rate falls linearly from 30% to 15% over training (same script, mask_p_start / mask_p_end).
MASK_RATE_START, MASK_RATE_END = 0.30, 0.15
# Weight of the squared log-partition term (same script, z_loss_weight): keeps logits from drifting.
Z_LOSS = 1e-4


def hybrid_mode(step: int, seed: int, causal_share: float = CAUSAL_SHARE) -> str:
    """``causal`` or ``mntp``: the objective of optimizer step ``step`` (0-based).

    Causal steps are spread evenly: step s is causal when ``s * share + phase`` crosses an
    integer at s + 1, with a phase drawn from ``seed``. Any window of n consecutive steps holds
    floor or ceil of ``n * share`` causal steps (exactly one in every 16 at the default), and the
    answer is a pure function of (step, seed, share), so a resumed run replays the same sequence.

    Why per step and not per row or per GPU: the published code puts 1/16 of the GPUs on the
    causal objective and averages the two mean losses with weights share and 1 - share every
    step. Whole steps of one objective, each normalised by its own predicted tokens, give the
    same expected gradient, need no mixed attention masks inside a batch, and work for any
    batch size, world size and gradient accumulation (every rank and micro-batch of a step
    runs the same graph).
    """
    if not 0.0 <= causal_share <= 1.0:
        raise ValueError(f"causal_share must be in [0, 1], got {causal_share}")
    phase = random.Random(seed).random()
    crossed = math.floor((step + 1) * causal_share + phase) > math.floor(step * causal_share + phase)
    return CAUSAL if crossed else MNTP


def mask_rate_at(step: int, total_steps: int, start: float = MASK_RATE_START, end: float = MASK_RATE_END) -> float:
    """Share of tokens selected for MNTP at ``step``: linear from ``start`` to ``end`` over ``total_steps``."""
    progress = min(1.0, step / max(1, total_steps))
    return start + (end - start) * progress


@dataclasses.dataclass(frozen=True)
class HybridPlan:
    """The objective and MNTP mask rate of every optimizer step of a GPT-BERT run.

    Both training engines ask it, so they train the same step the same way; a pure function of
    the step, so a resumed run continues the same sequence. ``total_steps`` is the run's planned
    length (the learning-rate schedule's), over which the mask rate falls.
    """

    seed: int
    total_steps: int
    causal_share: float = CAUSAL_SHARE

    def at(self, step: int) -> tuple[str, float]:
        """(mode, mask rate) of optimizer step ``step`` (0-based); the rate is unused on causal steps."""
        return hybrid_mode(step, self.seed, self.causal_share), mask_rate_at(step, self.total_steps)


def count_predicted(labels: torch.Tensor) -> int:
    """Number of predicted tokens in a (B, T) label batch, as :class:`HybridLoss` counts them.

    In both modes the label of token t is read at output t-1, so position 0 is never predicted
    (an MNTP mask drawn there is dropped from the loss).
    """
    return int((labels[:, 1:] != -100).sum())


def step_seed(seed: int, step: int) -> int:
    """The seed of optimizer step ``step``'s masks: both engines draw a step's masks from it, so a
    resumed run, another world size or the other engine masks the same tokens."""
    return seed * 1_000_003 + step


def hybrid_loss(model: nn.Module, z_loss: float = Z_LOSS, cls: type | None = None) -> "HybridLoss":
    """The :class:`HybridLoss` (or subclass ``cls``) of a GPT-BERT model (``GPTBertForMaskedLM`` or
    ``GPTBertForCausalLM``)."""
    from babylm.gpt_bert import MODEL_TYPE  # transformers: only for a gpt-bert model

    if getattr(getattr(model, "config", None), "model_type", None) != MODEL_TYPE:
        raise ValueError(f"the hybrid objective needs a gpt-bert model, not {type(model).__name__}")
    split = body_and_head(model)
    if split is None:
        raise ValueError(f"{type(model).__name__}: body and head do not reproduce the model's logits")
    return (cls or HybridLoss)(*(getattr(model, name) for name in split), z_loss=z_loss)


class HybridLoss(nn.Module):
    """Summed GPT-BERT loss of one batch: ``forward(inputs, labels, mode)`` -> float32 scalar.

    ``mode`` is ``causal`` (``inputs`` and ``labels`` are the token ids; causal attention) or
    ``mntp`` (``inputs`` carry the masked ids, ``labels`` the original id at masked positions and
    -100 elsewhere, exactly as ``mask_tokens`` makes them; bidirectional attention). In both the
    label of token t is read at output t-1, and the vocabulary projection runs on those rows
    only. The sum is cross-entropy plus ``z_loss`` times the squared log-partition of each
    predicted row; the loss of a step is this sum over the step's micro-batches divided by
    :func:`count_predicted` of the whole step.

    What the training loop does for a GPT-BERT run, per optimizer step ``step`` of ``total``::

        mode = hybrid_mode(step, seed, causal_share)
        if mode == "causal":
            inputs, labels = ids, ids
        else:
            inputs, labels = mask_tokens(ids, gen, vocab, mask_id, specials, mask_rate_at(step, total))
        n = count_predicted(labels)                       # over the global batch
        loss = train_model(x, y, mode) / n                # per micro-batch, then backward

    ``train_model`` is ``loss_module(model, "hybrid")``, compiled and DDP-wrapped like the other
    objectives (``mode`` is a Python string, so a compiled module holds one graph per mode).
    Validation uses ``mntp`` at the final mask rate with ``z_loss=0`` (:func:`hybrid_loss`).
    """

    def __init__(self, body: nn.Module, head: nn.Module, z_loss: float = Z_LOSS):
        super().__init__()
        self.body = body
        self.head = head
        self.z_loss = z_loss

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor, mode: str) -> torch.Tensor:
        return self.summed(inputs, labels, mode, self.z_loss)

    def summed(self, inputs: torch.Tensor, labels: torch.Tensor, mode: str, z_loss: float) -> torch.Tensor:
        """The summed loss with z-loss weight ``z_loss`` (see the class docstring)."""
        if mode not in (CAUSAL, MNTP):
            raise ValueError(f"mode must be {CAUSAL!r} or {MNTP!r}, got {mode!r}")
        hidden = self.body(input_ids=inputs, causal=mode == CAUSAL)[0]  # (B, T, H)
        target = labels[:, 1:]  # (B, T-1): output t predicts token t+1 in both modes
        keep = target != -100  # (B, T-1)
        logits = self.head(hidden[:, :-1][keep]).float()  # (M, V): the projection only where a label is read
        target = target[keep]  # (M,)
        lse = torch.logsumexp(logits, dim=-1)  # (M,) log-partition, shared by cross-entropy and z-loss
        loss = (lse - logits.gather(1, target[:, None])[:, 0]).sum()
        if z_loss:
            loss = loss + z_loss * lse.pow(2).sum()
        return loss


class TrainerHybridLoss(HybridLoss):
    """:class:`HybridLoss` as the transformers Trainer calls a model (``--engine hf``).

    Called with the collated batch as keywords (``input_ids``, ``labels``, ``mode``) plus the
    Trainer's ``num_items_in_batch``: its count of labels other than -100 over the optimizer step
    (every micro-batch, every rank). The batches carry -100 at position 0, so that count is
    :func:`count_predicted` of the step, and the returned loss is the step's summed loss over its
    predicted tokens exactly as the kit's loop divides it. Declaring ``accepts_loss_kwargs`` tells
    the Trainer the loss is already normalised for gradient accumulation and ranks. In evaluation
    (``eval()``) the z-loss is left out, as the kit's validation leaves it out.
    """

    accepts_loss_kwargs = True

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, mode: str, num_items_in_batch=None,
                **kwargs) -> dict[str, torch.Tensor]:
        total = self.summed(input_ids, labels, mode, self.z_loss if self.training else 0.0)
        n = num_items_in_batch if num_items_in_batch is not None else count_predicted(labels)
        return {"loss": total / n}
