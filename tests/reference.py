"""Where the external reference data lives: the one place that knows.

Some tests read real BabyLM corpus slices and the official evaluation data, which are not part of
the repository. They are looked up in ``$BABYLM_SHARED`` (a folder holding ``data/``), else in a
``shared/`` folder beside the checkout. On a machine without them those tests are skipped with one
stated reason; under ``CI=true`` they are required and fail instead.

``python -m tests.reference`` prints the folder (exit 1 when it is missing), for scripts that
mount it (docker/build-image.sh).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "BABYLM_SHARED"
REPO = Path(__file__).resolve().parent.parent
MISSING = f"reference data not found: set {ENV} to a folder holding data/babylm and data/eval"


def reference_dir() -> Path | None:
    """The reference folder, or None when it is not there."""
    path = Path(os.environ.get(ENV) or REPO.parent / "shared")
    return path if (path / "data").is_dir() else None


def required() -> bool:
    """True under CI (``CI=true``): missing reference data is then a failure, not a skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def copy_writable(src: Path, dst: Path) -> Path:
    """Copy a reference folder for a test to edit: the reference data may be read-only (it is
    where it is installed), so files and folders get the permissions of new ones, not the source's."""
    import shutil

    for folder, _, files in os.walk(src):
        target = dst / Path(folder).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(Path(folder) / name, target / name)
    return dst


if __name__ == "__main__":
    found = reference_dir()
    if found is None:
        print(MISSING, file=sys.stderr)
        sys.exit(1)
    print(found.resolve())
