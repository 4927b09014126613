"""A wheel install (``pip install .``, not editable) keeps every feature: the presets ship inside
the package, both CLIs start, and a preset drives a real command from a folder far from the checkout.

The wheel is built from the checkout and installed into a scratch environment whose only other
path is the main environment's site-packages (for the dependencies). Path entries added through a
``.pth`` file do not have their own ``.pth`` files processed, so the main environment's editable
install of the kit is not active there: ``import babylm`` can only find the wheel's copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
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
    site = next((work / "venv" / "lib").glob("python3*/site-packages"))
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                                "--disable-pip-version-check", "--target", str(site), str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    (site / "main_env_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return work / "venv" / "bin" / "python"


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
