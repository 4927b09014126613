#!/usr/bin/env bash
# reproduce.sh: the kit's experiments as executable documentation.
#
#   ./reproduce.sh smoke                    embedded synthetic corpus, CPU, every stage, a few minutes
#   ./reproduce.sh strict-small             official 10M-word data (BABYLM_DATA or downloaded)
#   ./reproduce.sh cpu-real                 real data on a CPU: a small GPT-2 on 1.5M words, ~10 min of training
#   ./reproduce.sh multilingual-smoke       the multilingual track (eng, nld, zho) on a small real mixed corpus, CPU
#   ./reproduce.sh multilingual             the multilingual track on BABYLM_MULTILINGUAL_CORPUS
#   ./reproduce.sh --list                   presets and their numbered steps
#   ./reproduce.sh --only STEP PRESET       one step          ./reproduce.sh --from STEP PRESET   from STEP on
#   ./reproduce.sh --dry-run PRESET         print the commands instead of running them
#   ./reproduce.sh PRESET -- --flag value   pass flags to the commands of one step: the training step(s)
#                                           (train; seed: gpt ... best), or with --only/--from STEP, that
#                                           step's commands (e.g. --only export cpu-real -- --limit 50).
#                                           They come last, so they override the preset's own values.
#
# Every step skips itself when its output exists, so an interrupted run continues where it
# stopped; delete a step's output to redo it. Outputs go to $BABYLM_OUT/<preset>/ (default
# runs/<preset>/), together with reproduce.log (everything printed) and env.txt. A step that is
# skipped because its output exists does not use the flags after --: delete its output to redo it.
#
# Environment:
#   BABYLM_OUT           root of the run folders                     (default: runs; /outputs in the image)
#   BABYLM_DATA          local folder with the official BabyLM data  (default: downloaded once into
#                        $BABYLM_OUT/data/<track>/ with `python -m babylm download`)
#   BABYLM_YEAR          challenge year of the data to download     (default: 2025)
#   BABYLM_EVAL_DATA     the official evaluation_data folder (zero-shot tasks and glue_filtered/);
#                        required by the export and fine-tuning steps of the official-data presets;
#                        with smoke, it adds the official tasks that fit a CPU run (BLiMP-fast,
#                        supplement, WUG-adjective, reading) and the fine-tuning step (RTE)
#   BABYLM_EWOK_PASSWORD password of ewok_fast.zip (given in the official README); adds EWoK-fast
#   BABYLM_GPUS          GPUs to train on; more than one launches torchrun   (default: all visible)
#   BABYLM_SKIP_INSTALL  1: do not run docker/install.sh (set inside the image)
#   BABYLM_PYTHON        interpreter                                 (default: .venv/bin/python)
#   BABYLM_MULTILINGUAL_DATA    the multilingual track's evaluation data (finetune/<xx>/<task>/, zhoblimp/,
#                        multiblimp/, meco/ ...; layout in docs/multilingual.md); required by both
#                        multilingual presets (the smoke corpus is made of its fine-tuning text)
#   BABYLM_MULTILINGUAL_CORPUS  the multilingual preset's corpus: eng/, nld/, zho/ folders of text
set -euo pipefail

