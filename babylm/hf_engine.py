"""``--engine hf``: the same config, data, objective and run layout through transformers ``Trainer``.

The kit's :class:`babylm.train.BatchPlan` fixes the block order up front (all stages and epochs
flattened into one pass), and the Trainer reads it sequentially, so the words seen after each
optimizer step are known exactly (a prefix sum of ``n_words``). A callback writes the milestone
checkpoints, ``best/``, ``metrics.jsonl`` and the console lines in the same format as the kit's
own loop; ``final/`` is written by the same checkpoint code. TensorBoard goes to ``<run>/tb``
via ``TENSORBOARD_LOGGING_DIR`` (transformers 5 has no ``logging_dir`` argument).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from babylm.errors import UsageError


def _ordered_blocks(run, global_batch: int):
    """(dataset in training order, words after each step, steps ending an epoch)."""
    import numpy as np
    from datasets import concatenate_datasets

    from babylm.train import BatchPlan, Position, _column

    cfg = run.cfg
    plan = BatchPlan([len(s) for s in run.stages], global_batch, cfg.seed, cfg.epochs, cfg.words is not None)
    offsets = np.cumsum([0] + [len(s) for s in run.stages])
    words = [np.asarray(_column(s, "n_words"), dtype=np.int64) for s in run.stages]
    order, step_words, epoch_ends, pos, total = [], [], set(), Position(), 0
    while (nxt := plan.next(pos)) is not None:
        stage, idx, pos, ended = nxt
        idx = idx.numpy()
        order.extend((idx + offsets[stage]).tolist())
        total += int(words[stage][idx].sum())
        step_words.append(total)
        if ended:
            epoch_ends.add(len(step_words))
        if cfg.words is not None and total >= cfg.words:
            break
    data = concatenate_datasets(list(run.stages)).select(order)
    return data, step_words, epoch_ends


def train_hf(cfg) -> Path:
    """Train with transformers ``Trainer``; writes the kit's run layout. Returns the run folder."""
    from babylm.train import build, setup

    if cfg.resume:
        raise UsageError("--resume is supported by --engine torch only; continue an hf run with --init_from <run>/final")
    run = setup(cfg)
    model, _ = build(run)
    if run.dist.main and cfg.overwrite and run.run_dir.exists():
        import shutil

        shutil.rmtree(run.run_dir)
    fit_hf(run, model)
    return run.run_dir


