"""``--engine hf``: the same config, data, objective and run layout through transformers ``Trainer``.

The kit's :class:`babylm.data.BatchPlan` fixes the block order up front (all stages and epochs
flattened into one pass, :func:`babylm.data.flat_order`), and the Trainer reads it sequentially,
so the words seen after each optimizer step are known exactly. A callback hands every step and
evaluation to :class:`babylm.events.RunEvents`, which writes the milestone checkpoints,
``best/``, ``metrics.jsonl`` and the console lines exactly as for the kit's own loop, and
``final/`` at the end, and the TensorBoard scalars under ``<run>/tb`` (the Trainer's own
reporting is off, so both engines write the same records). The optimizer is the one
:func:`babylm.run.build` made for both engines; the Trainer adds its own learning-rate schedule.

Resume goes through the Trainer's own checkpoints: every ``--save_every`` steps it writes
``<run>/hf_trainer/checkpoint-<N>/`` (weights, optimizer, scheduler, RNG states, its state), to
which the kit then adds the run's metadata and its :class:`LoopState` (``loop_state.json``:
milestones written, best validation loss, evaluations without improvement) and only then moves
``latest`` there, so ``latest`` always names a complete checkpoint, as for the kit's loop.
``--resume true`` restores both; the Trainer skips the batches of the first N steps of the fixed
order, so the resumed run reads exactly the blocks the uninterrupted one would have read. A causal
model resumes bitwise. A masked one does not: the Trainer collates the first batch after the
skip before it restores the RNG state, so the masking collator draws that batch's masks, and
everything after, from another point of the RNG stream (same data, other masks and dropout).

GPT-BERT: the Trainer trains the model and its hybrid loss as one module
(:class:`babylm.objective.TrainerHybridLoss`) on batches from :class:`HybridCollator`, which gives
every optimizer step the kit loop's objective, mask rate and masks (the step is read from each
row's place in the fixed order, so gradient accumulation and ranks cannot shift it); the loss is
divided by the step's predicted tokens, which the Trainer counts over all micro-batches and ranks.
Its masks are drawn from the step and the seed, not from the RNG stream, so it resumes bitwise;
the Trainer saves this plain module's state dict itself, each tied tensor under one name.
"""

from __future__ import annotations

import time

import torch
import transformers as tf
from datasets import Dataset, concatenate_datasets

from babylm import checkpoint
from babylm.data import BatchPlan, column, flat_order
from babylm.events import LoopState, RunEvents, open_events
from babylm.files import read_json, remove_dir, write_json, write_text
from babylm.objective import MNTP, HybridPlan, Targets, TrainerHybridLoss, hybrid_loss, step_seed
from babylm.perplexity import ppl, validation_targets
from babylm.run import start_run_dir
from babylm.runtime import resolve_precision


def fit(run, model, optimizer) -> LoopState:
    """Train ``model`` on ``run`` with ``Trainer``; returns the final loop state."""
    cfg, tok = run.cfg, run.tokenizer
    global_batch = cfg.batch_size * cfg.grad_accum * run.dist.world
    plan = BatchPlan([len(s) for s in run.stages], global_batch, cfg.seed, cfg.epochs, cfg.words is not None)
    order, step_words, epoch_ends = flat_order(run.stages, plan, cfg.words)
    train_model, val = model, None
    if run.objective == "hybrid":
        # GPT-BERT: the Trainer trains the loss module (model + loss, like the kit's loop), fed by a
        # collator that makes each optimizer step's objective and targets as the kit's loop does.
        collator, data, val = hybrid_batches(run, plan, order, global_batch)
        train_model = hybrid_loss(model, cls=TrainerHybridLoss)
    else:  # the blocks themselves, in the fixed order, masked (mlm) or not (clm) by the Trainer's collator
        data = concatenate_datasets(list(run.stages)).select(order)
        data = data.remove_columns([c for c in data.column_names if c != "input_ids"])
        collator = FirstPositionUnscored(tf.DataCollatorForLanguageModeling(
            tok, mlm=run.objective == "mlm", mlm_probability=cfg.mlm_probability,
            mask_replace_prob=cfg.mask_replace_prob, random_replace_prob=cfg.random_replace_prob))
    if val is None and run.val is not None:
        val = run.val.remove_columns([c for c in run.val.column_names if c != "input_ids"])
    resume_from = checkpoint.latest(run.run_dir, verified=True) if cfg.resume else None
    state = LoopState.from_dict(read_json(resume_from / checkpoint.LOOP_FILE)) if resume_from else LoopState()
    start_run_dir(run, state.step)
    events = open_events(run, model, state, step_words[-1], progress_bar=False)  # the Trainer draws its bar
    callback = RunCallback(events, step_words, epoch_ends, global_batch)
    trainer = OrderedTrainer(model=train_model, args=training_args(run, len(step_words)), train_dataset=data,
                             eval_dataset=val, data_collator=collator, processing_class=tok, callbacks=[callback],
                             optimizers=(optimizer, None))
    events.print(f"run {run.run_dir} | engine hf | {run.objective} | {len(step_words)} steps | global batch {global_batch}"
                 + (f" | resumed at step {state.step} from {resume_from}" if resume_from else ""))
    events.announce_length(len(step_words), step_words[-1], sum(int(column(s, "n_words").sum()) for s in run.stages))
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if run.val is not None and trainer.state.global_step not in epoch_ends:
        trainer.evaluate()  # the final evaluation, unless the last step already ended an epoch
    callback.at(trainer.state.global_step)
    events.finish(callback.stop, engine="hf")
    if run.dist.main:  # final/ is written: the resume checkpoints have served (pointer first, then its target)
        (run.run_dir / checkpoint.LATEST).unlink(missing_ok=True)
        remove_dir(run.run_dir / checkpoint.HF_DIR)
    return state


