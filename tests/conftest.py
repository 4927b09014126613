"""Shared fixtures. Tests never touch the network: HF_HUB_OFFLINE=1 and a throwaway HF_HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

from bench import official_env
from tests import reference

REPO = Path(__file__).resolve().parent.parent

# Set before any test module imports huggingface_hub / transformers / datasets: they read these at
# import time, and a hub lookup that is not offline retries for ~45 s before it fails.
_SCRATCH = Path(tempfile.mkdtemp(prefix="babylm-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HOME"] = str(_SCRATCH / "hf_home")
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# The kit's own cache (embedded corpus, packed data) goes to a scratch dir, never ~/.cache.
os.environ["BABYLM_CACHE"] = str(_SCRATCH / "babylm_cache")


def shared_dir() -> Path:
    """The reference data (real corpus slices, official evaluation data); see tests/reference.py.

    Missing: the calling test is skipped with one reason, or fails under ``CI=true``.
    """
    found = reference.reference_dir()
    if found is None:
        if reference.required():
            pytest.fail(f"{reference.MISSING} (CI=true requires it)")
        pytest.skip(reference.MISSING)
    return found


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for a test: tiny models gain nothing from more, and on shared CI
    cores more threads spin against other processes."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_torch_thread_per_module():
    """:func:`one_torch_thread` for a whole module, module-scoped models built under it included
    (``pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


@pytest.fixture(scope="session")
def root(shared) -> Path:
    """The official evaluation data of the reference folder (BLiMP, supplement, EWoK ... fast and full)."""
    return shared / "data" / "eval"


@pytest.fixture(scope="session")
def lines(shared) -> list[str]:
    """Sentences of the fast BLiMP and supplement files, to train the scoring tests' tiny tokenizers on."""
    from tests import export_models

    return export_models.corpus_lines(shared)


@pytest.fixture(scope="session")
def official_site():
    """The official-versions package folder (cached; built from the package index on first use)."""
    folder = official_env.default_dir()
    if not official_env.is_built(folder):
        warnings.warn(f"installing the official pipeline's pinned packages from the package index into {folder} "
                      "(first use; later runs reuse the cached folder)", stacklevel=1)
    try:
        folder = official_env.ensure(folder, log=lambda m: print(m, file=sys.stderr))
    except RuntimeError as exc:
        pytest.fail(f"could not build the cached official environment: {exc}")
    print(f"using the cached official environment {folder} (installed from the package index on first use)")
    return folder


def run_cli(module: str, *args: str, cwd: Path | None = None, timeout: int = 600, env: dict | None = None):
    """Run ``python -m <module> args`` in a real subprocess; returns CompletedProcess (text)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=timeout, env=full_env)


def cli(module: str, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m <module> args`` in this process: the command line's own ``main`` (babylm.cli),
    with its stdout and stderr captured, returned as :func:`run_cli` returns them.

    For tests that check what a command does and says, not the process boundary (a signal, an exit
    under a kill, torchrun, the console script): it saves each call the start of a Python with torch.
    ``env`` is set for the call and restored; the loggers' set-up made by the call is undone.
    """
    import contextlib
    import importlib
    import io
    import logging

    from babylm import cli as cli_lib

    commands = importlib.import_module(f"{module}.commands").COMMANDS
    loggers = {name: logging.getLogger(name) for name in ("babylm", "eval_export")}
    saved = {name: (lg.handlers[:], lg.level, lg.propagate) for name, lg in loggers.items()}
    env_before = {k: os.environ.get(k) for k in (env or {})}
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.update({k: str(v) for k, v in (env or {}).items()})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_lib.main(module, commands, [str(a) for a in args], usage=f"python -m {module}")
    finally:
        for name, (handlers, level, propagate) in saved.items():
            loggers[name].handlers[:], loggers[name].level, loggers[name].propagate = handlers, level, propagate
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return subprocess.CompletedProcess([module, *map(str, args)], code, out.getvalue(), err.getvalue())


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Close the run by saying how many tests were skipped for want of the reference data, and why."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if reference.MISSING in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} tests skipped: {reference.MISSING} "
                                    "(the folder is not part of the repository; CI=true makes them required)")


def pytest_unconfigure(config):
    shutil.rmtree(_SCRATCH, ignore_errors=True)
