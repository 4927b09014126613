"""Download the official BabyLM text archives: progress bar, resume, checksum, atomic unpack.

A download goes to ``<out_dir>/.downloads/<file>.part``. An interrupted one is resumed with an
HTTP ``Range`` request; the finished file is checked against the published size and checksum
(a mismatch deletes it and nothing is unpacked), then unpacked into a temporary folder that is
renamed into the layout :mod:`babylm.corpus` reads (``train_10M/``, ``babylm_10M/`` ...).
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import logging
import os
import shutil
import stat
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from babylm.challenge import TRACKS
from babylm.config import option
from babylm.corpus import LAYOUT_DIRS
from babylm.credentials import redact, redact_values, split_userinfo
from babylm.errors import InputError, UsageError
from babylm.files import temp_dir, write_json

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Archive:
    """One downloadable archive and where its contents go."""

    name: str  # layout folder it provides, e.g. "train_10M"
    url: str | None
    md5: str | None = None
    size: int | None = None
    source: str = ""  # where the URL and checksum were published


_OSF_2024 = "OSF project ad7qg (text_data/), BabyLM 2024"
_OSF_2025 = "OSF project ryjfm (text_data/), BabyLM 2025"
_GH_2023 = "babylm/babylm.github.io repository, 2023 README"

# (year, track) -> archives. Checksums only where published: the 2024 train_10M.zip md5 and size
# are listed in a public README next to the OSF direct-download id.
# Other entries are verified by size/checksum only when given with --md5/--size.
REGISTRY: dict[tuple[str, str], list[Archive]] = {
    ("2023", "strict-small"): [Archive("babylm_data", "https://github.com/babylm/babylm.github.io/raw/main/babylm_data.zip",
                                       source=_GH_2023 + " (one zip with babylm_10M, babylm_100M, babylm_dev, babylm_test)")],
    ("2023", "strict"): [Archive("babylm_data", "https://github.com/babylm/babylm.github.io/raw/main/babylm_data.zip",
                                 source=_GH_2023)],
    ("2024", "strict-small"): [Archive("train_10M", "https://osf.io/download/5mk3x/",
                                       md5="dc67e5d2db96ed4f76cb072e2504a18c", size=18_139_949, source=_OSF_2024)],
    ("2024", "strict"): [Archive("train_100M", None, source=_OSF_2024 + ": look up train_100M.zip on osf.io/ad7qg")],
    # 2025 re-uses the 2024 text; direct-download ids as used by public download scripts for osf.io/ryjfm
    ("2025", "strict-small"): [Archive("train_10M", "https://osf.io/download/y7djq/", source=_OSF_2025),
                               Archive("dev", "https://osf.io/download/uyd7v/", source=_OSF_2025)],
    ("2025", "strict"): [Archive("train_100M", "https://osf.io/download/ywea7/", source=_OSF_2025),
                         Archive("dev", "https://osf.io/download/uyd7v/", source=_OSF_2025)],
}
HF_2026 = {"strict-small": "BabyLM-community/BabyLM-2026-Strict-Small", "strict": "BabyLM-community/BabyLM-2026-Strict"}
YEARS = ("2023", "2024", "2025", "2026")


@dataclasses.dataclass
class DownloadConfig:
    year: str = option("2024", "challenge year of the data release", choices=YEARS)
    track: str = option("strict-small", "track (strict-small: 10M words, strict: 100M)", choices=TRACKS)
    out_dir: str = option("data/babylm", "folder to unpack into (the corpus folder for --corpus)")
    url: str = option("", "download this URL instead of the registry's (one archive)")
    base_url: str = option("", "replace the registry URLs' location with this one (file name = <name>.zip)")
    md5: str = option("", "expected md5 of the archive given with --url (overrides the registry)")
    size: int = option(0, "expected size in bytes of the archive given with --url (0: unknown)", ge=0)
    keep_archive: bool = option(False, "keep the verified archive in <out_dir>/.downloads")
    overwrite: bool = option(False, "replace folders that already exist in out_dir")
    timeout: float = option(60.0, "seconds a connection may stay silent before it counts as interrupted", gt=0)
    retries: int = option(3, "times an interrupted download is resumed (1, 2, 4 ... s apart) before giving up", ge=0)


def archives_for(cfg: DownloadConfig) -> list[Archive]:
    if cfg.year == "2026":
        raise UsageError(f"--year 2026: the data is a Hugging Face dataset; use --corpus hf:{HF_2026[cfg.track]} "
                         f"directly (or download its files with huggingface-cli)")
    archives = REGISTRY[(cfg.year, cfg.track)]
    if cfg.url:
        if len(archives) != 1 and not cfg.base_url:
            archives = archives[:1]
        a = archives[0]
        return [Archive(a.name, cfg.url, cfg.md5 or None, cfg.size or None, "--url")]
    if cfg.base_url:
        archives = [dataclasses.replace(a, url=f"{cfg.base_url.rstrip('/')}/{a.name}.zip") for a in archives]
    if cfg.md5 or cfg.size:
        archives = [dataclasses.replace(a, md5=cfg.md5 or a.md5, size=cfg.size or a.size) for a in archives]
    for a in archives:
        if not a.url:
            raise InputError(f"no known URL for {a.name} ({cfg.year}, {cfg.track}); {a.source}, then pass --url")
    return archives


class _Interrupted(Exception):
    """The connection ended before the file did (closed early, reset, or silent for ``timeout`` s)."""


def _open(url: str, have: int, timeout: float):
    """The response for ``url`` from byte ``have`` on; None when the part file is already complete."""
    plain, headers = split_userinfo(url)  # user:pass@ in the URL becomes HTTP basic auth
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(plain, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the part file is complete
            return None
        if exc.code >= 500 or exc.code == 429:  # the server's trouble, maybe passing: tried again
            raise _Interrupted(f"HTTP {exc.code} {exc.reason}") from None
        raise InputError(f"download of {redact(url)} failed: HTTP {exc.code} {exc.reason}") from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise _Interrupted(str(exc) or type(exc).__name__) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, (TimeoutError, ConnectionError)):
            raise _Interrupted(str(reason) or type(reason).__name__) from None
        raise InputError(f"download of {redact(url)} failed: {redact(str(reason))}; check the network or use --url") from None


def _fetch_once(url: str, part: Path, expected_size: int | None, timeout: float) -> None:
    """One request: append what the server sends to ``part`` (from its current size, by Range)."""
    from tqdm import tqdm

    have = part.stat().st_size if part.exists() else 0
    if expected_size and have == expected_size:
        return
    if expected_size and have > expected_size:
        part.unlink()
        have = 0
    response = _open(url, have, timeout)
    if response is None:
        return
    with response:
        if have and response.status != 206:
            have = 0  # the server ignored Range: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length else expected_size
        got = have
        with open(part, "ab" if have else "wb") as fh, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                             desc=part.name.removesuffix(".part")) as bar:
            while True:
                try:
                    block = response.read(1 << 20)
                except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                    raise _Interrupted(f"{type(exc).__name__} after {got:,} bytes") from None
                if not block:
                    break
                fh.write(block)
                got += len(block)
                bar.update(len(block))
    if total and got < total:  # urllib returns b"" when the server closes early: an interruption, kept
        raise _Interrupted(f"the connection closed at {got:,} of {total:,} bytes")


def _fetch(url: str, part: Path, expected_size: int | None, timeout: float = 60.0, retries: int = 3,
           wait: float = 1.0) -> None:
    """Download ``url`` into ``part``, resuming from its current size with an HTTP Range request.

    An interruption (early close, reset, a server silent for ``timeout`` seconds, HTTP 5xx) keeps the
    part file and is tried again ``retries`` times, ``wait`` * 1, 2, 4 ... seconds apart; after that it
    is one line saying that the same command resumes it.
    """
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, expected_size, timeout)
            return
        except _Interrupted as exc:
            reason = redact(str(exc))
            if attempt == retries:
                have = part.stat().st_size if part.exists() else 0
                raise InputError(f"download of {redact(url)} interrupted ({reason}); {have:,} bytes are kept in "
                                 f"{part}: run the same command again to resume") from None
            pause = wait * 2 ** attempt
            log.warning("download of %s interrupted (%s); resuming in %.0f s (try %d of %d)",
                        redact(url), reason, pause, attempt + 2, retries + 1)
            time.sleep(pause)


def _md5(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def verify(path: Path, archive: Archive) -> str:
    """Check size and md5 of a finished download; on mismatch delete it and raise InputError.

    A file shorter than the published size is an interrupted download, not a corrupt one: it is kept
    and the next run resumes it."""
    size = path.stat().st_size
    if archive.size and size < archive.size:
        raise InputError(f"download of {redact(archive.url)} is incomplete ({size:,} of {archive.size:,} bytes, kept in "
                         f"{path}): run the same command again to resume")
    digest = _md5(path)
    problem = None
    if archive.size and size != archive.size:
        problem = f"size {size:,} bytes, expected {archive.size:,}"
    elif archive.md5 and digest != archive.md5.lower():
        problem = f"md5 {digest}, expected {archive.md5}"
    if problem:
        path.unlink()
        raise InputError(f"download of {redact(archive.url)} is corrupt ({problem}); it was deleted and nothing was "
                         f"unpacked: run the command again")
    return digest


def _safe_members(zf: zipfile.ZipFile, zip_path: Path) -> list[zipfile.ZipInfo]:
    """The members to unpack; one line for a member that escapes the folder, is a link (zipfile would
    write the link's target path as text, or follow it) or is both a file and a folder."""
    members = []
    for info in zf.infolist():
        name = info.filename
        parts = Path(name).parts
        if name.startswith("/") or ".." in parts:
            raise InputError(f"archive member {name!r} would be written outside the target folder; refusing to unpack")
        if parts and (parts[0] == "__MACOSX" or any(p.startswith("._") for p in parts)):
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InputError(f"{zip_path}: member {name!r} is a symbolic link; an archive of text files holds none: "
                             "refusing to unpack (download it again or from the official source)")
        members.append(info)
    files = {m.filename.rstrip("/") for m in members if not m.is_dir()}
    for m in members:
        parents = Path(m.filename).parents
        clash = next((str(p) for p in list(parents)[:-1] if str(p) in files), None)
        if clash:
            raise InputError(f"{zip_path}: {clash!r} is both a file and the folder of {m.filename!r}; "
                             "refusing to unpack a malformed archive")
    return members


def unpack(zip_path: Path, archive: Archive, out_dir: Path, overwrite: bool = False) -> list[Path]:
    """Unpack into ``out_dir`` so that layout folders (``train_10M/`` ...) land directly in it.

    Wrapper folders (``babylm_data/``) are looked through; files at the top level go into
    ``out_dir/<archive.name>/``. Each folder appears whole (temp folder, then rename).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(out_dir, ".tmp-unpack-")
    try:
        try:
            with zipfile.ZipFile(zip_path) as zf:
                zf.extractall(tmp, members=_safe_members(zf, zip_path))
        except zipfile.BadZipFile:
            raise InputError(f"{zip_path}: not a zip archive; delete it and download again") from None
        top = tmp
        while True:  # look through single wrapper folders that are not layout folders
            entries = [p for p in top.iterdir() if not p.name.startswith(".")]
            if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in LAYOUT_DIRS:
                top = entries[0]
            else:
                break
        if any(p.is_file() for p in entries) or not any(p.name in LAYOUT_DIRS for p in entries):
            moves = [(top, out_dir / archive.name)]
        else:
            moves = [(p, out_dir / p.name) for p in entries if p.is_dir()]
        existing = [dst for _, dst in moves if dst.exists()]
        if existing and not overwrite:
            raise InputError(f"{existing[0]} already exists; pass --overwrite true to replace it")
        placed = []
        for src, dst in moves:
            if dst.exists():
                shutil.rmtree(dst)
            os.replace(src, dst)
            placed.append(dst)
        return placed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download_archive(archive: Archive, out_dir: str | Path, keep_archive: bool = False, overwrite: bool = False,
                     timeout: float = 60.0, retries: int = 3, wait: float = 1.0) -> list[Path]:
    """Fetch (resuming), verify and unpack one archive; return the folders it created.

    ``timeout``, ``retries``, ``wait``: see :func:`_fetch`."""
    out_dir = Path(out_dir)
    downloads = out_dir / ".downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    part = downloads / f"{archive.name}.zip.part"
    _fetch(archive.url, part, archive.size, timeout=timeout, retries=retries, wait=wait)
    digest = verify(part, archive)
    placed = unpack(part, archive, out_dir, overwrite=overwrite)
    record = {"url": archive.url, "md5": digest, "bytes": part.stat().st_size, "source": archive.source,
              "folders": [p.name for p in placed]}
    write_json(out_dir / f"{archive.name}.download.json", redact_values(record))
    if keep_archive:
        os.replace(part, downloads / f"{archive.name}.zip")
    else:
        part.unlink()
    return placed


def download(cfg: DownloadConfig) -> list[Path]:
    """Download every archive of ``cfg.year``/``cfg.track`` into ``cfg.out_dir``."""
    placed: list[Path] = []
    for archive in archives_for(cfg):
        placed += download_archive(archive, cfg.out_dir, keep_archive=cfg.keep_archive, overwrite=cfg.overwrite,
                                   timeout=cfg.timeout, retries=cfg.retries)
    return placed
