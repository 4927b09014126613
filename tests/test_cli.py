"""The command line as a user meets it: declared ranges and one-line errors, close names for unknown
options, grouped --help with a preset's values, the log level, Ctrl-C, TensorBoard and Weights &
Biases (offline).

Most checks call :func:`babylm.cli.main` in this process (the path a typed command takes, without a
new interpreter); the ones about signals, servers and library progress bars run a real process.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import signal
import struct
import subprocess
import sys
import time
import typing
import urllib.request
from pathlib import Path

import pytest

from babylm import cli
from babylm import config as config_lib
from babylm.commands import COMMANDS as BABYLM
from babylm.errors import RESUME_HINT
from babylm.run import TrainConfig
from eval_export.commands import COMMANDS as EVAL
from tests.conftest import REPO
from tests.reference import required

PROGS = {"babylm": BABYLM, "eval_export": EVAL}
ENV = {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


@pytest.fixture
def run(capsys):
    """``run(prog, *args)`` -> (exit code, stdout, stderr) of one command line, in this process; the
    logging set-up the CLI makes is undone afterwards."""
    loggers = [logging.getLogger(name) for name in ("babylm", "eval_export")]
    saved = [(lg.level, lg.propagate, list(lg.handlers)) for lg in loggers]

    def call(prog: str, *args) -> tuple[int, str, str]:
        code = cli.main(prog, PROGS[prog], [str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    yield call
    for lg, (level, propagate, handlers) in zip(loggers, saved):
        lg.setLevel(level)
        lg.propagate = propagate
        lg.handlers[:] = handlers


# ---- declared types and ranges

@pytest.mark.parametrize("prog,args,message", [
    # sizes: zero used to give the preset's size silently, a negative one a traceback
    ("babylm", ["train", "--hidden", "0"], "--hidden must be at least 1, got 0"),
    ("babylm", ["train", "--layers", "-1"], "--layers must be at least 1, got -1"),
    ("babylm", ["train", "--heads", "0"], "--heads must be at least 1, got 0"),
    ("babylm", ["train", "--lr", "0"], "--lr must be positive, got 0"),
    ("babylm", ["train", "--mlm_probability", "1"], "--mlm_probability must be in (0, 1), got 1"),
    ("babylm", ["train", "--dropout", "1"], "--dropout must be in [0, 1), got 1"),
    ("babylm", ["train", "--epochs", "nan"], "--epochs: expected a finite number, got nan"),
    ("babylm", ["train", "--words", "1e6x"], "--words: expected an integer, got 1e6x"),
    ("babylm", ["tokenizer", "--min_frequency", "0"], "--min_frequency must be at least 1, got 0"),
    ("babylm", ["tensorboard", "--port", "70000"], "--port must be in [0, 65535], got 70000"),
    ("eval_export", ["score", "--temperature", "0"], "--temperature must be positive, got 0"),
    ("eval_export", ["finetune", "--warmup", "1"], "--warmup must be in [0, 1), got 1"),
])
def test_out_of_range_values_are_one_line_errors(run, tmp_path, monkeypatch, prog, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(prog, *args)
    assert code == 2 and err == f"error: {message}\n" and out == ""
    assert list(tmp_path.iterdir()) == []  # refused before anything is written


def test_every_default_fits_its_own_declaration():
    """Each command's defaults pass its schema, and ranges sit on numbers only."""
    for commands in PROGS.values():
        for cmd in commands.values():
            if cmd.config is None:
                continue
            defaults = {f.name: getattr(cmd.config(), f.name) for f in dataclasses.fields(cmd.config)}
            assert config_lib._schema(cmd.config).validate_python(defaults) == defaults, cmd.name
            hints = typing.get_type_hints(cmd.config)
            for f in dataclasses.fields(cmd.config):
                if config_lib.range_text(f.metadata):
                    assert {int, float} & {hints[f.name], *typing.get_args(hints[f.name])}, f.name


