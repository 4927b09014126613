"""Sequence classifiers on top of a pretrained checkpoint, and the loop that fine-tunes them.

Two heads:

* ``official``: the 2025/2026 BabyLM head on ``AutoModel`` hidden states (``finetune/classifier_model.py``
  of babylm-org/babylm-eval, strict/evaluation_pipeline/finetune/classifier_model.py): LayerNorm without affine -> Linear(h, h)
  -> GELU -> LayerNorm without affine -> Dropout -> Linear(h, num_labels), layer-norm eps 1e-5.
* ``stock``: the architecture's own ``AutoModelForSequenceClassification`` (BERT pooler, GPT-2's
  last-non-pad score, ...), as the 2023/2024 pipelines used.

Pooling for the official head. The official code classifies the hidden state at position 0 with
right padding. For a causal model that state has seen only the first token, so every input looks
alike and fine-tuning sticks at the majority class (babylm/evaluation-pipeline-2025 issue #38).
``auto`` therefore pools the first non-padding token of encoders and the last non-padding token of
decoders, located from the attention mask so that left and right padding give the same vector;
with left padding the position ids are rebuilt from the mask, so a left-padded sequence also gets
the same positions as a right-padded one.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from babylm.challenge import model_kind
from babylm.errors import InputError, UsageError
from babylm.integrity import check_local_model, from_pretrained
from babylm.models import register_kit_models
from babylm.runtime import autocast
from eval_export import glue
from eval_export.loading import resolve_model_path

# Models whose embeddings derive positions from the pad id themselves (position = padding_idx + 1 + k);
# passing explicit position ids would shift them, so they are left alone.
_SELF_POSITIONED = ("roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text", "xmod")

# Official head layer-norm epsilon (run.py --classifier_layer_norm_eps default).
_HEAD_LN_EPS = 1e-5


# ----------------------------------------------------------------------------- loading


def load_tokenizer(path: str, revision: str | None, padding_side: str, trust_remote_code: bool):
    """The model's fast tokenizer, padding on ``padding_side``; pad falls back to EOS (as the official code)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise InputError(f"--model {path}: cannot load a tokenizer ({str(exc).splitlines()[0]})") from None
    tok.padding_side = padding_side
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise InputError(f"--model {path}: the tokenizer has neither a pad nor an eos token; add a pad token")
        tok.pad_token = tok.eos_token
    return tok


def _position_limit(config: Any) -> int | None:
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if limit and getattr(config, "model_type", "") in _SELF_POSITIONED:
        limit -= (getattr(config, "pad_token_id", None) or 0) + 1
    return limit


class OfficialHead(nn.Module):
    """The 2025 BabyLM classification head (see module docstring)."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.LayerNorm(hidden_size, _HEAD_LN_EPS, elementwise_affine=False),
            nn.Linear(hidden_size, hidden_size),
            nn.GELU(),
            nn.LayerNorm(hidden_size, _HEAD_LN_EPS, elementwise_affine=False),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, num_labels),
        )

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.layers(pooled)  # (B, H) -> (B, num_labels)


def pool_positions(attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Index of the first or last non-padding token of each row, whatever the padding side.

    ``attention_mask`` is (B, S) with 1 on real tokens; returns (B,) long indices.
    """
    mask = attention_mask.long()
    if pooling == "first":
        return mask.argmax(dim=1)  # argmax returns the first maximal index
    if pooling == "last":
        return mask.size(1) - 1 - mask.flip(1).argmax(dim=1)
    raise ValueError(f"unknown pooling {pooling!r}")


def _forward_kwargs(module: nn.Module) -> set[str]:
    return set(inspect.signature(module.forward).parameters)


