"""Runtime facts and switches: device and dtype choice, seeding, environment summary."""

from __future__ import annotations

import hashlib
import os
import platform
import random
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def code_version() -> str:
    """Git commit of the kit (with ``-dirty`` when the tree has changes), else the package version."""
    from babylm import __version__

    try:
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{__version__}+g{commit}{'-dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        # No git checkout (the container image): the commit comes from the image's build argument.
        commit = os.environ.get("BABYLM_COMMIT", "")
        if commit in ("", "unknown"):
            return __version__
        return f"{__version__}+g{commit[:12]}{'-dirty' if commit.endswith('-dirty') else ''}"


def lock_hash() -> str | None:
    lock = REPO_ROOT / "requirements.lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest()[:16] if lock.is_file() else None


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def resolve_precision(device: str, precision: str) -> str:
    """``auto`` becomes bf16 on a GPU that has it, else fp32; other values pass through."""
    import torch

    if precision != "auto":
        return precision
    return "bf16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "fp32"


def autocast(device: str, precision: str):
    """A fresh autocast context for ``precision`` (fp32: a no-op context; bf16/fp16: torch.autocast).

    Only matrix products run in the low precision; losses and log-softmaxes stay float32 because
    the kit computes them outside the model's own forward.
    """
    import contextlib

    import torch

    precision = resolve_precision(device, precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.split(":")[0], dtype=dtype)


def environment_summary() -> dict:
    import torch
    import transformers

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {
        "kit": code_version(),
        "lock_sha256": lock_hash(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda,
        "gpus": gpus,
        "cpu_threads": torch.get_num_threads(),
        "hf_hub_offline": os.environ.get("HF_HUB_OFFLINE", "0"),
    }
