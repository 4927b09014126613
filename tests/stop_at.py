"""``python -m tests.stop_at SIGNAL STEP ARGS...``: ``python -m babylm ARGS...`` that sends itself
SIGNAL (KILL, TERM, ...) right after it has written the metrics record of optimizer step STEP or a
later one: a stop at a known point of the run, not at a moment of the clock.

Nothing of the run is replaced: the record is written by the kit's own code first.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys

from babylm import tracking


def main() -> None:
    sig, step = getattr(signal, f"SIG{sys.argv[1]}"), int(sys.argv[2])
    write = tracking.Tracker.log

    def log_then_stop(self, at_step, *args, **kwargs):
        write(self, at_step, *args, **kwargs)
        if at_step >= step:
            os.kill(os.getpid(), sig)

    tracking.Tracker.log = log_then_stop
    sys.argv = ["babylm", *sys.argv[3:]]
    runpy.run_module("babylm", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
