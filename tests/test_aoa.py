"""AoA (2026): the score from surprisal curves against hand-computed numbers (noise-free sigmoids, whose
fits are exact, and Pearson's r with its p-value in closed form), and the surprisal rows of a run of
tiny real checkpoints against a plain forward pass per row."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from babylm.challenge import milestone_words
from babylm.errors import InputError
from eval_export import aoa, collation
from tests import export_models as em
from tests.conftest import run_cli

WORDS = ("dog", "ball", "milk", "shoe", "cat", "juice")
LINES = [f"The {w} is near the {v} and a {u}." for w in WORDS for v in WORDS for u in WORDS[:3]]


def sig(x, a, b, c, d):
    return a / (1 + math.exp(-b * (x - c))) + d


def write_human(path: Path, shares: dict[str, list[float]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["word", *map(str, aoa.AGES), "category"])
        for word, row in shares.items():
            w.writerow([word, *("" if math.isnan(v) else f"{v:.17g}" for v in row), "noun"])
    return path


def pearson_df3(x: list[float], y: list[float]) -> tuple[float, float]:
    """r and its two-sided p for 5 points (3 degrees of freedom), where Student's t CDF is closed:
    F(t) = 1/2 + (t / (sqrt(3) (1 + t^2 / 3)) + atan(t / sqrt(3))) / pi."""
    r = float(np.corrcoef(x, y)[0, 1])
    t = abs(r) * math.sqrt(3 / (1 - r * r))
    cdf = 0.5 + (t / (math.sqrt(3) * (1 + t * t / 3)) + math.atan(t / math.sqrt(3))) / math.pi
    return r, 2 * (1 - cdf)


@pytest.fixture(scope="module")
def tokenizer():
    return em.byte_bpe(LINES, bos=False)


def curves(tokenizer, midpoints: dict[str, float]) -> tuple[list[dict], dict[str, float]]:
    """Rows for the strict-small milestones whose mean surprisal per word is exactly
    -(6 / (1 + exp(-4 (log10(words + 1) - c))) - 10) (two contexts, +-0.25 around it), and each word's
    AoA in closed form: where that curve crosses half-way between chance and its lowest point."""
    rows, expected = [], {}
    steps = milestone_words("strict-small")
    for word, c in midpoints.items():
        means = [-sig(math.log10(n + 1), 6.0, 4.0, c, -10.0) for _, n in steps]
        for (name, n), s in zip(steps, means):
            for k, delta in enumerate((-0.25, 0.25)):
                rows.append({"step": name, "word_count": n, "target_word": word, "context_id": k, "context": "",
                             "surprisal": s + delta})
        chance = aoa.word_pieces(tokenizer, word) * math.log(tokenizer.vocab_size)
        threshold = chance - 0.5 * (chance - min(means))
        inside = -10.0 < -threshold < -4.0  # the curve crosses the threshold (else: no AoA for the word)
        expected[word] = c - math.log(6.0 / (-threshold + 10.0) - 1) / 4.0 if inside else None
    return rows, expected


def children(tmp_path: Path, midpoints: dict[str, float], extra: dict[str, list[float]] = ()) -> tuple[Path, dict]:
    """cdi_human.csv with shares exactly 0.9 / (1 + exp(-0.5 (age - c))) + 0.05, and the age where that
    reaches 0.5."""
    shares = {w: [sig(a, 0.9, 0.5, c, 0.05) for a in aoa.AGES] for w, c in midpoints.items()}
    expected = {w: c - math.log(0.9 / 0.45 - 1) / 0.5 for w, c in midpoints.items()}
    return write_human(tmp_path / "cdi_human.csv", {**shares, **dict(extra)}), expected


def test_score_is_pearson_of_the_closed_form_ages(tokenizer, tmp_path):
    model_mid = {"dog": 6.6, "ball": 6.9, "milk": 7.1, "shoe": 7.4, "cat": 7.5}
    child_mid = {"dog": 19.0, "ball": 21.5, "milk": 21.0, "shoe": 25.0, "cat": 26.5}
    rows, model_aoas = curves(tokenizer, {**model_mid, "juice": 7.0, "truck": 7.2})
    sparse = [math.nan] * 13 + [0.4, 0.6]  # two ages only: no child AoA for "juice"
    human, child_aoas = children(tmp_path, child_mid, {"juice": sparse})  # "truck" is not in the CDI
    got = aoa.curve_fitness(rows, human, tokenizer)
    assert set(got["words"]) == set(model_mid)
    for w in model_mid:
        assert got["words"][w][0] == pytest.approx(model_aoas[w], abs=1e-4)
        assert got["words"][w][1] == pytest.approx(child_aoas[w], abs=1e-4)
    r, p = pearson_df3([model_aoas[w] for w in model_mid], [child_aoas[w] for w in model_mid])
    assert p < 0.1 and r > 0.8
    assert got["aoa"] == pytest.approx(r, abs=1e-5)
    assert got["p_value"] == pytest.approx(p, abs=1e-5)


def test_weak_correlation_or_too_few_words_score_zero(tokenizer, tmp_path):
    model_mid = {"dog": 6.6, "ball": 6.9, "milk": 7.1, "shoe": 7.4, "cat": 7.5}
    child_mid = {"dog": 22.0, "ball": 19.0, "milk": 26.0, "shoe": 18.0, "cat": 24.0}
    rows, model_aoas = curves(tokenizer, model_mid)
    human, child_aoas = children(tmp_path, child_mid)
    r, p = pearson_df3([model_aoas[w] for w in model_mid], [child_aoas[w] for w in model_mid])
    assert p > 0.1  # the made-up ages are chosen so that r is not significant
    got = aoa.curve_fitness(rows, human, tokenizer)
    assert got["aoa"] == 0.0 and got["p_value"] == pytest.approx(p, abs=1e-5)
    two = aoa.curve_fitness([row for row in rows if row["target_word"] in ("dog", "ball")], human, tokenizer)
    assert (two["aoa"], two["n_words"], two["p_value"]) == (0.0, 2, None)
    assert two["words"]["ball"] == pytest.approx([model_aoas["ball"], child_aoas["ball"]], abs=1e-4)


def write_words(root: Path, contexts: dict[str, list[str]]) -> Path:
    folder = root / "full_eval" / "aoa"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / aoa.WORDS_FILE).write_text(json.dumps({w: [{"context": c, "count": 1} for c in cs]
                                                     for w, cs in contexts.items()}))
    return folder


CONTEXTS = {"dog": ["The cat saw the", " near the ball, a "], "milk": ["I want more"], "a": ["one letter:"],
            "juice": ["", "The juice and the"]}


@torch.no_grad()
def plain_surprisal(model, tok, context: str, word: str) -> float:
    """-sum log p of the word's tokens in ``context.strip() + " " + word``, each from one forward pass;
    NaN for a sentence of one token (nothing before it to predict it from: the official forward fails)."""
    prefix = context.strip() + " "
    enc = tok(prefix + word, return_offsets_mapping=True)
    if len(enc["input_ids"]) == 1:
        return math.nan
    ids = torch.tensor([enc["input_ids"]])
    lp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)  # (T, V)
    return -sum(lp[i - 1, ids[0, i]].item() for i, (_, end) in enumerate(enc["offset_mapping"])
                if end > len(prefix) and i > 0)


def test_run_writes_surprisal_rows_of_every_milestone(tokenizer, tmp_path):
    em.one_thread()
    run = em.milestone_run(tmp_path / "tiny", "gpt2", LINES)
    root = tmp_path / "evaluation_data"
    write_words(root, CONTEXTS)
    res = run_cli("eval_export", "aoa", "--model", run, "--eval_data", root, "--results", tmp_path / "results",
                  "--progress", "false", env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    assert "revision 19 of 19: chck_100M" in res.stdout and "left for 1 revision with this one" in res.stdout
    out = tmp_path / "results" / "tiny" / "main" / "zero_shot" / "causal" / "AoA_word"
    obj = json.loads((out / "surprisal.json").read_text())
    assert not (out / "aoa_score.json").exists()  # no cdi_human.csv: surprisals only, said on stderr
    assert "no cdi_human.csv" in res.stderr
    rows = obj["results"]
    assert len(rows) == 19 * 5 and obj["metadata"]["completed_steps"] == 19  # "a" (one letter) is left out
    assert collation.aoa_problem(obj, "strict-small") == "5 surprisal rows for chck_1M, the official set has 8005"
    for name in ("chck_1M", "chck_30M", "chck_100M"):
        model = em.GPT2LMHeadModel.from_pretrained(run / name).eval()
        mine = [r for r in rows if r["step"] == name]
        assert [(r["target_word"], r["context_id"], r["context"]) for r in mine] == \
            [(w, i, c) for w, cs in CONTEXTS.items() if len(w) > 1 for i, c in enumerate(cs)]
        assert mine[0]["word_count"] == dict(milestone_words("strict-small"))[name]
        for r in mine:
            assert r["surprisal"] == pytest.approx(plain_surprisal(model, tokenizer, r["context"], r["target_word"]),
                                                   abs=1e-4, nan_ok=True)
        assert math.isnan(mine[3]["surprisal"])  # "juice" alone after an empty context: one token
    res = run_cli("eval_export", "aoa", "--model", run, "--eval_data", root, "--results", tmp_path / "results",
                  "--progress", "false")
    assert res.returncode != 0 and "surprisal.json exists; pass --overwrite true" in res.stderr


def test_bad_input_fails_before_any_model(tmp_path):
    root = tmp_path / "evaluation_data"
    with pytest.raises(InputError, match="no full_eval/aoa/cdi_childes.json"):
        aoa.load(root)
    folder = write_words(root, {"dog": ["x"]})
    (folder / aoa.WORDS_FILE).write_text(json.dumps({"dog": ["not an object"]}))
    with pytest.raises(InputError, match="word 'dog': expected a list of"):
        aoa.load(root)
    human = write_human(folder / aoa.HUMAN_FILE, {"dog": [0.5] * 15})
    human.write_text(human.read_text().replace("0.5", "lots", 1))
    with pytest.raises(InputError, match=r"cdi_human.csv:2: column 16: 'lots' is not a number"):
        aoa.read_human(human)
    res = run_cli("eval_export", "aoa", "--model", tmp_path / "nothing-here", "--eval_data", root)
    assert res.returncode != 0 and "word 'dog'" in res.stderr


def noisy_curves(tokenizer, tmp_path: Path, seed: int) -> tuple[list[dict], Path]:
    """30 words: noisy sigmoid surprisal curves over the strict-small milestones (3 contexts each) and
    noisy CDI shares whose midpoints follow the curves' (some ages missing)."""
    import random

    rng = random.Random(seed)
    rows, shares = [], {}
    for i in range(30):
        word = f"w{i}"
        chance = aoa.word_pieces(tokenizer, word) * math.log(tokenizer.vocab_size)  # curves start above it
        a, b, c, d = rng.uniform(3, 8), rng.uniform(0.5, 8), rng.uniform(6.2, 7.8), -chance - rng.uniform(1, 3)
        for name, n in milestone_words("strict-small"):
            mean = -sig(math.log10(n + 1), a, b, c, d)
            rows += [{"step": name, "word_count": n, "target_word": word, "context_id": k, "context": "",
                      "surprisal": mean + rng.gauss(0, 0.4)} for k in range(3)]
        mid = 23 + 8 * (c - 7) + rng.gauss(0, 2)
        shares[word] = [math.nan if rng.random() < 0.1 else
                        min(1.0, max(0.0, sig(age, 0.9, 0.5, mid, 0.05) + rng.gauss(0, 0.05))) for age in aoa.AGES]
    return rows, write_human(tmp_path / f"cdi_human_{seed}.csv", shares)


