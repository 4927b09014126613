"""What the kit says on the console: Python ``logging``, one level for every command.

The convention, for every module of ``babylm`` and ``eval_export``::

    import logging

    log = logging.getLogger(__name__)

    log.info("tokenizer written to %s", out)     # what a command is doing or has done
    log.warning("vocabulary holds %d entries, not %d", n, asked)   # printed as "warning: ..."
    log.debug("cache key %s", key)               # details, shown with --log_level debug

and ``print`` only for a command's result, the text a pipe reads (``env --json``, the metrics
``test`` prints, a ``--help`` page). A ``print(..., file=sys.stderr)`` that says "warning: ..."
becomes ``log.warning(...)`` without its prefix; the handler adds it.

:func:`configure` (called by :mod:`babylm.cli` for each command) sends the records of both
packages to the console: info and debug lines to stdout as they are, warnings and errors to
stderr prefixed with their level, through ``tqdm.write`` while a progress bar is drawn so that a
line never tears a bar. A run's ``train.log`` is written apart from this (babylm.tracking) and
keeps every line whatever the level. Under torchrun only rank 0 says more than warnings. Without
:func:`configure` (the kit used as a library) the records follow the caller's logging set-up.
"""

from __future__ import annotations

import logging
import os
import sys

from babylm.credentials import redact
from babylm.errors import UsageError

PACKAGES = ("babylm", "eval_export")
LEVELS = ("debug", "info", "warning", "error")
LEVEL_ENV = "BABYLM_LOG_LEVEL"


class ConsoleHandler(logging.Handler):
    """Info and debug to stdout, warnings and errors to stderr with their level; bars stay whole."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = redact(record.getMessage())  # no URL password or token reaches the console
            if record.exc_info and record.levelno >= logging.ERROR:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            if record.levelno >= logging.WARNING:
                stream, text = sys.stderr, f"{record.levelname.lower()}: {text}"
            else:
                stream = sys.stdout
            tqdm = sys.modules.get("tqdm")
            if tqdm is not None and getattr(tqdm.tqdm, "_instances", None):
                tqdm.tqdm.write(text, file=stream)  # clears the bars, writes, redraws them
            else:
                stream.write(text + "\n")
            stream.flush()
        except Exception:  # logging must never end a run
            self.handleError(record)


def level_of(name: str | None) -> int:
    """The ``logging`` level named ``name`` (debug, info, warning, error); default from the environment."""
    name = (name or os.environ.get(LEVEL_ENV) or "info").strip().lower()
    if name not in LEVELS:
        raise UsageError(f"--log_level: {name!r} is not one of {', '.join(LEVELS)}")
    return getattr(logging, name.upper())


def configure(level: int) -> None:
    """Send the kit's records at ``level`` and above to the console (replacing an earlier set-up)."""
    if os.environ.get("RANK", "0") != "0":  # torchrun: the other ranks say only what went wrong
        level = max(level, logging.WARNING)
    for name in PACKAGES:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, ConsoleHandler)]:
            logger.removeHandler(old)
        logger.addHandler(ConsoleHandler())
        logger.setLevel(level)
        logger.propagate = False
    if level >= logging.ERROR:  # the libraries' own warnings too
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("DATASETS_VERBOSITY", "error")
        for name in ("transformers", "datasets"):
            if name in sys.modules:
                logging.getLogger(name).setLevel(logging.ERROR)


def quiet_progress() -> None:
    """Turn off every progress bar, for ``--progress false``: the kit's own and those of
    transformers ("Loading weights", "Writing model shards"), datasets ("Map", "tokenize") and
    huggingface_hub.

    The environment variables hold for what is imported later (the libraries and tqdm are imported
    lazily, after the command line is read: ``TQDM_DISABLE`` is read when tqdm is imported) and for
    child processes; a library already imported is told directly.
    """
    os.environ["TQDM_DISABLE"] = "1"  # every tqdm bar created without an explicit disable=
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # transformers' bars follow huggingface_hub's switch
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as tf_logging

        tf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        from datasets.utils import disable_progress_bars as datasets_off

        datasets_off()
