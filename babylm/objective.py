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
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
    (labels are -100 except at the masked positions). Two classes, not one with a branch: each
    has its own ``forward`` code, so ``torch.compile`` never checks one kind's guards on the other.
    """
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
    """Turns a (G, T) id batch into model inputs, labels and the number of predicted positions."""

    def __init__(self, tokenizer, objective: str, mlm_probability: float = 0.15, mask_replace_prob: float = 0.8,
                 random_replace_prob: float = 0.1):
        from babylm.errors import InputError

        self.objective = objective
        self.probs = (mlm_probability, mask_replace_prob, random_replace_prob)
        self.vocab = len(tokenizer)
        self.mask_id = tokenizer.mask_token_id
        # Special tokens are never selected for prediction (unk is an ordinary token here).
        unk = {tokenizer.unk_token_id} if tokenizer.unk_token_id is not None else set()
        self.specials = sorted(set(tokenizer.all_special_ids) - unk)
        if objective == "mlm" and self.mask_id is None:
            raise InputError("the tokenizer has no mask token; the mlm objective needs one")

    def make(self, ids: torch.Tensor, mask_seed: int):
        """(inputs, labels, n_targets) for a global (G, T) id batch."""
        if self.objective == "clm":
            return ids, ids, ids.size(0) * (ids.size(1) - 1)
        gen = torch.Generator().manual_seed(mask_seed)
        inputs, labels = mask_tokens(ids, gen, self.vocab, self.mask_id, self.specials, *self.probs)
        return inputs, labels, int((labels != -100).sum())