def training_args(run, max_steps: int) -> tf.TrainingArguments:
    """The Trainer's arguments for the kit's config (its own reporting off: the kit logs both engines)."""
    cfg = run.cfg
    precision = resolve_precision(run.device, cfg.precision)
    return tf.TrainingArguments(
        output_dir=str(run.run_dir / checkpoint.HF_DIR), per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr, weight_decay=cfg.weight_decay, adam_beta1=cfg.beta1, adam_beta2=cfg.beta2,
        adam_epsilon=1e-8, max_grad_norm=cfg.grad_clip if cfg.grad_clip > 0 else 1e9,
        lr_scheduler_type={"cosine": "cosine_with_min_lr", "linear": "linear", "constant": "constant_with_warmup"}[cfg.schedule],
        lr_scheduler_kwargs={"min_lr_rate": cfg.min_lr_ratio} if cfg.schedule == "cosine" else {},
        warmup_steps=cfg.warmup_steps, max_steps=max_steps, logging_steps=cfg.log_every,
        eval_strategy="steps" if (cfg.eval_every and run.val is not None) else "no", eval_steps=cfg.eval_every or None,
        # two kept: the one `latest` names survives the Trainer's pruning until the pointer has moved
        save_strategy="steps" if cfg.save_every else "no", save_steps=cfg.save_every or None, save_total_limit=2,
        report_to=[], seed=cfg.seed,
        # training only: evaluation reads every validation block (OrderedTrainer.get_eval_dataloader)
        bf16=precision == "bf16", fp16=precision == "fp16", dataloader_drop_last=True, disable_tqdm=not cfg.progress,
        torch_compile=cfg.compile, use_cpu=run.device == "cpu", remove_unused_columns=False,
        eval_accumulation_steps=None, prediction_loss_only=True)


