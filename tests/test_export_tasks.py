"""Task readers: official counts and keys on the real gold files, EWoK from an encrypted zip in
memory, custom BLiMP-format folders, and one-line errors for bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

from babylm.errors import InputError, UsageError
from eval_export import tasks, zero_shot
from tests import reference

EWOK_DOMAINS = ["agent-properties", "material-dynamics", "material-properties", "physical-dynamics",
                "physical-interactions", "physical-relations", "quantitative-properties", "social-interactions",
                "social-properties", "social-relations", "spatial-relations"]


@pytest.mark.parametrize("name,eval_set,n_uids,total,year", [
    ("blimp", "full", 67, 59875, "2026"), ("blimp", "fast", 67, 67 * 200, "2026"),
    ("blimp_supplement", "full", 5, 5218, "2026"), ("blimp_supplement", "fast", 5, 250, "2026"),
    ("entity_tracking", "full", 18, 9483, "2025"), ("entity_tracking", "fast", 6, 3152, "2025"),
    ("entity_tracking", "full", 18, 6780, "2026"), ("entity_tracking", "fast", 6, 2238, "2026"),
    ("wug_adj", "full", 1, 200, "2025"), ("reading", "full", 1, 1726, "2026")])
def test_official_counts_and_keys(root, name, eval_set, n_uids, total, year):
    data = tasks.load_task(name, eval_set, root, year=year)
    counts = data.uid_counts()
    assert len(counts) == n_uids and sum(counts.values()) == total and data.official
    if name == "blimp":
        assert "principle_A_case_1" in counts  # the data's own UID capitalisation
        first = data.items[0]
        assert first.candidates[0][0] == "" and first.preds == [first.candidates[0][1], first.candidates[1][1]]
    if name == "entity_tracking":
        assert {"regular_0_ops", "ambiref_5_ops", "move_contents_3_ops"} <= set(counts) or eval_set == "fast"
        it = data.items[0]
        assert len(it.candidates) == 5 and it.candidates[0][0].endswith("contains ")
    if name == "blimp_supplement":
        assert set(counts) == set(tasks.SUPPLEMENT_COUNTS)
    if name == "reading":
        assert data.rows[0].index == 0 and data.rows[0].word == "the" and data.rows[0].prev_word == "placed"


def _copy_fast(root, tmp_path, name="supplement_fast"):
    return reference.copy_writable(root / name, tmp_path / name)


def test_wrong_count_is_rejected(root, tmp_path):
    folder = _copy_fast(root, tmp_path)
    path = folder / "hypernym.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(InputError, match="hypernym has 49 items, the official set has 50"):
        tasks.load_task("blimp_supplement", "fast", tmp_path)
    assert len(tasks.load_task("blimp_supplement", "fast", tmp_path, limit=3).items) == 15  # smoke runs skip the check


def test_malformed_line_names_file_and_line(root, tmp_path):
    folder = _copy_fast(root, tmp_path)
    path = folder / "turn_taking.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[6] = lines[6][:-5] + "\n"
    path.write_text("".join(lines))
    with pytest.raises(InputError, match=r"turn_taking\.jsonl:7: not valid JSON"):
        tasks.load_task("blimp_supplement", "fast", tmp_path)


def test_empty_sentence_missing_folder_unknown_task(root, tmp_path):
    folder = _copy_fast(root, tmp_path)
    path = folder / "hypernym.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    row = json.loads(lines[2])
    row["sentence_bad"] = " "
    lines[2] = json.dumps(row) + "\n"
    path.write_text("".join(lines))
    with pytest.raises(InputError, match=r"hypernym\.jsonl:3: field 'sentence_bad' is empty"):
        tasks.load_task("blimp_supplement", "fast", tmp_path)
    with pytest.raises(InputError, match="no blimp_fast/ folder"):
        tasks.load_task("blimp", "fast", tmp_path)
    with pytest.raises(UsageError, match="unknown task 'blimpp'"):
        tasks.load_task("blimpp", "fast", tmp_path)


def _ewok_rows(domain: str, n: int):
    for i in range(n):
        yield {"Domain": domain, "ConceptA": "a", "ConceptB": "b", "ContextType": "t", "ContextDiff": "d",
               "TargetDiff": "d", "Context1": f"The cup {i} is on the table.", "Context2": f"The cup {i} is under the table.",
               "Target1": "The cup is up.", "Target2": "The cup is down."}


def _make_ewok_zip(tmp_path, password: str, n: int = 100):
    """A ZipCrypto zip laid out like the official ewok_fast.zip (synthetic rows, not EWoK data)."""
    src = tmp_path / "src" / "evaluation_data" / "fast_eval" / "ewok_fast"
    src.mkdir(parents=True)
    for d in EWOK_DOMAINS:
        (src / f"{d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _ewok_rows(d, n)))
    out = tmp_path / "data" / "ewok" / "ewok_fast.zip"
    out.parent.mkdir(parents=True)
    if shutil.which("zip"):
        subprocess.run(["zip", "-q", "-r", "-e", "-P", password, str(out), "evaluation_data"], cwd=tmp_path / "src", check=True)
    elif reference.required():  # CI installs it (.ci/run)
        pytest.fail("the zip CLI is needed to build an encrypted test archive: apt-get install zip")
    else:
        pytest.skip("the zip CLI (Debian package zip) is needed to build an encrypted test archive")
    shutil.rmtree(tmp_path / "src")
    with zipfile.ZipFile(out) as zf:
        assert all(i.flag_bits & 0x1 for i in zf.infolist() if not i.is_dir())  # really encrypted
    return out


def test_ewok_zip_read_in_memory(tmp_path, monkeypatch):
    _make_ewok_zip(tmp_path, "s3cret")
    root = tmp_path / "data"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    data = tasks.load_task("ewok", "fast", root, ewok_password="s3cret", year="2025")
    assert sorted(data.uid_counts().items()) == [(d, 100) for d in EWOK_DOMAINS]
    it = data.items[0]
    assert it.candidates[0] == ("The cup 0 is on the table.", " The cup is up.") and it.preds[0] == " The cup is up."
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing extracted
    monkeypatch.setenv(tasks.EWOK_PASSWORD_ENV, "s3cret")
    assert len(tasks.load_task("ewok", "fast", root).items) == 1100
    monkeypatch.delenv(tasks.EWOK_PASSWORD_ENV)
    with pytest.raises(UsageError, match="password-protected"):
        tasks.load_task("ewok", "fast", root)
    with pytest.raises(InputError, match="wrong EWoK password"):
        tasks.load_task("ewok", "fast", root, ewok_password="nope")


def test_custom_blimp_folder(tmp_path):
    folder = tmp_path / "gen" / "blimp"
    folder.mkdir(parents=True)
    rows = [{"sentence_good": "the dog runs .", "sentence_bad": "the dog run .", "UID": "synthetic_agreement"}] * 3
    (folder / "synthetic_agreement.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = tasks.load_task(str(folder), "full", tmp_path)
    assert data.task == "custom" and data.data_dir == "blimp" and not data.official
    assert data.uid_counts() == {"synthetic_agreement": 3}


def test_spearman_and_reading_gain():
    assert zero_shot.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert zero_shot.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert zero_shot.spearman([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)  # scipy's value
    rng = np.random.default_rng(0)
    n = 300
    surprisal = rng.normal(size=n)
    rows = []
    for i in range(n):
        m = {k: float(rng.normal()) for k in tasks.READING_MEASURES}
        for k in ("RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound", "self_paced_reading_time"):
            m[k] = 3.0 * surprisal[i] + 0.1 * rng.normal()
        rows.append(tasks.ReadingRow(i, "ctx", "w", "ctx", "v", m))
    metrics = zero_shot.reading_metrics(rows, list(surprisal), list(rng.normal(size=n)))
    assert metrics["rt"] > 0.9 and metrics["spr"] > 0.9
    noise = zero_shot.reading_metrics(rows, list(rng.normal(size=n)), list(rng.normal(size=n)))
    assert noise["rt"] < 0.1
    # official spillover model: prev_pred is in the baseline, so reading times explained by the
    # previous word's surprisal alone give no gain to the current word's surprisal
    prev = rng.normal(size=n)
    for i, r in enumerate(rows):
        r.measures["self_paced_reading_time"] = 3.0 * prev[i] + 0.1 * rng.normal()
    spill = zero_shot.reading_metrics(rows, list(rng.normal(size=n)), list(prev))
    assert abs(spill["spr"]) < 0.05


def test_comps_and_wug_past_when_present(tmp_path):
    folder = tmp_path / "comps"
    folder.mkdir()
    row = {"prefix_acceptable": "A robin", "prefix_unacceptable": "A whale", "property_phrase": "can fly."}
    for stem in ("comps_base", "comps_wugs", "comps_wugs_dist-before", "comps_wugs_dist-in-between"):
        (folder / f"{stem}.jsonl").write_text(json.dumps(row) + "\n")
    data = tasks.load_task("comps", "full", tmp_path, limit=5)
    assert sorted(data.uid_counts()) == ["base", "wugs", "wugs_dist_before", "wugs_dist_in_between"]
    it = data.items[0]
    assert it.candidates == [("A robin", " can fly."), ("A whale", " can fly.")]
    assert it.preds == ["A robin can fly.", "A whale can fly."]  # COMPS preds are the full sentence
    with pytest.raises(InputError, match="base has 1 items, the official set has 49340"):
        tasks.load_task("comps", "full", tmp_path)
    assert not tasks.task_available("wug_past", "full", tmp_path)
    (tmp_path / "wug_past_tense").mkdir()
    (tmp_path / "wug_past_tense" / "wug_past_tense.jsonl").write_text(
        json.dumps({"sentences": "He spling yesterday. splung\tHe spling yesterday. splinged", "ratio": 0.3}) + "\n")
    wug = tasks.load_task("wug_past", "full", tmp_path, limit=5, year="2025")
    assert wug.items[0].uid == "wug_past" and wug.items[0].extra["ratio"] == 0.3 and wug.kind == "wug"


def test_reading_word_tokenised_without_space_by_default(shared):
    from tests import export_models as em

    tok = em.byte_bpe(em.corpus_lines(shared, n_per_file=2), bos=False)
    word = tok("the", add_special_tokens=False)["input_ids"]
    spaced = tok(" the", add_special_tokens=False)["input_ids"]
    assert word != spaced
    row = tasks.ReadingRow(0, "Arthur placed", "the", "Arthur", "placed", {})
    data = tasks.TaskData("reading", "reading", "", "reading", "x", rows=[row])
    quirk, fixed = (zero_shot.prepare_requests(tok, "causal", data, zero_shot.ScoringOptions(reading_space=s))
                    for s in (False, True))
    ctx = tok("Arthur placed")["input_ids"]
    # one request per piece (the row's word, then its previous word "placed" after "Arthur"); the
    # first piece is predicted from the last context position
    n_prev = len(tok("placed", add_special_tokens=False)["input_ids"])
    assert len(quirk) == len(word) + n_prev and list(quirk[0].ids) == ctx + word[:1] and quirk[0].scored == (len(ctx),)
    assert len(fixed) == len(spaced) + len(tok(" placed", add_special_tokens=False)["input_ids"]) and fixed[0].ids[-1] == spaced[0]
    masked = zero_shot.prepare_requests(tok, "mlm", data, zero_shot.ScoringOptions())[0]
    assert list(masked.ids) == ctx + [tok.mask_token_id] * 3 and masked.scored == (len(ctx),)
    assert masked.targets == (word[0],) and masked.premasked


def test_reading_rows_follow_the_pandas_reader(shared):
    """Cells pandas reads as missing: an empty item becomes "None"; a prev_item of "None" (row 971)
    means no previous word, so no previous-word surprisal, as in the official run."""
    rows = tasks.reading_rows(shared / "data/eval/reading/reading_data.csv")
    by_index = {r.index: r for r in rows}
    assert by_index[320].item == "None" and by_index[320].prev_item is None
    assert by_index[971].item == "None of" and by_index[971].prev_item is None and by_index[971].prev_word is None
    assert by_index[1].prev_item == "Finally Maria sat down with" and by_index[1].prev_word == "a"
    assert sum(r.prev_item is None for r in rows) == 206


def test_reading_steps_retokenise_like_the_official_code(shared):
    from tests import export_models as em

    tok = em.byte_bpe(em.corpus_lines(shared, n_per_file=2), bos=False)
    word = "grandmother's"
    pieces = tok(word, add_special_tokens=False)["input_ids"]
    assert len(pieces) > 2
    steps = zero_shot.reading_steps(tok, "He met his", word)
    assert steps[0][1] == pieces[0] and len(steps) == len(pieces)
    text = "He met his"
    for (ctx, target), piece in zip(steps, pieces):
        assert ctx == text  # the decoded earlier pieces are appended as text
        assert target == tok(tok.decode([piece]), add_special_tokens=False)["input_ids"][0]
        text += tok.decode([piece])


def _sources_entity_counts(shared) -> dict[str, int]:
    """The 'expected' column of the entity-tracking table that ends the reference data's SOURCES.md."""
    import re

    text = (shared / "data" / "eval" / "SOURCES.md").read_text(encoding="utf-8")
    table = text[text.index("Entity tracking per subtask"):]
    return {m.group(1): int(m.group(4)) for m in re.finditer(r"\|\s*(\w+_\d_ops)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|", table)}


