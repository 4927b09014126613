"""Publish a run's models as revisions: one branch per milestone, the way the hub holds them.

The official 2025/2026 pipeline loads a submission's intermediate checkpoints as hub revisions
named ``chck_1M`` ... (``--revision_name``, babylm-org/babylm-eval
strict/scripts/eval_zero_shot_fast_all_revisions.sh). A hub model repository is a git repository
whose branches are those revisions, so the kit writes the same thing locally: a bare repository
with a branch per ``chck_*`` folder of the run (in word order, each branch's parent the previous
milestone, so unchanged files are stored once) and ``main`` for the final model.
``python -m eval_export score --model REPO.git --revision chck_3M`` reads a branch back, and
``--remote`` pushes the branches to a plain git remote.

Commits are made with git plumbing from the checkpoint folders (no working tree, nothing copied)
under a fixed author and date, so the same checkpoint files give the same commit ids on any
machine. Each branch update is one atomic ref write: an interrupted publish leaves every branch
either at its old or at its new commit.

``--hub_repo namespace/name`` then uploads the same folders to a Hugging Face hub model repository
through ``huggingface_hub``, because the hub keeps weights in its large-file storage (xet, or git
LFS) and refuses them as plain git objects. The repository is created when asked (the hub starts
it with a ``main`` holding only ``.gitattributes``); each milestone branch is created from the
commit just uploaded to the previous one (the first from ``main``) and receives its folder in one
``upload_folder`` commit (the optimizer state left out, as above; files the folder no longer has
deleted, except a model card written on the hub); ``main`` receives the final model last. The
library sends only what the hub does not hold yet, and a branch that already holds the folder's
files gets no commit and is reported unchanged, so an interrupted upload is resumed by running the
command again. The token comes from the library's usual places (``HF_TOKEN``, ``hf auth login``),
never from the command line, and is never printed; neither is a password in a ``--remote`` URL,
nor in git's messages about it (``https://user:TOKEN@host/...`` is shown as
``https://user:***@host/...``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

from babylm.challenge import MILESTONE
from babylm.config import option
from babylm.credentials import redact
from babylm.errors import InputError
from babylm.files import FolderLock, temp_dir
from babylm.integrity import CHECKSUMS, published_checksums, verify
from babylm.model_card import card_text

# The hub's repository ids: a namespace and a name of letters, digits and - _ . (huggingface_hub's
# validate_repo_id allows the same characters; a namespace is required so the target is never guessed).
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Fixed identity and date: commit ids then depend only on the files and the branch order.
_IDENTITY = {"GIT_AUTHOR_NAME": "babylm kit", "GIT_AUTHOR_EMAIL": "babylm-kit@localhost",
             "GIT_COMMITTER_NAME": "babylm kit", "GIT_COMMITTER_EMAIL": "babylm-kit@localhost",
             "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000"}


@dataclasses.dataclass
class PublishConfig:
    run: str = option("", "a training run folder (<save_dir>/<run_name>, holding final/ and chck_* folders)")
    repo: str = option("", "bare git repository to write the branches into; created when missing "
                           "(default <run>/<run name>.git: eval_export names results after it)")
    remote: str = option("", "after writing, push every branch to this plain git remote (a path, file:// or https "
                             "URL; credentials in the URL, never printed, or from a git credential helper; no "
                             "prompt). Files go as plain git objects, which the Hugging Face hub refuses for "
                             "weights: use --hub_repo there")
    force: bool = option(False, "let --remote replace remote branches whose history differs")
    main: str = option("final", "folder of the run that becomes the main branch ('' : no main branch)")
    hub_repo: str = option("", "also upload every branch to this Hugging Face hub model repository (namespace/name) "
                               "through huggingface_hub, weights in the hub's large-file storage; milestones first, "
                               "main last; a branch already holding its folder's files gets no commit. Token: HF_TOKEN "
                               "or `hf auth login` (write access)")
    hub_endpoint: str = option("", "hub URL for --hub_repo (default: HF_ENDPOINT, else huggingface_hub's default, "
                                   "https://huggingface.co)")
    private: bool = option(False, "create the --hub_repo repository private (an existing one keeps its visibility)")
    create: bool = option(True, "create the --hub_repo repository when it does not exist (false: it must exist)")
    model_card: bool = option(True, "write a model card (README.md: licence metadata, recipe, words seen, milestones, "
                                    "scores found under --results) into every branch, as the 2026 leaderboard asks; "
                                    "a README.md in a checkpoint folder is published instead")
    license: str = option("apache-2.0", "licence named in the model card's metadata (a hub licence id)")
    results: str = option("auto", "results root of `eval_export score` whose summaries the card shows "
                                  "(<results>/<run name>/<revision>/summary.json); auto: <run>/results, else the "
                                  "results/ beside the run's parent folder (reproduce.sh's layout); '' for none")

    def validate(self) -> None:
        if not self.run:
            raise InputError("--run is required: the run folder to publish (<save_dir>/<run_name>)")
        if self.hub_repo and not _REPO_ID.match(self.hub_repo):
            raise InputError(f"--hub_repo {self.hub_repo!r}: give a hub model repository as namespace/name "
                             "(e.g. my-user/babylm-gpt2), not a URL")
        if self.hub_endpoint and not re.match(r"^https?://[^/\s]+", self.hub_endpoint):
            raise InputError(f"--hub_endpoint {redact(self.hub_endpoint)!r}: give an http(s) URL, "
                             "e.g. https://huggingface.co")


@dataclasses.dataclass(frozen=True)
class Published:
    branch: str
    commit: str
    changed: bool  # False when the branch already held exactly these files


@dataclasses.dataclass(frozen=True)
class Publication:
    repo: Path  # the local bare repository
    branches: list[Published]  # its branches, in publishing order
    hub: list[Published]  # the same branches on the hub, with the hub's commit ids ([] without --hub_repo)


def revisions(run_dir: Path, main: str = "final") -> list[tuple[str, Path]]:
    """(branch, folder) pairs of a run in publishing order: milestones by word count, then main."""
    milestones = sorted((int(m.group(1)), p) for p in run_dir.iterdir()
                        if p.is_dir() and (m := MILESTONE.match(p.name)))
    out = [(p.name, p) for _, p in milestones]
    if main:
        out.append(("main", run_dir / main))
    return out


def _silent(line: str) -> None:
    pass


def publish(cfg: PublishConfig, say: Callable[[str], None] = _silent) -> Publication:
    """Write every revision of ``cfg.run`` as a branch of ``cfg.repo``, then push them to ``cfg.remote``
    and upload them to ``cfg.hub_repo``; ``say`` receives the progress, one line at a time.

    The repository is held by this process meanwhile: a second ``publish`` into it is refused."""
    pairs = _revisions_to_publish(cfg)
    with FolderLock(_repo_path(cfg), "--repo"):
        return _publish(cfg, pairs, say)


def _repo_path(cfg: PublishConfig) -> Path:
    # absolute: git runs with the checkpoint folder as its working directory while it adds files
    run_dir = Path(cfg.run)
    return (Path(cfg.repo) if cfg.repo else run_dir / f"{run_dir.resolve().name}.git").resolve()


def _revisions_to_publish(cfg: PublishConfig) -> list[tuple[str, Path]]:
    """The run's (branch, folder) pairs, each checked to be a saved model, before anything is written."""
    run_dir = Path(cfg.run)
    if not run_dir.is_dir():
        raise InputError(f"--run {run_dir}: no such folder; give a training run (<save_dir>/<run_name>)")
    if cfg.main and not (run_dir / cfg.main).is_dir():
        raise InputError(f"--run {run_dir}: no {cfg.main}/ folder (an unfinished run? pass --main '' to publish "
                         "only the milestones, or --main best)")
    pairs = revisions(run_dir, cfg.main)
    if not pairs:
        raise InputError(f"--run {run_dir}: no chck_* milestone folders and no main folder to publish")
    for _, folder in pairs:  # check everything before writing anything
        if not (folder / "config.json").is_file() or not any(folder.glob("*.safetensors")):
            raise InputError(f"{folder}: not a saved model (needs config.json and *.safetensors)")
        verify(folder)  # no link, no file changed since it was saved
    if shutil.which("git") is None:
        raise InputError("git is not installed; install git to publish revisions")
    return pairs


