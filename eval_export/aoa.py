"""Age of acquisition (AoA, 2026 set): word surprisal curves over the milestones and their fit to children's.

What the final 2026 pipeline does (babylm-eval at 3d57ddc, ``strict/evaluation_pipeline/AoA_word/``,
``strict/evaluation_pipeline/utils.py`` ``AoAEvaluator``, ``strict/scripts/eval_aoa.sh``), and so this module:

- Data: ``evaluation_data/full_eval/aoa/cdi_childes.json`` (``{word: [{"context": ...}, ...]}``) and, beside
  it, ``cdi_human.csv`` (a ``word`` column and the share of children producing it at ``16`` ... ``30``
  months). Words of one character are left out (``load_eval``); every context of the others is scored
  (``--min_context`` is 0: ``eval_aoa.sh`` never passes its ``MIN_CONTEXT``). 8,005 rows per checkpoint.
- Surprisal (``StepSurprisalExtractor``): the sentence ``context.strip() + " " + word.strip()`` with the
  tokenizer's special tokens; the tokens whose character span reaches into the word are scored, their
  natural-log probabilities summed and negated (causal: next-token; mlm/mntp: each masked alone), for
  every milestone of the track (``chck_1M`` ...), written under ``main`` as ``AoA_word/surprisal.json``.
- Score (``compute_curve_fitness``): per word, the mean surprisal over its contexts at each milestone;
  a bounded sigmoid ``a / (1 + exp(-b (x - c))) + d`` fit to minus that against ``log10(words + 1)``;
  the model's AoA is where the curve crosses half-way between chance (subword pieces x ln vocabulary
  size) and the word's lowest surprisal, as ``log10`` words. The children's AoA is where a sigmoid fit
  to the CDI shares crosses 0.5. The score is Pearson's r between the two over the words that have
  both (0.0 with fewer than 3 words or p > 0.1), written as ``AoA_word/aoa_score.json`` =
  ``{"aoa": r}``; the fits are ``scipy.optimize.curve_fit`` as the official code runs them.

Checkpoints are read from the model's own folder or repository (``loading``), never fetched per
checkpoint from the hub.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from babylm import files
from babylm.challenge import BACKENDS, milestone_words
from babylm.config import option
from babylm.errors import InputError, UsageError
from babylm.runtime import pick_device
from eval_export import loading, schedule
from eval_export.tasks import DEFAULT_EVAL_DATA, PANDAS_NA

log = logging.getLogger(__name__)

WORDS_FILE = "cdi_childes.json"
HUMAN_FILE = "cdi_human.csv"
FOLDERS = ("aoa", "cdi_childes")  # eval_aoa.sh's default folder, then run.py's
AGES = tuple(range(16, 31))  # months, utils.py AoAEvaluator.prepare_cdi_data
OUT_FOLDER = "AoA_word"


@dataclasses.dataclass
class AoAConfig:
    model: str = option("", "run folder holding the chck_* milestone folders (or a git repository written by "
                            "`babylm publish`); every milestone of --track is read from it, none from the hub")
    track: str = option("strict-small", "track: its milestones are the curve's points (19 or 28)",
                        choices=("strict-small", "strict"))
    backend: str = option("auto", "scoring backend; auto infers causal/mlm from the config (mntp must be forced)",
                          choices=("auto", *BACKENDS))
    eval_data: str = option(DEFAULT_EVAL_DATA, "evaluation_data folder holding full_eval/aoa/cdi_childes.json and "
                                               "cdi_human.csv (`download-evals`); env BABYLM_EVAL_DATA sets the default")
    results: str = option("results", "output root: results/<model>/main/zero_shot/<backend>/AoA_word/")
    token_budget: int = option(0, "padded tokens per forward pass; 0 = auto (2048 on CPU, 65536 on a GPU)", ge=0)
    dtype: str = option("float32", "weight dtype; log-softmax is float32 regardless", choices=("float32", "bfloat16", "float16"))
    device: str = option("auto", "cpu, cuda, cuda:1 ... (auto: cuda when available)")
    trust_remote_code: bool = option(False, "run code shipped with the checkpoint (off unless asked)")
    overwrite: bool = option(False, "replace an existing AoA_word/surprisal.json")
    progress: bool = option(True, "show progress bars")

    def validate(self) -> None:
        if not self.model:
            raise UsageError("--model is required (the run folder holding the milestones)")


@dataclasses.dataclass
class AoAData:
    words: list[str]
    contexts: list[list[str]]  # per word, its contexts as the file gives them
    source: Path
    human: Path | None  # cdi_human.csv beside the words file (None: no score can be computed)

    @property
    def n_rows(self) -> int:
        return sum(len(c) for c in self.contexts)


def find(root: Path) -> Path | None:
    """The words file under the evaluation data (``full_eval/aoa/``, ``aoa/``, ``full_eval/cdi_childes/`` ...)."""
    for base in (root / "full_eval", root):
        for folder in FOLDERS:
            if (base / folder / WORDS_FILE).is_file():
                return base / folder / WORDS_FILE
    return None


def load(root: Path) -> AoAData:
    """Words and contexts as the official ``load_eval`` keeps them (words longer than one character)."""
    path = find(root)
    if path is None:
        raise InputError(f"{root}: no full_eval/aoa/{WORDS_FILE}; the AoA data is on the hub only: "
                         "`python -m eval_export download-evals` fetches it")
    obj = files.read_json(path)
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected an object {{word: [{{\"context\": ...}}, ...]}}; re-download it")
    words, contexts = [], []
    for word, entries in obj.items():
        if len(word) <= 1:
            continue
        if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("context"), str)
                                                    for e in entries):
            raise InputError(f"{path}: word {word!r}: expected a list of {{\"context\": <string>}}")
        words.append(word)
        contexts.append([e["context"] for e in entries])
    human = path.parent / HUMAN_FILE
    return AoAData(words, contexts, path, human if human.is_file() else None)


def pairs(data: AoAData) -> list[tuple[str, str]]:
    """(context, word) of every row, as the official extractor joins them."""
    return [(context.strip() + " ", word.strip()) for word, cs in zip(data.words, data.contexts) for context in cs]


def surprisal_rows(data: AoAData, surprisal: Sequence[float], step: str, words_seen: int) -> list[dict[str, Any]]:
    """One milestone's rows of ``surprisal.json``, in the official order and fields."""
    out, k = [], 0
    for word, cs in zip(data.words, data.contexts):
        for i, context in enumerate(cs):
            out.append({"step": step, "word_count": words_seen, "target_word": word, "context_id": i,
                        "context": context, "surprisal": float(surprisal[k])})
            k += 1
    return out


