"""Fault injection: two processes on one folder, a kill at the worst moment, a pipe that stops being
read, results made with other options, a changed corpus, and a table of bad inputs.

Real processes, files and signals throughout: runs are started with ``subprocess``, held with
SIGSTOP, killed with SIGKILL; a full disk is a real RLIMIT_FSIZE on the child process.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file

from babylm import files
from babylm.errors import InputError, UsageError
from eval_export import validation
from tests.conftest import REPO
from tests.test_train_cli import ENV, _args, tok_dir  # noqa: F401  (module fixture reused)

PY = sys.executable


def _start(*args, env: dict | None = None, prelude: str | None = None) -> subprocess.Popen:
    """Start ``python -m babylm ARGS`` (or ``python -c PRELUDE ARGS``) in the background."""
    head = ["-c", prelude] if prelude else ["-m", "babylm"]
    return subprocess.Popen([PY, *head, *map(str, args)], cwd=REPO, env={**os.environ, **ENV, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _cli(module: str, *args, env: dict | None = None, cwd: Path | None = None, file_limit: int | None = None,
         timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` with an optional real file-size limit (bytes) on the child."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    return subprocess.run([PY, "-m", module, *map(str, args)], cwd=cwd or REPO, capture_output=True, text=True,
                          env={**os.environ, **ENV, **(env or {})}, timeout=timeout,
                          preexec_fn=limit if file_limit is not None else None)


def _one_line_error(res, *words: str) -> str:
    """The run failed with exactly one line on stderr, no traceback, holding every one of ``words``."""
    err = res.stderr.strip()
    assert res.returncode not in (0, None), res.stdout[-2000:] + err[-2000:]
    assert "Traceback" not in err and len(err.splitlines()) == 1, err[-3000:]
    assert err.startswith("error: "), err
    for word in words:
        assert word in err, err
    return err


def _holding(lock: Path, proc: subprocess.Popen, deadline_s: float = 300) -> None:
    """Wait until ``proc`` holds ``lock`` (its pid is written there), or fail if it ends first."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and proc.poll() is None:
        if lock.is_file() and lock.read_text().strip() == str(proc.pid):
            return
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"the run never held {lock}: " + (proc.stderr.read() if proc.stderr else "")[-2000:])


def _snapshot(folder: Path, ignore: tuple[str, ...] = ()) -> dict[str, str] | None:
    """Every entry under ``folder`` (hidden ones too) with the hash of its bytes; None when absent."""
    if not folder.exists():
        return None
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if rel.split("/")[-1] in ignore:
            continue
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith((".tmp-", ".old-")) or p.suffix == ".lock")


# ----------------------------------------------------------------------------- one folder, one process


@pytest.mark.slow
def test_a_run_folder_belongs_to_the_process_that_holds_it(tok_dir, tmp_path):  # noqa: F811
    common = ("--words", "1200", "--save_every", "10", "--milestone_unit_words", "500", "--log_every", "5")
    first = _start(*_args(tok_dir, tmp_path, "r", *common))
    lock = files.lock_path(tmp_path / "r")
    _holding(lock, first)
    os.kill(first.pid, signal.SIGSTOP)  # the first run holds the folder and stands still
    try:
        plain = _cli("babylm", *_args(tok_dir, tmp_path, "r", *common, "--seed", "7"))
        overwrite = _cli("babylm", *_args(tok_dir, tmp_path, "r", *common, "--overwrite", "true"))
    finally:
        os.kill(first.pid, signal.SIGCONT)
    for res in (plain, overwrite):
        _one_line_error(res, str(tmp_path / "r"), f"process {first.pid}")
    assert first.wait(timeout=600) == 0, first.stderr.read()[-3000:]
    run = tmp_path / "r"
    # the folder is the first run's alone: its config, its final model, nothing deleted under it
    assert json.loads((run / "train_config.json").read_text())["config"]["seed"] == 42
    assert json.loads((run / "final" / "run_config.json").read_text())["config"]["seed"] == 42
    assert {"chck_1M", "chck_2M", "final", "latest", "metrics.jsonl"} <= {p.name for p in run.iterdir()}
    assert _leftovers(tmp_path) == [] and _leftovers(run) == []  # the lock goes with its holder


