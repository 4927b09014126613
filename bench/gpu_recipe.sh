#!/usr/bin/env bash
# The recipe bench (bench/recipe_bench.py) at the strict-small budget on one GPU: the kit's GPT-2,
# BERT and GPT-BERT recipes at GPT-BERT's published strict-small shape (12 layers x 384 hidden, 6
# heads), 100M words seen each (10 epochs of the 10M-word corpus), bf16, model + loss compiled;
# every final model and milestone checkpoint scored on the official fast sets (GPT-2 causal, BERT
# mlm, GPT-BERT mntp and causal). Prints the table with GPU (wall) minutes per recipe and writes
# $OUT.json / $OUT.md. An interrupted run continues where it stopped ($WORK keeps runs and scores).
#
# Usage:
#   BABYLM_DATA=<strict-small corpus folder> BABYLM_EVAL_DATA=<evaluation_data> \
#       [BABYLM_EWOK_PASSWORD=<password from the official README>] bash bench/gpu_recipe.sh [recipe_bench.py options]
# Environment: SEEDS (default 1), WORDS (default 100_000_000), SIZE (default strict-small),
#   LR (per recipe, default below), BATCH (sequences per step, default 128), WARMUP (default 200),
#   OUT (default bench/results/gpu_recipe), WORK (default bench/results/gpu_recipe_work), PY.
#   SMOKE=1 checks the script itself on the CPU: tiny models, 20,000 words, 2 items per subtask.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"; [ -x "$PY" ] || PY=python
DATA="${BABYLM_DATA:-}"
EVAL_DATA="${BABYLM_EVAL_DATA:-}"
[ -n "$DATA" ] && [ -d "$DATA" ] || { echo "error: set BABYLM_DATA to the strict-small corpus folder" >&2; exit 2; }
[ -n "$EVAL_DATA" ] && [ -d "$EVAL_DATA" ] || { echo "error: set BABYLM_EVAL_DATA to the evaluation_data folder" >&2; exit 2; }
# Learning rates: the CPU pilot's choice per recipe (docs/benchmarks.md), halved for the 6x deeper model.
LR="${LR:-gpt2=1e-3,bert=1e-3,gpt-bert=1e-3}"
OUT="${OUT:-bench/results/gpu_recipe}"
WORK="${WORK:-bench/results/gpu_recipe_work}"

if [ "${SMOKE:-0}" = 1 ]; then
    # ---- the CPU path of this script, in a minute or two
    run=(--device cpu --precision fp32 --size tiny --words 20000 --seeds 1 --limit 2 --vocab_size 2000
         --warmup_steps 5 --batch_size 16)
    OUT="${OUT}_smoke"; WORK="${WORK}_smoke"
else
    # ---- 1. self-checks: a GPU, a CUDA torch
    command -v nvidia-smi >/dev/null || { echo "error: no nvidia-smi: this script needs a GPU machine" >&2; exit 1; }
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: torch has no CUDA')"
    run=(--device cuda --precision bf16 --compile --size "${SIZE:-strict-small}" --words "${WORDS:-100_000_000}"
         --seeds "${SEEDS:-1}" --batch_size "${BATCH:-128}" --warmup_steps "${WARMUP:-200}")
fi
"$PY" -m babylm env

# ---- 2. the bench: train, score, tabulate (times per recipe are in the table and the JSON)
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
start=$SECONDS
"$PY" bench/recipe_bench.py --corpus "$DATA" --eval_data "$EVAL_DATA" --lr "$LR" "${run[@]}" \
    --work "$WORK" --out "$OUT" "$@"
echo "gpu_recipe.sh: $(( (SECONDS - start) / 60 )) min wall in all; table: $OUT.md"
