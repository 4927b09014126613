"""Fine-tuning per language on the official multilingual files (babylm-eval 3d57ddc,
``multilingual/scripts/finetune_model.sh`` and ``multilingual/finetune/finetune_classification.py``).

Per language ``xx`` (en, nl, zh) and task, training reads ``<data_dir>/<xx>/<task>/<task>_<xx>.train.jsonl``
and evaluates (and predicts) on ``<task>_<xx>.valid.jsonl``. The text is ``sentence`` or the pair
``premise``/``hypothesis`` (task_to_keys there); the classes are the sorted distinct training labels
("A".."D", "entailment" ...), as the official script builds ``label_list``. Defaults are the official
ones: lr 5e-5, batch 64, 10 epochs, early stopping after 3 epochs without a gain of more than 0.001,
at most 128 tokens, seed 12; the model is selected by F1 for two classes, else accuracy.

The classifier is the architecture's own sequence-classification head (AutoModelForSequenceClassification,
as there) trained by the kit's loop (:func:`eval_export.classifier.fit`); one difference on purpose: the
model's own padding token marks padding (the official script sets it to EOS, which a kit tokenizer never
appends, so a right-padded row would be read at a padding position). The reported epoch is the best one.

Output, as the official collator reads it: ``<output_dir>/<model>/<revision>/finetune_multilingual/<xx>/<task>/``
with ``eval_results.json`` (``eval_accuracy``), ``predictions.txt`` (``index<TAB>prediction`` with the
label strings) and ``results.json`` (history, settings); each task folder whole or not at all.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from babylm.errors import InputError
from babylm.files import atomic_dir, read_jsonl, write_text
from babylm.runtime import pick_device, seed_everything
from eval_export.multilingual import spec

log = logging.getLogger(__name__)


def task_files(data_dir: str | Path, xx: str, task: str) -> tuple[Path, Path]:
    folder = Path(data_dir) / xx / task
    return folder / f"{task}_{xx}.train.jsonl", folder / f"{task}_{xx}.valid.jsonl"


def read_task(path: Path, task: str) -> tuple[list[tuple[str, str | None]], list[str]]:
    """(texts, labels) of one file; InputError naming the file and line of a row without its fields."""
    first, second = spec.FINETUNE_FIELDS[task]
    rows = read_jsonl(path, str(path))
    texts, labels = [], []
    for row in rows:
        number = row["__line__"]
        missing = [f for f in (first, second, "label") if f and f not in row]
        if missing:
            raise InputError(f"{path}:{number}: no field {missing[0]!r}; {task} rows need {first}"
                             f"{', ' + second if second else ''} and label")
        texts.append((str(row[first]), str(row[second]) if second else None))
        labels.append(str(row["label"]))
    if not texts:
        raise InputError(f"{path}: no rows")
    return texts, labels


def encode(tokenizer, texts: list[tuple[str, str | None]], max_length: int) -> list[dict[str, list[int]]]:
    """The official preprocessing: ``tokenizer(text)`` or ``tokenizer(a, b)``, truncated to max_length."""
    out = []
    for a, b in texts:
        enc = tokenizer(a, b, truncation=True, max_length=max_length) if b is not None else \
            tokenizer(a, truncation=True, max_length=max_length)
        out.append({"input_ids": enc["input_ids"]})
    return out


def finetune_language_task(backbone, data_dir: str | Path, xx: str, task: str, out: Path, options: dict[str, Any],
                           device: str) -> dict[str, Any]:
    """Train and evaluate one (language, task); write its folder; returns its results."""
    from eval_export import classifier as clf  # torch: off the --help path

    train_path, valid_path = task_files(data_dir, xx, task)
    for path in (train_path, valid_path):
        if not path.is_file():
            raise InputError(f"{path}: not found; give --data_dir the official finetune/data/multilingual folder "
                             f"or leave {task} out of --tasks for {xx}")
    train_texts, train_labels = read_task(train_path, task)
    valid_texts, valid_labels = read_task(valid_path, task)
    label_list = sorted(set(train_labels))  # of the whole file, also under --limit
    unknown = sorted(set(valid_labels) - set(label_list))
    if unknown:
        raise InputError(f"{valid_path}: label {unknown[0]!r} does not occur in {train_path.name}")
    if options.get("limit"):
        train_texts, train_labels = train_texts[:options["limit"]], train_labels[:options["limit"]]
        valid_texts, valid_labels = valid_texts[:options["limit"]], valid_labels[:options["limit"]]
    index = {label: i for i, label in enumerate(label_list)}
    seed_everything(options["seed"])
    model = clf.build_classifier(backbone, len(label_list), "stock", "auto", 0.1, False)
    tok = backbone.tokenizer
    settings = clf.TrainSettings(
        epochs=options["epochs"], batch_size=options["batch_size"], eval_batch_size=64, lr=options["lr"],
        weight_decay=0.0, warmup=0.0, min_lr_factor=1.0, seed=options["seed"], device=device,
        best_metric="f1" if len(label_list) == 2 else "accuracy", num_labels=len(label_list), progress=False,
        label=f"{task}_{xx}", patience=options["patience"], patience_threshold=spec.EARLY_STOPPING_THRESHOLD)
    result = clf.fit(model, encode(tok, train_texts, backbone.max_length), [index[x] for x in train_labels],
                     encode(tok, valid_texts, backbone.max_length), [index[x] for x in valid_labels],
                     tok.pad_token_id, tok.padding_side == "left", settings)
    results = {"task": task, "language": xx, "eval_accuracy": result.metrics["accuracy"], "metrics": result.metrics,
               "best_epoch": result.best_epoch, "epochs_run": len(result.history), "history": result.history,
               "labels": label_list, "n_train": len(train_texts), "n_valid": len(valid_texts), **options}
    with atomic_dir(out, overwrite=True) as tmp:
        write_text(tmp / "eval_results.json", json.dumps({"eval_accuracy": result.metrics["accuracy"],
                                                          "eval_samples": len(valid_texts)}, indent=4) + "\n")
        write_text(tmp / "predictions.txt", "index\tprediction\n" + "".join(
            f"{i}\t{label_list[p]}\n" for i, p in enumerate(result.predictions)))
        write_text(tmp / "results.json", json.dumps(results, indent=2) + "\n")
    log.info("%s %s: accuracy %.4f (best epoch %d of %d run)", xx, task, result.metrics["accuracy"],
             result.best_epoch, len(result.history))
    return results


def run(model: str, revision: str, languages: list[str], tasks: list[str], data_dir: str | Path,
        out_root: Path, options: dict[str, Any], device: str = "auto") -> dict[str, dict[str, Any]]:
    """Every (language, task) with both files; a task without files for a language is named and left out
    (the official loop runs them all and those fail: include for en, xnli for nl)."""
    from eval_export import classifier as clf  # torch: off the --help path

    device = pick_device(device)
    backbone = clf.load_backbone(model, revision, "right", options["max_length"])
    done: dict[str, dict[str, Any]] = {}
    for lang in languages:
        xx = spec.ISO2[lang]
        for task in tasks:
            train_path, valid_path = task_files(data_dir, xx, task)
            if not (train_path.is_file() and valid_path.is_file()):
                log.warning("%s %s: no %s and %s; not fine-tuned", xx, task, train_path.name, valid_path.name)
                continue
            done[f"{task}_{xx}"] = finetune_language_task(backbone, data_dir, xx, task, out_root / xx / task,
                                                          options, device)
    if not done and tasks:
        raise InputError(f"{data_dir}: no <xx>/<task>/<task>_<xx>.train.jsonl and .valid.jsonl for the languages "
                         "and tasks asked for")
    return done
