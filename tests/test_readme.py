"""The README's step-by-step block runs as written (the two top commands are run by CI itself)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO


def readme_block(title: str) -> list[str]:
    """The commands of the first ```bash block after the heading ``title``, continuation lines joined."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index(f"## {title}"):] if title else text
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands, current = [], ""
    for line in block.splitlines():
        line = re.sub(r"\s+#.*$", "", line)  # trailing comments
        current += line.rstrip("\\").rstrip() + " "
        if not line.endswith("\\"):
            if current.strip():
                commands.append(current.strip())
            current = ""
    return commands


def test_top_commands_are_the_ci_commands():
    top = readme_block("")  # the first block of the file
    ci = (REPO / ".ci/run").read_text()
    assert top[0] == "./reproduce.sh smoke"
    assert top[1] in ci, "the README's test command must be what .ci/run runs"


@pytest.mark.slow
def test_step_by_step_block_runs(tmp_path):
    commands = readme_block("Step by step")
    assert commands[0] == "source .venv/bin/activate" and len(commands) >= 6
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for cmd in commands[1:]:
        assert cmd.startswith("python -m "), cmd
        proc = subprocess.run(cmd.replace("python", sys.executable, 1), shell=True, cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{cmd}\n{proc.stderr[-2000:]}"
    assert (tmp_path / "runs/demo/final/model.safetensors").is_file()
    summary = json.loads((tmp_path / "results/demo/main/summary.json").read_text())
    assert summary  # the scored synthetic pairs
