"""Held-out loss and perplexity: the training loop's validation and ``python -m babylm test``.

Causal models are scored on every next token of each block; masked models on a fixed 15%
masking of each block (the mask of batch b is seeded by (seed, b), so every evaluation of a run
scores the same positions and the numbers are comparable across steps and resumes).
"""

from __future__ import annotations

import dataclasses
import math

from babylm.config import option
from babylm.errors import InputError, UsageError


def evaluate(model, blocks, targets, batch_size: int, device: str, precision: str = "fp32", max_batches: int = 0,
             seed: int = 42) -> dict[str, float]:
    """Mean loss and perplexity of ``model`` over the packed ``blocks`` (up to ``max_batches`` batches).

    Args:
        targets: a :class:`babylm.objective.Targets` for the model's objective.
        precision: fp32, bf16 or fp16 (autocast); the loss itself is float32.
    """
    import torch

    from babylm.data import column
    from babylm.objective import loss_module
    from babylm.runtime import autocast

    ids_all = torch.as_tensor(column(blocks, "input_ids"), dtype=torch.long)  # (N, T)
    loss_of = loss_module(model, targets.objective, split_head=False)  # full logits: the reference path
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    n_batches = math.ceil(len(ids_all) / batch_size)
    if max_batches:
        n_batches = min(n_batches, max_batches)
    with torch.no_grad(), autocast(device, precision):
        for b in range(n_batches):
            ids = ids_all[b * batch_size:(b + 1) * batch_size]
            # Fixed per-batch mask seeds: every evaluation scores the same masked positions.
            inputs, labels, n = targets.make(ids, mask_seed=seed + 7919 * (b + 1))
            total += float(loss_of(inputs.to(device), labels.to(device)))
            count += n
    model.train(was_training)
    loss = total / max(1, count)
    return {"val/loss": loss, "val/ppl": math.exp(min(loss, 50.0))}


@dataclasses.dataclass
class TestConfig:
    model: str = option("", "saved model folder (e.g. runs/gpt2_tiny/final or a chck_* folder)")
    corpus: str = option("embedded", "corpus holding the test files")
    files: list[str] = option(["test"], "test files: names, globs or groups")
    block_size: int = option(128, "tokens per sequence")
    batch_size: int = option(32, "sequences per batch")
    objective: str = option("auto", "clm, mlm or auto (the model's own)", choices=("auto", "clm", "mlm"))
    seed: int = option(42, "seed of the mlm masks")
    device: str = option("auto", "auto, cpu, cuda")
    trust_remote_code: bool = option(False, "allow models with their own code (custom head) to run it")

    __test__ = False  # not a pytest test class, despite the name

    def validate(self) -> None:
        if not self.model:
            raise UsageError("--model is required: a saved model folder")


def test_model(cfg: TestConfig) -> dict[str, float]:
    """Loss and perplexity of a saved model on test files (``python -m babylm test``)."""
    from babylm import models
    from babylm.challenge import model_kind
    from babylm.corpus import load_corpus
    from babylm.data import column, pack_corpus
    from babylm.objective import Targets
    from babylm.runtime import pick_device
    from babylm.tokenizer import load_tokenizer

    device = pick_device(cfg.device)
    model = models.load_model(cfg.model, cfg.trust_remote_code).to(device)
    tokenizer = load_tokenizer(cfg.model)
    models.check_fits(model, tokenizer, cfg.block_size)
    corpus = load_corpus(cfg.corpus, files=cfg.files or None)
    blocks = pack_corpus(corpus, tokenizer, cfg.block_size)
    if len(blocks) == 0:
        raise InputError(f"{cfg.corpus} files {cfg.files}: no full block of {cfg.block_size} tokens to test on")
    objective = cfg.objective if cfg.objective != "auto" else ("clm" if model_kind(model) == "causal" else "mlm")
    metrics = evaluate(model, blocks, Targets(tokenizer, objective), cfg.batch_size, device, seed=cfg.seed)
    return {"test/loss": metrics["val/loss"], "test/ppl": metrics["val/ppl"], "blocks": len(blocks),
            "words": int(column(blocks, "n_words").sum())}
