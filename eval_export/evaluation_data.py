"""``python -m eval_export download-evals``: the 2026 evaluation data from the Hugging Face hub, checked.

The final 2026 pipeline takes its evaluation data from the hub dataset
``BabyLM-community/BabyLM-2026-Strict-Evals`` (babylm-org/babylm-eval at 3d57ddc,
``strict/scripts/download_evals.py``: ``snapshot_download(repo_id=..., repo_type="dataset", local_dir=".")``,
run from ``strict/``, so the dataset's files land as they are in the repository, ``evaluation_data/...``
beside the scripts). The kit lays the files out the same way under ``--out_dir`` (default ``.``), through
``huggingface_hub`` (its token, its endpoint, ``HF_ENDPOINT``), and adds what the official script does not do:

* every download is pinned to one commit of the dataset (the revision's head when the command starts);
* every file is checked against the checksum the hub lists for it (sha256 for files in large-file storage,
  git's blob id for the others) before it is moved into place, and a file already there with the right
  checksum is not fetched again, so an interrupted download resumes where it stopped;
* each file appears whole or not at all (downloaded beside its place, checked, then renamed), and
  ``evaluation_data.download.json`` records the repository, the commit and each file's checksum.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path
from typing import Callable

from babylm.config import option
from babylm.errors import InputError, UsageError
from babylm.files import temp_dir, write_json

REPO = "BabyLM-community/BabyLM-2026-Strict-Evals"  # strict/scripts/download_evals.py @ 3d57ddc
MANIFEST = "evaluation_data.download.json"


@dataclasses.dataclass
class DownloadEvalsConfig:
    out_dir: str = option(".", "folder to lay the dataset out in, as the official script does from strict/: its "
                               "evaluation_data/ lands here (point --eval_data, or BABYLM_EVAL_DATA, at it)")
    repo: str = option(REPO, "hub dataset holding the evaluation data (the final 2026 pipeline's)")
    revision: str = option("main", "branch, tag or commit of the dataset")
    endpoint: str = option("", "hub URL (default: HF_ENDPOINT, else huggingface_hub's default, https://huggingface.co)")
    overwrite: bool = option(False, "replace files that are there with other contents (otherwise that is an error)")

    def validate(self) -> None:
        if self.repo.count("/") != 1:
            raise UsageError(f"--repo {self.repo!r}: give a hub dataset as namespace/name")


@dataclasses.dataclass(frozen=True)
class Listed:
    path: str
    size: int
    sha256: str | None  # files in large-file storage
    blob_id: str  # git's object id (sha1 of "blob <size>\0" + bytes)

    def matches(self, file: Path) -> bool:
        """Whether ``file`` holds exactly this file's bytes (size, then checksum)."""
        if not file.is_file() or file.stat().st_size != self.size:
            return False
        return _checksum(file, self.sha256 is not None) == (self.sha256 or self.blob_id)


def _checksum(path: Path, lfs: bool) -> str:
    digest = hashlib.sha256() if lfs else hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe(path: str) -> str:
    parts = Path(path).parts
    if path.startswith("/") or ".." in parts or not parts:
        raise InputError(f"--repo: the dataset lists {path!r}, which would be written outside --out_dir; refusing it")
    return path


def download_evals(cfg: DownloadEvalsConfig, say: Callable[[str], None] = print) -> list[Path]:
    """Fetch every file of the dataset at one commit into ``cfg.out_dir``; returns the files written."""
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        raise InputError(f"--repo {cfg.repo}: HF_HUB_OFFLINE is set, so huggingface_hub sends no requests; unset it")
    api = HfApi(endpoint=cfg.endpoint or None)
    out = Path(cfg.out_dir)
    try:
        commit = api.dataset_info(cfg.repo, revision=cfg.revision).sha
        listed = [Listed(_safe(e.path), e.size, e.lfs.sha256 if e.lfs else None, e.blob_id)
                  for e in api.list_repo_tree(cfg.repo, repo_type="dataset", revision=commit, recursive=True)
                  if hasattr(e, "blob_id") and not e.path.startswith(".git")]
        say(f"{cfg.repo} at {commit[:12]}: {len(listed)} files, {sum(f.size for f in listed) / 1e6:.1f} MB")
        written = _fetch_all(api, cfg, commit, listed, out, say)
    except InputError:
        raise
    except Exception as exc:
        message = _failure(exc, cfg)
        if message is None:
            raise
        raise InputError(message) from None
    write_json(out / MANIFEST, {"repo": cfg.repo, "revision": cfg.revision, "commit": commit,
                                "files": {f.path: {"size": f.size, "sha256": f.sha256, "git_blob": f.blob_id}
                                          for f in listed}})
    return written


def _fetch_all(api, cfg: DownloadEvalsConfig, commit: str, listed: list[Listed], out: Path,
               say: Callable[[str], None]) -> list[Path]:
    clashes = [f.path for f in listed if (out / f.path).exists() and not f.matches(out / f.path)]
    if clashes and not cfg.overwrite:
        raise InputError(f"{out / clashes[0]} exists with other contents than {cfg.repo} holds; pass --overwrite true "
                         "to replace it (or choose another --out_dir)")
    written = []
    for f in listed:
        target = out / f.path
        if target.is_file() and f.matches(target):
            continue  # already there, checked: a rerun fetches only what is missing
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = temp_dir(target.parent, f".{target.name}.tmp-")
        try:
            got = Path(api.hf_hub_download(cfg.repo, f.path, repo_type="dataset", revision=commit,
                                           local_dir=staging))
            if not f.matches(got):
                raise InputError(f"{cfg.repo}/{f.path}: the download does not match the checksum the hub lists "
                                 f"({'sha256 ' + f.sha256 if f.sha256 else 'git blob ' + f.blob_id}); nothing was "
                                 "written for it: run the command again")
            os.replace(got, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        written.append(target)
        say(f"  {f.path} ({f.size:,} bytes)")
    return written


def _failure(exc: BaseException, cfg: DownloadEvalsConfig) -> str | None:
    """One line saying what failed and what to do, or None for an unexpected error."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    at = f"--repo {cfg.repo}"
    if isinstance(exc, GatedRepoError):
        return f"{at}: the dataset is gated; accept its terms on the hub, then set HF_TOKEN (or run `hf auth login`)"
    if isinstance(exc, RepositoryNotFoundError):
        return f"{at}: no such dataset, or it is private (set HF_TOKEN to a token that may read it)"
    if isinstance(exc, RevisionNotFoundError):
        return f"{at}: no revision {cfg.revision!r}"
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        return f"{at}: the hub answered {status}; run the command again (files already checked are kept)"
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or type(exc).__name__.endswith(
            ("ConnectError", "TimeoutException", "TransportError")):
        return (f"{at}: network error ({' '.join(str(exc).split())[:160]}); check the network or --endpoint, then run "
                "the command again (files already checked are kept)")
    return None
