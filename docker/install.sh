#!/usr/bin/env bash
# The one install path of the kit: creates (or refreshes) a virtual environment from
# requirements.lock. README, .ci/run, reproduce.sh and the Dockerfile all call this script.
#
#   VENV         where the environment goes            (default: .venv)
#   PYTHON       interpreter that creates it           (default: python3)
#   TORCH_SPEC   the pinned torch wheel                (default: torch==2.13.0, the CPU build)
#   TORCH_INDEX  extra index for CUDA/CPU torch wheels (default: none; the image sets it)
#
# Idempotent: a stamp holding the lock's hash + TORCH_SPEC skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
TORCH_INDEX=${TORCH_INDEX:-}

stamp="$VENV/.babylm-install-stamp"
want="$(sha256sum requirements.lock | cut -d' ' -f1) $TORCH_SPEC"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import babylm, torch" 2>/dev/null; then
    echo "[install] $VENV is up to date with requirements.lock"
    exit 0
fi

echo "[install] creating $VENV with $($PYTHON --version 2>&1)"
"$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
# torch first and on its own: the lock leaves it out, and --no-deps keeps pip from resolving a
# different (CUDA) build through another package's requirement.
if [ -n "$TORCH_INDEX" ]; then
    "${pip[@]}" install --no-deps --index-url "$TORCH_INDEX" "$TORCH_SPEC"
else
    "${pip[@]}" install --no-deps "$TORCH_SPEC"
fi
"${pip[@]}" install --require-hashes --no-deps -r requirements.lock
# The kit itself, editable, with no dependency resolution (everything is already pinned).
"${pip[@]}" install --no-deps --no-build-isolation -e .
"$VENV/bin/python" -m pip check
echo "$want" > "$stamp"
echo "[install] done: $("$VENV/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