def test_score_and_publish_refuse_a_tree_another_process_holds(tmp_path):
    results, repo = tmp_path / "results", tmp_path / "pub" / "m.git"
    score = ("score", "--model", tmp_path / "models" / "tiny", "--results", results, "--tasks", tmp_path / "pairs")
    with files.FolderLock(results / "tiny" / "main"):
        res = _cli("eval_export", *score)
        _one_line_error(res, str(results / "tiny" / "main"), f"process {os.getpid()}")
    _run_folder(tmp_path / "run")
    with files.FolderLock(repo):
        res = _cli("babylm", "publish", "--run", tmp_path / "run", "--repo", repo)
        _one_line_error(res, str(repo), f"process {os.getpid()}")
    assert not repo.exists() and not results.exists()  # the refused commands wrote nothing
    # a lock file left by a process that died is no obstacle: the kernel released its lock
    dead = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = files.lock_path(results / "tiny" / "main")
    stale.parent.mkdir(parents=True)
    stale.write_text(dead.stdout)
    res = _cli("eval_export", *score)
    err = _one_line_error(res)
    assert "in use" not in err and "pairs" in err  # it went on, to the (missing) task folder
    assert not stale.exists()


# ----------------------------------------------------------------------------- validate


def _write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def _pairs(folder: Path, counts: dict[str, int]) -> Path:
    """BLiMP-format files (one per UID, ``n`` pairs each) under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for uid, n in counts.items():
        rows = [{"sentence_good": f"the dog {i} runs .", "sentence_bad": f"the dog {i} run .", "UID": uid}
                for i in range(n)]
        (folder / f"{uid}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _blimp_preds(uid: str, n: int) -> dict:
    return {uid: {"predictions": [{"id": f"{uid}_{i}", "pred": f"the dog {i} runs ."} for i in range(n)]}}


def test_validate_fails_when_there_is_no_gold_to_check_against(tmp_path):
    # 199 of 200 predictions: only gold data can tell
    preds = _write(tmp_path / "res" / "blimp" / "blimp_fast" / "predictions.json", _blimp_preds("adjunct_island", 199))
    with pytest.raises(InputError, match=r"--eval_data: .*nowhere.*--structure_only"):
        validation.validate_file(preds, tmp_path / "nowhere")
    report = validation.validate_file(preds, tmp_path / "nowhere", structure_only=True)
    assert report.checked == [] and "structure only" in report.text() and "blimp" in report.text()
    # the default evaluation folder, when there is none in the working directory
    env = {k: v for k, v in os.environ.items() if k != "BABYLM_EVAL_DATA"}
    res = subprocess.run([PY, "-m", "eval_export", "validate", preds], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=300)
    _one_line_error(res, "evaluation_data", "--structure_only")
    # gold that is there but holds no such section: an error too, naming the section
    _pairs(tmp_path / "eval" / "blimp_fast", {"adjunct_island": 200})
    ok = validation.validate_file(_write(preds, _blimp_preds("adjunct_island", 200)), tmp_path / "eval")
    assert "blimp" in ok.text().split("\n")[0] and "200" in ok.text().split("\n")[0]
    with pytest.raises(InputError, match="199 predictions, the gold data has 200"):
        validation.validate_file(_write(preds, _blimp_preds("adjunct_island", 199)), tmp_path / "eval")
    supp = _write(tmp_path / "res" / "blimp" / "supplement_fast" / "predictions.json", _blimp_preds("hypernym", 3))
    with pytest.raises(InputError, match=r"blimp_supplement: no gold data .*--structure_only"):
        validation.validate_file(supp, tmp_path / "eval")


def test_validate_fails_on_a_wrong_ewok_password(tmp_path):
    from tests.test_export_tasks import _make_ewok_zip

    _make_ewok_zip(tmp_path, "s3cret")
    root = tmp_path / "data"
    preds = {}
    for it in validation.tasks.load_task("ewok", "fast", root, "s3cret", year="2025").items:
        block = preds.setdefault(it.uid, {"predictions": []})["predictions"]
        block.append({"id": f"{it.uid}_{len(block)}", "pred": it.preds[0]})
    path = _write(tmp_path / "res" / "ewok" / "ewok_fast" / "predictions.json", preds)
    assert "ewok" in validation.validate_file(path, root, "s3cret", year="2025").checked  # predictions as 2025 wrote them
    with pytest.raises(InputError, match="wrong EWoK password"):
        validation.validate_file(path, root, "nope", year="2025")


def test_validate_checks_fast_scores_labels_surprisal_and_unknown_keys(tmp_path):
    eval_dir = tmp_path / "eval"
    _pairs(eval_dir / "supplement_fast", {"hypernym": 2, "turn_taking": 2})
    (eval_dir / "glue_filtered").mkdir(parents=True)
    (eval_dir / "glue_filtered" / "rte.valid.jsonl").write_text('{"label": 0}\n{"label": 1}\n')
    partial = tmp_path / "res" / "m" / "all_full_preds_and_fast_scores_causal_partial.json"

    def fails(obj: dict, pattern: str, structure_only: bool = False):
        _write(partial, obj)
        with pytest.raises(InputError, match=pattern):
            validation.validate_file(partial, eval_dir, structure_only=structure_only, year="2025")

    # a 2025 file (WUG in its fast results): checked by the 2025 rules
    fast = {"blimp_supplement": [{"hypernym": 0.5, "turn_taking": 1.0}], "wug_adj": [{"wug_adj": 0.3}],
            "reading": [{"spr": 0.01, "rt": 0.02}]}
    glue = {"rte": {"predictions": [{"id": "rte_0", "pred": 0}, {"id": "rte_1", "pred": 1}]}}
    report = validation.validate_file(_write(partial, {"glue": glue, "fast_eval_results": fast}), eval_dir, year="2025")
    assert "glue.rte" in report.checked
    fails({"fast_eval_results": {**fast, "blimp_supplement": [{"hypernym": 1.5, "turn_taking": 1.0}]}},
          r"fast_eval_results\.blimp_supplement\[0\]\.hypernym: .*1\.5")
    fails({"fast_eval_results": {**fast, "blimp_supplement": [{"hypernym": -0.1, "turn_taking": 1.0}]}},
          r"fast_eval_results\.blimp_supplement\[0\]\.hypernym")
    fails({"fast_eval_results": {**fast, "blimp_supplement": [{"hypernymm": 0.5, "turn_taking": 1.0}]}},
          r"fast_eval_results\.blimp_supplement\[0\]\.hypernymm: unknown")
    fails({"fast_eval_results": {**fast, "wug_adj": [{"wug_adj": 3.0}]}}, r"fast_eval_results\.wug_adj\[0\]\.wug_adj")
    fails({"fast_eval_results": {**fast, "reading": [{"spr": 0.01, "rt": 0.02, "eeg": 0.1}]}},
          r"fast_eval_results\.reading\[0\]\.eeg: unknown")
    fails({"fast_eval_results": {**fast, "blimpp": []}}, r"fast_eval_results\.blimpp: unknown")
    fails({"glue": {"rte": {"predictions": [{"id": "rte_0", "pred": True}, {"id": "rte_1", "pred": 1}]}},
           "fast_eval_results": fast}, r"glue\.rte\.predictions\[0\]\.pred: expected an integer label")
    fails({"glue": {"rte": {"predictions": [{"id": "rte_0", "pred": "0"}, {"id": "rte_1", "pred": 1}]}},
           "fast_eval_results": fast}, r"glue\.rte\.predictions\[0\]\.pred")
    fails({"glue": {"rtee": glue["rte"]}, "fast_eval_results": fast}, r"glue\.rtee: unknown")
    fails({"blimpp": {}, "fast_eval_results": fast}, r"blimpp: unknown section")
    reading = {"reading": {"predictions": [{"id": 0, "pred": 2.5, "prev_pred": float("nan")},
                                           {"id": 1, "pred": -0.5, "prev_pred": 2.5}]}}
    fails({"reading": reading, "fast_eval_results": fast}, r"reading\.reading\.predictions\[1\]\.pred", True)
    blimp = _blimp_preds("adjunct_island", 2)
    blimp["adjunct_island"]["predictions"][1]["score"] = 1.0
    fails({"blimp": blimp, "fast_eval_results": fast}, r"blimp\.adjunct_island\.predictions\[1\]\.score: unknown", True)
    # the 2024 format: known sections only
    gz = tmp_path / "m_textonly_predictions.json.gz"
    gz.write_bytes(gzip.compress(json.dumps({"glue": glue, "blimp": _blimp_preds("adjunct_island", 2),
                                             "blimp_supplement": {}, "vqa2": {}}).encode()))
    with pytest.raises(InputError, match="vqa2: unknown section"):
        validation.validate_file(gz, eval_dir, structure_only=True)


# ----------------------------------------------------------------------------- a revision that cannot be unpacked


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def test_score_of_a_revision_that_cannot_be_unpacked_ends_and_cleans_up(tmp_path):
    repo = tmp_path / "model"
    repo.mkdir()
    _git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "config.json").write_text("{}")
    (repo / "a_link").symlink_to("/etc/passwd")  # refused by the archive filter: it points outside
    (repo / "model.safetensors").write_bytes(os.urandom(4 << 20))  # far more than a pipe holds
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "-m", "m")
    _git(repo, "branch", "chck_1M")
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    res = _cli("eval_export", "score", "--model", repo, "--revision", "chck_1M", "--tasks",
               _pairs(tmp_path / "pairs", {"agreement": 2}), "--results", tmp_path / "results",
               env={"TMPDIR": str(scratch)}, timeout=120)
    _one_line_error(res, "chck_1M", "a_link")
    assert [p.name for p in scratch.iterdir() if p.name.startswith("babylm-")] == []  # what was unpacked is gone
    assert not (tmp_path / "results").exists()


# ----------------------------------------------------------------------------- a kill at the worst moment

# Runs the real CLI with one change in the child process: right after a folder has been moved aside
# to .old-* (the first of the two renames that replace a folder) the process sends itself SIGKILL.
# That is the one instant a replacement is not atomic, reached deterministically without a hook in
# the product.
KILL_AT_REPLACEMENT = """
import os, runpy, signal, sys
_replace = os.replace
def replace(src, dst, *args, **kwargs):
    _replace(src, dst, *args, **kwargs)
    if os.path.basename(os.fspath(dst)).startswith(".old-"):
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
sys.argv[0] = "babylm"
runpy.run_module("babylm", run_name="__main__", alter_sys=True)
"""


def _records(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "train/tokens_per_s"} for r in rows]  # wall-clock rates differ


def _same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), f"{a} and {b} differ"


@pytest.mark.slow
def test_kill_between_the_two_renames_of_a_replacement_then_resume_bitwise(tok_dir, tmp_path):  # noqa: F811
    common = ("--words", "2000", "--save_every", "4", "--log_every", "1", "--eval_every", "5", "--eval_batches", "2",
              "--milestone_unit_words", "500", "--warmup_steps", "5", "--val_fraction", "0.02")
    ref = _cli("babylm", *_args(tok_dir, tmp_path, "ref", *common))
    assert ref.returncode == 0, ref.stderr[-3000:]
    run = tmp_path / "killed"
    # 1. the fresh run dies while it replaces a folder (its best model, after a resume checkpoint exists)
    first = _start(*_args(tok_dir, tmp_path, "killed", *common), prelude=KILL_AT_REPLACEMENT)
    assert first.wait(timeout=600) == -signal.SIGKILL, first.stderr.read()[-3000:]
    assert (run / "latest").is_file() and [p for p in run.iterdir() if p.name.startswith(".old-")]
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 99, "train/lo')  # a record torn by the kill
    # 2. its resumption dies the same way at its first replacement
    second = _start(*_args(tok_dir, tmp_path, "killed", *common, "--resume", "true"), prelude=KILL_AT_REPLACEMENT)
    assert second.wait(timeout=600) == -signal.SIGKILL, second.stderr.read()[-3000:]
    # 3. a plain resumption recovers from what the folder holds and finishes
    last = _cli("babylm", *_args(tok_dir, tmp_path, "killed", *common, "--resume", "true"))
    assert last.returncode == 0, last.stderr[-3000:]
    for name in ["final", "best", *sorted(p.name for p in (tmp_path / "ref").glob("chck_*"))]:
        _same_weights(tmp_path / "ref" / name, run / name)
    assert sorted(p.name for p in run.glob("chck_*")) == sorted(p.name for p in (tmp_path / "ref").glob("chck_*"))
    assert _records(run) == _records(tmp_path / "ref")  # every loss and validation record, bit for bit
    progress = [json.loads((r / "final" / "run_config.json").read_text())["progress"] for r in (tmp_path / "ref", run)]
    assert progress[0] == progress[1]
    assert _leftovers(run) == [] and _leftovers(tmp_path) == []  # no .tmp-*/.old-* copies of checkpoints left


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "gpt-bert"])
def test_hf_engine_resumes_after_sigkill_bitwise(arch, tok_dir, tmp_path):  # noqa: F811
    # gpt-bert: the Trainer saves model + hybrid loss as one plain module (tied weights stored once);
    # its masks are drawn per step from the seed, so the masked steps replay too
    hybrid = ("--arch", "gpt-bert", "--causal_share", "0.25") if arch == "gpt-bert" else ()
    common = ("--engine", "hf", "--words", "2000", "--save_every", "4", "--log_every", "1", "--eval_every", "6",
              "--eval_batches", "2", "--milestone_unit_words", "400", "--warmup_steps", "5", "--dropout", "0.1",
              *hybrid)
    ref = _cli("babylm", *_args(tok_dir, tmp_path, "ref", *common))
    assert ref.returncode == 0, ref.stderr[-3000:]
    run = tmp_path / "killed"
    # Killed right after step 13's record (tests/stop_at.py): three Trainer checkpoints exist, and a
    # record past the last one. --log_every 1: the Trainer's first loss after a resume is the mean
    # over the steps since the resume only (babylm.hf_engine.RunCallback), so only single-step
    # intervals compare bit for bit.
    killed = subprocess.run([PY, "-m", "tests.stop_at", "KILL", "13", *map(str, _args(tok_dir, tmp_path, "killed", *common))],
                            cwd=REPO, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert (run / "latest").read_text().strip() == "hf_trainer/checkpoint-12"
    assert not (run / "final").exists()
    resumed = _cli("babylm", *_args(tok_dir, tmp_path, "killed", *common, "--resume", "true"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for name in ["final", "best", *sorted(p.name for p in (tmp_path / "ref").glob("chck_*"))]:
        _same_weights(tmp_path / "ref" / name, run / name)
    assert sorted(p.name for p in run.glob("chck_*")) == sorted(p.name for p in (tmp_path / "ref").glob("chck_*"))
    assert _records(run) == _records(tmp_path / "ref")
    progress = [json.loads((r / "final" / "run_config.json").read_text())["progress"] for r in (tmp_path / "ref", run)]
    assert progress[0] == progress[1]
    assert _leftovers(run) == [] and _leftovers(tmp_path) == []


@pytest.mark.slow
def test_resume_refuses_a_corpus_that_changed_under_the_same_path(tok_dir, tmp_path):  # noqa: F811
    from tests.train_fixtures import sentences

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = corpus / "speech.train"
    text.write_text("\n".join(sentences(400)) + "\n")
    common = ("--corpus", corpus, "--words", "800", "--save_every", "5", "--milestone_unit_words", "400")
    first = _cli("babylm", *_args(tok_dir, tmp_path, "r", *common))
    assert first.returncode == 0, first.stderr[-3000:]
    os.utime(text, (1, 1))  # a new modification time alone is not a change of data
    again = _cli("babylm", *_args(tok_dir, tmp_path, "r", *common, "--resume", "true"))
    assert again.returncode == 0, again.stderr[-3000:]
    changed = text.read_text().replace("the dog", "the cat", 1)  # same words, same bytes, other text
    assert len(changed) == len(text.read_text())
    text.write_text(changed)
    before = _snapshot(tmp_path / "r")
    res = _cli("babylm", *_args(tok_dir, tmp_path, "r", *common, "--resume", "true"))
    _one_line_error(res, "speech.train", "--resume")
    assert _snapshot(tmp_path / "r") == before


# ----------------------------------------------------------------------------- permissions


@pytest.mark.slow
@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask022", "umask002"])
def test_outputs_get_the_permissions_of_the_umask(umask, tok_dir, tmp_path):  # noqa: F811
    pairs = _pairs(tmp_path / "pairs", {"agreement": 3})
    run, results = tmp_path / "runs" / "u", tmp_path / "results"
    script = " && ".join([
        f"umask {umask:03o}",
        " ".join(map(str, [PY, "-m", "babylm", *_args(tok_dir, tmp_path / "runs", "u", "--words", "300",
                                                      "--save_every", "3", "--milestone_unit_words", "100")])),
        f"{PY} -m eval_export score --model {run} --tasks {pairs} --results {results} --progress false",
        f"{PY} -m eval_export collate --model u --results {results} --allow_partial true",
    ])
    res = subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600,
                         env={**os.environ, **ENV})
    assert res.returncode == 0, res.stderr[-3000:]
    wrong = []
    for top in (run, results):
        for p in [top, *top.rglob("*")]:
            want = (0o777 if p.is_dir() else 0o666) & ~umask
            if p.stat().st_mode & 0o777 != want:
                wrong.append(f"{p.relative_to(tmp_path)} {p.stat().st_mode & 0o777:o} (want {want:o})")
    assert not wrong, wrong
    assert any(p.name == "model.safetensors" for p in run.rglob("*")) and \
        any(p.name.startswith("all_full_preds") for p in results.rglob("*"))


# ----------------------------------------------------------------------------- stale results


def _tiny_model(folder: Path) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    from tests.train_fixtures import make_tokenizer

    tok = make_tokenizer(folder)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=64,
                               bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).save_pretrained(folder)
    return folder


def _run_folder(run: Path) -> Path:
    """A finished run as ``publish`` reads it: a final/ model folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from babylm import checkpoint

    model = _tiny_model(run.parent / f"{run.name}-model")
    checkpoint.save_model(run / "final", AutoModelForCausalLM.from_pretrained(model), AutoTokenizer.from_pretrained(model),
                          {})
    return run


