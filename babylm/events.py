"""The moments of a run that both engines share, written once.

:class:`RunEvents` is what the kit's loop (``babylm.train``) and the Trainer engine
(``babylm.hf_engine``) call at the same points of training:

- at the start: take the run folder (``--overwrite`` empties it first), save the resolved config,
  open the logs (console, ``train.log``, ``metrics.jsonl``, TensorBoard);
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
import shutil
from pathlib import Path
from typing import Any

from babylm import checkpoint, distributed
from babylm.challenge import milestone_words
from babylm.data import Position


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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopState:
        d = dict(d)
        d["position"] = Position(**d["position"])
        return cls(**d)


@functools.lru_cache(maxsize=1)
def _code_version() -> str:
    from babylm.runtime import code_version

    return code_version()  # two git calls: once per process, not per checkpoint


def run_meta(run, state: LoopState, extra: dict | None = None) -> dict[str, Any]:
    """The JSON files written beside every model of a run: resolved config, progress, data manifest."""
    info = {"step": state.step, "words_seen": state.words_seen, "tokens_seen": state.tokens_seen, **(extra or {})}
    return {"run_config.json": {"command": "train", "config": dataclasses.asdict(run.cfg), "objective": run.objective,
                                "code_version": _code_version(), "progress": info},
            "manifest.json": run.manifest}


class RunEvents:
    """Milestones, best model, patience, the run folder and the logs of one run (see the module doc).

    Args:
        run: the :class:`babylm.run.Run`.
        model: the model whose weights are saved (unwrapped: not the compiled or DDP module).
        state: the loop state, fresh or restored from a resume checkpoint.
        total_steps, total_words: the run's planned length, for the progress bar and the ETA.
    """

    def __init__(self, run, model, state: LoopState, total_steps: int, total_words: int):
        from babylm.config import save as save_config
        from babylm.tracking import Tracker, truncate_metrics

        cfg, dist = run.cfg, run.dist
        self.run, self.model, self.state = run, model, state
        self.milestones = milestone_words(cfg.track, cfg.milestone_unit_words) if cfg.milestones else []
        if dist.main and cfg.overwrite and not cfg.resume and run.run_dir.exists():
            shutil.rmtree(run.run_dir)  # only now: every check that could refuse the run has passed
        distributed.barrier(dist)
        if dist.main and cfg.resume:
            truncate_metrics(run.run_dir, state.step)  # records a killed run wrote after its last checkpoint
        self.tracker = Tracker(run.run_dir, enabled=dist.main, total_steps=total_steps, total_words=total_words,
                               tensorboard=cfg.tensorboard, progress=cfg.progress, report_to=cfg.report_to)
        self.tracker.advance(state.step)
        if state.step == 0:
            self.tracker.hparams({k: v for k, v in dataclasses.asdict(cfg).items() if v is not None})
        if dist.main and not cfg.resume:
            save_config(cfg, run.run_dir, "train")

    # ---- what happened

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
        self.log(metrics)
        state, cfg = self.state, self.run.cfg
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