class RunCallback(tf.TrainerCallback):
    """Hands the Trainer's steps, logs and evaluations to the run's shared events.

    The first ``train/loss`` a resumed run logs is the Trainer's mean over the steps since the
    resume, not over the whole log interval the checkpoint cut in two: the Trainer keeps that
    running sum only in memory, not in its checkpoint (the kit's loop keeps it, ``LoopState``).
    """

    def __init__(self, events: RunEvents, step_words: list[int], epoch_ends: set[int] | list[int], global_batch: int):
        self.events, self.step_words, self.epoch_ends, self.global_batch = events, step_words, epoch_ends, global_batch
        self.t_log, self.step_log = None, 0
        self.stop: str | None = None

    def at(self, step: int) -> None:
        """Move the shared loop state to optimizer step ``step`` (words are exact: the order is fixed)."""
        state = self.events.state
        state.step = step
        state.words_seen = self.step_words[step - 1] if step else 0
        state.tokens_seen = step * self.global_batch * self.events.run.cfg.block_size

    def on_step_end(self, args, trainer_state, control, **kw):
        self.at(trainer_state.global_step)
        self.events.write_milestones()
        if trainer_state.global_step in self.epoch_ends and self.events.run.val is not None:
            control.should_evaluate = True
        return control

    def on_log(self, args, trainer_state, control, logs=None, **kw):
        logs = logs or {}
        if "loss" not in logs:
            return
        self.at(trainer_state.global_step)
        now, step = time.perf_counter(), self.events.state.step
        # Throughput between two log lines, as the kit's loop reports it (0 for the first line).
        tokens = (step - self.step_log) * self.global_batch * self.events.run.cfg.block_size
        rate = tokens / (now - self.t_log) if self.t_log is not None else 0.0
        self.t_log, self.step_log = now, step
        self.events.log({"train/loss": float(logs["loss"]), "train/lr": float(logs.get("learning_rate", 0.0)),
                         "train/grad_norm": float(logs.get("grad_norm", 0.0) or 0.0), "train/tokens_per_s": rate})

    def on_save(self, args, trainer_state, control, **kw):
        """The Trainer has written checkpoint-<N>: add the run's state to it, then point `latest` there."""
        run = self.events.run
        if run.dist.main:
            name = f"{checkpoint.HF_DIR}/checkpoint-{trainer_state.global_step}"
            self.at(trainer_state.global_step)
            for file, obj in self.events.meta().items():
                write_json(run.run_dir / name / file, obj)
            write_json(run.run_dir / name / checkpoint.LOOP_FILE, self.events.state.to_dict())
            write_text(run.run_dir / checkpoint.LATEST, name + "\n")
        return control

    def on_evaluate(self, args, trainer_state, control, metrics=None, **kw):
        self.at(trainer_state.global_step)
        loss = float((metrics or {}).get("eval_loss", float("nan")))
        stop = self.events.evaluated({"val/loss": loss, "val/ppl": ppl(loss)})  # a NaN loss is an error there
        if stop:
            self.events.print(stop)
            self.stop = stop
            control.should_training_stop = True
        return control


class FirstPositionUnscored:
    """The Trainer's language-modelling collator with the label of position 0 set to -100.

    No output predicts position 0, and the loss never scores it, but the Trainer divides the summed
    loss by its count of labels that are not -100 (``num_items_in_batch``): with position 0 counted,
    a causal model's training and validation losses came out (T-1)/T of their value. (A masked
    model's position 0 is a special token, never masked: already -100.)
    """

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, rows: list[dict]) -> dict:
        batch = self.collate(rows)
        batch["labels"][:, 0] = -100
        return batch


class OrderedTrainer(tf.Trainer):
    """Reads the blocks in the kit's precomputed order (no reshuffling), so words seen are exact."""

    def _get_train_sampler(self, *args, **kwargs):
        return torch.utils.data.SequentialSampler(self.train_dataset)

    def get_eval_dataloader(self, eval_dataset=None):
        # --dataloader_drop_last is for training; evaluation reads every block, as the kit's loop
        # does (with fewer validation blocks than --batch_size it would otherwise read none: NaN).
        drop, self.args.dataloader_drop_last = self.args.dataloader_drop_last, False
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.args.dataloader_drop_last = drop

    def _save(self, output_dir=None, state_dict=None):
        # GPT-BERT trains model + loss as one plain module, which the Trainer saves as a bare
        # safetensors state dict; safetensors refuses the tied embedding/decoder pair, so each
        # shared tensor is kept under its first name. Resume loads it with strict=False and the
        # tie fills the other name.
        if state_dict is None and not isinstance(self.model, tf.PreTrainedModel):
            aliases = _aliases(self.model)
            state_dict = {k: v for k, v in self.model.state_dict().items() if k not in aliases}
        super()._save(output_dir, state_dict=state_dict)

    def _issue_warnings_after_load(self, load_result):
        if not isinstance(self.model, tf.PreTrainedModel):  # the names _save left out are not missing
            aliases = _aliases(self.model)
            missing = [k for k in load_result.missing_keys if k not in aliases]
            if missing or load_result.unexpected_keys:
                raise RuntimeError(f"resume checkpoint does not fit the model: missing {missing}, "
                                   f"unexpected {load_result.unexpected_keys}")
            return
        super()._issue_warnings_after_load(load_result)