@pytest.mark.slow
def test_equals_the_official_code(tokenizer, tmp_path):
    """The official 3d57ddc AoA code on its pinned versions ($BABYLM_OFFICIAL, skipped otherwise): the
    surprisal of every row of three milestones within 1e-4 (NaN where it gives NaN), and the score of
    noisy curves within 1e-9."""
    from babylm.tokenizer import make_legacy_readable
    from tests import official_pipeline as op

    strict = op.strict_dir()
    em.one_thread()
    run = em.milestone_run(tmp_path / "tiny", "gpt2", LINES)
    for folder in run.iterdir():
        make_legacy_readable(folder)  # readable by the official transformers 4.51
    root = tmp_path / "evaluation_data"
    write_words(root, CONTEXTS)
    assert run_cli("eval_export", "aoa", "--model", run, "--eval_data", root, "--results", tmp_path / "results",
                   "--progress", "false", env={"OMP_NUM_THREADS": "1"}).returncode == 0
    ours = json.loads((tmp_path / "results" / "tiny" / "main" / "zero_shot" / "causal" / "AoA_word" /
                       "surprisal.json").read_text())["results"]
    steps = ("chck_1M", "chck_40M", "chck_100M")
    pairs = {s: [(r["context"], r["target_word"]) for r in ours if r["step"] == s] for s in steps}
    rows, human = noisy_curves(tokenizer, tmp_path, 0)
    theirs = op.aoa(strict, run, "causal", pairs, rows, human, tmp_path)
    for s in steps:
        mine = [r["surprisal"] for r in ours if r["step"] == s]
        assert all(op.nan_equal_close(t, m, 1e-4) for t, m in zip(theirs["surprisal"][s], mine)), (s, theirs, mine)
    got = aoa.curve_fitness(rows, human, tokenizer)  # the run's tokenizer: the same training, the same vocabulary
    assert got["aoa"] != 0.0 and theirs["n_words"] == got["n_words"]
    assert theirs["aoa"] == pytest.approx(got["aoa"], abs=1e-9)
