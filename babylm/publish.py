"""Publish a run's models as revisions: one git branch per milestone, the way the hub holds them.

The official 2025/2026 pipeline loads a submission's intermediate checkpoints as hub revisions
named ``chck_1M`` ... (``--revision_name`` of babylm-org/babylm-eval, strict/scripts/eval_zero_shot_fast_all_revisions.sh). A hub
model repository is a git repository whose branches are those revisions, so the kit writes the
same thing locally: a bare repository with a branch per ``chck_*`` folder of the run (in word
order, each branch's parent the previous milestone, so unchanged files are stored once) and
``main`` for the final model. ``python -m eval_export score --model REPO.git --revision chck_3M``
reads a branch back, and ``--remote`` pushes the branches to any git remote.

Commits are made with git plumbing from the checkpoint folders (no working tree, nothing copied)
under a fixed author and date, so the same checkpoint files give the same commit ids on any
machine. Each branch update is one atomic ref write: an interrupted publish leaves every branch
either at its old or at its new commit.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from babylm.challenge import MILESTONE
from babylm.config import option
from babylm.errors import InputError

# Fixed identity and date: commit ids then depend only on the files and the branch order.
_IDENTITY = {"GIT_AUTHOR_NAME": "babylm kit", "GIT_AUTHOR_EMAIL": "babylm-kit@localhost",
             "GIT_COMMITTER_NAME": "babylm kit", "GIT_COMMITTER_EMAIL": "babylm-kit@localhost",
             "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000"}


@dataclasses.dataclass
class PublishConfig:
    run: str = option("", "a training run folder (<save_dir>/<run_name>, holding final/ and chck_* folders)")
    repo: str = option("", "bare git repository to write the branches into; created when missing "
                           "(default <run>/<run name>.git: eval_export names results after it)")
    remote: str = option("", "after writing, push every published branch to this git remote (a path, file:// or "
                             "https URL). Files go as plain git objects: the Hugging Face hub wants files over 10 MB "
                             "in LFS, so push only small models there this way and upload larger ones per branch "
                             "with huggingface_hub's upload_folder(revision=BRANCH)")
    force: bool = option(False, "let --remote replace remote branches whose history differs")
    main: str = option("final", "folder of the run that becomes the main branch ('' : no main branch)")

    def validate(self) -> None:
        if not self.run:
            raise InputError("--run is required: the run folder to publish (<save_dir>/<run_name>)")


@dataclasses.dataclass(frozen=True)
class Published:
    branch: str
    commit: str
    changed: bool  # False when the branch already held exactly these files


def revisions(run_dir: Path, main: str = "final") -> list[tuple[str, Path]]:
    """(branch, folder) pairs of a run in publishing order: milestones by word count, then main."""
    milestones = sorted((int(m.group(1)), p) for p in run_dir.iterdir()
                        if p.is_dir() and (m := MILESTONE.match(p.name)))
    out = [(p.name, p) for _, p in milestones]
    if main:
        out.append(("main", run_dir / main))
    return out


def publish(cfg: PublishConfig) -> tuple[Path, list[Published]]:
    """Write every revision of ``cfg.run`` as a branch of ``cfg.repo`` (then push to ``cfg.remote``)."""
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
    if shutil.which("git") is None:
        raise InputError("git is not installed; install git to publish revisions")
    # absolute: git runs with the checkpoint folder as its working directory while it adds files
    repo = (Path(cfg.repo) if cfg.repo else run_dir / f"{run_dir.resolve().name}.git").resolve()
    _ensure_bare(repo)
    done, parent = [], None
    for branch, folder in pairs:
        item = _commit_folder(repo, branch, folder, parent)
        done.append(item)
        parent = item.commit
    _git(repo, "symbolic-ref", "HEAD", f"refs/heads/{'main' if cfg.main else pairs[-1][0]}")
    if cfg.remote:
        refspecs = [f"{'+' if cfg.force else ''}refs/heads/{p.branch}:refs/heads/{p.branch}" for p in done]
        _git(repo, "push", "--quiet", cfg.remote, *refspecs, what=f"push to {cfg.remote}")
    return repo, done


def _ensure_bare(repo: Path) -> None:
    if repo.exists():
        if _git(repo, "rev-parse", "--is-bare-repository", check=False) != "true":
            raise InputError(f"--repo {repo}: exists but is not a bare git repository; choose a new path")
        return
    repo.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{repo.name}.", dir=repo.parent))
    _git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", git_dir=False, cwd=tmp)
    os.replace(tmp, repo)  # a half-initialised repository never appears under the final name


def _commit_folder(repo: Path, branch: str, folder: Path, parent: str | None) -> Published:
    """Commit the files of ``folder`` as the tip of ``branch``; reuse the tip when nothing changed."""
    with tempfile.TemporaryDirectory(prefix="babylm-publish-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        # Not part of a published model: the optimizer and RNG state of a resume checkpoint
        # (final/ is hard-linked from one) is as large as the weights again and only --resume reads it.
        # (Imported here: babylm.checkpoint loads torch, which `python -m babylm --help` should not.)
        from babylm.checkpoint import STATE_FILE

        excludes = [f":(exclude){STATE_FILE}"]
        _git(repo, "--work-tree", str(folder.resolve()), "add", "--all", "--force", "--", ".", *excludes, env=env,
             cwd=folder.resolve(), what="add")
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
        detail = (res.stderr.strip().splitlines() or ["no message"])[-1]
        raise InputError(f"git {what or args[0]} failed for {repo}: {detail}")
    return res.stdout.strip() if res.returncode == 0 else ""
