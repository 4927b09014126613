"""The kit's training loop (``python -m babylm train --engine torch``, the default engine).

Read top to bottom, like nanochat's ``base_train.py``: set-up (data order, loop state fresh or
restored, model + loss compiled and wrapped together), then one ``while`` loop whose iteration
first runs the "once in a while" blocks (log, evaluate, milestones, checkpoint, stop) and then
one fenced training step. A ``last_step`` flag lets the final evaluation and save happen inside
the loop. What the Trainer engine does at the same moments is shared through
:class:`babylm.events.RunEvents` (milestones, best model, patience, the run folder, ``final/``).

The run length is counted in words seen, the challenge's unit: every block carries the number
of words whose text unit starts in it (``n_words``), and a step adds the words of every block
it consumed on every rank. Milestone checkpoints (``chck_1M`` ...) are written when that count
first reaches each official threshold.

Determinism: the data order of each (stage, epoch) is a permutation drawn from a generator
seeded by (seed, stage, epoch) (:class:`babylm.data.BatchPlan`), and the MLM masks of each step
come from a generator seeded by (seed, step) (:class:`babylm.objective.Targets`); neither
depends on global RNG state, so a resumed run sees exactly the batches the uninterrupted run
would have seen. Dropout uses the global torch RNG, which is saved and restored.

GPT-BERT (``--arch gpt-bert``, the hybrid objective): each optimizer step is one objective,
causal or masked next-token prediction, a pure function of (step, seed, ``--causal_share``); MNTP
steps mask at a rate falling from 30% to 15% over the planned steps
(:class:`babylm.objective.HybridPlan`). Every rank and micro-batch of a step runs the same mode,
the loss of each micro-batch is divided by the predicted tokens of the whole global batch, and the
compiled / DDP-wrapped loss module takes the mode as a plain string (one graph per mode).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from typing import Any

import torch

from babylm import checkpoint, distributed
from babylm.data import BatchPlan, column
from babylm.errors import InputError
from babylm.events import LoopState, open_events
from babylm.models import count_parameters
from babylm.objective import HybridPlan, Targets, loss_module, step_seed
from babylm.perplexity import evaluate
from babylm.run import start_run_dir
from babylm.runtime import autocast, resolve_precision


def lr_at(step: int, peak: float, warmup: int, total: int, schedule: str = "cosine", min_ratio: float = 0.1) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up, then decay to min_ratio * peak.

    A pure function of the step, so a resumed run needs no scheduler state.
    """
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant":
        return peak
    progress = min(1.0, max(0.0, (step - warmup) / max(1, total - warmup)))
    if schedule == "linear":
        return peak * (1.0 - (1.0 - min_ratio) * progress)
    return peak * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


@dataclasses.dataclass
class DataPlan:
    """What a run reads and for how long, fixed before its first step."""

    targets: Targets  # inputs and labels of a batch for the run's objective
    stage_ids: list[Any]  # (N, T) token ids of each curriculum stage
    stage_words: list[Any]  # (N,) words of each block of each stage
    order: BatchPlan  # which blocks each optimizer step takes
    global_batch: int
    max_steps: int  # planned; under a word budget the loop stops on the exact count
    budget_words: int
    words_per_epoch: int
    hybrid: HybridPlan | None  # GPT-BERT: each step's objective and mask rate


def plan_data(run) -> DataPlan:
    cfg, dist = run.cfg, run.dist
    targets = Targets(run.tokenizer, run.objective, cfg.mlm_probability, cfg.mask_replace_prob, cfg.random_replace_prob)
    stage_ids = [torch.as_tensor(column(s, "input_ids"), dtype=torch.long) for s in run.stages]
    stage_words = [torch.as_tensor(column(s, "n_words"), dtype=torch.long) for s in run.stages]
    global_batch = cfg.batch_size * cfg.grad_accum * dist.world
    order = BatchPlan([len(s) for s in run.stages], global_batch, cfg.seed, cfg.epochs, cfg.words is not None)
    words_per_epoch = sum(int(w.sum()) for w in stage_words)
    # Under a word budget, steps are planned from the mean words per block; the loop itself stops on the exact count.
    max_steps = order.planned_steps(words_per_epoch, cfg.words)
    budget_words = cfg.words if cfg.words is not None else int(words_per_epoch * cfg.epochs)
    hybrid = HybridPlan(cfg.seed, max_steps, cfg.causal_share) if run.objective == "hybrid" else None
    return DataPlan(targets, stage_ids, stage_words, order, global_batch, max_steps, budget_words, words_per_epoch,
                    hybrid)