def _model_inputs(backbone: nn.Module, batch: dict[str, torch.Tensor], left_padded: bool,
                  official: bool = False) -> dict[str, torch.Tensor]:
    """Keyword arguments for the backbone: ids, mask, token types, and position ids under left padding.

    Segment ids go only to models with a segment embedding (``type_vocab_size`` > 1, e.g. BERT):
    GPT-2 would look them up in its word embeddings. The official code passes ids and mask only.
    """
    accepted = _forward_kwargs(backbone)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    segments = getattr(backbone.config, "type_vocab_size", 0) or 0
    if not official and segments > 1 and "token_type_ids" in batch and "token_type_ids" in accepted:
        inputs["token_type_ids"] = batch["token_type_ids"]
    model_type = getattr(backbone.config, "model_type", "")
    # (the official code passes ids and mask only: under left padding its positions start at the pads)
    if left_padded and not official and "position_ids" in accepted and model_type not in _SELF_POSITIONED:
        # Real tokens get positions 0, 1, ... as they would with right padding.
        inputs["position_ids"] = (batch["attention_mask"].long().cumsum(dim=1) - 1).clamp(min=0)  # (B, S)
    return inputs


class OfficialClassifier(nn.Module):
    """``AutoModel`` backbone + pooled token + :class:`OfficialHead`."""

    def __init__(self, backbone: nn.Module, num_labels: int, dropout: float, pooling: str, official: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.hidden_size = int(backbone.config.hidden_size)
        self.head = OfficialHead(self.hidden_size, num_labels, dropout)
        self.pooling = pooling
        self.official = official
        self.left_padded = False  # set by the trainer from the tokenizer's padding side

    def hidden_states(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Last-layer hidden states (B, S, H) of the backbone."""
        out = self.backbone(**_model_inputs(self.backbone, batch, self.left_padded, self.official))
        if isinstance(out, tuple):
            return out[0]
        # The official code takes ``logits`` first when the output has them (it expects AutoModel
        # to return hidden states, so such "logits" must be hidden-sized); we prefer the documented
        # hidden-state fields and accept hidden-sized logits only as a fallback, except under --official.
        names = ("logits", "last_hidden_state") if self.official else ("last_hidden_state", "logits")
        for name in names:
            value = getattr(out, name, None)
            if value is not None:
                if value.size(-1) != self.hidden_size:
                    raise InputError(f"AutoModel output field {name!r} has size {value.size(-1)}, not the hidden size "
                                     f"{self.hidden_size}: the model returns LM logits; its AutoModel mapping must "
                                     "return hidden states (or use --head stock)")
                return value
        if getattr(out, "hidden_states", None) is not None:
            return out.hidden_states[-1]
        raise InputError(f"AutoModel output {type(out).__name__} has no hidden states (last_hidden_state)")

    def pooled(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The hidden vector (B, H) the head classifies."""
        states = self.hidden_states(batch)  # (B, S, H)
        if self.official:  # classifier_model.py: position 0 (2025), or with --take_final the last position (2026)
            return states[:, -1] if self.pooling == "final" else states[:, 0]
        index = pool_positions(batch["attention_mask"], self.pooling)  # (B,)
        return states[torch.arange(states.size(0), device=states.device), index]  # (B, H)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.pooled(batch))  # (B, num_labels)


class StockClassifier(nn.Module):
    """The architecture's own ``AutoModelForSequenceClassification``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.left_padded = False

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**_model_inputs(self.model, batch, self.left_padded)).logits  # (B, num_labels)


@dataclasses.dataclass
class Backbone:
    """What :func:`build_classifier` needs to build a fresh classifier for each task."""

    path: str
    revision: str | None
    config: Any
    tokenizer: Any
    decoder: bool
    max_length: int

    @property
    def segments(self) -> bool:
        """Whether the model has a segment embedding (BERT: type_vocab_size 2) to feed pair segment ids."""
        return (getattr(self.config, "type_vocab_size", 0) or 0) > 1


def load_backbone(model: str, revision: str, padding_side: str, max_length: int,
                  trust_remote_code: bool = False) -> Backbone:
    """Resolve the checkpoint, read its config and tokenizer, and fix the usable sequence length."""
    from transformers import AutoConfig


    register_kit_models()  # the kit's own architectures load from the installed package, not remote code
    path, hub_revision = resolve_model_path(model, revision)
    try:
        config = AutoConfig.from_pretrained(path, revision=hub_revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise InputError(f"--model {model}: cannot load a model config ({str(exc).splitlines()[0]})") from None
    if getattr(config, "is_encoder_decoder", False):
        raise InputError(f"--model {model}: encoder-decoder models are not supported by finetune yet")
    if getattr(config, "hidden_size", None) is None:
        raise InputError(f"--model {model}: the config has no hidden_size, which the classification head needs")
    if model_kind(config) is None:  # checked before anything trains: a vision or speech model fails late otherwise
        raise InputError(f"--model {model}: not a text model (model_type {getattr(config, 'model_type', '?')!r}, "
                         f"architectures {getattr(config, 'architectures', None)}); finetune needs a causal or masked "
                         "language model")
    if hub_revision is None and Path(path).is_dir():
        check_local_model(Path(path))  # the policy of every loader: verified files, safetensors weights
    tokenizer = load_tokenizer(path, hub_revision, padding_side, trust_remote_code)
    limit = _position_limit(config)
    return Backbone(path, hub_revision, config, tokenizer, model_kind(config) == "causal",
                    min(max_length, limit) if limit else max_length)


def build_classifier(backbone: Backbone, num_labels: int, head: str, pooling: str, dropout: float,
                     official: bool, trust_remote_code: bool = False) -> nn.Module:
    """A fresh classifier (pretrained weights + newly initialised head) for one task."""
    from transformers.utils import logging as hf_logging

    # The load report would list the new head (and BERT's unused pooler) as missing weights on
    # every task; that is expected here, so only errors are shown while loading.
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return _build_classifier(backbone, num_labels, head, pooling, dropout, official, trust_remote_code)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _build_classifier(backbone: Backbone, num_labels: int, head: str, pooling: str, dropout: float,
                      official: bool, trust_remote_code: bool) -> nn.Module:
    from transformers import AutoModel, AutoModelForSequenceClassification

    common = {"revision": backbone.revision, "trust_remote_code": trust_remote_code, "dtype": torch.float32}
    if head == "stock":
        extra = {"classifier_dropout": dropout} if hasattr(backbone.config, "classifier_dropout") else {}
        try:
            model = from_pretrained(AutoModelForSequenceClassification, backbone.path, num_labels=num_labels,
                                    **extra, **common)
        except ValueError as exc:
            raise UsageError(f"--head stock: {backbone.config.model_type} has no AutoModelForSequenceClassification "
                             f"({str(exc).splitlines()[0][:120]}); use --head official") from None
        model.config.pad_token_id = backbone.tokenizer.pad_token_id  # GPT-2 style heads find the last non-pad
        classifier: nn.Module = StockClassifier(model)
    else:
        model = from_pretrained(AutoModel, backbone.path, **common)
        if pooling == "auto":
            pooling = "last" if backbone.decoder else "first"
        classifier = OfficialClassifier(model, num_labels, dropout, pooling, official)
    classifier.left_padded = backbone.tokenizer.padding_side == "left"
    return classifier


# ----------------------------------------------------------------------------- batches


def encode_pairs(tokenizer: Any, pairs: list[tuple[str, str]], max_length: int,
                 segments: bool = False) -> list[dict[str, list[int]]]:
    """Tokenise text pairs once (truncated to ``max_length``); returns one dict of id lists per pair.

    With ``segments`` the segment ids of the tokenizer's pair template are kept as ``token_type_ids``
    (transformers 5 tokenizers leave them out unless asked).
    """
    out: list[dict[str, list[int]]] = []
    step = 1000
    for start in range(0, len(pairs), step):
        chunk = pairs[start:start + step]
        enc = tokenizer([a for a, _ in chunk], [b for _, b in chunk], truncation=True, max_length=max_length,
                        return_token_type_ids=segments)
        keys = [k for k in ("input_ids", "token_type_ids") if k in enc]
        for i in range(len(chunk)):
            out.append({k: enc[k][i] for k in keys})
    if any(not e["input_ids"] for e in out):
        raise InputError("an example tokenised to zero tokens; check the tokenizer and the data")
    return out


def collate(encodings: list[dict[str, list[int]]], pad_id: int, left: bool) -> dict[str, torch.Tensor]:
    """Pad a list of encodings into (B, S) tensors on the left or the right."""
    width = max(len(e["input_ids"]) for e in encodings)
    batch: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": []}
    with_types = "token_type_ids" in encodings[0]
    if with_types:
        batch["token_type_ids"] = []
    for e in encodings:
        gap = width - len(e["input_ids"])
        rows = {"input_ids": (e["input_ids"], pad_id), "attention_mask": ([1] * len(e["input_ids"]), 0)}
        if with_types:
            rows["token_type_ids"] = (e["token_type_ids"], 0)
        for key, (values, fill) in rows.items():
            batch[key].append([fill] * gap + values if left else values + [fill] * gap)
    return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


# ----------------------------------------------------------------------------- training


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_factor: float) -> float:
    """Official 2025 schedule: linear warm-up from 0, then cosine decay to ``min_factor`` x lr."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@dataclasses.dataclass
class TrainSettings:
    """Hyper-parameters of one task's fine-tuning run (defaults: the official 2025 values)."""

    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int = 64
    lr: float = 3e-5
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup: float = 0.06
    min_lr_factor: float = 0.1
    seed: int = 42
    device: str = "cpu"
    bf16: bool = False
    best_metric: str = "accuracy"
    num_labels: int = 2
    progress: bool = True
    label: str = ""  # progress-bar prefix (the task name)
    grad_accum: int = 1  # micro-batches per optimizer step (batch_size // grad_accum rows each)
    divide_loss: bool = True  # 2026: each micro-batch's loss / grad_accum; 2025: not divided
    # stop after this many epochs without a gain over the best of more than ``patience_threshold``
    # (the multilingual track's EarlyStoppingCallback(patience, threshold 0.001)); None: every epoch
    patience: int | None = None
    patience_threshold: float = 0.0


@dataclasses.dataclass
class FitResult:
    predictions: list[int]  # the best epoch's predictions on the validation file, in file order
    metrics: dict[str, float]  # the best epoch's accuracy, f1, mcc
    best_epoch: int  # 1-based
    history: list[dict[str, Any]]  # per epoch: loss, metrics, seconds
    steps: int


@torch.no_grad()
def predict_logits(model: nn.Module, encodings: list[dict[str, list[int]]], pad_id: int, left: bool,
                   batch_size: int, device: str, bf16: bool = False) -> torch.Tensor:
    """Float32 logits (N, L) for ``encodings`` in their given order.

    Batches are formed by descending length (little padding, largest batch first) and the
    original order is restored at the end.
    """
    model.eval()
    order = sorted(range(len(encodings)), key=lambda i: (-len(encodings[i]["input_ids"]), i))
    chunks: list[torch.Tensor] = []
    for start in range(0, len(order), batch_size):
        batch = collate([encodings[i] for i in order[start:start + batch_size]], pad_id, left)
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(device, "bf16" if bf16 else "fp32"):
            chunks.append(model(batch).float().cpu())  # (b, L)
    sorted_logits = torch.cat(chunks)  # (N, L) in length order
    logits = torch.empty_like(sorted_logits)
    logits[torch.tensor(order)] = sorted_logits  # inverse permutation
    return logits


def backward_batch(model: nn.Module, micro_batches: list[tuple[dict[str, torch.Tensor], torch.Tensor]],
                   settings: TrainSettings) -> float:
    """Forward and backward passes of one optimizer step's micro-batches (gradients add up in ``.grad``);
    returns the mean of their losses.

    2026 rules (``divide_loss``): each micro-batch's mean loss is divided by their number, so the summed
    gradient is the gradient of the whole batch's mean loss (babylm-eval 3d57ddc, finetune/trainer.py,
    commit 02b56cb); 2025: not divided, a gradient as many times larger as there are micro-batches."""
    total = 0.0
    for batch, target in micro_batches:  # target: (b,)
        with autocast(settings.device, "bf16" if settings.bf16 else "fp32"):
            logits = model(batch)  # (b, L)
        loss = F.cross_entropy(logits.float(), target)
        (loss / len(micro_batches) if settings.divide_loss else loss).backward()
        total += loss.item()
    return total / len(micro_batches)


def fit(model: nn.Module, train: list[dict[str, list[int]]], train_labels: list[int],
        valid: list[dict[str, list[int]]], valid_labels: list[int], pad_id: int, left: bool,
        settings: TrainSettings, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> FitResult:
    """Fine-tune ``model``, evaluating on ``valid`` after every epoch; keep the best epoch's predictions.

    As in the official trainer: AdamW on all parameters, shuffled batches with the last partial
    batch dropped, one scheduler step per batch, best epoch by ``settings.best_metric`` (strictly
    better replaces). The validation file is also the prediction file, so the best epoch's
    validation predictions are the predictions.
    """
    device = settings.device
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=settings.betas, eps=settings.eps,
                                  weight_decay=settings.weight_decay)
    # drop_last as the official DataLoader, unless that would leave no batch at all
    per_epoch = len(train) // settings.batch_size or 1
    total = per_epoch * settings.epochs
    warmup = int(settings.warmup * total)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, warmup, total, settings.min_lr_factor))
    generator = torch.Generator().manual_seed(settings.seed)
    labels_t = torch.tensor(train_labels, dtype=torch.long)

    best: FitResult | None = None
    history: list[dict[str, Any]] = []
    step = gain_epoch = 0
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        model.train()
        perm = torch.randperm(len(train), generator=generator).tolist()
        bar = tqdm(range(per_epoch), desc=f"{settings.label} epoch {epoch}/{settings.epochs}",
                   disable=not settings.progress, leave=False, dynamic_ncols=True)
        loss_sum = 0.0
        micro = settings.batch_size // settings.grad_accum
        for b in bar:
            rows = perm[b * settings.batch_size:(b + 1) * settings.batch_size]
            parts = [rows[i:i + micro] for i in range(0, len(rows), micro)]
            optimizer.zero_grad(set_to_none=True)
            loss = backward_batch(model, [({k: v.to(device) for k, v in collate([train[i] for i in part], pad_id, left).items()},
                                           labels_t[part].to(device)) for part in parts], settings)
            optimizer.step()
            schedule.step()
            step += 1
            loss_sum += loss
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{schedule.get_last_lr()[0]:.2e}")
        bar.close()
        logits = predict_logits(model, valid, pad_id, left, settings.eval_batch_size, device, settings.bf16)
        preds = logits.argmax(dim=-1).tolist()
        metrics = glue.scores(valid_labels, preds, settings.num_labels)
        record = {"epoch": epoch, "train_loss": loss_sum / per_epoch, **metrics,
                  "seconds": round(time.perf_counter() - started, 2)}
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if best is None or metrics[settings.best_metric] > best.metrics[settings.best_metric] + settings.patience_threshold:
            gain_epoch = epoch
        if best is None or metrics[settings.best_metric] > best.metrics[settings.best_metric]:
            best = FitResult(preds, metrics, epoch, history, step)
        if settings.patience is not None and epoch - gain_epoch >= settings.patience:
            break
    assert best is not None
    best.history, best.steps = history, step
    return best
