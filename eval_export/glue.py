"""The seven (Super)GLUE fine-tuning tasks of the 2025/2026 BabyLM leaderboard: templates, data, metrics.

Facts below follow the official 2025 pipeline (babylm/evaluation-pipeline-2025, commit bf55c11;
``eval_finetuning.sh``, ``finetune/dataset.py``, ``finetune/run.py``), as summarised in
babylm-org/babylm-eval, ``strict/evaluation_pipeline/finetune/`` (dataset.py, run.py) and ``strict/scripts/eval_finetuning.sh``:

* inputs are text pairs; MultiRC is ``Question: {question} Answer: {answer}`` paired with the
  paragraph, WSC is ``Does "{span2_text}" refer to "{span1_text}" in this passage?`` paired with
  the text;
* MNLI has 3 labels, every other task 2;
* batch 32 (16 for BoolQ and MultiRC), 10 epochs (30 for WSC), best epoch by accuracy (F1 for MRPC
  and QQP);
* MNLI and QQP training sets are subsampled to 10,000 rows. The official ``*.train.jsonl`` files
  on OSF already hold the sample: row ``k`` is row ``random.Random(42).sample(range(N), 10000)[k]``
  of the full GLUE training set (checked on every ``idx`` of both shared files, N = 392,702 for
  MNLI and 363,846 for QQP). :func:`official_subsample` repeats that draw, so a full training file
  gives the same 10k rows in the same order, and an already subsampled file is left as it is.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from babylm.errors import InputError
from babylm.files import read_jsonl

# Where the official data lives (the 2025/2026 OSF project linked from the babylm-org/babylm-eval README).
OFFICIAL_DATA = "OSF osf.io/ryjfm, folder evaluation_data/full_eval/glue_filtered/"

SUBSAMPLE_SIZE = 10_000  # MNLI and QQP training rows (official)
SUBSAMPLE_SEED = 42  # the seed whose random.sample reproduces the official files (see module doc)


@dataclasses.dataclass(frozen=True)
class Task:
    """One classification task: how to build its text pair and how to train and select on it."""

    name: str
    num_labels: int
    first: tuple[str, ...]  # fields forming the first text of the pair
    second: tuple[str, ...]  # fields forming the second text
    template: str | None = None  # format string over ``first`` (None: fields joined by a space)
    batch_size: int = 32
    epochs: int = 10
    best_metric: str = "accuracy"
    subsample: bool = False  # training set cut to SUBSAMPLE_SIZE rows (official)

    def pair(self, row: dict) -> tuple[str, str]:
        """The (first, second) text pair of one JSON row."""
        values = [row[key] for key in self.first]
        first = self.template.format(*values) if self.template else " ".join(values)
        return first, " ".join(row[key] for key in self.second)


TASKS: dict[str, Task] = {
    "boolq": Task("boolq", 2, ("question",), ("passage",), batch_size=16),
    "mnli": Task("mnli", 3, ("premise",), ("hypothesis",), subsample=True),
    "mrpc": Task("mrpc", 2, ("sentence1",), ("sentence2",), best_metric="f1"),
    "multirc": Task("multirc", 2, ("question", "answer"), ("paragraph",), "Question: {} Answer: {}", batch_size=16),
    "qqp": Task("qqp", 2, ("question1",), ("question2",), best_metric="f1", subsample=True),
    "rte": Task("rte", 2, ("sentence1",), ("sentence2",)),
    "wsc": Task("wsc", 2, ("span2_text", "span1_text"), ("text",), 'Does "{}" refer to "{}" in this passage?', epochs=30),
}


@dataclasses.dataclass
class Examples:
    """The rows of one task file as text pairs and integer labels, in file order."""

    path: Path
    pairs: list[tuple[str, str]]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, rows: list[int]) -> Examples:
        return Examples(self.path, [self.pairs[i] for i in rows], [self.labels[i] for i in rows])


def task_file(data_dir: str | Path, task: str, split: str) -> Path:
    """``<data_dir>/<task>.<split>.jsonl``; a missing file is an InputError saying where to get it."""
    path = Path(data_dir) / f"{task}.{split}.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: file not found; {task} needs {task}.train.jsonl and {task}.valid.jsonl, "
                         f"download them from {OFFICIAL_DATA} into {Path(data_dir)}")
    return path


def read_examples(path: str | Path, task: Task) -> Examples:
    """Read a task's JSON Lines file; any bad line is an InputError naming the file and line."""
    path = Path(path)
    pairs: list[tuple[str, str]] = []
    labels: list[int] = []
    for row in read_jsonl(path, str(path), allow_blank=False):
        number = row["__line__"]
        for key in (*task.first, *task.second, "label"):
            if key not in row:
                raise InputError(f"{path}:{number}: missing field {key!r} (a {task.name} row needs "
                                 f"{', '.join((*task.first, *task.second, 'label'))})")
        for key in (*task.first, *task.second):
            if not isinstance(row[key], str):
                raise InputError(f"{path}:{number}: field {key!r} must be a string, got {row[key]!r:.40}")
        label = row["label"]
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < task.num_labels:
            raise InputError(f"{path}:{number}: label {label!r} out of range; {task.name} has "
                             f"{task.num_labels} labels (integers 0..{task.num_labels - 1})")
        pairs.append(task.pair(row))
        labels.append(label)
    if not labels:
        raise InputError(f"{path}: no examples; the file is empty")
    return Examples(path, pairs, labels)


