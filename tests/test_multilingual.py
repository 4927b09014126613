"""The multilingual track: the budget unit, reproduce.sh multilingual-smoke from corpus to the two files,
lm-eval's scores against a plain per-item scorer, Global PIQA and Hanzi on hand-made items, fine-tuning,
MECO against a per-word reference, the collated files' checks, and bad input."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from babylm import multilingual_corpus as mc
from babylm.errors import InputError
from tests.reference import MISSING, reference_dir, required

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable


def _need_lm_eval() -> None:
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        if required():
            pytest.fail("lm_eval is not installed (requirements-dev.lock holds it)")
        pytest.skip("lm_eval is not installed (bash docker/install.sh installs requirements-dev.lock, which holds it)")


def _data() -> Path:
    ref = reference_dir()
    if ref is None or not (ref / "data" / "multilingual").is_dir():
        if required():
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return ref / "data" / "multilingual"


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([PY, "-m", "eval_export.multilingual", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


# ---- the budget unit ------------------------------------------------------------------------------

def test_budget_is_counted_in_english_equivalent_words_and_languages_interleave(tmp_path):
    # 5.43 bytes of English are one word; Dutch needs 1.0516 times the bytes, Chinese 0.936 times
    assert mc.words_equivalent(543, "eng") == pytest.approx(100.0)
    assert mc.words_equivalent(round(54300 * 1.0516), "nld") == pytest.approx(10000.0, abs=0.05)
    assert mc.words_equivalent(round(54300 * 0.936), "zho") == pytest.approx(10000.0, abs=0.05)
    eng = mc.LanguageText("eng", ["a b c", "d e f", "g h i", "j k l"], [])  # 4 x 6 bytes
    zho = mc.LanguageText("zho", ["我们去", "你好吗"], [])  # 2 x 10 bytes
    assert eng.bytes == 24 and zho.bytes == 20
    # positions (i + 0.5) / n: eng 1/8, 3/8, 5/8, 7/8; zho 1/4, 3/4
    assert mc.interleave([eng, zho]) == ["a b c", "我们去", "d e f", "g h i", "你好吗", "j k l"]
    manifest = mc.build_corpus([eng, zho], tmp_path / "c", budget_words=100)
    total = 24 / 5.43 + 20 / 0.936 / 5.43
    assert manifest["words_equivalent"] == pytest.approx(total, abs=0.05)
    assert manifest["whitespace_words"] == 14  # 12 English words + 2 Chinese lines without spaces
    assert manifest["milestone_unit_words"] == round(14 / total * 1_000_000)
    assert (tmp_path / "c" / "train" / "mixed.train").read_text(encoding="utf-8").count("\n") == 6
    # the same text (8.35 words) against a budget of 8: refused with one line, nothing written
    with pytest.raises(InputError, match=r"^corpus over budget: 8 English-equivalent words .*eng 24 bytes.* > 8 ") as err:
        mc.build_corpus([eng, zho], tmp_path / "over", budget_words=8)
    assert "\n" not in str(err.value) and not (tmp_path / "over").exists()


def test_bad_input_gets_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "data" / "eng").mkdir(parents=True)
    (tmp_path / "data" / "eng" / "a.txt").write_text("one two three\n", encoding="utf-8")
    out = tmp_path / "corpus"
    # a language without data
    res = _cli("corpus", "--languages", "eng,nld", "--data", str(tmp_path / "data"), "--out_dir", str(out))
    assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
    assert "no folder for language nld" in res.stderr and not out.exists()
    # over budget
    res = _cli("corpus", "--languages", "eng", "--data", str(tmp_path / "data"), "--budget_words", "2",
               "--out_dir", str(out))
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "corpus over budget" in res.stderr, res.stderr
    assert not out.exists()
    # an unknown language
    res = _cli("corpus", "--languages", "eng,fra", "--data", str(tmp_path / "data"), "--out_dir", str(out))
    assert res.returncode == 2 and "unknown language 'fra'" in res.stderr and not out.exists()
    # a task without local data while offline: refused before any model is loaded
    res = _cli("zeroshot", "--model", str(tmp_path / "none"), "--tasks", "hellaswag_en_mubench", "--offline", "true",
               "--data", str(tmp_path / "data"), "--results", str(tmp_path / "results"))
    assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
    assert "hellaswag_en_mubench: no local data at" in res.stderr and "aialt/MuBench" in res.stderr
    assert not (tmp_path / "results").exists()


# ---- the whole path in one command -----------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    """reproduce.sh multilingual-smoke: corpus -> tokenizer -> train -> zero-shot -> fine-tune -> MECO ->
    collate -> validate, on the fine-tuning text of the reference data."""
    data = _data()
    _need_lm_eval()
    out = tmp_path_factory.mktemp("ml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BABYLM_")}
    env.update(BABYLM_OUT=str(out), BABYLM_SKIP_INSTALL="1", BABYLM_PYTHON=PY, BABYLM_MULTILINGUAL_DATA=str(data),
               PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", str(REPO / "reproduce.sh"), "multilingual-smoke"], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = out / "multilingual-smoke"
    (run / "stdout.txt").write_text(proc.stdout)
    return run


@pytest.mark.slow
def test_smoke_runs_from_corpus_to_two_valid_files(smoke):
    log = (smoke / "stdout.txt").read_text()
    fert = {row["language"]: row for row in (json.loads(x) for x in log.splitlines()
                                             if x.startswith('{"language"'))}
    assert set(fert) == {"eng", "nld", "zho"} and "tokens_per_character" in fert["zho"]
    assert 1.0 < fert["eng"]["tokens_per_word"] < 10 and "ok" in log.splitlines()
    manifest = json.loads((smoke / "corpus" / "multilingual_corpus.json").read_text())
    assert set(manifest["languages"]) == {"eng", "nld", "zho"}
    results = smoke / "results" / "multilingual-smoke-model"
    scores = json.loads((results / "multilingual-smoke-model_submission.json").read_text())
    preds = json.loads((results / "multilingual-smoke-model_predictions.json").read_text())
    assert set(scores) == {"zhoblimp", "multiblimp_eng", "sib200", "mnli"}
    assert set(scores["sib200"]) == set(scores["mnli"]) == {"en", "nl", "zh"}
    # the scores equal the per-item credits lm-eval logged: 118 paradigms x 5 items and 5 MultiBLiMP items
    zero = results / "main" / "zeroshot"
    items = [json.loads(x) for f in sorted(zero.glob("samples_zhoblimp_*.jsonl")) for x in f.read_text().splitlines()]
    assert len(items) == 590
    assert scores["zhoblimp"]["zhoblimp"] == pytest.approx(sum(i["acc"] for i in items) / 590)
    assert preds["zeroshot"]["zhoblimp"]["alias"] == " - zhoblimp" and preds["zeroshot"]["zeroshot_zho"]["alias"] == "zeroshot_zho"
    # fine-tuning: eval_accuracy is the accuracy of predictions.txt against the first 32 validation rows
    for xx in ("en", "nl", "zh"):
        for task in ("sib200", "mnli"):
            gold = [json.loads(x)["label"] for x in (_data() / "finetune" / xx / task / f"{task}_{xx}.valid.jsonl")
                    .read_text(encoding="utf-8").splitlines()[:32]]
            got = [p["prediction"] for p in preds["finetune"][f"{task}_{xx}"]]
            assert scores[task][xx] == pytest.approx(sum(g == p for g, p in zip(gold, got)) / 32)
    # MECO L2: English surprisals under nld and zho, two passages
    l2 = preds["hidden"]["meco_l2"]
    assert set(l2) == {"nld", "zho"} and l2["nld"] == l2["zho"] and all(v > 0 for v in l2["nld"].values())


# ---- lm-eval against a plain per-item scorer -------------------------------------------------------

def _plain_loglik(model, tok, context: str | None, continuation: str) -> float:
    """Summed log-probability of the continuation's tokens after <s> (+ context), computed directly."""
    import torch

    bos = [tok.bos_token_id]
    if context is None:  # minimal pairs: empty context, continuation " " + sentence
        ctx, whole = bos, bos + tok.encode(continuation, add_special_tokens=False)
    else:
        ctx = bos + tok.encode(context, add_special_tokens=False)
        whole = bos + tok.encode(context + continuation, add_special_tokens=False)
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), -1)
    return sum(logp[i - 1, whole[i]].item() for i in range(len(ctx), len(whole)))


