"""The training loop: ``python -m babylm train`` (and ``test``).

Structure (nanochat / litgpt style): :func:`setup` resolves the run folder, tokenizer, data and
distributed context; :func:`build` makes the model and optimizer; :func:`fit` is one loop whose
state lives in a single :class:`LoopState`. Each iteration first runs the "once in a while"
blocks (evaluate, checkpoint, log, stop), then one fenced training step. A ``last_step`` flag
lets the final evaluation and save happen inside the loop.

The run length is counted in words seen, the challenge's unit: every block carries the number
of words whose text unit starts in it (``n_words``), and a step adds the words of every block
it consumed on every rank. Milestone checkpoints (``chck_1M`` ...) are written when that count
first reaches each official threshold.

Determinism: the data order of each (stage, epoch) is a permutation drawn from a generator
seeded by (seed, stage, epoch), and the MLM masks of each step come from a generator seeded by
(seed, step); neither depends on global RNG state, so a resumed run sees exactly the batches
the uninterrupted run would have seen. Dropout uses the global torch RNG, which is saved and
restored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from babylm.config import option
from babylm.errors import InputError, UsageError

# Fields that may change between a run and its resumption without changing the result.
_RESUME_FREE = {"resume", "overwrite", "log_every", "progress", "tensorboard", "device", "compile"}


@dataclasses.dataclass
class TrainConfig:
    # data
    corpus: str = option("embedded", "corpus: a folder, 'embedded' (the synthetic corpus shipped with the kit) or hf:<id>")
    files: list[str] = option([], "files of the corpus to train on: names, globs or groups (train, easy, hard ...); empty = train files")
    curriculum: list[str] = option([], "ordered stages, each a file selection (join several with '+'), e.g. easy,hard; overrides --files")
    val_files: list[str] = option([], "files for validation (e.g. dev); empty = hold out --val_fraction of the training blocks")
    val_fraction: float = option(0.02, "share of training blocks held out for validation when --val_files is empty (0 = none)")
    tokenizer: str | None = option(None, "tokenizer folder (python -m babylm tokenizer); default: --init_from's tokenizer")
    block_size: int = option(128, "tokens per training sequence")
    # model
    arch: str = option("gpt2", "architecture", choices=("gpt2", "llama", "bert", "roberta", "deberta-v2"))
    size: str = option("tiny", "size preset (layers, hidden, heads, intermediate)", choices=("tiny", "small", "medium", "base"))
    layers: int | None = option(None, "number of layers (overrides the preset)")
    hidden: int | None = option(None, "hidden size (overrides the preset)")
    heads: int | None = option(None, "attention heads (overrides the preset)")
    intermediate: int | None = option(None, "feed-forward size (default: the preset's, or 4 x hidden)")
    positions: int | None = option(None, "position slots of the model (default: --block_size)")
    dropout: float = option(0.1, "dropout probability inside the model")
    custom_head: bool = option(False, "use the architecture's body with the kit's own LM head (loading needs trust_remote_code)")
    init_from: str | None = option(None, "continue training this saved model folder instead of building a new one")
    init_optimizer: bool = option(False, "with --init_from: also restore its optimizer state (train_state.pt)")
    # objective
    objective: str = option("auto", "clm (causal), mlm (masked) or auto (the architecture's own)", choices=("auto", "clm", "mlm"))
    mlm_probability: float = option(0.15, "mlm: share of tokens selected for prediction")
    mask_replace_prob: float = option(0.8, "mlm: share of selected tokens replaced by the mask token")
    random_replace_prob: float = option(0.1, "mlm: share of selected tokens replaced by a random token (rest unchanged)")
    # length
    words: int | None = option(None, "stop after this many words seen (e.g. 100_000_000 = 10 epochs of 10M); overrides --epochs")
    epochs: float = option(1.0, "passes over each stage's data when --words is not given")
    track: str = option("strict-small", "milestone set: strict-small (1M..100M) or strict (also 200M..1000M)", choices=("strict-small", "strict"))
    milestone_unit_words: int = option(1_000_000, "words one 'M' of a milestone name stands for; only tests lower it (names stay official)")
    milestones: bool = option(True, "write chck_<N>M checkpoints at the official word milestones")
    # optimisation
    batch_size: int = option(32, "sequences per micro-batch per process")
    grad_accum: int = option(1, "micro-batches per optimizer step")
    lr: float = option(1e-3, "peak learning rate")
    min_lr_ratio: float = option(0.1, "final learning rate as a share of --lr")
    warmup_steps: int = option(100, "linear warm-up steps")
    schedule: str = option("cosine", "decay after warm-up", choices=("cosine", "linear", "constant"))
    weight_decay: float = option(0.1, "AdamW weight decay (not applied to biases and norms)")
    beta1: float = option(0.9, "AdamW beta1")
    beta2: float = option(0.98, "AdamW beta2")
    grad_clip: float = option(1.0, "clip the gradient norm to this value (0 = off)")
    precision: str = option("auto", "auto (bf16 on capable GPUs, else fp32), fp32, bf16 or fp16", choices=("auto", "fp32", "bf16", "fp16"))
    compile: bool = option(False, "torch.compile the model (slow start, faster steps on GPU)")
    seed: int = option(42, "seed for initial weights, data order and masks")
    # evaluation / checkpoints / logs
    eval_every: int = option(0, "evaluate every N steps (0 = only at epoch ends and at the end)")
    eval_batches: int = option(0, "cap on validation batches per evaluation (0 = all)")
    patience: int = option(0, "stop after this many evaluations without a better validation loss (0 = never)")
    save_every: int = option(500, "write a resume checkpoint every N steps (0 = only at the end)")
    log_every: int = option(10, "steps between console/metrics lines")
    save_dir: str = option("runs", "folder holding the runs")
    run_name: str | None = option(None, "run folder name under --save_dir (default: <arch>_<size>)")
    resume: bool = option(False, "continue the run in <save_dir>/<run_name> from its latest checkpoint")
    overwrite: bool = option(False, "replace an existing run folder")
    engine: str = option("torch", "torch (the kit's loop) or hf (transformers Trainer)", choices=("torch", "hf"))
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    tensorboard: bool = option(True, "write TensorBoard scalars under <run>/tb")
    progress: bool = option(True, "show a progress bar")

    def validate(self) -> None:
        from babylm.models import objective_of

        if self.init_from is None:
            kind = objective_of(self.arch)
            if self.objective == "mlm" and kind == "clm":
                raise UsageError(f"--objective mlm needs a masked architecture (bert, roberta, deberta-v2); {self.arch} is causal")
            if self.objective == "clm" and kind == "mlm":
                raise UsageError(f"--objective clm needs a causal architecture (gpt2, llama); {self.arch} is masked")
        for name in ("block_size", "batch_size", "grad_accum", "milestone_unit_words"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.mlm_probability < 1:
            raise UsageError(f"--mlm_probability must be between 0 and 1, got {self.mlm_probability}")
        if self.mask_replace_prob + self.random_replace_prob > 1:
            raise UsageError("--mask_replace_prob + --random_replace_prob must not exceed 1")
        if not 0 <= self.val_fraction < 1:
            raise UsageError(f"--val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.words is not None and self.words < 1:
            raise UsageError(f"--words must be positive, got {self.words}")
        if self.words is None and self.epochs <= 0:
            raise UsageError(f"--epochs must be positive, got {self.epochs}")
        if self.resume and self.overwrite:
            raise UsageError("--resume and --overwrite exclude each other")
        if self.init_optimizer and not self.init_from:
            raise UsageError("--init_optimizer needs --init_from")

    @property
    def name(self) -> str:
        return self.run_name or f"{self.arch}_{self.size}"


# --------------------------------------------------------------------------- schedule

def lr_at(step: int, peak: float, warmup: int, total: int, schedule: str = "cosine", min_ratio: float = 0.1) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up, then decay to min_ratio * peak.

    A pure function of the step, so a resumed run needs no scheduler state.
    """
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant":
        return peak
    progress = min(1.0, max(0.0, (step - warmup) / max(1, total - warmup)))
    if schedule == "linear":
        return peak * (1.0 - (1.0 - min_ratio) * progress)
    return peak * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


