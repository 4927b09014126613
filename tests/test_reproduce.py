"""reproduce.sh: listing, argument errors, strict mode, idempotent stages, dry runs, a real stage."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "reproduce.sh"
SMOKE_STEPS = ["corpus", "tokenizer", "train", "test", "export", "finetune", "collate", "validate", "report"]
SEED_STEPS = ["corpus", "tokenizer", "gpt", "gpt-test", "gpt-easy-hard", "gpt-hard-easy", "bert", "bert-test",
              "bert-easy-hard", "bert-hard-easy", "best", "best-test", "export", "finetune", "collate",
              "validate", "report"]


def repro(*args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    # the caller's environment minus the reproduce.sh settings it might carry, plus the test's own
    full = {k: v for k, v in os.environ.items() if not k.startswith("BABYLM_") or k == "BABYLM_SHARED"}
    full.update({"BABYLM_SKIP_INSTALL": "1", "BABYLM_PYTHON": sys.executable, **(env or {})})
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=full)


def bash(snippet: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a snippet after sourcing reproduce.sh (which defines its functions and runs nothing)."""
    return subprocess.run(["bash", "-c", f"source {SCRIPT}; {snippet}"], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_syntax_strict_mode_and_executable():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    lines = SCRIPT.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    # strict mode before the first command
    first_code = next(line for line in lines[1:] if line.strip() and not line.startswith("#"))
    assert first_code == "set -euo pipefail"
    assert SCRIPT.stat().st_mode & stat.S_IXUSR


def _listed_steps(text: str, preset: str) -> list[str]:
    block = text.split(f"\n{preset} ", 1)[1].split("\n\n", 1)[0]
    return [m.group(2) for m in re.finditer(r"^\s+(\d+)\. (\S+)", block, re.M)]


def test_list_shows_every_preset_with_numbered_steps():
    proc = repro("--list")
    assert proc.returncode == 0, proc.stderr
    for preset in ("smoke", "strict-small", "strict", "gpt-bert-strict-small", "gpt-bert-strict", "seed", "cpu-real"):
        assert re.search(rf"^{preset}\s+\S", proc.stdout, re.M), preset
    assert _listed_steps(proc.stdout, "smoke") == SMOKE_STEPS
    assert _listed_steps(proc.stdout, "strict") == SMOKE_STEPS
    assert _listed_steps(proc.stdout, "gpt-bert-strict-small") == SMOKE_STEPS
    assert _listed_steps(proc.stdout, "seed") == SEED_STEPS
    assert _listed_steps(proc.stdout, "cpu-real") == SMOKE_STEPS
    numbers = [int(n) for n in re.findall(r"^\s+(\d+)\. ", proc.stdout.split("\nseed ", 1)[1].split("\n\n", 1)[0], re.M)]
    assert numbers == list(range(1, len(SEED_STEPS) + 1))
    only_smoke = repro("--list", "smoke").stdout
    assert "seed " not in only_smoke and _listed_steps(only_smoke, "smoke") == SMOKE_STEPS


@pytest.mark.parametrize("args, words", [
    (("nope",), ["unknown preset 'nope'", "smoke strict-small strict gpt-bert-strict-small gpt-bert-strict seed"]),
    (("--only", "nope", "smoke"), ["unknown step 'nope'", "corpus tokenizer"]),
    (("--from", "gpt", "smoke"), ["unknown step 'gpt' for preset smoke"]),
    (("--bogus", "smoke"), ["unknown option '--bogus'"]),
    (("smoke", "strict"), ["one preset at a time"]),
    (("--only",), ["--only needs a step name"]),
    ((), ["name a preset"]),
])
def test_bad_arguments_give_one_line_and_exit_2(args, words):
    proc = repro(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    for word in words:
        assert word in proc.stderr


def _commands(stdout: str) -> list[str]:
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


def _banners(stdout: str) -> list[str]:
    return re.findall(r"^==== \[\d+/\d+\] (\S+):", stdout, re.M)


def test_dry_run_smoke_prints_every_stage_in_order(tmp_path):
    proc = repro("--dry-run", "smoke", env={"BABYLM_OUT": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert _banners(proc.stdout) == SMOKE_STEPS
    cmds = _commands(proc.stdout)
    modules = [c.split(" -m ", 1)[1].split()[:2] for c in cmds if " -m " in c]
    assert modules == [["babylm", "generate"], ["babylm", "corpus"], ["babylm", "tokenizer"],
                       ["babylm", "train"], ["babylm", "test"], ["eval_export", "score"],
                       ["eval_export", "collate"], ["eval_export", "validate"], ["eval_export", "report"]]
    assert all(str(tmp_path / "smoke") in c for c in cmds)  # everything inside the run folder
    assert "torch.distributed.run" not in proc.stdout  # smoke is CPU, even with GPUs around
    assert not (tmp_path / "smoke").exists()  # a dry run writes nothing


def test_dry_run_only_and_from(tmp_path):
    env = {"BABYLM_OUT": str(tmp_path), "BABYLM_EVAL_DATA": str(tmp_path / "eval")}
    only = repro("--dry-run", "--only", "gpt-easy-hard", "seed", env=env)
    assert _banners(only.stdout) == ["gpt-easy-hard"]
    assert "[5/17] gpt-easy-hard" in only.stdout
    assert "--config small_gpt_easy_hard" in only.stdout and "--run_name small_gpt_easy_hard" in only.stdout
    frm = repro("--dry-run", "--from", "collate", "strict-small", env=env)
    assert _banners(frm.stdout) == ["collate", "validate", "report"]


def test_several_gpus_launch_torchrun(tmp_path):
    env = {"BABYLM_OUT": str(tmp_path), "BABYLM_GPUS": "4"}
    proc = repro("--dry-run", "--only", "train", "strict-small", env=env)
    (cmd,) = _commands(proc.stdout)
    assert " -m torch.distributed.run --standalone --nproc_per_node 4 -m babylm train " in cmd
    one = repro("--dry-run", "--only", "train", "strict-small", env={**env, "BABYLM_GPUS": "1"})
    assert "torch.distributed" not in one.stdout and " -m babylm train " in one.stdout


def test_official_data_presets_need_eval_data_for_export(tmp_path):
    proc = repro("--dry-run", "--only", "export", "strict", env={"BABYLM_OUT": str(tmp_path),
                                                                 "BABYLM_EVAL_DATA": ""})
    assert proc.returncode == 2
    assert "BABYLM_EVAL_DATA" in proc.stderr and proc.stderr.count("\n") == 1


def test_dry_run_skips_outputs_that_exist_and_lists_milestones(tmp_path):
    run = tmp_path / "strict-small"
    (run / "tokenizer").mkdir(parents=True)
    for name in ("chck_10M", "chck_2M", "chck_1M"):
        (run / "models" / "strict-small-model" / name).mkdir(parents=True)
    (run / "results" / "strict-small-model" / "chck_2M" / "zero_shot" / "causal").mkdir(parents=True)
    env = {"BABYLM_OUT": str(tmp_path), "BABYLM_DATA": str(tmp_path), "BABYLM_EVAL_DATA": str(tmp_path)}
    proc = repro("--dry-run", "--from", "tokenizer", "strict-small", env=env)
    assert f"skip: {run / 'tokenizer'} exists" in proc.stdout
    assert not any(" tokenizer " in c for c in _commands(proc.stdout))
    scores = [c for c in _commands(proc.stdout) if "eval_export score" in c]
    revisions = [re.search(r"--revision (\S+)", c).group(1).replace("\\,", ",") for c in scores]
    # the milestones in one process, in words-seen order; chck_2M already scored
    assert revisions == ["main", "chck_1M,chck_10M"]
    assert f"skip: {run / 'results' / 'strict-small-model' / 'chck_2M' / 'zero_shot' / 'causal'} exists" in proc.stdout
    # the final model on the full sets, the milestones on the fast sets
    assert [re.search(r"--eval_set (\S+)", c).group(1) for c in scores] == ["full", "fast"]
    # the smoke preset scores its synthetic pairs (full set, no official counts) at every revision
    (tmp_path / "smoke" / "models" / "smoke-gpt" / "chck_1M").mkdir(parents=True)
    smoke = repro("--dry-run", "--only", "export", "smoke", env={"BABYLM_OUT": str(tmp_path)})
    smoke_scores = [c for c in _commands(smoke.stdout) if "eval_export score" in c]
    assert len(smoke_scores) == 2 and all("--eval_set full" in c and "--limit" in c for c in smoke_scores)


def test_gpt_bert_presets_score_collate_and_validate_with_mntp_and_causal(tmp_path):
    """GPT-BERT is scored with mntp (the submission) and causal at every revision, each collated and validated."""
    for preset, track in (("gpt-bert-strict-small", "strict-small"), ("gpt-bert-strict", "strict")):
        model = tmp_path / preset / "models" / f"{preset}-model"
        (model / "chck_1M").mkdir(parents=True)
        # mntp of chck_1M is already there: only that one is skipped
        (tmp_path / preset / "results" / f"{preset}-model" / "chck_1M" / "zero_shot" / "mntp").mkdir(parents=True)
        env = {"BABYLM_OUT": str(tmp_path), "BABYLM_DATA": str(tmp_path), "BABYLM_EVAL_DATA": str(tmp_path)}
        proc = repro("--dry-run", "--from", "tokenizer", preset, env=env)
        assert proc.returncode == 0, proc.stderr
        cmds = _commands(proc.stdout)
        config = preset.replace("-", "_")
        train = next(c for c in cmds if " babylm train " in c)
        assert f"--config {config}" in train and f"--track {track}" in train
        scored = [(re.search(r"--revision (\S+)", c).group(1), re.search(r"--backend (\S+)", c).group(1))
                  for c in cmds if "eval_export score" in c]
        assert scored == [("main", "mntp"), ("main", "causal"), ("chck_1M", "causal")]
        collated = [re.search(r"--backend (\S+)", c).group(1) for c in cmds if "eval_export collate" in c]
        assert collated == ["mntp", "causal"]
        validated = [c.split(" validate ", 1)[1].split()[0] for c in cmds if "eval_export validate" in c]
        assert [Path(v).name for v in validated] == ["all_full_preds_and_fast_scores_mntp.json",
                                                     "all_full_preds_and_fast_scores_causal.json"]
        assert "submission: " not in proc.stdout  # a dry run names nothing as written


def test_run_stage_skips_existing_output_and_checks_new_output(tmp_path):
    """The idempotency logic itself, with a tiny fake stage (a shell function) run twice."""
    fake = 'fake() { echo ran >> calls.txt; echo done > "$1"; }'
    first = bash(f'{fake}; run_stage out.txt fake out.txt', tmp_path)
    assert first.returncode == 0, first.stderr
    second = bash(f'{fake}; run_stage out.txt fake out.txt', tmp_path)
    assert second.returncode == 0 and "skip: out.txt exists" in second.stdout
    assert (tmp_path / "calls.txt").read_text() == "ran\n"  # ran once
    # a stage that finishes without writing its output stops the script
    broken = bash('lazy() { true; }; run_stage never.txt lazy; echo not reached', tmp_path)
    assert broken.returncode == 1
    assert "finished without writing never.txt" in broken.stderr and "not reached" not in broken.stdout
    # a failing command stops the script too (strict mode survives sourcing)
    failing = bash('bad() { false; }; run_stage x.txt bad; echo not reached', tmp_path)
    assert failing.returncode != 0 and "not reached" not in failing.stdout


@pytest.mark.slow
def test_report_stage_runs_for_real_and_is_idempotent(tmp_path):
    """The report stage through reproduce.sh: environment summary, banner, log, then a skip."""
    model = tmp_path / "smoke" / "models" / "smoke-gpt"
    model.mkdir(parents=True)
    rows = [{"step": s, "words_seen": 100 * s, "train/loss": 4.0 / s} for s in range(1, 6)]
    (model / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {"BABYLM_OUT": str(tmp_path)}
    proc = repro("--only", "report", "smoke", env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = tmp_path / "smoke" / "report" / "report.md"
    assert "## Training" in report.read_text() and (report.parent / "loss.png").is_file()
    log = (tmp_path / "smoke" / "reproduce.log").read_text()
    assert "== reproduce.sh smoke:" in log and "lock_sha256" in log  # environment summary on top
    assert "==== [9/9] report:" in log
    assert (tmp_path / "smoke" / "env.txt").is_file()
    again = repro("--only", "report", "smoke", env=env, timeout=300)
    assert again.returncode == 0 and f"skip: {report} exists" in again.stdout


def test_json_printing_command_output_is_kept_atomically(tmp_path):
    """The test stage keeps the JSON line its command prints; without one, the stage fails."""
    (tmp_path / "in.json").write_text('{"test/loss": 1.5, "test/ppl": 4.48}')
    ok = bash(f"PY={sys.executable}; run_stage res.json kit_json res.json json.tool --compact in.json", tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "res.json").read_text()) == {"test/loss": 1.5, "test/ppl": 4.48}
    multi = bash(f"PY={sys.executable}; run_stage bad.json kit_json bad.json json.tool in.json", tmp_path)
    assert multi.returncode == 1 and not (tmp_path / "bad.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json", "res.json"]  # no temp files left


def test_smoke_with_official_eval_data_scores_the_official_tasks(tmp_path):
    """BABYLM_EVAL_DATA turns on the official tasks that fit a CPU run, beside the synthetic pairs."""
    official = tmp_path / "evaluation_data"
    for folder in ("blimp_fast", "supplement_filtered", "reading", "glue_filtered"):
        (official / folder).mkdir(parents=True)
    (tmp_path / "smoke" / "models" / "smoke-gpt" / "chck_1M").mkdir(parents=True)
    env = {"BABYLM_OUT": str(tmp_path), "BABYLM_EVAL_DATA": str(official)}
    proc = repro("--dry-run", "--from", "corpus", "smoke", env=env)
    assert proc.returncode == 0, proc.stderr
    cmds = _commands(proc.stdout)
    eval_dir = tmp_path / "smoke" / "eval"
    # one evaluation folder: every official entry linked, the synthetic pairs beside them
    links = [c.split()[-2:] for c in cmds if c.startswith("ln -sfn")]
    assert [str(official / "blimp_fast"), str(eval_dir / "blimp_fast")] in links
    assert ["../data/blimp", str(eval_dir / "synthetic_blimp")] in links
    assert not any(target == str(eval_dir / "blimp_filtered") for _, target in links if "data/blimp" in _)
    scores = [(re.search(r"--revision (\S+)", c).group(1), re.search(r"--eval_set (\S+)", c).group(1),
               re.search(r"--tasks (\S+)", c).group(1).replace("\\,", ","), "--limit" in c)
              for c in cmds if "eval_export score" in c]
    synthetic = str(eval_dir / "synthetic_blimp")
    # the 2026 task set (no WUG); EWoK only with its password (score refuses ewok named without it)
    assert scores == [("main", "full", f"blimp_supplement,reading,{synthetic}", False),
                      ("main", "fast", "blimp", False),
                      ("chck_1M", "fast", f"blimp_supplement,reading,{synthetic}", False)]
    proc = repro("--dry-run", "--from", "corpus", "smoke", env={**env, "BABYLM_EWOK_PASSWORD": "x"})
    scores = [re.search(r"--tasks (\S+)", c).group(1).replace("\\,", ",") for c in _commands(proc.stdout)
              if "eval_export score" in c]
    assert scores[1:] == ["blimp,ewok", f"blimp_supplement,ewok,reading,{synthetic}"]
    assert any(" eval_export finetune " in c and "--tasks rte" in c for c in cmds)
    assert any(" eval_export validate " in c and f"--eval_data {eval_dir}" in c for c in cmds)


def _flag_carriers(cmds: list[str], flags: str) -> list[str]:
    """The kit commands (module and command) whose line ends with ``flags``."""
    return [" ".join(c.split(" -m ", 1)[1].split()[:2]) for c in cmds if " -m " in c and c.endswith(flags)]


def test_flags_after_double_dash_go_to_one_step(tmp_path):
    """`PRESET -- FLAGS`: the training step gets them, last (they override the preset); --only/--from STEP: that step."""
    env = {"BABYLM_OUT": str(tmp_path), "BABYLM_DATA": str(tmp_path), "BABYLM_EVAL_DATA": str(tmp_path)}
    (tmp_path / "cpu-real" / "models" / "cpu-real-model" / "chck_1M").mkdir(parents=True)
    proc = repro("--dry-run", "cpu-real", "--", "--words", "3_000_000", env=env)  # as the README says
    assert proc.returncode == 0, proc.stderr
    cmds = _commands(proc.stdout)
    assert _flag_carriers(cmds, "--words 3_000_000") == ["babylm train"]
    train = next(c for c in cmds if " babylm train " in c)
    assert "--config cpu_real" in train and "--run_name cpu-real-model" in train
    # with --only, the named step's commands: here both scoring calls (final model, milestones)
    export = repro("--dry-run", "--only", "export", "cpu-real", "--", "--limit", "50", env=env)
    assert export.returncode == 0, export.stderr
    assert _flag_carriers(_commands(export.stdout), "--limit 50") == ["eval_export score", "eval_export score"]
    # --from: the first step only; seed: every training step
    frm = repro("--dry-run", "--from", "collate", "cpu-real", "--", "--allow_partial", "false", env=env)
    assert _flag_carriers(_commands(frm.stdout), "--allow_partial false") == ["eval_export collate"]
    seed = repro("--dry-run", "seed", "--", "--seed", "7", env=env)
    assert _flag_carriers(_commands(seed.stdout), "--seed 7") == ["babylm train"] * 7
    # an existing output is not redone, and the skip says that the flags went unused
    (tmp_path / "cpu-real" / "models" / "cpu-real-model" / "final").mkdir()
    skip = repro("--dry-run", "--only", "train", "cpu-real", "--", "--lr", "2e-3", env=env)
    assert "the flags after -- (--lr 2e-3) were not used" in skip.stdout and not _commands(skip.stdout)


def test_cpu_real_preset_runs_every_step_on_the_real_data_folder(tmp_path):
    env = {"BABYLM_OUT": str(tmp_path), "BABYLM_DATA": str(tmp_path / "data"), "BABYLM_EVAL_DATA": str(tmp_path / "eval")}
    proc = repro("--dry-run", "cpu-real", env=env)
    assert proc.returncode == 0, proc.stderr
    assert _banners(proc.stdout) == SMOKE_STEPS
    cmds = _commands(proc.stdout)
    assert not any(" babylm download " in c or " babylm generate " in c for c in cmds)  # BABYLM_DATA is the corpus
    for module in (" babylm tokenizer ", " babylm train ", " babylm test ", " eval_export finetune "):
        assert "--config cpu_real" in next(c for c in cmds if module in c), module
    assert "--corpus " + str(tmp_path / "data") in next(c for c in cmds if " babylm train " in c)
    collate = next(c for c in cmds if " eval_export collate " in c)
    assert collate.endswith("--allow_partial true")  # absent data (AoA, to begin with) is listed, not fatal
    assert "torch.distributed.run" not in proc.stdout
