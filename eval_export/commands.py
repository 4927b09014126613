"""The ``python -m eval_export`` commands: an explicit name -> function map (see babylm.cli).

``score`` writes the per-task prediction files of one model revision, ``collate`` builds the
leaderboard file (or the 2024/2023 formats), ``validate`` checks any of them against the gold
data and the leaderboard's rules, ``leaderboard`` prints the scores the 2026 leaderboard computes
from a collated file, ``summary`` writes the human summary of a revision and ``report`` the report
of a whole run, ``download-evals`` fetches the 2026 evaluation data. (``finetune`` lives in
``eval_export/finetune.py``, ``report`` in ``eval_export/report.py``, ``download-evals`` in
``eval_export/evaluation_data.py``.)
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

from babylm import files
from babylm.challenge import BACKENDS, DEFAULT_RULES, RULES, Rules, milestones
from babylm.cli import Command
from babylm.config import option
from babylm.errors import InputError, UsageError
from babylm.files import FolderLock
from babylm.runtime import pick_device
from babylm.tokenizer import tokenizer_fingerprint
from eval_export import aoa as aoa_task
from eval_export import evaluation_data, loading, schedule, tasks
from eval_export.aoa import AoAConfig
from eval_export.evaluation_data import DownloadEvalsConfig
from eval_export.finetune import FinetuneConfig, load_data, run_finetune
from eval_export.leaderboard import score_file
from eval_export.loading import check_name, model_name, resolve_model_path
from eval_export.report import (
    ReportConfig,  # light: matplotlib is imported only when plotting
    write_report,
)
from eval_export.tasks import DEFAULT_EVAL_DATA, YEAR_TASKS

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ScoreConfig:
    model: str = option("", "model folder (may hold chck_* revision folders), git repository written by `babylm publish`, or hub id")
    revision: str = option("main", "revision: `main` or a milestone such as chck_10M (local: the sub-folder of that name, "
                                   "or the branch of a git repository); a comma list, or `all` (every chck_* milestone "
                                   "in words-seen order, then main) scores several in one process: each checkpoint "
                                   "is loaded once and each task tokenised once per tokenizer")
    backend: str = option("auto", "scoring backend; auto infers causal/mlm from the config (mntp must be forced)",
                          choices=("auto", *BACKENDS))
    year: str = option(DEFAULT_RULES.value, "rules to score by: 2026 = the final 2026 pipeline (babylm-eval 3d57ddc: "
                                             "entity-tracking items with \"nothing\" in an option dropped, EWoK as "
                                             "Target1 after Context1 against Target1 after Context2 with the whole "
                                             "sentence as prediction, a NaN score counts as minus infinity, ties broken "
                                             "at random by a generator seeded with --tie_seed, no WUG tasks, GlobalPIQA "
                                             "added); 2025 = 45fe2c1 (a tie goes to the first candidate)", choices=RULES)
    tie_seed: int = option(0, "--year 2026: seed of the tie-breaking generator (with the task, it fixes every pick, so "
                              "two runs write the same files). The official code breaks ties with an unseeded "
                              "generator: an official run may differ from the kit's on tied items only (their number "
                              "is in each task's summary as `ties`)", ge=0)
    tasks: list[str] = option(["all"], "tasks to score (comma list), or all: the --year set (2026: "
                                       f"{', '.join(YEAR_TASKS[Rules.Y2026])}; 2025: "
                                       f"{', '.join(YEAR_TASKS[Rules.Y2025])}; the fast set without comps, as the official fast "
                                       "scripts). Under all, wug_past/comps and "
                                       "global_piqa_parallel/nonparallel (hub data only: `download-evals`) are skipped "
                                       "when their files are absent and ewok when neither its folder nor (fast) the "
                                       "encrypted zip + password is there; a task named explicitly must be there. A "
                                       "folder path scores BLiMP-format *.jsonl as a custom task (no official counts)")
    eval_set: str = option("full", "full (main's set), fast (the milestones' set) or submission: what a 2026 submission "
                                   "needs in one command: every chck_* milestone of the run on the fast set, main on "
                                   "the full set, then AoA over the milestones when its data is there (needs a local "
                                   "run; --revision is then all)", choices=("full", "fast", "submission"))
    eval_data: str = option(DEFAULT_EVAL_DATA, "evaluation_data folder (official layout, or the task folders directly); "
                                               "env BABYLM_EVAL_DATA sets the default")
    results: str = option("results", "output root: results/<model>/<revision>/zero_shot/<backend>/<task>/<data>/")
    bos_rule: str = option("2025", "beginning-of-sentence handling of a challenge year: 2023 EOS prefix, 2024 BOS-or-EOS "
                                   "prefix (both without special tokens), 2025/2026 the tokenizer's own special tokens "
                                   "with character offsets choosing the scored span (official for 2025/2026)",
                           choices=("2023", "2024", "2025", "2026"))
    pll_variant: str = option("original", "masked PLL variant: original (Salazar et al.; what every official pipeline "
                                          "uses) or within_word_l2r (Kauf & Ivanova)", choices=("original", "within_word_l2r"))
    reduction: str = option("sum", "sum of token log-probs (official) or mean (the 2024 masked path's minicons default)",
                            choices=("sum", "mean"))
    temperature: float = option(1.0, "logits are divided by this before the log-softmax (official default 1.0)", gt=0)
    prefix_sharing: bool = option(True, "causal: compute every shared token prefix once (the options of an item share "
                                         "their context, the items of an entity-tracking story its opening, a BLiMP pair "
                                         "its first words) and score only what follows; exact. false: every string on "
                                         "its own (the plain path, for checking)")
    token_budget: int = option(0, "padded tokens per forward pass; 0 = auto: 2048 on CPU (cache-friendly, fastest in "
                                  "bench/score_bench.py), 65536 on a GPU", ge=0)
    dtype: str = option("float32", "weight dtype; log-softmax is float32 regardless", choices=("float32", "bfloat16", "float16"))
    device: str = option("auto", "cpu, cuda, cuda:1 ... (auto: cuda when available)")
    trust_remote_code: bool = option(False, "run code shipped with the checkpoint (the official 2025 code always does; off here)")
    ewok_password: str = option("", "password of ewok_fast.zip (or env BABYLM_EWOK_PASSWORD); read in memory, never written")
    reading_space: bool = option(False, "reading task: tokenise the target word with a leading space. Default false "
                                        "matches the official quirk (the word is tokenised on its own, so GPT-2-style "
                                        "BPE scores it without its space). Words of several pieces follow the official "
                                        "re-tokenisation: each later piece is decoded, appended to the text and "
                                        "re-tokenised, and the step probabilities are multiplied")
    reading_token_types: str = option("official", "reading task: token types given to the model. official (default) "
                                                  "matches the official code, which calls model(**tokenizer(text)): "
                                                  "token_type_ids are passed whenever the tokenizer returns them under "
                                                  "the official transformers 4.51 (its config names them, or names no "
                                                  "inputs and its class is the generic fast tokenizer); GPT-2 then adds "
                                                  "wte(token_type_ids) to every position, an input it was not trained "
                                                  "on. drop: input ids and attention mask only (the model as trained). "
                                                  "Kit checkpoints name their inputs without token types, so both agree "
                                                  "on them; encoders whose default token types are zeros are unaffected",
                                      choices=("official", "drop"))
    limit: int = option(0, "keep the first N items per subtask (smoke runs; skips the official count check); "
                           "0 = all", ge=0)
    overwrite: bool = option(False, "re-score tasks whose predictions.json already exists. Without it an existing "
                                    "result is kept when it was made with the same rules and scoring options (--year, "
                                    "--tie_seed, --limit, --bos_rule, --pll_variant, --reduction, --temperature, "
                                    "--reading_space, --dtype, --trust_remote_code), and score stops with one line "
                                    "when it was not")
    progress: bool = option(True, "show progress bars")

    def validate(self) -> None:
        if not self.model:
            raise UsageError("--model is required (a model folder or hub id)")
        for revision in self.revision.split(","):  # a comma list names several
            check_name(revision.strip(), "revision")
        check_name(model_name(self.model), "model")


def score(cfg: ScoreConfig) -> None:
    """Score each revision named while holding its results tree (``<results>/<model>/<revision>``): a
    second ``score`` of one of them is refused, before anything is scored, instead of mixing its files
    with ours."""
    import contextlib

    from eval_export import submission  # imports torch: off the --help path

    if cfg.eval_set == schedule.SUBMISSION:
        runs = submission_runs(cfg)
        revisions = [r for run_cfg, names in runs for r in names]
    else:
        revisions = loading.resolve_revisions(cfg.model, cfg.revision)
        runs = [(cfg, revisions)]
    clock = schedule.RevisionClock(len(revisions))
    with contextlib.ExitStack() as held:
        for revision in revisions:
            held.enter_context(FolderLock(submission.revision_dir(Path(cfg.results), loading.model_name(cfg.model),
                                                                  revision), "--results"))
        for run_cfg, names in runs:
            _score(run_cfg, names, clock)
        if cfg.eval_set == schedule.SUBMISSION:  # AoA writes under main: still held
            submission_aoa(cfg, revisions)


def task_names(cfg: ScoreConfig) -> tuple[list[str], bool]:
    """The tasks asked for, ``all`` spelled out as the --year set (custom folders kept; the fast set
    has no COMPS, as strict/scripts/eval_zero_shot_fast.sh at 45fe2c1 and 3d57ddc), and whether ``all``
    was asked (then absent optional tasks are skipped with a note)."""
    names = list(dict.fromkeys(n for n in cfg.tasks if n != "all"))
    every = "all" in cfg.tasks
    if every:
        year_set = [t for t in YEAR_TASKS[Rules(cfg.year)] if not (t == "comps" and cfg.eval_set == "fast")]
        names = year_set + [n for n in names if n not in tasks.TASKS]
    return names, every


def submission_runs(cfg: ScoreConfig) -> list[tuple[ScoreConfig, list[str]]]:
    """``--eval_set submission``: the milestones with the fast set, then main with the full set."""
    if cfg.revision not in ("main", "all"):
        raise UsageError("--eval_set submission scores every milestone and main: leave --revision out")
    if not Path(cfg.model).is_dir():
        raise UsageError(f"--eval_set submission: {cfg.model} is not a local run folder or git repository, whose "
                         "milestones can be listed; download the model, or score --revision by --revision")
    steps = schedule.plan(loading.resolve_revisions(cfg.model, "all"))
    # the milestones' fast set has no COMPS (strict/scripts/eval_zero_shot_fast.sh @ 3d57ddc; `all` leaves it out there)
    fast = dataclasses.replace(cfg, eval_set="fast", tasks=[t for t in cfg.tasks if t != "comps"])
    runs = [(fast, [r for r, e in steps if e == "fast"]), (dataclasses.replace(cfg, eval_set="full"), ["main"])]
    return [(run_cfg, names) for run_cfg, names in runs if names]


def submission_aoa(cfg: ScoreConfig, found: list[str]) -> None:
    """AoA after the milestones were scored: its curves need every milestone of the track and its data."""
    track = schedule.track_of(found)
    missing = schedule.missing_milestones(found, track)
    if missing or aoa_task.find(Path(cfg.eval_data)) is None:
        why = f"no milestone {missing[0]} ({len(missing)} of the {track} track missing)" if missing else \
            f"no full_eval/aoa/{aoa_task.WORDS_FILE} under {cfg.eval_data} (`python -m eval_export download-evals`)"
        print(f"skip AoA: {why}; the collated file needs it")
        return
    aoa_cfg = aoa_task.AoAConfig(model=cfg.model, track=track, backend=cfg.backend, eval_data=cfg.eval_data,
                            results=cfg.results, token_budget=cfg.token_budget, dtype=cfg.dtype, device=cfg.device,
                            trust_remote_code=cfg.trust_remote_code, overwrite=cfg.overwrite, progress=cfg.progress)
    for path in aoa_task.run(aoa_cfg, schedule.RevisionClock(len(milestones(track)))):
        print(f"AoA -> {path}")


def _load_tasks(cfg: ScoreConfig, root: Path) -> list:
    """Every task asked for, read and checked before any model is loaded (bad input leaves nothing
    behind). ``all`` is the --year set, its absent optional tasks skipped with a note; a task named
    explicitly must be there."""
    names, every = task_names(cfg)
    if not root.is_dir() and any(t in tasks.TASKS for t in names):
        raise InputError(f"--eval_data: {root} is not a folder; point it at the evaluation_data folder")
    loaded = []
    for name in names:
        tasks.check_year_task(name, cfg.year)
        if every and name in tasks.OPTIONAL_TASKS and not tasks.task_available(name, cfg.eval_set, root):
            why = "hub data: `python -m eval_export download-evals`" if name.startswith("global_piqa") else "hidden 2025 task"
            print(f"skip {name}: no {tasks.DATA_DIRS[(name, cfg.eval_set)][1]}/ under {root} ({why})")
            continue
        why = tasks.ewok_unavailable(cfg.eval_set, root, cfg.ewok_password or None) if name == "ewok" else None
        if why and every:
            print(f"skip ewok: {why}")
            continue
        if why:
            raise UsageError(f"--tasks ewok: {why}; or leave ewok out of --tasks")
        loaded.append(tasks.load_task(name, cfg.eval_set, root, cfg.ewok_password or None, cfg.limit, cfg.year))
    return loaded


def scoring_options(cfg: ScoreConfig, device: str) -> object:
    """The one options object the scoring path reads, from the command's options."""
    from eval_export.scoring import ScoringOptions  # imports torch: off the --help path

    budget = cfg.token_budget or (2048 if str(device).startswith("cpu") else 65536)
    return ScoringOptions(year=cfg.year, bos_rule=cfg.bos_rule, pll_variant=cfg.pll_variant, reduction=cfg.reduction,
                          token_budget=budget, temperature=cfg.temperature, prefix_sharing=cfg.prefix_sharing,
                          progress=cfg.progress, reading_space=cfg.reading_space,
                          reading_token_types=cfg.reading_token_types, tie_seed=cfg.tie_seed)