def _publish(cfg: PublishConfig, pairs: list[tuple[str, Path]], say: Callable[[str], None]) -> Publication:
    hub = _Hub(cfg) if cfg.hub_repo else None  # no token: stop before anything is written
    repo = _repo_path(cfg)
    _ensure_bare(repo)
    written = _written_files(cfg, pairs, repo)
    done, parent = [], None
    for branch, folder in pairs:
        item = _commit_folder(repo, branch, folder, parent, written.get(branch))
        say(f"{branch:>10}  {item.commit[:12]}  {'written' if item.changed else 'unchanged'}")
        done.append(item)
        parent = item.commit
    _git(repo, "symbolic-ref", "HEAD", f"refs/heads/{'main' if cfg.main else pairs[-1][0]}")
    if cfg.remote:
        refspecs = [f"{'+' if cfg.force else ''}refs/heads/{p.branch}:refs/heads/{p.branch}" for p in done]
        # no password prompt: a publish often runs unattended, and a prompt would wait forever
        _git(repo, "push", "--quiet", cfg.remote, *refspecs, env={"GIT_TERMINAL_PROMPT": "0"},
             what=f"push to {cfg.remote}")
    return Publication(repo, done, hub.upload(pairs, say, written) if hub else [])


def _written_files(cfg: PublishConfig, pairs: list[tuple[str, Path]], repo: Path) -> dict[str, dict[str, str]]:
    """branch -> {file name: text} the kit writes into that branch in place of (or beside) the folder's files:
    the model card (README.md; none for a folder that holds its own), a portable run_config.json and the
    checksums.json of what the branch holds."""
    from babylm.checkpoint import STATE_FILE  # here: it imports torch, which --help does not need

    written = _cards_and_configs(cfg, pairs, repo)
    for branch, folder in pairs:
        record = published_checksums(folder, written[branch], left_out={STATE_FILE})
        if record is not None:
            written[branch][CHECKSUMS] = record
    return written


