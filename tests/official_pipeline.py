"""Run the official 2025/2026 pipeline's own code on a model folder, for tests that compare against it.

The checkout (babylm-org/babylm-eval, or its ``strict/`` folder) is named by $BABYLM_OFFICIAL; the
kit never ships it, and CI does not set it, so these tests skip there with the reason. Its modules
run unchanged in the cached official-versions environment (``bench/official_env.py``), in a fresh
interpreter of the kit's venv (torch from the venv): ``evaluation_pipeline.reading.run`` for the
reading task, ``evaluation_pipeline.sentence_zero_shot.run`` through ``bench/official_hook.py``
(which records the per-candidate scores the official ranking step receives) for minimal pairs.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import official_env
from tests.conftest import REPO

ENV = "BABYLM_OFFICIAL"
READING_MIN_ROWS = 50  # the official reading run fits 16-term regressions after writing its predictions


def strict_dir() -> Path:
    """The official ``strict/`` folder, or a skip saying how to enable the comparison."""
    given = os.environ.get(ENV)
    if not given:
        pytest.skip(f"set {ENV} to a checkout of babylm-org/babylm-eval to compare with the official code")
    for cand in (Path(given) / "strict", Path(given)):
        if (cand / "evaluation_pipeline" / "reading" / "evaluation_functions.py").is_file():
            return cand
    pytest.fail(f"{ENV}={given} holds no strict/evaluation_pipeline; point it at a babylm-org/babylm-eval checkout")


def rules(strict: Path) -> str:
    """The year whose rules the checkout's code follows: the WUG tasks are gone from the zero-shot
    run's --task choices at 3d57ddc (2026), there at 45fe2c1 (2025)."""
    run = (strict / "evaluation_pipeline" / "sentence_zero_shot" / "run.py").read_text(encoding="utf-8")
    return "2025" if '"wug_adj"' in run else "2026"


def ewok_password(strict: Path) -> str | None:
    """$BABYLM_EWOK_PASSWORD, else the one the checkout's README gives."""
    from bench.official_bench import ewok_password as find

    return find(strict, "")


def _run(strict: Path, args: list[str], cwd: Path) -> None:
    site = official_env.ensure(log=lambda m: print(m, file=sys.stderr))
    env = {**official_env.environ(site, strict), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    res = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"official run failed: {' '.join(args)}\n{res.stderr[-3000:]}"


def write_reading_csv(src: Path, dst: Path, indices: list[int]) -> list[int]:
    """The rows of the official reading CSV at ``indices`` (original order kept, padded with the first
    rows to at least READING_MIN_ROWS); returns the original indices written, in file order."""
    with open(src, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    keep = sorted(set(indices) | set(range(READING_MIN_ROWS)))
    with open(dst, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        out.writerows(body[i] for i in keep)
    return keep


def reading(strict: Path, model_dir: Path, backend: str, csv_path: Path, work: Path) -> list[tuple[float, float]]:
    """(pred, prev_pred) per CSV row: the official reading run's surprisals (natural log)."""
    out = work / "official_reading"
    _run(strict, ["-m", "evaluation_pipeline.reading.run", "--model_path_or_name", str(model_dir), "--backend", backend,
                  "--data_path", str(csv_path), "--output_dir", str(out)], cwd=work)
    path = out / model_dir.stem / "main" / "zero_shot" / backend / "reading" / "predictions.json"
    preds = json.loads(path.read_text(encoding="utf-8"))["reading"]["predictions"]
    return [(float(p["pred"]), float(p["prev_pred"])) for p in preds]


def minimal_pairs(strict: Path, model_dir: Path, backend: str, task: str, data_dir: Path, work: Path) -> tuple[dict, dict]:
    """({prediction id: pred entry}, {prediction id: per-candidate scores}) of one official zero-shot run."""
    out, scores = work / "official_results", work / f"{task}_{data_dir.name}_scores.json"
    _run(strict, [str(REPO / "bench" / "official_hook.py"), str(scores), "evaluation_pipeline.sentence_zero_shot.run",
                  "--model_path_or_name", str(model_dir), "--backend", backend, "--task", task,
                  "--data_path", str(data_dir), "--save_predictions", "--output_dir", str(out)], cwd=work)
    path = out / model_dir.stem / "main" / "zero_shot" / backend / task / data_dir.name / "predictions.json"
    preds = {e["id"]: e for block in json.loads(path.read_text(encoding="utf-8")).values() for e in block["predictions"]}
    return preds, {r["id"]: r["scores"] for r in json.loads(scores.read_text(encoding="utf-8"))}


def nan_equal_close(a: float, b: float, atol: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= atol


# Runs in the official environment: the 3d57ddc AoA extractor on each named milestone folder (loaded from
# its own folder: a local path ignores the official `revision=`), and its curve fitness on given rows.
_AOA_SCRIPT = """
import json, sys
from pathlib import Path
from transformers import AutoTokenizer
from evaluation_pipeline.AoA_word.eval_util import StepConfig
from evaluation_pipeline.AoA_word.evaluation_functions import StepSurprisalExtractor
from evaluation_pipeline.utils import AoAEvaluator
run, backend, job, out = sys.argv[1:]
job = json.loads(Path(job).read_text())
surprisal = {}
for step, pairs in job["surprisal"].items():
    ex = StepSurprisalExtractor(StepConfig(track="strict-small"), str(Path(run) / step), backend, "cpu")
    model, (proc, tok) = ex.load_model_for_step(step), ex.load_tokenizer_for_step(step)
    surprisal[step] = [ex.compute_surprisal(model, proc, tok, c, w, use_bos_only=False) for c, w in pairs]
tok = AutoTokenizer.from_pretrained(str(Path(run) / "main"))
fit = AoAEvaluator(Path(job["human"])).compute_curve_fitness({"results": job["rows"]}, tok)
Path(out).write_text(json.dumps({"surprisal": surprisal, "aoa": fit["curve_fitness"], "n_words": fit["n_words"]}))
"""


def aoa(strict: Path, run: Path, backend: str, pairs: dict[str, list[tuple[str, str]]], rows: list[dict], human: Path,
        work: Path) -> dict:
    """The official AoA code's {"surprisal": {step: [per (context, word)]}, "aoa": curve fitness of ``rows``}."""
    job, out = work / "official_aoa_job.json", work / "official_aoa.json"
    job.write_text(json.dumps({"surprisal": pairs, "rows": rows, "human": str(human)}), encoding="utf-8")
    _run(strict, ["-c", _AOA_SCRIPT, str(run), backend, str(job), str(out)], cwd=work)
    return json.loads(out.read_text(encoding="utf-8"))
