"""The run set-up both training engines share: the ``train`` config, the run folder, the data and
tokenizer, the model and its optimizer.

:func:`setup` resolves everything that can be checked before a model exists (folder rules, the
tokenizer, model/tokenizer/block fit, packed data); :func:`build` makes the model (new or
``--init_from``) and AdamW. Both engines (``babylm.train`` and ``babylm.hf_engine``) then take
the resulting :class:`Run` and model; ``python -m babylm train`` picks the engine
(``babylm.commands``).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from babylm import distributed, models
from babylm.challenge import TRACKS
from babylm.config import option
from babylm.config import save as save_config
from babylm.corpus import load_corpus
from babylm.data import pack_corpus
from babylm.distributed import Dist
from babylm.errors import InputError, KitError, UsageError
from babylm.files import FolderLock, read_json, recover
from babylm.runtime import pick_device
from babylm.tokenizer import load_tokenizer
from babylm.tracking import TRACKERS, check_trackers, truncate_metrics

# Fields that may change between a run and its resumption without changing the result.
# Options a resumed run may change. save_dir and run_name only say where the run folder is: a run moved
# or renamed resumes from where it now lies.
RESUME_FREE = {"resume", "overwrite", "log_every", "progress", "tensorboard", "report_to", "device", "compile",
               "save_dir", "run_name"}
# Positions a new model gets by default: the longest official evaluation item (entity tracking,
# about 315 tokens under an 8k-16k BPE) fits with room to spare, whatever the training block size.
OFFICIAL_POSITIONS = 512


@dataclasses.dataclass
class TrainConfig:
    # data
    corpus: str = option("embedded", "corpus: a folder, 'embedded' (the synthetic corpus shipped with the kit) or hf:<id>",
                         group="data")
    files: list[str] = option([], "files of the corpus to train on: names, globs or groups (train, easy, hard ...); empty = train files")
    curriculum: list[str] = option([], "ordered stages, each a file selection (join several with '+'), e.g. easy,hard; overrides --files")
    val_files: list[str] = option([], "files for validation (e.g. dev); empty = hold out --val_fraction of the training blocks")
    val_fraction: float = option(0.02, "share of training blocks held out for validation when --val_files is empty (0 = none)",
                                 ge=0, lt=1)
    tokenizer: str | None = option(None, "tokenizer folder (python -m babylm tokenizer); default: --init_from's tokenizer")
    block_size: int = option(128, "tokens per training sequence", ge=1)
    # model
    arch: str = option("gpt2", "architecture (gpt-bert: the causal + masked hybrid, docs/gpt_bert.md)",
                       choices=("gpt2", "llama", "bert", "roberta", "deberta-v2", "gpt-bert"), group="model")
    size: str = option("tiny", "size preset (layers, hidden, heads, intermediate); gpt-bert has tiny, small and base, "
                               "the latter two its published strict-small and strict shapes",
                       choices=("tiny", "small", "medium", "base"))
    layers: int | None = option(None, "number of layers (overrides the preset)", ge=1)
    hidden: int | None = option(None, "hidden size (overrides the preset)", ge=1)
    heads: int | None = option(None, "attention heads (overrides the preset)", ge=1)
    intermediate: int | None = option(None, "feed-forward size (default: the preset's, or 4 x hidden)", ge=1)
    positions: int | None = option(None, f"position slots of the model (default: the larger of --block_size and "
                                         f"{OFFICIAL_POSITIONS}, which every official evaluation item fits)", ge=1)
    dropout: float = option(0.1, "dropout probability inside the model", ge=0, lt=1)
    custom_head: bool = option(False, "use the architecture's body with the kit's own LM head (loading needs trust_remote_code)")
    init_from: str | None = option(None, "continue training this saved model folder instead of building a new one")
    init_optimizer: bool = option(False, "with --init_from: also restore its optimizer state (train_state.pt)")
    # objective
    objective: str = option("auto", "clm (causal), mlm (masked), hybrid (gpt-bert: causal and masked next-token "
                                    "prediction) or auto (the architecture's own)", choices=("auto", "clm", "mlm", "hybrid"),
                         group="objective")
    mlm_probability: float = option(0.15, "mlm: share of tokens selected for prediction", gt=0, lt=1)
    mask_replace_prob: float = option(0.8, "mlm: share of selected tokens replaced by the mask token", ge=0, le=1)
    random_replace_prob: float = option(0.1, "mlm: share of selected tokens replaced by a random token (rest unchanged)",
                                        ge=0, le=1)
    # babylm.objective.CAUSAL_SHARE, written out: this module must not import torch (--help stays fast)
    causal_share: float = option(1 / 16, "hybrid: share of optimizer steps trained causally, the rest by masked "
                                         "next-token prediction (mask rate 30% falling to 15%); default 0.0625 = 1/16, "
                                         "the published 1 causal : 15 masked (ltgoslo/gpt-bert, "
                                         "pretraining/train_multi_gpu.py)", ge=0, le=1)
    # length
    words: int | None = option(None, "stop after this many words seen (e.g. 100_000_000 = 10 epochs of 10M); overrides --epochs",
                               ge=1, group="length and milestones")
    epochs: float = option(1.0, "passes over each stage's data when --words is not given", gt=0)
    track: str = option("strict-small", "milestone set: strict-small (1M..100M) or strict (also 200M..1000M)", choices=TRACKS)
    milestone_unit_words: int = option(1_000_000, "words one 'M' of a milestone name stands for; only tests lower it (names stay official)",
                                       ge=1)
    milestones: bool = option(True, "write chck_<N>M checkpoints at the official word milestones")
    # optimisation
    batch_size: int = option(32, "sequences per micro-batch per process", ge=1, group="optimisation")
    grad_accum: int = option(1, "micro-batches per optimizer step", ge=1)
    lr: float = option(1e-3, "peak learning rate", gt=0)
    min_lr_ratio: float = option(0.1, "final learning rate as a share of --lr", ge=0, le=1)
    warmup_steps: int = option(100, "linear warm-up steps", ge=0)
    schedule: str = option("cosine", "decay after warm-up", choices=("cosine", "linear", "constant"))
    weight_decay: float = option(0.1, "AdamW weight decay (not applied to biases and norms)", ge=0)
    beta1: float = option(0.9, "AdamW beta1", ge=0, lt=1)
    beta2: float = option(0.98, "AdamW beta2", ge=0, lt=1)
    grad_clip: float = option(1.0, "clip the gradient norm to this value (0 = off)", ge=0)
    precision: str = option("auto", "auto (bf16 on capable GPUs, else fp32), fp32, bf16 or fp16", choices=("auto", "fp32", "bf16", "fp16"))
    compile: bool = option(False, "torch.compile the model (slow start, faster steps on GPU)")
    seed: int = option(42, "seed for initial weights, data order and masks", ge=0)
    # evaluation / checkpoints / logs
    eval_every: int = option(0, "evaluate every N steps (0 = only at epoch ends and at the end)", ge=0,
                             group="evaluation and checkpoints")
    eval_batches: int = option(0, "cap on validation batches per evaluation (0 = all)", ge=0)
    patience: int = option(0, "stop after this many evaluations without a better validation loss (0 = never)", ge=0)
    save_every: int = option(500, "write a resume checkpoint every N steps (0 = only at the end)", ge=0)
    log_every: int = option(10, "steps between console/metrics lines", ge=1, group="logging")
    save_dir: str = option("runs", "folder holding the runs", group="run folder")
    run_name: str | None = option(None, "run folder name under --save_dir (default: <arch>_<size>)")
    resume: bool = option(False, "continue the run in <save_dir>/<run_name> from its latest checkpoint")
    overwrite: bool = option(False, "replace an existing run folder")
    engine: str = option("torch", "torch (the kit's loop) or hf (transformers Trainer)", choices=("torch", "hf"),
                         group="engine and device")
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    tensorboard: bool = option(True, "write TensorBoard scalars under <run>/tb", group="logging")
    progress: bool = option(True, "show a progress bar (false also silences the bars of transformers and datasets)")
    report_to: list[str] = option([], "experiment trackers to send the metrics and config to, beside metrics.jsonl and "
                                      "TensorBoard, in either engine: wandb (Weights & Biases; pip install wandb; project, "
                                      "entity and WANDB_MODE=offline from wandb's environment variables)",
                                  choices=TRACKERS)

    def validate(self) -> None:
        if self.init_from is None:
            kind = models.objective_of(self.arch)
            if self.objective == "mlm" and kind == "clm":
                raise UsageError(f"--objective mlm needs a masked architecture (bert, roberta, deberta-v2); {self.arch} is causal")
            if self.objective == "clm" and kind == "mlm":
                raise UsageError(f"--objective clm needs a causal architecture (gpt2, llama); {self.arch} is masked")
            if self.objective in ("clm", "mlm") and kind == "hybrid":
                raise UsageError(f"--objective {self.objective}: gpt-bert trains with the hybrid objective; "
                                 "--causal_share 1 makes every step causal, 0 every step masked")
            if self.objective == "hybrid" and kind != "hybrid":
                raise UsageError(f"--objective hybrid needs --arch gpt-bert; {self.arch} trains with {kind}")
        # Types, choices and each option's own range are declared on the fields (babylm.config).
        if self.mask_replace_prob + self.random_replace_prob > 1:
            raise UsageError("--mask_replace_prob + --random_replace_prob must not exceed 1")
        if self.resume and self.overwrite:
            raise UsageError("--resume and --overwrite exclude each other")
        if self.init_optimizer and not self.init_from:
            raise UsageError("--init_optimizer needs --init_from")
        if self.positions is not None and self.positions < self.block_size:
            raise UsageError(f"--block_size {self.block_size} is over the model's {self.positions} positions; "
                             "lower it or raise --positions")
        check_trackers(self.report_to)

    @property
    def name(self) -> str:
        return self.run_name or f"{self.arch}_{self.size}"

    @property
    def model_positions(self) -> int:
        """Position slots of a new model: --positions, else room for every official evaluation item."""
        return self.positions or max(self.block_size, OFFICIAL_POSITIONS)


@dataclasses.dataclass
class Run:
    """Everything an engine needs besides the model: config, folder, data, tokenizer, device."""

    cfg: TrainConfig
    run_dir: Path
    tokenizer: Any
    stages: list[Any]  # one datasets.Dataset of blocks per curriculum stage
    val: Any | None
    objective: str
    device: str
    dist: Dist
    manifest: dict[str, Any]
    lock: FolderLock | None = None  # held by rank 0 for the run's life (see hold_run_dir)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


def load_stage(cfg: TrainConfig, files: list[str]):
    """One file selection of ``cfg.corpus``, counted (babylm.corpus); :func:`pack` makes its blocks."""
    return load_corpus(cfg.corpus, files=files or None, track=cfg.track)


def pack(cfg: TrainConfig, tokenizer, corpus):
    """The packed blocks of a loaded selection (babylm.data)."""
    return pack_corpus(corpus, tokenizer, cfg.block_size)


def resolve_tokenizer(cfg: TrainConfig):
    path = cfg.tokenizer or cfg.init_from
    if path is None:
        raise UsageError("--tokenizer is required (a folder made by `python -m babylm tokenizer`)")
    return load_tokenizer(path)


def setup(cfg: TrainConfig) -> Run:
    """Resolve the run folder, distributed context, tokenizer and packed data for ``cfg``."""
    device = pick_device(cfg.device)
    dist = distributed.init(device)
    if dist.world > 1 and device == "cuda":
        device = f"cuda:{dist.local_rank}"
    run_dir = Path(cfg.save_dir) / cfg.name
    lock = hold_run_dir(cfg, run_dir, dist, device)
    try:
        run = prepare(cfg, run_dir, device, dist)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    run.lock = lock
    return run


def prepare(cfg: TrainConfig, run_dir: Path, device: str, dist: Dist) -> Run:
    """Everything of :func:`setup` once the run folder is held: folder rules, tokenizer, data."""
    check_run_dir(cfg, run_dir)
    tokenizer = resolve_tokenizer(cfg)
    precheck(cfg, tokenizer)  # fail on a bad model/tokenizer/block combination before packing any data
    stage_files = [s.split("+") for s in cfg.curriculum] or [cfg.files]
    corpora = [load_stage(cfg, files) for files in stage_files]
    val_corpus = load_stage(cfg, cfg.val_files) if cfg.val_files else None
    manifests = [c.manifest() for c in corpora] + ([{"validation": val_corpus.manifest()}] if val_corpus else [])
    if cfg.resume:
        check_same_data(run_dir, manifests)  # before any packing: a refusal costs nothing
    stages = [pack(cfg, tokenizer, c) for c in corpora]
    val = pack(cfg, tokenizer, val_corpus) if val_corpus else None
    if val is None and cfg.val_fraction > 0:
        stages, val = hold_out(stages, cfg.val_fraction)
    objective = cfg.objective
    manifest = {"stages": manifests, "train_blocks": [len(s) for s in stages], "val_blocks": len(val) if val is not None else 0}
    return Run(cfg, run_dir, tokenizer, stages, val, objective, device, dist, manifest)


def start_run_dir(run: Run, resumed_step: int) -> None:
    """Make the run folder ready for this run's records, once every check that could refuse the run
    has passed (each engine calls it before it opens the logs).

    A new run with ``--overwrite`` starts from an empty folder; a resumed one (at optimizer step
    ``resumed_step``) drops the ``metrics.jsonl`` records written after its checkpoint by the run
    that was stopped; a new run saves its resolved config (``train_config.json``).
    """
    cfg, dist = run.cfg, run.dist
    if dist.main and cfg.overwrite and not cfg.resume and run.run_dir.exists():
        shutil.rmtree(run.run_dir)
    distributed.barrier(dist)
    if dist.main and cfg.resume:
        truncate_metrics(run.run_dir, resumed_step)
    if dist.main and not cfg.resume:
        save_config(cfg, run.run_dir, "train")


def hold_run_dir(cfg: TrainConfig, run_dir: Path, dist: Dist, device: str) -> FolderLock | None:
    """Take the run folder for this run before anything reads or changes it; return the lock (rank 0).

    One process per run folder: a second ``train`` on it (or an ``--overwrite`` that would empty it
    under the first) is refused with one line naming the holder's pid. Under torchrun rank 0 holds
    the lock for every rank, and every rank learns whether it got it. Once held, a resumed run's
    folder is repaired from what a kill left (:func:`babylm.files.recover`).
    """
    lock, refused = None, None
    if dist.main:
        try:
            lock = FolderLock(run_dir, "--save_dir").acquire()
        except KitError as exc:
            refused = exc
    if dist.world > 1:
        import torch

        flag = torch.tensor(int(refused is not None), device=device)
        if distributed.all_max(flag, dist) and refused is None:
            refused = InputError(f"{run_dir}: rank 0 could not take the run folder (its error says why)")
    if refused is not None:
        raise refused
    if dist.main and cfg.resume:
        from babylm import checkpoint  # imports torch: kept off the --help path (also below)

        for note in recover(run_dir) + recover(run_dir / checkpoint.HF_DIR):
            print(f"{run_dir}: {note}", flush=True)
    distributed.barrier(dist)
    return lock


def check_same_data(run_dir: Path, stages: list[dict[str, Any]]) -> None:
    """Refuse to resume on other data than the run started with: same files, sizes, word counts and
    content (sha256), stage by stage (``stages``: the corpus manifests); the modification time alone
    does not count."""
    from babylm import checkpoint  # torch

    saved = read_json(checkpoint.latest(run_dir) / "manifest.json")
    before, now = _data_files(saved), _data_files({"stages": stages})
    for key in sorted(before.keys() | now.keys()):
        was, is_ = before.get(key), now.get(key)
        if was is None or is_ is None:
            where = (is_ or was)["path"] or key[1]
            change = "was not part of its data" if was is None else "is no longer selected"
            raise UsageError(f"--resume: {where} {change} when the run started; resume with the same data or "
                             "choose another --run_name")
        for field in ("bytes", "words", "sha256", "hf_fingerprint"):
            if was.get(field) and is_.get(field) and was[field] != is_[field]:
                raise UsageError(f"--resume: {is_['path'] or key[1]} changed since the run started (its {field} "
                                 f"differs); resume with the same data or choose another --run_name")


def _data_files(manifest: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    """(stage, file name) -> what identifies the file's content, from a run's data manifest."""
    out = {}
    for stage, part in enumerate(manifest.get("stages", [])):
        corpus = part.get("validation", part)
        for f in corpus.get("files", []):
            out[(stage, f["name"])] = {"path": f.get("path"), "bytes": f.get("bytes"), "words": f.get("words"),
                                      "sha256": f.get("sha256"),
                                      "hf_fingerprint": f.get("fingerprint") if f.get("path") is None else None}
    return out


def precheck(cfg: TrainConfig, tokenizer) -> None:
    """Cheap checks of the model against the tokenizer and block size, from configs only."""
    if cfg.init_from:
        path = Path(cfg.init_from) / "config.json"
        if not path.is_file():
            raise InputError(f"--init_from: {cfg.init_from} is not a model folder (no config.json)")
        import transformers as tf

        models.register_kit_models()  # a gpt-bert folder is read with the kit's own classes
        config = tf.AutoConfig.from_pretrained(cfg.init_from, trust_remote_code=False) \
            if read_json(path).get("model_type") != "babylm-head" else None
        if config is not None:
            if config.vocab_size < len(tokenizer):
                raise InputError(f"--init_from: {cfg.init_from} has a vocabulary of {config.vocab_size} but the tokenizer "
                                 f"has {len(tokenizer)} tokens; use the model's own tokenizer")
            limit = models.usable_positions(config)
            if cfg.block_size > limit:
                raise UsageError(f"--block_size {cfg.block_size} is over the model's {limit} positions; lower it")
            warn_short_positions(limit, "the --init_from model has")
        return
    models.resolve_shape(cfg.size, cfg.layers, cfg.hidden, cfg.heads, cfg.intermediate, cfg.model_positions,
                         cfg.dropout, arch=cfg.arch)  # checks the sizes fit together
    warn_short_positions(cfg.model_positions, "--positions gives the model")


def warn_short_positions(positions: int, what: str) -> None:
    """Say so at the start when a model will be too short for some official evaluation items."""
    import os
    import sys

    if positions < OFFICIAL_POSITIONS and os.environ.get("RANK", "0") == "0":
        print(f"warning: {what} {positions} positions; official evaluation items reach about 315 tokens "
              f"(entity tracking), which such a model cannot score. Use {OFFICIAL_POSITIONS} positions "
              "(the default) for a submission.", file=sys.stderr)


def hold_out(stages: list[Any], fraction: float):
    """Move the last ``fraction`` of each stage's blocks into one validation set (deterministic)."""
    from datasets import concatenate_datasets

    kept, held = [], []
    for blocks in stages:
        n_val = max(1, int(len(blocks) * fraction))
        if len(blocks) - n_val < 1:
            raise InputError(f"only {len(blocks)} blocks: too few to hold out --val_fraction {fraction}; add data or give --val_files")
        kept.append(blocks.select(range(len(blocks) - n_val)))
        held.append(blocks.select(range(len(blocks) - n_val, len(blocks))))
    return kept, concatenate_datasets(held)