# --------------------------------------------------------------------------- data order

@dataclasses.dataclass
class Position:
    """Where the data order stands: stage, epoch within the stage, global batches taken in the epoch."""

    stage: int = 0
    epoch: int = 0
    cursor: int = 0


class BatchPlan:
    """Deterministic global batches over ordered stages (curriculum), epoch after epoch.

    Each global batch holds ``batch`` block indices of one stage; an epoch's incomplete last
    batch is dropped. With ``repeat`` the last stage is repeated until the caller stops (word
    budgets); otherwise each stage runs ``epochs`` times (a fraction ends that epoch early).
    """

    def __init__(self, stage_sizes: list[int], batch: int, seed: int, epochs: float, repeat: bool):
        self.sizes, self.batch, self.seed, self.epochs, self.repeat = stage_sizes, batch, seed, epochs, repeat
        for i, n in enumerate(stage_sizes):
            if n < batch:
                raise InputError(f"stage {i + 1} has {n} blocks, fewer than one global batch of {batch}; "
                                 "lower --batch_size/--grad_accum/--block_size or add data")
        self._perm_key: tuple[int, int] | None = None
        self._perm = None

    def batches_per_epoch(self, stage: int) -> int:
        return self.sizes[stage] // self.batch

    def _endless(self, stage: int) -> bool:
        return self.repeat and stage == len(self.sizes) - 1

    def _epoch_batches(self, stage: int, epoch: int) -> int:
        full = self.batches_per_epoch(stage)
        whole = int(self.epochs)
        if epoch < whole or self._endless(stage):
            return full
        return int(round(full * (self.epochs - whole)))

    def _epochs_of(self, stage: int) -> int:
        return 1 << 30 if self._endless(stage) else math.ceil(self.epochs)

    def total_batches(self) -> int:
        """Global batches in the whole plan (the endless last stage of a word budget counted once)."""
        return sum(self._epoch_batches(s, e) for s in range(len(self.sizes))
                   for e in range(1 if self._endless(s) else self._epochs_of(s)))

    def _order(self, stage: int, epoch: int):
        import torch

        if self._perm_key != (stage, epoch):
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + stage * 10_007 + epoch)
            self._perm = torch.randperm(self.sizes[stage], generator=gen)
            self._perm_key = (stage, epoch)
        return self._perm

    def next(self, pos: Position):
        """The global batch at ``pos`` and the position after it: (stage, indices, new_pos, epoch_ended).

        Returns None when the plan is exhausted.
        """
        stage, epoch, cursor = pos.stage, pos.epoch, pos.cursor
        while True:
            if stage >= len(self.sizes):
                return None
            if epoch >= self._epochs_of(stage):
                stage, epoch, cursor = stage + 1, 0, 0
                continue
            if cursor >= self._epoch_batches(stage, epoch):
                epoch, cursor = epoch + 1, 0
                continue
            break
        idx = self._order(stage, epoch)[cursor * self.batch:(cursor + 1) * self.batch]
        new = Position(stage, epoch, cursor + 1)
        ended = new.cursor >= self._epoch_batches(stage, epoch)
        return stage, idx, new, ended