def official_subsample(n_rows: int, size: int = SUBSAMPLE_SIZE, seed: int = SUBSAMPLE_SEED) -> list[int]:
    """Row indices of the official MNLI/QQP training subsample, in the official order.

    A file with ``size`` rows or fewer is kept whole (the OSF files are already subsampled).
    """
    if n_rows <= size:
        return list(range(n_rows))
    return random.Random(seed).sample(range(n_rows), size)


# ----------------------------------------------------------------------------- metrics
# Own implementations of what the official code takes from scikit-learn (accuracy_score,
# f1_score with the binary default pos_label=1, matthews_corrcoef), including its conventions
# for degenerate cases: an undefined F1 or MCC is 0.0.


def confusion(labels: list[int], preds: list[int], num_labels: int) -> list[list[int]]:
    """``m[true][pred]`` counts."""
    if len(labels) != len(preds):
        raise ValueError(f"{len(labels)} labels but {len(preds)} predictions")
    matrix = [[0] * num_labels for _ in range(num_labels)]
    for truth, pred in zip(labels, preds):
        matrix[truth][pred] += 1
    return matrix


def accuracy(labels: list[int], preds: list[int]) -> float:
    if not labels:
        raise ValueError("no labels")
    return sum(t == p for t, p in zip(labels, preds, strict=True)) / len(labels)


def f1(labels: list[int], preds: list[int], num_labels: int = 2) -> float:
    """Binary F1 of class 1; with more than two classes the unweighted mean of per-class F1 (macro)."""
    matrix = confusion(labels, preds, num_labels)

    def class_f1(k: int) -> float:
        tp = matrix[k][k]
        predicted = sum(matrix[t][k] for t in range(num_labels))
        actual = sum(matrix[k])
        # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + actual); 0 when both are empty (sklearn)
        return 2 * tp / (predicted + actual) if predicted + actual else 0.0

    if num_labels == 2:
        return class_f1(1)
    return sum(class_f1(k) for k in range(num_labels)) / num_labels


def mcc(labels: list[int], preds: list[int], num_labels: int = 2) -> float:
    """Matthews correlation (Gorodkin's multi-class form; equals the binary phi coefficient)."""
    matrix = confusion(labels, preds, num_labels)
    n = len(labels)
    correct = sum(matrix[k][k] for k in range(num_labels))
    actual = [sum(matrix[k]) for k in range(num_labels)]
    predicted = [sum(matrix[t][k] for t in range(num_labels)) for k in range(num_labels)]
    cov = correct * n - sum(a * p for a, p in zip(actual, predicted))
    var_pred = n * n - sum(p * p for p in predicted)
    var_true = n * n - sum(a * a for a in actual)
    if var_pred == 0 or var_true == 0:
        return 0.0
    return cov / (var_pred * var_true) ** 0.5


def scores(labels: list[int], preds: list[int], num_labels: int) -> dict[str, float]:
    """accuracy, f1 and mcc of one prediction list."""
    return {"accuracy": accuracy(labels, preds), "f1": f1(labels, preds, num_labels),
            "mcc": mcc(labels, preds, num_labels)}
