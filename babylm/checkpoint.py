"""Checkpoints: self-contained Hugging Face folders, written atomically, plus the training state.

Layout of one run (``<save_dir>/<run_name>/``)::

    final/             the final model (save_pretrained + tokenizer + run_config.json + manifest.json)
    chck_1M/ ...       milestone models, official revision names, same content as final/
    best/              the model with the lowest validation loss so far
    step_000120/       resume checkpoint: a model folder plus train_state.pt (optimizer, RNG, data position)
    hf_trainer/        --engine hf: the Trainer's own resume checkpoints (checkpoint-120/ + loop_state.json)
    latest             text file naming the newest resume checkpoint; moved last
    metrics.jsonl  train.log  tb/

Each folder the kit writes ends with ``checksums.json`` (sha256 of its other files,
:mod:`babylm.integrity`); resume, ``test``, ``publish`` and ``score`` verify it. Two resume
checkpoints are kept, so that a damaged newest one gives way to the one before it.

Every folder is built under a temporary name and renamed into place (:func:`babylm.files.atomic_dir`),
and ``latest`` is rewritten only after its target exists, so a crash at any point leaves the
previous checkpoint and pointer intact. A resume checkpoint is never replaced (a second save at
the same step gets a new name), so the folder ``latest`` names exists at every instant; the
fixed-name folders (``best/``, ``final/``, milestones) are replaced by two renames whose
interruption :func:`babylm.files.recover` repairs at the next start. When the pointer names no
complete checkpoint, the newest complete one is used.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from babylm.errors import InputError
from babylm.files import atomic_dir, file_mode, remove_dir, write_json, write_text
from babylm.integrity import CHECKSUMS, checksums, verify, write_checksums
from babylm.tokenizer import MODEL_INPUTS, make_legacy_readable

log = logging.getLogger(__name__)

STATE_FILE = "train_state.pt"
LATEST = "latest"
HF_DIR = "hf_trainer"  # the Trainer engine's checkpoints, under the run folder
LOOP_FILE = "loop_state.json"  # the loop state of a Trainer checkpoint, written once the Trainer's files are there
_RESUME = re.compile(r"^(?:step_|checkpoint-)(\d+)(?:\.(\d+))?$")


def _make_legacy_readable(folder: Path) -> None:
    """Rewrite fields transformers 5 writes that transformers 4.51 (the official pipeline) cannot read.

    * the tokenizer files: see :func:`babylm.tokenizer.make_legacy_readable`; ``model_input_names``
      becomes what every kit model is trained on (ids and attention mask, no token types).
    * ``config.json``: v5 writes ``dtype`` where 4.x expects ``torch_dtype``.
    """
    make_legacy_readable(folder, MODEL_INPUTS)
    cfg = folder / "config.json"
    if cfg.is_file():
        data = json.loads(cfg.read_text(encoding="utf-8"))
        if "dtype" in data and "torch_dtype" not in data:
            data["torch_dtype"] = data["dtype"]
            write_json(cfg, data)


def write_model(folder: Path, model, tokenizer, meta: dict[str, Any]) -> None:
    """Fill ``folder`` with a loadable model: weights (safetensors), config, tokenizer and metadata.

    ``meta`` maps file names (``run_config.json``, ``manifest.json`` ...) to JSON objects.
    """
    from transformers.utils import logging as hf_logging

    model = getattr(model, "module", model)  # unwrap DDP
    model = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Writing model shards" bar per checkpoint is noise in the run log
    try:
        model.save_pretrained(folder, safe_serialization=True)
    except Exception as exc:
        # safetensors reports a failed write as its own error type; its message keeps the OS error number
        found = re.search(r"\(os error (\d+)\)", str(exc))
        if found is None:
            raise
        raise OSError(int(found.group(1)), os.strerror(int(found.group(1)))) from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    for written in Path(folder).glob("*.safetensors"):  # safetensors creates its files private (0600)
        os.chmod(written, file_mode())
    tokenizer.save_pretrained(folder)
    _make_legacy_readable(folder)
    for name, obj in meta.items():
        write_json(folder / name, obj)


def save_model(path: Path, model, tokenizer, meta: dict[str, Any], overwrite: bool = True) -> Path:
    """Write a model folder at ``path`` atomically (temp folder, then rename)."""
    with atomic_dir(path, overwrite=overwrite) as tmp:
        write_model(tmp, model, tokenizer, meta)
        write_checksums(tmp)
    return path


def derive(src: Path, dst: Path, meta: dict[str, Any], overwrite: bool = True) -> Path:
    """Write ``dst`` as a copy of the checkpoint folder ``src`` with new metadata files, atomically.

    Weights, tokenizer and training state are hard-linked (copied where links are not possible):
    the final model of a run is the last resume checkpoint, so serialising the weights and the
    optimizer state a second time would only cost time and disk.
    """
    with atomic_dir(dst, overwrite=overwrite) as tmp:
        for item in sorted(src.iterdir()):
            if item.name in meta or item.name == CHECKSUMS:  # rewritten below for the new metadata
                continue
            if item.is_dir():
                shutil.copytree(item, tmp / item.name, copy_function=_link_or_copy)
                continue
            _link_or_copy(str(item), str(tmp / item.name))  # a copy on file systems without links
        for name, obj in meta.items():
            write_json(tmp / name, obj)
        write_checksums(tmp, known={k: v for k, v in checksums(src).items() if k not in meta})
    return dst


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def rng_state() -> dict[str, Any]:
    """The RNG states of python, numpy and torch in a form ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": list(random.getstate()[1]), "python_version": random.getstate()[0],
             "python_gauss": random.getstate()[2],
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` that says why a write failed (torch reports only a position mismatch)."""
    try:
        torch.save(state, path)
    except RuntimeError:
        # One more byte at the end of the file meets the same full disk or file-size limit and
        # raises the OSError that names it; if it succeeds, the failure was something else.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"\0")
        finally:
            os.close(fd)
        raise


def save_resume(run_dir: Path, step: int, model, tokenizer, meta: dict[str, Any], train_state: dict[str, Any],
                keep: int = 2) -> Path:
    """Write ``step_<N>/`` (model + ``train_state.pt``), then move ``latest``, then prune old ones.

    The order matters: the pointer names a folder only once that folder is complete, and older
    resume folders are removed only after the pointer has moved. An existing folder of the same
    step is not replaced (``latest`` may name it): the new one is ``step_<N>.1``, ``.2`` ...
    """
    name, k = f"step_{step:07d}", 0
    while (run_dir / name).exists():
        k += 1
        name = f"step_{step:07d}.{k}"
    with atomic_dir(run_dir / name) as tmp:
        write_model(tmp, model, tokenizer, meta)
        save_state(train_state, tmp / STATE_FILE)
        write_checksums(tmp)
    write_text(run_dir / LATEST, name + "\n")
    for old in resume_folders(run_dir)[:-keep] if keep else []:
        if old.name != name:
            remove_dir(old)
    return run_dir / name


def complete(folder: Path) -> bool:
    """A resume checkpoint whose last file is written: the kit's ``train_state.pt`` or, for a Trainer
    checkpoint, the loop state the kit adds after the Trainer's own files."""
    return (folder / STATE_FILE).is_file() or (folder / LOOP_FILE).is_file()


def resume_folders(run_dir: Path) -> list[Path]:
    """The complete resume checkpoints of a run (``step_*`` and ``hf_trainer/checkpoint-*``), oldest first."""
    found = []
    for parent in (Path(run_dir), Path(run_dir) / HF_DIR):
        if parent.is_dir():
            for folder in parent.iterdir():
                m = _RESUME.match(folder.name)
                if m and complete(folder):
                    found.append(((int(m.group(1)), int(m.group(2) or 0)), folder))
    return [folder for _, folder in sorted(found)]


def _named(run_dir: Path, pointer: Path) -> str:
    """The folder name ``latest`` holds; one line when it points outside the run folder."""
    named = pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else ""
    if named:
        target = (run_dir / named).resolve()
        inside = target.parent in (run_dir.resolve(), (run_dir / HF_DIR).resolve())
        if not inside or not _RESUME.match(target.name):
            raise InputError(f"{pointer} names {named!r}, which is not a resume checkpoint of {run_dir} "
                             f"(step_* or {HF_DIR}/checkpoint-*); fix or delete the pointer")
    return named


def latest(run_dir: Path, verified: bool = False) -> Path | None:
    """The resume checkpoint ``latest`` names; when it names none that is complete (an older version of
    the kit, a folder removed by hand), the newest complete one the run folder holds. None when the
    run has no resume checkpoint yet.

    ``verified``: also check the files against their checksums (:func:`verify`); a damaged checkpoint
    gives way to the newest older one that passes, with a warning, and is one line when none does."""
    run_dir = Path(run_dir)
    pointer = run_dir / LATEST
    named = _named(run_dir, pointer)
    found = resume_folders(run_dir)
    if named and complete(run_dir / named):
        found = [f for f in found if f != run_dir / named] + [run_dir / named]
    if not verified:
        if found:
            return found[-1]
    else:
        damage = None
        for folder in reversed(found):
            try:
                verify(folder)
            except InputError as exc:
                damage = damage or exc
                continue
            if damage:
                log.warning("%s; resuming from the previous checkpoint %s instead", damage, folder)
            return folder
        if damage:
            raise damage
    if named:
        raise InputError(f"{pointer} names {named}, which is missing or incomplete, and {run_dir} holds no other "
                         "complete checkpoint; start the run again with --overwrite true")
    return None


def load_state(folder: Path) -> dict[str, Any]:
    """Read ``train_state.pt`` with ``weights_only=True`` (no pickled code is executed)."""
    path = Path(folder) / STATE_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, OSError) as exc:  # a truncated or empty file
        raise InputError(f"{path}: cannot read the training state ({_first_line(exc)}); the checkpoint is damaged: "
                         "delete the folder to resume from an older one, or start again with --overwrite true") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def load_weights(model, folder: Path) -> None:
    """Load ``model.safetensors`` of ``folder`` into ``model`` in place (strict: every key must match)."""
    from safetensors.torch import load_file

    target = getattr(getattr(model, "module", model), "_orig_mod", getattr(model, "module", model))
    path = Path(folder) / "model.safetensors"
    try:
        weights = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for a truncated or empty file
        if isinstance(exc, FileNotFoundError):
            raise InputError(f"{path} is missing; the checkpoint is incomplete") from None
        raise InputError(f"{path}: cannot read the weights ({_first_line(exc)}); the file is damaged: delete the "
                         "folder to resume from an older one, or start again with --overwrite true") from None
    missing, unexpected = target.load_state_dict(weights, strict=False)
    # Tied output embeddings are saved once; anything else missing is a real mismatch.
    tied = set(getattr(target, "_tied_weights_keys", None) or {})
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise InputError(f"{folder}/model.safetensors does not match the model (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}); was it saved by a different --arch or size?")
    if tied:
        target.tie_weights()