def _load(smoke):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = smoke / "models" / "multilingual-smoke-model" / "final"
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(path)


@pytest.mark.slow
def test_zhoblimp_multiblimp_and_blimp_through_lm_eval_equal_a_plain_scorer(smoke, tmp_path):
    from eval_export.multilingual.tasks import resolve
    from eval_export.multilingual.zeroshot import bos_model, run_tasks

    data = _data()
    (tmp_path / "zhoblimp").mkdir()
    for name in ("BA_deletion", "classifier_noun_agreement", "question_A_not_A"):
        shutil.copy(data / "zhoblimp" / "ZhoBLiMP" / f"{name}.jsonl", tmp_path / "zhoblimp")
    shutil.copytree(data / "multiblimp", tmp_path / "multiblimp")
    (tmp_path / "blimp_filtered").mkdir()  # English BLiMP (filtered): the strict tracks' copy of the same 67 paradigms
    for name in ("adjunct_island", "determiner_noun_agreement_1"):
        shutil.copy(data.parent / "eval" / "blimp_filtered" / f"{name}.jsonl", tmp_path / "blimp_filtered")
    tasks = resolve(["zhoblimp", "multiblimp_eng", "blimp_babylm_filtered"], tmp_path)
    assert [s.name for s in tasks[2].subtasks] == ["blimp_babylm_filtered_adjunct_island",
                                                    "blimp_babylm_filtered_determiner_noun_agreement_1"]
    lm = bos_model(str(smoke / "models" / "multilingual-smoke-model" / "final"), batch_size=16)
    results, samples = run_tasks(lm, tasks, limit=30)
    model, tok = _load(smoke)
    for task in tasks:
        for sub in task.subtasks:
            good, bad = sub.fields
            rows = _rows(sub.data_file)[:30]
            credits = []
            for row, sample in zip(rows, samples[sub.name]):
                plain = [_plain_loglik(model, tok, None, " " + row[good]), _plain_loglik(model, tok, None, " " + row[bad])]
                assert [r[0] for r in sample["filtered_resps"]] == pytest.approx(plain, abs=2e-3)
                credit = 0.5 if plain[0] == plain[1] else float(plain[0] > plain[1])
                assert sample["acc"] == credit  # the same choice per item
                credits.append(credit)
            assert len(credits) == 30 and results[sub.name]["acc,none"] == pytest.approx(sum(credits) / 30)