# --------------------------------------------------------------------------- masking

def mask_tokens(ids, gen, vocab_size: int, mask_id: int, special_ids: list[int], prob: float = 0.15,
                mask_prob: float = 0.8, random_prob: float = 0.1):
    """BERT-style masking of a (B, T) id tensor with generator ``gen``.

    ``prob`` of the non-special tokens are selected; of those, ``mask_prob`` become the mask
    token, ``random_prob`` a random token and the rest stay unchanged (Devlin et al. 2019, 80/10/10).

    Returns:
        (inputs, labels): labels hold the original id at selected positions and -100 elsewhere.
    """
    import torch

    special = torch.isin(ids, torch.tensor(special_ids, dtype=ids.dtype))  # (B, T)
    draw = torch.rand(ids.shape, generator=gen)  # (B, T) one uniform draw decides select/replace
    kind = torch.rand(ids.shape, generator=gen)  # (B, T) which replacement
    rand_tok = torch.randint(vocab_size, ids.shape, generator=gen, dtype=ids.dtype)  # (B, T)
    selected = (draw < prob) & ~special
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    inputs = ids.clone()
    inputs[selected & (kind < mask_prob)] = mask_id
    use_rand = selected & (kind >= mask_prob) & (kind < mask_prob + random_prob)
    inputs[use_rand] = rand_tok[use_rand]
    return inputs, labels


# --------------------------------------------------------------------------- setup