def test_score_does_not_reuse_results_made_with_other_options(tmp_path, capsys):
    from babylm import config
    from eval_export.commands import ScoreConfig, score

    model = _tiny_model(tmp_path / "tiny")
    pairs = _pairs(tmp_path / "pairs", {"agreement": 6})
    out = tmp_path / "results" / "tiny" / "main" / "zero_shot" / "causal" / "custom" / "pairs" / "predictions.json"

    def run(**flags):
        score(config.build(ScoreConfig, {"model": str(model), "tasks": str(pairs), "results": str(tmp_path / "results"),
                                         "progress": "false", **flags}, command="score"))
        return len(json.loads(out.read_text())["agreement"]["predictions"])

    assert run(limit="2") == 2
    assert run(limit="2") == 2 and "skip" in capsys.readouterr().out  # same options: kept
    for flags, option in (({}, "--limit"), ({"limit": "2", "bos_rule": "2024"}, "--bos_rule"),
                          ({"limit": "2", "temperature": "2"}, "--temperature"),
                          ({"limit": "2", "reduction": "mean"}, "--reduction")):
        with pytest.raises(UsageError, match=f"{option} .*--overwrite true"):
            run(**flags)
        assert len(json.loads(out.read_text())["agreement"]["predictions"]) == 2  # untouched
    assert run(overwrite="true") == 6
    assert run() == 6 and "skip" in capsys.readouterr().out