def test_unknown_options_get_the_close_name_and_the_file_line(run, tmp_path):
    code, _, err = run("babylm", "train", "--warmup", "5")
    assert code == 2 and err == "error: unknown option --warmup for train; did you mean --warmup_steps?\n"
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("tokenizer:\n  vocab_size: 800\ntrain:\n  lr: 0.01\n  bach_size: 16\n")
    code, _, err = run("babylm", "train", "--config", cfg)
    assert code == 2 and err == f"error: {cfg}:5: unknown option 'bach_size' for train; did you mean batch_size?\n"
    cfg.write_text("train:\n  lr: -0.01\n")  # a bad value from a file names the file and line too
    code, _, err = run("babylm", "train", "--config", cfg)
    assert code == 2 and err == f"error: {cfg}:2: --lr must be positive, got -0.01\n"
    code, _, err = run("eval_export", "scroe")
    assert code == 2 and err.startswith("error: unknown command 'scroe'; did you mean score?")


def test_help_is_grouped_and_shows_a_presets_values(run):
    code, out, _ = run("babylm", "train", "--config", "smoke", "--help")
    assert code == 0
    groups = re.findall(r"^(\w[\w ]*):$", out, re.M)
    assert groups == ["data", "model", "objective", "length and milestones", "optimisation",
                      "evaluation and checkpoints", "logging", "run folder", "engine and device", "every command"]
    for f in dataclasses.fields(TrainConfig):  # every option once, in some group
        assert len(re.findall(rf"^  --{f.name} \(", out, re.M)) == 1, f.name
    assert "  --lr (float, positive, default: 0.001; smoke: 0.003)\n" in out  # smoke.yaml's train section
    assert "  --layers (int | None, at least 1, default: None; smoke: 2)\n" in out
    assert "  --log_level (" in out and "  -q, --quiet (" in out
    code, plain, _ = run("babylm", "train", "--help")
    assert code == 0 and "smoke:" not in plain and "  --lr (float, positive, default: 0.001)\n" in plain


def test_log_level_and_quiet(run, tmp_path):
    args = ["generate", "--out_dir", tmp_path / "a", "--train_words", "300", "--dev_words", "30", "--test_words", "30",
            "--pairs_per_phenomenon", "1"]
    code, out, err = run("babylm", *args)
    assert code == 0 and out == f"synthetic corpus written to {tmp_path / 'a'}\n" and err == ""
    code, out, err = run("babylm", "-q", *args[:2], tmp_path / "b", *args[3:])
    assert code == 0 and out == "" and err == "" and (tmp_path / "b" / "synthetic.train").is_file()
    # the command's result (the word table) is printed at any level; what it did is info
    code, out, _ = run("babylm", "corpus", "--corpus", tmp_path / "a", "--out_dir", tmp_path / "c", "--log_level", "warning")
    assert code == 0 and "synthetic.train" in out and "manifest:" not in out
    code, _, err = run("babylm", "env", "--log_level", "loud")
    assert code == 2 and err == "error: --log_level: 'loud' is not one of debug, info, warning, error\n"