KIT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# ---------------------------------------------------------------------------------------------
# Presets and steps
# ---------------------------------------------------------------------------------------------
PRESETS=(smoke strict-small strict gpt-bert-strict-small gpt-bert-strict seed cpu-real multilingual-smoke multilingual)
declare -A PRESET_INFO=(
    [smoke]="embedded synthetic corpus on CPU: every stage in a few minutes (babylm/presets/smoke.yaml)"
    [cpu-real]="real data on a CPU: a small GPT-2 on 1.5M words of BABYLM_DATA (or the downloaded strict-small data), about ten minutes of training on two cores, every task whose data is there (babylm/presets/cpu_real.yaml)"
    [strict-small]="official 10M-word data, the strict-small track (babylm/presets/strict_small.yaml)"
    [strict]="official 100M-word data, the strict track (babylm/presets/strict.yaml)"
    [gpt-bert-strict-small]="GPT-BERT on the official 10M-word data, scored with mntp and causal (babylm/presets/gpt_bert_strict_small.yaml)"
    [gpt-bert-strict]="GPT-BERT on the official 100M-word data, scored with mntp and causal (babylm/presets/gpt_bert_strict.yaml)"
    [multilingual-smoke]="the multilingual track on CPU: a mixed eng/nld/zho corpus from the fine-tuning text of BABYLM_MULTILINGUAL_DATA, a tiny GPT-2, ZhoBLiMP and English MultiBLiMP through lm-eval, two fine-tuning tasks per language, MECO, the two files (babylm/presets/multilingual_smoke.yaml)"
    [multilingual]="the multilingual track: BABYLM_MULTILINGUAL_CORPUS (eng/, nld/, zho/) under the 100M English-equivalent-word budget, every zero-shot task with local data, every fine-tuning task (babylm/presets/multilingual.yaml)"
    [seed]="small-model experiments on the 10M-word data: tokenizer, small GPT and BERT with their curricula, a scaled-up GPT (babylm/presets/small_*.yaml, scaled_gpt.yaml)"
)
PIPELINE="corpus tokenizer train test export finetune collate validate report"
ML_PIPELINE="ml-corpus ml-tokenizer ml-train ml-zeroshot ml-finetune ml-meco ml-collate ml-validate"
declare -A PRESET_STEPS=(
    [smoke]="$PIPELINE"
    [cpu-real]="$PIPELINE"
    [strict-small]="$PIPELINE"
    [strict]="$PIPELINE"
    [gpt-bert-strict-small]="$PIPELINE"
    [gpt-bert-strict]="$PIPELINE"
    [multilingual-smoke]="$ML_PIPELINE"
    [multilingual]="$ML_PIPELINE"
    [seed]="corpus tokenizer gpt gpt-test gpt-easy-hard gpt-hard-easy bert bert-test bert-easy-hard bert-hard-easy best best-test export finetune collate validate report"
)
# The steps that train a model: they get the flags after -- unless --only/--from names another step.
TRAIN_STEPS="train ml-train gpt gpt-easy-hard gpt-hard-easy bert bert-easy-hard bert-hard-easy best"
PASS=() STEP_ARGS=()  # the flags after --, and those of the step running now
declare -A STEP_INFO=(
    [corpus]="get the corpus (embedded, BABYLM_DATA or download) and count its words"
    [tokenizer]="train the tokenizer on the training files"
    [train]="train the model, with milestone checkpoints (torchrun on several GPUs)"
    [test]="test-set loss and perplexity of the final model"
    [export]="zero-shot predictions of the final model and of every milestone checkpoint (each scoring backend)"
    [finetune]="fine-tune the final model on the classification tasks"
    [collate]="collate the predictions into the submission file (one per scoring backend)"
    [validate]="check the submission files against the official format and gold data"
    [report]="write report/report.md with its plots"
    [ml-corpus]="mix the languages' text under the budget (English-equivalent words: bytes / byte premium / 5.43)"
    [ml-tokenizer]="one byte-level BPE over the mixed corpus; prints each language's fertility"
    [ml-train]="train the model; milestones chck_<N>M in English-equivalent words (the corpus's milestone_unit_words)"
    [ml-zeroshot]="zero-shot tasks through lm-evaluation-harness, final model and milestones"
    [ml-finetune]="fine-tune the final model per language on the official files"
    [ml-meco]="MECO L1 and L2 per-word surprisals of the final model"
    [ml-collate]="the scores file and the predictions file"
    [ml-validate]="check the two files as the leaderboard checks multilingual files"
    [gpt]="small GPT (4 layers, 256 hidden, 4 heads)"
    [gpt-test]="test perplexity of the small GPT"
    [gpt-easy-hard]="small GPT, curriculum: easy files, then hard files"
    [gpt-hard-easy]="small GPT, curriculum: hard files, then easy files"
    [bert]="small BERT"
    [bert-test]="test perplexity of the small BERT"
    [bert-easy-hard]="small BERT, curriculum: easy files, then hard files"
    [bert-hard-easy]="small BERT, curriculum: hard files, then easy files"
    [best]="the best small model scaled up"
    [best-test]="test perplexity of the scaled-up model"
)

