"""A participant's path on real data, end to end: the README's first experiment (the cpu_real preset)
run as written on the real 2023 slice, from the corpus to a validated collated file and a report with
every section. Flags appended to the README's commands shrink the work to seconds (they come last, so
they win): a tiny model on one sub-corpus, a few items per subtask, a few fine-tuning examples. The
path is the same; only the amounts differ.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eval_export import submission
from tests.conftest import REPO, shared_dir
from tests.test_readme import readme_block

SECTION = "A first experiment on real data, on a CPU"
LIMIT = 3  # items per subtask scored
# Appended to each README command, by its module and command name.
SHRINK = {
    "babylm corpus": [],
    "babylm tokenizer": ["--files", "switchboard", "--vocab_size", "1000"],
    "babylm train": ["--files", "switchboard", "--val_files", "'[]'", "--val_fraction", "0.05", "--size", "tiny",
                     "--block_size", "64", "--words", "30000", "--milestone_unit_words", "10000",
                     "--eval_batches", "2", "--progress", "false", "--tensorboard", "false"],
    "babylm test": ["--files", "babylm_test/switchboard.test", "--block_size", "64"],
    "eval_export score": ["--limit", str(LIMIT), "--progress", "false"],
    "eval_export finetune": ["--tasks", "rte", "--max_train_examples", "16", "--progress", "false"],
    "eval_export collate": [],
    "eval_export validate": ["--limit", str(LIMIT)],  # as score was run
    "eval_export report": [],
}
# "Other zero-shot metrics" is not among them: its rows are the reading fits (WUG is not in the 2026 set),
# which need more than the few rows scored here (they come out NaN, and NaN is not shown).
REPORT_SECTIONS = ("Training", "BLiMP across the milestone checkpoints", "BLiMP per phenomenon: cpu",
                   "Zero-shot scores", "Fine-tuning", "Comparison with the official baselines")


def _command_name(cmd: str) -> str:
    return " ".join(cmd.split(" -m ", 1)[1].split()[:2])


# The evaluation folders each section of the 2026 collated file is scored from (strict/scripts/eval_*.sh and
# eval_aoa.sh @ 3d57ddc; AoA_word/run.py's default folder second); the test reads the folder itself.
DATA_OF_2026 = {"blimp": ("blimp_filtered",), "blimp_supplement": ("supplement_filtered",), "ewok": ("ewok_filtered",),
                "entity_tracking_filtered": ("entity_tracking",), "comps": ("comps",),
                "global_piqa_parallel": ("global_piqa_parallel",), "global_piqa_nonparallel": ("global_piqa_nonparallel",),
                "reading": ("reading",), "aoa_surprisals": ("aoa", "cdi_childes"), "aoa": ("aoa", "cdi_childes")}


def present_and_absent(eval_data: Path) -> tuple[set[str], set[str]]:
    """The 2026 collated file's sections whose data the evaluation folder holds, and the others: full sets
    for the final model, training and validation files for fine-tuning."""
    present, absent = set(), set()
    for key, folders in DATA_OF_2026.items():
        found = any((eval_data / base / folder).is_dir() for base in ("", "full_eval") for folder in folders)
        (present if found else absent).add(key)
    for task in submission.GLUE_TASKS:
        files = [eval_data / "glue_filtered" / f"{task}.{split}.jsonl" for split in ("train", "valid")]
        (present if all(f.is_file() for f in files) else absent).add(f"glue.{task}")
    return present, absent


def acceptance(readme_validate: subprocess.CompletedProcess, eval_data: Path, scored_glue: set[str]) -> None:
    """The README's `validate`, run as written (with --limit, as `score` was): every section the file holds
    checked against gold, and one verdict line naming exactly the tasks whose data was absent and, since
    this run fine-tunes only ``scored_glue``, the GLUE tasks it left out although their data is there."""
    assert readme_validate.returncode == 0, readme_validate.stderr
    out = readme_validate.stdout
    present, absent = present_and_absent(eval_data)
    unscored = {k for k in present if k.startswith("glue.")} - {f"glue.{t}" for t in scored_glue}
    checked = re.search(r"checked against gold: (.*)", out).group(1)
    for key in sorted(present - unscored - {"aoa", "aoa_surprisals"}):
        assert f"{key} (" in checked, (key, out)
    verdict = out.strip().splitlines()[-1]
    named_absent = dict(re.findall(r"([\w.]+) \(([^)]*)\)", verdict.split("; absent: ", 1)[1]))
    assert set(named_absent) == absent, (verdict, absent)
    assert all(why.startswith("no ") for why in named_absent.values()), verdict
    if unscored:
        left_out = verdict.split("INCOMPLETE: not in the file although their data is present: ", 1)[1].split(";")[0]
        assert set(left_out.split(", ")) == unscored, (verdict, unscored)
    else:
        assert verdict.startswith("complete for every task whose data is present; absent: "), verdict


@pytest.mark.slow
def test_readme_first_experiment_on_the_real_2023_slice(tmp_path):
    shared = shared_dir()
    data, eval_data = shared / "data" / "babylm" / "2023", shared / "data" / "eval"
    commands = readme_block(SECTION)
    assert [_command_name(c) for c in commands] == ["babylm corpus", "babylm tokenizer", "babylm train", "babylm test",
                                                    "eval_export score", "eval_export score", "eval_export finetune",
                                                    "eval_export collate", "eval_export validate", "eval_export report"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "DATA": str(data), "EVAL": str(eval_data),
           "MPLCONFIGDIR": str(tmp_path / "mpl"), "OMP_NUM_THREADS": "1"}  # tiny models: one thread is as fast
    env.pop("BABYLM_EWOK_PASSWORD", None)  # the same run on every machine: EWoK-fast is skipped as absent
    outputs = {}
    for cmd in commands:
        name = _command_name(cmd)
        line = cmd.replace("python", sys.executable, 1)
        line += " " + " ".join(SHRINK[name])
        proc = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        if name == "eval_export validate":
            readme_validate = proc  # judged by acceptance()
            continue
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        outputs.setdefault(name, []).append(proc.stdout)

    run = tmp_path / "runs" / "cpu"
    # the preset, as shrunk: milestones on the way, the real files, no local path in what is published
    assert sorted(p.name for p in run.glob("chck_*")) == ["chck_1M", "chck_2M", "chck_3M"]
    manifest = (run / "final" / "manifest.json").read_text()
    assert str(shared) not in manifest and str(tmp_path) not in manifest
    assert "babylm_10M/switchboard.train" in manifest
    # score names what it skipped for want of data, on the full sets and on the fast ones
    main_out, milestone_out = outputs["eval_export score"]
    for skipped in ("skip ewok: no ewok_filtered/", "skip comps: no comps/"):  # the 2026 set: no WUG
        assert skipped in main_out, main_out
    assert "skip ewok: ewok_fast.zip is encrypted" in milestone_out

    acceptance(readme_validate, eval_data, scored_glue={"rte"})

    md = (run / "report" / "report.md").read_text()
    titles = re.findall(r"^## (.+)$", md, re.M)
    assert all(t in titles for t in REPORT_SECTIONS), titles
    assert re.search(r"^\| cpu \| 1\d,\d{3} \| \d+\.\d\d \|$", md, re.M), md  # chck_1M at its own words seen
    assert "| cpu | rte | 139 |" in md
    assert "not scored" not in md
