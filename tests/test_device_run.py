"""bench/device/: the device run's two scripts, run for real on the CPU with the real reference data.

``prepare.sh`` packs the corpus slices and evaluation data under the size limit and prints a run
call within the call's limits (and refuses, in one line, when over a limit); ``SMOKE=1 run.sh``
runs every stage with tiny shapes in real processes; a stage made to fail, or stopped by its cap,
keeps the parts the other stages wrote, and the later stages still run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from babylm.errors import InputError
from bench.device import pack
from tests.conftest import REPO


def _env(shared: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FAIL_STAGE", "STAGES", "BABYLM_EWOK_PASSWORD", "OUT",
                                                            "WORK", "PACK", "LIMIT_MIB")
           and not k.startswith("CAP_")}
    return {**env, "BABYLM_SHARED": str(shared), "PY": sys.executable, "SMOKE": "1", "WHEELS": "none",
            "OMP_NUM_THREADS": "1", **extra}


def _script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", f"bench/device/{name}"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1500)


@pytest.mark.slow
def test_prepare_then_the_smoke_run_keep_every_stage_part_when_one_fails(shared, tmp_path):
    packed = tmp_path / "pack"

    over = _script("prepare.sh", _env(shared, PACK=str(packed), LIMIT_MIB="1"))
    assert over.returncode == 2 and "run call" not in over.stdout
    assert over.stderr.strip().splitlines()[-1].endswith("over the 1 MiB limit; carry less")

    made = _script("prepare.sh", _env(shared, PACK=str(packed)))
    assert made.returncode == 0, made.stderr
    call = json.loads(made.stdout.strip().splitlines()[-1])
    assert call == {"command": f"PACK={packed} bash bench/device/run.sh", "carry": [str(packed)],
                    "timeout_s": call["timeout_s"]}
    assert len(call["command"]) < 2000 and 0 < call["timeout_s"] <= 600
    assert float(re.search(r"travels: ([\d.]+) MiB of 64 MiB", made.stdout).group(1)) < 64
    with tarfile.open(packed / "data.tar.gz") as tar:
        names = tar.getnames()
    assert sum(n.startswith("data/eval/blimp_filtered/") for n in names) == 67
    assert sum(n.startswith("data/corpus/") for n in names) == 14  # 4 + 5 training files, 5 *_dev samples

    out, work = tmp_path / "out", tmp_path / "work"
    run = _script("run.sh", _env(shared, PACK=str(packed), OUT=str(out), WORK=str(work), FAIL_STAGE="2"))
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    merged = json.loads((out / "results.json").read_text())
    assert {k: v["state"] for k, v in merged["status"].items()} == {
        "0": "done", "1": "done", "2": "failed (exit 1)", "3": "done", "4": "done"}
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "results.md", "run.log"]  # 8 files at most
    stages = merged["stages"]
    assert stages["matmul"]["facts"]["matmul_flops"] > 0

    rows = stages["throughput"]["rows"]  # written, then the stage failed on purpose: the rows stay
    assert [(r["arch"], r["engine"]) for r in rows] == [("gpt2", "torch"), ("gpt2", "hf"), ("roberta", "torch"),
                                                        ("roberta", "hf")]
    assert all(r["tokens_per_s"] > 0 and 0 < r["mfu"] and r["steps"] == 5 for r in rows)

    real = stages["real_run"]
    finals = [r for r in real["rows"] if r["kind"] == "final"]
    assert [(r["model"], r["backend"]) for r in finals] == [("kit GPT-BERT tiny", "mntp"), ("kit GPT-BERT tiny", "causal"),
                                                            ("kit GPT-2 tiny", "causal")]
    for r in finals:  # EWoK is left out without its password
        assert set(r["scores"]) == {"BLiMP", "supplement", "entity tracking fast"}
        assert all(0 <= v <= 100 for v in r["scores"].values())
        assert r["words_seen"] == finals[0]["words_seen"] >= real["facts"]["train_words"]  # one epoch, equal words
    curve = [r for r in real["rows"] if r["kind"] == "milestone"]
    assert [r["revision"] for r in curve] == ["chck_1M", "chck_2M", "chck_5M"]
    assert all(a["words_seen"] < b["words_seen"] for a, b in zip(curve, curve[1:]))
    official = work / "real_run" / "results" / "gpt_bert" / "main" / "zero_shot" / "mntp" / "blimp" / "blimp_filtered"
    assert len(json.loads((official / "predictions.json").read_text())) == 67  # one pair of each phenomenon

    speed = stages["scoring_speed"]["rows"]
    assert [r["backend"] for r in speed] == ["causal", "mlm"]
    assert all(r["sentences"] == 144 and r["check"]["other_flips"] == 0 and r["check"]["items"] == 72 for r in speed)
    md = (out / "results.md").read_text()
    assert "| 2 | throughput | failed (exit 1) |" in md and "## 4. Scoring speed" in md

    # A rerun of stage 1 under a 1 s cap: it times out, says so, and the other stages' parts stay.
    again = _script("run.sh", _env(shared, PACK=str(packed), OUT=str(tmp_path / "out2"), WORK=str(work),
                                   STAGES="1", CAP_1="1"))
    assert again.returncode == 1
    merged = json.loads((tmp_path / "out2" / "results.json").read_text())
    assert merged["status"]["1"]["state"] == "timed out" and "matmul" not in merged["stages"]
    assert merged["stages"]["real_run"]["complete"] and merged["stages"]["scoring_speed"]["complete"]


def _wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}-{version}.dist-info/METADATA", "\n".join(
            ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *[f"Requires-Dist: {r}" for r in requires]]))
    return path


def test_wheel_check_names_a_need_nobody_carries_and_refuses_two_versions(tmp_path):
    fire = _wheel(tmp_path, "fire", "0.7.1", ["termcolor"])
    datasets = _wheel(tmp_path, "datasets", "5.2.0", ["numpy>=1.17", "dill<0.4.2,>=0.3.0", "multiprocess<0.70.20",
                                                      'pytest; extra == "tests"'])
    carried = [fire, datasets, _wheel(tmp_path, "termcolor", "3.3.0", []), _wheel(tmp_path, "dill", "0.4.1", []),
               _wheel(tmp_path, "multiprocess", "0.70.19", ["dill>=0.4.1"]),
               _wheel(tmp_path, "pydantic", "2.14.4", ["pydantic-core==2.50.5", "annotated-types>=0.6",
                                                       "typing-extensions>=4.14", "typing-inspection>=0.4"]),
               _wheel(tmp_path, "pydantic_core", "2.50.5", ["typing-extensions>=4.14"]),
               _wheel(tmp_path, "annotated_types", "0.8.0", []),
               _wheel(tmp_path, "typing_inspection", "0.4.5", ["typing-extensions>=4.12"])]
    assert pack.check_wheels(carried, REPO / "pyproject.toml") == [
        "fire", "datasets", "termcolor", "dill", "multiprocess", "pydantic", "pydantic-core", "annotated-types",
        "typing-inspection"]
    with pytest.raises(InputError, match=r"not carried: multiprocess \(needed by datasets-5.2.0-py3-none-any.whl\)"):
        pack.check_wheels(carried[:4] + carried[5:], REPO / "pyproject.toml")
    older = tmp_path / "older"
    older.mkdir()
    with pytest.raises(InputError, match="two versions of fire"):
        pack.check_wheels([*carried, _wheel(older, "fire", "0.7.0", [])], REPO / "pyproject.toml")


def test_the_stage_caps_add_up_to_eight_minutes_and_more_is_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SMOKE" and not k.startswith("CAP_")}
    plan = subprocess.run(["bash", "bench/device/run.sh", "--plan"], cwd=REPO, env=env, capture_output=True, text=True)
    assert plan.returncode == 0 and plan.stdout.strip().splitlines()[-1] == "total_s=480"
    over = subprocess.run(["bash", "bench/device/run.sh"], cwd=REPO, capture_output=True, text=True,
                          env={**env, "CAP_3": "300", "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work")})
    assert over.returncode == 2 and over.stderr.strip() == ("error: the stage caps add up to 540 s, over the run's "
                                                             "480 s; lower a CAP_N")
    assert not (tmp_path / "out").exists()  # refused before anything ran