# Settings of a preset: track, corpus and data locations, config file per model, scoring backends
# (the first one's collated file is the submission).
set_preset() {
    PRESET=$1
    OUT_ROOT=${BABYLM_OUT:-runs}
    RUN="$OUT_ROOT/$PRESET"
    BACKENDS=causal
    case "$PRESET" in
    smoke)
        TRACK=strict-small
        DATA="$RUN/data"              # written by `babylm generate`: synthetic.{train,dev,test}
        CORPUS="$DATA"
        EVAL_DATA="$RUN/eval"         # made by the corpus step (link_eval_data): see there
        OFFICIAL_EVAL=${BABYLM_EVAL_DATA:-}
        GLUE_DATA=${BABYLM_EVAL_DATA:+$BABYLM_EVAL_DATA/glue_filtered}
        FINETUNE_TASKS=rte
        if [ -z "$OFFICIAL_EVAL" ]; then
            # only the synthetic minimal pairs, under the official folder name blimp_filtered/,
            # scored without the official item counts (--limit) at every revision
            SCORE_TASKS=blimp MILESTONE_TASKS=blimp MILESTONE_SET=full MAIN_FAST_TASKS="" SCORE_LIMIT=1000000
        else
            # The official tasks whose data is there and whose scoring fits a CPU smoke run (measured
            # on the 2-layer smoke model: about 40 s on 2 cores in all): the final model on the full
            # supplement and reading sets (official counts, collated) and on BLiMP-fast (full BLiMP,
            # 59,875 pairs, costs ~90 s more); the milestones on the fast sets. EWoK joins when
            # BABYLM_EWOK_PASSWORD opens ewok_fast.zip (score refuses ewok named without it). WUG is
            # not in the 2026 task set. Entity tracking is left out: its
            # 5-option items are up to 560 tokens long (47,415 strings, ~17M tokens: minutes on a CPU).
            # The synthetic pairs are scored beside them as a custom task (synthetic_blimp/).
            local synthetic="$EVAL_DATA/synthetic_blimp" ewok=""
            [ -z "${BABYLM_EWOK_PASSWORD:-}" ] || ewok=",ewok"
            SCORE_TASKS="blimp_supplement,reading,$synthetic"
            MAIN_FAST_TASKS="blimp$ewok"
            MILESTONE_TASKS="blimp_supplement$ewok,reading,$synthetic"
            MILESTONE_SET=fast SCORE_LIMIT=0
        fi
        CONFIG=smoke
        MODEL=smoke-gpt
        export CUDA_VISIBLE_DEVICES=""  # CPU by design: same numbers on every machine
        ;;
    cpu-real)
        # The official strict-small data (BABYLM_DATA, else downloaded): the preset trains on its first
        # 1.5M words seen. Every task of the track is scored whose data is in BABYLM_EVAL_DATA (score
        # names the ones it skips), and every fine-tuning task with its training file; the collated
        # file is the partial one while a section's data is absent (AoA, for one, is not distributed).
        TRACK=strict-small
        DATA=${BABYLM_DATA:-$OUT_ROOT/data/$TRACK}
        CORPUS="$DATA"
        EVAL_DATA=${BABYLM_EVAL_DATA:-}
        GLUE_DATA=${BABYLM_EVAL_DATA:+$BABYLM_EVAL_DATA/glue_filtered}
        FINETUNE_TASKS=boolq,mnli,mrpc,multirc,qqp,rte,wsc  # those without a training file are left out
        SCORE_TASKS="" MILESTONE_TASKS=""
        MILESTONE_SET=fast MAIN_FAST_TASKS="" SCORE_LIMIT=0
        OFFICIAL_EVAL=$EVAL_DATA
        CONFIG=cpu_real
        MODEL=cpu-real-model
        ;;
    strict-small|strict|gpt-bert-strict-small|gpt-bert-strict|seed)
        TRACK=strict-small
        [ "${PRESET%strict}" = "$PRESET" ] || TRACK=strict  # strict and gpt-bert-strict
        DATA=${BABYLM_DATA:-$OUT_ROOT/data/$TRACK}
        CORPUS="$DATA"
        EVAL_DATA=${BABYLM_EVAL_DATA:-}
        GLUE_DATA=${BABYLM_EVAL_DATA:+$BABYLM_EVAL_DATA/glue_filtered}
        FINETUNE_TASKS=boolq,mnli,mrpc,multirc,qqp,rte,wsc
        SCORE_TASKS="" MILESTONE_TASKS=""  # every task of the track
        MILESTONE_SET=fast MAIN_FAST_TASKS="" SCORE_LIMIT=0
        OFFICIAL_EVAL=$EVAL_DATA
        CONFIG=${PRESET//-/_}  # babylm/presets/strict_small.yaml, strict.yaml, gpt_bert_strict_small.yaml ...
        MODEL=$PRESET-model
        if [ "$PRESET" = seed ]; then CONFIG=scaled_gpt; MODEL=scaled_gpt; fi
        # GPT-BERT: masked next-token prediction, its training objective on most steps, is what the
        # official pipeline scores it with; causal scoring of the same weights is kept beside it
        [ "${PRESET#gpt-bert}" = "$PRESET" ] || BACKENDS="mntp causal"
        ;;
    multilingual-smoke|multilingual)
        TRACK=strict  # the milestone set chck_1M .. chck_1000M
        ML_DATA=${BABYLM_MULTILINGUAL_DATA:-}
        CORPUS="$RUN/corpus"
        EVAL_DATA="" GLUE_DATA=""
        CONFIG=${PRESET//-/_}
        MODEL=$PRESET-model
        if [ "$PRESET" = multilingual-smoke ]; then
            # a few items per subtask and tiny fine-tuning runs: the path, not the numbers
            ML_CORPUS_ARGS=(--finetune_data "$ML_DATA/finetune" --max_bytes 60000) ML_VOCAB=1000
            ML_TASKS=zhoblimp,multiblimp_eng ML_LIMIT=(--limit 5)
            ML_FT_ARGS=(--tasks sib200,mnli --limit 32 --epochs 1 --batch_size 16) ML_MECO_LIMIT=(--limit 2)
            export CUDA_VISIBLE_DEVICES=""
        else
            ML_CORPUS_ARGS=(--data "${BABYLM_MULTILINGUAL_CORPUS:-}") ML_VOCAB=16384
            ML_TASKS=available ML_LIMIT=() ML_FT_ARGS=() ML_MECO_LIMIT=()
        fi
        ;;
    esac
    BACKEND=${BACKENDS%% *}
    MODELS="$RUN/models"
    RESULTS="$RUN/results"
    SUBMISSION=$(submission_of "$BACKEND")
}
# submission_of BACKEND: the collated file of one backend. The smoke run scores the synthetic
# minimal pairs and at most part of the official tasks: its collated file is a partial one, checked
# against the gold data, not a submission. cpu-real's is the complete file when every section's data
# was there, else the partial one.
submission_of() {
    local full="$RESULTS/$MODEL/all_full_preds_and_fast_scores_$1.json"
    case "$PRESET" in
    smoke) echo "${full%.json}_partial.json" ;;
    cpu-real) if [ -e "$full" ]; then echo "$full"; else echo "${full%.json}_partial.json"; fi ;;
    *) echo "$full" ;;
    esac
}
partial_allowed() { [ "$PRESET" = smoke ] || [ "$PRESET" = cpu-real ]; }

