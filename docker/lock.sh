#!/usr/bin/env bash
# Regenerate requirements.lock from pyproject.toml (+ torch's pure-Python deps).
# The lock is generated, never edited by hand. torch is overridden away (see
# docker/lock-overrides.txt) because install.sh pins it on its own: PyPI's Linux
# torch wheel is the CUDA build, and its hashes would drag in GBs of nvidia wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
tooldir=$(mktemp -d)
trap 'rm -rf "$tooldir"' EXIT
python3 -m venv "$tooldir/venv"
"$tooldir/venv/bin/pip" install -q "uv==$UV_VERSION"
"$tooldir/venv/bin/uv" pip compile --quiet --generate-hashes --python-version 3.11 \
    --python-platform x86_64-manylinux_2_28 --extra dev \
    --override docker/lock-overrides.txt --no-header --custom-compile-command "docker/lock.sh" \
    -o requirements.lock pyproject.toml docker/torch-deps.in
echo "wrote requirements.lock ($(grep -c '^[a-z]' requirements.lock) packages)"
