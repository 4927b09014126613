"""Held-out loss and perplexity: the training loop's validation and ``python -m babylm test``.

Causal models are scored on every next token of each block; masked models on a fixed 15%
masking of each block (the mask of batch b is seeded by (seed, b), so every evaluation of a run
scores the same positions and the numbers are comparable across steps and resumes). GPT-BERT
(the hybrid objective) is scored by masked next-token prediction on the same fixed 15% masks,
its training objective on most steps at the end of training, and also causally on every next token
(``causal_loss``): the two ways the official pipeline can score it.
"""

from __future__ import annotations

import dataclasses
import math

from babylm import models
from babylm.config import option
from babylm.corpus import load_corpus
from babylm.data import column, pack_corpus
from babylm.errors import InputError, UsageError
from babylm.runtime import autocast, pick_device
from babylm.tokenizer import load_tokenizer


def evaluate(model, blocks, targets, batch_size: int, device: str, precision: str = "fp32", max_batches: int = 0,
             seed: int = 42) -> dict[str, float]:
    """Mean loss and perplexity of ``model`` over the packed ``blocks`` (up to ``max_batches`` batches).

    Args:
        targets: a :class:`babylm.objective.Targets` for the model's objective.
        precision: fp32, bf16 or fp16 (autocast); the loss itself is float32.
    """
    import torch

    from babylm.objective import CAUSAL, MNTP, count_predicted, hybrid_loss, loss_module  # torch: see test_model

    ids_all = torch.as_tensor(column(blocks, "input_ids"), dtype=torch.long)  # (N, T)
    hybrid = targets.objective == "hybrid"
    if hybrid:
        scored = hybrid_loss(model, z_loss=0.0)  # cross-entropy only: comparable with any other model's

        def loss_of(inputs, labels):
            return scored(inputs, labels, MNTP)
    else:
        loss_of = loss_module(model, targets.objective, split_head=False)  # full logits: the reference path
    total, count = 0.0, 0
    causal_total, causal_count = 0.0, 0
    was_training = model.training
    model.eval()
    n_batches = math.ceil(len(ids_all) / batch_size)
    if max_batches:
        n_batches = min(n_batches, max_batches)
    with torch.no_grad(), autocast(device, precision):
        for b in range(n_batches):
            ids = ids_all[b * batch_size:(b + 1) * batch_size]
            inputs, labels, n = validation_targets(targets, ids, b, seed)
            total += float(loss_of(inputs.to(device), labels.to(device)))
            count += n
            if hybrid:
                causal_total += float(scored(ids.to(device), ids.to(device), CAUSAL))
                causal_count += count_predicted(ids)
    model.train(was_training)
    loss = total / max(1, count)
    out = {"val/loss": loss, "val/ppl": ppl(loss)}
    if hybrid:
        causal = causal_total / max(1, causal_count)
        out.update({"val/causal_loss": causal, "val/causal_ppl": ppl(causal)})
    return out


def ppl(loss: float) -> float:
    """Perplexity of a mean loss in nats, capped at exp(50) so a diverged run still logs a number."""
    return math.exp(min(loss, 50.0))


def validation_targets(targets, ids, batch: int, seed: int):
    """(inputs, labels, n_targets) of validation batch number ``batch`` (0-based).

    Fixed per-batch mask seeds: every evaluation scores the same masked positions. The hybrid
    objective is validated by masked next-token prediction at the final training mask rate (15%).
    Both training engines validate on these targets.
    """
    from babylm.objective import MASK_RATE_END, MNTP  # torch: see test_model

    if targets.objective == "hybrid":
        return targets.make(ids, seed + 7919 * (batch + 1), MNTP, MASK_RATE_END)
    return targets.make(ids, mask_seed=seed + 7919 * (batch + 1))


@dataclasses.dataclass
class TestConfig:
    model: str = option("", "saved model folder (e.g. runs/gpt2_tiny/final or a chck_* folder)")
    corpus: str = option("embedded", "corpus holding the test files")
    files: list[str] = option(["test"], "test files: names, globs or groups")
    block_size: int = option(128, "tokens per sequence", ge=1)
    batch_size: int = option(32, "sequences per batch", ge=1)
    objective: str = option("auto", "clm, mlm, hybrid (gpt-bert: masked next-token prediction at 15%, and causal) "
                                    "or auto (the model's own)", choices=("auto", "clm", "mlm", "hybrid"))
    seed: int = option(42, "seed of the mlm and hybrid masks", ge=0)
    device: str = option("auto", "auto, cpu, cuda")
    trust_remote_code: bool = option(False, "allow models with their own code (custom head) to run it")

    __test__ = False  # not a pytest test class, despite the name

    def validate(self) -> None:
        if not self.model:
            raise UsageError("--model is required: a saved model folder")


def test_model(cfg: TestConfig) -> dict[str, float]:
    """Loss and perplexity of a saved model on test files (``python -m babylm test``)."""
    from babylm.objective import Targets  # torch: loaded when the command runs, not for --help

    device = pick_device(cfg.device)
    model = models.load_model(cfg.model, cfg.trust_remote_code).to(device)
    tokenizer = load_tokenizer(cfg.model)
    models.check_fits(model, tokenizer, cfg.block_size)
    corpus = load_corpus(cfg.corpus, files=cfg.files or None)
    blocks = pack_corpus(corpus, tokenizer, cfg.block_size)
    if len(blocks) == 0:
        raise InputError(f"{cfg.corpus} files {cfg.files}: no full block of {cfg.block_size} tokens to test on")
    own = models.objective_of_model(model)
    if own == "hybrid":
        if cfg.objective not in ("auto", "hybrid"):
            raise UsageError(f"--objective {cfg.objective}: a gpt-bert model is tested with the hybrid objective "
                             "(masked next-token prediction, and causal)")
        objective = "hybrid"
    elif cfg.objective == "hybrid":
        raise UsageError("--objective hybrid needs a gpt-bert model")
    else:
        objective = cfg.objective if cfg.objective != "auto" else own
    metrics = evaluate(model, blocks, Targets(tokenizer, objective), cfg.batch_size, device, seed=cfg.seed)
    out = {f"test/{k[4:]}": v for k, v in metrics.items()}  # val/loss -> test/loss, ...
    return {**out, "blocks": len(blocks), "words": int(column(blocks, "n_words").sum())}