@dataclasses.dataclass
class Dist:
    """Distributed context (single process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclasses.dataclass
class Run:
    """Everything :func:`fit` needs besides the model: config, folder, data, tokenizer, device."""

    cfg: TrainConfig
    run_dir: Path
    tokenizer: Any
    stages: list[Any]  # one datasets.Dataset of blocks per curriculum stage
    val: Any | None
    objective: str
    device: str
    dist: Dist
    manifest: dict[str, Any]


def _init_dist(device: str) -> Dist:
    import torch
    import torch.distributed as torchdist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    if not torchdist.is_initialized():
        torchdist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
    return Dist(torchdist.get_rank(), torchdist.get_world_size(), local)


def _load_blocks(cfg: TrainConfig, tokenizer, files: list[str]):
    """Load and pack one file selection of ``cfg.corpus`` (babylm.corpus + babylm.data)."""
    from babylm.corpus import load_corpus
    from babylm.data import pack_corpus

    corpus = load_corpus(cfg.corpus, files=files or None, track=cfg.track)
    return corpus, pack_corpus(corpus, tokenizer, cfg.block_size)


def _resolve_tokenizer(cfg: TrainConfig):
    path = cfg.tokenizer or cfg.init_from
    if path is None:
        raise UsageError("--tokenizer is required (a folder made by `python -m babylm tokenizer`)")
    from babylm.tokenizer import load_tokenizer

    return load_tokenizer(path)


def setup(cfg: TrainConfig) -> Run:
    """Resolve the run folder, distributed context, tokenizer and packed data for ``cfg``."""
    from babylm.runtime import pick_device

    device = pick_device(cfg.device)
    dist = _init_dist(device)
    if dist.world > 1 and device == "cuda":
        device = f"cuda:{dist.local_rank}"
    run_dir = Path(cfg.save_dir) / cfg.name
    check_run_dir(cfg, run_dir)
    tokenizer = _resolve_tokenizer(cfg)
    precheck(cfg, tokenizer)  # fail on a bad model/tokenizer/block combination before packing any data
    stage_files = [s.split("+") for s in cfg.curriculum] or [cfg.files]
    stages, manifests = [], []
    for files in stage_files:
        corpus, blocks = _load_blocks(cfg, tokenizer, files)
        stages.append(blocks)
        manifests.append(corpus.manifest())
    val = None
    if cfg.val_files:
        corpus, val = _load_blocks(cfg, tokenizer, cfg.val_files)
        manifests.append({"validation": corpus.manifest()})
    elif cfg.val_fraction > 0:
        stages, val = hold_out(stages, cfg.val_fraction)
    objective = cfg.objective
    manifest = {"stages": manifests, "train_blocks": [len(s) for s in stages], "val_blocks": len(val) if val is not None else 0}
    return Run(cfg, run_dir, tokenizer, stages, val, objective, device, dist, manifest)


def precheck(cfg: TrainConfig, tokenizer) -> None:
    """Cheap checks of the model against the tokenizer and block size, from configs only."""
    from babylm import models

    if cfg.init_from:
        path = Path(cfg.init_from) / "config.json"
        if not path.is_file():
            raise InputError(f"--init_from: {cfg.init_from} is not a model folder (no config.json)")
        import transformers as tf

        config = tf.AutoConfig.from_pretrained(cfg.init_from, trust_remote_code=False) \
            if json.loads(path.read_text(encoding="utf-8")).get("model_type") != "babylm-head" else None
        if config is not None:
            if config.vocab_size < len(tokenizer):
                raise InputError(f"--init_from: {cfg.init_from} has a vocabulary of {config.vocab_size} but the tokenizer "
                                 f"has {len(tokenizer)} tokens; use the model's own tokenizer")
            limit = models.usable_positions(config)
            if cfg.block_size > limit:
                raise UsageError(f"--block_size {cfg.block_size} is over the model's {limit} positions; lower it")
        return
    shape = models.resolve_shape(cfg.size, cfg.layers, cfg.hidden, cfg.heads, cfg.intermediate,
                                 cfg.positions or cfg.block_size, cfg.dropout)
    if cfg.block_size > shape.positions:
        raise UsageError(f"--block_size {cfg.block_size} is over the model's {shape.positions} positions; "
                         "lower it or raise --positions")


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
    from babylm import checkpoint

    if cfg.resume:
        folder = checkpoint.latest(run_dir) if run_dir.is_dir() else None
        if folder is None:
            raise UsageError(f"--resume: {run_dir} has no checkpoint to resume (no 'latest' pointer)")
        saved = json.loads((folder / "run_config.json").read_text(encoding="utf-8")).get("config", {})
        now = dataclasses.asdict(cfg)
        diff = [k for k in now if k not in _RESUME_FREE and k in saved and saved[k] != now[k]]
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
    from babylm import models

    cfg = run.cfg
    if model is not None:
        arch = model.config.model_type
    elif cfg.init_from:
        model = load_model(cfg.init_from)
        arch = model.config.model_type
    else:
        shape = models.resolve_shape(cfg.size, cfg.layers, cfg.hidden, cfg.heads, cfg.intermediate,
                                     cfg.positions or cfg.block_size, cfg.dropout)
        model = models.build_model(cfg.arch, shape, run.tokenizer, custom_head=cfg.custom_head, seed=cfg.seed)
        arch = cfg.arch
    kind = _kind_of(model)
    if run.objective == "auto":
        run.objective = "clm" if kind == "causal" else "mlm"
    elif (run.objective == "mlm") != (kind == "masked"):
        raise UsageError(f"--objective {run.objective} does not fit the {arch} model in --init_from ({kind})")
    models.check_fits(model, run.tokenizer, cfg.block_size)
    model.to(run.device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel exists for CUDA and CPU (about 3x faster than the per-tensor loop on CPU).
    fused = run.device.startswith("cuda") or run.device == "cpu"
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8, fused=fused or None)
    if cfg.init_from and cfg.init_optimizer:
        from babylm import checkpoint

        if not (Path(cfg.init_from) / checkpoint.STATE_FILE).is_file():
            raise InputError(f"--init_optimizer: {cfg.init_from} has no {checkpoint.STATE_FILE}")
        optimizer.load_state_dict(checkpoint.load_state(cfg.init_from)["optimizer"])
    return model, optimizer


def _kind_of(model) -> str:
    name = type(model).__name__
    return "causal" if "CausalLM" in name or "LMHeadModel" in name else "masked"


def load_model(path: str | Path, trust_remote_code: bool = False):
    """Load a saved model folder as CausalLM or MaskedLM, whichever its config declares."""
    import transformers as tf

    path = Path(path)
    if not (path / "config.json").is_file():
        raise InputError(f"{path} is not a model folder (no config.json)")
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") == "babylm-head":  # our own wrapper: use the kit's classes, no remote code
        from babylm import custom_model

        custom_model.register()
        cls = custom_model.BabyLMForCausalLM if config.get("causal", True) else custom_model.BabyLMForMaskedLM
        return cls.from_pretrained(path)
    archs = " ".join(config.get("architectures") or [])
    auto = tf.AutoModelForMaskedLM if "MaskedLM" in archs else tf.AutoModelForCausalLM
    return auto.from_pretrained(path, trust_remote_code=trust_remote_code)


# --------------------------------------------------------------------------- fit

@dataclasses.dataclass
class LoopState:
    """All loop state that a resume restores."""

    step: int = 0  # optimizer steps taken
    words_seen: int = 0
    tokens_seen: int = 0
    position: Position = dataclasses.field(default_factory=Position)
    best_val: float = float("inf")
    bad_evals: int = 0
    milestones_done: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopState:
        d = dict(d)
        d["position"] = Position(**d["position"])
        return cls(**d)


def _autocast(device: str, precision: str):
    import torch

    dev = device.split(":")[0]
    if precision == "auto":
        precision = "bf16" if dev == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fp32":
        return contextlib.nullcontext, precision
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return (lambda: torch.autocast(dev, dtype=dtype)), precision


def _loss_sum(model, inputs, labels, objective: str):
    """Summed cross-entropy over target positions (float32 log-softmax), full logits."""
    from babylm.objective import loss_module

    return loss_module(model, objective, split_head=False)(inputs, labels)


class Targets:
    """Turns a (G, T) id batch into model inputs, labels and the number of predicted positions."""

    def __init__(self, run: Run):
        tok = run.tokenizer
        self.cfg, self.objective = run.cfg, run.objective
        self.vocab = len(tok)
        self.mask_id = tok.mask_token_id
        # Special tokens are never selected for prediction (unk is an ordinary token here).
        self.specials = sorted(set(tok.all_special_ids) - ({tok.unk_token_id} if tok.unk_token_id is not None else set()))
        if run.objective == "mlm" and self.mask_id is None:
            raise InputError("the tokenizer has no mask token; the mlm objective needs one")

    def make(self, ids, mask_seed: int):
        """(inputs, labels, n_targets) for a global (G, T) id batch."""
        import torch

        if self.objective == "clm":
            return ids, ids, ids.size(0) * (ids.size(1) - 1)
        gen = torch.Generator().manual_seed(mask_seed)
        inputs, labels = mask_tokens(ids, gen, self.vocab, self.mask_id, self.specials, self.cfg.mlm_probability,
                                     self.cfg.mask_replace_prob, self.cfg.random_replace_prob)
        return inputs, labels, int((labels != -100).sum())


def _column(ds, name: str):
    """One column of a datasets.Dataset as a numpy array ((N, T) for input_ids, (N,) for n_words)."""
    import numpy as np

    col = ds.with_format("numpy")[name] if hasattr(ds, "with_format") else ds[name]
    if isinstance(col, np.ndarray) and col.dtype != object:
        return col
    return np.stack([np.asarray(row) for row in col]) if len(col) else np.zeros((0,), dtype=np.int64)


def evaluate(model, run: Run, autocast) -> dict[str, float]:
    """Mean validation loss and perplexity over (up to --eval_batches) validation batches."""
    import torch

    cfg = run.cfg
    ids_all = torch.as_tensor(_column(run.val, "input_ids"), dtype=torch.long)  # (N, T)
    helper = Targets(run)
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    n_batches = math.ceil(len(ids_all) / cfg.batch_size)
    if cfg.eval_batches:
        n_batches = min(n_batches, cfg.eval_batches)
    with torch.no_grad(), autocast():
        for b in range(n_batches):
            ids = ids_all[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            # Fixed per-batch mask seeds: every evaluation scores the same masked positions.
            inputs, labels, n = helper.make(ids, mask_seed=cfg.seed + 7919 * (b + 1))
            total += float(_loss_sum(model, inputs.to(run.device), labels.to(run.device), run.objective))
            count += n
    model.train(was_training)
    loss = total / max(1, count)
    return {"val/loss": loss, "val/ppl": math.exp(min(loss, 50.0))}


@functools.lru_cache(maxsize=1)
def _code_version() -> str:
    from babylm.runtime import code_version

    return code_version()  # two git calls: once per process, not per checkpoint


def _meta(run: Run, state: LoopState, extra: dict | None = None) -> dict[str, Any]:
    info = {"step": state.step, "words_seen": state.words_seen, "tokens_seen": state.tokens_seen, **(extra or {})}
    return {"run_config.json": {"command": "train", "config": dataclasses.asdict(run.cfg), "objective": run.objective,
                                "code_version": _code_version(), "progress": info},
            "manifest.json": run.manifest}


def fit(run: Run, model, optimizer, tracker=None) -> LoopState:
    """Train ``model`` on ``run`` until the word budget / epochs are done (or early stopping).

    Returns the final loop state. Raises InputError on a non-finite loss (the last good
    checkpoint is kept).
    """
    import torch
    from babylm import checkpoint
    from babylm.tracking import Tracker, truncate_metrics

    cfg, dist = run.cfg, run.dist
    targets = Targets(run)
    stage_ids = [torch.as_tensor(_column(s, "input_ids"), dtype=torch.long) for s in run.stages]  # (N, T) each
    stage_words = [torch.as_tensor(_column(s, "n_words"), dtype=torch.long) for s in run.stages]  # (N,) each
    global_batch = cfg.batch_size * cfg.grad_accum * dist.world
    repeat = cfg.words is not None
    plan = BatchPlan([len(s) for s in run.stages], global_batch, cfg.seed, cfg.epochs, repeat)
    words_per_epoch = sum(int(w.sum()) for w in stage_words)
    if repeat:
        # Steps are planned from the mean words per block; the loop itself stops on the exact count.
        words_per_step = words_per_epoch / max(1, sum(plan.sizes)) * global_batch
        max_steps = math.ceil(cfg.words / max(words_per_step, 1e-9))
        budget_words = cfg.words
    else:
        max_steps = plan.total_batches()
        budget_words = int(words_per_epoch * cfg.epochs)
    milestones = checkpoint.milestone_words(cfg.track, cfg.milestone_unit_words) if cfg.milestones else []

    # ---- loop state: fresh or restored in one place
    state = LoopState()
    if cfg.resume:
        folder = checkpoint.latest(run.run_dir)
        saved = checkpoint.load_state(folder)
        checkpoint.load_weights(model, folder)
        optimizer.load_state_dict(saved["optimizer"])
        checkpoint.set_rng_state(saved["rng"])
        state = LoopState.from_dict(json.loads(saved["loop"]))
        if dist.main:
            truncate_metrics(run.run_dir, state.step)
    own_tracker = tracker is None
    if tracker is None:
        tracker = Tracker(run.run_dir, enabled=dist.main, total_steps=max_steps, total_words=budget_words,
                          tensorboard=cfg.tensorboard, progress=cfg.progress)
        tracker.advance(state.step)
    if state.step == 0:
        tracker.hparams({k: v for k, v in dataclasses.asdict(cfg).items() if v is not None})
    if dist.main and not cfg.resume:
        from babylm.config import save as save_config

        save_config(cfg, run.run_dir, "train")
    tracker.print(f"run {run.run_dir} | {run.objective} | {_param_count(model):,} parameters | device {run.device} | "
                  f"world {dist.world} | global batch {global_batch} x {cfg.block_size} | ~{max_steps} steps | "
                  f"budget {budget_words:,} words")

    autocast, precision = _autocast(run.device, cfg.precision)
    scaler = torch.amp.GradScaler(enabled=precision == "fp16")
    from babylm.objective import loss_module

    # Model and loss as one module: compiled together, wrapped in DDP together; for mlm the
    # vocabulary projection runs only on the masked rows (babylm/objective.py).
    train_model = loss_module(model, run.objective)
    if cfg.compile:
        train_model = torch.compile(train_model)
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(train_model, device_ids=[dist.local_rank] if run.device.startswith("cuda") else None)
    model.train()

    def check_finite():
        bad = _all_max(first_bad, dist)
        if bad >= 0:
            good = checkpoint.latest(run.run_dir) if (run.run_dir / checkpoint.LATEST).exists() else None
            raise InputError(f"loss is not finite at step {bad}; stopped. Last good checkpoint: {good or 'none'} "
                             "(lower --lr, set --grad_clip, or use --precision fp32)")

    def save_resume():
        check_finite()
        if dist.main:
            train_state = {"optimizer": optimizer.state_dict(), "rng": checkpoint.rng_state(),
                           "loop": json.dumps(state.to_dict()), "scaler": scaler.state_dict()}
            checkpoint.save_resume(run.run_dir, state.step, model, run.tokenizer, _meta(run, state), train_state)
        _barrier(dist)

    loss_acc = torch.zeros((), device=run.device)  # summed mean loss over the log interval (on device: no sync)
    first_bad = torch.full((), -1, dtype=torch.long, device=run.device)  # first step with a non-finite loss
    interval_steps, interval_tokens, t_interval = 0, 0, time.perf_counter()
    grad_norm = torch.zeros((), device=run.device)
    epoch_ended = False
    stop_reason = None
    last_eval_step = -1
    nxt = plan.next(state.position)

    while True:
        last_step = (nxt is None or (repeat and state.words_seen >= cfg.words) or stop_reason is not None)

        # ---- once in a while: log
        if state.step > 0 and (state.step % cfg.log_every == 0 or last_step) and interval_steps:
            check_finite()
            loss_val = _all_sum(loss_acc, dist) / interval_steps
            elapsed = time.perf_counter() - t_interval
            tracker.log(state.step, state.words_seen, {
                "train/loss": loss_val, "train/lr": optimizer.param_groups[0]["lr"], "train/grad_norm": float(grad_norm),
                "train/tokens_per_s": interval_tokens / max(elapsed, 1e-9), "train/epoch": state.position.epoch})
            loss_acc.zero_()
            interval_steps, interval_tokens, t_interval = 0, 0, time.perf_counter()

        # ---- once in a while: evaluate (every N steps, at epoch ends, at the end)
        if run.val is not None and state.step > 0 and state.step != last_eval_step and (
                last_step or epoch_ended or (cfg.eval_every and state.step % cfg.eval_every == 0)):
            check_finite()
            last_eval_step = state.step
            metrics = evaluate(model, run, autocast)
            tracker.log(state.step, state.words_seen, metrics)
            if metrics["val/loss"] < state.best_val:
                state.best_val, state.bad_evals = metrics["val/loss"], 0
                if dist.main:
                    checkpoint.save_model(run.run_dir / "best", model, run.tokenizer, _meta(run, state, metrics))
            else:
                state.bad_evals += 1
                if cfg.patience and state.bad_evals >= cfg.patience and not last_step:
                    stop_reason = f"early stopping: no better validation loss in {state.bad_evals} evaluations"
                    tracker.print(stop_reason)
                    continue  # go round once more with last_step set
        epoch_ended = False

        # ---- once in a while: milestone checkpoints at the official word counts
        for name, threshold in milestones:
            if state.words_seen >= threshold and name not in state.milestones_done:
                check_finite()
                if dist.main:
                    checkpoint.save_model(run.run_dir / name, model, run.tokenizer, _meta(run, state, {"milestone": name}))
                    tracker.print(f"milestone {name}: {state.words_seen:,} words seen at step {state.step}")
                state.milestones_done.append(name)

        # ---- once in a while: resume checkpoint, final model
        if last_step:
            if state.step > 0:
                save_resume()
                if dist.main:
                    # The final model is the resume checkpoint just written (weights and optimizer
                    # state hard-linked, not serialised again) with its own metadata.
                    with_meta = _meta(run, state, {"stop_reason": stop_reason or "budget reached"})
                    checkpoint.derive(checkpoint.latest(run.run_dir), run.run_dir / "final", with_meta)
                    tracker.print(f"done: {state.step} steps, {state.words_seen:,} words seen; final model in {run.run_dir / 'final'}")
            break
        if cfg.save_every and state.step > 0 and state.step % cfg.save_every == 0:
            save_resume()

        # ---- one training step ------------------------------------------------------------
        stage, idx, new_pos, epoch_ended = nxt
        lr = lr_at(state.step, cfg.lr, cfg.warmup_steps, max_steps, cfg.schedule, cfg.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        ids = stage_ids[stage][idx]  # (G, T) the global batch, identical on every rank
        inputs, labels, n_targets = targets.make(ids, mask_seed=cfg.seed * 1_000_003 + state.step)
        n_micro = cfg.grad_accum
        step_loss = torch.zeros((), device=run.device)
        for micro in range(n_micro):
            lo = (dist.rank * n_micro + micro) * cfg.batch_size
            x = inputs[lo:lo + cfg.batch_size].to(run.device, non_blocking=True)  # (B, T)
            y = labels[lo:lo + cfg.batch_size].to(run.device, non_blocking=True)  # (B, T)
            sync = micro == n_micro - 1 or dist.world == 1
            with (contextlib.nullcontext() if sync else train_model.no_sync()), autocast():
                # Sum over this micro-batch / targets of the whole global batch; DDP averages over
                # ranks, so scale by world to get the exact global mean.
                loss = train_model(x, y) / max(1, n_targets)
                scaler.scale(loss * dist.world).backward()
            step_loss += loss.detach()
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(step_loss), state.step + 1, first_bad)
        loss_acc += step_loss
        state.step += 1
        state.words_seen += int(stage_words[stage][idx].sum())
        state.tokens_seen += ids.numel()
        state.position = new_pos
        interval_steps += 1
        interval_tokens += ids.numel()
        tracker.advance(1)
        nxt = plan.next(state.position)
        # ---- end of the training step -----------------------------------------------------

    if own_tracker:
        tracker.close()
    return state


def _param_count(model) -> int:
    from babylm.models import count_parameters

    return count_parameters(model)


def _all_sum(t, dist: Dist) -> float:
    if dist.world > 1:
        import torch.distributed as torchdist

        t = t.clone()
        torchdist.all_reduce(t)
    return float(t)


def _all_max(t, dist: Dist) -> int:
    if dist.world > 1:
        import torch.distributed as torchdist

        t = t.clone()
        torchdist.all_reduce(t, op=torchdist.ReduceOp.MAX)
    return int(t)


def _barrier(dist: Dist) -> None:
    if dist.world > 1:
        import torch.distributed as torchdist

        torchdist.barrier()


def train(cfg: TrainConfig) -> Path:
    """Run ``python -m babylm train``: setup, build, fit (or the HF engine). Returns the run folder."""
    if cfg.engine == "hf":
        from babylm.hf_engine import train_hf

        return train_hf(cfg)
    run = setup(cfg)
    model, optimizer = build(run)  # bad input fails here, before anything is replaced
    if run.dist.main and cfg.overwrite and run.run_dir.exists():
        import shutil

        shutil.rmtree(run.run_dir)
    _barrier(run.dist)
    try:
        fit(run, model, optimizer)
    finally:
        if run.dist.world > 1:
            import torch.distributed as torchdist

            if torchdist.is_initialized():
                torchdist.destroy_process_group()
    return run.run_dir


# --------------------------------------------------------------------------- test command

@dataclasses.dataclass
class TestConfig:
    model: str = option("", "saved model folder (e.g. runs/gpt2_tiny/final or a chck_* folder)")
    corpus: str = option("embedded", "corpus holding the test files")
    files: list[str] = option(["test"], "test files: names, globs or groups")
    block_size: int = option(128, "tokens per sequence")
    batch_size: int = option(32, "sequences per batch")
    objective: str = option("auto", "clm, mlm or auto (the model's own)", choices=("auto", "clm", "mlm"))
    seed: int = option(42, "seed of the mlm masks")
    device: str = option("auto", "auto, cpu, cuda")
    trust_remote_code: bool = option(False, "allow models with their own code (custom head) to run it")

    def validate(self) -> None:
        if not self.model:
            raise UsageError("--model is required: a saved model folder")


def test_model(cfg: TestConfig) -> dict[str, float]:
    """Loss and perplexity of a saved model on test files (``python -m babylm test``)."""
    from babylm import models
    from babylm.runtime import pick_device
    from babylm.tokenizer import load_tokenizer

    device = pick_device(cfg.device)
    model = load_model(cfg.model, cfg.trust_remote_code).to(device)
    tokenizer = load_tokenizer(cfg.model)
    models.check_fits(model, tokenizer, cfg.block_size)
    tcfg = TrainConfig(corpus=cfg.corpus, files=cfg.files, block_size=cfg.block_size, batch_size=cfg.batch_size,
                       seed=cfg.seed, objective=cfg.objective)
    corpus, blocks = _load_blocks(tcfg, tokenizer, cfg.files)
    if len(blocks) == 0:
        raise InputError(f"{cfg.corpus} files {cfg.files}: no full block of {cfg.block_size} tokens to test on")
    objective = cfg.objective if cfg.objective != "auto" else ("clm" if _kind_of(model) == "causal" else "mlm")
    run = Run(tcfg, Path("."), tokenizer, [], blocks, objective, device, Dist(), {})
    autocast, _ = _autocast(device, "fp32")
    metrics = evaluate(model, run, autocast)
    return {"test/loss": metrics["val/loss"], "test/ppl": metrics["val/ppl"], "blocks": len(blocks),
            "words": int(sum(_column(blocks, "n_words")))}
