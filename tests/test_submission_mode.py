"""`score --eval_set submission`: one command scores every milestone on the fast set, main on the full
set and AoA over the milestones, saying "revision k of N" with the time left; and the clock's numbers."""

from __future__ import annotations

import json

import pytest

from babylm.challenge import milestones
from babylm.errors import InputError
from eval_export import aoa, global_piqa, schedule
from tests import export_models as em
from tests.conftest import run_cli
from tests.test_aoa import CONTEXTS, LINES, write_human, write_words
from tests.test_global_piqa import make_items


def test_clock_counts_revisions_and_estimates_the_rest():
    ticks = iter([0.0, 10.0, 10.0, 40.0, 40.0])
    clock = schedule.RevisionClock(4, now=lambda: next(ticks))
    assert clock.start("chck_1M") == "revision 1 of 4: chck_1M"  # nothing measured yet: no estimate
    clock.done()  # 10 s
    assert clock.start("chck_2M") == "revision 2 of 4: chck_2M (about 0:00:30 left for 3 revisions with this one, 0:00:10 so far)"
    clock.done()  # 30 s: mean 20 s
    assert clock.start("main") == "revision 3 of 4: main (about 0:00:40 left for 2 revisions with this one, 0:00:40 so far)"


def test_plan_and_track():
    found = ["chck_1M", "chck_2M", "chck_200M", "main"]
    assert schedule.plan(found) == [("chck_1M", "fast"), ("chck_2M", "fast"), ("chck_200M", "fast"), ("main", "full")]
    assert schedule.track_of(found) == "strict" and schedule.track_of(found[:2]) == "strict-small"
    assert schedule.missing_milestones(milestones("strict-small")[1:], "strict-small") == ["chck_1M"]
    with pytest.raises(InputError, match="no main revision"):
        schedule.plan(["chck_1M"])


@pytest.mark.slow
def test_submission_mode_scores_fast_milestones_full_main_and_aoa(tmp_path):
    em.one_thread()
    run = em.milestone_run(tmp_path / "tiny", "gpt2", LINES)
    root = tmp_path / "evaluation_data"
    folder = write_words(root, CONTEXTS)
    write_human(folder / aoa.HUMAN_FILE, {w: [min(1.0, 0.05 * (a - 14)) for a in aoa.AGES] for w in CONTEXTS})
    # the fast and full copies differ here (officially they are the same) so that each revision shows which it read
    for base, tag in (("full_eval", "full"), ("fast_eval", "fast")):
        rows = make_items(4, 2, tag)
        (root / base / "global_piqa_nonparallel").mkdir(parents=True)
        (root / base / "global_piqa_nonparallel" / global_piqa.DATA_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = run_cli("eval_export", "score", "--model", run, "--eval_set", "submission", "--eval_data", root,
                  "--results", tmp_path / "results", "--tasks", "global_piqa_nonparallel", "--limit", "3",
                  "--progress", "false", env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if line.startswith("revision ")]
    assert lines[0] == "revision 1 of 20: chck_1M (fast set, 1 task(s))"
    assert lines[19].startswith("revision 20 of 20: main (full set, 1 task(s)) (about ")
    assert lines[20] == "revision 1 of 19: chck_1M (AoA: 5 rows)" and len(lines) == 39
    base = tmp_path / "results" / "tiny"
    for revision in [*milestones("strict-small"), "main"]:
        preds = json.loads((base / revision / "zero_shot" / "causal" / "global_piqa_nonparallel" /
                            "global_piqa_nonparallel" / "predictions.json").read_text())
        assert list(preds) == [f"{'full' if revision == 'main' else 'fast'}_{i:04d}" for i in range(3)]
    out = base / "main" / "zero_shot" / "causal" / "AoA_word"
    surprisal = json.loads((out / "surprisal.json").read_text())
    assert len(surprisal["results"]) == 19 * 5
    tok = em.PreTrainedTokenizerFast.from_pretrained(run / "main")
    score = json.loads((out / "aoa_score.json").read_text())
    assert list(score) == ["aoa"] and score["aoa"] == aoa.curve_fitness(surprisal["results"], folder / aoa.HUMAN_FILE, tok)["aoa"]