# ----------------------------------------------------------------------------- revisions are names


@pytest.mark.parametrize("command, flags", [
    ("score", {"model": "m", "revision": "../../x"}),
    ("score", {"model": "m", "revision": "chck_1M/../../x"}),
    ("score", {"model": "m", "revision": "/tmp/x"}),
    ("score", {"model": "m", "revision": ".."}),
    ("summary", {"model": "m", "revision": "../x"}),
    ("finetune", {"model": "m", "revision": "a/../../b"}),
    ("finetune", {"model": "m", "model_name": "../up"}),
])
def test_revisions_are_names_not_paths(command, flags):
    from babylm import config
    from eval_export.commands import COMMANDS

    with pytest.raises(UsageError, match="name, not a path"):
        config.build(COMMANDS[command].config, flags, command=command)


# ----------------------------------------------------------------------------- bad input: one line, nothing touched


@dataclasses.dataclass
class Bad:
    """One bad-input case: the command, the folder it must leave as it was, and what its line must name."""

    module: str
    args: list
    watched: Path
    words: tuple[str, ...]
    file_limit: int | None = None  # bytes: a real RLIMIT_FSIZE on the child (a disk that is full for it)
    ignore: tuple[str, ...] = ()  # names under ``watched`` the command may write anyway (a failed run's logs)
    secret: str = ""  # must appear nowhere in the output
    undo: Callable[[], None] | None = None


