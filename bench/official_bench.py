"""Benchmark: the official 2025/2026 evaluation commands against ``python -m eval_export score``.

For one model folder and a list of zero-shot tasks, runs the official pipeline's command for each
task (babylm-org/babylm-eval, ``strict/``; you fetch it, the kit never ships it) at a pinned revision
(``--revision``, default 3d57ddc, the final 2026 pipeline; 45fe2c1 is the 2025 one, run with
``--year 2025``) and then ours by the same year's rules (``--year``), one
after the other, on the same model folder and the same data files, each timed as a whole process
(wall seconds, and CPU seconds of the child from ``os.wait4``). Then compares the outputs item by
item and prints one table (also written as JSON and Markdown):

    task | items | official s | kit s | speed-up | differing predictions | max |score difference| |
    ties (official/kit) | model GFLOP/s of each side | float32 matmul GFLOP/s on this machine

"Differing predictions" counts the items decided differently where neither side saw a tie; by the
2026 rules both break ties at random (the official code unseeded), so the items decided differently
on ties are counted apart, beside the tie counts of each side.

plus a "whole set" row: our one ``score`` command for all the tasks against the sum of the
official commands.

``--official`` is a checkout or a git directory (a bare mirror is fine): the bench exports
``strict/`` of ``--revision`` from it into the scratch folder (``git archive``) and runs that, so the
revision run is the one named; ``--revision ""`` runs a plain folder as it is (its revision unchecked).
The official code runs in the cached official-versions environment (``bench/official_env.py``:
transformers 4.51.3 and the other pins of its ``strict/requirements.txt``; torch from this venv),
from a scratch folder: it reads the data in its own layout, which the bench builds there
(``evaluation_data/{fast,full}_eval/...``, symbolic links, or the first ``--limit`` items of each
subtask, or the decrypted EWoK fast files). Its commands are those of
``strict/scripts/eval_zero_shot{_fast,}.sh``; the minimal-pair runs go through
``bench/official_hook.py``, which runs the official module unchanged and records the scores its
ranking step receives (``--hook false``: the bare command; scores are then not compared).

Model FLOPs are estimated as 2 x non-embedding parameters x tokens, where the tokens are those the
official algorithm feeds the model (each candidate string once for causal models, one copy of the
sentence per scored token for masked ones, one input per reading step), without padding, and the
same count is used for both sides. The matmul rate is the best of a few float32 (2048 x hidden) @
(hidden x feed-forward) products on the same number of threads.

    python bench/official_bench.py --official ../babylm-eval --model runs/x/final --eval_data evaluation_data \\
        --eval_set fast --tasks blimp,blimp_supplement,ewok,entity_tracking,reading --limit 20 --threads 1

EWoK fast is an encrypted zip; the password is read from the official checkout's README at run
time (or --ewok_password / BABYLM_EWOK_PASSWORD); without one, ewok is left out with a note.
The decrypted files live in the scratch folder only while the bench runs (unless --keep).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from babylm.challenge import RULES  # noqa: E402
from bench import official_env  # noqa: E402
from eval_export import tasks as tasks_lib  # noqa: E402

FAST_TASKS = ("blimp", "blimp_supplement", "ewok", "entity_tracking", "wug_adj", "reading")
# The revision the 2026 leaderboard scores against (babylm-org/babylm-eval, 2026-07-08), and its year.
DEFAULT_REVISION, DEFAULT_YEAR = "3d57ddc", "2026"
# The official reading run fits 16-term regressions after writing its predictions; on fewer rows it
# divides by zero, so --limit never cuts the reading task below this many rows.
READING_MIN_ROWS = 50
# Two float32 scorers that sum the same log-probabilities in another order agree to about 1e-5 nats,
# so an item whose candidates are closer than this can be decided either way (bench/score_bench.py).
NEAR_TIE = 1e-4
HOOK = REPO / "bench" / "official_hook.py"


# ---------------------------------------------------------------------------------------------
# Inputs: the official checkout, the model, the data tree
# ---------------------------------------------------------------------------------------------


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def strict_dir(checkout: Path) -> Path:
    """The folder holding ``evaluation_pipeline/`` of the 2025/2026 pipeline."""
    for cand in (checkout / "strict", checkout):
        if (cand / "evaluation_pipeline" / "sentence_zero_shot" / "run.py").is_file():
            return cand
    fail(f"--official: {checkout} holds no strict/evaluation_pipeline/sentence_zero_shot/run.py; "
         "give a checkout of babylm-org/babylm-eval")


def export_revision(checkout: Path, revision: str, work: Path) -> Path:
    """``strict/`` of ``revision`` from the git repository at ``checkout``, written under ``work``
    (``git archive``: the files of that commit, whatever the checkout has checked out)."""
    def git(*args: str, binary: bool = False):
        res = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=not binary)
        if res.returncode != 0:
            err = res.stderr if not binary else res.stderr.decode("utf-8", "replace")
            fail(f"--official {checkout} --revision {revision}: git {args[0]} failed "
                 f"({err.strip().splitlines()[-1] if err.strip() else res.returncode}); give a git checkout or "
                 "git directory of babylm-org/babylm-eval, or --revision '' to run a plain folder as it is")
        return res.stdout
    sha = git("rev-parse", "--verify", f"{revision}^{{commit}}").strip()
    out = work / f"official-{sha[:12]}"
    if not (out / "strict" / "evaluation_pipeline").is_dir():
        shutil.rmtree(out, ignore_errors=True)
        with tarfile.open(fileobj=io.BytesIO(git("archive", "--format=tar", sha, "strict", binary=True))) as tar:
            tar.extractall(out, filter="data")
    (out / "REVISION").write_text(sha + "\n", encoding="utf-8")
    return out


def check_pins(strict: Path) -> list[str]:
    """Differences between the checkout's pins and the cached environment's (printed as notes)."""
    req = strict / "requirements.txt"
    if not req.is_file():
        return [f"{req} not found; the environment uses the pins in bench/official_env.py"]
    theirs = {}
    for line in req.read_text(encoding="utf-8").splitlines():
        name, _, version = line.strip().partition("==")
        if version:
            theirs[name.lower().replace("_", "-")] = version
    notes = []
    for pin in official_env.PINS:
        name, _, version = pin.partition("==")
        key = name.lower().replace("_", "-")
        if key in theirs and theirs[key] != version:
            notes.append(f"{req} pins {name}=={theirs[key]}, the environment has {version}")
    return notes


def ewok_password(strict: Path, given: str) -> str | None:
    """--ewok_password, else $BABYLM_EWOK_PASSWORD, else the sentence of the official README that gives it."""
    if given or os.environ.get(tasks_lib.EWOK_PASSWORD_ENV):
        return given or os.environ[tasks_lib.EWOK_PASSWORD_ENV]
    for readme in (strict / "README.md", strict.parent / "README.md"):
        if readme.is_file():
            m = re.search(r"password to unzip the file is:?\s*`?([^\s`]+)`?", readme.read_text(encoding="utf-8"))
            if m:
                return m.group(1)
    return None


def model_folder(path: str) -> Path:
    """The Hugging Face folder to give both sides (a kit run folder means its final/ model)."""
    p = Path(path).expanduser()
    if (p / "config.json").is_file():
        return p.resolve()
    if (p / "final" / "config.json").is_file():
        return (p / "final").resolve()
    fail(f"--model: {p} holds no config.json (nor final/config.json); give a saved model folder")


def infer_backend(folder: Path) -> str:
    from babylm.challenge import default_backend

    backend = default_backend(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    if backend is None:
        fail(f"--backend: cannot tell causal from masked from {folder}/config.json; pass --backend causal|mlm|mntp")
    return backend


def _uid(task: str, stem: str, row: dict) -> str:
    """The subtask key the kit's --limit counts by (eval_export/tasks.py)."""
    if task == "blimp":
        return str(row.get("UID") or stem)
    if task == "ewok":
        return str(row.get("Domain"))
    if task == "entity_tracking":
        return f"{stem}_{row.get('numops')}_ops"
    if task in ("wug_adj", "wug_past"):
        return task
    if task == "comps":
        return tasks_lib.comps_key(stem)
    return stem  # blimp_supplement


