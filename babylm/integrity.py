"""Checksums of checkpoint folders: what was saved is what is loaded, published or scored.

Every checkpoint folder the kit writes ends with ``checksums.json``: the sha256 and size of each of
its other files. :func:`verify` (called by resume, ``test``, ``--init_from``, ``publish`` and
``score``) compares the files with it and names the first one that differs; a file that is a
symbolic link is refused whether or not a record exists (a link would publish or load whatever it
points at). Kept free of torch: ``publish`` and ``score`` check folders before loading anything.

One weights policy for every loader (``score``, ``finetune``, ``test``, ``--init_from``):
:func:`check_local_model` (safetensors only: a pickled ``.bin`` is refused with the same line
everywhere) before loading, and :func:`weights_error` for what ``from_pretrained`` raises on a
damaged file or on weights whose shapes do not fit ``config.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path

from babylm.errors import InputError
from babylm.files import write_json

CHECKSUMS = "checksums.json"  # sha256 and size of every other file of a checkpoint folder, written last


def sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def write_checksums(folder: Path, known: dict[str, dict] | None = None) -> None:
    """Record the sha256 and size of every file of ``folder`` in ``checksums.json`` (the folder's last file).

    ``known``: entries already computed for files that are links to the same bytes (:func:`derive`)."""
    known = known or {}
    files = {}
    for item in sorted(Path(folder).iterdir()):
        if item.is_file() and item.name != CHECKSUMS:
            size = item.stat().st_size
            old = known.get(item.name)
            files[item.name] = old if old and old["bytes"] == size else {"sha256": sha256(item), "bytes": size}
    write_json(Path(folder) / CHECKSUMS, {"algorithm": "sha256", "files": files})


def published_checksums(folder: Path, written: dict[str, str], left_out: set[str]) -> str | None:
    """The ``checksums.json`` text of a copy of ``folder`` without the files ``left_out`` and with the texts
    ``written`` in place of (or beside) its files; None when ``folder`` has no record."""
    files = checksums(folder)
    if not files:
        return None
    files = {name: entry for name, entry in files.items() if name not in left_out}
    for name, text in written.items():
        data = text.encode("utf-8")
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    return json.dumps({"algorithm": "sha256", "files": dict(sorted(files.items()))}, indent=2) + "\n"


def checksums(folder: Path) -> dict[str, dict]:
    path = Path(folder) / CHECKSUMS
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8"))["files"])
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{path}: not a checksum record the kit wrote; the checkpoint cannot be verified "
                         "(save it again, or delete the file to use it unverified)") from None


def verify(folder: Path) -> None:
    """Refuse a checkpoint folder whose files are links or differ from its ``checksums.json``.

    One line names the first bad file. Folders written without a record (other tools, older versions
    of the kit) are checked for links only."""
    folder = Path(folder)
    for item in sorted(folder.iterdir()) if folder.is_dir() else []:
        if item.is_symlink():
            raise InputError(f"{item} is a symbolic link (to {os.readlink(item)}); a checkpoint holds its own files: "
                             "replace it with the file itself")
    for name, want in checksums(folder).items():
        item = folder / name
        if not item.is_file():
            raise InputError(f"{item} is missing ({CHECKSUMS} lists it); the checkpoint is incomplete: "
                             "save or copy it again")
        size = item.stat().st_size
        if size != want.get("bytes") or sha256(item) != want.get("sha256"):
            raise InputError(f"{item} is damaged ({size:,} bytes; its sha256 differs from the one recorded in "
                             f"{CHECKSUMS} when it was saved): save or copy the checkpoint again")


def weights_fingerprint(path: str, hub_revision: str | None) -> str:
    """sha256 (16 hex digits) of a local model's weight files, in name order; a hub model: its id and revision."""
    folder = Path(path)
    if not folder.is_dir():
        return f"hub:{path}@{hub_revision or 'main'}"
    digest = hashlib.sha256()
    for f in sorted([*folder.glob("*.safetensors"), *folder.glob("*.bin")]):
        digest.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()[:16]


def check_local_model(folder: Path) -> None:
    """The one policy for loading a local model folder: verified files (:func:`verify`) and safetensors weights."""
    folder = Path(folder)
    verify(folder)
    if not any(folder.glob("*.safetensors")):
        found = sorted(p.name for p in folder.glob("*.bin"))
        held = f" (it holds {', '.join(found)})" if found else ""
        raise InputError(f"{folder}: no *.safetensors weights{held}; pickled .bin weights are not loaded: re-save the "
                         "model with save_pretrained(..., safe_serialization=True)")


def weights_error(exc: BaseException, source: str) -> InputError | None:
    """One line for a ``from_pretrained`` failure caused by the weights file, or None for other failures."""
    text = str(exc)
    if type(exc).__name__ == "SafetensorError" or "deserializing header" in text:
        return InputError(f"{source}: the safetensors weights are damaged or truncated ({text.splitlines()[0]}); "
                          "save or copy the model again")
    if "ignore_mismatched_sizes" in text or "size mismatch" in text:
        return InputError(f"{source}: the weights do not fit config.json (tensor shapes differ: the config was "
                          "edited or the weights belong to another model); restore the folder as it was saved")
    return None


@contextlib.contextmanager
def held_load_report():
    """Hold transformers' warnings while a model loads: a failure becomes one line (no table of every
    tensor above it), a load that works says them as usual."""
    from transformers.utils import logging as hf_logging  # here: the checks above need no transformers

    handlers = list(hf_logging.get_logger("transformers").handlers)  # sets up the library's handler if missing
    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        held.append(record)
        return False

    for handler in handlers:
        handler.addFilter(hold)
    try:
        yield
    except BaseException:
        held.clear()
        raise
    finally:
        for handler in handlers:
            handler.removeFilter(hold)
    seen = set()
    for record in held:  # each record once, though every handler held it
        if id(record) not in seen:
            seen.add(id(record))
            logging.getLogger(record.name).handle(record)


def from_pretrained(auto, source: str, **kwargs):
    """``auto.from_pretrained(source, use_safetensors=True, **kwargs)``; a damaged weights file or one that
    does not fit the config is one line (:func:`weights_error`)."""
    try:
        with held_load_report():
            return auto.from_pretrained(source, use_safetensors=True, **kwargs)
    except Exception as exc:
        error = weights_error(exc, source)
        if error is None:
            raise
        raise error from None
