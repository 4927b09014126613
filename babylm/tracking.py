"""Rank-0 run logging: console line, progress bar, ``train.log``, ``metrics.jsonl``, TensorBoard and
Weights & Biases.

Every call is a no-op on ranks other than 0, so call sites never branch on the rank. Metric
names are namespaced (``train/loss``, ``val/loss``, ``train/lr`` ...); the same numbers go to the
console (the ``babylm.tracking`` logger, see babylm.logs), the JSON lines file, TensorBoard and,
with ``--report_to wandb``, a Weights & Biases run. Both engines log through here (the Trainer's
own reporting is off), so a run's records do not depend on the engine.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

from babylm.errors import UsageError
from babylm.files import cannot_write, write_text

METRICS = "metrics.jsonl"
TRACKERS = ("wandb",)  # --report_to: trackers beside the run folder's own files
WANDB_ID = "wandb_run_id"  # in the run folder: a resumed run continues the same W&B run

log = logging.getLogger(__name__)


def _fmt_count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


def _fmt_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    h, rem = divmod(int(seconds), 3600)
    return f"{h:d}:{rem // 60:02d}:{rem % 60:02d}"


def truncate_metrics(run_dir: Path, after_step: int) -> None:
    """Drop ``metrics.jsonl`` records past ``after_step`` (written by a run that was killed later),
    and a last record the kill tore in half."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return
    kept = []
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= after_step:
            kept.append(line)
    write_text(path, "".join(line + "\n" for line in kept))


def _refused(path: Path, exc: OSError) -> Exception:
    return cannot_write(path, exc) or exc


def _append(fh, text: str) -> None:
    """Append one line to a log file; a full disk ends the run with one line naming the file."""
    try:
        fh.write(text)
        fh.flush()
    except OSError as exc:
        raise _refused(Path(fh.name), exc) from None