# ---- real processes: Ctrl-C, library progress bars, TensorBoard, Weights & Biases

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small generated corpus, a tokenizer for it and a saved tiny GPT-2 (for --init_from)."""
    from babylm import checkpoint, models
    from babylm.synthetic import GenerateConfig, generate_corpus
    from tests.train_fixtures import make_tokenizer

    root = tmp_path_factory.mktemp("small")
    generate_corpus(GenerateConfig(out_dir=str(root / "corpus"), train_words=20_000, dev_words=1000,
                                   test_words=1000, pairs_per_phenomenon=2))
    tok = make_tokenizer(root / "tok")
    model = models.build_model("gpt2", models.resolve_shape("tiny", layers=1, hidden=32, heads=2, positions=64), tok)
    checkpoint.save_model(root / "model", model, tok, {})
    return root


def _train_args(small: Path, save_dir: Path, name: str, *extra) -> list[str]:
    return ["-m", "babylm", "train", "--corpus", small / "corpus", "--tokenizer", small / "tok", "--save_dir", save_dir,
            "--run_name", name, "--block_size", "32", "--batch_size", "8", "--layers", "1", "--hidden", "32",
            "--heads", "2", "--positions", "64", "--device", "cpu", "--tensorboard", "false", *map(str, extra)]


def test_ctrl_c_says_how_to_resume_and_no_bar_shows_with_progress_false(small, tmp_path):
    cmd = [sys.executable, *map(str, _train_args(small, tmp_path, "run", "--init_from", small / "model", "--words",
                                                 "10_000_000", "--save_every", "2", "--progress", "false"))]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, **ENV}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (tmp_path / "run" / "latest").is_file():
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert err.splitlines()[-1] == f"error: interrupted; {RESUME_HINT}"
    # --progress false: neither the kit's bars nor those of transformers ("Loading weights", read by
    # --init_from) and datasets ("tokenize") drew anything
    assert "%|" not in err and "Loading weights" not in err and "tokenize" not in err, err[-2000:]
    assert out.startswith(f"run {tmp_path / 'run'} | clm | ")  # the loop had started


def test_tensorboard_serves_the_runs_until_ctrl_c(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "runs" / "demo" / "tb"))
    for step in range(3):
        writer.add_scalar("train/loss", 5.0 - step, step)
    writer.close()
    proc = subprocess.Popen([sys.executable, "-m", "babylm", "tensorboard", "--logdir", "runs", "--port", "0"],
                            cwd=tmp_path, env={**os.environ, **ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        port = None
        for line in proc.stderr:  # TensorBoard says where it serves once it listens
            if m := re.search(r"TensorBoard \S+ at http://[^:/]+:(\d+)/", line):
                port = int(m.group(1))
                break
        assert port, proc.stderr.read()[-2000:]
        runs = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=30).read())
        assert runs == ["demo/tb"]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and out.splitlines()[-1] == "TensorBoard stopped"
    with pytest.raises(OSError):  # and nothing serves any more
        urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=5)


def wandb_records(path: Path):
    """The records of a W&B transaction log (``run-<id>.wandb``): a 7-byte header (":W&B", magic,
    version), then the LevelDB log format: 32 KiB blocks of chunks (crc32c, length, type: full, first,
    middle, last), each record a wandb_internal protobuf ``Record``."""
    from wandb.proto import wandb_internal_pb2

    data, pos, pending = path.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        room = 32768 - pos % 32768
        if room < 7:  # a block's tail too short for a header is padding
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            pos += room
            continue
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # full or last chunk: a record is complete
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


@pytest.mark.parametrize("engine", ["torch", "hf"])
def test_report_to_wandb_offline_records_what_metrics_jsonl_holds(small, tmp_path, engine):
    try:
        import wandb  # noqa: F401
    except ImportError:
        if required():
            pytest.fail("wandb is not installed (requirements-dev.lock holds it)")
        pytest.skip("wandb is not installed (bash docker/install.sh installs requirements-dev.lock, which holds it)")
    env = {**os.environ, **ENV, "WANDB_MODE": "offline", "WANDB_PROJECT": "kit-test",
           **{f"WANDB_{k}_DIR": str(tmp_path / "wandb-home") for k in ("CONFIG", "CACHE", "DATA", "ARTIFACT")}}
    res = subprocess.run([sys.executable, *map(str, _train_args(small, tmp_path, "run", "--engine", engine, "--words", "700",
                                                                 "--log_every", "2", "--report_to", "wandb", "--progress",
                                                                 "false"))],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    run_dir = tmp_path / "run"
    run_id = (run_dir / "wandb_run_id").read_text().strip()
    (log,) = run_dir.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
    records = list(wandb_records(log))
    (meta,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (meta.project, meta.display_name) == ("kit-test", "run")
    config = {item.key: json.loads(item.value_json) for r in records if r.WhichOneof("record_type") == "config"
              for item in r.config.update}
    assert (config["engine"], config["lr"], config["report_to"]) == (engine, 0.001, '["wandb"]')
    history = [{(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item}
               for r in records if r.WhichOneof("record_type") == "history"]
    expected = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(expected) >= 3 and any("val/loss" in e for e in expected)
    got = [{k: v for k, v in h.items() if not k.startswith("_")} for h in history]
    assert got == expected  # every record, every number, in order