def _aliases(module) -> set[str]:
    """State-dict names whose tensor another, earlier name already holds (tied weights)."""
    seen, aliases = set(), set()
    for name, tensor in module.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in seen:
            aliases.add(name)
        seen.add(key)
    return aliases


# ----------------------------------------------------------------------------- GPT-BERT

def hybrid_batches(run, plan, order: list[int], global_batch: int):
    """(collator, train rows, validation rows) for GPT-BERT under the Trainer.

    The datasets hold only row numbers: ``row`` (the place in the fixed block order ``order``) for
    training and ``val_row`` for validation; :class:`HybridCollator` turns them into batches.
    """
    cfg = run.cfg
    blocks = torch.as_tensor(column(concatenate_datasets(list(run.stages)), "input_ids"), dtype=torch.long)  # (N, T)
    words_per_epoch = sum(int(column(s, "n_words").sum()) for s in run.stages)
    # The kit's loop plans its schedules over this many steps; so does this engine's mask rate.
    schedule = HybridPlan(cfg.seed, plan.planned_steps(words_per_epoch, cfg.words), cfg.causal_share)
    val_ids = torch.as_tensor(column(run.val, "input_ids"), dtype=torch.long) if run.val is not None else None
    targets = Targets(run.tokenizer, "hybrid", cfg.mlm_probability, cfg.mask_replace_prob, cfg.random_replace_prob)
    collator = HybridCollator(targets, schedule, blocks, torch.as_tensor(order, dtype=torch.long), global_batch,
                              val_ids, cfg.batch_size, cfg.seed)
    train = Dataset.from_dict({"row": list(range(len(order)))})
    val = Dataset.from_dict({"val_row": list(range(len(val_ids)))}) if val_ids is not None else None
    return collator, train, val


class HybridCollator:
    """GPT-BERT batches for the Trainer, made exactly as the kit's loop makes them.

    A training row's place in the fixed order (``row``) tells its optimizer step (``row //
    global_batch``), whatever the micro-batch, rank or gradient accumulation, and so the step's
    objective and mask rate (:class:`babylm.objective.HybridPlan`). The step's whole global batch is
    masked with the kit's per-step seed and this batch's rows are taken from it, so both engines
    train on the same inputs and targets. Validation rows (``val_row``) get the targets of
    :func:`babylm.perplexity.validation_targets` for their batch of ``val_batch`` rows. Position 0
    of every label row is -100 (never predicted), so the Trainer's count of labels, by which
    :class:`babylm.objective.TrainerHybridLoss` divides, is the step's :func:`count_predicted`.
    """

    def __init__(self, targets, schedule, blocks, order, global_batch: int, val_ids, val_batch: int, seed: int):
        self.targets, self.schedule, self.blocks, self.order = targets, schedule, blocks, order
        self.global_batch, self.val_ids, self.val_batch, self.seed = global_batch, val_ids, val_batch, seed
        self._step = None  # (step, mode, inputs, labels) of the last training step masked

    def __call__(self, rows: list[dict]) -> dict:
        if "row" in rows[0]:
            pos = torch.tensor([r["row"] for r in rows])  # (B,)
            step = int(pos[0]) // self.global_batch
            if int(pos.max()) // self.global_batch != step or int(pos.min()) // self.global_batch != step:
                raise RuntimeError(f"a micro-batch spans optimizer steps (rows {pos.tolist()})")
            start = step * self.global_batch
            if self._step is None or self._step[0] != step:  # once per step, not per micro-batch
                ids = self.blocks[self.order[start:start + self.global_batch]]  # (G, T) the step's global batch
                mode, rate = self.schedule.at(step)
                self._step = (step, mode, *self.targets.make(ids, step_seed(self.seed, step), mode, rate)[:2])
            _, mode, inputs, labels = self._step
        else:
            pos = torch.tensor([r["val_row"] for r in rows])  # (B,)
            batch = int(pos[0]) // self.val_batch
            start = batch * self.val_batch
            mode = MNTP
            inputs, labels, _ = validation_targets(self.targets, self.val_ids[start:start + self.val_batch], batch,
                                                   self.seed)
        pick = pos - start
        labels = labels[pick].clone()  # (B, T)
        labels[:, 0] = -100  # no output precedes position 0
        return {"input_ids": inputs[pick], "labels": labels, "mode": mode}
