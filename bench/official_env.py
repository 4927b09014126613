"""A package folder with the official 2025/2026 evaluation pipeline's pinned versions, built once.

The official pipeline (babylm-org/babylm-eval, ``strict/requirements.txt``) pins transformers
4.51.3 and tokenizers 0.21.1, while the kit runs on transformers 5. To load our checkpoints the way
the official code does, and to run that code itself, we install its pins with ``pip install
--target`` into a folder outside the checkout, keyed by a hash of the pin list and the Python
version, and reuse it on later runs. torch is not in it: a fresh interpreter of the kit's own venv
runs with that folder first on ``PYTHONPATH``, so torch (the local CPU wheel, or whatever build the
kit's venv holds) comes from the venv and no CUDA wheel is ever downloaded.

    folder: $BABYLM_OFFICIAL_ENV, else ${XDG_CACHE_HOME:-~/.cache}/babylm-kit/official-<hash>
    first use: pip downloads the pins from the package index (about 1-2 minutes, ~600 MB)

    python bench/official_env.py          # build (if needed) and print the folder
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Versions from babylm-org/babylm-eval strict/requirements.txt (the 2025/2026 "strict" pipeline):
# the packages its zero-shot (evaluation_pipeline/sentence_zero_shot) and reading
# (evaluation_pipeline/reading) code imports, plus the loaders under them. Their own dependencies
# are resolved by pip. torch (2.7.0 there) comes from the kit's venv instead.
PINS = (
    "transformers==4.51.3",
    "tokenizers==0.21.1",
    "huggingface-hub==0.31.0",
    "safetensors==0.5.3",
    "datasets==3.6.0",
    "aiohttp==3.11.18",
    "numpy==2.2.5",
    "pandas==2.2.3",
    "scipy==1.15.2",
    "statsmodels==0.14.4",
    "patsy==1.0.1",
    "tqdm==4.67.1",
    "regex==2024.11.6",
    "PyYAML==6.0.2",
    "requests==2.32.3",
    "pillow==11.2.1",
)
ENV_VAR = "BABYLM_OFFICIAL_ENV"
STAMP = ".babylm-official-pins"  # the pin list, written last: its presence marks a complete folder


def pins_key(pins: tuple[str, ...] = PINS) -> str:
    """Hash of the pin list and the interpreter version (compiled wheels are per Python version)."""
    text = "\n".join(sorted(pins)) + f"\npython{sys.version_info.major}.{sys.version_info.minor}\n"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def default_dir(pins: tuple[str, ...] = PINS) -> Path:
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "babylm-kit" / f"official-{pins_key(pins)}"


def _stamp_text(pins: tuple[str, ...]) -> str:
    return "\n".join(sorted(pins)) + f"\n# key {pins_key(pins)}\n"


def is_built(folder: Path, pins: tuple[str, ...] = PINS) -> bool:
    stamp = folder / STAMP
    return stamp.is_file() and stamp.read_text(encoding="utf-8") == _stamp_text(pins)


def ensure(folder: Path | None = None, pins: tuple[str, ...] = PINS, log=print) -> Path:
    """The package folder, installed from the package index on first use (temp folder + rename).

    Raises RuntimeError with pip's last lines when the install fails, and when ``folder`` exists but
    holds other pins (a folder given through $BABYLM_OFFICIAL_ENV is never overwritten).
    """
    folder = Path(folder) if folder else default_dir(pins)
    if is_built(folder, pins):
        return folder
    if folder.exists():
        raise RuntimeError(f"{folder} exists but was not built for these pins (no matching {STAMP}); "
                           f"remove it or point {ENV_VAR} at another folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    log(f"[official-env] first use: installing {len(pins)} pinned packages from the package index into {folder} "
        "(cached for later runs)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-tmp-", dir=folder.parent))
    # A constraint on the venv's own torch version: should anything ever ask for torch, pip takes
    # that version (here the local CPU wheel) instead of resolving a multi-GB CUDA build.
    import importlib.metadata as md

    constraints = tmp.parent / f"{tmp.name}.constraints.txt"
    try:
        constraints.write_text(f"torch=={md.version('torch')}\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
               "--target", str(tmp), "--constraint", str(constraints), *pins]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if res.returncode != 0:
            raise RuntimeError(f"pip could not install the official pins into {folder}:\n{res.stderr[-2000:]}")
        for stray in tmp.glob("torch"):  # the venv's torch must win; see the constraint above
            shutil.rmtree(stray)
        (tmp / STAMP).write_text(_stamp_text(pins), encoding="utf-8")
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished first; keep its folder if it is complete
            if not is_built(folder, pins):
                raise
    finally:
        constraints.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"[official-env] ready: {folder}")
    return folder


def environ(folder: Path, *extra_paths: str | Path, base: dict | None = None) -> dict[str, str]:
    """Environment for a fresh interpreter of this venv that imports the official versions first.

    ``extra_paths`` (e.g. the official checkout's ``strict/`` folder) come after the package folder.
    """
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), *map(str, extra_paths)])
    env["PYTHONNOUSERSITE"] = "1"
    return env


def versions(folder: Path) -> dict[str, str]:
    """Versions a fresh interpreter sees with ``folder`` first (a check that the folder really wins)."""
    import json

    code = ("import json, numpy, tokenizers, torch, transformers; print(json.dumps({'transformers': "
            "transformers.__version__, 'tokenizers': tokenizers.__version__, 'torch': torch.__version__, "
            "'numpy': numpy.__version__}))")
    res = subprocess.run([sys.executable, "-c", code], env=environ(folder), capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError(f"the official environment in {folder} does not import: {res.stderr[-1500:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    where = ensure()
    print(where)
    print(versions(where))
