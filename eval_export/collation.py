"""The 2026 leaderboard file: ``results/<model>/all_full_preds_and_fast_scores_<backend>.json`` as the
final 2026 collator writes it (babylm-org/babylm-eval at 3d57ddc, ``strict/evaluation_pipeline/collate_preds.py``
run with ``--fast``, as ``strict/scripts/collate_preds.sh`` does).

What the file holds, in this order: the full-eval predictions of revision ``main`` (``blimp``,
``blimp_supplement``, ``ewok``, ``entity_tracking_filtered``, ``comps``, ``global_piqa_parallel``,
``global_piqa_nonparallel``, ``reading``), the AoA surprisal curves (``aoa_surprisals``, the
``surprisal.json`` of ``AoA_word``) and score (``aoa``, its ``aoa_score.json``: ``{"aoa": <float>}``), the
fine-tuning predictions (``glue``, merged over the seven tasks), then ``fast_eval_results``: per fast task
one entry per milestone (19 for strict-small, 28 for strict, in word order), each computed from that
milestone's fast predictions against the fast gold data.

A part that is missing, or whose counts differ from the official sizes, is written as ``null`` (an
entry of ``glue`` is left out), as the official collator does; the kit then names it and writes the
file only under ``--allow_partial`` (as ``..._partial.json``), since the leaderboard scores it 0. Such a
partial file is never a submission, so one difference is made there on purpose: a full-eval part whose
counts differ (a smoke run's ``--limit``, a custom set) is kept as it is, for ``validate`` and ``report`` to
read; the official collator writes null for it.

EWoK fast: at 3d57ddc an EWoK prediction is the whole chosen sentence (``Context + " " + Target1``), while
the collator's fast metric compares it with ``Target1`` alone, so every checkpoint's EWoK entry is 0.0 for
any model. The leaderboard takes ``fast_eval_results`` as the file gives it, so the kit writes what the
official collator writes (0.0) and says so; the true fast accuracies are in each revision's summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from babylm import files
from babylm.challenge import milestones
from babylm.errors import InputError, KitError
from eval_export import leaderboard

# Expected sizes (collate_preds.py @ 3d57ddc: BLIMP_SIZES, SUPPLEMENT_SIZES, EWOK_SIZES, ENTITY_TRACKING_SIZES,
# COMPS_SIZES, GLOBAL_PIQA_SIZES, READING_SIZE, AOA_SIZE, the GLUE sizes and the fast sizes).
BLIMP_SIZES = {
    "adjunct_island": 928, "anaphor_gender_agreement": 971, "anaphor_number_agreement": 931,
    "animate_subject_passive": 895, "animate_subject_trans": 923, "causative": 818, "complex_np_island": 846,
    "coordinate_structure_constraint_complex_left_branch": 906,
    "coordinate_structure_constraint_object_extraction": 949, "determiner_noun_agreement_1": 929,
    "determiner_noun_agreement_2": 931, "determiner_noun_agreement_irregular_1": 681,
    "determiner_noun_agreement_irregular_2": 820, "determiner_noun_agreement_with_adj_2": 941,
    "determiner_noun_agreement_with_adj_irregular_1": 718, "determiner_noun_agreement_with_adj_irregular_2": 840,
    "determiner_noun_agreement_with_adjective_1": 933, "distractor_agreement_relational_noun": 788,
    "distractor_agreement_relative_clause": 871, "drop_argument": 920, "ellipsis_n_bar_1": 802,
    "ellipsis_n_bar_2": 828, "existential_there_object_raising": 812, "existential_there_quantifiers_1": 930,
    "existential_there_quantifiers_2": 911, "existential_there_subject_raising": 924,
    "expletive_it_object_raising": 759, "inchoative": 855, "intransitive": 868,
    "irregular_past_participle_adjectives": 961, "irregular_past_participle_verbs": 942,
    "irregular_plural_subject_verb_agreement_1": 804, "irregular_plural_subject_verb_agreement_2": 892,
    "left_branch_island_echo_question": 947, "left_branch_island_simple_question": 951,
    "matrix_question_npi_licensor_present": 929, "npi_present_1": 909, "npi_present_2": 914,
    "only_npi_licensor_present": 882, "only_npi_scope": 837, "passive_1": 840, "passive_2": 903,
    "principle_a_c_command": 946, "principle_a_case_1": 912, "principle_a_case_2": 915, "principle_a_domain_1": 914,
    "principle_a_domain_2": 915, "principle_a_domain_3": 941, "principle_a_reconstruction": 967,
    "regular_plural_subject_verb_agreement_1": 890, "regular_plural_subject_verb_agreement_2": 945,
    "sentential_negation_npi_licensor_present": 919, "sentential_negation_npi_scope": 871,
    "sentential_subject_island": 961, "superlative_quantifiers_1": 979, "superlative_quantifiers_2": 986,
    "tough_vs_raising_1": 948, "tough_vs_raising_2": 920, "transitive": 868, "wh_island": 960,
    "wh_questions_object_gap": 859, "wh_questions_subject_gap": 898, "wh_questions_subject_gap_long_distance": 857,
    "wh_vs_that_no_gap": 861, "wh_vs_that_no_gap_long_distance": 875, "wh_vs_that_with_gap": 919,
    "wh_vs_that_with_gap_long_distance": 910,
}
SUPPLEMENT_SIZES = {"hypernym": 842, "qa_congruence_easy": 64, "qa_congruence_tricky": 165,
                    "subject_aux_inversion": 3867, "turn_taking": 280}
EWOK_SIZES = {"agent-properties": 2210, "social-relations": 1548, "physical-relations": 818, "material-dynamics": 770,
              "physical-interactions": 556, "spatial-relations": 490, "social-properties": 328,
              "quantitative-properties": 314, "social-interactions": 294, "material-properties": 170,
              "physical-dynamics": 120}
ENTITY_FAST_SIZES = {"regular_0_ops": 517, "regular_1_ops": 409, "regular_2_ops": 405, "regular_3_ops": 425,
                     "regular_4_ops": 388, "regular_5_ops": 94}
ENTITY_SIZES = {**ENTITY_FAST_SIZES, "ambiref_0_ops": 508, "ambiref_1_ops": 428, "ambiref_2_ops": 413,
                "ambiref_3_ops": 409, "ambiref_4_ops": 434, "ambiref_5_ops": 123, "move_contents_0_ops": 516,
                "move_contents_1_ops": 437, "move_contents_2_ops": 399, "move_contents_3_ops": 406,
                "move_contents_4_ops": 353, "move_contents_5_ops": 116}
COMPS_SIZES = {"base": 49340, "wugs_dist_before": 13896, "wugs_dist_in_between": 13896, "wugs": 13896}
GLOBAL_PIQA_SIZES = {"global_piqa_parallel": 103, "global_piqa_nonparallel": 100}
GLUE_SIZES = {"boolq": 1635, "mnli": 4908, "mrpc": 204, "multirc": 2424, "qqp": 20215, "rte": 139, "wsc": 52}
READING_SIZE = 1726
AOA_SIZE = 8005  # surprisal rows per milestone

KEYS = ("blimp", "blimp_supplement", "ewok", "entity_tracking_filtered", "comps", "global_piqa_parallel",
        "global_piqa_nonparallel", "reading", "aoa_surprisals", "aoa", "glue", "fast_eval_results")
FAST_KEYS = ("blimp", "blimp_supplement", "ewok", "entity_tracking_filtered", "global_piqa_parallel",
             "global_piqa_nonparallel", "reading")
# key -> (folder under zero_shot/<backend>, full sizes, fast sizes); an int is the size of every subtask
SECTIONS: dict[str, tuple[str, Any, Any]] = {
    "blimp": ("blimp/{}", BLIMP_SIZES, 200),
    "blimp_supplement": ("blimp/{}", SUPPLEMENT_SIZES, 50),
    "ewok": ("ewok/{}", EWOK_SIZES, 100),
    "entity_tracking_filtered": ("entity_tracking/{}", ENTITY_SIZES, ENTITY_FAST_SIZES),
    "comps": ("comps/comps", COMPS_SIZES, None),
    "global_piqa_parallel": ("global_piqa_parallel/global_piqa_parallel", None, None),
    "global_piqa_nonparallel": ("global_piqa_nonparallel/global_piqa_nonparallel", None, None),
    "reading": ("reading", READING_SIZE, READING_SIZE),
}
# The data folder of each sectioned task, full and fast (strict/scripts/eval_zero_shot.sh, eval_zero_shot_fast.sh)
DATA_FOLDERS = {"blimp": ("blimp_filtered", "blimp_fast"), "blimp_supplement": ("supplement_filtered", "supplement_fast"),
                "ewok": ("ewok_filtered", "ewok_fast"), "entity_tracking_filtered": ("entity_tracking", "entity_tracking_fast")}


def predictions_path(base: Path, key: str, fast: bool) -> Path:
    """Where the official scripts leave a section's predictions under ``zero_shot/<backend>``."""
    folder = SECTIONS[key][0]
    if "{}" in folder:
        folder = folder.format(DATA_FOLDERS[key][int(fast)])
    return base / folder / "predictions.json"


