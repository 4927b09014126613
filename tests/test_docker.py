"""The image recipe: hadolint, the Dockerfile's structure, .dockerignore, entrypoint dispatch.

The image itself is built and run by docker/build-image.sh in CI (podman), not here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        buf += " " + line.rstrip("\\").strip()
        if not line.endswith("\\"):
            keyword, _, rest = buf.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
            buf = ""
    return out


def index_of(ins, keyword: str, pattern: str) -> int:
    return next(i for i, (k, a) in enumerate(ins) if k == keyword and re.search(pattern, a))


def test_hadolint_passes():
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_base_is_a_pinned_cuda_runtime_build_argument():
    ins = instructions()
    assert ins[0][0] == "ARG"
    name, _, default = ins[0][1].partition("=")
    assert name == "BASE_IMAGE"
    # an exact CUDA runtime tag: full x.y.z version and OS release, never "latest"
    assert re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-(cudnn-)?runtime-ubuntu\d+\.\d+(@sha256:[0-9a-f]{64})?", default)
    assert ins[1] == ("FROM", "${BASE_IMAGE}")
    assert sum(k == "FROM" for k, _ in ins) == 1


def test_dependency_layer_is_built_before_the_source_is_copied():
    ins = instructions()
    deps = index_of(ins, "RUN", r"INSTALL_PROJECT=0 bash docker/install\.sh")
    source = index_of(ins, "COPY", r"\s\.\s+\.$")
    assert deps < source
    # before the dependency step only the lock, pyproject and the install script are copied
    copied = [a.split()[1:-1] for k, a in ins[:deps] if k == "COPY"]
    assert sorted(f for files in copied for f in files) == ["docker/install.sh", "pyproject.toml", "requirements-dev.lock",
                                                            "requirements.lock"]
    # the same install script (not a second recipe) finishes the job after the source arrives
    assert index_of(ins, "RUN", r"bash docker/install\.sh") == deps
    assert any(k == "RUN" and "bash docker/install.sh" in a and "INSTALL_PROJECT=0" not in a for k, a in ins[source:])
    # torch pinned on its own, through install.sh's interface
    dep_run = ins[deps][1]
    for var in ("TORCH_SPEC", "TORCH_INDEX", "TORCH_DEPS", "INSTALL_DEV"):
        assert f'{var}="${{{var}}}"' in dep_run
    assert re.search(r"ARG TORCH_SPEC=torch==\d+\.\d+\.\d+\+cu\d+", "\n".join(f"{k} {a}" for k, a in ins))
    assert "python3.11" in dep_run
    # the image is a runtime environment: no development tools unless a build asks for them
    assert re.search(r"^ARG INSTALL_DEV=0$", DOCKERFILE.read_text(), re.M)


def test_non_root_user_environment_volumes_and_entrypoint():
    ins = instructions()
    users = [a for k, a in ins if k == "USER"]
    assert users and all(not re.match(r"(root|0)(:|$)", u) for u in users)
    assert index_of(ins, "USER", ".") < index_of(ins, "RUN", r"docker/install\.sh")
    env = " ".join(a for k, a in ins if k == "ENV")
    for setting in ("PYTHONHASHSEED=0", "TOKENIZERS_PARALLELISM=false", "HF_HOME=/cache/huggingface",
                    "BABYLM_OUT=/outputs", "BABYLM_SKIP_INSTALL=1"):
        assert setting in env
    volumes = next(a for k, a in ins if k == "VOLUME")
    assert all(v in volumes for v in ('"/outputs"', '"/cache"', '"/data"'))
    assert ("ENTRYPOINT", '["/opt/babylm/docker/entrypoint.sh"]') in ins
    assert ("CMD", '["reproduce.sh", "smoke"]') in ins
    # the commit reaches the image as a build argument (label + env), after the heavy layers
    commit = index_of(ins, "ARG", r"^BABYLM_COMMIT")
    assert commit > index_of(ins, "COPY", r"\s\.\s+\.$")
    assert any(k == "LABEL" and "org.opencontainers.image.revision=\"${BABYLM_COMMIT}\"" in a for k, a in ins)
    assert os.access(REPO / "docker" / "entrypoint.sh", os.X_OK)


def test_dockerignore_keeps_local_state_out():
    patterns = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    for pattern in (".git", ".venv", "data/", "runs/", "outputs/", "results/", "**/__pycache__"):
        assert pattern in patterns
    # what the image needs must not be ignored
    for needed in ("requirements.lock", "pyproject.toml", "docker", "babylm", "reproduce.sh", "tests"):
        assert needed not in patterns


def entrypoint(*args: str, quiet: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "BABYLM_QUIET": "1" if quiet else "0",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{REPO}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(REPO / "docker" / "entrypoint.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd="/")


def test_entrypoint_runs_a_command_or_hands_presets_to_reproduce():
    assert subprocess.run(["bash", "-n", str(REPO / "docker" / "entrypoint.sh")]).returncode == 0
    assert entrypoint("echo", "hello").stdout == "hello\n"
    listed = entrypoint("--list", "smoke")  # not a command: reproduce.sh gets it
    assert listed.returncode == 0 and " 9. report" in listed.stdout
    unknown = entrypoint("no-such-preset")
    assert unknown.returncode == 2 and "unknown preset 'no-such-preset'" in unknown.stderr


def test_entrypoint_prints_the_environment_summary():
    proc = entrypoint("true", quiet=False)
    assert proc.returncode == 0, proc.stderr
    assert "== babylm-kit image: commit" in proc.stderr
    assert re.search(r"requirements\.lock sha256 [0-9a-f]{16}", proc.stderr)
    assert "torch:" in proc.stderr and "gpus:" in proc.stderr  # python -m babylm env


def test_ci_scripts_parse_and_reject_unknown_checks():
    for script in ("docker/build-image.sh", "docker/install.sh"):
        assert subprocess.run(["bash", "-n", str(REPO / script)]).returncode == 0
    proc = subprocess.run(["bash", str(REPO / "docker" / "build-image.sh"), "bogus"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr == "error: unknown check 'bogus' (choose from: env tests smoke)\n"


def test_compose_file_gives_gpus_shared_memory_and_volumes():
    import yaml

    kit = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())["services"]["kit"]
    assert kit["build"]["context"] == ".." and kit["build"]["dockerfile"] == "Dockerfile"
    assert kit["ipc"] == "host"
    (device,) = kit["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    targets = sorted(v.removesuffix(":ro").rsplit(":", 1)[1] for v in kit["volumes"])
    assert targets == ["/cache", "/data", "/outputs"]