def check_run_dir(cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse to overwrite a run by accident and to resume a run made with another config."""
    from babylm import checkpoint  # torch

    if cfg.resume:
        folder = checkpoint.latest(run_dir, verified=True) if run_dir.is_dir() else None
        if folder is None:
            raise UsageError(f"--resume: {run_dir} has no checkpoint to resume (no 'latest' pointer)")
        saved = read_json(folder / "run_config.json").get("config", {})
        now = dataclasses.asdict(cfg)
        diff = [k for k in now if k not in RESUME_FREE and k in saved and saved[k] != now[k]]
        if diff:
            k = diff[0]
            raise UsageError(f"--resume: {run_dir} was trained with --{k} {saved[k]!r}, not {now[k]!r}; "
                             "resume with the same config or choose another --run_name")
    elif run_dir.exists() and any(run_dir.iterdir()) and not cfg.overwrite:
        raise UsageError(f"{run_dir} already exists; pass --resume to continue it, --overwrite to replace it, or another --run_name")


# --------------------------------------------------------------------------- build

def build(run: Run, model=None):
    """Make the model (new, --init_from, or the one given) and its AdamW optimizer; checks model/tokenizer/block fit."""
    import torch

    cfg = run.cfg
    if model is not None:
        arch = model.config.model_type
    elif cfg.init_from:
        model = models.load_model(cfg.init_from)
        arch = model.config.model_type
    else:
        shape = models.resolve_shape(cfg.size, cfg.layers, cfg.hidden, cfg.heads, cfg.intermediate,
                                     cfg.model_positions, cfg.dropout, arch=cfg.arch)
        model = models.build_model(cfg.arch, shape, run.tokenizer, custom_head=cfg.custom_head, seed=cfg.seed)
        arch = cfg.arch
    own = models.objective_of_model(model)  # the objective the model trains with
    if run.objective == "auto":
        run.objective = own
    elif run.objective != own:
        raise UsageError(f"--objective {run.objective} does not fit the {arch} model in --init_from (it trains with {own})")
    models.check_fits(model, run.tokenizer, cfg.block_size)
    model.to(run.device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel exists for CUDA and CPU (about 3x faster than the per-tensor loop on CPU).
    fused = run.device.startswith("cuda") or run.device == "cpu"
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8, fused=fused or None)
    if cfg.init_from and cfg.init_optimizer:
        from babylm import checkpoint  # torch

        if not (Path(cfg.init_from) / checkpoint.STATE_FILE).is_file():
            raise InputError(f"--init_optimizer: {cfg.init_from} has no {checkpoint.STATE_FILE}")
        optimizer.load_state_dict(checkpoint.load_state(cfg.init_from)["optimizer"])
    return model, optimizer