def reading_rows(limit: int) -> int:
    return max(limit, READING_MIN_ROWS) if limit else 0


def build_tree(tree: Path, names: list[str], eval_set: str, root: Path, limit: int, password: str | None,
               year: str = DEFAULT_YEAR) -> list[str]:
    """The official layout under ``tree`` for ``names``; returns the tasks that could be placed. With
    ``limit``, by ``year``'s rules: 2026 leaves out the entity-tracking items that both sides drop
    (an option holding "nothing"), so that the first ``limit`` kept items of a subtask are there."""
    placed = []
    for name in names:
        task, data_dir = tasks_lib.DATA_DIRS[(name, eval_set)]
        if name == "reading":
            src = tasks_lib.find_folder(root, "reading")
            if src is None or not (src / "reading_data.csv").is_file():
                print(f"skip reading: no reading/reading_data.csv under {root}")
                continue
            (tree / "reading").mkdir(parents=True, exist_ok=True)
            if limit:
                lines = (src / "reading_data.csv").read_text(encoding="utf-8").splitlines(keepends=True)
                (tree / "reading" / "reading_data.csv").write_text("".join(lines[: reading_rows(limit) + 1]),
                                                                   encoding="utf-8")
            else:
                (tree / "reading" / "reading_data.csv").symlink_to((src / "reading_data.csv").resolve())
            placed.append(name)
            continue
        src = tasks_lib.find_folder(root, data_dir)
        files: list[tuple[str, bytes]] = []
        if src is not None:
            files = [(f.name, f.read_bytes()) for f in sorted(src.glob("*.jsonl"))]
        elif name == "entity_tracking" and eval_set == "fast" and tasks_lib.find_folder(root, "entity_tracking"):
            # the official fast set is the `regular` file of the full set (tasks.py, load_task)
            regular = tasks_lib.find_folder(root, "entity_tracking") / "regular.jsonl"
            files = [(regular.name, regular.read_bytes())] if regular.is_file() else []
        elif name == "ewok" and eval_set == "fast":
            zipped = next((p for p in (root / "ewok_fast.zip", root / "ewok" / "ewok_fast.zip",
                                       root / "fast_eval" / "ewok_fast.zip") if p.is_file()), None)
            if zipped is None or not password:
                print(f"skip ewok: {'no ewok_fast.zip' if zipped is None else 'no password'} (optional task)")
                continue
            files = [(n.split(":")[-1], data) for n, data in tasks_lib.open_ewok_zip(zipped, password)]
        if not files:
            print(f"skip {name}: no {data_dir}/ under {root}")
            continue
        out = tree / data_dir
        out.mkdir(parents=True, exist_ok=True)
        for fname, data in files:
            if limit:
                seen: dict[str, int] = {}
                kept = []
                for line in data.decode("utf-8").splitlines(keepends=True):
                    if not line.strip():
                        continue
                    row = json.loads(line)
                    if name == "entity_tracking" and year == "2026" and any("nothing" in o for o in row["options"]):
                        continue  # read_files.py @ 3d57ddc drops it, and so does the kit
                    key = _uid(name, Path(fname).stem, row)
                    seen[key] = seen.get(key, 0) + 1
                    if seen[key] <= limit:
                        kept.append(line if line.endswith("\n") else line + "\n")
                data = "".join(kept).encode("utf-8")
            (out / fname).write_bytes(data)
        placed.append(name)
    return placed