# ---------------------------------------------------------------------------------------------
# The score
# ---------------------------------------------------------------------------------------------


def sigmoid(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    return a / (1 + np.exp(-b * (x - c))) + d


def read_human(path: Path) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """(word of each row, the age columns present, shares per row and age) of ``cdi_human.csv``, as
    pandas reads it: an empty or NA-like cell is NaN."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        names = reader.fieldnames or []
        if "word" not in names:
            raise InputError(f"{path}: no 'word' column")
        ages = [a for a in AGES if str(a) in names]
        if not ages:
            raise InputError(f"{path}: no age columns (16 ... 30)")
        words, table = [], []
        for n, rec in enumerate(reader, start=2):
            words.append(None if rec["word"] in PANDAS_NA else rec["word"])
            row = []
            for a in ages:
                cell = rec.get(str(a)) or ""
                try:
                    row.append(math.nan if cell in PANDAS_NA else float(cell))
                except ValueError:
                    raise InputError(f"{path}:{n}: column {a}: {cell!r} is not a number") from None
            table.append(row)
    return words, np.asarray(ages, dtype=np.int64), np.asarray(table, dtype=np.float64).reshape(len(words), len(ages))


def child_aoa(ages: np.ndarray, shares: np.ndarray) -> float | None:
    """Age (months) where a sigmoid fit to the CDI shares reaches 0.5 (None: fewer than 3 ages, no fit,
    or outside the ages)."""
    from scipy.optimize import curve_fit  # heavy: only when a score is computed

    valid = ~np.isnan(shares)
    x, y = ages[valid], shares[valid]
    if len(y) < 3:
        return None
    try:
        (a, b, c, d), _ = curve_fit(sigmoid, x, y, p0=[1.0, 0.1, np.mean(x), 0.0],
                                    bounds=([0, 0, x[0], -0.5], [2.0, 1.0, x[-1], 0.5]), maxfev=1000)
    except (RuntimeError, ValueError):  # no convergence within maxfev, or a degenerate problem
        return None
    if b <= 0 or a <= 0 or not d < 0.5 < a + d:
        return None
    aoa = c - np.log(a / (0.5 - d) - 1) / b
    return None if aoa < x[0] or aoa > x[-1] else float(aoa)


def model_aoa(surprisals: Sequence[float], steps: Sequence[float], vocab_size: int, pieces: int) -> float | None:
    """log10 words where the fitted curve of minus the surprisal crosses half-way between chance
    (``pieces * ln(vocab_size)``) and the lowest surprisal (None: under 3 points, no fit, or outside)."""
    from scipy.optimize import curve_fit  # heavy: only when a score is computed

    if len(surprisals) < 3:
        return None
    s, w = np.asarray(surprisals, dtype=np.float64), np.asarray(steps, dtype=np.float64)
    valid = ~np.isnan(s)
    if not valid.any():
        return None
    s, w = s[valid], w[valid]
    chance = pieces * np.log(vocab_size)
    threshold = chance - 0.5 * (chance - np.min(s))
    y, x = -s, np.log10(w + 1)
    spread = np.max(y) - np.min(y)
    lower = [0.0, 0.0, np.min(x) - 1, np.min(y) - 2 * spread - 1]
    upper = [10 * spread + 1, 100.0, np.max(x) + 1, np.max(y) + 1]
    try:
        (a, b, c, d), _ = curve_fit(sigmoid, x, y, p0=[spread, 1.0, np.mean(x), np.min(y)],
                                    bounds=(lower, upper), maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    if b <= 1e-6 or a <= 1e-6 or not d < -threshold < a + d:
        return None
    log_step = c - np.log(a / (-threshold - d) - 1) / b
    step = 10 ** log_step - 1
    return None if step < w[0] or step > w[-1] else float(log_step)


def step_number(name: Any) -> float | None:
    """``chck_10M`` -> 1e7 (the first number of the name and its K/M/B unit)."""
    if isinstance(name, (int, float)):
        return float(name)
    m = re.search(r"(\d+(?:\.\d+)?)\s*([KMB]?)", str(name), re.IGNORECASE)
    if not m:
        return None
    return float(m.group(1)) * {"K": 1e3, "M": 1e6, "B": 1e9}.get(m.group(2).upper(), 1)


def word_pieces(tokenizer: Any, word: str) -> int:
    """Pieces of ``word`` after a word: ``"The " + word`` less ``"The"``, at least 1."""
    prefix = len(tokenizer("The", add_special_tokens=False)["input_ids"])
    return max(1, len(tokenizer("The " + word, add_special_tokens=False)["input_ids"]) - prefix)


def curve_fitness(rows: list[dict], human: Path, tokenizer: Any) -> dict[str, Any]:
    """The AoA score of surprisal rows: {"aoa": r, "n_words", "p_value", "words": {word: [model, child]}}."""
    from scipy.stats import pearsonr  # heavy: only when a score is computed

    if not rows:
        raise InputError("AoA: no surprisal rows to score")
    cdi_words, ages, shares = read_human(human)
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for r in rows:
        step = step_number(r["step"])
        if step is not None:
            steps, values = curves.setdefault(r["target_word"], ([], []))
            steps.append(step)
            values.append(float(r["surprisal"]))
    fitted: dict[str, list[float]] = {}
    for word, (steps, values) in curves.items():
        if word not in cdi_words:
            continue
        child = child_aoa(ages, shares[cdi_words.index(word)])
        if child is None:
            continue
        st, sv = np.asarray(steps), np.asarray(values)
        points = np.unique(st)  # one point per checkpoint: the mean over the word's contexts
        model = model_aoa([float(sv[st == p].mean()) for p in points], points.tolist(), tokenizer.vocab_size,
                          word_pieces(tokenizer, word))
        if model is not None:
            fitted[word] = [model, child]
    out: dict[str, Any] = {"aoa": 0.0, "n_words": len(fitted), "p_value": None, "words": fitted}
    if len(fitted) < 3:
        return out
    r, p = pearsonr([v[0] for v in fitted.values()], [v[1] for v in fitted.values()])
    out["p_value"] = float(p)
    out["aoa"] = 0.0 if p > 0.1 else float(r)
    return out


# ---------------------------------------------------------------------------------------------
# The run: every milestone of the track, then the two files under main
# ---------------------------------------------------------------------------------------------


def out_dir(results: Path, model: str, backend: str) -> Path:
    """``<results>/<model>/main/zero_shot/<backend>/AoA_word`` (run.py config_paths @ 3d57ddc)."""
    return Path(results) / model / "main" / "zero_shot" / backend / OUT_FOLDER


def score_milestone(loaded: Any, data: AoAData, token_budget: int, progress: bool) -> np.ndarray:
    """Surprisal of every row with one loaded checkpoint."""
    import torch

    from eval_export import scoring  # imports torch: off the --help path

    tok = loaded.tokenizer
    rows = pairs(data)
    try:
        requests, empty = scoring.build_requests(tok, rows, loaded.backend, "2025"), []
    except InputError:  # a row with no token to score (a causal word at the very start): find which
        requests, empty = [], []
        for k, row in enumerate(rows):
            try:
                requests += scoring.build_requests(tok, [row], loaded.backend, "2025")
            except InputError:
                empty.append(k)
    with torch.inference_mode():
        opts = scoring.ScoringOptions(pll_variant="original", token_budget=token_budget, progress=progress)
        scores = scoring.score_requests(loaded.model, requests, loaded.backend, opts, pad_id=scoring.pad_id_of(tok),
                                        mask_id=tok.mask_token_id,
                                        desc=f"AoA {loaded.revision} ({len(requests)} word-in-context rows)")
    surprisal = -scores.logprob
    # no token to score (a causal sentence that is the word's one token; a masked span with no token):
    # the official extractor's forward fails on it and records NaN
    for k in empty:
        surprisal = np.insert(surprisal, k, math.nan)
    return surprisal


def write(folder: Path, model_name: str, rows: list[dict], n_steps: int, score: dict[str, Any] | None) -> list[Path]:
    """``surprisal.json`` (the official object) and, with a score, ``aoa_score.json`` = ``{"aoa": r}`` and our
    ``aoa_summary.json`` (the words fitted, their AoAs, p); each file written whole or not at all."""
    surprisal = {"metadata": {"model_name": model_name, "use_bos_only": False, "total_steps": n_steps,
                              "completed_steps": len({r["step"] for r in rows})}, "results": rows}
    written = [files.write_text(folder / "surprisal.json", json.dumps(surprisal, indent=2))]
    if score is not None:
        written.append(files.write_text(folder / "aoa_score.json", json.dumps({"aoa": score["aoa"]}, indent=2)))
        written.append(files.write_json(folder / "aoa_summary.json", score))
    return written


def run(cfg: AoAConfig, clock: Any = None) -> list[Path]:
    """Score every milestone of ``cfg.track`` from the local run, then write the AoA files under ``main``.

    Everything is checked before the first model is loaded: the data, every milestone's folder, and
    that the result is not there already (unless ``--overwrite``)."""
    data = load(Path(cfg.eval_data))
    if data.human is None:
        log.warning("%s: no %s beside it: surprisals only, no AoA score", data.source, HUMAN_FILE)
    steps = milestone_words(cfg.track)
    if not Path(cfg.model).is_dir():
        raise UsageError(f"--model {cfg.model}: AoA reads every milestone of the run from a local folder or git "
                         "repository (no hub download per checkpoint); download the model first")
    for name, _ in steps:  # a missing milestone fails here, before any model is loaded
        loading.resolve_local(cfg.model, name)
    device = pick_device(cfg.device)
    budget = cfg.token_budget or (2048 if str(device).startswith("cpu") else 65536)
    clock = clock or schedule.RevisionClock(len(steps))
    rows: list[dict] = []
    loaded = None
    for name, words in steps:
        clock.start(f"{name} (AoA: {data.n_rows:,} rows)")
        loaded = loading.load_model(cfg.model, name, None if cfg.backend == "auto" else cfg.backend,
                                    cfg.trust_remote_code, cfg.dtype, str(device))
        if not rows:  # the backend is known once the first checkpoint is loaded
            target = out_dir(Path(cfg.results), loaded.name, loaded.backend)
            if (target / "surprisal.json").is_file() and not cfg.overwrite:
                raise UsageError(f"{target}/surprisal.json exists; pass --overwrite true to score AoA again")
        rows += surprisal_rows(data, score_milestone(loaded, data, budget, cfg.progress), name, words)
        clock.done()
    score = curve_fitness(rows, data.human, loaded.tokenizer) if data.human is not None else None
    return write(out_dir(Path(cfg.results), loaded.name, loaded.backend), loaded.name, rows, len(steps), score)