def restore(run, model, optimizer) -> tuple[LoopState, dict[str, Any]]:
    """The loop state, fresh or restored (with the weights, optimizer and RNG) from the latest checkpoint;
    and the saved training state (empty for a fresh run)."""
    if not run.cfg.resume:
        return LoopState(), {}
    folder = checkpoint.latest(run.run_dir, verified=True)  # a damaged newest checkpoint gives way to the previous
    saved = checkpoint.load_state(folder)
    checkpoint.load_weights(model, folder)
    optimizer.load_state_dict(saved["optimizer"])
    checkpoint.set_rng_state(saved["rng"])
    return LoopState.from_dict(json.loads(saved["loop"])), saved


def wrap(run, model):
    """Model and loss as one module: compiled together, wrapped in DDP together; for mlm the
    vocabulary projection runs only on the masked rows (babylm/objective.py)."""
    train_model = loss_module(model, run.objective)
    if run.cfg.compile:
        train_model = torch.compile(train_model)
    if run.dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(train_model, device_ids=[run.dist.local_rank] if run.device.startswith("cuda") else None)
    return train_model


def check_finite(run, first_bad) -> None:
    """Stop the run when a step's loss was not finite (``first_bad``: that step, on device; -1 when none)."""
    bad = distributed.all_max(first_bad, run.dist)
    if bad >= 0:
        good = checkpoint.latest(run.run_dir) if (run.run_dir / checkpoint.LATEST).exists() else None
        raise InputError(f"loss is not finite at step {bad}; stopped. Last good checkpoint: {good or 'none'} "
                         "(lower --lr, set --grad_clip, or use --precision fp32)")


def forward_backward(run, train_model, scaler, precision: str, batch) -> torch.Tensor:
    """Accumulate the gradients of one optimizer step over this rank's micro-batches; returns its summed loss.

    ``batch``: (inputs, labels, n_targets, step_args) of the whole global batch, identical on every rank.
    """
    cfg, dist = run.cfg, run.dist
    inputs, labels, n_targets, step_args = batch
    step_loss = torch.zeros((), device=run.device)
    for micro in range(cfg.grad_accum):
        lo = (dist.rank * cfg.grad_accum + micro) * cfg.batch_size
        x = inputs[lo:lo + cfg.batch_size].to(run.device, non_blocking=True)  # (B, T)
        y = labels[lo:lo + cfg.batch_size].to(run.device, non_blocking=True)  # (B, T)
        sync = micro == cfg.grad_accum - 1 or dist.world == 1
        with (contextlib.nullcontext() if sync else train_model.no_sync()), autocast(run.device, precision):
            # Sum over this micro-batch / targets of the whole global batch; DDP averages over
            # ranks, so scale by world to get the exact global mean.
            loss = train_model(x, y, *step_args) / max(1, n_targets)
            scaler.scale(loss * dist.world).backward()
        step_loss += loss.detach()
    return step_loss