@dataclasses.dataclass
class _Todo:
    """One task to score for one revision: its data, its result folder and its tokenised requests."""

    data: object
    out: Path
    prepared: object


def _score(cfg: ScoreConfig, revisions: list[str], clock: schedule.RevisionClock | None = None) -> None:
    loaded_tasks = _load_tasks(cfg, Path(cfg.eval_data))
    for revision in revisions:  # a missing local revision fails before any is scored (hub ids: when loaded)
        loading.resolve_local(cfg.model, revision)
    import torch  # imported after the task files passed their checks: bad input fails fast

    from eval_export import submission, zero_shot  # import torch: off the --help path

    device = pick_device(cfg.device)
    opts = scoring_options(cfg, str(device))
    # The milestones of one run share their tokenizer: each task is tokenised once per tokenizer.
    prepared: dict[tuple[str, str, int], zero_shot.Prepared] = {}  # (tokenizer fingerprint, backend, task)
    failed = []  # revisions that cannot be loaded (a damaged milestone): reported, the others still scored
    for revision in revisions:
        if clock is not None:
            clock.start(f"{revision} ({cfg.eval_set} set, {len(loaded_tasks)} task(s))")
        try:
            model = loading.load_model(cfg.model, revision, None if cfg.backend == "auto" else cfg.backend,
                                       cfg.trust_remote_code, cfg.dtype, str(device))
        except InputError as exc:
            if len(revisions) == 1:
                raise
            log.warning("%s not scored: %s; the other revisions are scored", revision, exc)
            failed.append((revision, exc))
            if clock is not None:
                clock.done()
            continue
        meta = {**loading.describe(model), **_redacted(cfg), "revision": revision}
        fingerprint = tokenizer_fingerprint(model.tokenizer)
        todo: list[_Todo] = []
        for k, data in enumerate(loaded_tasks):  # tokenise first: too-long strings fail before any output
            out = submission.task_dir(Path(cfg.results), model.name, model.revision, model.backend, data.task, data.data_dir)
            for note in files.recover(out.parent):  # what a killed score left (we hold the revision's lock)
                log.info("%s: %s", out.parent, note)
            if (out / "predictions.json").is_file() and not cfg.overwrite:
                other = submission.made_otherwise(out, meta)
                if other:
                    raise UsageError(f"{out}/predictions.json was made with {other}; pass --overwrite true to score "
                                     "it again, or give another --results folder")
                print(f"skip {data.name}: {out}/predictions.json exists (--overwrite true to redo)")
                continue
            key = (fingerprint, model.backend, k)
            if key not in prepared:
                prepared[key] = zero_shot.prepare(model.tokenizer, model.backend, data, opts)
            zero_shot.check_lengths(model.model, prepared[key].requests, data)
            todo.append(_Todo(data, out, prepared[key]))
        for job in todo:
            with torch.inference_mode():
                result = zero_shot.score_task(model.model, model.tokenizer, model.backend, job.data, opts, job.prepared)
            submission.write_task(result, job.out, meta, overwrite=True)
            s = zero_shot.task_summary(result)
            shown = f"acc {100 * s['accuracy']:.2f}% ties {s['ties']}" if "accuracy" in s else str(s.get("metrics"))
            if result.plain_tokens:
                shown += f"  tokens {result.model_tokens:,} of {result.plain_tokens:,}"
            print(f"{job.data.name:<17} {job.data.data_dir or 'reading':<24} {shown}  -> {job.out}")
        written = submission.write_summary(Path(cfg.results), model.name, model.revision, model.backend)
        print("summary: " + ", ".join(str(p) for p in written))
        del model  # one checkpoint in memory at a time
        if clock is not None:
            clock.done()
    if failed:
        names = ", ".join(revision for revision, _ in failed)
        raise InputError(f"{len(failed)} of {len(revisions)} revisions could not be scored ({names}; the first: "
                         f"{failed[0][1]}); the others were scored")