def size_problem(key: str, obj: Any, fast: bool) -> str | None:
    """What is wrong with the counts of a loaded section (the official size checks), or None."""
    if not isinstance(obj, dict):
        return "not a JSON object of subtasks"
    if key in GLOBAL_PIQA_SIZES:  # keyed by example id, one prediction each
        want = GLOBAL_PIQA_SIZES[key]
        if len(obj) != want:
            return f"{len(obj)} examples, the official set has {want}"
        bad = next((k for k, v in obj.items() if len(_preds(v)) != 1), None)
        return None if bad is None else f"example {bad} has {len(_preds(obj[bad]))} predictions, not 1"
    sizes = SECTIONS[key][2 if fast else 1]
    for sub, value in obj.items():
        want = sizes if isinstance(sizes, int) else sizes.get(sub.lower())
        if want is None:
            return f"unknown subtask {sub!r} (the official sizes have no entry for it)"
        if len(_preds(value)) != want:
            return f"{sub} has {len(_preds(value))} predictions, the official set has {want}"
    return None


def glue_problem(obj: Any, task: str) -> str | None:
    """The official check of a fine-tuning predictions file: every key holds the task's validation size."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    n = GLUE_SIZES[task]
    bad = next((k for k, v in obj.items() if len(_preds(v)) != n), None)
    return None if bad is None else f"{bad} has {len(_preds(obj[bad]))} predictions, the official set has {n}"


def _preds(value: Any) -> list:
    preds = value.get("predictions") if isinstance(value, dict) else None
    return preds if isinstance(preds, list) else []


def aoa_problem(obj: Any, track: str) -> str | None:
    """The official AoA check: surprisals for exactly the milestones of ``track``, 8,005 rows each."""
    rows = obj.get("results") if isinstance(obj, dict) else None
    if not isinstance(rows, list):
        return "no 'results' list"
    counts: dict[Any, int] = {}
    for r in rows:
        step = r.get("step") if isinstance(r, dict) else None
        counts[step] = counts.get(step, 0) + 1
    want = milestones(track)
    if set(counts) != set(want):
        missing = [m for m in want if m not in counts]
        return f"surprisals for {len(counts)} checkpoints, {track} has {len(want)}" + \
            (f" (no {missing[0]})" if missing else "")
    bad = next((m for m in want if counts[m] != AOA_SIZE), None)
    return None if bad is None else f"{counts[bad]} surprisal rows for {bad}, the official set has {AOA_SIZE}"


class _Collator:
    """Reads one model's results tree; ``problems`` collects what is missing or wrong, each with its path."""

    def __init__(self, results: Path, model: str, backend: str, track: str, eval_data: Path, ewok_password: str | None,
                 allow_partial: bool = False):
        self.root = Path(results) / model
        self.keep_wrong = allow_partial  # a partial file keeps full-eval parts whose counts differ
        self.backend, self.track, self.eval_data = backend, track, Path(eval_data)
        self.password = ewok_password
        self.problems: list[str] = []
        self._gold: dict[str, Any] = {}

    def _load(self, path: Path, what: str, check: Callable[[Any], str | None] | None = None, keep: bool = False) -> Any:
        if not path.is_file():
            self.problems.append(f"{what}: missing ({path})")
            return None
        try:
            obj = files.read_json(path)
        except KitError as exc:
            self.problems.append(f"{what}: {exc}")
            return None
        problem = check(obj) if check else None
        if problem:
            self.problems.append(f"{what}: {problem} ({path})")
            return obj if keep and isinstance(obj, dict) else None
        return obj

    def full(self) -> dict[str, Any]:
        base = self.root / "main" / "zero_shot" / self.backend
        out: dict[str, Any] = {}
        for key in SECTIONS:
            out[key] = self._load(predictions_path(base, key, False), key, lambda o, k=key: size_problem(k, o, False),
                                  self.keep_wrong)
        out["aoa_surprisals"] = self._load(base / "AoA_word" / "surprisal.json", "aoa_surprisals",
                                           lambda o: aoa_problem(o, self.track), self.keep_wrong)
        out["aoa"] = self._load(base / "AoA_word" / "aoa_score.json", "aoa")
        out["glue"] = {}
        for task in GLUE_SIZES:
            obj = self._load(self.root / "main" / "finetune" / task / "predictions.json", f"glue.{task}",
                             lambda o, t=task: glue_problem(o, t), self.keep_wrong)
            if obj is not None:
                out["glue"].update(obj)
        return out

    def gold(self, key: str) -> Any:
        """Fast gold targets of one task (cached); None, with a problem noted once, when not there."""
        if key not in self._gold:
            try:
                if key == "reading":
                    self._gold[key] = leaderboard.reading_csv(self.eval_data, fast=True)
                else:
                    self._gold[key] = leaderboard.zero_shot_gold(self.eval_data, key, "fast", self.password)
            except KitError as exc:
                self._gold[key] = None
                self.problems.append(f"fast_eval_results.{key}: {exc}")
                return None
            if self._gold[key] is None:
                self.problems.append(f"fast_eval_results.{key}: no fast gold data under --eval_data {self.eval_data}")
        return self._gold[key]

    def fast_metric(self, key: str, revision: str) -> Any:
        base = self.root / revision / "zero_shot" / self.backend
        what = f"fast_eval_results.{key}[{revision}]"
        obj = self._load(predictions_path(base, key, True), what, lambda o: size_problem(key, o, True))
        gold = self.gold(key) if obj is not None else None
        if gold is None:
            return None
        try:
            if key == "reading":
                return leaderboard.reading_scores(gold, obj)
            if key in GLOBAL_PIQA_SIZES:
                missing = next((e for e in gold if e not in obj), None)
                if missing is not None:  # the official collator stops with a KeyError here
                    raise InputError(f"no prediction for example {missing}")
                return {key: leaderboard.global_piqa_accuracy(obj, gold)}
            return leaderboard.fast_accuracies(obj, gold)
        except (KitError, KeyError, TypeError, ValueError) as exc:
            self.problems.append(f"{what}: {exc}")
            return None

    def fast(self) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in FAST_KEYS}
        for revision in milestones(self.track):
            for key in FAST_KEYS:
                out[key].append(self.fast_metric(key, revision))
        return out