def _train(tmp: Path, tok: Path, *extra, words: tuple[str, ...], **kw) -> Bad:
    (tmp / "runs").mkdir(exist_ok=True)
    # no warm-up: a 300-word run is shorter than the default warm-up, whose warning would be a second line
    return Bad("babylm", _args(tok, tmp / "runs", "r", "--words", "300", "--warmup_steps", "0", *extra), tmp / "runs",
               words, **kw)


def _small_corpus(tmp: Path) -> Path:
    from tests.train_fixtures import sentences

    (tmp / "corpus").mkdir()
    (tmp / "corpus" / "speech.train").write_text("\n".join(sentences(300)) + "\n")
    return tmp / "corpus"


def _read_only(tmp: Path, tok: Path) -> Bad:
    runs = tmp / "runs"
    runs.mkdir()
    if os.geteuid() != 0:
        runs.chmod(0o555)
        undo = lambda: runs.chmod(0o755)  # noqa: E731
    else:  # root writes through any mode bits; the immutable attribute stops root too
        made = subprocess.run(["chattr", "+i", str(runs)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"running as root, where chmod does not stop writes, and chattr +i failed here: {made.stderr.strip()}")
        undo = lambda: subprocess.run(["chattr", "-i", str(runs)], check=True)  # noqa: E731
    return Bad("babylm", _args(tok, runs, "r", "--words", "300"), runs, ("--save_dir", str(runs)), undo=undo)


def _score(tmp: Path, *extra, words: tuple[str, ...], model: bool = True, **kw) -> Bad:
    (tmp / "results").mkdir(exist_ok=True)
    path = _tiny_model(tmp / "tiny") if model else tmp / "tiny"
    return Bad("eval_export", ["score", "--model", path, "--results", tmp / "results", "--progress", "false", *extra],
               tmp / "results", words, **kw)


def _score_disk_full(tmp: Path, tok: Path) -> Bad:
    pairs = _pairs(tmp / "pairs", {"agreement": 60})
    return _score(tmp, "--tasks", pairs, words=("File too large", str(tmp / "results")), file_limit=2048)


def _bad_eval_jsonl(tmp: Path, tok: Path) -> Bad:
    folder = _pairs(tmp / "eval" / "blimp_fast", {"adjunct_island": 3})
    with open(folder / "adjunct_island.jsonl", "ab") as fh:
        fh.write(b'{"sentence_good": "caf\xe9 .", "sentence_bad": "caf\xe9 caf\xe9"}\n')
    return _score(tmp, "--tasks", "blimp", "--eval_set", "fast", "--eval_data", tmp / "eval",
                  words=("adjunct_island.jsonl:4", "UTF-8"), model=False)


def _ewok_password_passing_the_check_byte(tmp: Path, tok: Path) -> Bad:
    if shutil.which("zip") is None:
        pytest.skip("the zip CLI (Debian package zip) is needed to build an encrypted test archive")
    from tests.test_export_tasks import _make_ewok_zip

    path = _make_ewok_zip(tmp, "s3cret", n=5)
    with zipfile.ZipFile(path) as zf:
        first = next(n for n in sorted(zf.namelist()) if n.endswith(".jsonl"))
        for i in range(100_000):  # about one wrong password in 256 passes the one-byte check
            try:
                zf.read(first, pwd=f"wrong{i}".encode())
            except zlib.error:
                password = f"wrong{i}"
                break
            except (RuntimeError, zipfile.BadZipFile):
                continue
    return _score(tmp, "--tasks", "ewok", "--eval_set", "fast", "--eval_data", tmp / "data", "--ewok_password",
                  password, words=("ewok_fast.zip", "password"), model=False)


def _bad_glue(tmp: Path, tok: Path) -> Bad:
    glue = tmp / "glue"
    glue.mkdir()
    (glue / "rte.train.jsonl").write_bytes(b'{"sentence1": "a", "sentence2": "b", "label": 0}\n'
                                           b'{"sentence1": "\xff", "sentence2": "b", "label": 1}\n')
    (glue / "rte.valid.jsonl").write_text('{"sentence1": "a", "sentence2": "b", "label": 0}\n')
    (tmp / "results").mkdir()
    return Bad("eval_export", ["finetune", "--model", _tiny_model(tmp / "tiny"), "--tasks", "rte", "--data_dir", glue,
                               "--output_dir", tmp / "results"], tmp / "results", ("rte.train.jsonl:2", "UTF-8"))


def _validate(tmp: Path, name: str, data: bytes, words: tuple[str, ...]) -> Bad:
    path = tmp / "res" / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return Bad("eval_export", ["validate", path, "--eval_data", tmp / "res", "--structure_only", "true"], tmp / "res",
               (str(path), *words))


def _truncated_gz(tmp: Path, tok: Path) -> Bad:
    data = gzip.compress(json.dumps({"blimp": _blimp_preds("adjunct_island", 200)}).encode())
    return _validate(tmp, "m_textonly_predictions.json.gz", data[: len(data) // 2], ("gzip",))


def _publish_with_token(tmp: Path, tok: Path) -> Bad:
    from babylm.publish import PublishConfig, publish

    publish(PublishConfig(run=str(_run_folder(tmp / "run"))))  # the repository exists already: a push alone is left to do
    secret = "hf_SECRETtoken123"
    return Bad("babylm", ["publish", "--run", tmp / "run", "--remote", f"https://me:{secret}@127.0.0.1:9/x.git"],
               tmp / "run", ("127.0.0.1", "me:***@"), secret=secret)


BAD_INPUT: dict[str, Callable[[Path, Path], Bad]] = {
    "train --lr -0.01": lambda t, k: _train(t, k, "--lr", "-0.01", words=("--lr", "-0.01")),
    "train --lr nan": lambda t, k: _train(t, k, "--lr", "nan", words=("--lr", "nan")),
    "train --dropout 1.5": lambda t, k: _train(t, k, "--dropout", "1.5", words=("--dropout", "1.5")),
    "train: corpus not UTF-8": lambda t, k: _train(
        t, k, "--corpus", _bytes_file(t / "c" / "a.train", b"the dog runs .\nthe \xff cat\n").parent,
        words=(str(t / "c" / "a.train"), "UTF-8")),
    "train: --config not UTF-8": lambda t, k: _train(
        t, k, "--config", _bytes_file(t / "bad.yaml", b"train:\n  lr: 0.001  # r\xe9glage\n"),
        words=("--config", str(t / "bad.yaml"), "UTF-8")),
    "train: no tokenizer folder": lambda t, k: _train(
        t, t / "no_tokenizer", words=("--tokenizer", str(t / "no_tokenizer"), "no such folder")),
    "train: read-only --save_dir": _read_only,
    "train: disk full while saving a checkpoint": lambda t, k: _train(
        t, k, "--corpus", _small_corpus(t), "--save_every", "2", words=(str(t / "runs" / "r"), "File too large"),
        file_limit=96 * 1024, ignore=("r", "train.log", "metrics.jsonl", "train_config.json")),
    "score: disk full while saving predictions": _score_disk_full,
    "score: eval JSON Lines not UTF-8": _bad_eval_jsonl,
    "score: EWoK password passing the check byte": _ewok_password_passing_the_check_byte,
    "score --revision ../../x": lambda t, k: _score(t, "--revision", "../../x", words=("--revision", "../../x"),
                                                    model=False),
    "finetune: GLUE file not UTF-8": _bad_glue,
    "validate: truncated .gz": _truncated_gz,
    "validate: JSON not UTF-8": lambda t, k: _validate(t, "predictions.json", b'{"blimp": "\xff"}', ("UTF-8",)),
    "publish --remote with a token": _publish_with_token,
}


def _bytes_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_gets_one_line_and_leaves_the_output_as_it_was(case, tok_dir, tmp_path):  # noqa: F811
    bad = BAD_INPUT[case](tmp_path, tok_dir)
    quiet = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}  # stderr then holds nothing but errors
    try:
        before = _snapshot(bad.watched, bad.ignore)
        res = _cli(bad.module, *bad.args, file_limit=bad.file_limit, env=quiet)
        after = _snapshot(bad.watched, bad.ignore)
    finally:
        if bad.undo:
            bad.undo()
    err = _one_line_error(res, *bad.words)
    assert after == before, f"{bad.watched} changed"
    if bad.secret:
        assert bad.secret not in res.stdout + err
