"""The training objective as one module: (input ids, labels) -> summed cross-entropy.

:func:`loss_module` builds what the training loop compiles and wraps in DistributedDataParallel, so
``torch.compile`` sees the model *and* the loss (the float32 upcast and log-softmax of the
logits fuse into the graph instead of materialising a float copy of the (B, T, V) logits).

For masked objectives only about 15% of positions carry a label, so the vocabulary projection
(the largest single matmul of a small model) is applied to those rows alone: the body runs on
the whole batch, the LM head on the selected rows. The split into body and head is verified
once against the model's own forward on a probe batch; a model it does not fit keeps the plain
full-logits path. The loss is the same sum either way; only the work differs.
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

