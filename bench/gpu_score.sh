#!/usr/bin/env bash
# GPU scoring benchmark for an H100/H200 (or any CUDA card): full filtered BLiMP + the BLiMP
# supplement (65,093 pairs, 130,186 sentences) with a 124M causal model (GPT-2 small shape) and a
# 125M masked model (BERT/RoBERTa-base shape), seeded random weights (no network needed).
#
# Self-checking, in this order (exit code non-zero on any failure):
#   1. CUDA is visible;
#   2. on a subset, our scorer equals the straightforward per-sentence scorer on the GPU in fp32
#      (same accuracies; bench/score_bench.py exits 1 otherwise);
#   3. the full run of each backend stays under its target (causal < 10 s, masked < 60 s).
#
# Usage: bash bench/gpu_score.sh [--dtype bfloat16] [--token_budget 262144]
# Environment: EVAL_DATA (default $BABYLM_EVAL_DATA), CORPUS (a text folder for the tokenizer, default
# $BABYLM_DATA; empty: BLiMP sentences), PY (default .venv/bin/python, else python).
set -euo pipefail
cd "$(dirname "$0")/.."
EVAL_DATA="${EVAL_DATA:-${BABYLM_EVAL_DATA:-evaluation_data}}"
PY="${PY:-.venv/bin/python}"; [ -x "$PY" ] || PY=python
DTYPE="bfloat16"; BUDGET=262144
while [ $# -gt 0 ]; do
  case "$1" in
    --dtype) DTYPE="$2"; shift 2 ;;
    --token_budget) BUDGET="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -d "$EVAL_DATA/blimp_filtered" ] || { echo "error: no $EVAL_DATA/blimp_filtered (set EVAL_DATA)" >&2; exit 1; }
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
  || { echo "error: CUDA is not available" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
CORPUS="${CORPUS:-${BABYLM_DATA:-}}"
COMMON=(--eval_data "$EVAL_DATA" --device cuda --corpus "$CORPUS" --token_budget "$BUDGET")
CAUSAL=(--backend causal --hidden 768 --layers 12 --model_vocab 50257)
MASKED=(--backend mlm --hidden 768 --layers 12 --model_vocab 50265)

echo "== 1. equality check on a subset (fp32, ours vs straightforward) =="
"$PY" bench/score_bench.py "${COMMON[@]}" "${CAUSAL[@]}" --limit 5 --dtype float32
"$PY" bench/score_bench.py "${COMMON[@]}" "${MASKED[@]}" --limit 2 --dtype float32

check() {  # $1 label, $2 target seconds, rest: score_bench args
  local label="$1" target="$2"; shift 2
  local log; log="$(mktemp)"
  "$PY" bench/score_bench.py "${COMMON[@]}" "$@" --skip_baseline | tee "$log"
  local secs; secs="$(sed -n 's/.*ours: \([0-9.]*\) s.*/\1/p' "$log" | head -1)"
  rm -f "$log"
  [ -n "$secs" ] || { echo "FAIL $label: no timing found" >&2; return 1; }
  if awk -v s="$secs" -v t="$target" 'BEGIN { exit !(s < t) }'; then
    echo "PASS $label: ${secs} s < ${target} s"
  else
    echo "FAIL $label: ${secs} s >= ${target} s" >&2; return 1
  fi
}
echo "== 2. full BLiMP + supplement, weights in $DTYPE (log-softmax in fp32) =="
status=0
check "causal 124M" 10 "${CAUSAL[@]}" --dtype "$DTYPE" || status=1
check "masked 125M" 60 "${MASKED[@]}" --dtype "$DTYPE" || status=1
exit $status