def _redacted(cfg) -> dict:
    """The config as written into outputs: the EWoK password never leaves memory. A 2025 result records
    neither the year nor the tie seed (a result without a year was made by the 2025 rules, the only
    ones the kit knew before, and the seed breaks no tie there), so its files stay as they were."""
    out = dataclasses.asdict(cfg)
    if out.get("ewok_password"):
        out["ewok_password"] = "<set>"
    if out.get("year") == Rules.Y2025:
        out.pop("year")
        out.pop("tie_seed", None)
    return out


@dataclasses.dataclass
class CollateConfig:
    model: str = option("", "model name as used in the result tree (results/<model>/), or the model path (its stem is used)")
    backend: str = option("causal", "backend folder to collate", choices=("causal", "mlm", "mntp"))
    track: str = option("strict-small", "track; fixes the checkpoint list of fast_eval_results (19 or 28 milestones)",
                        choices=("strict-small", "strict"))
    year: str = option(DEFAULT_RULES.value, "rules of the leaderboard file: 2026 = the final 2026 collator (babylm-eval "
                                      "3d57ddc: entity_tracking_filtered, global_piqa_parallel/nonparallel, "
                                      "aoa_surprisals + aoa {\"aoa\": score}, no WUG, fast metrics computed from the "
                                      "milestones' predictions against the fast gold data of --eval_data; EWoK fast "
                                      "is 0.0 there, as the official collator writes it), 2025 = 45fe2c1", choices=RULES)
    format: str = option("leaderboard", "leaderboard (the --year file), 2024 (<model>_textonly_predictions.json.gz) "
                                        "or 2023 (all_predictions.json, JSON Lines)",
                         choices=("leaderboard", "2024", "2023"))
    results: str = option("results", "result root written by score")
    eval_data: str = option(DEFAULT_EVAL_DATA, "evaluation_data folder (official layout); --year 2026 reads the fast "
                                               "gold data under it (fast_eval/); env BABYLM_EVAL_DATA sets the default")
    ewok_password: str = option("", "password of ewok_fast.zip when the fast EWoK data is the encrypted zip "
                                    "(or env BABYLM_EWOK_PASSWORD)")
    allow_partial: bool = option(False, "collate what exists into ..._partial.json, missing or wrong parts null (a "
                                        "smoke-run file, NOT a valid submission: the leaderboard scores those parts 0)")

    def validate(self) -> None:
        if not self.model:
            raise UsageError("--model is required")