def _rows(path: Path) -> list[dict]:
    if path.suffix == ".tsv":
        import csv

        with path.open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f, delimiter="\t"))
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.mark.slow
def test_global_piqa_acc_norm_and_hanzi_on_hand_made_items(smoke, tmp_path):
    from babylm.tokenizer import train_tokenizer_from_texts
    from eval_export.multilingual.tasks import hanzi_results, resolve
    from eval_export.multilingual.zeroshot import assemble, bos_model, run_tasks

    piqa = [{"prompt": "To open a jar,", "solution0": "twist the lid.", "solution1": "paint it blue.", "solution2": "sing.",
             "solution3": "put it in the fridge for a very long time.", "label": 0},
            {"prompt": "Om brood te bakken,", "solution0": "gebruik een oven.", "solution1": "gebruik een fiets.",
             "solution2": "lees een boek.", "solution3": "zwem.", "label": 0},
            {"prompt": "为了喝水，", "solution0": "用杯子。", "solution1": "用书。", "solution2": "用鞋子。",
             "solution3": "用一个很大的盒子装起来。", "label": 3}]
    hanzi = [{"sentence_good": "我们", "sentence_bad": "我门"}, {"sentence_good": "你好", "sentence_bad": "你女子"}]
    (tmp_path / "global_piqa_parallel_en.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in piqa))
    (tmp_path / "hanzi_structure.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in hanzi))
    tasks = resolve(["global_piqa_parallel_en", "hanzi_structure"], tmp_path)
    lm = bos_model(str(smoke / "models" / "multilingual-smoke-model" / "final"), batch_size=8)
    results, samples = run_tasks(lm, tasks)
    model, tok = _load(smoke)
    hits = []
    for item, sample in zip(piqa, samples["global_piqa_parallel_en"]):
        sols = [item[f"solution{i}"] for i in range(4)]
        lls = [_plain_loglik(model, tok, item["prompt"], " " + s) for s in sols]
        assert [r[0] for r in sample["filtered_resps"]] == pytest.approx(lls, abs=2e-3)
        base = len(tok.encode(item["prompt"], add_special_tokens=False))
        counts = [len(tok.encode(item["prompt"] + " " + s, add_special_tokens=False)) - base for s in sols]
        norm = [ll / n for ll, n in zip(lls, counts)]
        hits.append(float(norm.index(max(norm)) == item["label"]))
        assert sample["acc_norm"] == hits[-1]
    assert results["global_piqa_parallel_en"]["acc_norm,none"] == pytest.approx(sum(hits) / 3)
    assert assemble(tasks, results, samples)["global_piqa_eng"]["acc_norm,none"] == pytest.approx(sum(hits) / 3)
    # Hanzi: a byte-level BPE has no unknown token, so lm-eval's credit is the plain strict comparison
    for item, sample in zip(hanzi, samples["hanzi_structure"]):
        good, bad = (_plain_loglik(model, tok, None, " " + item[k]) for k in ("sentence_good", "sentence_bad"))
        assert sample["acc"] == float(good > bad)
    # a tokenizer with an unknown token (WordPiece trained on English only): a pair with a character it
    # lacks counts wrong even when the good sentence scores higher; an exact tie counts wrong
    wp = train_tokenizer_from_texts(iter(["the cat sat", "a dog ran"] * 20), model="wordpiece", vocab_size=60)
    score = hanzi_results(wp)
    assert score({"sentence_good": "the cat", "sentence_bad": "cat the"}, [(-1.0, False), (-2.0, False)]) == {"acc": 1.0}
    assert score({"sentence_good": "the 猫", "sentence_bad": "cat the"}, [(-1.0, False), (-2.0, False)]) == {"acc": 0.0}
    assert score({"sentence_good": "the cat", "sentence_bad": "cat the"}, [(-1.0, False), (-1.0, False)]) == {"acc": 0.0}


# ---- fine-tuning's early stopping, MECO ------------------------------------------------------------

@pytest.mark.slow
def test_finetune_stops_after_patience_epochs_without_gain(smoke, tmp_path):
    from eval_export import classifier as clf
    from eval_export.multilingual import finetune as ft

    backbone = clf.load_backbone(str(smoke / "models" / "multilingual-smoke-model" / "final"), "main", "right", 128)
    options = {"lr": 1e-12, "batch_size": 8, "epochs": 10, "patience": 2, "max_length": 128, "seed": 12, "limit": 16}
    res = ft.finetune_language_task(backbone, _data() / "finetune", "nl", "mnli", tmp_path / "nl" / "mnli", options, "cpu")
    # a learning rate of 1e-12 changes nothing: no gain after epoch 1, so epochs 2 and 3 and then stop
    assert res["epochs_run"] == 3 and res["best_epoch"] == 1
    train = (_data() / "finetune" / "nl" / "mnli" / "mnli_nl.train.jsonl").read_text(encoding="utf-8").splitlines()
    assert res["labels"] == sorted({json.loads(x)["label"] for x in train}) and len(res["labels"]) == 3
    lines = (tmp_path / "nl" / "mnli" / "predictions.txt").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 17


@pytest.mark.slow
def test_meco_surprisal_equals_per_word_reference(smoke):
    import torch

    from eval_export.multilingual.meco import passage_surprisals, read_stims

    model, tok = _load(smoke)
    rows = read_stims(_data() / "meco" / "meco_l2_stims.tsv")["1"][:25]
    got = passage_surprisals(model, tok, rows, 1024)
    for row in rows:
        prefix, target = row["FullTextMarked"].split("*")[:2]
        enc = tok(prefix + target, add_special_tokens=False, return_offsets_mapping=True)
        first = next(i for i, (_, e) in enumerate(enc["offset_mapping"]) if e > len(prefix))
        ids = [tok.bos_token_id] + enc["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
        want = -sum(logp[p - 1, ids[p]].item() for p in range(first + 1, len(ids)))
        assert got[f"1:{row['wordnum']}"] == pytest.approx(want, abs=2e-3)


L1_PASSAGES = {  # (MECO code, itemid): words of a passage, as the L1 file lists them
    ("en", "1"): "The old man walked to the river and sat down.".split(),
    ("du", "1"): "De oude man liep naar de rivier en ging zitten.".split(),
    ("ch_s", "1"): ["老人", "走到", "河边", "坐下", "了。"],
    ("du", "2"): "Het regent vandaag in de stad.".split(),
}


def _l1_stims(path: Path) -> None:
    """meco_l1_stims.tsv as the official file has it: one row per word, FullText the passage up to the word
    (Chinese without spaces), FullTextMarked the same with the word in *...*; ids repeat across languages."""
    rows = ["lang\titemid\twordnum\tword\tFullText\tFullTextMarked"]
    for (code, item), words in L1_PASSAGES.items():
        sep = "" if code == "ch_s" else " "
        for k, word in enumerate(words, 1):
            before = sep.join(words[:k - 1]) + (sep if k > 1 else "")
            rows.append(f"{code}\t{item}\t{k}\t{word}\t{before}{word}\t{before}*{word}*")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_meco_l1_surprisal_equals_per_word_reference(tmp_path):
    import torch

    from eval_export.multilingual.meco import l1_predictions
    from tests.export_models import build

    lines = [("" if c == "ch_s" else " ").join(w) for (c, _), w in L1_PASSAGES.items()]
    model, tok = build("gpt2", lines * 20)
    model.eval()
    _l1_stims(tmp_path / "meco_l1_stims.tsv")
    got = l1_predictions(model, tok, tmp_path / "meco_l1_stims.tsv", ["eng", "nld", "zho"], 1024)
    assert {lang: sorted(v) for lang, v in got.items()} == {
        "eng": [f"1:{k}" for k in sorted(range(1, 11), key=str)],
        "nld": sorted([f"1:{k}" for k in range(1, 11)] + [f"2:{k}" for k in range(1, 7)]),
        "zho": [f"1:{k}" for k in range(1, 6)]}
    for (code, item), words in L1_PASSAGES.items():
        lang = {"en": "eng", "du": "nld", "ch_s": "zho"}[code]
        sep = "" if code == "ch_s" else " "
        text = sep.join(words)
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = [tok.bos_token_id] + enc["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
        start = 0
        for k, word in enumerate(words, 1):
            end = start + len(word)
            toks = [i for i, (s, e) in enumerate(enc["offset_mapping"]) if e > start and s < end]
            want = -sum(logp[i, ids[i + 1]].item() for i in toks)  # token i sits at position i + 1 after <s>
            assert got[lang][f"{item}:{k}"] == pytest.approx(want, abs=1e-4), (lang, item, k)
            start = end + len(sep)
    # the command: L1 of every language beside L2, in predictions_meco.json
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    words = L1_PASSAGES[("en", "1")]
    (tmp_path / "meco_l2_stims.tsv").write_text("itemid\twordnum\tword\tFullText\tFullTextMarked\n" + "".join(
        f"3\t{k}\t{w}\t{' '.join(words[:k])}\t{' '.join(words[:k - 1] + ['*' + w + '*'])}\n"
        for k, w in enumerate(words, 1)), encoding="utf-8")
    res = _cli("meco", "--model", str(tmp_path / "model"), "--meco_dir", str(tmp_path), "--results", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    written = json.loads((tmp_path / "r" / "model" / "main" / "meco" / "predictions_meco.json").read_text())
    assert set(written["meco_l1"]) == {"eng", "nld", "zho"} and set(written["meco_l2"]) == {"nld", "zho"}
    for lang, values in got.items():
        assert written["meco_l1"][lang] == pytest.approx(values, abs=1e-4)
    # English read as L2 is the English L1 passage under another id
    assert [written["meco_l2"]["nld"][f"3:{k}"] for k in range(1, 11)] == pytest.approx(
        [got["eng"][f"1:{k}"] for k in range(1, 11)], abs=1e-4)
    # a language without rows in the file: one line naming the file and the code
    _l1_stims(tmp_path / "only.tsv")
    (tmp_path / "only.tsv").write_text("\n".join(x for x in (tmp_path / "only.tsv").read_text().splitlines()
                                                 if not x.startswith("ch_s")) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"only.tsv: no rows with lang 'ch_s' \(MECO L1 of zho\)"):
        l1_predictions(model, tok, tmp_path / "only.tsv", ["zho"], 1024)


# ---- the collated files' checks ----------------------------------------------------------------------

def test_validate_refuses_what_the_leaderboard_refuses(tmp_path):
    from eval_export.multilingual.collate import check_files

    good = tmp_path / "s.json"
    good.write_text(json.dumps({"zhoblimp": {"zhoblimp": 0.5}, "mnli": {"en": 0.4, "zh": 0.3}}))
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({"zeroshot": {}, "finetune": {"mnli_en": []}, "hidden": {}, "fast_eval_results": []}))
    assert check_files(good, preds)[0] == "2 tasks in the scores file"
    cases = [({"hanzi_pinyin": {"hanzi_pinyin": 0.5}}, "server-scored"), ({"zhoblimp": {"zhoblimp": "0.5"}}, "finite number"),
             ({"zhoblimp": {"zhoblimp": math.inf}}, "finite number"), ({"zhoblimp": 0.5}, "expected an object")]
    for bad, words in cases:
        good.write_text(json.dumps(bad))
        with pytest.raises(InputError, match=words):
            check_files(good)
    good.write_text(json.dumps({"zhoblimp": {"zhoblimp": 0.5}}))
    preds.write_text(json.dumps({"zeroshot": {}, "finetune": {}, "hidden": {}}))
    with pytest.raises(InputError, match="at least one of the sections"):
        check_files(good, preds)
    res = _cli("validate", str(good), str(preds))
    assert res.returncode == 1 and res.stderr.count("\n") == 1


def test_reproduce_lists_the_multilingual_presets():
    env = {**os.environ, "BABYLM_SKIP_INSTALL": "1", "BABYLM_PYTHON": PY}
    proc = subprocess.run(["bash", str(REPO / "reproduce.sh"), "--list"], cwd=REPO, capture_output=True, text=True, env=env)
    assert proc.returncode == 0
    block = proc.stdout.split("\nmultilingual-smoke ", 1)[1].split("\n\n", 1)[0]
    steps = [line.split()[1] for line in block.splitlines()[1:]]
    assert steps == ["ml-corpus", "ml-tokenizer", "ml-train", "ml-zeroshot", "ml-finetune", "ml-meco", "ml-collate",
                     "ml-validate"]
    proc = subprocess.run(["bash", str(REPO / "reproduce.sh"), "multilingual-smoke"], cwd=REPO, capture_output=True,
                          text=True, env={k: v for k, v in env.items() if k != "BABYLM_MULTILINGUAL_DATA"})
    assert proc.returncode == 2 and proc.stderr.startswith("error: the multilingual presets need their evaluation "
                                                           "data: set BABYLM_MULTILINGUAL_DATA")
    assert proc.stdout == ""  # refused before the run folder or its log is made


# ---- lm-eval's own run with the official configurations ----------------------------------------------

@pytest.mark.slow
def test_official_configurations_give_our_scores(smoke, tmp_path):
    """With $BABYLM_OFFICIAL (a babylm-eval checkout at 3d57ddc): the organisers' YAMLs and their hf-bos
    model, run by lm-eval on the same local files (only the data location changed: the hub is not
    reachable), give our per-item scores and choices on the tasks whose data is in the reference folder."""
    given = os.environ.get("BABYLM_OFFICIAL")
    if not given:
        pytest.skip("set BABYLM_OFFICIAL to a checkout of babylm-org/babylm-eval to compare with the official configurations")
    official = Path(given) / "multilingual"
    if not (official / "tasks" / "zhoblimp").is_dir():
        pytest.fail(f"BABYLM_OFFICIAL={given} holds no multilingual/tasks/zhoblimp; point it at a 3d57ddc checkout")
    import lm_eval
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    from eval_export.multilingual.tasks import resolve
    from eval_export.multilingual.zeroshot import bos_model, run_tasks

    sys.path.insert(0, str(official / "scripts"))
    import bos_hf_model  # noqa: F401  (registers the official hf-bos model)

    data = _data()
    local = {"zhoblimp_BA_deletion": ("json", data / "zhoblimp" / "ZhoBLiMP" / "BA_deletion.jsonl", "zhoblimp"),
             "zhoblimp_question_A_not_A": ("json", data / "zhoblimp" / "ZhoBLiMP" / "question_A_not_A.jsonl", "zhoblimp"),
             "multiblimp_eng": ("csv", data / "multiblimp" / "eng" / "hf_cache_eng_data.tsv", "multiblimp")}
    configs = []
    for name, (kind, path, folder) in local.items():
        cfg = load_yaml(official / "tasks" / folder / f"{name}.yaml")
        kwargs = {"data_files": {"train": str(path)}, **({"delimiter": "\t"} if kind == "csv" else {})}
        cfg.update(dataset_path=kind, dataset_name=None, dataset_kwargs=kwargs)
        configs.append(cfg)
    model = str(smoke / "models" / "multilingual-smoke-model" / "final")
    theirs = lm_eval.simple_evaluate(model="hf-bos", device="cpu", model_args=f"pretrained={model},add_bos_token=True",
                                     tasks=configs, limit=20, task_manager=TaskManager(include_defaults=False),
                                     log_samples=True, bootstrap_iters=0)
    (tmp_path / "zhoblimp").mkdir()
    for name in ("BA_deletion", "question_A_not_A"):
        shutil.copy(data / "zhoblimp" / "ZhoBLiMP" / f"{name}.jsonl", tmp_path / "zhoblimp")
    shutil.copytree(data / "multiblimp", tmp_path / "multiblimp")
    results, samples = run_tasks(bos_model(model), resolve(["zhoblimp", "multiblimp_eng"], tmp_path), limit=20)
    for name in local:
        assert results[name]["acc,none"] == pytest.approx(theirs["results"][name]["acc,none"])
        for ours, off in zip(samples[name], sorted(theirs["samples"][name], key=lambda s: s["doc_id"])):
            assert ours["acc"] == off["acc"]
            assert [r[0] for r in ours["filtered_resps"]] == pytest.approx([r[0] for r in off["filtered_resps"]], abs=1e-3)


# ---- the hub data sets when online, from a local stand-in of the hub ---------------------------------

ZHO_ITEMS = {"BA_deletion": [("我把书看完了。", "我把看完了。"), ("他把门关上了。", "他把关上了。"), ("她把饭吃了。", "她把吃了。")],
             "question_A_not_A": [("你去不去？", "你去不去吗不？"), ("他是不是老师？", "他是不老师是？")]}
ENG_ITEMS = [("The dogs bark.", "The dogs barks."), ("She runs fast.", "She run fast."),
             ("They were here.", "They was here."), ("He is tall.", "He are tall.")]


def _zhoblimp_card() -> bytes:
    # a card whose configs name parquet files, as the hub lays out a converted data set
    configs = "".join(f"- config_name: {p}\n  data_files:\n  - split: train\n    path: {p}/train-*.parquet\n"
                      for p in ZHO_ITEMS)
    return f"---\nconfigs:\n{configs}---\n# ZhoBLiMP\n".encode()


def _parquet(rows: list[dict]) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def test_tasks_without_local_data_read_the_hub_data_set_when_online(tmp_path, monkeypatch):
    _need_lm_eval()
    import huggingface_hub.constants as constants

    from eval_export.multilingual import hub_data
    from eval_export.multilingual.tasks import resolve
    from eval_export.multilingual.zeroshot import bos_model, run_tasks
    from tests.export_models import build
    from tests.hub_server import HubServer

    zho = {p: [{"UID": p, "sentence_good": g, "sentence_bad": b, "pairID": i} for i, (g, b) in enumerate(items)]
           for p, items in ZHO_ITEMS.items()}
    tsv = "\tsen\twrong_sen\tphenomenon\n" + "".join(f"{i}\t{g}\t{b}\tSV-#\n" for i, (g, b) in enumerate(ENG_ITEMS))
    # the same items as a local folder
    local = tmp_path / "local"
    (local / "zhoblimp").mkdir(parents=True)
    for p, rows in zho.items():
        (local / "zhoblimp" / f"{p}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                                       encoding="utf-8")
    (local / "multiblimp" / "eng").mkdir(parents=True)
    (local / "multiblimp" / "eng" / "data.tsv").write_text(tsv, encoding="utf-8")

    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    with HubServer("hf_test_token") as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
        hub.add_repo("Junrui1202/zhoblimp", {"README.md": _zhoblimp_card(),
                                             **{f"{p}/train-00000-of-00001.parquet": _parquet(rows)
                                                for p, rows in zho.items()}})
        # the hub's data.tsv has no index column (the local copy, re-written by pandas, has one)
        hub_tsv = "".join("\t".join(line.split("\t")[1:]) + "\n" for line in tsv.splitlines())
        hub.add_repo("jumelet/multiblimp", {"eng/data.tsv": hub_tsv.encode(), "nld/data.tsv": b"\tsen\twrong_sen\n0\tx\ty\n"})
        assert not hub_data.offline()
        cache = tmp_path / "cache"
        from_hub = resolve(["zhoblimp", "multiblimp_eng"], tmp_path / "empty", cache)
        gets = list(hub.file_gets)
        assert sorted(gets) == sorted(["README.md", "BA_deletion/train-00000-of-00001.parquet",
                                       "question_A_not_A/train-00000-of-00001.parquet", "eng/data.tsv"])
        # fetched once: the cache is read as a local folder afterwards, with the hub gone
        assert [s.name for s in from_hub[0].subtasks] == ["zhoblimp_BA_deletion", "zhoblimp_question_A_not_A"]
        # a saved table's unnamed index column is dropped (lm-eval would read doc[""] as the empty context)
        nld = resolve(["multiblimp_nld"], None, cache)[0].subtasks[0].data_file
        assert nld == cache / "multiblimp_nld.jsonl" and json.loads(nld.read_text()) == {"sen": "x", "wrong_sen": "y"}
        # a data set the hub does not give: one line naming it, nothing cached
        with pytest.raises(InputError, match=r"^xcomps_nl: could not read the hub data set fpadovani/xcomps-dataset "
                                             r"\(RepositoryNotFoundError.*--offline true") as err:
            resolve(["xcomps_nl"], local, cache)
        assert "\n" not in str(err.value) and not (cache / "xcomps_nl.jsonl").exists()
    again = resolve(["zhoblimp", "multiblimp_eng"], None, cache)
    assert [s.data_file for t in again for s in t.subtasks] == [s.data_file for t in from_hub for s in t.subtasks]
    from_local = resolve(["zhoblimp", "multiblimp_eng"], local)

    model, tok = build("gpt2", [g for items in ZHO_ITEMS.values() for g, _ in items] + [g for g, _ in ENG_ITEMS])
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    lm = bos_model(str(tmp_path / "model"))
    hub_results, hub_samples = run_tasks(lm, from_hub)
    local_results, local_samples = run_tasks(lm, from_local)
    assert set(hub_results) == set(local_results) == {"zhoblimp_BA_deletion", "zhoblimp_question_A_not_A", "multiblimp_eng"}
    for name, res in local_results.items():
        assert hub_results[name]["acc,none"] == res["acc,none"]
        assert [s["filtered_resps"] for s in hub_samples[name]] == [s["filtered_resps"] for s in local_samples[name]], name
    assert [len(local_samples[n]) for n in ("zhoblimp_BA_deletion", "zhoblimp_question_A_not_A", "multiblimp_eng")] == [3, 2, 4]

    # offline (the variables or --offline): no hub, the one-line error naming the data set
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert hub_data.offline() and hub_data.offline(True)
    with pytest.raises(InputError, match=r"^xcomps_nl: no local data at .* and offline .*fpadovani/xcomps-dataset"):
        resolve(["xcomps_nl"], local)


# ---- cross-lingual POS on a tiny local treebank ----------------------------------------------------

def _treebank(lang: str) -> str:
    """A hand-made CoNLL-U treebank: every sentence of a four-word grammar, one multi-word token line."""
    words = {"en": (["the", "a"], "DET", ["cat", "dog", "bird", "child", "man"], "NOUN", ["sleeps", "runs", "sings", "eats"], "VERB", "."),
             "nl": (["de", "een"], "DET", ["kat", "hond", "vogel", "man", "vrouw"], "NOUN",
                    ["slaapt", "rent", "zingt", "eet"], "VERB", "."),
             "zh": (["我", "你", "他"], "PRON", ["吃", "看", "喜欢"], "VERB", ["苹果", "书", "猫"], "NOUN", "。")}[lang]
    a, ta, b, tb, c, tc, end = words
    rows = [[(x, ta), (y, tb), (z, tc), (end, "PUNCT")] for x in a for y in b for z in c]
    out = []
    for k, row in enumerate(rows):
        out.append(f"# sent_id = {lang}-{k}")
        if k == 0:
            out.append("1-2\t" + " ".join(w for w, _ in row[:2]) + "\t_\t_\t_\t_\t_\t_\t_\t_")
        out += [f"{i}\t{w}\t{w}\t{t}\t_\t_\t0\tdep\t_\t_" for i, (w, t) in enumerate(row, 1)] + [""]
    return "\n".join(out) + "\n"


@pytest.mark.slow
def test_pos_one_model_on_a_uniform_mixture_scored_per_language(smoke, tmp_path):
    from eval_export.multilingual import pos
    from eval_export.multilingual.collate import collate

    for xx in ("en", "nl", "zh"):
        (tmp_path / "ud" / xx).mkdir(parents=True)
        (tmp_path / "ud" / xx / f"{xx}_tiny-ud-train.conllu").write_text(_treebank(xx), encoding="utf-8")
    sentences = {xx: pos.read_conllu(tmp_path / "ud" / xx / f"{xx}_tiny-ud-train.conllu") for xx in ("en", "nl", "zh")}
    assert [len(v) for v in sentences.values()] == [40, 40, 27]  # the range line 1-2 adds no word
    assert sentences["en"][0] == (["the", "cat", "sleeps", "."], ["DET", "NOUN", "VERB", "PUNCT"])
    splits = {xx: pos.language_splits(v) for xx, v in sentences.items()}
    assert [len(splits["en"][s]) for s in ("train", "validation", "test")] == [32, 4, 4]
    assert [len(splits["zh"][s]) for s in ("train", "validation", "test")] == [21, 3, 3]
    assert len(pos.mixture(splits)["train"]) == 3 * 21  # as many from each language as the smallest has
    model = smoke / "models" / "multilingual-smoke-model"
    results = tmp_path / "results"
    res = _cli("finetune", "--model", str(model), "--tasks", "pos", "--pos_data", str(tmp_path / "ud"), "--lr", "0.002",
               "--batch_size", "8", "--results", str(results), "--model_name", "m")
    assert res.returncode == 0, res.stderr[-2000:]
    # the grammar is learnt: every test sentence gets its gold tags, in the official predictions.txt layout
    for xx in ("en", "nl", "zh"):
        lines = (results / "m" / "main" / "finetune_multilingual" / "pos" / xx / "predictions.txt").read_text().splitlines()
        gold = [" ".join(pos.UPOS[t] for t in row["upos"]) for row in splits[xx]["test"]]
        assert lines == ["index\tpredictions"] + [f"{i}\t{g}" for i, g in enumerate(gold)]
    scores, preds = collate(results / "m")
    assert scores == {"pos": {"en": 1.0, "nl": 1.0, "zh": 1.0}}
    assert preds["finetune"]["pos_zh"][0] == {"index": 0, "prediction": gold[0]}
