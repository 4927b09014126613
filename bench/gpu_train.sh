#!/usr/bin/env bash
# GPU training benchmark for an H100/H200: GPT-2 124M and RoBERTa 125M at sequence 128 and 512,
# bf16, kit loop (torch.compile) vs transformers Trainer; tokens/s and MFU against the card's
# measured bf16 matmul rate. Writes bench/results/gpu_train.json and prints a summary.
# Targets: GPT-2 seq 512 MFU >= 45 %, kit >= 1.5x the Trainer engine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
OUT="${OUT:-bench/results/gpu_train.json}"
STEPS="${STEPS:-60}"

# ---- 1. self-checks: a GPU, a CUDA torch, the kit importable ---------------------------------
command -v nvidia-smi >/dev/null || { echo "error: no nvidia-smi: this script needs a GPU machine" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: torch has no CUDA')"
"$PY" -m babylm env

# ---- 2. the benchmark ------------------------------------------------------------------------
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
"$PY" bench/gpu_bench.py --out "$OUT" --steps "$STEPS" --budget_s "${BUDGET_S:-0}"

# ---- 3. summary against the targets -----------------------------------------------------------
"$PY" - "$OUT" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
g = next(x for x in r["rows"] if x["arch"] == "gpt2" and x["seq"] == 512 and x["engine"] == "torch")
print(f"GPT-2 seq 512 MFU {g['mfu']:.1%} (target 45%); kit/hf ratios: " +
      ", ".join(f"{k} {v:.2f}x" for k, v in r["ratios"].items()) + " (target 1.5x)")
PYEOF
