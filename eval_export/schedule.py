"""What a 2026 submission scores, and a clock over the revisions being scored.

A submission (babylm-eval 3d57ddc, ``strict/scripts/eval_zero_shot.sh``, ``eval_zero_shot_fast_all_revisions.sh``,
``eval_zero_shot_global_piqa.sh``, ``eval_aoa.sh`` and ``collate_preds.py``) needs ``main`` scored on the full
set, every milestone (``chck_1M`` ... of the track) on the fast set, and the AoA curves over the milestones.
``score --eval_set submission`` follows :func:`plan`; :class:`RevisionClock` says "revision k of N" and
the time left while they run.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from babylm.challenge import milestone_number, milestones
from babylm.errors import InputError

log = logging.getLogger(__name__)

SUBMISSION = "submission"


def plan(found: list[str]) -> list[tuple[str, str]]:
    """(revision, eval set) of a submission from the revisions a run holds (milestones in words order,
    then ``main``): the milestones on the fast set, ``main`` on the full set."""
    if "main" not in found:
        raise InputError("--eval_set submission: the model has no main revision (the final model); a submission "
                         "scores main on the full set and the milestones on the fast set")
    return [(r, "fast") for r in found if r != "main"] + [("main", "full")]


def track_of(found: list[str]) -> str:
    """The track a run's milestones belong to: strict when one is past 100M words, else strict-small."""
    return "strict" if any((milestone_number(r) or 0) > 100 for r in found) else "strict-small"


def missing_milestones(found: list[str], track: str) -> list[str]:
    return [m for m in milestones(track) if m not in found]


def _clock_text(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class RevisionClock:
    """Counts the revisions scored in one command and estimates the time left from the mean time of
    those done so far (the first revision has no estimate)."""

    def __init__(self, total: int, now: Callable[[], float] = time.monotonic):
        self.total, self.now = total, now
        self.k = 0
        self.spent: list[float] = []
        self._started: float | None = None

    def start(self, label: str) -> str:
        self.k += 1
        self._started = self.now()
        line = f"revision {self.k} of {self.total}: {label}"
        if self.spent:
            mean = sum(self.spent) / len(self.spent)
            left = self.total - self.k + 1
            line += f" (about {_clock_text(mean * left)} left for {left} revision{'s' * (left > 1)} with this one, " \
                    f"{_clock_text(sum(self.spent))} so far)"
        log.info(line)
        return line

    def done(self) -> None:
        if self._started is not None:
            self.spent.append(self.now() - self._started)
            self._started = None
