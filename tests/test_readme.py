"""Every command of the READMEs is run: here, by another named test, or by CI (.ci/run).

``shell_commands`` takes each command out of every fenced shell block of README.md and
docker/README.md (continuation lines joined, trailing comments dropped). ``COVERAGE`` says, per
command, what runs it; ``test_every_readme_command_is_covered`` fails when a README gains a command
without an entry (or an entry outlives its command), and the other tests check each entry's claim:
the commands that can run on a CPU offline run here for real, in a temp folder; the ones that need
Docker, a GPU or the network name the CI step or test that runs their equivalent, and the test
checks that this step really holds the same command.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_dir

DOCS = ("README.md", "docker/README.md")
SHELL_FENCES = ("bash", "sh", "shell", "console")
CI = REPO / ".ci" / "run"
BUILD_IMAGE = REPO / "docker" / "build-image.sh"


def shell_blocks(doc: str) -> list[tuple[str, str]]:
    """(heading, body) of every fenced shell block of ``doc``; heading: the nearest ``#`` title above."""
    text = (REPO / doc).read_text(encoding="utf-8")
    blocks = []
    for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        if m.group(1) in SHELL_FENCES:
            headings = re.findall(r"^#+ (.+)$", text[:m.start()], re.M)
            blocks.append((headings[-1] if headings else "", m.group(2)))
    return blocks


def split_commands(block: str) -> list[str]:
    """The commands of one block: continuation lines joined, trailing comments dropped."""
    commands, current = [], ""
    for line in block.splitlines():
        line = re.sub(r"(^|\s+)#.*$", "", line)
        current += line.rstrip("\\").rstrip() + " "
        if not line.endswith("\\"):
            if current.strip():
                commands.append(re.sub(r"\s+", " ", current.strip()))
            current = ""
    return commands


# An inline code span of the prose is a command when it starts like one.
INLINE_COMMAND = re.compile(r"^(\./reproduce\.sh|python -m |bash |docker |torchrun |source |mkdir |\.venv/)")


def inline_commands(doc: str) -> list[str]:
    """Commands quoted inline in the prose of ``doc`` (code spans outside the fenced blocks)."""
    text = re.sub(r"^```.*?^```", "", (REPO / doc).read_text(encoding="utf-8"), flags=re.S | re.M)
    spans = (re.sub(r"\s+", " ", m.group(1)).strip() for m in re.finditer(r"`([^`]+)`", text))
    return [span for span in spans if INLINE_COMMAND.match(span)]


def shell_commands() -> list[tuple[str, str]]:
    """(document, command) for every command of every shell block of the READMEs, then every command
    quoted inline in their prose."""
    fenced = [(doc, cmd) for doc in DOCS for _, body in shell_blocks(doc) for cmd in split_commands(body)]
    return fenced + [(doc, cmd) for doc in DOCS for cmd in inline_commands(doc)]


def readme_block(title: str) -> list[str]:
    """The commands of the first shell block under the heading ``title`` of README.md ("" = the first)."""
    return next(split_commands(body) for heading, body in shell_blocks("README.md") if not title or heading == title)


@dataclasses.dataclass(frozen=True)
class Covered:
    """What runs a README command: ``here`` (a test of this file runs it, or its image-free form),
    ``test`` (the named test runs it), ``ci`` (.ci/run runs it or its equivalent); ``why`` says
    why it does not run here as written."""

    by: str  # here | test | ci
    where: str  # the test (file::name) or the CI step
    why: str = ""


