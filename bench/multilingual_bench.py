"""Benchmark: the multilingual track's zero-shot part, the organisers' configurations against the kit's.

Both sides are lm-evaluation-harness on the same model and the same local files, each run as a whole
process and timed (wall seconds):

* official: the task YAMLs of a babylm-eval checkout (``multilingual/tasks/``, 3d57ddc) loaded as they
  are, with only the data location changed to the local file (the hub is not reachable here), run with
  the checkout's ``hf-bos`` model (``multilingual/scripts/bos_hf_model.py``), as
  ``scripts/zeroshot_model.sh`` runs them (batch size as given, zero shots);
* kit: ``python -m eval_export.multilingual zeroshot`` with the same tasks.

Then the per-subtask accuracies are compared. Only the tasks whose data is local can be run
(ZhoBLiMP, English MultiBLiMP, English BLiMP filtered), so this is not the whole fast evaluation.

    python bench/multilingual_bench.py --official ../babylm-eval --model runs/x/models/y/final \\
        --data <multilingual data folder> --tasks zhoblimp,multiblimp_eng [--limit N] [--batch_size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Run in a fresh interpreter: the official YAMLs with the local data, the official hf-bos model.
OFFICIAL = r"""
import json, sys
from pathlib import Path
official, model, spec, limit, batch = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], int(sys.argv[5])
sys.path.insert(0, str(official / "scripts"))
import bos_hf_model  # noqa: F401 (registers hf-bos)
import lm_eval
from lm_eval.tasks import TaskManager
from lm_eval.tasks._yaml_loader import load_yaml
configs = []
for name, (folder, kind, path) in spec.items():
    cfg = load_yaml(official / "tasks" / folder / f"{name}.yaml")
    kwargs = {"data_files": {"train": path}, **({"delimiter": "\t"} if kind == "csv" else {})}
    cfg.update(dataset_path=kind, dataset_name=None, dataset_kwargs=kwargs)
    configs.append(cfg)
out = lm_eval.simple_evaluate(model="hf-bos", device="cpu", model_args=f"pretrained={model},add_bos_token=True",
                              tasks=configs, batch_size=batch, limit=int(limit) if limit != "none" else None,
                              task_manager=TaskManager(include_defaults=False), bootstrap_iters=0)
print(json.dumps({k: v["acc,none"] for k, v in out["results"].items()}))
"""


def official_spec(tasks, data: Path) -> dict[str, tuple[str, str, str]]:
    """{official subtask name: (task folder, datasets builder, local file)} of the kit's resolved tasks."""
    sys.path.insert(0, str(REPO))
    from eval_export.multilingual.tasks import resolve

    folders = {"zhoblimp": "zhoblimp", "blimp_babylm_filtered": "blimp_babylm_filtered", "multiblimp_eng": "multiblimp"}
    spec = {}
    for task in resolve(tasks, data):
        for sub in task.subtasks:
            kind = "csv" if sub.data_file.suffix == ".tsv" else "json"
            spec[sub.name] = (folders[task.name], kind, str(sub.data_file))
    return spec


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"failed: {' '.join(cmd[:4])} ...\n{proc.stderr[-2000:]}")
    return time.perf_counter() - started, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, help="a babylm-eval checkout (holding multilingual/)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="the multilingual data folder (layout in docs/multilingual.md)")
    ap.add_argument("--tasks", default="zhoblimp,multiblimp_eng")
    ap.add_argument("--limit", default="none")
    ap.add_argument("--batch_size", type=int, default=32)
    args = ap.parse_args()
    tasks = args.tasks.split(",")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    spec = official_spec(tasks, Path(args.data))
    official_s, out = timed([sys.executable, "-c", OFFICIAL, str(Path(args.official) / "multilingual"), args.model,
                             json.dumps(spec), args.limit, str(args.batch_size)], env)
    theirs = json.loads(out.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp:
        limit = [] if args.limit == "none" else ["--limit", args.limit]
        kit_s, _ = timed([sys.executable, "-m", "eval_export.multilingual", "zeroshot", "--model", args.model,
                          "--tasks", args.tasks, "--data", args.data, "--batch_size", str(args.batch_size),
                          "--results", tmp, "--model_name", "bench", "-q", *limit], env)
        ours = json.loads((Path(tmp) / "bench" / "main" / "zeroshot" / "results.json").read_text())["results"]
    differing = [name for name in spec if abs(theirs[name] - ours[name]["acc,none"]) > 1e-9]
    print(f"| subtasks | official s | kit s | subtasks with a different accuracy |\n|---:|---:|---:|---:|\n"
          f"| {len(spec)} | {official_s:.1f} | {kit_s:.1f} | {len(differing)} |")


if __name__ == "__main__":
    main()