# =============================================================================================
# STAGE COMMANDS: the only place that names the kit's CLI options. Each function runs one
# command; `kit` runs `python -m ...`, `launch` the same through torchrun on several GPUs.
# Presets choose hyperparameters through their config file (babylm/presets/<name>.yaml), so the flags
# here are only paths. A config file must hold one section per command it is given to
# (generate for smoke, tokenizer, train, test, finetune): without a section named after the
# command, the whole file is read as that command's options.
# =============================================================================================
cmd_generate()  { local STEP_ARGS=(); kit babylm generate --config "$CONFIG" --out_dir "$1"; }
cmd_download()  { local STEP_ARGS=(); kit babylm download --year "${BABYLM_YEAR:-2025}" --track "$TRACK" --out_dir "$1"; }
cmd_corpus()    { kit babylm corpus --corpus "$CORPUS" --files train --track "$TRACK" --out_dir "$1"; }
cmd_tokenizer() { kit babylm tokenizer --config "$2" --corpus "$CORPUS" --files train --track "$TRACK" --out_dir "$1"; }
# cmd_train RUN_NAME CONFIG
cmd_train()     { launch babylm train --config "$2" --corpus "$CORPUS" --tokenizer "$RUN/tokenizer" \
                      --track "$TRACK" --save_dir "$MODELS" --run_name "$1"; }
# cmd_test RUN_NAME CONFIG OUTPUT: the command prints its metrics as one JSON line, kept in OUTPUT
cmd_test()      { kit_json "$3" babylm test --config "$2" --model "$MODELS/$1/final" --corpus "$CORPUS" --files test; }
# cmd_score RUN_NAME REVISIONS EVAL_SET [TASKS]: zero-shot predictions of revisions (main, or
# milestones chck_<N>M: sub-folders of the run folder; a comma list is scored in one process) on the
# full or fast sets; TASKS is a comma list of task names and folders of BLiMP-format pairs (default:
# every task of the track).
cmd_score()     { local tasks=(); [ -z "${4:-}" ] || tasks=(--tasks "$4"); \
                  [ "$SCORE_LIMIT" = 0 ] || tasks+=(--limit "$SCORE_LIMIT"); \
                  kit eval_export score --model "$MODELS/$1" --revision "$2" --backend "$BACKEND" "${tasks[@]}" \
                      --eval_set "$3" --eval_data "$EVAL_DATA" --results "$RESULTS"; }
cmd_finetune()  { kit eval_export finetune --config "$CONFIG" --model "$MODELS/$1/final" --revision main \
                      --model_name "$1" --tasks "$FINETUNE_TASKS" --data_dir "$GLUE_DATA" --output_dir "$RESULTS"; }
cmd_collate()   { local partial=(); ! partial_allowed || partial=(--allow_partial true); \
                  kit eval_export collate --model "$MODEL" --backend "$BACKEND" --track "$TRACK" \
                      --results "$RESULTS" "${partial[@]}"; }
cmd_validate()  { kit eval_export validate "$SUBMISSION" --eval_data "$EVAL_DATA"; }
cmd_report()    { local data=(); [ -z "$EVAL_DATA" ] || data+=(--eval_data "$EVAL_DATA"); \
                  [ -z "${GLUE_DATA:-}" ] || data+=(--glue_data "$GLUE_DATA"); \
                  kit eval_export report --run "$RUN" --track "$TRACK" "${data[@]}" --out "$1"; }
# =============================================================================================

# ---- the multilingual track (python -m eval_export.multilingual; docs/multilingual.md)
ml()                { kit eval_export.multilingual "$@"; }
cmd_ml_corpus()     { ml corpus "${ML_CORPUS_ARGS[@]}" --out_dir "$1"; }
# the trainer counts whitespace words: the corpus manifest says how many stand for 1M English-equivalent words
cmd_ml_train()      { local unit
                      unit=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["milestone_unit_words"])' \
                             "$CORPUS/multilingual_corpus.json" 2>/dev/null || echo 1000000)
                      launch babylm train --config "$CONFIG" --corpus "$CORPUS" --tokenizer "$RUN/tokenizer" \
                          --track "$TRACK" --milestone_unit_words "$unit" --save_dir "$MODELS" --run_name "$MODEL"; }