def _cards_and_configs(cfg: PublishConfig, pairs: list[tuple[str, Path]], repo: Path) -> dict[str, dict[str, str]]:
    written: dict[str, dict[str, str]] = {branch: {} for branch, _ in pairs}
    for branch, folder in pairs:
        portable = portable_run_config(folder / "run_config.json")
        if portable is not None:
            written[branch]["run_config.json"] = portable
    if not cfg.model_card:
        return written
    run_dir = Path(cfg.run)
    results = Path(cfg.results) if cfg.results not in ("auto", "") else None
    if cfg.results == "auto":
        results = next((p for p in (run_dir / "results", run_dir.parent.parent / "results") if p.is_dir()), None)
    scored = results / repo.name.removesuffix(".git") if results else None  # eval_export names results after the repo
    for branch, folder in pairs:
        if not (folder / "README.md").is_file():
            written[branch]["README.md"] = card_text(branch, folder, run_dir.resolve().name, pairs, scored, cfg.license)
    return written


def _portable(value: Any) -> Any:
    """A local absolute path as ``<local>/<its last part>``: where the user keeps files is not the recipe."""
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and (value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", value)):
        return f"<local>/{Path(value.rstrip('/')).name}"
    return value


def portable_run_config(path: Path) -> str | None:
    """The run_config.json a published revision holds: the options as given, but an absolute local path (a
    corpus under the user's home, a tokenizer in /tmp) reduced to its last part, since every revision goes to
    the hub. The run's own copy keeps them (``--resume`` compares them). None: nothing to change."""
    if not path.is_file():
        return None
    meta = json.loads(path.read_text(encoding="utf-8"))
    config = meta.get("config")
    if not isinstance(config, dict):
        return None
    portable = {k: _portable(v) for k, v in config.items()}
    if portable == config:
        return None
    return json.dumps({**meta, "config": portable}, indent=2) + "\n"


class _Hub:
    """One hub repository reached through huggingface_hub with the user's token."""

    def __init__(self, cfg: PublishConfig):
        # Imported here: the local branches (and `--help`) do not need huggingface_hub.
        import huggingface_hub
        from huggingface_hub import constants

        self.repo_id = cfg.hub_repo
        self.create, self.private = cfg.create, cfg.private
        if constants.HF_HUB_OFFLINE:
            raise InputError(f"--hub_repo {self.repo_id}: HF_HUB_OFFLINE is set, so huggingface_hub sends no requests; "
                             "unset it to upload")
        try:
            # HF_TOKEN, then the token `hf auth login` saved (or a CI's OIDC exchange when HF_OIDC_RESOURCE is set)
            self.token = huggingface_hub.get_token()
        except Exception as exc:  # only the OIDC exchange raises
            raise InputError(f"--hub_repo {self.repo_id}: could not get a hub token: {_one_line(exc)}") from None
        if not self.token:
            raise InputError(f"--hub_repo {self.repo_id}: no hub token; set HF_TOKEN to a token with write access "
                             "or run `hf auth login`")
        self.api = huggingface_hub.HfApi(endpoint=cfg.hub_endpoint or None, token=self.token)
        self.endpoint = redact(self.api.endpoint.rstrip("/"))

    def upload(self, pairs: list[tuple[str, Path]], say: Callable[[str], None],
               written: dict[str, dict[str, str]] | None = None) -> list[Published]:
        where = "creating the repository"
        say(f"hub: {self.endpoint}/{self.repo_id}")
        try:
            if self.create:
                self.api.create_repo(self.repo_id, private=self.private, exist_ok=True)
            where = "reading its branches"
            heads = self._heads()
            # a new repository's main holds the hub's .gitattributes (which routes weights to large-file storage)
            start = heads.get("main")
            done = []
            for branch, folder in pairs:
                where = f"branch {branch}"
                if branch not in heads:
                    # from the previous milestone, like the local branches: its unchanged files are not sent again
                    self.api.create_branch(self.repo_id, branch=branch, revision=start, exist_ok=True)
                    heads = self._heads() if start is None else {**heads, branch: start}
                item = self._upload_folder(branch, folder, heads[branch], say, (written or {}).get(branch))
                heads[branch] = item.commit
                if branch != "main":
                    start = item.commit
                done.append(item)
            return done
        except Exception as exc:
            message = self._failure(exc, where)
            if message is None:
                raise
            raise InputError(redact(message, self.token)) from None

    def _heads(self) -> dict[str, str]:
        return {ref.name: ref.target_commit for ref in self.api.list_repo_refs(self.repo_id).branches}

    def _upload_folder(self, branch: str, folder: Path, head: str, say: Callable[[str], None],
                       written: dict[str, str] | None = None) -> Published:
        from babylm.checkpoint import STATE_FILE  # imports torch: kept off the --help path

        files = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
        files.pop(STATE_FILE, None)
        say(f"{branch:>10}  {folder.name}/: {len(files)} files, {sum(files.values()) / 1e6:.1f} MB ...")
        # The branch mirrors the folder: what it holds beyond the folder's files goes, except the hub's
        # .gitattributes (upload_folder would keep it anyway) and a model card written on the hub.
        extra = [name for name in self.api.list_repo_files(self.repo_id, revision=branch)
                 if name not in files and name not in (".gitattributes", "README.md")]
        with _NoEmptyCommitWarning(), _with_written(folder, written) as source:
            info = self.api.upload_folder(
                repo_id=self.repo_id, folder_path=source, revision=branch, commit_message=_message(branch, folder),
                ignore_patterns=[STATE_FILE], delete_patterns=[glob.escape(name) for name in extra] or None,
                parent_commit=head)  # refused if the branch moved meanwhile, instead of overwriting someone's commit
        changed = info.oid != head  # no commit: the hub held these files already
        say(f"{branch:>10}  {info.oid[:12]}  {'uploaded' if changed else 'unchanged'}")
        return Published(branch, info.oid, changed)

    def _failure(self, exc: BaseException, where: str) -> str | None:
        """One line saying what failed and what to do, or None for an unexpected error (a bug: keep its traceback)."""
        from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError

        if isinstance(exc, RuntimeError) and exc.__cause__ is not None:
            exc = exc.__cause__  # the LFS transfer wraps the failure of each file in a RuntimeError
        at = f"hub {self.endpoint}/{self.repo_id}, {where}"
        again = "then run the command again (branches already uploaded are skipped)"
        if isinstance(exc, HfHubHTTPError):
            status = exc.response.status_code if exc.response is not None else None
            said = f": {_one_line(exc.server_message)}" if exc.server_message else ""
            if status == 401:
                return (f"{at}: the token was refused (401{said}); set HF_TOKEN to a valid token or run "
                        "`hf auth login`")
            if status == 403:
                return (f"{at}: the token may not write to {self.repo_id} (403{said}); use a token with write access "
                        f"to {self.repo_id.split('/')[0]}")
            if status == 404 and isinstance(exc, RevisionNotFoundError):
                return f"{at}: the branch is gone from the hub (404{said}); {again}"
            if status == 404:
                return (f"{at}: no such repository (404{said}); create it on the hub or pass --create true, and "
                        "check --hub_repo")
            if status == 412:
                return f"{at}: the branch changed on the hub during the upload (412{said}); {again}"
            return f"{at}: the hub answered {status}{said}; {again}"
        if isinstance(exc, _network_errors()):
            # hf_xet (installed with huggingface_hub) sends large files to the hub's xet storage servers
            xet = (", on the way to the hub's xet storage (HF_HUB_DISABLE_XET=1 sends files through git LFS instead)"
                   if "xet" in str(exc).lower() else "")
            return f"{at}: network error{xet}: {_one_line(exc)}; check the network and --hub_endpoint, {again}"
        if isinstance(exc, (OSError, ValueError)):  # a local file that vanished; a response the library refused
            return f"{at}: {_one_line(exc)}; {again}"
        return None


@contextlib.contextmanager
def _with_written(folder: Path, written: dict[str, str] | None):
    """``folder``, or (with files to write) a temporary folder of links to its files, the written ones in
    place of the folder's own."""
    if not written:
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="babylm-publish-") as tmp:
        for path in folder.resolve().rglob("*"):
            rel = path.relative_to(folder.resolve())
            if path.is_file() and rel.as_posix() not in written:
                link = Path(tmp) / rel
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(path)
        for name, text in written.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        yield Path(tmp)


