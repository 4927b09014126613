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
``--overwrite``, and only when it was made from the same model (its path and a fingerprint of its
weights) with the same options and data (recorded in ``results.json``, ``run``): otherwise the command
stops with one line. ``<output_dir>/<model>/<revision>/finetune`` is held by one process at a time.
All requested data files are read and checked before any training starts.

Rules by ``--year`` (babylm-org/babylm-eval: 2025 = 45fe2c1, 2026 = 3d57ddc, the default;
``strict/scripts/eval_finetuning.sh`` and ``strict/evaluation_pipeline/finetune/``):

* 2026 runs every task with ``--padding_side left --take_final``: the official head reads the last
  position, which left padding makes the last token of every row; 2025 read position 0 of right-padded
  rows. ``--official true`` reproduces the year's choice exactly (for every model, encoders too). The
  kit's own default pools the last token of decoders and the first of encoders, found from the attention
  mask so that the padding side does not matter; under 2026 decoders are padded on the left, as there.
* 2026 divides the loss by ``--gradient_accumulation`` (commit 02b56cb "Fix gradient accumulation bug in
  finetuning"), so that accumulated gradients are those of the mean over the whole batch; 2025 summed
  them (each micro-batch's mean loss, unscaled). The scripts keep accumulation at 1, where both agree.
* Unchanged: AdamW with weight decay 0.01, lr 3e-5, batch 32 (16 for BoolQ and MultiRC), 10 epochs (30
  for WSC), 6% warm-up then cosine to 0.1 x lr, best epoch by accuracy (F1 for MRPC and QQP), padding to
  the longest row of a batch, at most 512 tokens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from babylm.challenge import DEFAULT_RULES, RULES, Rules
from babylm.config import option, save
from babylm.errors import UsageError
from babylm.files import FolderLock, atomic_dir, write_text
from babylm.integrity import weights_fingerprint
from babylm.runtime import code_version, pick_device, seed_everything
from eval_export import glue
from eval_export.loading import check_name, resolve_model_path
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
    year: str = option(DEFAULT_RULES.value, "fine-tuning rules: 2026 = babylm-eval 3d57ddc (left padding and the "
                                            "final token for --official; loss divided by --gradient_accumulation), "
                                            "2025 = 45fe2c1 (right padding and position 0; loss not divided)",
                       choices=RULES)
    head: str = option("official", "classification head: the official 2025/2026 head on AutoModel, or the "
                                   "architecture's AutoModelForSequenceClassification", choices=HEADS)
    pooling: str = option("auto", "token the official head classifies: auto = first for encoders, last non-padding "
                                  "for decoders; first/last = first/last non-padding token", choices=POOLINGS)
    padding_side: str = option("auto", "side the tokenizer pads on; auto = left for a decoder read at its last "
                                       "token under --year 2026 (as the official script), else right",
                               choices=("auto", "left", "right"))
    official: bool = option(False, "reproduce the official code of --year exactly: official head, no segment ids; "
                                   "2026 reads the last position of left-padded rows for every model, 2025 position 0 "
                                   "of right-padded rows (poor for decoders, evaluation-pipeline-2025 #38)")
    gradient_accumulation: int = option(1, "micro-batches per optimizer step (the batch is split into this many; "
                                           "the official scripts use 1)", ge=1)
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
        check_name(self.revision, "revision")
        if self.model_name:
            check_name(self.model_name, "model_name")
        if not self.model:
            raise UsageError("--model is required (a model folder or a hub id)")
        if not self.tasks:
            raise UsageError("--tasks: give at least one task")
        side, pooled = official_layout(self.year)
        if self.official and (self.pooling != "auto" or self.padding_side not in ("auto", side)
                              or self.head != "official"):
            raise UsageError(f"--official (--year {self.year}) fixes --head official, the {pooled} position and "
                             f"--padding_side {side}; drop the conflicting option")
        for name in self.tasks:
            size = self.batch_size or glue.TASKS[name].batch_size if name in glue.TASKS else None
            if size is not None and size % self.gradient_accumulation:
                raise UsageError(f"--gradient_accumulation {self.gradient_accumulation} must divide the batch size "
                                 f"({size} for {name})")


def official_layout(year: str) -> tuple[str, str]:
    """(padding side, pooled position) of the official fine-tuning code of ``year``."""
    return ("left", "last") if Rules(year) is Rules.Y2026 else ("right", "first")


def model_label(model: str, name: str = "") -> str:
    """Folder name for a model in the results tree: ``--model_name``, else the path's or hub id's last part,
    except that a kit run's final model (``<run>/final``) is named by its run, as ``score`` names it.

    (The official code uses ``Path(model).stem``, which cuts names with dots; we keep the whole name.)
    """
    if name:
        return name
    path = Path(model.rstrip("/"))
    if path.name == "final" and (path / "config.json").is_file() and path.parent.name:
        return path.parent.name
    return path.name or model


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


# Options whose values change what a task's results hold: recorded with them (results.json, "run"), and a
# finished task is reused only when they are the same (the model and its weights are compared first).
RECORDED = ("year", "lr", "epochs", "batch_size", "max_train_examples", "max_length", "weight_decay", "warmup",
            "min_lr_factor", "dropout", "seed", "head", "pooling", "padding_side", "official",
            "gradient_accumulation", "precision", "data")


def run_record(cfg: FinetuneConfig, name: str, model_path: str, weights: str) -> dict[str, Any]:
    """What one task's results are made from: the model, its weights, the options that change them, the data."""
    task = glue.TASKS[name]
    data = hashlib.sha256()
    for split in ("train", "valid"):
        data.update(glue.task_file(cfg.data_dir, name, split).read_bytes())
    return {"model": model_path, "weights": weights, "year": str(cfg.year), "lr": cfg.lr,
            "epochs": cfg.epochs or task.epochs, "batch_size": cfg.batch_size or task.batch_size,
            "max_train_examples": cfg.max_train_examples, "max_length": cfg.max_length,
            "weight_decay": cfg.weight_decay, "warmup": cfg.warmup, "min_lr_factor": cfg.min_lr_factor,
            "dropout": cfg.dropout, "seed": cfg.seed, "head": cfg.head, "pooling": cfg.pooling,
            "padding_side": cfg.padding_side, "official": cfg.official,
            "gradient_accumulation": cfg.gradient_accumulation, "precision": cfg.precision,
            "data": data.hexdigest()[:16]}


def made_otherwise(stored: dict[str, Any], record: dict[str, Any]) -> str | None:
    """How the stored results were made differently from ``record`` (None: the same, or not recorded)."""
    made = stored.get("run")
    if not isinstance(made, dict):
        return None  # written before results recorded how they were made: not held against them
    if made.get("model") != record["model"]:
        return f"was made from another model ({made.get('model')}), not {record['model']}"
    if made.get("weights") != record["weights"]:
        return f"was made from other weights of {record['model']} (fingerprint {made.get('weights')}, now {record['weights']})"
    for key in RECORDED:
        if key in made and made[key] != record[key]:
            flag = "--data_dir files (sha256)" if key == "data" else f"--{key}"
            return f"was made with {flag} {made[key]}, not {record[key]}"
    return None


def run_finetune(cfg: FinetuneConfig, data: dict[str, tuple[glue.Examples, glue.Examples]] | None = None,
                 log=lambda message: None) -> dict[str, dict[str, Any]]:
    """Fine-tune on every task of ``cfg.tasks``; returns ``{task: results}`` (also for reused tasks).

    The task folders' parent (``<output_dir>/<model>/<revision>/finetune``) is held meanwhile: a second
    finetune into it is refused before it does anything."""
    data = load_data(cfg) if data is None else data
    with FolderLock(task_dir(cfg, cfg.tasks[0]).parent, "--output_dir"):
        return _run_finetune(cfg, data, log)


def _run_finetune(cfg: FinetuneConfig, data: dict[str, tuple[glue.Examples, glue.Examples]],
                  log) -> dict[str, dict[str, Any]]:
    from eval_export import classifier as clf  # imports torch: off the --help path

    path, hub_revision = resolve_model_path(cfg.model, cfg.revision)
    weights = weights_fingerprint(path, hub_revision)
    device = pick_device(cfg.device)
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.startswith("cuda"))
    backbone = None
    summary: dict[str, dict[str, Any]] = {}
    for name in cfg.tasks:
        out = task_dir(cfg, name)
        record = run_record(cfg, name, str(path), weights)
        if (out / "predictions.json").is_file() and not cfg.overwrite:
            stored = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
            other = made_otherwise(stored, record)
            if other:
                raise UsageError(f"{name}: {out}/predictions.json {other}; pass --overwrite true to fine-tune it "
                                 "again, or give another --output_dir")
            log(f"{name}: done already ({out}); --overwrite re-runs it")
            summary[name] = stored
            continue
        for stale in out.parent.glob(f".tmp-{name}-*"):  # left by a killed run of this task
            shutil.rmtree(stale, ignore_errors=True)
        if backbone is None:
            backbone = _backbone(cfg, clf)
        summary[name] = _fit_task(cfg, name, data[name], backbone, out, record, device, bf16, log)
    return summary


def _backbone(cfg: FinetuneConfig, clf) -> Any:
    """The checkpoint's config and tokenizer, padded on the side the year's rules (or the user) ask for."""
    side, _ = official_layout(cfg.year)
    backbone = clf.load_backbone(cfg.model, cfg.revision, side if cfg.official else "right", cfg.max_length,
                                 cfg.trust_remote_code)
    if not cfg.official and cfg.padding_side != "auto":
        backbone.tokenizer.padding_side = cfg.padding_side
    elif not cfg.official and Rules(cfg.year) is Rules.Y2026 and backbone.decoder and cfg.head == "official" \
            and cfg.pooling in ("auto", "last"):
        backbone.tokenizer.padding_side = "left"  # a decoder read at its last token, laid out as 2026 does
    return backbone


def _fit_task(cfg: FinetuneConfig, name: str, data: tuple[glue.Examples, glue.Examples], backbone, out: Path,
              record: dict[str, Any], device: str, bf16: bool, log) -> dict[str, Any]:
    """Fine-tune one task and write its folder (whole or not at all); returns its results."""
    from eval_export import classifier as clf  # imports torch: off the --help path

    task = glue.TASKS[name]
    train, valid = data
    _, official_pooling = official_layout(cfg.year)
    pooling = ("final" if official_pooling == "last" else "first") if cfg.official else cfg.pooling
    seed_everything(cfg.seed)  # same head initialisation and batch order whatever ran before
    model = clf.build_classifier(backbone, task.num_labels, cfg.head, pooling, cfg.dropout, cfg.official,
                                 cfg.trust_remote_code)
    tok = backbone.tokenizer
    padding_side = tok.padding_side
    started = time.perf_counter()
    segments = backbone.segments and not cfg.official  # the official code passes ids and mask only
    train_enc = clf.encode_pairs(tok, train.pairs, backbone.max_length, segments)
    valid_enc = clf.encode_pairs(tok, valid.pairs, backbone.max_length, segments)
    settings = clf.TrainSettings(
        epochs=cfg.epochs or task.epochs, batch_size=cfg.batch_size or task.batch_size,
        eval_batch_size=cfg.eval_batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay, warmup=cfg.warmup,
        min_lr_factor=cfg.min_lr_factor, seed=cfg.seed, device=device, bf16=bf16,
        best_metric=task.best_metric, num_labels=task.num_labels, progress=cfg.progress, label=name,
        grad_accum=cfg.gradient_accumulation, divide_loss=Rules(cfg.year) is Rules.Y2026)
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
        "seconds": round(time.perf_counter() - started, 2), "kit": code_version(), "run": record,
    }
    with atomic_dir(out, overwrite=True) as tmp:
        write_text(tmp / "predictions.json", predictions_json(name, result.predictions))
        write_text(tmp / "results.txt", "\n".join(f"{k}: {v}" for k, v in result.metrics.items()))
        write_text(tmp / "results.json", json.dumps(results, indent=2) + "\n")
        save(cfg, tmp, "finetune")
    log(f"{name}: best epoch {result.best_epoch} ({task.best_metric}) accuracy {result.metrics['accuracy']:.4f} "
        f"f1 {result.metrics['f1']:.4f} mcc {result.metrics['mcc']:.4f} -> {out / 'predictions.json'}")
    del model
    return results