def collate(cfg: CollateConfig) -> None:
    from eval_export import submission  # imports torch: off the --help path

    name = loading.model_name(cfg.model)
    results = Path(cfg.results)
    if cfg.format == "leaderboard":
        path, missing = submission.collate(results, name, cfg.backend, cfg.track, cfg.allow_partial,
                                           Path(cfg.eval_data), cfg.year, cfg.ewok_password or None)
        if missing:
            print(f"PARTIAL (not a valid submission): {len(missing)} missing piece(s), listed in "
                  f"{path.parent / f'collate_missing_{cfg.backend}.json'}")
        if cfg.year == "2026" and any((results / name).glob(f"chck_*/zero_shot/{cfg.backend}/ewok/ewok_fast/predictions.json")):
            print("note: fast_eval_results.ewok is 0.0 at every checkpoint, as the official 2026 collator writes it "
                  "(it compares whole predicted sentences with Target1); the true EWoK fast accuracies are in each "
                  "revision's summary")
    elif cfg.format == "2024":
        path = submission.write_2024(results, name, cfg.backend)
    else:
        path = submission.write_2023(results, name, cfg.backend)
    print(f"wrote {path}")


@dataclasses.dataclass
class ValidateConfig:
    file: str = option("", "the file to check: a per-task predictions.json, the collated file, a 2024 .json.gz "
                           "or a 2023 all_predictions.json")
    year: str = option(DEFAULT_RULES.value, "rules of a collated or per-task file: 2026 = the final 2026 collator and "
                                            "what the 2026 leaderboard accepts (counts, prediction types, at most 19/28 "
                                            "checkpoints, no null part); a 2025 file checked as 2026 is refused, "
                                            "naming the key that gives it away", choices=RULES)
    track: str = option("", "track of a 2026 collated file: strict-small (19 checkpoints) or strict (28); default: "
                            "told by the file's lists", choices=("", "strict-small", "strict"))
    model: str = option("", "also check the model as the leaderboard's hub check does: its model card (README.md "
                            "with license metadata and 200+ characters of text) and whether AutoConfig and "
                            "AutoTokenizer load it without trust_remote_code (GPT-BERT needs remote code: the "
                            "leaderboard does not take it automatically)")
    eval_data: str = option(DEFAULT_EVAL_DATA, "evaluation_data folder holding the gold files")
    ewok_password: str = option("", "password of ewok_fast.zip to check EWoK fast predictions (or env BABYLM_EWOK_PASSWORD)")
    structure_only: bool = option(False, "accept sections whose gold data is not there (no --eval_data folder, a task "
                                         "folder or the EWoK password missing): check their structure alone and list "
                                         "them, instead of failing; sections whose gold data is there are still "
                                         "checked against it")
    limit: int = option(0, "the file was scored with score --limit N: check each subtask against its first N gold "
                           "items (the file is then partial: the leaderboard wants the official counts)", ge=0)

    def validate(self) -> None:
        if not self.file:
            raise UsageError("give the file to check: python -m eval_export validate FILE")


