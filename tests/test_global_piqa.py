"""GlobalPIQA (2026): made-up items in the official fields, scored by `score` with tiny real models,
against a brute-force reference: every option of every item scored by its own plain forward pass,
length-normalised as babylm-eval 3d57ddc does (completion log-probability / its scored tokens)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from babylm.errors import InputError
from eval_export import global_piqa, tasks
from tests import export_models as em
from tests.conftest import run_cli

WORDS = ("cup", "water", "stone", "bread", "towel", "rope", "knife", "glue", "paper", "sand", "ice", "box")
LINES = [f"To fix the {a}, use the {b} and some {c}." for a in WORDS for b in WORDS[:6] for c in WORDS[6:]]


def make_items(n: int, k: int, tag: str) -> list[dict]:
    """Examples in the fields of the eng_latn files (global_piqa/dl.py @ 3d57ddc), labels spread over options."""
    rows = []
    for i in range(n):
        w = [WORDS[(i + j * 5) % len(WORDS)] for j in range(k)]
        sols = [f"use the {w[j]}" + " and some sand" * (j % 2) for j in range(k)]
        rows.append({"prompt": f"To clean the {WORDS[i % len(WORDS)]} {i},", **{f"solution{j}": s for j, s in enumerate(sols)},
                     "label": (i * 7) % k, "example_id": f"{tag}_{i:04d}"})
    return rows


def write_data(root: Path) -> dict[str, list[dict]]:
    data = {}
    for task, k in global_piqa.SOLUTIONS.items():
        rows = make_items(global_piqa.SIZES[task], k, task[12:15])
        for base in ("full_eval", "fast_eval"):  # dl.py writes the same file into both sets
            (root / base / task).mkdir(parents=True, exist_ok=True)
            (root / base / task / global_piqa.DATA_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
        data[task] = rows
    return data


@torch.no_grad()
def brute_force(model, tok, backend: str, prompt: str, completion: str) -> tuple[float, float]:
    """One option on its own: the sentence ``prompt + completion``, its tokens whose character span
    reaches into the completion, their log-probabilities averaged (causal: the next-token
    prediction; mlm: the token masked alone)."""
    text = prompt + completion
    enc = tok(text, return_offsets_mapping=True)
    ids = torch.tensor([enc["input_ids"]])
    span = [i for i, (_, end) in enumerate(enc["offset_mapping"]) if end > len(prompt)]
    if backend == "causal":
        lp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)  # (T, V)
        picked = [lp[i - 1, ids[0, i]].item() for i in span if i > 0]
    else:
        picked = []
        for i in span:
            masked = ids.clone()
            masked[0, i] = tok.mask_token_id
            picked.append(torch.log_softmax(model(input_ids=masked).logits[0, i].float(), -1)[ids[0, i]].item())
    return sum(picked) / max(len(picked), 1), sum(picked)  # (length-normalised, summed)


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    root = tmp_path_factory.mktemp("gp_data")
    return root, write_data(root)


@pytest.mark.parametrize("kind,backend", [("gpt2", "causal"), ("roberta", "mlm")])
def test_choices_and_accuracy_match_a_plain_forward_per_option(kind, backend, evaluation, tmp_path):
    root, data = evaluation
    em.one_thread()
    model, tok = em.build(kind, LINES, seed=3)
    folder = em.save(model, tok, tmp_path / f"gp-{kind}")
    res = run_cli("eval_export", "score", "--model", folder, "--backend", backend, "--eval_data", root,
                  "--results", tmp_path / "results", "--tasks", "global_piqa_parallel,global_piqa_nonparallel",
                  "--progress", "false", env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    for task, rows in data.items():
        out = tmp_path / "results" / folder.name / "main" / "zero_shot" / backend / task / task
        preds = json.loads((out / "predictions.json").read_text())
        summary = json.loads((out / "summary.json").read_text())
        assert list(preds) == [r["example_id"] for r in rows]  # keyed by example id, file order
        right = by_sum = compared = 0
        for r in rows:
            completions = [" " + r[f"solution{j}"] for j in range(global_piqa.SOLUTIONS[task])]
            scores, sums = zip(*(brute_force(model, tok, backend, r["prompt"], c) for c in completions))
            best = max(range(len(scores)), key=lambda j: (scores[j], -j))
            by_sum += best != max(range(len(sums)), key=lambda j: (sums[j], -j))
            entry = preds[r["example_id"]]["predictions"]
            assert [e["id"] for e in entry] == [f"{r['example_id']}_0"]
            top = sorted(scores, reverse=True)
            if top[0] - top[1] > 1e-4:  # near-ties may fall either way in float32 batches
                assert entry[0]["pred"] == completions[best], r["example_id"]
                compared += 1
            right += entry[0]["pred"] == completions[r["label"]]
        assert compared >= 0.8 * len(rows)  # a random tiny encoder leaves a few options within 1e-4
        assert summary["n_items"] == len(rows)
        assert summary["accuracy"] == pytest.approx(right / len(rows), abs=1e-12)
        assert 0 < right < len(rows)  # the labels are spread: neither all right nor all wrong
        assert by_sum > 0  # the summed score would choose otherwise on some items: the normalisation decides them


def test_items_keep_the_file_order_and_the_label(evaluation):
    root, _ = evaluation
    data = tasks.load_task("global_piqa_parallel", "full", root)
    assert data.reduction == "mean" and data.official
    assert [it.gold for it in data.items[:4]] == [0, 3, 2, 1]  # label kept, options in file order
    assert data.items[1].candidates[0] == ("To clean the water 1,", " use the water")


def test_bad_rows_name_file_line_and_field(tmp_path):
    folder = tmp_path / "full_eval" / "global_piqa_nonparallel"
    folder.mkdir(parents=True)
    row = {"prompt": "p", "solution0": "a", "solution1": "b", "label": 2, "example_id": "x"}
    (folder / "eng_latn.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(InputError, match=r"eng_latn.jsonl:1: field 'label' must be an integer from 0 to 1"):
        tasks.load_task("global_piqa_nonparallel", "full", tmp_path)
    rows = [dict(row, label=0), dict(row, label=1)]
    (folder / "eng_latn.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"eng_latn.jsonl:2: example_id 'x' repeats line 1"):
        tasks.load_task("global_piqa_nonparallel", "full", tmp_path)
    (folder / "eng_latn.jsonl").write_text(json.dumps({k: v for k, v in row.items() if k != "solution1"}) + "\n")
    with pytest.raises(InputError, match=r"eng_latn.jsonl:1: missing field 'solution1'"):
        tasks.load_task("global_piqa_nonparallel", "full", tmp_path)
    (folder / "eng_latn.jsonl").write_text(json.dumps(dict(row, label=0)) + "\n")
    with pytest.raises(InputError, match="1 subtasks, the official set has 100"):
        tasks.load_task("global_piqa_nonparallel", "full", tmp_path)
    assert len(tasks.load_task("global_piqa_nonparallel", "full", tmp_path, limit=5).items) == 1


@pytest.mark.slow
@pytest.mark.parametrize("kind,backend", [("gpt2", "causal"), ("roberta", "mlm"), ("bert", "mntp")])
def test_equals_the_official_code(kind, backend, evaluation, tmp_path):
    """The official 3d57ddc zero-shot run (its pinned versions; $BABYLM_OFFICIAL, skipped otherwise) on the
    same folders: the same prediction for every example, per-option scores within 1e-4."""
    from babylm.tokenizer import make_legacy_readable
    from eval_export import zero_shot
    from eval_export.loading import load_model
    from tests import official_pipeline as op

    strict = op.strict_dir()
    root, data = evaluation
    em.one_thread()
    model, tok = em.build(kind, LINES, seed=5)
    folder = em.save(model, tok, tmp_path / f"gp-{kind}")
    make_legacy_readable(folder)  # readable by the official transformers 4.51
    loaded = load_model(str(folder), backend=backend)
    for task in data:
        theirs, their_scores = op.minimal_pairs(strict, folder, backend, task, root / "full_eval" / task, tmp_path)
        items = tasks.load_task(task, "full", root)
        ours = zero_shot.score_task(loaded.model, loaded.tokenizer, backend, items, zero_shot.ScoringOptions())
        assert len(theirs) == len(items.items)
        worst = max(abs(a - b) for it, s in zip(items.items, ours.scores) for a, b in zip(their_scores[f"{it.uid}_0"], s))
        differ = [it.uid for it, c in zip(items.items, ours.chosen) if theirs[f"{it.uid}_0"]["pred"] != it.preds[c]]
        assert not differ and worst <= 1e-4, f"{kind} {task}: {len(differ)} predictions differ, max |diff| {worst:.2e}"
