#!/usr/bin/env bash
# Regenerate the two locks from pyproject.toml (+ torch's pure-Python deps). They are generated,
# never edited by hand.
#
#   requirements.lock      what the kit needs to run: the image, reproduce.sh, `INSTALL_DEV=0
#                          docker/install.sh`. No development tool, no optional tracker.
#   requirements-dev.lock  the same pins, plus the extras dev (pytest, pytest-timeout, ruff,
#                          hadolint), wandb and multilingual (lm_eval; the tests exercise both): what `docker/install.sh`
#                          installs by default, for the tests and CI. Compiled with the runtime lock
#                          as its constraints, so a package in both has one version in both.
#
# An existing lock's pins are kept unless a requirement changed (uv prefers the output file's
# versions); delete a lock to re-resolve it from scratch. torch is overridden away (see
# docker/lock-overrides.txt) because install.sh pins it on its own: PyPI's Linux torch wheel is
# the CUDA build, and its hashes would drag in GBs of nvidia wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
tooldir=$(mktemp -d)
trap 'rm -rf "$tooldir"' EXIT
python3 -m venv "$tooldir/venv"
"$tooldir/venv/bin/pip" install -q "uv==$UV_VERSION"
compile() {
    "$tooldir/venv/bin/uv" pip compile --quiet --generate-hashes --python-version 3.11 \
        --python-platform x86_64-manylinux_2_28 --override docker/lock-overrides.txt --no-header \
        --custom-compile-command "docker/lock.sh" "$@" pyproject.toml docker/torch-deps.in
}
compile -o requirements.lock
# The runtime pins go in as plain name==version constraints (under the lock's own name, so the
# "via -c requirements.lock" notes in the dev lock name the file they come from).
mkdir "$tooldir/pins"
grep -E '^[A-Za-z0-9._-]+==' requirements.lock | sed 's/ .*//' > "$tooldir/pins/requirements.lock"
compile --extra dev --extra wandb --extra multilingual --constraint "$tooldir/pins/requirements.lock" -o requirements-dev.lock
sed -i "s|$tooldir/pins/||" requirements-dev.lock
echo "wrote requirements.lock ($(grep -c '^[a-z]' requirements.lock) packages)" \
     "and requirements-dev.lock ($(grep -c '^[a-z]' requirements-dev.lock) packages)"
