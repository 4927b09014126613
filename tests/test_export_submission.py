"""Output files: exact per-task format, collation, 2024/2023 formats, validate (passes good files,
fails missing/short/reordered ones with the path), and the CLI end to end on tiny saved models."""

from __future__ import annotations

import copy
import gzip
import json
import math
import shutil

import pytest

from babylm.challenge import milestones
from babylm.errors import InputError
from eval_export import loading, submission, tasks, validation, zero_shot
from tests import export_models as em
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


def fake_result(data: tasks.TaskData, pick=lambda i: 0) -> zero_shot.TaskResult:
    """A result choosing candidate ``pick(i)`` for item i (the writers only see choices and scores)."""
    r = zero_shot.TaskResult(data)
    if data.kind == "reading":
        r.surprisal = [float(i % 7) + 0.5 for i in range(len(data.rows))]
        r.prev_surprisal = [math.nan if i == 0 else 1.0 for i in range(len(data.rows))]
        return r
    for i, it in enumerate(data.items):
        r.chosen.append(pick(i) % len(it.candidates))
        r.scores.append([-1.0] * len(it.candidates))
        r.ties.append(True)
        if data.kind == "wug":
            r.probs.append(0.25)
    return r


def write_full_tree(results, root, model="m", backend="causal", revision="main", eval_set="full"):
    for name in ("blimp", "blimp_supplement", "entity_tracking", "wug_adj", "reading"):
        data = tasks.load_task(name, eval_set, root, year="2025")  # the 2025 tree (WUG, all entity-tracking items)
        out = submission.task_dir(results, model, revision, backend, data.task, data.data_dir)
        submission.write_task(fake_result(data, pick=lambda i: i), out, {}, overwrite=True)


def test_per_task_file_is_byte_exact(root, tmp_path):
    data = tasks.load_task("blimp_supplement", "fast", root)
    out = submission.write_task(fake_result(data, pick=lambda i: i), tmp_path / "blimp" / "supplement_fast", {}, False)
    text = (out / "predictions.json").read_text()
    obj = json.loads(text)
    assert text == json.dumps(obj) and not text.endswith("\n") and text.isascii()
    assert list(obj) == sorted(tasks.SUPPLEMENT_COUNTS)  # file order (files are read sorted)
    first = obj["qa_congruence_easy"]["predictions"][:2]
    assert [p["id"] for p in first] == ["qa_congruence_easy_0", "qa_congruence_easy_1"]
    # item 1 picked candidate 1 (the bad sentence), item 0 the good one: pred is the sentence itself
    assert first[1]["pred"] == data.items[51].preds[1] and "\\n" in text  # dialogue newline escaped
    # reading: integer ids, bare NaN
    reading = tasks.load_task("reading", "full", root, limit=3)
    out = submission.write_task(fake_result(reading), tmp_path / "reading", {}, False)
    text = (out / "predictions.json").read_text()
    assert text.startswith('{"reading": {"predictions": [{"id": 0, "pred": 0.5, "prev_pred": NaN}, {"id": 1, ')
    # wug: prob present
    wug = tasks.load_task("wug_adj", "full", root, limit=2, year="2025")
    out = submission.write_task(fake_result(wug), tmp_path / "wug", {}, False)
    assert json.loads((out / "predictions.json").read_text())["wug_adj"]["predictions"][1] == \
        {"id": "wug_adj_1", "pred": wug.items[1].preds[0], "prob": 0.25}
    with pytest.raises(FileExistsError):  # existing results are not replaced without overwrite
        submission.write_task(fake_result(wug), tmp_path / "wug", {}, False)


@pytest.fixture(scope="module")
def full_tree(root, tmp_path_factory):
    """Full-eval prediction files of model "m" (every item answered with candidate ``i % n``)."""
    results = tmp_path_factory.mktemp("tree") / "results"
    write_full_tree(results, root)
    return results


def test_validate_catches_missing_short_and_reordered(root, full_tree, tmp_path):
    path = full_tree / "m/main/zero_shot/causal/blimp/blimp_filtered/predictions.json"
    report = validation.validate_file(path, root)
    assert report.checked == ["blimp"]
    good = json.loads(path.read_text())

    def fails(obj, pattern):
        bad = tmp_path / "bad" / "blimp" / "blimp_filtered" / "predictions.json"
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_text(json.dumps(obj))
        with pytest.raises(InputError, match=pattern):
            validation.validate_file(bad, root)

    obj = copy.deepcopy(good)
    del obj["wh_island"]
    fails(obj, r"blimp\.wh_island: missing subtask")
    obj = copy.deepcopy(good)
    obj["adjunct_island"]["predictions"].pop()
    fails(obj, r"blimp\.adjunct_island\.predictions: \d+ predictions, the gold data has \d+")
    obj = copy.deepcopy(good)
    preds = obj["adjunct_island"]["predictions"]
    preds[17]["pred"], preds[18]["pred"] = preds[18]["pred"], preds[17]["pred"]
    fails(obj, r"blimp\.adjunct_island\.predictions\[17\]\.pred")
    obj = copy.deepcopy(good)
    preds = obj["adjunct_island"]["predictions"]
    preds[3], preds[4] = preds[4], preds[3]
    fails(obj, r"blimp\.adjunct_island\.predictions\[3\]\.id")