def validate(cfg: ValidateConfig) -> None:
    from eval_export import validation  # imports torch (through submission): off the --help path

    report = validation.validate_file(Path(cfg.file), Path(cfg.eval_data), cfg.ewok_password or None,
                                      cfg.structure_only, cfg.year, cfg.track, cfg.limit)
    print(report.text())
    if cfg.model:
        problems = validation.check_model(Path(cfg.model))
        if problems:
            raise InputError(problems[0])
        print(f"OK {cfg.model}: model card and Auto loading as the leaderboard checks them")


@dataclasses.dataclass
class LeaderboardConfig:
    file: str = option("", "a collated file (all_full_preds_and_fast_scores_<backend>.json)")
    eval_data: str = option(DEFAULT_EVAL_DATA, "evaluation_data folder holding the gold files (full_eval/: the "
                                               "leaderboard scores the full-eval predictions); env BABYLM_EVAL_DATA")

    def validate(self) -> None:
        if not self.file:
            raise UsageError("give the collated file: python -m eval_export leaderboard FILE --eval_data DIR")


def leaderboard(cfg: LeaderboardConfig) -> None:
    path, root = Path(cfg.file), Path(cfg.eval_data)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if not root.is_dir():
        raise InputError(f"--eval_data {root}: not a folder; point it at the evaluation data (the gold files)")
    obj = files.read_json(path)
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object (the collated file)")
    print(f"{path}: the scores the 2026 leaderboard computes from it (x 100)")
    print(score_file(obj, root).text())