cmd_ml_tokenizer()  { ml tokenizer --corpus "$CORPUS" --vocab_size "$ML_VOCAB" --out_dir "$1"; }
# cmd_ml_zeroshot REVISION
cmd_ml_zeroshot()   { ml zeroshot --model "$MODELS/$MODEL" --revision "$1" --tasks "$ML_TASKS" --data "$ML_DATA" \
                          "${ML_LIMIT[@]}" --results "$RESULTS"; }
# POS reads UD treebanks from $ML_DATA/pos/<xx>/*.conllu when they are there
cmd_ml_finetune()   { local treebanks=(); [ ! -d "$ML_DATA/pos" ] || treebanks=(--pos_data "$ML_DATA/pos"); \
                      ml finetune --model "$MODELS/$MODEL" --data_dir "$ML_DATA/finetune" "${treebanks[@]}" \
                          "${ML_FT_ARGS[@]}" --results "$RESULTS"; }
cmd_ml_meco()       { ml meco --model "$MODELS/$MODEL" --meco_dir "$ML_DATA/meco" "${ML_MECO_LIMIT[@]}" --results "$RESULTS"; }
cmd_ml_collate()    { local fast=(); [ "$PRESET" = multilingual-smoke ] || fast=(--fast true); \
                      ml collate --model "$MODEL" --results "$RESULTS" "${fast[@]}"; }
cmd_ml_validate()   { ml validate "$RESULTS/$MODEL/${MODEL}_submission.json" "$RESULTS/$MODEL/${MODEL}_predictions.json"; }
# =============================================================================================

die() { echo "error: $*" >&2; exit 2; }

# run CMD...: print the command, then run it (only print it under --dry-run).
# STEP_ARGS: the flags after -- when the running step receives them (see main); `kit` adds them last.
run() {
    local line
    line=$(printf '%q ' "$@")
    echo "+ ${line% }"
    [ "${DRY_RUN:-0}" = 1 ] || "$@"
}
kit() { run "$PY" -m "$@" "${STEP_ARGS[@]}"; }
# kit_json OUTPUT MODULE ARGS...: run a command that prints a JSON line; keep the last one in OUTPUT
kit_json() {
    local output=$1
    shift
    if [ "${DRY_RUN:-0}" = 1 ]; then kit "$@"; return; fi
    kit "$@" | tee "$output.tmp"
    grep '^{.*}$' "$output.tmp" | tail -1 > "$output.json.tmp" || true
    if [ -s "$output.json.tmp" ]; then mv "$output.json.tmp" "$output"; fi
    rm -f "$output.tmp" "$output.json.tmp"
}
launch() {
    if [ "${NGPUS:-0}" -gt 1 ]; then
        run "$PY" -m torch.distributed.run --standalone --nproc_per_node "$NGPUS" -m "$@" "${STEP_ARGS[@]}"
    else
        kit "$@"
    fi
}

# run_stage OUTPUT COMMAND...: skip when OUTPUT exists, else run COMMAND and check that it
# produced OUTPUT. The kit writes every output atomically (temp path, then rename), so an
# existing OUTPUT is a complete one.
run_stage() {
    local output=$1
    shift
    if [ -e "$output" ]; then
        echo "  skip: $output exists"
        [ "${#STEP_ARGS[@]}" = 0 ] || echo "  note: the flags after -- (${STEP_ARGS[*]}) were not used; delete $output to redo the step with them"
        return 0
    fi
    "$@"
    if [ "${DRY_RUN:-0}" != 1 ] && [ ! -e "$output" ]; then
        echo "error: '$*' finished without writing $output" >&2
        exit 1
    fi
}

need_eval_data() {
    [ -n "$EVAL_DATA" ] || die "step $1 needs the official evaluation data: set BABYLM_EVAL_DATA to the evaluation_data folder (see docker/README.md)"
    [ "${DRY_RUN:-0}" = 1 ] || [ -d "$EVAL_DATA" ] || die "BABYLM_EVAL_DATA=$EVAL_DATA is not a folder"
}

# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------
train_step() {  # train_step RUN_NAME CONFIG
    run_stage "$MODELS/$1/final" cmd_train "$1" "$2"
}
test_step() {   # test_step RUN_NAME CONFIG
    run_stage "$MODELS/$1/test_results.json" cmd_test "$1" "$2" "$MODELS/$1/test_results.json"
}