def test_entity_tracking_2026_drops_items_with_nothing(root, shared):
    """2026: the counts per subtask are those SOURCES.md expects of 3d57ddc, no kept item holds "nothing"
    in an option, and every dropped item does (counted by hand from the files)."""
    want = _sources_entity_counts(shared)
    assert len(want) == 18 and want["regular_0_ops"] == 517 and want == tasks.ENTITY_TRACKING_2026
    new, old = (tasks.load_task("entity_tracking", "full", root, year=y) for y in ("2026", "2025"))
    assert new.uid_counts() == want and old.uid_counts()["regular_0_ops"] == 606
    assert not any("nothing" in c for it in new.items for _, c in it.candidates)
    dropped = sum(any("nothing" in c for _, c in it.candidates) for it in old.items)
    assert dropped == 9483 - 6780
    # the survivors in file order are the 2025 items without "nothing", unchanged
    assert [it.candidates for it in new.items] == [it.candidates for it in old.items
                                                   if not any("nothing" in c for _, c in it.candidates)]
    fast = tasks.load_task("entity_tracking", "fast", root, year="2026")
    assert fast.uid_counts() == {k: v for k, v in want.items() if k.startswith("regular_")}
    # the filter is a case-sensitive substring, applied before --limit counts
    row = {"input_prefix": "Box 1 contains ", "options": ["the apple", "Nothing", "the pen"], "numops": 0}
    rows = [row, {**row, "options": ["the apple", "nothingness", "the pen"]}]
    kept = tasks.entity_tracking_items([("regular.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())], "2026")
    assert [it.preds[1] for it in kept] == ["Nothing"]


def test_ewok_2026_compares_target1_after_both_contexts(tmp_path):
    _make_ewok_zip(tmp_path, "s3cret", n=100)
    root = tmp_path / "data"
    new = tasks.load_task("ewok", "fast", root, ewok_password="s3cret", year="2026")
    old = tasks.load_task("ewok", "fast", root, ewok_password="s3cret", year="2025")
    assert new.uid_counts() == old.uid_counts() == {d: 100 for d in EWOK_DOMAINS}
    it = new.items[0]
    # read_files.py @ 3d57ddc: completions " " + Target1 twice, prefixes Context1 / Context2, the
    # sentence (the pred) " ".join([Context, Target1]); the gold is the first
    assert it.candidates == [("The cup 0 is on the table.", " The cup is up."),
                             ("The cup 0 is under the table.", " The cup is up.")]
    assert it.preds == ["The cup 0 is on the table. The cup is up.", "The cup 0 is under the table. The cup is up."]
    assert old.items[0].preds == [" The cup is up.", " The cup is down."]


def test_2026_task_set_has_no_wug(root):
    assert "wug_adj" in tasks.YEAR_TASKS["2025"] and "wug_past" in tasks.YEAR_TASKS["2025"]
    assert not {"wug_adj", "wug_past"} & set(tasks.YEAR_TASKS["2026"])
    for name in ("wug_adj", "wug_past"):
        with pytest.raises(UsageError, match=f"^--tasks: {name} is not in the 2026 task set; score it with --year 2025$"):
            tasks.load_task(name, "full", root, year="2026")
    assert tasks.load_task("wug_adj", "full", root, year="2025").uid_counts() == {"wug_adj": 200}


def test_empty_task_file_is_one_line(tmp_path):
    folder = tmp_path / "supplement_fast"
    folder.mkdir()
    (folder / "hypernym.jsonl").write_text("")
    with pytest.raises(InputError, match=r"supplement_fast: task blimp_supplement holds no item to score"):
        tasks.load_task("blimp_supplement", "fast", tmp_path, limit=3)