@dataclasses.dataclass
class SummaryConfig:
    model: str = option("", "model name (results/<model>/) or path (its stem is used)")
    revision: str = option("main", "revision folder to summarise")
    backend: str = option("causal", "backend folder", choices=("causal", "mlm", "mntp"))
    results: str = option("results", "result root written by score")

    def validate(self) -> None:
        if not self.model:
            raise UsageError("--model is required")
        check_name(self.revision, "revision")


def summary(cfg: SummaryConfig) -> None:
    from eval_export import submission  # imports torch: off the --help path

    name = loading.model_name(cfg.model)
    # the revision's lock, as score holds it: a summary never mixes with a score still writing there
    with FolderLock(submission.revision_dir(Path(cfg.results), name, cfg.revision), "--results"):
        written = submission.write_summary(Path(cfg.results), name, cfg.revision, cfg.backend)
    for path in written:
        print(f"wrote {path}")


def finetune(cfg: FinetuneConfig) -> None:
    resolve_model_path(cfg.model, cfg.revision)  # a missing local model or revision fails here,
    data = load_data(cfg)  # and every data file is checked, before torch and the model are loaded

    def log(message: str) -> None:
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)

    summary = run_finetune(cfg, data, log=log)
    print(f"{'task':<8} {'accuracy':>8} {'f1':>8} {'mcc':>8}  best epoch")
    for task, res in summary.items():
        m = res.get("metrics", {})
        print(f"{task:<8} {m.get('accuracy', float('nan')):>8.4f} {m.get('f1', float('nan')):>8.4f} "
              f"{m.get('mcc', float('nan')):>8.4f}  {res.get('best_epoch', '?')}")


