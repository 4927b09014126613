"""Bad-input and fault probes: what a new user meets when something is wrong, counted.

Each probe runs one command of the kit, as a user would, against artefacts made here (a tiny trained
run, a tokenizer, a small evaluation folder), broken in one way. A probe *holds* when the command

- exits non-zero,
- says so in one line on stderr (``error: ...``) with no Python traceback,
- prints and writes no secret it was given (a password or token in a URL),
- leaves nothing half-written where it was told to write (``outputs``),

or, for a probe marked ``ok``, when the command exits 0 and passes its own check (a resumed run
that falls back to the previous checkpoint, say). The totals are printed per kind, as the
reliability issue counts them: results mixed, secrets, data lost, tracebacks, broken artefacts
accepted, and one-line errors::

    python bench/probes.py                 # every probe (about 3 minutes on 2 CPU cores)
    python bench/probes.py --only secrets  # one kind
    python bench/probes.py --keep /tmp/p   # keep the artefacts to look at

The exit status is the number of probes that did not hold (0: all held).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
SECRET = "S3cr3tPW-probe"  # given in URLs; must appear in no output and no file


@dataclasses.dataclass
class Probe:
    kind: str  # mixed | secrets | data | traceback | broken
    name: str
    argv: list[str]  # after `python -m`
    prepare: Callable[[Path], None] | None = None
    outputs: tuple[str, ...] = ()  # paths (relative to the work folder) that must not exist afterwards
    ok: Callable[[Path, subprocess.CompletedProcess], bool] | None = None  # a probe that must succeed


def run(argv: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "MPLCONFIGDIR": str(cwd / ".mpl"), "HF_HUB_OFFLINE": "1"}
    env.pop("BABYLM_EVAL_DATA", None)
    return subprocess.run([sys.executable, "-m", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


# ----------------------------------------------------------------------------- artefacts

# the tiny run every probe starts from; a resume gives the same options
TRAIN = ["babylm", "train", "--config", "smoke", "--tokenizer", "tok", "--save_dir", "runs", "--words", "40000",
         "--milestone_unit_words", "10000", "--save_every", "10", "--eval_every", "0"]
PAIRS = [("the dog sees the ball .", "the dog see the ball ."), ("a girl likes the cake .", "a girl like the cake ."),
         ("the cat finds a toy .", "the cat find a toy ."), ("my friend helps the boy .", "my friend help the boy .")]


def make_artefacts(work: Path) -> None:
    """A tokenizer, a tiny run with milestones and resume checkpoints, and a BLiMP-format evaluation folder."""
    steps = [
        ["babylm", "tokenizer", "--config", "smoke", "--out_dir", "tok"],
        [*TRAIN, "--run_name", "base"],
    ]
    for argv in steps:
        proc = run(argv, work, timeout=900)
        if proc.returncode != 0:
            raise SystemExit(f"set-up failed: {' '.join(argv)}\n{proc.stderr[-2000:]}")
    (work / "eval").mkdir()
    folder = work / "pairs"
    folder.mkdir(parents=True)
    rows = [{"sentence_good": g, "sentence_bad": b, "field": "morphology", "linguistics_term": "agreement",
             "UID": "regular_plural_subject_verb_agreement_1", "pairID": str(i)} for i, (g, b) in enumerate(PAIRS)]
    (folder / "regular_plural_subject_verb_agreement_1.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def copy_run(work: Path, name: str) -> Path:
    dst = work / "runs" / name
    shutil.copytree(work / "runs" / "base", dst, symlinks=True)
    return dst


# ----------------------------------------------------------------------------- the probes

def _truncate(path: Path, keep: int = 100) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def _prep_truncated_final(work: Path) -> None:
    _truncate(copy_run(work, "trunc") / "final" / "model.safetensors")


def _prep_truncated_milestone(work: Path) -> None:
    run_dir = copy_run(work, "truncm")
    _truncate(run_dir / "chck_1M" / "model.safetensors")


def _prep_symlinked_weights(work: Path) -> None:
    run_dir = copy_run(work, "link")
    weights = run_dir / "chck_1M" / "model.safetensors"
    weights.unlink()
    weights.symlink_to("/etc/passwd")


def _prep_latest_outside(work: Path) -> None:
    """An unfinished run whose ``latest`` names a checkpoint outside the run folder."""
    run_dir = copy_run(work, "outside")
    shutil.rmtree(run_dir / "final")
    step = run_dir / (run_dir / "latest").read_text().strip()
    shutil.copytree(step, work / "elsewhere", dirs_exist_ok=True)
    (run_dir / "latest").write_text(str(work / "elsewhere") + "\n")


def _prep_damaged_state(work: Path) -> None:
    """An unfinished run (no final/) whose latest resume checkpoint was cut short."""
    run_dir = copy_run(work, "state")
    shutil.rmtree(run_dir / "final")
    latest = run_dir / "latest"
    target = run_dir / latest.read_text().strip() if latest.is_file() and not latest.is_symlink() else latest.resolve()
    _truncate(target / "train_state.pt", 10)


def _prep_pickled_weights(work: Path) -> None:
    import torch

    folder = work / "pickled"
    shutil.copytree(work / "runs" / "base" / "final", folder, symlinks=False)
    from safetensors.torch import load_file

    weights = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(weights, folder / "pytorch_model.bin")


def _prep_regular_file(name: str) -> Callable[[Path], None]:
    def prepare(work: Path) -> None:
        (work / name).write_text("not a folder\n")
    return prepare


def _prep_empty_corpus(work: Path) -> None:
    (work / "empty_corpus").mkdir(exist_ok=True)


def _prep_bad_json(work: Path) -> None:
    folder = work / "badjson"
    folder.mkdir(parents=True, exist_ok=True)
    src = work / "pairs" / "regular_plural_subject_verb_agreement_1.jsonl"
    lines = src.read_text().splitlines()
    lines[2] = lines[2][:-5]
    (folder / src.name).write_text("\n".join(lines) + "\n")


def _prep_empty_task(work: Path) -> None:
    folder = work / "emptytask"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "regular_plural_subject_verb_agreement_1.jsonl").write_text("")


def _prep_nan_metrics(work: Path) -> None:
    run_dir = copy_run(work, "nan")
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "train/loss": NaN}\n{"step": "x", "train/loss": 1.0}\n')


# a folder of BLiMP-format files is scored as a custom task (no official counts)
SCORE = ["eval_export", "score", "--tasks", "pairs", "--eval_data", "eval", "--progress", "false"]


def _prep_other_model(work: Path) -> None:
    """runs/base/final scored into mix/; then another model whose folder has the same name (final/)."""
    import torch
    from safetensors.torch import load_file, save_file

    proc = run([*SCORE, "--model", "runs/base/final", "--results", "mix"], work)
    if proc.returncode != 0:
        raise SystemExit(f"set-up failed: first score\n{proc.stderr[-2000:]}")
    other = copy_run(work, "other") / "final"
    weights = load_file(str(other / "model.safetensors"))
    gen = torch.Generator().manual_seed(0)
    save_file({k: v + 0.5 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
               for k, v in weights.items()}, str(other / "model.safetensors"), metadata={"format": "pt"})
    from babylm.integrity import write_checksums

    write_checksums(other)  # a sound checkpoint of another model, not a damaged one


def _resume_fell_back(work: Path, proc: subprocess.CompletedProcess) -> bool:
    """Resumed from the previous checkpoint and finished, or (none kept) refused in one line."""
    if proc.returncode == 0:
        return (work / "runs" / "state" / "final" / "model.safetensors").is_file()
    return [line for line in proc.stderr.splitlines() if line.strip()][-1:] == \
        [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def probes() -> list[Probe]:
    score = SCORE
    return [
        # results from another model or other options
        Probe("mixed", "score another model whose folder has the same name into the same results",
              [*score, "--model", "runs/other/final", "--results", "mix"], _prep_other_model),
        # secrets
        Probe("secrets", "download with a password in the URL", ["babylm", "download", "--url",
              f"http://probe:{SECRET}@127.0.0.1:9/corpus.zip", "--out_dir", "dl"]),
        Probe("secrets", "download with a token parameter", ["babylm", "download", "--url",
              f"http://127.0.0.1:9/corpus.zip?token={SECRET}", "--out_dir", "dl2"]),
        Probe("secrets", "publish to a remote with a password", ["babylm", "publish", "--run", "runs/base",
              "--repo", "pub1.git", "--remote",
              f"http://probe:{SECRET}@127.0.0.1:9/repo.git"]),
        Probe("secrets", "publish to a remote with an access token", ["babylm", "publish", "--run", "runs/base",
              "--repo", "pub2.git", "--remote", f"http://127.0.0.1:9/repo.git?access_token={SECRET}"]),
        # broken artefacts accepted or passed on
        Probe("broken", "--hidden 0", ["babylm", "train", "--config", "smoke", "--hidden", "0", "--save_dir", "r0"],
              outputs=("r0",)),
        Probe("broken", "--layers -1", ["babylm", "train", "--config", "smoke", "--layers", "-1", "--save_dir", "r1"],
              outputs=("r1",)),
        Probe("broken", "publish a truncated final model", ["babylm", "publish", "--run", "runs/trunc", "--repo", "t.git"],
              _prep_truncated_final, outputs=("t.git",)),
        Probe("broken", "publish a symlinked weights file", ["babylm", "publish", "--run", "runs/link", "--repo", "l.git"],
              _prep_symlinked_weights, outputs=("l.git",)),
        Probe("broken", "resume through a latest pointing outside the run", [*TRAIN, "--run_name", "outside", "--resume",
              "true"], _prep_latest_outside),
        Probe("broken", "score --limit -1", [*score, "--model", "runs/base", "--limit", "-1", "--results", "rl"],
              outputs=("rl",)),
        Probe("broken", "score --tasks ewok without data or password", ["eval_export", "score", "--model", "runs/base",
              "--tasks", "ewok", "--eval_set", "fast", "--eval_data", "eval", "--results", "re"], outputs=("re",)),
        Probe("broken", "report over NaN metrics", ["eval_export", "report", "--run", "runs/nan", "--out_dir", "rep"],
              _prep_nan_metrics, outputs=("rep",)),
        Probe("broken", "wordpiece --vocab_size 10", ["babylm", "tokenizer", "--kind", "wordpiece", "--vocab_size", "10",
              "--out_dir", "wp"], outputs=("wp",)),
        # tracebacks instead of one line
        Probe("traceback", "score a truncated model", [*score, "--model", "runs/trunc", "--results", "rt"],
              _prep_truncated_final, outputs=("rt/trunc/main",)),
        Probe("traceback", "test a truncated model", ["babylm", "test", "--config", "smoke", "--model", "runs/trunc/final"],
              _prep_truncated_final),
        Probe("traceback", "finetune a truncated model", ["eval_export", "finetune", "--model", "runs/trunc/final",
              "--tasks", "rte", "--data_dir", "eval", "--output_dir", "ft"], _prep_truncated_final),
        Probe("traceback", "init_from a truncated model", ["babylm", "train", "--config", "smoke", "--init_from",
              "runs/trunc/final", "--save_dir", "ri", "--run_name", "x"], _prep_truncated_final, outputs=("ri/x/final",)),
        Probe("traceback", "score --revision all with a truncated milestone", [*score, "--model", "runs/truncm",
              "--revision", "all", "--results", "rm"], _prep_truncated_milestone),
        Probe("traceback", "test pickled weights", ["babylm", "test", "--config", "smoke", "--model", "pickled"],
              _prep_pickled_weights),
        Probe("traceback", "--results names a regular file", [*score, "--model", "runs/base", "--results", "afile"],
              _prep_regular_file("afile")),
        Probe("traceback", "--save_dir names a regular file", ["babylm", "train", "--config", "smoke", "--save_dir",
              "bfile"], _prep_regular_file("bfile")),
        Probe("traceback", "an empty corpus folder", ["babylm", "tokenizer", "--corpus", "empty_corpus", "--out_dir", "te"],
              _prep_empty_corpus, outputs=("te",)),
        Probe("traceback", "a missing corpus", ["babylm", "train", "--config", "smoke", "--corpus", "nowhere",
              "--save_dir", "rn"], outputs=("rn",)),
        Probe("traceback", "a missing tokenizer", ["babylm", "train", "--config", "smoke", "--tokenizer", "notok",
              "--save_dir", "rt2"], outputs=("rt2",)),
        Probe("traceback", "a malformed JSON line", ["eval_export", "score", "--model", "runs/base", "--tasks", "badjson",
              "--eval_data", "eval", "--results", "rj"], _prep_bad_json, outputs=("rj",)),
        Probe("traceback", "an empty task file", ["eval_export", "score", "--model", "runs/base", "--tasks", "emptytask",
              "--eval_data", "eval", "--results", "rx"], _prep_empty_task, outputs=("rx",)),
        Probe("traceback", "an unknown option", ["babylm", "train", "--warmup", "10"]),
        Probe("traceback", "a model folder that is a tokenizer", [*score, "--model", "tok", "--results", "rk"],
              outputs=("rk",)),
        Probe("traceback", "unigram with a tiny vocabulary", ["babylm", "tokenizer", "--kind", "unigram", "--vocab_size",
              "8", "--out_dir", "ug"], outputs=("ug",)),
        # data lost
        Probe("data", "resume from a damaged latest checkpoint falls back", [*TRAIN, "--run_name", "state", "--resume",
              "true"], _prep_damaged_state, ok=_resume_fell_back),
    ]


# ----------------------------------------------------------------------------- judging

def leaked(work: Path, proc: subprocess.CompletedProcess) -> bool:
    if SECRET in proc.stdout or SECRET in proc.stderr:
        return True
    for path in work.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 5_000_000:
            try:
                if SECRET.encode() in path.read_bytes():
                    return True
            except OSError:
                continue
    return False


def judge(probe: Probe, work: Path, proc: subprocess.CompletedProcess) -> str:
    """'held', or what went wrong, in a few words."""
    if leaked(work, proc):
        return "secret printed or written"
    if "Traceback (most recent call last)" in proc.stderr:
        return "traceback"
    if probe.ok is not None:
        return "held" if probe.ok(work, proc) else f"exit {proc.returncode}, check failed"
    if proc.returncode == 0:
        return "accepted (exit 0)"
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if len(errors) != 1:
        return f"not one error line ({len(errors)} of {len(lines)} lines)"
    left = [o for o in probe.outputs if (work / o).exists()]
    if left:
        return f"left {left[0]}"
    return "held"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="one kind: mixed, secrets, data, traceback, broken")
    ap.add_argument("--keep", default="", help="folder to make the artefacts in and keep (default: a temporary one)")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="babylm-probes-"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    if not (work / "pairs").is_dir():
        make_artefacts(work)
    selected = [p for p in probes() if not args.only or p.kind == args.only]
    totals: dict[str, list[int]] = {}
    failed = []
    for probe in selected:
        if probe.prepare is not None:
            try:
                probe.prepare(work)
            except FileExistsError:
                pass  # the same broken artefact, made by an earlier probe
        proc = run(probe.argv, work)
        verdict = judge(probe, work, proc)
        held, n = totals.setdefault(probe.kind, [0, 0])
        totals[probe.kind] = [held + (verdict == "held"), n + 1]
        print(f"{'ok  ' if verdict == 'held' else 'FAIL'} {probe.kind:<9} {probe.name}: {verdict}", flush=True)
        if verdict != "held":
            failed.append((probe, proc))
    print()
    print("| kind | probes | held | not held |")
    print("|---|---:|---:|---:|")
    for kind, (held, n) in totals.items():
        print(f"| {kind} | {n} | {held} | {n - held} |")
    print(f"\n{sum(n for _, n in totals.values())} probes, {len(failed)} not held, {time.time() - start:.0f} s; "
          f"artefacts in {work}")
    for probe, proc in failed:
        print(f"\n--- {probe.name}: python -m {' '.join(probe.argv)} (exit {proc.returncode})\n{proc.stderr[-1200:]}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return len(failed)


if __name__ == "__main__":
    sys.exit(main())
