"""GlobalPIQA (2026 set): the English parallel (4 solutions) and nonparallel (2 solutions) tasks.

Facts from babylm-eval at 3d57ddc (the final 2026 pipeline):

- Data (``strict/evaluation_pipeline/global_piqa/dl.py``): the ``eng_latn`` test split of
  ``mrlbenchmarks/global-piqa-{parallel,nonparallel}`` written as JSON Lines to
  ``evaluation_data/{full_eval,fast_eval}/global_piqa_{parallel,nonparallel}/eng_latn.jsonl``; the
  same data for the full and the fast set. Fields: ``prompt``, ``solution0`` ... ``solution{k-1}``,
  ``label`` (index of the right solution), ``example_id``.
- Decoding (``sentence_zero_shot/read_files.py``, ``_build_global_piqa_pair``): candidate i is the
  sentence ``prompt + " " + solution_i``, of which the completion ``" " + solution_i`` is scored; the
  options keep the file's order and ``label`` names the right one; the subtask key (UID) is the
  example id, so each key holds one prediction, ``<example_id>_0``, whose ``pred`` is the chosen
  completion (with its leading space).
- Scoring (``sentence_zero_shot/compute_results.py``, ``LENGTH_NORMALIZED_TASKS``): the completion's
  summed log-probability divided by its number of scored tokens (at least 1), for every backend;
  causal counts the completion tokens after the first position, mlm/mntp the masked copies.
- Sizes (``collate_preds.py``, ``GLOBAL_PIQA_SIZES``): 103 parallel and 100 nonparallel examples.
- Results folder: ``<revision>/zero_shot/<backend>/<task>/<task>/predictions.json`` (``run.py``: the
  task name, then the data folder's name, which is the task name again).
"""

from __future__ import annotations

from pathlib import Path

from babylm.errors import InputError
from babylm.files import read_jsonl

SOLUTIONS = {"global_piqa_parallel": 4, "global_piqa_nonparallel": 2}
TASKS = tuple(SOLUTIONS)
SIZES = {"global_piqa_parallel": 103, "global_piqa_nonparallel": 100}  # collate_preds.py @ 3d57ddc
DATA_FILE = "eng_latn.jsonl"  # global_piqa/dl.py @ 3d57ddc
REDUCTION = "mean"  # length-normalised: summed log-probability / scored tokens


def data_folder(root: Path, task: str, fast: bool) -> Path | None:
    """The task's folder under the evaluation data: ``fast_eval/`` first for the fast set, ``full_eval/``
    first for the full set (the official scripts point each set at its own copy), then ``root`` itself."""
    order = ("fast_eval", "full_eval") if fast else ("full_eval", "fast_eval")
    for base in (root / order[0], root / order[1], root):
        if (base / task).is_dir():
            return base / task
    return None


def decode(row: dict, name: str, n_solutions: int) -> tuple[str, str, list[str], int]:
    """(example id, prompt, completions ``" " + solution_i`` in file order, label) of one JSON line."""
    where = f"{name}:{row.get('__line__', '?')}"
    for key in ("prompt", "label", "example_id", *(f"solution{i}" for i in range(n_solutions))):
        if key not in row:
            raise InputError(f"{where}: missing field {key!r}; is this the GlobalPIQA eng_latn file?")
    texts = [row["prompt"], *(row[f"solution{i}"] for i in range(n_solutions))]
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()), None)
    if bad is not None:
        field = "prompt" if bad == 0 else f"solution{bad - 1}"
        raise InputError(f"{where}: field {field!r} is empty or not a string")
    label = row["label"]
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < n_solutions:
        raise InputError(f"{where}: field 'label' must be an integer from 0 to {n_solutions - 1}, got {label!r}")
    example_id = row["example_id"]
    if not isinstance(example_id, (str, int)) or isinstance(example_id, bool) or not str(example_id).strip():
        raise InputError(f"{where}: field 'example_id' must be a non-empty string")
    return str(example_id), texts[0], [" " + s for s in texts[1:]], label


def read(folder: Path, task: str) -> list[tuple[str, str, list[str], int]]:
    """Every example of the task's ``*.jsonl`` files (the official reader takes each file of the folder),
    each example id once: the collated file keys predictions by it and wants exactly one each."""
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise InputError(f"{folder}: no *.jsonl files (expected {DATA_FILE}); run `python -m eval_export download-evals`")
    out, seen = [], {}
    for path in files:
        for row in read_jsonl(path, str(path)):
            example = decode(row, str(path), SOLUTIONS[task])
            if example[0] in seen:
                raise InputError(f"{path}:{row['__line__']}: example_id {example[0]!r} repeats line {seen[example[0]]}; "
                                 "each example must appear once")
            seen[example[0]] = row["__line__"]
            out.append(example)
    return out