def download_evals(cfg) -> None:
    written = evaluation_data.download_evals(cfg)
    print(f"{len(written)} file(s) written, the others already there and checked; record: "
          f"{Path(cfg.out_dir) / evaluation_data.MANIFEST}")


def aoa(cfg: AoAConfig) -> None:
    for path in aoa_task.run(cfg):
        print(f"wrote {path}")


def report(cfg: ReportConfig) -> None:
    print(f"wrote {write_report(cfg)}")


COMMANDS: dict[str, Command] = {
    "score": Command("score", ScoreConfig, score,
                     "Score model revisions on the zero-shot tasks and write the official per-task predictions "
                     "(--eval_set submission: all that a 2026 submission scores, in one command).\n\n"
                     "A complete 2026 submission holds: main on the full sets and every milestone (19 strict-small, "
                     "28 strict) on the fast sets of BLiMP, the supplement, EWoK, entity tracking, GlobalPIQA and "
                     "reading, plus COMPS on main (score); the AoA curves and score over the milestones (aoa); the "
                     "seven GLUE tasks (finetune); then collate, validate and leaderboard. --eval_set submission "
                     "scores the milestones on the fast set, main on the full set, then AoA when its data and every "
                     "milestone are there, and names what it skips.\n\n"
                     "Defaults follow the final 2026 pipeline (babylm-eval 3d57ddc; --year 2025 for 45fe2c1): sum of "
                     "natural-log probabilities, the tokenizer's own special tokens, offsets decide the scored span, "
                     "original PLL; a NaN score counts as minus infinity and a tie is broken at random by a generator "
                     "seeded with --tie_seed (ties are counted in each task's summary; the official generator is "
                     "unseeded, so an official run may differ from the kit's on tied items only; 2025: a tie goes to "
                     "the first candidate); trust_remote_code is off unless asked for."),
    "collate": Command("collate", CollateConfig, collate,
                       "Build the leaderboard file (all_full_preds_and_fast_scores_<backend>.json) as the final 2026 "
                       "collator writes it (babylm-eval 3d57ddc; --year 2025 for 45fe2c1), or the 2024/2023 formats."),
    "validate": Command("validate", ValidateConfig, validate,
                        "Check a predictions file against the gold data and, by the final 2026 rules (default), "
                        "what the 2026 leaderboard accepts; print the first problem with its path.",
                        positional=("file",)),
    "leaderboard": Command("leaderboard", LeaderboardConfig, leaderboard,
                           "Print the scores the 2026 leaderboard computes from a collated file: each task (mean of "
                           "its subtasks, GLUE by F1 for MRPC and QQP and accuracy for the rest), the NLP and "
                           "human-like averages and the overall mean of nine columns, missing parts counted 0.",
                           positional=("file",)),
    "summary": Command("summary", SummaryConfig, summary,
                       "Write summary.md, summary.json and blimp_accuracy.png for a scored revision."),
    "finetune": Command("finetune", FinetuneConfig, finetune,
                        "Fine-tune a checkpoint on the BabyLM GLUE tasks by the final 2026 rules (babylm-eval 3d57ddc; "
                        "--year 2025 for 45fe2c1) and write official predictions.json files."),
    "download-evals": Command("download-evals", DownloadEvalsConfig, download_evals,
                              "Download the 2026 evaluation data (hub dataset BabyLM-community/BabyLM-2026-Strict-"
                              "Evals, as strict/scripts/download_evals.py at babylm-eval 3d57ddc) into --out_dir, "
                              "pinned to one commit, each file checked against the hub's checksum; a rerun fetches "
                              "only what is missing."),
    "aoa": Command("aoa", AoAConfig, aoa,
                   "Score the AoA task of the 2026 set (babylm-eval 3d57ddc, AoA_word): the surprisal of each CDI word "
                   "in its contexts at every milestone of --track, read from the local run, and the AoA score fitted "
                   "from those curves; writes main/zero_shot/<backend>/AoA_word/surprisal.json and aoa_score.json "
                   "({\"aoa\": r}), what collate reads. `score --eval_set submission` runs it too."),
    "report": Command("report", ReportConfig, report,
                      "Write a run's Markdown report with PNG plots (loss, BLiMP, fine-tuning, baselines)."),
}