def _network_errors() -> tuple[type[BaseException], ...]:
    """Connection failures as huggingface_hub raises them: its HTTP client's transport errors (httpx2 from
    huggingface_hub 2, httpx before), and hf_xet's ConnectionError."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for name in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


class _NoEmptyCommitWarning(logging.Filter):
    """Drop huggingface_hub's warning about a skipped empty commit while uploading: the kit says 'unchanged'."""

    _LOGGERS = ("huggingface_hub.hf_api", "huggingface_hub._upload_pipeline")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No files have been modified since last commit")

    def __enter__(self) -> None:
        for name in self._LOGGERS:
            logging.getLogger(name).addFilter(self)

    def __exit__(self, *exc) -> None:
        for name in self._LOGGERS:
            logging.getLogger(name).removeFilter(self)


def _one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _ensure_bare(repo: Path) -> None:
    if repo.exists():
        if _git(repo, "rev-parse", "--is-bare-repository", check=False) != "true":
            raise InputError(f"--repo {repo}: exists but is not a bare git repository; choose a new path")
        return
    repo.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(repo.parent, f".{repo.name}.")
    _git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", git_dir=False, cwd=tmp)
    os.replace(tmp, repo)  # a half-initialised repository never appears under the final name


def _commit_folder(repo: Path, branch: str, folder: Path, parent: str | None,
                   written: dict[str, str] | None = None) -> Published:
    """Commit the files of ``folder`` (``written``: {name: text} in place of or beside them) as the tip of
    ``branch``; reuse the tip when nothing changed."""
    with tempfile.TemporaryDirectory(prefix="babylm-publish-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        # Not part of a published model: the optimizer and RNG state of a resume checkpoint
        # (final/ is hard-linked from one) is as large as the weights again and only --resume reads it.
        # (Imported here: babylm.checkpoint loads torch, which `python -m babylm --help` should not.)
        from babylm.checkpoint import STATE_FILE

        excludes = [f":(exclude){STATE_FILE}"]
        _git(repo, "--work-tree", str(folder.resolve()), "add", "--all", "--force", "--", ".", *excludes, env=env,
             cwd=folder.resolve(), what="add")
        for name, text in (written or {}).items():  # into the commit only: the checkpoint folder is not written to
            (Path(tmp) / "written").write_text(text, encoding="utf-8")
            blob = _git(repo, "hash-object", "-w", str(Path(tmp) / "written"))
            _git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=env)
        tree = _git(repo, "write-tree", env=env)
    current = _git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False)
    if current and _git(repo, "rev-parse", f"{current}^{{tree}}") == tree and \
            _git(repo, "rev-parse", "--verify", "--quiet", f"{current}^", check=False) == (parent or ""):
        return Published(branch, current, changed=False)
    args = ["commit-tree", tree, "-m", _message(branch, folder)]
    if parent:
        args += ["-p", parent]
    commit = _git(repo, *args, env=_IDENTITY)
    _git(repo, "update-ref", f"refs/heads/{branch}", commit)
    return Published(branch, commit, changed=True)


