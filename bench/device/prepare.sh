#!/usr/bin/env bash
# Prepare the device run on this (CPU) machine: everything bench/device/run.sh needs on a GPU
# machine that has no network, its own Python 3.12 (torch 2.11, transformers 5.17, tokenizers,
# safetensors, accelerate, huggingface_hub, tensorboard), and receives only the working tree plus
# at most 8 carried ignored paths, 64 MiB in all.
#
#   1. the wheels that machine lacks (fire, datasets and what they need beyond its packages), one
#      version each, at the versions of requirements.lock, for CPython 3.12 on manylinux x86-64,
#      into .device/wheels/;
#   2. the data the run reads (every training text of the corpus slices, the evaluation sets
#      stages 3 and 4 score), from the reference folder tests/reference.py finds ($BABYLM_SHARED,
#      else shared/ beside the checkout), as .device/data.tar.gz; with BABYLM_EWOK_PASSWORD set
#      (the password the official README gives), EWoK fast's password too;
#   3. checks: every need of the wheels and of the kit is carried or on the machine; the working
#      tree plus .device/ stays under 64 MiB;
#   4. prints the run call: the command, the paths to carry and the time limit to ask for.
#
# Usage: bash bench/device/prepare.sh
# Environment: WHEELS=download (default) | keep (use .device/wheels as it is, offline) | none;
#   SMOKE=1 cuts the corpus files to a few thousand words each (the CPU smoke run of run.sh);
#   LIMIT_MIB (default 64); PACK (default .device: the carried folder); PY (default .venv/bin/python,
#   else python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PY:-.venv/bin/python}"; [ -x "$PY" ] || PY=python3
WHEELS="${WHEELS:-download}"
PACK="${PACK:-.device}"
# Missing on the GPU machine: fire (the command line), datasets (packing) and pydantic (the
# options), and of their needs termcolor, dill, multiprocess, pydantic-core, annotated-types and
# typing-inspection; everything else they need is there (pack.py checks).
NAMES=(fire termcolor datasets dill multiprocess pydantic pydantic-core annotated-types typing-inspection)

shared="$("$PY" -m tests.reference)" || { echo "error: no reference folder: set BABYLM_SHARED to the folder holding data/babylm and data/eval" >&2; exit 1; }
mkdir -p "$PACK"

case "$WHEELS" in
  download)
    pins=()
    for name in "${NAMES[@]}"; do
      pin="$(grep -i -m1 "^${name}==" requirements.lock | cut -d' ' -f1)" \
        || { echo "error: requirements.lock pins no $name" >&2; exit 1; }
      pins+=("$pin")
    done
    rm -rf "$PACK/wheels"
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d "$PACK/wheels" "${pins[@]}"
    ;;
  keep) [ -d "$PACK/wheels" ] || { echo "error: WHEELS=keep but $PACK/wheels does not exist" >&2; exit 1; } ;;
  none) rm -rf "$PACK/wheels" ;;
  *) echo "error: WHEELS must be download, keep or none, got '$WHEELS'" >&2; exit 2 ;;
esac

smoke=(); [ "${SMOKE:-0}" = 1 ] && smoke=(--smoke)
"$PY" bench/device/pack.py --shared "$shared" --pack "$PACK" "${smoke[@]}" --limit_mib "${LIMIT_MIB:-64}"