def test_collate_and_old_formats(root, full_tree, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(full_tree, results)
    with pytest.raises(InputError, match="missing piece"):
        submission.collate(results, "m", "causal", "strict-small", year="2025")
    fast_data = [tasks.load_task(name, "fast", root, limit=2, year="2025")
                 for name in ("blimp", "blimp_supplement", "entity_tracking", "wug_adj", "reading")]
    for chck in milestones("strict-small"):
        for data in fast_data:
            submission.write_task(fake_result(data), submission.task_dir(results, "m", chck, "causal", data.task,
                                                                        data.data_dir), {}, overwrite=True)
    glue_dir = results / "m/main/finetune/rte"
    glue_dir.mkdir(parents=True)
    labels = [json.loads(x)["label"] for x in (root / "glue_filtered/rte.valid.jsonl").read_text().splitlines()]
    preds = [{"id": f"rte_{i}", "pred": y} for i, y in enumerate(labels)]
    (glue_dir / "predictions.json").write_text(json.dumps({"rte": {"predictions": preds}}))
    path, missing = submission.collate(results, "m", "causal", "strict-small", allow_partial=True, year="2025")
    assert path.name == "all_full_preds_and_fast_scores_causal_partial.json"
    assert any(m.startswith("ewok") for m in missing) and any(m.startswith("aoa") for m in missing)
    obj = json.loads(path.read_text())
    assert list(obj) == ["blimp", "blimp_supplement", "entity_tracking", "wug_adj", "reading", "glue", "fast_eval_results"]
    assert list(obj["glue"]) == ["rte"]
    fast = obj["fast_eval_results"]
    assert len(fast["blimp"]) == 19 and fast["blimp"][0]["adjunct_island"] == 1.0 and "spr" in fast["reading"][0]
    assert fast["ewok"] == []
    # a partial file validates what it holds against gold and lists what is absent ...
    report = validation.validate_file(path, root, year="2025")
    assert "PARTIAL" in report.kind and "blimp" in report.checked and "glue.rte" in report.checked
    assert any(u.startswith("ewok: absent") for u in report.unchecked)
    # ... and a wrong prediction inside a present section still fails it
    broken = json.loads(path.read_text())
    preds = broken["blimp"]["adjunct_island"]["predictions"]
    preds[0]["pred"], preds[1]["pred"] = preds[1]["pred"], preds[0]["pred"]
    bad = tmp_path / "bad_partial" / path.name
    bad.parent.mkdir()
    bad.write_text(json.dumps(broken))
    with pytest.raises(InputError, match=r"blimp\.adjunct_island\.predictions\[0\]"):
        validation.validate_file(bad, root, year="2025")
    with pytest.raises(InputError, match=r"a 2025 file \(entity_tracking\).*collate it again with --year 2026"):
        validation.validate_file(path, root)  # checked by the 2026 rules (the default)
    # the 2024 and 2023 formats from the same predictions pass validate
    p2024 = submission.write_2024(results, "m", "causal")
    obj = json.loads(gzip.decompress(p2024.read_bytes()))
    assert list(obj) == ["glue", "blimp", "blimp_supplement"] and obj["blimp"]["adjunct_island"]["predictions"][0]["pred"].startswith(" ")
    report = validation.validate_file(p2024, root)
    assert "blimp" in report.checked and "glue.rte" in report.checked
    p2023 = submission.write_2023(results, "m", "causal")
    first = json.loads(p2023.read_text().splitlines()[0])
    assert first["task"] == "glue" and first["predictions"][0]["pred"] in ("0", "1")
    assert "supplement" in validation.validate_file(p2023, root).checked


def test_official_2024_sample_passes(root):
    sample = root / "submission_samples/sample_textonly_predictions.json.gz"
    with pytest.raises(InputError, match="no gold data"):  # full EWoK and the 2024-only GLUE tasks are not here
        validation.validate_file(sample, root)
    report = validation.validate_file(sample, root, structure_only=True)
    assert {"blimp", "blimp_supplement", "glue.rte", "glue.qqp"} <= set(report.checked)
    assert any(u.startswith("ewok") for u in report.unchecked) and any(u.startswith("glue.cola") for u in report.unchecked)


def test_loading_rules(shared, tmp_path):
    lines = em.corpus_lines(shared, n_per_file=2)
    model, tok = em.build("gpt2", lines)
    em.save(model, tok, tmp_path / "run" / "chck_1M")
    em.save(model, tok, tmp_path / "run")
    assert loading.resolve_local(tmp_path / "run", "chck_1M") == tmp_path / "run" / "chck_1M"
    assert loading.resolve_local(tmp_path / "run", "main") == tmp_path / "run"
    with pytest.raises(InputError, match="no revision folder 'chck_2M'; found chck_1M"):
        loading.resolve_local(tmp_path / "run", "chck_2M")
    em.save(model, tok, tmp_path / "train_run" / "final")  # the kit's training run layout
    assert loading.resolve_local(tmp_path / "train_run", "main") == tmp_path / "train_run" / "final"
    loaded = loading.load_model(str(tmp_path / "run"), "chck_1M")
    assert loaded.backend == "causal" and loaded.name == "run" and loaded.revision == "chck_1M"
    bert, btok = em.build("bert", lines)
    em.save(bert, btok, tmp_path / "bert")
    assert loading.load_model(str(tmp_path / "bert")).backend == "mlm"
    assert loading.load_model(str(tmp_path / "bert"), backend="mntp").backend == "mntp"
    # a tokenizer without a mask token cannot drive a masked backend
    nomask = em.byte_bpe(lines, bos=False)
    nomask.mask_token = None
    em.save(model, nomask, tmp_path / "nomask")
    with pytest.raises(InputError, match="needs a mask token"):
        loading.load_model(str(tmp_path / "nomask"), backend="mlm")
    # a tokenizer bigger than the embedding table does not belong to the model
    small, _ = em.build("gpt2", lines[:40])
    small.resize_token_embeddings(50)
    em.save(small, tok, tmp_path / "mismatch")
    with pytest.raises(InputError, match="does not belong to this model"):
        loading.load_model(str(tmp_path / "mismatch"))
    with pytest.raises(InputError, match="no config.json"):
        loading.load_model(str(tmp_path))


@pytest.mark.slow
def test_cli_end_to_end(shared, root, tmp_path):
    lines = em.corpus_lines(shared, n_per_file=4)
    model, tok = em.build("gpt2", lines)
    em.save(model, tok, tmp_path / "tiny")
    args = ["score", "--model", tmp_path / "tiny", "--eval_data", root, "--results", tmp_path / "results",
            "--tasks", "blimp,blimp_supplement", "--eval_set", "fast", "--limit", "3", "--progress", "false"]
    env = {"OMP_NUM_THREADS": "1"}
    res = run_cli("eval_export", *args, env=env)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "results/tiny/main/zero_shot/causal/blimp/blimp_fast/predictions.json"
    obj = json.loads(out.read_text())
    assert len(obj) == 67 and all(len(v["predictions"]) == 3 for v in obj.values())
    assert (tmp_path / "results/tiny/main/blimp_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((tmp_path / "results/tiny/main/summary.json").read_text())
    assert {t["data_dir"] for t in summary["tasks"]} == {"blimp_fast", "supplement_fast"}
    # the scores equal a direct call of the library on the same items
    data = tasks.load_task("blimp", "fast", root, limit=3)
    result = zero_shot.score_task(model, tok, "causal", data, zero_shot.ScoringOptions())
    assert [p["pred"] for v in obj.values() for p in v["predictions"]] == \
        [it.preds[c] for it, c in zip(data.items, result.chosen)]
    before = out.stat().st_mtime_ns
    res = run_cli("eval_export", *args, env=env)
    assert res.returncode == 0 and "exists" in res.stdout and out.stat().st_mtime_ns == before  # skipped
    # a limited run is not an official file: validate says which count is wrong
    res = run_cli("eval_export", "validate", out, "--eval_data", root)
    assert res.returncode == 1 and "blimp.adjunct_island.predictions: 3 predictions, the gold data has 200" in res.stderr
    # bad input: one line, non-zero exit, nothing written
    res = run_cli("eval_export", "score", "--model", tmp_path / "tiny", "--eval_data", root, "--tasks", "nope",
                  "--results", tmp_path / "r2")
    assert res.returncode == 2 and "unknown task 'nope'" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r2").exists()
    bad = tmp_path / "data" / "supplement_fast"
    bad.mkdir(parents=True)
    (bad / "hypernym.jsonl").write_text('{"sentence_good": "a b", "sentence_bad": "b a"}\n{oops\n')
    res = run_cli("eval_export", "score", "--model", tmp_path / "tiny", "--eval_data", tmp_path / "data",
                  "--tasks", "blimp_supplement", "--eval_set", "fast", "--results", tmp_path / "r3")
    assert res.returncode == 1 and "hypernym.jsonl:2: not valid JSON" in res.stderr and not (tmp_path / "r3").exists()
    res = run_cli("eval_export", "score", "--help")
    assert res.returncode == 0 and "official quirk" in res.stdout and "--bos_rule" in res.stdout