def fit(run, model, optimizer) -> LoopState:
    """Train ``model`` on ``run`` until the word budget / epochs are done (or early stopping).

    Returns the final loop state. Raises InputError on a non-finite loss (the last good
    checkpoint is kept).
    """
    cfg, dist = run.cfg, run.dist

    # ---- set-up: data order and length, loop state (fresh or restored), run folder and logs, model
    data = plan_data(run)
    state, saved = restore(run, model, optimizer)
    start_run_dir(run, state.step)
    events = open_events(run, model, state, data.budget_words)
    events.print(f"run {run.run_dir} | {run.objective} | {count_parameters(model):,} parameters | device {run.device} | "
                 f"world {dist.world} | global batch {data.global_batch} x {cfg.block_size} | ~{data.max_steps} steps | "
                 f"budget {data.budget_words:,} words")
    events.announce_length(data.max_steps, data.budget_words, data.words_per_epoch)
    precision = resolve_precision(run.device, cfg.precision)
    scaler = torch.amp.GradScaler(enabled=precision == "fp16")
    if "scaler" in saved:
        scaler.load_state_dict(saved["scaler"])
    train_model = wrap(run, model)
    model.train()

    # ---- the loop's own state, all of it before the helper that reads it
    # A resumed run restarts at the top of the loop at the step its checkpoint was written: that
    # step's evaluation and save happened before the checkpoint and must not happen twice (a second
    # evaluation would count against --patience and log the same record again).
    resumed_at = state.step if cfg.resume else -1
    last_eval_step = resumed_at
    # summed step losses of the log interval (on device: no sync); rank 0 carries a resumed interval's part
    loss_acc = torch.tensor(state.interval_loss if dist.main else 0.0, device=run.device)
    interval_steps, interval_tokens, t_interval = state.interval_steps, 0, time.perf_counter()
    first_bad = torch.full((), -1, dtype=torch.long, device=run.device)  # first step with a non-finite loss
    grad_norm = torch.zeros((), device=run.device)
    epoch_ended, stop_reason = False, None
    nxt = data.order.next(state.position)

    def save_resume():
        check_finite(run, first_bad)
        if state.step == resumed_at:
            return  # the checkpoint this run resumed from is this very step
        state.interval_loss, state.interval_steps = distributed.all_sum(loss_acc, dist), interval_steps
        if dist.main:
            train_state = {"optimizer": optimizer.state_dict(), "rng": checkpoint.rng_state(),
                           "loop": json.dumps(state.to_dict()), "scaler": scaler.state_dict()}
            checkpoint.save_resume(run.run_dir, state.step, model, run.tokenizer, events.meta(), train_state)
        distributed.barrier(dist)

    while True:
        last_step = (nxt is None or (cfg.words is not None and state.words_seen >= cfg.words) or stop_reason is not None)

        # ---- once in a while: log
        if state.step > 0 and (state.step % cfg.log_every == 0 or last_step) and interval_steps:
            check_finite(run, first_bad)
            elapsed = time.perf_counter() - t_interval
            events.log({"train/loss": distributed.all_sum(loss_acc, dist) / interval_steps,
                        "train/lr": optimizer.param_groups[0]["lr"], "train/grad_norm": float(grad_norm),
                        "train/tokens_per_s": interval_tokens / max(elapsed, 1e-9), "train/epoch": state.position.epoch})
            loss_acc.zero_()
            interval_steps, interval_tokens, t_interval = 0, 0, time.perf_counter()

        # ---- once in a while: evaluate (every N steps, at epoch ends, at the end)
        if run.val is not None and state.step > 0 and state.step != last_eval_step and (
                last_step or epoch_ended or (cfg.eval_every and state.step % cfg.eval_every == 0)):
            check_finite(run, first_bad)
            last_eval_step = state.step
            metrics = evaluate(model, run.val, data.targets, cfg.batch_size, run.device, precision, cfg.eval_batches,
                               cfg.seed)
            stop = events.evaluated(metrics)
            if stop and not last_step:
                events.print(stop)
                stop_reason = stop
                continue  # go round once more with last_step set
        epoch_ended = False

        # ---- once in a while: milestone checkpoints at the official word counts
        if events.milestones_due():
            check_finite(run, first_bad)
            events.write_milestones()

        # ---- once in a while: resume checkpoint; at the end, the final model
        if last_step:
            if state.step > 0:
                save_resume()
            events.finish(stop_reason, checkpoint.latest(run.run_dir) if state.step > 0 else None)
            break
        if cfg.save_every and state.step > 0 and state.step % cfg.save_every == 0:
            save_resume()

        # ---- one training step ------------------------------------------------------------
        stage, idx, new_pos, epoch_ended = nxt
        lr = lr_at(state.step, cfg.lr, cfg.warmup_steps, data.max_steps, cfg.schedule, cfg.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        ids = data.stage_ids[stage][idx]  # (G, T) the global batch, identical on every rank
        mode, mask_rate = data.hybrid.at(state.step) if data.hybrid else (None, None)
        inputs, labels, n_targets = data.targets.make(ids, step_seed(cfg.seed, state.step), mode, mask_rate)
        step_args = (mode,) if data.hybrid else ()  # the hybrid loss takes the step's mode (one compiled graph per mode)
        step_loss = forward_backward(run, train_model, scaler, precision, (inputs, labels, n_targets, step_args))
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(step_loss), state.step + 1, first_bad)
        loss_acc += step_loss
        state.step += 1
        state.words_seen += int(data.stage_words[stage][idx].sum())
        state.tokens_seen += ids.numel()
        state.position = new_pos
        interval_steps += 1
        interval_tokens += ids.numel()
        events.tracker.advance(state.words_seen)
        nxt = data.order.next(state.position)
        # ---- end of the training step -----------------------------------------------------

    return state
