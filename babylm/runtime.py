"""Runtime facts and switches: device and dtype choice, seeding, environment summary."""

from __future__ import annotations

import hashlib
import os
import platform
import random
import subprocess
from pathlib import Path

from babylm import __version__

REPO_ROOT = Path(__file__).resolve().parent.parent


def _in_checkout() -> bool:
    """Whether the kit runs from its own git checkout (an editable install), not from an installed
    wheel: a wheel's folder may lie inside some other repository, whose commit is not the kit's."""
    return (REPO_ROOT / ".git").exists() and (REPO_ROOT / "pyproject.toml").is_file()


def code_version() -> str:
    """Git commit of the kit (with ``-dirty`` when the tree has changes), else the package version."""
    if _in_checkout():
        try:
            commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
                                    capture_output=True, text=True, timeout=10, check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            return f"{__version__}+g{commit}{'-dirty' if dirty else ''}"
        except (OSError, subprocess.SubprocessError):
            pass  # no git program: as below
    # No git checkout (the container image): the commit comes from the image's build argument.
    commit = os.environ.get("BABYLM_COMMIT", "")
    if commit in ("", "unknown"):
        return __version__
    return f"{__version__}+g{commit[:12]}{'-dirty' if commit.endswith('-dirty') else ''}"


def version_source() -> str:
    """Where :func:`code_version` comes from: the git checkout, the image's build argument, or the
    installed package's metadata (with the wheel, URL or commit pip recorded, PEP 610)."""
    import json
    from importlib import metadata

    if _in_checkout():
        return f"git checkout {REPO_ROOT}"
    if os.environ.get("BABYLM_COMMIT", "") not in ("", "unknown"):
        return "the image's build argument BABYLM_COMMIT"
    try:
        dist = metadata.distribution("babylm-kit")
    except metadata.PackageNotFoundError:
        return f"the package folder {REPO_ROOT} (not installed)"
    origin = json.loads(dist.read_text("direct_url.json") or "{}")
    commit = origin.get("vcs_info", {}).get("commit_id")
    where = f" from {origin['url']}" + (f" at commit {commit}" if commit else "") if origin.get("url") else ""
    return f"installed package babylm-kit {dist.version}{where}"


def lock_hash() -> str | None:
    """sha256 (16 hex digits) of the requirements.lock the environment was built from; None for an
    installed wheel, whose dependencies pip resolved from the package's ranges."""
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
        "kit_source": version_source(),
        "lock_sha256": lock_hash() or "none: installed without requirements.lock (dependencies as pip resolved them)",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda,
        "gpus": gpus,
        "cpu_threads": torch.get_num_threads(),
        "hf_hub_offline": os.environ.get("HF_HUB_OFFLINE", "0"),
    }