def collate(results: Path, model: str, backend: str, track: str, eval_data: Path, allow_partial: bool = False,
            ewok_password: str | None = None) -> tuple[Path, list[str]]:
    """Write the 2026 file; returns (its path, the missing or wrong parts). Parts that are missing or wrong
    raise InputError unless ``allow_partial``: then they are written as null into ``..._partial.json``."""
    root = Path(results) / model
    if not root.is_dir():
        raise InputError(f"{root}: no results for model {model!r}; run `python -m eval_export score` first")
    collator = _Collator(results, model, backend, track, eval_data, ewok_password, allow_partial)
    out = collator.full()
    out["fast_eval_results"] = collator.fast()
    missing = collator.problems
    if missing and not allow_partial:
        shown = "; ".join(missing[:5]) + (f"; ... {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(f"cannot collate {model}: {len(missing)} missing or wrong part(s): {shown}. Score them, "
                         "or pass --allow_partial true for a file with those parts null (the leaderboard scores them 0)")
    name = f"all_full_preds_and_fast_scores_{backend}{'_partial' if missing else ''}.json"
    path = files.write_text(root / name, json.dumps(out))  # json.dump defaults, as the official collator
    report = root / f"collate_missing_{backend}.json"
    if missing:
        files.write_json(report, {"file": name, "missing": missing})
    elif report.is_file():  # from an earlier partial run: this file is complete
        report.unlink()
    return path, missing