STEP_BY_STEP = Covered("test", "tests/test_readme.py::test_step_by_step_block_runs")
# The image's commands: everything after the image name is what its entrypoint receives, so the
# entrypoint runs here with those arguments (BABYLM_QUIET=1: no torch import for the summary).
NEEDS_DOCKER = "no Docker engine here or in CI; podman runs the image in CI (docker/build-image.sh)"
COVERAGE: dict[str, Covered] = {
    # README.md: the top two commands
    "./reproduce.sh smoke": Covered(
        "ci", "bash docker/build-image.sh env smoke",
        "minutes of CPU: CI runs this same script, `reproduce.sh smoke`, inside the image (its entrypoint "
        "hands it the preset) after `bash docker/install.sh` made .venv from the lock on the host; "
        "its dry run is tests/test_reproduce.py::test_dry_run_smoke_prints_every_stage_in_order"),
    "bash docker/install.sh && .venv/bin/python -m pytest": Covered("ci", "bash docker/install.sh && .venv/bin/python -m pytest",
                                                                    "it is the test run itself"),
    # README.md: Step by step
    "source .venv/bin/activate": STEP_BY_STEP,
    "python -m babylm generate --out_dir data/embedded": STEP_BY_STEP,
    "python -m babylm corpus --corpus data/embedded": STEP_BY_STEP,
    "python -m babylm tokenizer --corpus data/embedded --vocab_size 800 --out_dir outputs/tokenizer": STEP_BY_STEP,
    "python -m babylm train --corpus data/embedded --tokenizer outputs/tokenizer --arch gpt2 --size tiny "
    "--epochs 1 --save_dir runs --run_name demo": STEP_BY_STEP,
    "python -m babylm test --model runs/demo/final --corpus data/embedded": STEP_BY_STEP,
    "python -m babylm publish --run runs/demo": STEP_BY_STEP,
    "python -m eval_export score --model runs/demo --tasks data/embedded/blimp --results results": STEP_BY_STEP,
    "python -m eval_export report --run runs/demo --results results --eval_data data/embedded": STEP_BY_STEP,
    # README.md: A first experiment on real data, on a CPU (run as written, shrunk by appended flags)
    **dict.fromkeys([
        "python -m babylm corpus --corpus $DATA --out_dir outputs/cpu/corpus",
        "python -m babylm tokenizer --config cpu_real --corpus $DATA --out_dir outputs/cpu/tokenizer",
        "python -m babylm train --config cpu_real --corpus $DATA --tokenizer outputs/cpu/tokenizer --save_dir runs "
        "--run_name cpu",
        "python -m babylm test --config cpu_real --model runs/cpu/final --corpus $DATA",
        "python -m eval_export score --model runs/cpu --eval_data $EVAL --results results",
        "python -m eval_export score --model runs/cpu --revision chck_1M --eval_set fast --eval_data $EVAL --results results",
        "python -m eval_export finetune --config cpu_real --model runs/cpu/final --model_name cpu --tasks "
        "mnli,mrpc,qqp,rte,wsc --data_dir $EVAL/glue_filtered --output_dir results",
        "python -m eval_export collate --model cpu --results results --allow_partial true",
        "python -m eval_export validate results/cpu/all_full_preds_and_fast_scores_causal_partial.json --eval_data $EVAL",
        "python -m eval_export report --run runs/cpu --results results --eval_data $EVAL --glue_data $EVAL/glue_filtered",
    ], Covered("test", "tests/test_real_data_path.py::test_readme_first_experiment_on_the_real_2023_slice")),
    # docker/README.md
    'docker build -t babylm-kit --build-arg BABYLM_COMMIT="$(git rev-parse HEAD)" .': Covered(
        "ci", "bash docker/build-image.sh env smoke",
        NEEDS_DOCKER + ": `podman build ... --build-arg BABYLM_COMMIT=<commit> -f Dockerfile .`; the CUDA base "
        "is unreachable, so CI passes a debootstrap-made Debian base as BASE_IMAGE"),
    "mkdir -p outputs": Covered("here", "test_commands_that_run_here"),
    'docker run --rm -v "$PWD/outputs:/outputs" babylm-kit smoke': Covered(
        "ci", "bash docker/build-image.sh env smoke",
        NEEDS_DOCKER + ': `podman run ... -v "$out:/outputs" IMAGE smoke`, then validate'),
    "docker run --rm babylm-kit --list": Covered("here", "test_commands_that_run_here", NEEDS_DOCKER),
    "docker run --rm babylm-kit python -m babylm --help": Covered("here", "test_commands_that_run_here", NEEDS_DOCKER),
    'docker run --rm --gpus all --ipc=host -v "$PWD/outputs:/outputs" -v babylm-hf:/cache -v /srv/babylm:/data:ro '
    "-e BABYLM_DATA=/data/train_10M -e BABYLM_EVAL_DATA=/data/evaluation_data babylm-kit strict-small": Covered(
        "here", "test_commands_that_run_here",
        "needs a GPU host with the NVIDIA Container Toolkit, the official corpus and evaluation_data and hours: "
        "its entrypoint call runs here as a dry run (every command of the preset printed)"),
    "bash docker/build-image.sh env smoke": Covered("ci", "bash docker/build-image.sh env smoke", "needs root, podman and minutes"),
    # commands quoted in the prose (README.md, then docker/README.md); placeholders in <> or CAPITALS
    "bash docker/install.sh": Covered("ci", "bash docker/install.sh && .venv/bin/python -m pytest", "the first half of the test run"),
    "python -m babylm --help": Covered("here", "test_commands_that_run_here"),
    "python -m babylm download --year 2024 --track strict-small --out_dir data/babylm": Covered(
        "test", "tests/test_download.py::test_cli_with_url_override",
        "needs the network (OSF): the test runs the same command against a local HTTP server (--url)"),
    "python -m babylm download": Covered("test", "tests/test_download.py::test_cli_with_url_override", "as above"),
    "torchrun --nproc_per_node N -m babylm train ...": Covered(
        "test", "tests/test_engines.py::test_torchrun_two_processes_match_one",
        "N GPUs: the test runs `torchrun --nproc_per_node 2 -m babylm train` on the CPU (gloo)"),
    "torchrun --standalone --nproc_per_node N": Covered(
        "test", "tests/test_reproduce.py::test_several_gpus_launch_torchrun", "reproduce.sh's launch line, checked there"),
    "python -m babylm tensorboard --logdir runs": Covered(
        "test", "tests/test_cli.py::test_tensorboard_serves_the_runs_until_ctrl_c",
        "starts a server that runs until Ctrl-C: the test starts it on a free port, reads a run back over HTTP, stops it"),
    "python -m babylm env": Covered("test", "tests/test_wheel.py::test_console_scripts_and_env_from_the_wheel",
                                    "from the checkout in test_config.py; from an installed wheel there"),
    "python -m eval_export score --model runs/<run> --eval_data <evaluation_data>": Covered(
        "test", "tests/test_export_submission.py::test_cli_end_to_end",
        "the full official sets take minutes: the test scores a tiny model on the official fast data (--limit 3)"),
    "python -m eval_export aoa --model runs/<run> --track strict-small --eval_data <evaluation_data>": Covered(
        "test", "tests/test_aoa.py::test_run_writes_surprisal_rows_of_every_milestone",
        "needs the AoA data (hub only) and a run's 19 milestones: the test scores made-up words with 19 tiny checkpoints"),
    "python -m eval_export score --model runs/<run> --eval_set submission --eval_data <evaluation_data>": Covered(
        "test", "tests/test_submission_mode.py::test_submission_mode_scores_fast_milestones_full_main_and_aoa",
        "needs a trained run: the test scores a run of 19 tiny milestones and main on made-up GlobalPIQA and AoA data"),
    "python -m eval_export finetune --model runs/<run>/final --tasks rte,wsc,mrpc,mnli,qqp --data_dir "
    "<evaluation_data>/glue_filtered": Covered(
        "test", "tests/test_finetune.py::test_cli_rte_subset_writes_official_predictions",
        "five tasks take long on a CPU: the test fine-tunes a tiny model on an RTE subset through the CLI"),
    "python -m eval_export collate --model <name> --backend causal --track strict-small": Covered(
        "test", "tests/test_export_submission.py::test_collate_and_old_formats", "needs a scored result tree"),
    "python -m eval_export validate FILE": Covered("here", "test_commands_that_run_here"),
    "python -m eval_export download-evals": Covered(
        "test", "tests/test_download_evals.py::test_files_laid_out_checked_and_fetched_once",
        "needs the hub: the test runs it against the local stand-in of the hub"),
    "python -m eval_export leaderboard FILE": Covered(
        "test", "tests/test_leaderboard.py::test_leaderboard_command_prints_the_columns_and_the_mean",
        "needs a collated file and its gold data: the test scores a hand-computed case"),
    "python -m babylm publish": Covered(
        "test", "tests/test_publish.py::test_branches_load_like_the_folders_and_commits_are_reproducible",
        "needs a training run: the test publishes one and reads each branch's model card"),
    "./reproduce.sh --list": Covered("here", "test_commands_that_run_here"),
    "./reproduce.sh cpu-real -- --words 3_000_000": Covered(
        "test", "tests/test_reproduce.py::test_flags_after_double_dash_go_to_one_step",
        "ten minutes of training: the test runs it as a dry run and checks where the flags go"),
    "./reproduce.sh --only export cpu-real -- --limit 50": Covered(
        "test", "tests/test_reproduce.py::test_flags_after_double_dash_go_to_one_step", "as above"),
    "./reproduce.sh multilingual-smoke": Covered(
        "test", "tests/test_multilingual.py::test_smoke_runs_from_corpus_to_two_valid_files",
        "needs the multilingual data (BABYLM_MULTILINGUAL_DATA): the test's fixture runs this preset on the reference copy"),
    "./reproduce.sh multilingual": Covered(
        "test", "tests/test_multilingual.py::test_reproduce_lists_the_multilingual_presets",
        "needs a corpus of up to 100M English-equivalent words: the test lists its steps, which the smoke preset runs"),
    "./reproduce.sh": Covered("test", "tests/test_reproduce.py::test_bad_arguments_give_one_line_and_exit_2",
                              "the script named, not a call: without a preset it says to name one"),
    "docker compose -f docker/compose.yaml run --rm kit strict-small": Covered(
        "test", "tests/test_docker.py::test_compose_file_gives_gpus_shared_memory_and_volumes",
        "needs Docker Compose and a GPU host: the compose file's settings are checked; the preset as above"),
}