class Tracker:
    """One run's logs under its folder; silent unless opened ``enabled`` (rank 0). Made by :meth:`open`.

    The progress bar and the console line's ETA count the same thing, words seen against the
    run's word budget, and share one estimate (:meth:`eta`): the mean rate since the logs were
    opened. The bar shows the budget reached as 100% (the last step may pass it by part of a batch).
    """

    def __init__(self, total_words: int = 0, start_words: int = 0):
        self.enabled = False
        self.total_words = total_words
        self.clock = time.perf_counter  # the ETA's clock
        self.start = self.clock()
        self._words_at_start = start_words
        self._log = self._metrics = self._tb = self._bar = self._wandb = None

    @classmethod
    def open(cls, run_dir: Path, enabled: bool = True, total_words: int = 0, start_words: int = 0,
             tensorboard: bool = True, progress: bool = True, report_to: tuple[str, ...] | list[str] = (),
             bar_file=None) -> Tracker:
        """Open (append to) ``train.log`` and ``metrics.jsonl``, TensorBoard, the bar and W&B.

        ``start_words``: the words a resumed run had seen; ``bar_file``: where the bar is drawn
        (default stderr; drawn only on a terminal).
        """
        tracker = cls(total_words, start_words)
        if not enabled:
            return tracker
        tracker.enabled = True
        tracker.run_dir = Path(run_dir)
        try:
            tracker.run_dir.mkdir(parents=True, exist_ok=True)
            tracker._log = open(tracker.run_dir / "train.log", "a", encoding="utf-8")
            tracker._metrics = open(tracker.run_dir / METRICS, "a", encoding="utf-8")
        except OSError as exc:
            raise _refused(tracker.run_dir, exc) from None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            tracker._tb = SummaryWriter(str(tracker.run_dir / "tb"))
        if progress and total_words:
            from tqdm.auto import tqdm

            # Its own remaining-time estimate is left out: the postfix shows the console's (one ETA).
            tracker._bar = tqdm(total=total_words, initial=min(start_words, total_words), unit="word",
                                unit_scale=True, dynamic_ncols=True, file=bar_file or sys.stderr, mininterval=1.0,
                                disable=None, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} words [{elapsed}{postfix}]")
        if "wandb" in report_to:
            tracker._wandb = start_wandb(tracker.run_dir)
        return tracker

    def eta(self, words: int) -> float:
        """Seconds until the word budget is reached at the mean rate since the logs were opened (nan: unknown)."""
        elapsed = self.clock() - self.start
        rate = (words - self._words_at_start) / elapsed if elapsed > 0 else 0.0
        return max(0, self.total_words - words) / rate if rate > 0 else float("nan")

    def print(self, message: str) -> None:
        """A line to the console (above the bar; babylm.logs) and, whatever the level, to ``train.log``."""
        if not self.enabled:
            return
        log.info("%s", message)
        _append(self._log, message + "\n")

    def hparams(self, params: dict[str, Any]) -> None:
        """Record the resolved config (TensorBoard text + hparams; the W&B run's config)."""
        if not self.enabled:
            return
        flat = {k: (v if isinstance(v, (int, float, str, bool)) else json.dumps(v)) for k, v in params.items()}
        if self._wandb is not None:
            self._wandb.config.update(flat, allow_val_change=True)
        if self._tb is None:
            return
        self._tb.add_text("config", "\n".join(f"    {k}: {v}" for k, v in flat.items()), 0)
        self._tb.add_hparams(flat, {}, run_name=".")

    def log(self, step: int, words: int, metrics: dict[str, float], console: bool = True) -> None:
        """Append one record to ``metrics.jsonl``, TensorBoard and (optionally) the console line."""
        if not self.enabled:
            return
        record = {"step": step, "words": words, **metrics}
        _append(self._metrics, json.dumps(record) + "\n")
        if self._tb is not None:
            for key, value in metrics.items():
                self._tb.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log({"step": step, "words": words, **metrics})
        if console:
            self.print(self._line(step, words, metrics))

    def _line(self, step: int, words: int, metrics: dict[str, float]) -> str:
        if "val/loss" in metrics:
            return (f"step {step:>7d} | words {_fmt_count(words):>8} | val loss {metrics['val/loss']:7.4f}"
                    f" | val ppl {metrics.get('val/ppl', float('nan')):9.2f}")
        return (f"step {step:>7d} | words {_fmt_count(words):>8} | loss {metrics.get('train/loss', float('nan')):7.4f}"
                f" | lr {metrics.get('train/lr', 0.0):.2e} | tok/s {_fmt_count(metrics.get('train/tokens_per_s', 0.0)):>7}"
                f" | eta {_fmt_eta(self.eta(words))}")

    def advance(self, words: int) -> None:
        """Move the bar to ``words`` seen (at most the budget: 100% when it is reached)."""
        if self._bar is not None:
            self._bar.set_postfix_str(f"eta {_fmt_eta(self.eta(words))}", refresh=False)
            self._bar.update(min(words, self.total_words) - self._bar.n)

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
        self._log.close()
        self._metrics.close()


def check_trackers(report_to: list[str] | tuple[str, ...]) -> None:
    """A UsageError when a tracker named in ``--report_to`` is not installed (wandb is an optional extra)."""
    import importlib.util

    if "wandb" in report_to and importlib.util.find_spec("wandb") is None:
        raise UsageError("--report_to wandb needs the wandb package: pip install 'babylm-kit[wandb]' "
                         "(or pip install wandb into this environment)")


def start_wandb(run_dir: Path):
    """A Weights & Biases run for the kit's run folder (``--report_to wandb``).

    It is named after the run folder and keeps its files under ``<run>/wandb``; its id is kept in
    ``<run>/wandb_run_id``, so ``--resume true`` continues the same W&B run. The project, entity,
    mode (``WANDB_MODE=offline``: no network, ``wandb sync`` later) and key come from wandb's own
    environment variables (``WANDB_PROJECT``, default ``babylm``). Metrics are plotted against the
    optimizer step (``step``) or the words seen (``words``), both logged with every record.
    """
    import os
    import uuid

    check_trackers(["wandb"])
    import wandb  # heavy and optional: only for --report_to wandb
    id_file = run_dir / WANDB_ID
    run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
    write_text(id_file, run_id + "\n")
    run = wandb.init(project=os.environ.get("WANDB_PROJECT", "babylm"), name=run_dir.name, id=run_id,
                     resume="allow", dir=str(run_dir), settings=wandb.Settings(silent=not log.isEnabledFor(logging.INFO)))
    run.define_metric("*", step_metric="step")  # the kit's step, not wandb's own counter: a resumed run
    return run                                  # logs its steps again from the checkpoint on
