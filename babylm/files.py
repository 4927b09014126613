"""Files in and out. Writes are atomic: every file and directory the kit produces appears whole or
not at all; a crash (or SIGKILL) mid-write leaves at most a ``.tmp-*`` sibling, never a truncated
file under the final name, so a re-run sees either the previous result or nothing. A folder that
replaces another is swapped in by two renames; a kill between them leaves the previous copy as
``.old-*``, which :func:`recover` puts back. Written files and folders get the permissions a plain
``open()``/``mkdir()`` would give them under the process's umask.

A folder that one command writes for a long time (a training run, a results tree, a repository)
is held by one process at a time: :class:`FolderLock`.

Reads of JSON and JSON Lines fail with one line naming the file and line; writes the system
refuses (full disk, file-size limit, read-only folder) fail with one line naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import filelock

from babylm.errors import InputError

# Why a write can fail for reasons outside the kit, and what the user can do about each.
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_DENIED = {errno.EROFS, errno.EACCES, errno.EPERM}
_IN_THE_WAY = {errno.ENOTDIR, errno.EEXIST}  # a regular file where the path needs a folder


class WriteRefused(InputError):
    """A write the system refused (full disk, file-size limit, read-only or foreign folder): one line
    naming the path, why, and what to do."""

    def __init__(self, path: str | Path, reason: str, advice: str, option: str = ""):
        self.path, self.reason, self.advice = Path(path), reason, advice
        super().__init__(f"{option + ': ' if option else ''}{path}: cannot write ({reason}); {advice}")


def cannot_write(path: str | Path, exc: OSError, option: str = "") -> WriteRefused | None:
    """:class:`WriteRefused` for an OSError that is the system refusing a write, or None for any other
    OSError, which is a bug and keeps its traceback. ``option`` names the flag that chose the path."""
    if exc.errno in _FULL:
        advice = "free disk space (or raise the file-size limit) and run the command again"
    elif exc.errno in _DENIED:
        advice = "the location is not writable: choose another one or fix its permissions"
    elif exc.errno in _IN_THE_WAY:
        advice = "a file is in the way where a folder is needed: give a folder path, or move the file"
        path = next((p for p in [Path(exc.filename or path), *Path(exc.filename or path).parents]
                     if p.is_file()), path)  # name the file that is in the way
        return WriteRefused(path, "a regular file, not a folder", advice, option)
    else:
        return None
    return WriteRefused(path, exc.strerror or str(exc), advice, option)


def _umask() -> int:
    """The process's umask, read without changing it (os.umask can only be read by setting it,
    which would briefly give other threads' new files the wrong mode)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _make_parents(folder: Path) -> list[Path]:
    """``folder.mkdir(parents=True, exist_ok=True)``, returning the folders it made, deepest first,
    so that a write that fails can leave the tree as it found it (:func:`_remove_empty`)."""
    made, parent = [], folder
    while not parent.exists():
        made.append(parent)
        parent = parent.parent
    folder.mkdir(parents=True, exist_ok=True)
    return made


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; a folder something else wrote into stays
        with contextlib.suppress(OSError):
            folder.rmdir()


def file_mode() -> int:
    """The mode ``open()`` gives a new file under the process's umask."""
    return 0o666 & ~_umask()


def temp_dir(parent: str | Path, prefix: str) -> Path:
    """``tempfile.mkdtemp`` in ``parent``, with the permissions ``mkdir`` would give (mkdtemp makes the
    folder private, and a folder renamed into place keeps them: others could not read the output)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    made = []
    try:
        made = _make_parents(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    except OSError as exc:
        _remove_empty(made)
        raise cannot_write(path, exc) or exc from None
    try:
        # mkstemp makes the file private (0600); give it what open() would have given it
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _remove_empty(made)
        if isinstance(exc, OSError) and (refused := cannot_write(path, exc)) is not None:
            raise refused from None
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it is renamed to ``path``.

    With ``overwrite`` an existing ``path`` is replaced: it is renamed to ``.old-<name>-<pid>``,
    the new folder is renamed into place, and only then is the old copy removed. At every instant
    a complete copy exists under ``path`` or ``.old-*`` (:func:`recover` restores it after a
    kill between the two renames). Without ``overwrite`` an existing ``path`` raises
    FileExistsError.
    """
    path = Path(path)
    made = []
    try:
        made = _make_parents(path.parent)
        if path.exists() and not overwrite:
            raise FileExistsError(path)
        tmp = temp_dir(path.parent, f".tmp-{path.name}-")
    except OSError as exc:
        _remove_empty(made)
        if isinstance(exc, FileExistsError):
            raise
        raise cannot_write(path, exc) or exc from None
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".old-{path.name}-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(made)
        if isinstance(exc, OSError) and (refused := cannot_write(path, exc)) is not None:
            raise refused from None
        if isinstance(exc, WriteRefused) and (exc.path == tmp or tmp in exc.path.parents):
            raise WriteRefused(path, exc.reason, exc.advice) from None  # the temporary name means nothing to the user
        raise


