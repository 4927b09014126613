#!/usr/bin/env bash
# The device run: everything the GPU must show, in one call of about 8 minutes (see
# docs/benchmarks.md, "GPU run"). Runs from the repository root of a checkout that carries .device/
# (made by bench/device/prepare.sh): installs its wheels into a target folder on PYTHONPATH, unpacks
# its data, then runs the stages, each under its own time cap (timeout), each in its own process:
#
#   1. matmul.py         the card's bf16 matrix-product rate (the MFU denominator)
#   2. throughput.py     GPT-2 124M at 512 and RoBERTa 125M at 128, bf16, compiled: kit loop vs Trainer
#   3. real_run.py       GPT-BERT at the published strict-small shape (and GPT-2 at its size when
#                        it fits) on all the carried text, then scored as a submission is
#   4. scoring_speed.py  full BLiMP + supplement at the 124M causal and masked shapes
#
# After every stage, finished or not, $OUT/results.json and $OUT/results.md are rewritten from
# every part written so far (a stage saves its part after each row), so a stage that fails or
# hits its cap keeps what it finished and the next stage still runs; $OUT/run.log holds the log.
#
# Usage: bash bench/device/run.sh            (on the GPU machine; $OUT is where results go)
#        bash bench/device/run.sh --plan     (print the stage caps and their total, run nothing)
#        SMOKE=1 bash bench/device/run.sh    (every stage on the CPU with tiny shapes, a few minutes)
# Environment: STAGES (default 1,2,3,4; e.g. STAGES=3 to rerun one), CAP_0 .. CAP_4 (seconds, to
#   override a stage's cap), REAL_EPOCHS (stage 3, default 10), OUT (default bench/results/device),
#   WORK (default $TMPDIR/babylm-device), PACK (default .device), PY (default python3; with SMOKE=1
#   .venv/bin/python when present), FAIL_STAGE=N (stage N fails once its part is written: a check).
set -uo pipefail
cd "$(dirname "$0")/../.."

SMOKE="${SMOKE:-0}"
NAMES=(setup matmul throughput real_run scoring_speed)
if [ "$SMOKE" = 1 ]; then
  DEFAULT_CAPS=(120 120 240 420 240)  # tiny shapes on a shared CPU: limits, not targets
else
  DEFAULT_CAPS=(20 25 120 240 75)     # 480 s in all
fi
BUDGET_S=480
CAPS=()
total=0
for i in 0 1 2 3 4; do
  var="CAP_$i"
  CAPS[i]="${!var:-${DEFAULT_CAPS[$i]}}"
  total=$((total + CAPS[i]))
done
if [ "${1:-}" = "--plan" ]; then
  for i in 0 1 2 3 4; do echo "stage $i ${NAMES[$i]}: cap ${CAPS[$i]} s"; done
  echo "total_s=$total"
  exit 0
fi
if [ "$SMOKE" != 1 ] && [ "$total" -gt "$BUDGET_S" ]; then
  echo "error: the stage caps add up to $total s, over the run's $BUDGET_S s; lower a CAP_N" >&2
  exit 2
fi

PY="${PY:-}"
if [ -z "$PY" ]; then
  PY=python3
  [ "$SMOKE" = 1 ] && [ -x .venv/bin/python ] && PY=.venv/bin/python
fi
OUT="${OUT:-bench/results/device}"
WORK="${WORK:-${TMPDIR:-/tmp}/babylm-device}"
PACK="${PACK:-.device}"
STAGES="${STAGES:-1,2,3,4}"
smoke=()
[ "$SMOKE" = 1 ] && smoke=(--smoke)
mkdir -p "$OUT" "$WORK/stages" || exit 1
exec > >(tee -a "$OUT/run.log") 2>&1

export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
# The smoke path shares a small CPU: one thread per process (more only wait for each other there).
[ "$SMOKE" = 1 ] && export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export BABYLM_CACHE="$WORK/cache" HF_HOME="$WORK/hf" PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"

# A stage rewrites the results files after each row too (bench/device/results.py): a run stopped
# from outside mid-stage still returns that stage's rows.
export DEVICE_RUN_OUT="$OUT" DEVICE_RUN_CAPS="$(IFS=,; echo "${CAPS[*]}")"
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
record() {  # stage, exit code (-1: starting), seconds
  "$PY" bench/device/results.py record --work "$WORK" --out "$OUT" --stage "$1" --rc "$2" --seconds "$3" \
    --caps "$DEVICE_RUN_CAPS" || echo "warning: the results of stage $1 could not be written" >&2
}

# ---- 0. set-up: wheels, data, a check that the kit imports --------------------------------------
echo "== stage 0: setup (cap ${CAPS[0]} s); $("$PY" --version 2>&1) at $(command -v "$PY")"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
start=$EPOCHREALTIME
setup() {
  for n in ${STAGES//,/ }; do rm -f "$WORK/stages/$n.json"; done  # a rerun replaces those parts only
  if compgen -G "$PACK/wheels/*.whl" >/dev/null; then
    timeout "${CAPS[0]}" "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$WORK/site" "$PACK"/wheels/*.whl || return 1
  else
    echo "no wheels in $PACK/wheels: $PY must have fire and datasets itself"
  fi
  [ -f "$PACK/data.tar.gz" ] || { echo "error: no $PACK/data.tar.gz: run bench/device/prepare.sh and carry $PACK" >&2; return 1; }
  rm -rf "$WORK/data"
  timeout "${CAPS[0]}" "$PY" -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter='data')" \
    "$PACK/data.tar.gz" "$WORK" || return 1
  if [ -f "$PACK/ewok_password" ]; then
    BABYLM_EWOK_PASSWORD="$(cat "$PACK/ewok_password")"
    export BABYLM_EWOK_PASSWORD
  fi
  timeout "${CAPS[0]}" "$PY" -c "import fire, datasets, babylm.cli, eval_export.commands" || return 1
}
setup
rc=$?
record 0 "$rc" "$(since "$start")"
[ "$rc" = 0 ] || { echo "error: set-up failed (exit $rc); no stage ran" >&2; exit 1; }

# ---- 1-4. the stages, each under its cap ----------------------------------------------------------
failed=0
run_stage() {  # number, module, its options
  local n="$1" module="$2" start=$EPOCHREALTIME rc
  shift 2
  echo "== stage $n: $module (cap ${CAPS[$n]} s)"
  record "$n" -1 0
  timeout --kill-after=5 "${CAPS[$n]}" "$PY" "bench/device/$module.py" --work "$WORK" "${smoke[@]}" "$@"
  rc=$?
  [ "$rc" = 0 ] || failed=$((failed + 1))
  record "$n" "$rc" "$(since "$start")"
}
if [ "$SMOKE" = 1 ]; then epochs="${REAL_EPOCHS:-1}"; else epochs="${REAL_EPOCHS:-10}"; fi
for n in ${STAGES//,/ }; do
  case "$n" in
    1) run_stage 1 matmul ;;
    2) run_stage 2 throughput --budget_s "$((CAPS[2] - 5))" ;;  # a row starts only while one still fits
    3) run_stage 3 real_run --budget_s "$((CAPS[3] - 10))" --epochs "$epochs" ;;
    4) run_stage 4 scoring_speed ;;
    *) echo "error: no stage '$n' (stages are 1, 2, 3, 4)" >&2; failed=$((failed + 1)) ;;
  esac
done

echo
cat "$OUT/results.md"
echo "device run: $failed stage(s) not done; caps add up to $total s; results in $OUT (results.md, results.json, run.log)"
[ "$failed" = 0 ]