# The smoke run's evaluation folder: the synthetic minimal pairs the generator wrote, and, when
# BABYLM_EVAL_DATA is given, every entry of the official folder linked beside them (the layouts
# with full_eval/ and fast_eval/ work as they are), so that one folder holds all the gold data.
link_eval_data() {
    run mkdir -p "$EVAL_DATA"
    if [ -z "$OFFICIAL_EVAL" ]; then
        run ln -sfn ../data/blimp "$EVAL_DATA/blimp_filtered"
        return 0
    fi
    [ "${DRY_RUN:-0}" = 1 ] || [ -d "$OFFICIAL_EVAL" ] || die "BABYLM_EVAL_DATA=$OFFICIAL_EVAL is not a folder"
    local official entry
    official=$(cd "$OFFICIAL_EVAL" 2>/dev/null && pwd || echo "$OFFICIAL_EVAL")
    for entry in "$official"/*; do
        [ ! -e "$entry" ] || run ln -sfn "$entry" "$EVAL_DATA/$(basename "$entry")"
    done
    run ln -sfn ../data/blimp "$EVAL_DATA/synthetic_blimp"
}
step_corpus() {
    if [ "$PRESET" = smoke ]; then
        run_stage "$DATA" cmd_generate "$DATA"
        local linked=blimp_filtered
        [ -z "$OFFICIAL_EVAL" ] || linked=synthetic_blimp
        run_stage "$EVAL_DATA/$linked" link_eval_data
    elif [ -z "${BABYLM_DATA:-}" ]; then
        run_stage "$DATA" cmd_download "$DATA"
    else
        [ "${DRY_RUN:-0}" = 1 ] || [ -d "$DATA" ] || die "BABYLM_DATA=$DATA is not a folder"
    fi
    run_stage "$RUN/corpus" cmd_corpus "$RUN/corpus"
}
step_tokenizer() {
    local config=$CONFIG
    [ "$PRESET" != seed ] || config=small_tokenizer
    run_stage "$RUN/tokenizer" cmd_tokenizer "$RUN/tokenizer" "$config"
}
step_train() { train_step "$MODEL" "$CONFIG"; }
step_test()  { test_step "$MODEL" "$CONFIG"; }
step_gpt()            { train_step small_gpt small_gpt; }
step_gpt_test()       { test_step small_gpt small_gpt; }
step_gpt_easy_hard()  { train_step small_gpt_easy_hard small_gpt_easy_hard; }
step_gpt_hard_easy()  { train_step small_gpt_hard_easy small_gpt_hard_easy; }
step_bert()           { train_step small_bert small_bert; }
step_bert_test()      { test_step small_bert small_bert; }
step_bert_easy_hard() { train_step small_bert_easy_hard small_bert_easy_hard; }
step_bert_hard_easy() { train_step small_bert_hard_easy small_bert_hard_easy; }
step_best()           { train_step scaled_gpt scaled_gpt; }
step_best_test()      { test_step scaled_gpt scaled_gpt; }
step_export() {
    need_eval_data export
    local primary=$BACKEND dir rev pending
    for BACKEND in $BACKENDS; do  # cmd_score reads $BACKEND
        run_stage "$RESULTS/$MODEL/main/zero_shot/$BACKEND" cmd_score "$MODEL" main full "$SCORE_TASKS"
        # smoke with the official data: BLiMP (and EWoK) of the final model on their fast sets
        [ -z "$MAIN_FAST_TASKS" ] || run_stage "$RESULTS/$MODEL/main/zero_shot/$BACKEND/blimp/blimp_fast" \
            cmd_score "$MODEL" main fast "$MAIN_FAST_TASKS"
        # every milestone checkpoint the training wrote, in words-seen order (chck_1M, chck_2M, ... chck_10M),
        # scored in one process: each checkpoint loaded once, each task tokenised once for all of them
        pending=()
        while IFS= read -r dir; do
            [ -d "$dir" ] || continue
            rev=$(basename "$dir")
            if [ -e "$RESULTS/$MODEL/$rev/zero_shot/$BACKEND" ]; then
                echo "  skip: $RESULTS/$MODEL/$rev/zero_shot/$BACKEND exists"
            else
                pending+=("$rev")
            fi
        done < <(printf '%s\n' "$MODELS/$MODEL"/chck_* | sort -V)
        [ "${#pending[@]}" -gt 0 ] || continue
        cmd_score "$MODEL" "$(IFS=,; echo "${pending[*]}")" "$MILESTONE_SET" "$MILESTONE_TASKS"
        for rev in "${pending[@]}"; do
            if [ "${DRY_RUN:-0}" != 1 ] && [ ! -e "$RESULTS/$MODEL/$rev/zero_shot/$BACKEND" ]; then
                echo "error: scoring finished without writing $RESULTS/$MODEL/$rev/zero_shot/$BACKEND" >&2
                exit 1
            fi
        done
    done
    BACKEND=$primary
}
step_finetune() {
    if [ -z "${GLUE_DATA:-}" ] || { [ "${DRY_RUN:-0}" != 1 ] && [ ! -d "$GLUE_DATA" ]; }; then
        if [ "$PRESET" = smoke ]; then
            echo "  skip: no fine-tuning data (set BABYLM_EVAL_DATA to the evaluation_data folder to fine-tune on RTE)"
            return 0
        fi
        die "step finetune needs glue_filtered/: set BABYLM_EVAL_DATA to the evaluation_data folder"
    fi
    [ "$PRESET" != cpu-real ] || FINETUNE_TASKS=$(glue_tasks_with_data "$FINETUNE_TASKS")
    [ -n "$FINETUNE_TASKS" ] || die "no fine-tuning task has its <task>.train.jsonl in $GLUE_DATA"
    run_stage "$RESULTS/$MODEL/main/finetune/${FINETUNE_TASKS##*,}/predictions.json" cmd_finetune "$MODEL"
}
# glue_tasks_with_data TASKS: those of the comma list whose training and validation files are in
# GLUE_DATA; the others are named, once, as absent.
glue_tasks_with_data() {
    local task kept=() absent=()
    for task in ${1//,/ }; do
        if [ "${DRY_RUN:-0}" = 1 ] || { [ -f "$GLUE_DATA/$task.train.jsonl" ] && [ -f "$GLUE_DATA/$task.valid.jsonl" ]; }; then
            kept+=("$task")
        else
            absent+=("$task")
        fi
    done
    [ "${#absent[@]}" = 0 ] || echo "  absent: ${absent[*]} (no <task>.train.jsonl and .valid.jsonl in $GLUE_DATA): not fine-tuned" >&2
    (IFS=,; echo "${kept[*]}")
}
step_collate() {
    local primary=$BACKEND
    for BACKEND in $BACKENDS; do  # cmd_collate reads $BACKEND
        if partial_allowed; then
            # the output is the complete file or the partial one: known only once collate has run
            [ ! -e "$(submission_of "$BACKEND")" ] || { run_stage "$(submission_of "$BACKEND")" true; continue; }
            cmd_collate
            if [ "${DRY_RUN:-0}" != 1 ] && [ ! -e "$(submission_of "$BACKEND")" ]; then
                echo "error: collate finished without writing $(submission_of "$BACKEND")" >&2
                exit 1
            fi
        else
            run_stage "$(submission_of "$BACKEND")" cmd_collate
        fi
    done
    BACKEND=$primary
}
step_validate() {
    local backend marker primary=$SUBMISSION
    for backend in $BACKENDS; do
        SUBMISSION=$(submission_of "$backend")  # cmd_validate reads $SUBMISSION
        marker="$RUN/validation.txt"  # the submission's backend; any other has its own marker
        [ "$backend" = "$BACKEND" ] || marker="$RUN/validation_$backend.txt"
        if [ -e "$marker" ] && [ "$marker" -nt "$SUBMISSION" ]; then
            echo "  skip: $marker is newer than $SUBMISSION"
            continue
        fi
        cmd_validate
        [ "${DRY_RUN:-0}" = 1 ] || echo "valid: $SUBMISSION ($(date -u +%Y-%m-%dT%H:%M:%SZ))" > "$marker"
    done
    SUBMISSION=$primary
}
need_ml_data() {
    [ -n "${ML_DATA:-}" ] || die "the multilingual presets need their evaluation data: set BABYLM_MULTILINGUAL_DATA (docs/multilingual.md)"
    [ "${DRY_RUN:-0}" = 1 ] || [ -d "$ML_DATA" ] || die "BABYLM_MULTILINGUAL_DATA=$ML_DATA is not a folder"
}
step_ml_corpus() {
    [ "$PRESET" != multilingual-smoke ] || need_ml_data
    [ "$PRESET" != multilingual ] || [ -n "${BABYLM_MULTILINGUAL_CORPUS:-}" ] || \
        die "the multilingual preset needs BABYLM_MULTILINGUAL_CORPUS: a folder of eng/, nld/, zho/ text folders"
    run_stage "$CORPUS" cmd_ml_corpus "$CORPUS"
}
step_ml_train() { run_stage "$MODELS/$MODEL/final" cmd_ml_train; }
step_ml_tokenizer() { run_stage "$RUN/tokenizer" cmd_ml_tokenizer "$RUN/tokenizer"; }
step_ml_zeroshot() {
    need_ml_data
    local dir
    run_stage "$RESULTS/$MODEL/main/zeroshot" cmd_ml_zeroshot main
    for dir in "$MODELS/$MODEL"/chck_*; do
        [ -d "$dir" ] || continue
        run_stage "$RESULTS/$MODEL/$(basename "$dir")/zeroshot" cmd_ml_zeroshot "$(basename "$dir")"
    done
}
step_ml_finetune() { need_ml_data; run_stage "$RESULTS/$MODEL/main/finetune_multilingual" cmd_ml_finetune; }
step_ml_meco()     { need_ml_data; run_stage "$RESULTS/$MODEL/main/meco/predictions_meco.json" cmd_ml_meco; }
step_ml_collate()  { run_stage "$RESULTS/$MODEL/${MODEL}_submission.json" cmd_ml_collate; }
step_ml_validate() { cmd_ml_validate; }
step_report() { run_stage "$RUN/report/report.md" cmd_report "$RUN/report"; }

# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

list_steps() {
    local preset n step
    echo "Presets and their steps (run one: ./reproduce.sh [--only STEP | --from STEP] PRESET)"
    for preset in "$@"; do
        echo
        printf '%-14s %s\n' "$preset" "${PRESET_INFO[$preset]}"
        n=0
        for step in ${PRESET_STEPS[$preset]}; do
            n=$((n + 1))
            printf '  %2d. %-16s %s\n' "$n" "$step" "${STEP_INFO[$step]}"
        done
    done
}

environment_summary() {
    echo "== reproduce.sh $PRESET: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
    echo "   run folder: $RUN   steps: ${SELECTED[*]}"
    echo "   kit commit: $(git -C "$KIT_ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo "${BABYLM_COMMIT:-unknown}")"
    echo "   GPUs for training: ${NGPUS}"
    "$PY" -m babylm env | tee "$RUN/env.txt"
}

count_gpus() {
    if [ -n "${BABYLM_GPUS:-}" ]; then
        echo "$BABYLM_GPUS"
    elif [ "${CUDA_VISIBLE_DEVICES-unset}" = "" ]; then
        echo 0
    elif command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true
    else
        echo 0
    fi
}

main() {
    local preset="" only="" from="" list=0
    DRY_RUN=0
    while [ $# -gt 0 ]; do
        case "$1" in
        -h|--help) usage; return 0 ;;
        --) shift; PASS=("$@"); break ;;
        --list) list=1 ;;
        --dry-run) DRY_RUN=1 ;;
        --only|--from)
            [ $# -ge 2 ] || die "$1 needs a step name (see ./reproduce.sh --list)"
            if [ "$1" = --only ]; then only=$2; else from=$2; fi
            shift ;;
        -*) die "unknown option '$1'; options: --list --only STEP --from STEP --dry-run --help, then -- FLAGS for the commands" ;;
        *)
            [ -z "$preset" ] || die "one preset at a time (got '$preset' and '$1')"
            preset=$1 ;;
        esac
        shift
    done
    if [ -n "$preset" ] && [ -z "${PRESET_STEPS[$preset]+x}" ]; then
        die "unknown preset '$preset'; presets: ${PRESETS[*]}"
    fi
    if [ "$list" = 1 ]; then
        if [ -n "$preset" ]; then list_steps "$preset"; else list_steps "${PRESETS[@]}"; fi
        return 0
    fi
    [ -n "$preset" ] || die "name a preset: ${PRESETS[*]} (./reproduce.sh --list shows their steps)"
    [ -z "$only" ] || [ -z "$from" ] || die "--only and --from exclude each other"

    local steps=(${PRESET_STEPS[$preset]}) step target=${only:-$from} found=0
    SELECTED=()
    for step in "${steps[@]}"; do
        [ "$step" != "$target" ] || found=1
        if [ -z "$target" ] || { [ -n "$only" ] && [ "$step" = "$only" ]; } || { [ -n "$from" ] && [ "$found" = 1 ]; }; then
            SELECTED+=("$step")
        fi
    done
    [ -z "$target" ] || [ "$found" = 1 ] || die "unknown step '$target' for preset $preset; steps: ${steps[*]}"

    cd "$KIT_ROOT"
    set_preset "$preset"
    # the multilingual presets read their evaluation data in most steps: refused before anything is written
    [ "${preset#multilingual}" = "$preset" ] || need_ml_data
    NGPUS=$(count_gpus)
    [ "$preset" != smoke ] || NGPUS=0
    PY=${BABYLM_PYTHON:-.venv/bin/python}
    if [ "$DRY_RUN" = 1 ]; then
        echo "== dry run of $preset: commands are printed, not run (run folder: $RUN)"
    else
        # Set up .venv from the runtime lock first (a no-op when it is current, or when the
        # development lock made it; skipped in the image).
        # (the multilingual presets need lm_eval, which the development lock holds)
        local dev=0
        [ "${preset#multilingual}" = "$preset" ] || dev=1
        if [ "${BABYLM_SKIP_INSTALL:-0}" != 1 ]; then INSTALL_DEV=$dev bash docker/install.sh; fi
        mkdir -p "$RUN"
        exec > >(tee -a "$RUN/reproduce.log") 2>&1
        environment_summary
    fi

    local n=0 total=${#steps[@]} t0
    for step in "${steps[@]}"; do
        n=$((n + 1))
        [[ " ${SELECTED[*]} " == *" $step "* ]] || continue
        echo
        echo "==== [$n/$total] $step: ${STEP_INFO[$step]}"
        t0=$SECONDS
        STEP_ARGS=()
        if [ -n "$target" ] && [ "$step" = "$target" ] || { [ -z "$target" ] && [[ " $TRAIN_STEPS " == *" $step "* ]]; }; then
            STEP_ARGS=("${PASS[@]}")
        fi
        [ "${#STEP_ARGS[@]}" = 0 ] || echo "  flags after --, for this step: ${STEP_ARGS[*]}"
        "step_${step//-/_}"
        echo "==== [$n/$total] $step done ($((SECONDS - t0)) s)"
    done
    if [ "$DRY_RUN" != 1 ]; then
        echo
        echo "== done: $RUN"
        [ ! -e "$RUN/report/report.md" ] || echo "   report: $RUN/report/report.md"
        SUBMISSION=$(submission_of "$BACKEND")
        [ ! -e "$SUBMISSION" ] || echo "   submission: $SUBMISSION"
    fi
}

# Sourcing the script (the tests do) defines the functions without running anything.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