def test_every_readme_command_is_covered():
    found = shell_commands()
    assert len(found) >= 15, found  # the extraction itself works
    commands = [cmd for _, cmd in found]
    missing = [f"{doc}: {cmd}" for doc, cmd in found if cmd not in COVERAGE]
    assert not missing, ("README commands that nothing runs: add each to COVERAGE in tests/test_readme.py, "
                         "with the test or CI step that runs it:\n" + "\n".join(missing))
    stale = [cmd for cmd in COVERAGE if cmd not in commands]
    assert not stale, f"COVERAGE entries whose command is no longer in a README: {stale}"


def test_named_tests_and_ci_steps_exist():
    ci_lines = [line.strip() for line in CI.read_text().splitlines()]
    for cmd, cov in COVERAGE.items():
        if cov.by == "ci":
            assert cov.where in ci_lines, f"{cmd}: .ci/run has no line {cov.where!r}"
            assert cov.why, cmd
        elif cov.by == "test":
            path, name = cov.where.split("::")
            assert re.search(rf"^def {name}\(", (REPO / path).read_text(), re.M), cov.where
        else:
            assert cov.by == "here" and cov.where == "test_commands_that_run_here", cmd


def test_top_commands_are_the_ci_commands():
    top = readme_block("")  # the first block of the file
    assert top[:2] == ["./reproduce.sh smoke", "bash docker/install.sh && .venv/bin/python -m pytest"]
    assert top[1] in CI.read_text().splitlines(), "the README's test command must be what .ci/run runs"