# ---------------------------------------------------------------------------------------------
# Running and timing
# ---------------------------------------------------------------------------------------------


def timed(cmd: list[str], env: dict, cwd: Path, log: Path) -> dict:
    """Run ``cmd`` to completion; wall seconds and the child's user+system CPU seconds (os.wait4)."""
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rc": proc.returncode, "log": str(log),
            "cmd": cmd}


def shell_line(cmd: list[str], env: dict, cwd: Path) -> str:
    """The command as a shell line: its working folder and the variables the bench set for it."""
    import shlex

    names = ("PYTHONPATH", "PYTHONNOUSERSITE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    assigned = [f"{k}={shlex.quote(env[k])}" for k in names if k in env]
    return f"(cd {shlex.quote(str(cwd))} && " + " ".join([*assigned, *(shlex.quote(c) for c in cmd)]) + ")"


def official_cmd(name: str, eval_set: str, model: Path, backend: str, tree: Path, out: Path, hook: bool,
                 scores: Path) -> list[str]:
    """The official command of one task, as strict/scripts/eval_zero_shot{_fast,}.sh runs it."""
    task, data_dir = tasks_lib.DATA_DIRS[(name, eval_set)]
    if name == "reading":
        # the scripts pass enc_dec for enc_dec* backends; ours are causal/mlm/mntp, passed as they are
        return [sys.executable, "-m", "evaluation_pipeline.reading.run", "--model_path_or_name", str(model),
                "--backend", backend, "--data_path", str(tree / "reading" / "reading_data.csv"),
                "--output_dir", str(out)]
    args = ["--model_path_or_name", str(model), "--backend", backend, "--task", task,
            "--data_path", str(tree / data_dir), "--save_predictions", "--output_dir", str(out)]
    module = "evaluation_pipeline.sentence_zero_shot.run"
    return ([sys.executable, str(HOOK), str(scores), module, *args] if hook else
            [sys.executable, "-m", module, *args])


def kit_cmd(names: list[str], eval_set: str, model: Path, backend: str, tree: Path, out: Path, limit: int,
            options: tuple[str, str]) -> list[str]:
    """``options``: (--reading_token_types, --year) of the kit's run."""
    token_types, year = options
    # The tree already holds the first --limit items; --limit here only skips the official count
    # check (and never cuts further: reading got at least as many rows as the limit).
    limit = reading_rows(limit) if limit and "reading" in names else limit
    return [sys.executable, "-m", "eval_export", "score", "--model", str(model), "--backend", backend,
            "--tasks", ",".join(names), "--eval_set", eval_set, "--eval_data", str(tree), "--results", str(out),
            "--limit", str(limit), "--progress", "false", "--overwrite", "true",
            "--reading_token_types", token_types, "--year", year]


# ---------------------------------------------------------------------------------------------
# Comparing outputs
# ---------------------------------------------------------------------------------------------


def _tied(scores: list[float]) -> bool:
    """Whether the official ranking step sees a tie (compute_results.py @ 3d57ddc: NaN counts as -inf)."""
    clean = [-math.inf if math.isnan(s) else s for s in scores]
    return clean.count(max(clean)) > 1


def _read(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def compare(name: str, eval_set: str, model: Path, backend: str, official_out: Path, kit_out: Path,
            scores: Path | None) -> dict:
    """Item-by-item comparison of the official and the kit's predictions of one task."""
    task, data_dir = tasks_lib.DATA_DIRS[(name, eval_set)]
    rel = Path(model.stem) / "main" / "zero_shot" / backend / task / data_dir
    theirs, ours = _read(official_out / rel / "predictions.json"), _read(kit_out / rel / "predictions.json")
    if theirs is None or ours is None:  # that side failed; its log says why
        return {"items": 0, "differ": None, "missing": "official" if theirs is None else "kit"}
    if name == "reading":
        a, b = theirs["reading"]["predictions"], ours["reading"]["predictions"]
        worst, differ = 0.0, 0
        for x, y in zip(a, b):
            for key in ("pred", "prev_pred"):
                u, v = float(x[key]), float(y[key])
                if math.isnan(u) and math.isnan(v):
                    continue
                d = abs(u - v) if not (math.isnan(u) or math.isnan(v)) else math.inf
                worst = max(worst, d)
                differ += d > 1e-4
        return {"items": len(a), "differ": differ + abs(len(a) - len(b)), "max_diff": worst,
                "diff_note": "surprisal values (pred, prev_pred) more than 1e-4 apart"}
    flat = lambda obj: {e["id"]: e for block in obj.values() for e in block["predictions"]}  # noqa: E731
    a, b = flat(theirs), flat(ours)
    differ = sum(1 for k in a if k not in b or a[k]["pred"] != b[k]["pred"]) + sum(1 for k in b if k not in a)
    out = {"items": len(a), "differ": differ}
    if name.startswith("wug"):
        out["max_prob_diff"] = max((abs(a[k]["prob"] - b[k]["prob"]) for k in a if k in b), default=0.0)
    kit_scores = _read(kit_out / rel / "scores.json")
    if kit_scores is not None:
        seen: dict[str, int] = {}
        ours_by_id = {}
        for item in kit_scores:
            ours_by_id[f"{item['uid']}_{seen.get(item['uid'], 0)}"] = item
            seen[item["uid"]] = seen.get(item["uid"], 0) + 1
        out["ties_kit"] = sum(bool(item["tie"]) for item in kit_scores)
        official_scores = _read(scores) if scores is not None else None
        if official_scores is not None:
            tied = {r["id"] for r in official_scores if _tied(r["scores"])}
            tied |= {k for k, item in ours_by_id.items() if item["tie"]}
            out["ties_official"] = sum(1 for r in official_scores if _tied(r["scores"]))
            # the 2026 rules break ties at random on both sides: an item either side saw tied may differ
            changed = {k for k in a if k not in b or a[k]["pred"] != b[k]["pred"]} | {k for k in b if k not in a}
            out["differ"], out["differ_on_ties"] = len(changed - tied), len(changed & tied)
            diffs = [abs(u - v) for r in official_scores if r["id"] in ours_by_id
                     for u, v in zip(r["scores"], ours_by_id[r["id"]]["scores"])]
            out["max_diff"] = max(diffs, default=0.0)
            out["scored_items"] = len(official_scores)
            out["near_ties"] = 0
            for r in official_scores:
                if r["id"] not in ours_by_id or r["id"] not in a or r["id"] not in b or a[r["id"]]["pred"] == b[r["id"]]["pred"]:
                    continue
                theirs_s, ours_s = r["scores"], ours_by_id[r["id"]]["scores"]
                i, j = theirs_s.index(max(theirs_s)), ours_by_id[r["id"]]["chosen"]
                # decided differently, but both sides see the two candidates within float32 rounding
                out["near_ties"] += theirs_s[i] - theirs_s[j] <= NEAR_TIE and ours_s[j] - ours_s[i] <= NEAR_TIE
    return out


# ---------------------------------------------------------------------------------------------
# Work estimates: tokens the official algorithm runs through the model, and the matmul rate
# ---------------------------------------------------------------------------------------------


def model_facts(folder: Path, backend: str):
    """(non-embedding parameters, hidden size, feed-forward size, tokenizer) of the model."""
    import torch

    from eval_export.loading import load_model

    loaded = load_model(str(folder), backend=backend)
    model = loaded.model
    embedding = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())
    params = sum(p.numel() for p in model.parameters()) - embedding  # tied heads are counted once, as embeddings
    cfg = model.config
    hidden = getattr(cfg, "hidden_size", None) or cfg.n_embd
    ffn = getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * hidden
    return params, hidden, ffn, loaded.tokenizer


def task_tokens(name: str, eval_set: str, tree: Path, tokenizer, backend: str, limit: int) -> int:
    """Token positions the official algorithm feeds the model for one task (no padding)."""
    from eval_export import zero_shot

    data = tasks_lib.load_task(name, eval_set, tree, None, 10**9)  # the tree holds what is scored
    requests = zero_shot.prepare_requests(tokenizer, backend, data, zero_shot.ScoringOptions())
    if name == "reading":
        return sum(len(r.ids) - (backend == "causal") for r in requests)
    if backend == "causal":
        return sum(len(r.ids) - 1 for r in requests)  # the last token is only predicted
    return sum(len(r.ids) * len(r.scored) for r in requests)  # one masked copy per scored token


def matmul_rate(hidden: int, ffn: int, threads: int, rows: int = 2048) -> dict:
    """Best float32 GFLOP per wall second and per process CPU second of a (rows x hidden) @
    (hidden x ffn) product on ``threads`` threads (rows: the kit's CPU token budget)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(rows, hidden), torch.randn(hidden, ffn)
    for _ in range(3):
        a @ b
    best = {"wall": math.inf, "cpu": math.inf}
    for _ in range(5):
        reps, t0, c0 = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < 0.2:
            a @ b
            reps += 1
        best["wall"] = min(best["wall"], (time.perf_counter() - t0) / reps)
        best["cpu"] = min(best["cpu"], (time.process_time() - c0) / reps)
    return {k: 2 * rows * hidden * ffn / v / 1e9 for k, v in best.items()}


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _fmt(x, spec: str = ".2f", none: str = "-") -> str:
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def differing(r: dict) -> str:
    """Items decided differently on untied scores; those that differ on a tie, and near ties, after."""
    text = _fmt(r.get("differ"), "d")
    if r.get("differ") and r.get("near_ties") is not None:
        text += f" ({r['near_ties']} near ties)"
    if r.get("differ_on_ties"):
        text += f" (+{r['differ_on_ties']} on ties)"
    return text


def table(rows: list[dict], rate: dict) -> str:
    """Markdown table; rates are model GFLOP per wall second, then per CPU second in brackets (the
    steadier figure on a shared machine), beside the matmul probe's."""
    head = ("| task | items | official s (CPU s) | kit s (CPU s) | speed-up wall (CPU) | differing predictions | "
            "max abs score diff | ties official / kit | official GFLOP/s (per CPU-s) | kit GFLOP/s (per CPU-s) | "
            "matmul GFLOP/s (per CPU-s) |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        o, k = r["official"], r["kit"]
        ties = f"{_fmt(r.get('ties_official'), 'd')} / {_fmt(r.get('ties_kit'), 'd')}"
        flops = 2 * r["params"] * r["tokens"] / 1e9
        lines.append(f"| {r['task']} | {r.get('items', 0)} | {o['wall']:.1f} ({o['cpu']:.1f}) | {k['wall']:.1f} "
                     f"({k['cpu']:.1f}) | {o['wall'] / k['wall']:.2f}x ({o['cpu'] / k['cpu']:.2f}x) | "
                     f"{differing(r)} | {_fmt(r.get('max_diff'), '.1e')} | {ties} | "
                     f"{flops / o['wall']:.2f} ({flops / o['cpu']:.2f}) | {flops / k['wall']:.2f} ({flops / k['cpu']:.2f}) | "
                     f"{rate['wall']:.1f} ({rate['cpu']:.1f}) |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--official", required=True, help="a checkout or git directory of babylm-org/babylm-eval (its "
                    "strict/ folder at --revision is used)")
    ap.add_argument("--revision", default=DEFAULT_REVISION, help="the official revision to run (default %(default)s, "
                    "the final 2026 pipeline; 45fe2c1 with --year 2025); '' runs --official as it is")
    ap.add_argument("--year", default=DEFAULT_YEAR, choices=RULES, help="the kit's --year: the rules of the official "
                    "revision")
    ap.add_argument("--model", required=True, help="a saved model folder (a kit run folder means its final/)")
    ap.add_argument("--tasks", default="", help="comma list of --tasks names of eval_export score (default: those of "
                    f"{', '.join(FAST_TASKS)} in the --year set)")
    ap.add_argument("--eval_set", default="fast", choices=("fast", "full"))
    ap.add_argument("--backend", default="auto", choices=("auto", "causal", "mlm", "mntp"))
    ap.add_argument("--eval_data", default=os.environ.get("BABYLM_EVAL_DATA", ""),
                    help="the evaluation_data folder (default: $BABYLM_EVAL_DATA)")
    ap.add_argument("--limit", type=int, default=0,
                    help=f"first N items per subtask, N rows of reading (at least {READING_MIN_ROWS}) (0: all)")
    ap.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of both sides and of the matmul probe")
    ap.add_argument("--hook", default="true", choices=("true", "false"),
                    help="record the official per-candidate scores (bench/official_hook.py; the module runs unchanged)")
    ap.add_argument("--whole", default="true", choices=("true", "false"),
                    help="also time our one score command for all the tasks together")
    ap.add_argument("--reading_token_types", default="official", choices=("official", "drop"))
    ap.add_argument("--ewok_password", default="", help="default: $BABYLM_EWOK_PASSWORD, else read from the official README")
    ap.add_argument("--work", default="", help="scratch folder (default: a temporary one, removed unless --keep); "
                    "a given folder keeps its result trees and logs")
    ap.add_argument("--keep", action="store_true", help="keep everything, the decrypted EWoK files included")
    ap.add_argument("--out", default="bench/results/official_bench", help="writes OUT.json and OUT.md")
    args = ap.parse_args()
    # set before this process first imports torch, so the matmul probe runs like the two sides
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)

    if not args.eval_data or not Path(args.eval_data).is_dir():
        fail(f"--eval_data: {args.eval_data or '(empty)'} is not a folder; point it at the evaluation_data folder "
             "(or set BABYLM_EVAL_DATA)")
    year_set = tasks_lib.YEAR_TASKS[args.year]
    names = [t for t in args.tasks.split(",") if t] or [t for t in FAST_TASKS if t in year_set]
    unknown = [t for t in names if t not in year_set]
    if unknown:
        fail(f"--tasks: task(s) {', '.join(unknown)} not in the {args.year} set; tasks are {', '.join(year_set)}")
    model = model_folder(args.model)
    backend = infer_backend(model) if args.backend == "auto" else args.backend
    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="official-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    checkout = Path(args.official).expanduser().resolve()
    strict = strict_dir(export_revision(checkout, args.revision, work) if args.revision else checkout)
    print(f"official code: {strict}" + (f" (revision {args.revision})" if args.revision else " (as it is)"), flush=True)
    for note in check_pins(strict):
        print(f"note: {note}")
    site = official_env.ensure(log=lambda m: print(m, flush=True))
    try:
        run(args, strict, site, model, backend, names, work)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
        elif not args.keep:  # a given --work keeps results and logs, never the decrypted EWoK files
            for folder in (work / "evaluation_data").glob("*_eval/ewok_*"):
                shutil.rmtree(folder, ignore_errors=True)


def run(args, strict: Path, site: Path, model: Path, backend: str, names: list[str], work: Path) -> None:
    tree = work / "evaluation_data" / f"{args.eval_set}_eval"
    if tree.exists():
        shutil.rmtree(tree)
    password = ewok_password(strict, args.ewok_password) if "ewok" in names else None
    names = build_tree(tree, names, args.eval_set, Path(args.eval_data), args.limit, password, args.year)
    threads = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    offline = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    official_env_vars = {**official_env.environ(site, strict), **threads, **offline}
    kit_env = {**os.environ, **threads, **offline}
    kit_env["PYTHONPATH"] = str(REPO)  # the kit of this checkout, whatever the venv has installed
    official_out, kit_out, logs = work / "official_results", work / "kit_results", work / "logs"
    for d in (official_out, kit_out, logs):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)

    params, hidden, ffn, tokenizer = model_facts(model, backend)
    rate = matmul_rate(hidden, ffn, args.threads)
    print(f"model {model} ({backend}), {params / 1e6:.2f}M non-embedding parameters; {args.threads} thread(s); "
          f"float32 matmul 2048x{hidden} @ {hidden}x{ffn}: {rate['wall']:.1f} GFLOP/s ({rate['cpu']:.1f} per CPU-s)",
          flush=True)
    rows, commands = [], []
    for name in names:
        scores = logs / f"{name}.official_scores.json"
        ocmd = official_cmd(name, args.eval_set, model, backend, tree, official_out, args.hook == "true", scores)
        off = timed(ocmd, official_env_vars, work, logs / f"{name}.official.log")
        kcmd = kit_cmd([name], args.eval_set, model, backend, tree, kit_out, args.limit,
                       (args.reading_token_types, args.year))
        kit = timed(kcmd, kit_env, work, logs / f"{name}.kit.log")
        commands += [shell_line(ocmd, official_env_vars, work), shell_line(kcmd, kit_env, work)]
        row = {"task": name, "official": off, "kit": kit}
        for side, res in (("official", off), ("kit", kit)):
            if res["rc"] != 0:
                tail = Path(res["log"]).read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
                print(f"warning: {side} {name} exited {res['rc']}: {' | '.join(tail)}", flush=True)
        row.update(compare(name, args.eval_set, model, backend, official_out, kit_out,
                           scores if args.hook == "true" else None))
        tokens = task_tokens(name, args.eval_set, tree, tokenizer, backend, args.limit)
        row["tokens"], row["params"] = tokens, params
        rows.append(row)
        print(f"{name:<17} items {row.get('items', 0):>6}  official {off['wall']:7.1f} s  kit {kit['wall']:6.1f} s  "
              f"speed-up {off['wall'] / kit['wall']:6.2f}x  differing {differing(row)}  "
              f"max |diff| {_fmt(row.get('max_diff'), '.1e')}", flush=True)
    if args.whole == "true" and len(rows) > 1:
        whole_out = work / "kit_results_whole"
        kcmd = kit_cmd(names, args.eval_set, model, backend, tree, whole_out, args.limit,
                       (args.reading_token_types, args.year))
        kit = timed(kcmd, kit_env, work, logs / "whole.kit.log")
        commands.append(shell_line(kcmd, kit_env, work))
        if kit["rc"] != 0:
            tail = Path(kit["log"]).read_text(encoding="utf-8", errors="replace").strip().splitlines()[-2:]
            print(f"warning: the whole-set kit run exited {kit['rc']}: {' | '.join(tail)}", flush=True)
        sum_side = {k: sum(r["official"][k] for r in rows) for k in ("wall", "cpu")}
        whole = {"task": "whole set (one kit command vs the sum of the official ones)", "official": sum_side,
                 "kit": kit, "items": sum(r.get("items", 0) for r in rows), "differ": 0, "max_diff": 0.0,
                 "near_ties": 0, "differ_on_ties": 0}
        for r in rows:
            c = compare(r["task"], args.eval_set, model, backend, official_out, whole_out,
                        logs / f"{r['task']}.official_scores.json" if args.hook == "true" else None)
            if c.get("differ") is None or whole["differ"] is None:
                whole["differ"] = None  # a side wrote nothing for this task
            else:
                whole["differ"] += c["differ"]
            whole["max_diff"] = max(whole["max_diff"], c.get("max_diff") or 0.0)
            whole["near_ties"] = whole.get("near_ties", 0) + (c.get("near_ties") or 0)
            whole["differ_on_ties"] += c.get("differ_on_ties") or 0
        whole["tokens"], whole["params"] = sum(r["tokens"] for r in rows), params
        rows.append(whole)
    text = table(rows, rate)
    print()
    print(text)
    report = {"model": str(model), "backend": backend, "eval_set": args.eval_set, "limit": args.limit,
              "threads": args.threads, "official_checkout": str(strict), "official_revision": args.revision or None,
              "year": args.year, "official_env": str(site),
              "non_embedding_params": params, "matmul_gflops": rate, "rows": rows, "commands": commands,
              "flops_note": "2 x non-embedding parameters x tokens the official algorithm feeds the model "
                            "(no padding), same count for both sides"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    md = [f"model `{model}` ({backend}, {params / 1e6:.2f}M non-embedding parameters), eval set {args.eval_set}, "
          f"limit {args.limit or 'none'}, {args.threads} thread(s); official code at revision "
          f"{args.revision or '(as given)'}, kit --year {args.year}", "", text, "", "Commands:", "",
          *[f"    {c}" for c in commands]]
    out.with_suffix(".md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print(f"\nwrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