def remove_dir(path: str | Path) -> None:
    """Delete a folder so that it never appears half-deleted under its own name: it is renamed to
    a ``.tmp-*`` sibling first (what :func:`recover` throws away), then removed."""
    path = Path(path)
    doomed = path.with_name(f".tmp-{path.name}-removed-{os.getpid()}")
    try:
        os.replace(path, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def recover(folder: str | Path) -> list[str]:
    """Clean up after writes that a kill interrupted in ``folder``; return what was done, one
    phrase per item.

    ``.old-<name>-<pid>`` is the previous copy of a replaced folder: it goes back to ``<name>``
    when the kill came between the two renames of :func:`atomic_dir` (``<name>`` is missing),
    and is removed otherwise. ``.tmp-*`` entries are unfinished writes and are removed.
    """
    folder = Path(folder)
    done = []
    if not folder.is_dir():
        return done
    for entry in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns, reverse=True):
        if entry.name.startswith(".old-"):
            name = entry.name[len(".old-"):].rsplit("-", 1)[0]
            if not (folder / name).exists():
                os.replace(entry, folder / name)
                done.append(f"put back {name}/ (a replacement of it was interrupted)")
                continue
        elif not entry.name.startswith(".tmp-"):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        done.append(f"removed {entry.name}")
    return done


def lock_path(folder: str | Path) -> Path:
    """The lock file of ``folder``: ``.<name>.lock`` beside it, so that emptying or replacing the
    folder (``--overwrite``) does not touch the lock that protects it."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


class FolderLock:
    """Ownership of ``folder`` by this process while held: a ``filelock`` lock (``flock`` on POSIX)
    on :func:`lock_path`, the file holding the owner's pid.

    The kernel releases the lock when its holder ends, however it ends (SIGKILL included), so a
    lock file left behind by a dead process stops no one. A second process is refused at once
    with one line naming the holder's pid: ``filelock`` has no notion of a holder to name, so the
    pid is written into the locked file when the lock is taken (its ``on_acquired`` hook) and read
    back on a refusal. ``filelock`` leaves the file in place on release; the kit removes it while
    still holding it (a process that opened it meanwhile finds it unlinked and does not count it
    as taken, filelock's own check), and removes parent folders made only to hold it, so a refused
    or failed command leaves the tree as it found it.
    """

    def __init__(self, folder: str | Path, option: str = ""):
        self.folder = Path(folder)
        self.option = option  # the flag that chose the folder, named when it cannot be written
        self.path = lock_path(self.folder)
        self._lock = filelock.FileLock(self.path, blocking=False, thread_local=False, on_acquired=_write_pid)
        self._made: list[Path] = []

    def acquire(self) -> FolderLock:
        try:
            self._made = _make_parents(self.path.parent)
            self._lock.acquire()
        except filelock.Timeout:
            holder = ""
            with contextlib.suppress(OSError):
                holder = self.path.read_text(encoding="ascii", errors="replace").strip()
            self._remove_made()
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise InputError(f"{self.folder} is in use by {who} (lock {self.path}); wait until it ends, "
                             "or stop it") from None
        except OSError as exc:
            self.release()
            raise cannot_write(self.path.parent, exc, self.option) or exc from None
        return self

    def release(self) -> None:
        if self._lock.is_locked:
            # removed while still held, so nobody can take this file after we let it go
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self._lock.release()
        self._remove_made()

    def _remove_made(self) -> None:
        _remove_empty(self._made)
        self._made = []

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _write_pid(fd: int) -> None:
    """The holder's pid in the lock file it has just locked (read by a process it refuses)."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)


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
