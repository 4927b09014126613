"""The hub data sets of the zero-shot tasks, fetched when online into a cache laid out as the local folder.

The official task YAMLs (babylm-eval 3d57ddc, ``multilingual/tasks/``) read each task from a hub data set
(id, config, split; ``tasks.HUB`` and ``tasks.GROUPS``). When a task has no local data and the run is
online, the data set's files are fetched with ``huggingface_hub.snapshot_download`` (its endpoint,
``HF_ENDPOINT``, and its token) and the rows of the task's config and split are written as
``<task>.jsonl`` (a group: ``<folder>/<config>.jsonl``, one per config) under the cache folder, so the
same local reader scores them and a later offline run finds them there.

Which files hold a config's split is read from the data set card's ``configs`` (``README.md`` YAML
front matter, ``config_name`` and ``data_files`` as a pattern, a list of patterns or a list of
``{split, path}``), as ``datasets`` reads it; a card without them is taken to hold a config per folder
(``<config>/...``, MultiBLiMP's ``eng/data.tsv``) whose files are all of the split. Parquet, JSON
lines and CSV/TSV files are read.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import logging
import os
from pathlib import Path
from typing import Any

from babylm.errors import InputError
from babylm.files import atomic_dir, write_text

log = logging.getLogger(__name__)
DATA_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv", ".tsv")


def offline(flag: bool = False) -> bool:
    """Whether the hub may not be read: ``--offline`` or huggingface_hub's / datasets' offline variables."""
    truthy = {"1", "on", "yes", "true"}
    return flag or any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def default_cache() -> Path:
    return Path(os.environ.get("BABYLM_CACHE") or Path.home() / ".cache" / "babylm") / "multilingual"


def card_configs(readme: str) -> dict[str, Any]:
    """``{config_name: data_files}`` of a data set card's YAML front matter (empty without one)."""
    import yaml

    if not readme.startswith("---"):
        return {}
    header = readme.split("---", 2)[1] if readme.count("---") >= 2 else ""
    meta = yaml.safe_load(header) or {}
    return {c["config_name"]: c.get("data_files") for c in meta.get("configs") or [] if "config_name" in c}


def split_patterns(data_files: Any, split: str) -> list[str]:
    """The file patterns of ``split`` in a config's ``data_files`` (a bare pattern or list is the train split)."""
    if isinstance(data_files, str):
        return [data_files] if split == "train" else []
    patterns: list[str] = []
    for entry in data_files or []:
        if isinstance(entry, str):
            patterns += [entry] if split == "train" else []
        elif entry.get("split") == split:
            path = entry.get("path")
            patterns += [path] if isinstance(path, str) else list(path or [])
    return patterns


def read_rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ","))
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class HubData:
    """One hub data set: its card read once, configs fetched on demand."""

    def __init__(self, repo: str):
        self.repo = repo
        self._configs: dict[str, Any] | None = None

    def configs(self) -> dict[str, Any]:
        if self._configs is None:
            from huggingface_hub import hf_hub_download
            from huggingface_hub.errors import EntryNotFoundError

            try:
                readme = Path(hf_hub_download(self.repo, "README.md", repo_type="dataset")).read_text(encoding="utf-8")
            except EntryNotFoundError:
                readme = ""
            self._configs = card_configs(readme)
        return self._configs

    def rows(self, config: str | None, split: str) -> list[dict]:
        """The rows of one config's split, from the files the card names (fetched, then read)."""
        from huggingface_hub import snapshot_download

        configs = self.configs()
        name = config or ("default" if "default" in configs else next(iter(configs), None))
        if name in configs:
            patterns = split_patterns(configs[name], split)
        else:
            patterns = [f"{config}/*", f"{config}/**/*"] if config else ["*"]
        if not patterns:
            raise InputError(f"{self.repo}: the data set card names no {split!r} files for config {name!r}")
        root = Path(snapshot_download(self.repo, repo_type="dataset", allow_patterns=patterns))
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in DATA_SUFFIXES
                       and any(fnmatch.fnmatch(p.relative_to(root).as_posix(), pat) for pat in patterns))
        if not files:
            raise InputError(f"{self.repo}: no data file (.parquet, .jsonl, .json, .csv, .tsv) matches {patterns} "
                             f"for config {name!r}, split {split!r}")
        return [row for f in files for row in read_rows(f)]


def write_rows(path: Path, rows: list[dict]) -> None:
    # a column without a name (a saved table's index) is dropped: lm-eval would take doc[""] for the empty
    # context of the minimal-pair tasks
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "".join(json.dumps({k: v for k, v in r.items() if k != ""}, ensure_ascii=False, default=str)
                             + "\n" for r in rows))


def fetch(name: str, repo: str, config: str | None, split: str, cache: Path, group_folder: str | None = None) -> None:
    """Write task ``name``'s rows from hub data set ``repo`` under ``cache`` in the local layout: ``<name>.jsonl``
    (the rows of ``config``'s ``split``), or for a group ``<group_folder>/<config>.jsonl`` for every config of
    the card. InputError naming the data set and what to do when the hub cannot be read."""
    try:
        data = HubData(repo)
        if group_folder is not None:
            configs = [c for c in data.configs() if c != "default"]
            if not configs:
                raise InputError(f"{repo}: the data set card names no configs (one per {name} subtask)")
            cache.mkdir(parents=True, exist_ok=True)
            with atomic_dir(cache / group_folder, overwrite=True) as tmp:  # the whole group or nothing
                for one in configs:
                    write_rows(tmp / f"{one}.jsonl", data.rows(one, split))
        else:
            write_rows(cache / f"{name}.jsonl", data.rows(config, split))
    except InputError:
        raise
    except Exception as exc:  # network, missing or gated data set: one line with what to do
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(f"{name}: could not read the hub data set {repo} ({type(exc).__name__}: {first}); put its "
                         "data under --data, or pass --offline true to leave the hub alone") from None
    log.info("%s: read from the hub data set %s into %s", name, repo, cache)