def test_image_commands_match_what_ci_runs():
    """The docker commands of the guide and the podman commands of CI are the same calls."""
    build = next(cmd for cmd in COVERAGE if cmd.startswith("docker build "))
    dockerfile_args = set(re.findall(r"^ARG (\w+)", (REPO / "Dockerfile").read_text(), re.M))
    assert set(re.findall(r"--build-arg (\w+)=", build)) <= dockerfile_args
    script = BUILD_IMAGE.read_text()
    assert '--build-arg BABYLM_COMMIT="$commit"' in script and "-f Dockerfile ." in script
    # the guide's smoke run: the preset alone after the image name, outputs on /outputs
    smoke = re.search(r'^\s*"\$\{run\[@\]\}" .*-v "\$out:/outputs" "\$image" (.+)$', script, re.M)
    assert smoke and smoke.group(1).strip() == "smoke"
    assert "--network=none" in script and "--gpus" not in script  # offline, CPU


def entrypoint(*args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """docker/entrypoint.sh with the arguments a `docker run IMAGE ARGS` gives it; PATH as in the image
    (the environment's bin, then the kit root), without the summary (BABYLM_QUIET=1)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("BABYLM_") or k == "BABYLM_SHARED"}
    full.update({"BABYLM_QUIET": "1", "BABYLM_SKIP_INSTALL": "1", "BABYLM_PYTHON": sys.executable,
                 "PYTHONPATH": str(REPO),
                 "PATH": f"{Path(sys.executable).parent}{os.pathsep}{REPO}{os.pathsep}{os.environ['PATH']}",
                 **(env or {})})
    return subprocess.run([str(REPO / "docker" / "entrypoint.sh"), *args], capture_output=True, text=True,
                          env=full, timeout=120, cwd=cwd)


def image_args(cmd: str) -> tuple[list[str], dict[str, str]]:
    """What ``docker run [options] babylm-kit ARGS`` hands the entrypoint, and its -e settings."""
    words = shlex.split(cmd, posix=True)
    i = words.index("babylm-kit")
    env = dict(words[j + 1].split("=", 1) for j in range(i) if words[j] == "-e")
    return words[i + 1:], env


def _gold_answers(gold: Path, out: Path) -> Path:
    """A per-task predictions file answering every item of a BLiMP-format gold folder with its good sentence."""
    obj = {}
    for path in sorted(gold.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        obj[path.stem] = {"predictions": [{"id": f"{path.stem}_{i}", "pred": r["sentence_good"]} for i, r in enumerate(rows)]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(obj))
    return out


def test_commands_that_run_here(tmp_path):
    here = [cmd for cmd, cov in COVERAGE.items() if cov.by == "here"]
    ran = []
    for cmd in here:
        if cmd == "mkdir -p outputs":
            proc = subprocess.run(cmd, shell=True, cwd=tmp_path)
            assert proc.returncode == 0 and (tmp_path / "outputs").is_dir()
        elif cmd == "./reproduce.sh --list":
            proc = subprocess.run(cmd, shell=True, cwd=REPO, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0 and re.search(r"^strict-small\s", proc.stdout, re.M), proc.stderr
        elif cmd.startswith("python -m "):
            sample = _gold_answers(shared_dir() / "data" / "eval" / "supplement_fast",
                                   tmp_path / "results" / "blimp" / "supplement_fast" / "predictions.json")
            line = cmd.replace("python", shlex.quote(sys.executable), 1).replace("FILE", shlex.quote(str(sample)))
            env = {**os.environ, "PYTHONPATH": str(REPO), "BABYLM_EVAL_DATA": str(shared_dir() / "data" / "eval")}
            proc = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, f"{cmd}\n{proc.stderr[-2000:]}"
            expected = {"python -m babylm --help": "tensorboard",
                        "python -m eval_export validate FILE": "checked against gold: blimp_supplement (250 predictions)"}
            assert expected[cmd] in proc.stdout, proc.stdout
        elif cmd.startswith("docker run "):
            args, env = image_args(cmd)
            if "--gpus" in cmd:  # the GPU run, as a dry run with its data folders made here
                env = {k: str(tmp_path / v.lstrip("/")) for k, v in env.items()}
                for folder in env.values():
                    Path(folder).mkdir(parents=True)
                proc = entrypoint("--dry-run", *args, env={**env, "BABYLM_OUT": str(tmp_path / "outputs"),
                                                            "BABYLM_GPUS": "1"})
                assert proc.returncode == 0, proc.stderr
                commands = [line for line in proc.stdout.splitlines() if line.startswith("+ ")]
                assert any(" -m babylm train " in c and env["BABYLM_DATA"] in c for c in commands)
                assert any(" -m eval_export validate " in c and env["BABYLM_EVAL_DATA"] in c for c in commands)
            else:
                proc = entrypoint(*args)
                assert proc.returncode == 0, proc.stderr
                if args == ["--list"]:
                    assert re.search(r"^smoke\s.*\n(\s+\d+\. \S+.*\n)+", proc.stdout, re.M)
                else:
                    assert args == ["python", "-m", "babylm", "--help"], cmd
                    assert "generate" in proc.stdout and "train" in proc.stdout
        else:
            pytest.fail(f"no way to run {cmd!r} here: give it a branch in this test or another coverage")
        ran.append(cmd)
    assert len(ran) == 7


@pytest.mark.slow
def test_step_by_step_block_runs(tmp_path):
    commands = readme_block("Step by step")
    assert commands[0] == "source .venv/bin/activate" and len(commands) >= 6
    assert all(COVERAGE[cmd] == STEP_BY_STEP for cmd in commands)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for cmd in commands[1:]:
        assert cmd.startswith("python -m "), cmd
        proc = subprocess.run(cmd.replace("python", sys.executable, 1), shell=True, cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{cmd}\n{proc.stderr[-2000:]}"
    assert (tmp_path / "runs/demo/final/model.safetensors").is_file()
    branches = subprocess.run(["git", "--git-dir", str(tmp_path / "runs/demo/demo.git"), "branch", "--list"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert "main" in branches
    summary = json.loads((tmp_path / "results/demo/main/summary.json").read_text())
    assert summary  # the scored synthetic pairs
    # the report of a run folder `train` wrote, its results where `score` put them: every section
    report = (tmp_path / "runs/demo/report/report.md").read_text()
    assert re.search(r"^\| demo \| [\d,]+ \| \d+\.\d\d \| \d+\.\d\d \|", report, re.M), report
    assert "## Zero-shot scores" in report and "not scored" not in report
