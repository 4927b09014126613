"""A participant's path on real data, end to end: the README's first experiment (the cpu_real preset)
run as written on the real 2023 slice, from the corpus to a validated collated file and a report with
every section. Flags appended to the README's commands shrink the work to seconds (they come last, so
they win): a tiny model on one sub-corpus, a few items per subtask, a few fine-tuning examples. The
path is the same; only the amounts differ.
"""

from __future__ import annotations

import json
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
    "eval_export validate": [],  # see acceptance(): today it is checked against gold cut to the scored items
    "eval_export report": [],
}
REPORT_SECTIONS = ("Training", "BLiMP across the milestone checkpoints", "BLiMP per phenomenon: cpu",
                   "Zero-shot scores", "Other zero-shot metrics", "Fine-tuning", "Comparison with the official baselines")


def _command_name(cmd: str) -> str:
    return " ".join(cmd.split(" -m ", 1)[1].split()[:2])


def present_and_absent(eval_data: Path) -> tuple[set[str], dict[str, str]]:
    """The collated file's sections whose data the evaluation folder holds, and the others with why,
    read from the folder itself: full sets for the final model, training and validation files for
    fine-tuning. AoA's data is not part of the evaluation folder."""
    present, absent = set(), {}
    for key, (_, task, full_dir, _) in submission.SECTIONS.items():
        folder = full_dir or task
        found = any((eval_data / base / folder).is_dir() for base in ("", "full_eval"))
        if found:
            present.add(key)
        else:
            absent[key] = f"no {folder}/"
    for task in submission.GLUE_TASKS:
        files = [eval_data / "glue_filtered" / f"{task}.{split}.jsonl" for split in ("train", "valid")]
        if all(f.is_file() for f in files):
            present.add(f"glue.{task}")
        else:
            absent[f"glue.{task}"] = f"no glue_filtered/{task}.train.jsonl"
    absent["aoa"] = "no AoA data in the evaluation folder"
    return present, absent


def limited_gold(eval_data: Path, out: Path, limit: int) -> Path:
    """The minimal-pair gold cut to the first ``limit`` items of each subtask file: what was scored."""
    for folder in ("blimp_filtered", "blimp_fast", "supplement_filtered", "supplement_fast"):
        (out / folder).mkdir(parents=True)
        for path in sorted((eval_data / folder).glob("*.jsonl")):
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:limit]
            (out / folder / path.name).write_text("".join(lines), encoding="utf-8")
    (out / "glue_filtered").symlink_to(eval_data / "glue_filtered")
    return out


def acceptance(readme_validate: subprocess.CompletedProcess, collated: Path, eval_data: Path, workdir: Path,
               scored_glue: set[str]) -> None:
    """The acceptance check, in one place: the collated file is accepted by `validate` as complete for
    every task whose data is present, and what was absent is named, exactly.

    Today: `validate` has no way to check a file scored with --limit against gold (it compares every
    count: the README's command, run as written, fails on the first subtask), nor to say "complete for
    every present task; absent: X, Y". So the file is checked against the gold cut to the scored items
    (BLiMP and the supplement, full and fast; GLUE in full), with --structure_only true for the rest,
    and present/absent is checked here against collate's list of missing pieces. When `validate` gains
    both, this function becomes the README's command and its output.
    """
    assert readme_validate.returncode == 1, readme_validate.stdout
    assert "predictions, the gold data has" in readme_validate.stderr, readme_validate.stderr
    gold = limited_gold(eval_data, workdir / "scored_gold", LIMIT)
    proc = subprocess.run([sys.executable, "-m", "eval_export", "validate", str(collated), "--eval_data", str(gold),
                           "--structure_only", "true"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    checked = re.search(r"checked against gold: (.*)", proc.stdout).group(1)
    for key in ("blimp", "blimp_supplement", *(f"glue.{t}" for t in sorted(scored_glue))):
        assert f"{key} (" in checked, (key, proc.stdout)
    present, absent = present_and_absent(eval_data)
    unchecked = re.search(r"not checked against gold: (.*)", proc.stdout).group(1)
    for key in absent:  # validate names the absent sections (not yet the absent GLUE tasks of a partial file)
        assert key.startswith("glue.") or f"{key}: absent" in unchecked, (key, unchecked)
    obj = json.loads(collated.read_text())
    in_file = {k for k in obj if k in submission.SECTIONS} | {f"glue.{t}" for t in obj.get("glue", {})}
    fine_tuned_here = {f"glue.{t}" for t in scored_glue}
    # every section whose data is there is in the file (GLUE: the tasks this run fine-tuned)
    assert {k for k in present if not k.startswith("glue.")} <= in_file, present - in_file
    assert fine_tuned_here <= in_file
    # what collate lists as missing: exactly the absent sections (and the GLUE tasks not fine-tuned here);
    # the present ones are listed only for their counts, cut by --limit
    missing = [m.split(" (")[0] for m in json.loads((collated.parent / "collate_missing_causal.json").read_text())["missing"]
               if not m.startswith("fast_eval_results")]
    assert {m for m in missing if ":" not in m} == set(absent) | (present - in_file), (missing, absent)
    assert {m.split(":")[0] for m in missing if ":" in m} <= present


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
        if name != "eval_export validate":
            line += " " + " ".join(SHRINK[name])
        proc = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        if name == "eval_export validate":
            readme_validate = proc  # judged by acceptance()
            continue
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        outputs.setdefault(name, []).append(proc.stdout)

    run, results = tmp_path / "runs" / "cpu", tmp_path / "results" / "cpu"
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

    collated = results / "all_full_preds_and_fast_scores_causal_partial.json"
    acceptance(readme_validate, collated, eval_data, tmp_path, scored_glue={"rte"})

    md = (run / "report" / "report.md").read_text()
    titles = re.findall(r"^## (.+)$", md, re.M)
    assert all(t in titles for t in REPORT_SECTIONS), titles
    assert re.search(r"^\| cpu \| 1\d,\d{3} \| \d+\.\d\d \|$", md, re.M), md  # chck_1M at its own words seen
    assert "| cpu | rte | 139 |" in md
    assert "not scored" not in md
