"""Files in and out. Writes are atomic: every file and directory the kit produces appears whole or
not at all; a crash (or SIGKILL) mid-write leaves at most a ``.tmp-*`` sibling, never a truncated
file under the final name, so a re-run sees either the previous result or nothing. Reads of JSON
and JSON Lines fail with one line naming the file and line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from babylm.errors import InputError


def write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it is renamed to ``path``.

    With ``overwrite`` an existing ``path`` is replaced (old copy removed only after the new
    one is in place); without it an existing ``path`` raises FileExistsError.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise FileExistsError(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".old-{path.name}-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing, undecodable or malformed file raises InputError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); write the file as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def read_jsonl(data: bytes | Path, name: str, allow_blank: bool = True) -> list[dict]:
    """Parse JSON Lines; a bad line raises InputError naming the file and the line number.

    Each row gets ``__line__`` (1-based). ``allow_blank=False`` makes an empty line an error too,
    for files whose line index is an id (GLUE predictions are numbered by line).
    """
    raw = Path(data).read_bytes() if isinstance(data, (str, Path)) else data
    lines = raw.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline that ends the last line
    rows = []
    for n, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{name}:{n}: not UTF-8 text (byte {exc.start} of the line); "
                             "re-download the file or convert it to UTF-8") from None
        if not text.strip():
            if not allow_blank:
                raise InputError(f"{name}:{n}: empty line; every line must hold one JSON object")
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{n}: not valid JSON ({exc.msg}); fix or re-download the file") from None
        if not isinstance(row, dict):
            raise InputError(f"{name}:{n}: expected a JSON object per line")
        row["__line__"] = n
        rows.append(row)
    return rows
