"""The moments of a run that both engines share, written once.

:class:`RunEvents` is what the kit's loop (``babylm.train``) and the Trainer engine
(``babylm.hf_engine``) call at the same points of training:

- at the start (:func:`open_events`): open the logs (console, ``train.log``, ``metrics.jsonl``,
  TensorBoard), once the run set-up has prepared the folder (:func:`babylm.run.start_run_dir`:
  ``--overwrite`` empties it, a resumed run's records are cut at its checkpoint, the config is saved);
- after each optimizer step: write the milestone checkpoints (``chck_1M`` ...) whose word count
  has been reached;
- after each evaluation: keep the best model (``best/``) and count evaluations without
  improvement for ``--patience``;
- at the end: write ``final/``.

All of it is recorded in one :class:`LoopState`, which the kit's loop saves in every resume
checkpoint, so a resumed run takes the same decisions the uninterrupted one would have.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from pathlib import Path
from typing import Any

from babylm import checkpoint
from babylm.challenge import milestone_words
from babylm.data import Position
from babylm.errors import InputError
from babylm.runtime import code_version
from babylm.tracking import Tracker

log = logging.getLogger(__name__)


@dataclasses.dataclass
class LoopState:
    """All loop state that a resume restores."""

    step: int = 0  # optimizer steps taken
    words_seen: int = 0
    tokens_seen: int = 0
    position: Position = dataclasses.field(default_factory=Position)
    best_val: float = float("inf")
    bad_evals: int = 0
    milestones_done: list[str] = dataclasses.field(default_factory=list)
    # The log interval a checkpoint cut in two: its summed step losses and its steps so far, so that
    # the first train/loss a resumed run logs is the mean over the same steps as without the stop.
    interval_loss: float = 0.0
    interval_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopState:
        d = dict(d)  # checkpoints written before the interval fields were kept resume with an empty interval
        d["position"] = Position(**d["position"])
        return cls(**d)


@functools.lru_cache(maxsize=1)
def _code_version() -> str:
    return code_version()  # two git calls: once per process, not per checkpoint


def run_meta(run, state: LoopState, extra: dict | None = None) -> dict[str, Any]:
    """The JSON files written beside every model of a run: resolved config, progress, data manifest."""
    info = {"step": state.step, "words_seen": state.words_seen, "tokens_seen": state.tokens_seen, **(extra or {})}
    return {"run_config.json": {"command": "train", "config": dataclasses.asdict(run.cfg), "objective": run.objective,
                                "code_version": _code_version(), "progress": info},
            "manifest.json": run.manifest}


def open_events(run, model, state: LoopState, total_words: int, progress_bar: bool = True) -> RunEvents:
    """Open the run's logs (rank 0) in the folder :func:`babylm.run.start_run_dir` prepared.

    ``total_words``: the run's planned length, for the progress bar and the ETA; ``progress_bar``:
    whether the kit draws the bar (the Trainer engine draws its own).
    """
    cfg = run.cfg
    tracker = Tracker.open(run.run_dir, enabled=run.dist.main, total_words=total_words, start_words=state.words_seen,
                           tensorboard=cfg.tensorboard, progress=cfg.progress and progress_bar,
                           report_to=cfg.report_to)
    if state.step == 0:
        tracker.hparams({k: v for k, v in dataclasses.asdict(cfg).items() if v is not None})
    return RunEvents(run, model, state, tracker)


class RunEvents:
    """Milestones, best model, patience and the logs of one run (see the module doc).

    Args:
        run: the :class:`babylm.run.Run`.
        model: the model whose weights are saved (unwrapped: not the compiled or DDP module).
        state: the loop state, fresh or restored from a resume checkpoint.
        tracker: the run's open logs (:func:`open_events` opens them).
    """

    def __init__(self, run, model, state: LoopState, tracker: Tracker):
        cfg = run.cfg
        self.run, self.model, self.state, self.tracker = run, model, state, tracker
        self.milestones = milestone_words(cfg.track, cfg.milestone_unit_words) if cfg.milestones else []

    # ---- what happened

    def announce_length(self, steps: int, budget_words: int, words_per_epoch: int) -> None:
        """Say how long the run is in passes over its data, and warn when it never leaves warm-up."""
        cfg = self.run.cfg
        epochs = budget_words / max(1, words_per_epoch)
        self.print(f"length: {budget_words:,} words = {epochs:.2f} epochs of the {words_per_epoch:,} training words, "
                   f"~{steps} optimizer steps")
        if cfg.warmup_steps >= steps and self.run.dist.main:
            log.warning("--warmup_steps %d is at least the run's ~%d steps: the learning rate never leaves warm-up "
                        "(never reaches --lr); lower --warmup_steps", cfg.warmup_steps, steps)

    def print(self, message: str) -> None:
        self.tracker.print(message)

    def log(self, metrics: dict[str, float]) -> None:
        self.tracker.log(self.state.step, self.state.words_seen, metrics)

    def meta(self, extra: dict | None = None) -> dict[str, Any]:
        return run_meta(self.run, self.state, extra)

    # ---- milestones

    def milestones_due(self) -> list[str]:
        """Milestones whose word count has been reached and that are not written yet."""
        return [name for name, words in self.milestones
                if self.state.words_seen >= words and name not in self.state.milestones_done]

    def write_milestones(self) -> None:
        """Write every due milestone (rank 0); each is a self-contained model folder."""
        for name in self.milestones_due():
            if self.run.dist.main:
                checkpoint.save_model(self.run.run_dir / name, self.model, self.run.tokenizer,
                                      self.meta({"milestone": name}))
                self.print(f"milestone {name}: {self.state.words_seen:,} words seen at step {self.state.step}")
            self.state.milestones_done.append(name)

    # ---- evaluation

    def evaluated(self, metrics: dict[str, float]) -> str | None:
        """Record an evaluation; keep the best model. Returns a stop reason when --patience runs out."""
        state, cfg = self.state, self.run.cfg
        if not math.isfinite(metrics["val/loss"]):
            raise InputError(f"validation loss is not finite at step {state.step} ({metrics['val/loss']}); stopped. "
                             "Lower --lr, set --grad_clip, or use --precision fp32")
        self.log(metrics)
        if metrics["val/loss"] < state.best_val:
            state.best_val, state.bad_evals = metrics["val/loss"], 0
            if self.run.dist.main:
                checkpoint.save_model(self.run.run_dir / "best", self.model, self.run.tokenizer, self.meta(metrics))
            return None
        state.bad_evals += 1
        if cfg.patience and state.bad_evals >= cfg.patience:
            return f"early stopping: no better validation loss in {state.bad_evals} evaluations"
        return None

    # ---- the end

    def finish(self, stop_reason: str | None, resume_checkpoint: Path | None = None, **extra: Any) -> None:
        """Write ``final/`` (rank 0) and close the logs.

        With ``resume_checkpoint`` the final model is that folder with its own metadata (weights and
        optimizer state hard-linked, not serialised a second time); otherwise the model is saved.
        """
        if self.run.dist.main and self.state.step > 0:
            meta = self.meta({"stop_reason": stop_reason or "budget reached", **extra})
            final = self.run.run_dir / "final"
            if resume_checkpoint is not None:
                checkpoint.derive(resume_checkpoint, final, meta)
            else:
                checkpoint.save_model(final, self.model, self.run.tokenizer, meta)
            self.print(f"done: {self.state.step} steps, {self.state.words_seen:,} words seen; final model in {final}")
        self.close()

    def close(self) -> None:
        self.tracker.close()
