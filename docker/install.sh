#!/usr/bin/env bash
# The one install path of the kit: creates (or refreshes) a virtual environment from the lock.
# README, .ci/run, reproduce.sh and the Dockerfile all call this script.
#
#   INSTALL_DEV      1: requirements-dev.lock, the runtime pins plus the development tools (pytest,
#                    ruff, hadolint) and wandb, for the tests (README command 2, CI); 0: only
#                    requirements.lock, what the kit needs to run (reproduce.sh, the image). An
#                    environment made with 1 also serves 0.                      (default: 1)
#   VENV             where the environment goes              (default: .venv)
#   PYTHON           interpreter that creates it             (default: python3)
#   TORCH_SPEC       the pinned torch wheel: a requirement or a wheel file path
#                                                            (default: torch==2.13.0, the CPU build)
#   TORCH_INDEX      index for CUDA/CPU torch wheels         (default: none; the image sets it)
#   TORCH_DEPS       1: let pip install torch's own requirements too (CUDA builds need their
#                    nvidia-* runtime wheels); 0: --no-deps  (default: 0)
#   WHEELHOUSE       a folder of the locked wheels (`pip download --no-deps --require-hashes -r
#                    requirements.lock -d DIR`): install from it alone, with no index (offline
#                    installs; CI's image build). Hashes are checked all the same.  (default: none)
#   INSTALL_PROJECT  0: dependencies only, without the kit itself. The Dockerfile uses it to
#                    build the dependency layer before the source is copied; a later run with
#                    the default 1 then only adds the editable install.  (default: 1)
#
# Idempotent: a stamp holding the lock's hash + TORCH_SPEC skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
TORCH_INDEX=${TORCH_INDEX:-}
TORCH_DEPS=${TORCH_DEPS:-0}
INSTALL_PROJECT=${INSTALL_PROJECT:-1}
WHEELHOUSE=${WHEELHOUSE:-}
INSTALL_DEV=${INSTALL_DEV:-1}

lock=requirements.lock
[ "$INSTALL_DEV" = 0 ] || lock=requirements-dev.lock
stamp="$VENV/.babylm-install-stamp"
want="$(sha256sum "$lock" | cut -d' ' -f1) $TORCH_SPEC"
# The dev lock holds every pin of the runtime lock (docker/lock.sh), so its environment serves both.
serves=("$want")
[ ! -f requirements-dev.lock ] || serves+=("$(sha256sum requirements-dev.lock | cut -d' ' -f1) $TORCH_SPEC")
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
# Where the locked wheels come from: the package index, or only the local wheelhouse.
source_args=()
[ -z "$WHEELHOUSE" ] || source_args=(--no-index --find-links "$WHEELHOUSE")

# -I keeps the working directory off sys.path, so "import babylm" proves the package is installed
# (not merely importable from the checkout).
stamp_current() { local s; for s in "${serves[@]}"; do [ "$(cat "$stamp")" = "$s" ] && return 0; done; return 1; }
deps_current() { [ -f "$stamp" ] && stamp_current && "$VENV/bin/python" -I -c "import torch" 2>/dev/null; }
project_current() { "$VENV/bin/python" -I -c "import babylm" 2>/dev/null; }

install_project() {
    # The kit itself, editable, with no dependency resolution (everything is already pinned).
    "${pip[@]}" install --no-deps --no-build-isolation -e .
    "${pip[@]}" check
}

if deps_current; then
    if [ "$INSTALL_PROJECT" = 0 ] || project_current; then
        echo "[install] $VENV is up to date with $lock"
        exit 0
    fi
    install_project
    echo "[install] done: kit installed into $VENV"
    exit 0
fi

echo "[install] creating $VENV with $($PYTHON --version 2>&1)"
"$PYTHON" -m venv "$VENV"
# torch first and on its own: the lock leaves it out, and --no-deps keeps pip from resolving a
# different (CUDA) build through another package's requirement.
torch_args=(install)
[ "$TORCH_DEPS" = 1 ] || torch_args+=(--no-deps)
if [ -n "$TORCH_INDEX" ]; then
    torch_args+=(--index-url "$TORCH_INDEX")
else
    torch_args+=("${source_args[@]}")
fi
"${pip[@]}" "${torch_args[@]}" "$TORCH_SPEC"
"${pip[@]}" install --require-hashes --no-deps "${source_args[@]}" -r "$lock"
if [ "$INSTALL_PROJECT" = 0 ]; then
    "${pip[@]}" check
else
    install_project
fi
echo "$want" > "$stamp"
echo "[install] done: $("$VENV/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
