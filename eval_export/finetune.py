"""``python -m eval_export finetune``: fine-tune a checkpoint on the BabyLM GLUE tasks, write official predictions.

For each task it trains a fresh classifier (see :mod:`eval_export.classifier`) on
``<data_dir>/<task>.train.jsonl``, evaluates on ``<task>.valid.jsonl`` after every epoch, keeps the
best epoch, and writes into ``<output_dir>/<model>/<revision>/finetune/<task>/``:

* ``predictions.json``: ``{"<task>": {"predictions": [{"id": "<task>_<i>", "pred": <int>}, ...]}}``,
  ``i`` = line index in the validation file, Python ``json.dumps`` defaults (the official 2025 file);
* ``results.txt``: ``accuracy: ...`` lines as the official pipeline writes them;
* ``results.json``: metrics, best epoch, per-epoch history, settings, timings;
* ``finetune_config.json``: the resolved command config.

A task folder appears whole or not at all (built in a temporary folder, then renamed), so an
interrupted task leaves nothing and is simply run again; a finished task is skipped unless
``--overwrite``. All requested data files are read and checked before any training starts.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from babylm.config import option, save
from babylm.errors import UsageError
from eval_export import glue
from eval_export.tasks import DEFAULT_EVAL_DATA

HEADS = ("official", "stock")
POOLINGS = ("auto", "first", "last")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclasses.dataclass
class FinetuneConfig:
    model: str = option("", "model folder (a kit run's final/ or a chck_* folder) or hub id")
    revision: str = option("main", "revision: a hub branch, a subfolder of a local model (chck_10M ...) or a branch "
                                   "of a local git repository")
    tasks: list[str] = option(["boolq", "mnli", "mrpc", "multirc", "qqp", "rte", "wsc"],
                              "tasks to run, comma-separated", choices=tuple(glue.TASKS))
    data_dir: str = option(f"{DEFAULT_EVAL_DATA}/glue_filtered",
                           "folder of <task>.train.jsonl / <task>.valid.jsonl (the official glue_filtered; "
                           "default: under $BABYLM_EVAL_DATA)")
    output_dir: str = option("results", "results root; files go to <output_dir>/<model>/<revision>/finetune/<task>/")
    model_name: str = option("", "name used in the results path (default: the model folder's or hub id's last part)")
    head: str = option("official", "classification head: the official 2025 head on AutoModel, or the "
                                   "architecture's AutoModelForSequenceClassification", choices=HEADS)
    pooling: str = option("auto", "token the official head classifies: auto = first for encoders, last non-padding "
                                  "for decoders; first/last = first/last non-padding token", choices=POOLINGS)
    padding_side: str = option("right", "side the tokenizer pads on", choices=("left", "right"))
    official: bool = option(False, "reproduce the official 2025 behaviour exactly: official head, hidden state at "
                                   "position 0, right padding (poor for decoders, evaluation-pipeline-2025 #38)")
    lr: float = option(3e-5, "peak learning rate (AdamW)", gt=0)
    batch_size: int | None = option(None, "training batch size (default: 32, 16 for boolq and multirc)", ge=1)
    eval_batch_size: int = option(64, "batch size for evaluation and prediction", ge=1)
    epochs: int | None = option(None, "epochs (default: 10, 30 for wsc)", ge=1)
    max_length: int = option(512, "max tokens per pair (also capped by the model's position limit)", ge=1)
    weight_decay: float = option(0.01, "AdamW weight decay", ge=0)
    warmup: float = option(0.06, "fraction of steps with linear warm-up", ge=0, lt=1)
    min_lr_factor: float = option(0.1, "the cosine schedule ends at this fraction of --lr", ge=0, le=1)
    dropout: float = option(0.1, "classifier dropout", ge=0, lt=1)
    seed: int = option(42, "seed for the head's initialisation, dropout and batch order", ge=0)
    max_train_examples: int | None = option(None, "use only the first N training rows (after the official "
                                                  "MNLI/QQP 10k subsample); for quick runs, not for submissions", ge=1)
    device: str = option("auto", "cpu, cuda, cuda:N or auto")
    precision: str = option("auto", "auto = bf16 autocast on GPU, fp32 on CPU", choices=PRECISIONS)
    trust_remote_code: bool = option(False, "allow the model's own Python code (only for models you trust)")
    overwrite: bool = option(False, "re-run tasks whose predictions already exist")
    progress: bool = option(True, "show a progress bar per epoch")

    def validate(self) -> None:
        from eval_export.loading import check_name

        check_name(self.revision, "revision")
        if self.model_name:
            check_name(self.model_name, "model_name")
        if not self.model:
            raise UsageError("--model is required (a model folder or a hub id)")
        if not self.tasks:
            raise UsageError("--tasks: give at least one task")
        if self.official and (self.pooling not in ("auto", "first") or self.padding_side != "right"
                              or self.head != "official"):
            raise UsageError("--official fixes --head official, first-token pooling and --padding_side right; "
                             "drop the conflicting option")


def model_label(model: str, name: str = "") -> str:
    """Folder name for a model in the results tree: ``--model_name``, else the path's or hub id's last part.

    (The official code uses ``Path(model).stem``, which cuts names with dots; we keep the whole name.)
    """
    if name:
        return name
    return Path(model.rstrip("/")).name or model


def task_dir(cfg: FinetuneConfig, task: str) -> Path:
    return Path(cfg.output_dir) / model_label(cfg.model, cfg.model_name) / cfg.revision / "finetune" / task


def load_data(cfg: FinetuneConfig) -> dict[str, tuple[glue.Examples, glue.Examples]]:
    """Read and check every requested task's train and valid files (before any model is loaded).

    MNLI and QQP training sets get the official 10k subsample; ``--max_train_examples`` cuts further.
    """
    data = {}
    for name in cfg.tasks:
        task = glue.TASKS[name]
        train_path = glue.task_file(cfg.data_dir, name, "train")
        valid_path = glue.task_file(cfg.data_dir, name, "valid")
        train = glue.read_examples(train_path, task)
        if task.subsample:
            train = train.select(glue.official_subsample(len(train)))
        if cfg.max_train_examples is not None:
            train = train.select(list(range(min(len(train), cfg.max_train_examples))))
        data[name] = (train, glue.read_examples(valid_path, task))
    return data


def predictions_json(task: str, preds: list[int]) -> str:
    """The official per-task predictions file text (``json.dump`` defaults, no trailing newline)."""
    return json.dumps({task: {"predictions": [{"id": f"{task}_{i}", "pred": int(p)} for i, p in enumerate(preds)]}})


def run_finetune(cfg: FinetuneConfig, data: dict[str, tuple[glue.Examples, glue.Examples]] | None = None,
                 log=lambda message: None) -> dict[str, dict[str, Any]]:
    """Fine-tune on every task of ``cfg.tasks``; returns ``{task: results}`` (also for skipped tasks)."""
    data = load_data(cfg) if data is None else data
    from babylm.files import atomic_dir, write_text
    from babylm.runtime import code_version, pick_device, seed_everything
    from eval_export import classifier as clf

    padding_side = "right" if cfg.official else cfg.padding_side
    pooling = "first" if cfg.official else cfg.pooling
    device = pick_device(cfg.device)
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.startswith("cuda"))
    backbone = None
    summary: dict[str, dict[str, Any]] = {}
    for name in cfg.tasks:
        task = glue.TASKS[name]
        out = task_dir(cfg, name)
        if (out / "predictions.json").is_file() and not cfg.overwrite:
            log(f"{name}: done already ({out}); --overwrite re-runs it")
            summary[name] = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
            continue
        for stale in out.parent.glob(f".tmp-{name}-*"):  # left by a killed run of this task
            shutil.rmtree(stale, ignore_errors=True)
        if backbone is None:
            backbone = clf.load_backbone(cfg.model, cfg.revision, padding_side, cfg.max_length, cfg.trust_remote_code)
        train, valid = data[name]
        seed_everything(cfg.seed)  # same head initialisation and batch order whatever ran before
        model = clf.build_classifier(backbone, task.num_labels, cfg.head, pooling, cfg.dropout, cfg.official,
                                     cfg.trust_remote_code)
        tok = backbone.tokenizer
        started = time.perf_counter()
        segments = backbone.segments and not cfg.official  # the official code passes ids and mask only
        train_enc = clf.encode_pairs(tok, train.pairs, backbone.max_length, segments)
        valid_enc = clf.encode_pairs(tok, valid.pairs, backbone.max_length, segments)
        settings = clf.TrainSettings(
            epochs=cfg.epochs or task.epochs, batch_size=cfg.batch_size or task.batch_size,
            eval_batch_size=cfg.eval_batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay, warmup=cfg.warmup,
            min_lr_factor=cfg.min_lr_factor, seed=cfg.seed, device=device, bf16=bf16,
            best_metric=task.best_metric, num_labels=task.num_labels, progress=cfg.progress, label=name)
        log(f"{name}: {len(train)} train / {len(valid)} valid pairs, {settings.epochs} epochs, batch "
            f"{settings.batch_size}, head {cfg.head}, pooling {getattr(model, 'pooling', 'stock')}, "
            f"padding {padding_side}, {device}{' bf16' if bf16 else ''}")
        result = clf.fit(model, train_enc, train.labels, valid_enc, valid.labels, tok.pad_token_id,
                         padding_side == "left", settings,
                         on_epoch=lambda r, n=name: log(f"{n} epoch {r['epoch']}: loss {r['train_loss']:.4f} "
                                                        f"acc {r['accuracy']:.4f} f1 {r['f1']:.4f} mcc {r['mcc']:.4f}"))
        results = {
            "task": name, "model": cfg.model, "revision": cfg.revision, "metrics": result.metrics,
            "best_epoch": result.best_epoch, "selected_by": task.best_metric, "history": result.history,
            "steps": result.steps, "n_train": len(train), "n_valid": len(valid), "head": cfg.head,
            "pooling": getattr(model, "pooling", "stock"), "padding_side": padding_side, "official": cfg.official,
            "device": device, "bf16": bf16, "max_length": backbone.max_length,
            "seconds": round(time.perf_counter() - started, 2), "kit": code_version(),
        }
        with atomic_dir(out, overwrite=True) as tmp:
            write_text(tmp / "predictions.json", predictions_json(name, result.predictions))
            write_text(tmp / "results.txt", "\n".join(f"{k}: {v}" for k, v in result.metrics.items()))
            write_text(tmp / "results.json", json.dumps(results, indent=2) + "\n")
            save(cfg, tmp, "finetune")
        log(f"{name}: best epoch {result.best_epoch} ({task.best_metric}) accuracy {result.metrics['accuracy']:.4f} "
            f"f1 {result.metrics['f1']:.4f} mcc {result.metrics['mcc']:.4f} -> {out / 'predictions.json'}")
        summary[name] = results
        del model
    return summary