def fit_hf(run, model) -> int:
    """Train ``model`` on ``run`` with ``Trainer``; returns the number of optimizer steps taken."""
    import torch
    import transformers as tf

    from babylm import checkpoint
    from babylm.train import _autocast, _meta
    from babylm.tracking import Tracker

    cfg = run.cfg
    run.run_dir.mkdir(parents=True, exist_ok=True)
    global_batch = cfg.batch_size * cfg.grad_accum * run.dist.world
    data, step_words, epoch_ends = _ordered_blocks(run, global_batch)
    max_steps = len(step_words)
    data = data.remove_columns([c for c in data.column_names if c != "input_ids"])
    tok = run.tokenizer
    if run.objective == "mlm":
        collator = tf.DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=cfg.mlm_probability,
                                                      mask_replace_prob=cfg.mask_replace_prob,
                                                      random_replace_prob=cfg.random_replace_prob)
    else:
        collator = tf.DataCollatorForLanguageModeling(tok, mlm=False)
    _, precision = _autocast(run.device, cfg.precision)
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(run.run_dir / "tb")
    args = tf.TrainingArguments(
        output_dir=str(run.run_dir / "hf_trainer"), per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr, weight_decay=cfg.weight_decay, adam_beta1=cfg.beta1, adam_beta2=cfg.beta2,
        adam_epsilon=1e-8, max_grad_norm=cfg.grad_clip if cfg.grad_clip > 0 else 1e9,
        lr_scheduler_type={"cosine": "cosine_with_min_lr", "linear": "linear", "constant": "constant_with_warmup"}[cfg.schedule],
        lr_scheduler_kwargs={"min_lr_rate": cfg.min_lr_ratio} if cfg.schedule == "cosine" else {},
        warmup_steps=cfg.warmup_steps, max_steps=max_steps, logging_steps=cfg.log_every,
        eval_strategy="steps" if (cfg.eval_every and run.val is not None) else "no", eval_steps=cfg.eval_every or None,
        save_strategy="no", report_to=["tensorboard"] if cfg.tensorboard else [], seed=cfg.seed,
        bf16=precision == "bf16", fp16=precision == "fp16", dataloader_drop_last=True, disable_tqdm=not cfg.progress,
        torch_compile=cfg.compile, use_cpu=run.device == "cpu", remove_unused_columns=False,
        # Same optimizer kernel as the kit loop (fused exists for CUDA and CPU): the engines differ only in the loop.
        optim="adamw_torch_fused" if (run.device.startswith("cuda") or run.device == "cpu") else "adamw_torch",
        eval_accumulation_steps=None, prediction_loss_only=True)
    tracker = Tracker(run.run_dir, enabled=run.dist.main, total_steps=0, total_words=step_words[-1], tensorboard=False,
                      progress=False)
    milestones = checkpoint.milestone_words(cfg.track, cfg.milestone_unit_words) if cfg.milestones else []

    class Progress(tf.TrainerCallback):
        """Words seen, milestone checkpoints, best model, early stopping and metrics.jsonl."""

        def __init__(self):
            self.best, self.bad, self.done = float("inf"), 0, set()
            self.t_log, self.step_log = None, 0

        def _state(self, step):
            from babylm.train import LoopState

            words = step_words[step - 1] if step else 0
            return LoopState(step=step, words_seen=words, tokens_seen=step * global_batch * cfg.block_size)

        def on_step_end(self, args, state, control, **kw):
            st = self._state(state.global_step)
            for name, threshold in milestones:
                if st.words_seen >= threshold and name not in self.done:
                    if run.dist.main:
                        checkpoint.save_model(run.run_dir / name, model, tok, _meta(run, st, {"milestone": name}))
                        tracker.print(f"milestone {name}: {st.words_seen:,} words seen at step {st.step}")
                    self.done.add(name)
            if state.global_step in epoch_ends and run.val is not None:
                control.should_evaluate = True
            return control

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            st = self._state(state.global_step)
            if "loss" in logs:
                import time

                now = time.perf_counter()
                # Throughput between two log lines, as the kit's loop reports it (0 for the first line).
                rate = ((st.step - self.step_log) * global_batch * cfg.block_size / (now - self.t_log)
                        if self.t_log is not None else 0.0)
                self.t_log, self.step_log = now, st.step
                tracker.log(st.step, st.words_seen, {"train/loss": float(logs["loss"]),
                                                     "train/lr": float(logs.get("learning_rate", 0.0)),
                                                     "train/grad_norm": float(logs.get("grad_norm", 0.0) or 0.0),
                                                     "train/tokens_per_s": rate})

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            loss = float((metrics or {}).get("eval_loss", float("nan")))
            st = self._state(state.global_step)
            tracker.log(st.step, st.words_seen, {"val/loss": loss, "val/ppl": math.exp(min(loss, 50.0))})
            if loss < self.best:
                self.best, self.bad = loss, 0
                if run.dist.main:
                    checkpoint.save_model(run.run_dir / "best", model, tok, _meta(run, st, {"val/loss": loss}))
            else:
                self.bad += 1
                if cfg.patience and self.bad >= cfg.patience:
                    tracker.print(f"early stopping: no better validation loss in {self.bad} evaluations")
                    control.should_training_stop = True
            return control

    class OrderedTrainer(tf.Trainer):
        """Reads the blocks in the kit's precomputed order (no reshuffling), so words seen are exact."""

        def _get_train_sampler(self, *args, **kwargs):
            return torch.utils.data.SequentialSampler(self.train_dataset)

    trainer = OrderedTrainer(model=model, args=args, train_dataset=data, eval_dataset=run.val.remove_columns(
        [c for c in run.val.column_names if c != "input_ids"]) if run.val is not None else None,
        data_collator=collator, processing_class=tok, callbacks=[Progress()])
    tracker.print(f"run {run.run_dir} | engine hf | {run.objective} | {max_steps} steps | global batch {global_batch}")
    trainer.train()
    if run.val is not None and trainer.state.global_step not in epoch_ends:
        trainer.evaluate()  # the final evaluation, unless the last step already ended an epoch
    step = trainer.state.global_step
    if run.dist.main:
        from babylm.train import LoopState

        st = LoopState(step=step, words_seen=step_words[step - 1] if step else 0,
                       tokens_seen=step * global_batch * cfg.block_size)
        checkpoint.save_model(run.run_dir / "final", model, tok, _meta(run, st, {"engine": "hf"}))
        tracker.print(f"done: {step} steps, {st.words_seen:,} words seen; final model in {run.run_dir / 'final'}")
        import shutil

        shutil.rmtree(run.run_dir / "hf_trainer", ignore_errors=True)
    tracker.close()
    return step