def _message(branch: str, folder: Path) -> str:
    """``chck_3M: 3,000,000 words seen at step 120`` from the checkpoint's run_config.json."""
    try:
        progress = json.loads((folder / "run_config.json").read_text(encoding="utf-8"))["progress"]
        return f"{branch}: {progress['words_seen']:,} words seen at step {progress['step']} ({folder.name}/)"
    except (OSError, KeyError, TypeError, ValueError):
        return f"{branch}: {folder.name}/"


def _git(repo: Path, *args: str, env: dict[str, str] | None = None, check: bool = True, git_dir: bool = True,
         cwd: Path | None = None, what: str = "") -> str:
    # -c options: a user's commit signing or hooks must not change or block what is published
    cmd = ["git", "-c", "commit.gpgSign=false", "-c", "core.hooksPath=/dev/null"]
    if git_dir:
        cmd += ["--git-dir", str(repo)]
    res = subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=cwd,
                         env={**os.environ, **(env or {})})
    if res.returncode != 0 and check:
        # git's own messages may repeat a remote URL with its password (a dumb-http push does): redacted too
        raise InputError(redact(f"git {what or args[0]} failed for {repo}: {_git_failure(res.stderr)}"))
    return res.stdout.strip() if res.returncode == 0 else ""


def _git_failure(stderr: str) -> str:
    """git's error lines (fatal:, error:, a push's '! [rejected]' lines) on one line; hints and progress left out."""
    lines = [" ".join(line.split()) for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("fatal:", "error:", "! "))]
    detail = "; ".join(errors[:4]) + ("; ..." if len(errors) > 4 else "") if errors else (lines or ["no message"])[-1]
    if any("[rejected]" in line for line in errors):
        detail += " (the remote branches hold another history: --force true replaces them)"
    return detail
