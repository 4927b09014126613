"""Load a checkpoint (local folder or hub id + revision) the way the official 2025 pipeline does.

Causal models go through ``AutoModelForCausalLM``, masked ones (``mlm`` and ``mntp``) through
``AutoModelForMaskedLM``; the tokenizer through ``AutoTokenizer``. Unlike the official code,
``trust_remote_code`` stays off unless the user asks for it, and weights are read from
safetensors only. Wrong combinations fail here with one line, before any scoring starts.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from babylm.challenge import BACKENDS, MASKED_BACKENDS, default_backend, milestone_number
from babylm.errors import InputError, UsageError
from babylm.integrity import check_local_model, from_pretrained, weights_fingerprint
from babylm.models import register_kit_models


@dataclasses.dataclass
class LoadedModel:
    """A model ready for scoring, plus what the writers need to name its outputs."""

    model: Any
    tokenizer: Any
    backend: str
    name: str  # ``Path(model).stem``, as the official result tree (strict/evaluation_pipeline/sentence_zero_shot/run.py)
    revision: str
    source: str  # the folder or hub id the weights came from


def resolve_local(path: str | Path, revision: str) -> Path | None:
    """Revision ``R`` of a local path ``P`` is ``P/R`` when that folder exists, else branch (or tag)
    ``R`` when ``P`` is a git repository (``python -m babylm publish`` writes one, as the hub holds
    revisions), else ``P`` for ``main`` (or ``P/final`` when ``P`` is a kit training run whose model
    lives in ``final/``).

    Returns None when ``path`` is not a local folder (then it is treated as a hub id).
    """
    path = Path(path)
    if not path.is_dir():
        return None
    if (path / revision).is_dir():
        return path / revision
    git_dir = _git_dir(path)
    if git_dir is not None and (revision != "main" or not (path / "config.json").is_file()):
        return _git_revision(git_dir, revision)
    if revision == "main":
        # A kit training run keeps its final model in final/ beside the chck_* milestones.
        if not (path / "config.json").is_file() and (path / "final" / "config.json").is_file():
            return path / "final"
        return path
    found = sorted(p.name for p in path.iterdir() if p.is_dir() and p.name.startswith("chck_"))
    raise InputError(f"{path}: no revision folder {revision!r}; found {', '.join(found) or 'none'} "
                     f"(use --revision main for the folder itself)")


def check_name(value: str, option: str) -> None:
    """A revision (or a model name) becomes a folder of the results tree, ``<results>/<model>/<revision>``:
    it must be a name, never a path that leads elsewhere. Hub revisions are names too (a branch,
    a tag, a commit)."""
    if value in ("", ".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise UsageError(f"--{option} {value!r}: give a name, not a path (main, a milestone such as chck_10M, a branch, "
                         "a tag or a commit)")


def resolve_model_path(model: str, revision: str) -> tuple[str, str | None]:
    """Where to load ``model`` at ``revision`` from: (path or hub id, hub revision or None).

    A local folder follows :func:`resolve_local` (``chck_*`` sub-folders, branches
    of a published git repository, a run's ``final/``); a hub id keeps the revision for the hub.
    """
    local = resolve_local(Path(model).expanduser(), revision)
    if local is not None:
        return str(local), None
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise InputError(f"--model {model}: no such folder (give a local model folder or a hub id like org/name)")
    return model, revision


def milestone_order(names: list[str]) -> list[str]:
    """``chck_<N>M`` names in words-seen order (chck_2M before chck_10M); other names after them."""
    def key(name: str):
        n = milestone_number(name)
        return (0, n, name) if n is not None else (1, 0, name)
    return sorted(names, key=key)


def resolve_revisions(path_or_id: str, spec: str) -> list[str]:
    """The revisions ``--revision`` names: one name, a comma list (duplicates dropped, order kept) or
    ``all``: every ``chck_*`` milestone of a local run folder (its sub-folders) or git repository (its
    branches), in words-seen order, then ``main`` when there is one.

    Raises:
        UsageError: ``all`` for a hub id (its revisions cannot be listed offline) or an empty list.
        InputError: ``all`` finds no revision.
    """
    if spec.strip() != "all":
        names = list(dict.fromkeys(r.strip() for r in spec.split(",") if r.strip()))
        if not names:
            raise UsageError("--revision: give a revision name, a comma list of them, or all")
        return names
    path = Path(path_or_id)
    if not path.is_dir():
        raise UsageError(f"--revision all: {path_or_id} is not a local folder or git repository, whose revisions "
                         "can be listed; give a comma list of revisions")
    git_dir = _git_dir(path)
    if git_dir is not None and not (path / "config.json").is_file():
        import subprocess

        heads = subprocess.run(["git", "--git-dir", str(git_dir), "for-each-ref", "--format=%(refname:short)",
                                "refs/heads"], capture_output=True, text=True).stdout.split()
        milestones, has_main = [h for h in heads if milestone_number(h) is not None], "main" in heads
    else:
        milestones = [p.name for p in path.iterdir() if p.is_dir() and milestone_number(p.name) is not None]
        has_main = (path / "main" / "config.json").is_file() or (path / "config.json").is_file() \
            or (path / "final" / "config.json").is_file()
    found = milestone_order(milestones) + (["main"] if has_main else [])
    if not found:
        raise InputError(f"{path}: --revision all found no chck_* milestone and no main model")
    return found


def _git_dir(path: Path) -> Path | None:
    """The git directory of a bare repository or of a clone's working tree, else None."""
    if (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir():
        return path
    dot = path / ".git"
    return dot if dot.is_dir() else None


_UNPACKED: dict[tuple[str, str], Path] = {}


def _unpack_plain(archive, out: Path) -> None:
    """Unpack a streamed tar into ``out``: folders and plain files only, none outside ``out``.

    Written out rather than ``extractall(filter="data")``, which Python 3.11 has only from 3.11.4
    (Debian 12 ships 3.11.2). Files get the permissions a plain ``open()`` gives (the umask)."""
    import shutil
    import tarfile

    root = out.resolve()
    for member in archive:
        target = (root / member.name).resolve()
        if not target.is_relative_to(root) or target == root and not member.isdir():
            raise tarfile.TarError(f"{member.name!r} points outside the folder")
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
        elif member.isfile():
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.extractfile(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        else:
            raise tarfile.TarError(f"{member.name!r} is not a plain file (a link or a special file)")


def _git_revision(git_dir: Path, revision: str) -> Path:
    """The files of ``revision`` (branch, tag or commit) unpacked once per process into a temporary
    folder that is removed at exit; the repository itself is only read."""
    import atexit
    import shutil
    import signal
    import subprocess
    import tarfile
    import tempfile

    key = (str(git_dir.resolve()), revision)
    if key in _UNPACKED:
        return _UNPACKED[key]
    if shutil.which("git") is None:
        raise InputError(f"{git_dir}: a git repository, but git is not installed; install git to read its revisions")
    ref = subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
                         capture_output=True, text=True)
    if ref.returncode != 0:
        heads = subprocess.run(["git", "--git-dir", str(git_dir), "for-each-ref", "--format=%(refname:short)",
                                "refs/heads"], capture_output=True, text=True).stdout.split()
        raise InputError(f"{git_dir}: no branch {revision!r}; branches: {', '.join(heads) or 'none'}")
    out = Path(tempfile.mkdtemp(prefix="babylm-revision-"))
    atexit.register(shutil.rmtree, out, True)
    # streamed: the weights pass through a pipe, never whole in memory; git's messages go to a file,
    # so that neither pipe can fill up and block git while we wait for it
    with tempfile.TemporaryFile() as messages:
        proc = subprocess.Popen(["git", "--git-dir", str(git_dir), "archive", "--format=tar", ref.stdout.strip()],
                                stdout=subprocess.PIPE, stderr=messages)
        failed = ""
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                _unpack_plain(archive, out)
        except tarfile.TarError as exc:  # a refused member (a link, a device), a broken stream
            failed = f"{exc}; the kit reads plain files only (no links or special files)"
        except OSError as exc:  # no room for the unpacked files
            failed = f"unpacking into {out}: {exc.strerror or exc}"
        finally:
            # However the reading ended, end git: with the pipe closed, a git still writing the rest of
            # the archive gets EPIPE and exits instead of blocking forever.
            proc.stdout.close()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if failed or proc.returncode != 0:
                shutil.rmtree(out, ignore_errors=True)
        if proc.returncode not in (0, -signal.SIGPIPE):  # git's own failure (a missing object ...) says why
            messages.seek(0)
            failed = "; ".join(messages.read().decode(errors="replace").split("\n")).strip("; ") or "git archive failed"
    if failed:
        raise InputError(f"{git_dir}: cannot read revision {revision!r} ({failed})")
    _UNPACKED[key] = out
    return out


def model_name(path_or_id: str) -> str:
    """The official result-tree name of a model: ``pathlib.Path(model).stem``.

    Mirrors the 2025 pipeline, including its quirk that dots in a name are cut (``a.b`` -> ``a``).
    """
    return Path(str(path_or_id).rstrip("/")).stem


def load_model(path_or_id: str, revision: str = "main", backend: str | None = None,
               trust_remote_code: bool = False, dtype: str = "float32", device: str = "cpu") -> LoadedModel:
    """Load model + tokenizer for scoring and check that they fit together.

    Args:
        path_or_id: a local folder (possibly holding ``chck_*`` revision folders) or a hub id.
        revision: ``main`` or a revision name such as ``chck_10M``.
        backend: ``causal``, ``mlm`` or ``mntp``; None infers it from the config.
        trust_remote_code: allow code shipped with the checkpoint to run (off by default).
        dtype: ``float32``, ``bfloat16`` or ``float16`` for the weights (scores are float32 anyway).
        device: torch device string.

    Raises:
        InputError: missing folder, unloadable weights, tokenizer/model mismatch, missing mask token.
        UsageError: unknown backend.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer


    register_kit_models()  # the kit's own architectures load from the installed package, not remote code
    if backend is not None and backend not in BACKENDS:
        raise UsageError(f"--backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    local = resolve_local(path_or_id, revision)
    source = str(local) if local is not None else str(path_or_id)
    hub_kw: dict[str, Any] = {} if local is not None else {"revision": revision}
    if local is not None and not (local / "config.json").is_file():
        raise InputError(f"{local}: no config.json; expected a save_pretrained model folder")
    if local is not None:
        check_local_model(local)  # the policy of every loader: verified files, safetensors weights
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code, **hub_kw)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise InputError(f"{source}: the model needs its own code; pass --trust_remote_code true if you trust it") from None
        raise InputError(f"{source}: cannot read the model config ({_first_line(exc)})") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot load the model ({_first_line(exc)})") from None
    chosen = backend or default_backend(config)
    if chosen is None:
        raise UsageError(f"{source}: cannot tell causal from masked from the config; pass --backend causal|mlm|mntp")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code, **hub_kw)
    except (OSError, ValueError) as exc:
        raise InputError(f"{source}: cannot load the tokenizer ({_first_line(exc)})") from None
    if not getattr(tokenizer, "is_fast", False):
        raise InputError(f"{source}: the tokenizer is a slow (Python) tokenizer; scoring needs a fast tokenizer "
                         "with offset mappings (save a tokenizer.json)")
    if chosen in MASKED_BACKENDS and tokenizer.mask_token_id is None:
        raise InputError(f"{source}: backend {chosen} needs a mask token but the tokenizer has none; "
                         "use --backend causal or add a mask token")
    auto = AutoModelForCausalLM if chosen == "causal" else AutoModelForMaskedLM
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    try:
        model = from_pretrained(auto, source, trust_remote_code=trust_remote_code, dtype=torch_dtype, **hub_kw)
    except ValueError as exc:
        raise InputError(f"{source}: cannot load it as a {chosen} model ({_first_line(exc)}); "
                         "try another --backend") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot load the weights ({_first_line(exc)})") from None
    check_vocab(model, tokenizer, source)
    model.to(device).eval()
    return LoadedModel(model, tokenizer, chosen, model_name(path_or_id), revision, source)


def check_vocab(model: Any, tokenizer: Any, source: str) -> None:
    """Fail when the tokenizer can produce ids the model has no embedding for."""
    n_embeddings = model.get_input_embeddings().weight.shape[0]
    n_tokens = len(tokenizer)
    if n_tokens > n_embeddings:
        raise InputError(f"{source}: the tokenizer has {n_tokens} tokens but the model only {n_embeddings} "
                         "embeddings; the tokenizer does not belong to this model")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def describe(loaded: LoadedModel) -> dict[str, Any]:
    """A JSON-able description of what was loaded (written beside the outputs)."""
    tok = loaded.tokenizer
    hub_revision = None if Path(loaded.source).is_dir() else loaded.revision
    return {"model": loaded.source, "name": loaded.name, "revision": loaded.revision, "backend": loaded.backend,
            "weights": weights_fingerprint(loaded.source, hub_revision),  # another model of the same name is refused
            "model_class": type(loaded.model).__name__, "vocab_size": len(tok),
            "special_tokens": json.loads(json.dumps({k: getattr(tok, k, None) for k in
                                                     ("bos_token", "eos_token", "pad_token", "mask_token", "cls_token", "sep_token")}))}
