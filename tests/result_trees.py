"""Result trees in the official layout, written from gold files, for the collation and leaderboard tests.

A tree is what the official scripts leave under ``results/<model>/<revision>/`` (babylm-org/babylm-eval
at 3d57ddc: ``sentence_zero_shot/run.py`` writes ``zero_shot/<backend>/<task>/<data folder>/predictions.json``,
``reading/run.py`` ``zero_shot/<backend>/reading/predictions.json``, ``AoA_word/run.py``
``zero_shot/<backend>/AoA_word/surprisal.json`` and ``aoa_score.json``, ``finetune/run.py``
``finetune/<task>/predictions.json``). Predictions are the gold candidate or a wrong one, chosen by a fixed
rule per item and revision, so every accuracy is known in advance and differs between revisions.

Tasks whose data is not in the reference folder (full EWoK, EWoK fast in plain text, COMPS, GlobalPIQA)
get made-up items in the official fields and with the official counts (``collate_preds.py`` sizes),
written into the test's own evaluation-data folder: nothing here is real EWoK text.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from babylm.challenge import milestones

# collate_preds.py @ 3d57ddc: EWOK_SIZES, COMPS_SIZES, GLOBAL_PIQA_SIZES, AOA_SIZE, EWOK_FAST_SIZE
EWOK_SIZES = {"agent-properties": 2210, "social-relations": 1548, "physical-relations": 818, "material-dynamics": 770,
              "physical-interactions": 556, "spatial-relations": 490, "social-properties": 328,
              "quantitative-properties": 314, "social-interactions": 294, "material-properties": 170,
              "physical-dynamics": 120}
COMPS_SIZES = {"base": 49340, "wugs_dist_before": 13896, "wugs_dist_in_between": 13896, "wugs": 13896}
GLOBAL_PIQA = {"global_piqa_parallel": (103, 4), "global_piqa_nonparallel": (100, 2)}
AOA_SIZE = 8005
GLUE = ("boolq", "mnli", "mrpc", "multirc", "qqp", "rte", "wsc")


def wrong(i: int, revision: int) -> bool:
    """Whether item ``i`` gets a wrong prediction at revision number ``revision`` (0 = main)."""
    return (i * 7 + revision * 3) % (5 + revision % 3) == 0


def dump(path: Path, obj, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, **kw), encoding="utf-8")
    return path


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def predictions(blocks: dict[str, list]) -> dict:
    """``{uid: {"predictions": [{"id": "<uid>_<n>", "pred": ...}]}}`` (sentence_zero_shot/compute_results.py)."""
    return {uid: {"predictions": [{"id": f"{uid}_{n}", "pred": p} for n, p in enumerate(preds)]}
            for uid, preds in blocks.items()}


# ----------------------------------------------------------------------------- evaluation data


def eval_data(shared: Path, out: Path) -> Path:
    """An evaluation_data folder in the official layout (full_eval/, fast_eval/): the reference files
    (linked, read-only) plus made-up EWoK, COMPS and GlobalPIQA items in the official fields."""
    ref = shared / "data" / "eval"
    full, fast = out / "full_eval", out / "fast_eval"
    for folder, name in ((full, "blimp_filtered"), (full, "supplement_filtered"), (full, "entity_tracking"),
                         (full, "glue_filtered"), (full, "reading"), (fast, "blimp_fast"), (fast, "supplement_fast"),
                         (fast, "reading")):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(ref / name)
    (fast / "entity_tracking_fast").mkdir()
    (fast / "entity_tracking_fast" / "regular.jsonl").symlink_to(ref / "entity_tracking" / "regular.jsonl")
    for folder, sizes in ((full / "ewok_filtered", EWOK_SIZES), (fast / "ewok_fast", {d: 100 for d in EWOK_SIZES})):
        for domain, n in sizes.items():
            lines = [json.dumps({"Domain": domain, "Context1": f"Made-up context {i} one.",
                                 "Context2": f"Made-up context {i} two.", "Target1": f"Target {domain} {i}.",
                                 "Target2": f"Other {domain} {i}."}) for i in range(n)]
            (folder / f"{domain}.jsonl").parent.mkdir(parents=True, exist_ok=True)
            (folder / f"{domain}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for task, (n, k) in GLOBAL_PIQA.items():
        lines = [json.dumps({"prompt": f"Goal {task} {i}:", **{f"solution{j}": f"way {j} of {i}" for j in range(k)},
                             "label": (i * 3) % k, "example_id": f"eng_{task[12:15]}_{i:04d}"}) for i in range(n)]
        for base in (full, fast):
            (base / task).mkdir(parents=True, exist_ok=True)
            (base / task / "eng_latn.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _blimp_like(folder: Path, revision: int, uid_field: bool) -> dict[str, list]:
    blocks: dict[str, list] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for i, row in enumerate(rows(path)):
            uid = row["UID"] if uid_field else path.stem
            blocks.setdefault(uid, []).append(row["sentence_bad" if wrong(i, revision) else "sentence_good"])
    return blocks


def _entity(folder: Path, revision: int, files: tuple[str, ...]) -> dict[str, list]:
    blocks: dict[str, list] = {}
    i = 0
    for name in files:
        for row in rows(folder / f"{name}.jsonl"):
            if any("nothing" in o for o in row["options"]):  # read_files.py @ 3d57ddc drops these
                continue
            blocks.setdefault(f"{name}_{row['numops']}_ops", []).append(row["options"][1 if wrong(i, revision) else 0])
            i += 1
    return blocks


def _ewok(folder: Path, revision: int) -> dict[str, list]:
    # predictions hold the whole chosen sentence: Context1 + Target1 (gold) or Context2 + Target1
    blocks: dict[str, list] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for i, row in enumerate(rows(path)):
            ctx = row["Context2"] if wrong(i, revision) else row["Context1"]
            blocks.setdefault(row["Domain"], []).append(f"{ctx} {row['Target1']}")
    return blocks


def _global_piqa(path: Path, revision: int) -> dict[str, list]:
    blocks = {}
    for i, row in enumerate(rows(path)):
        k = sum(1 for key in row if key.startswith("solution"))
        choice = (row["label"] + 1) % k if wrong(i, revision) else row["label"]
        blocks[row["example_id"]] = [" " + row[f"solution{choice}"]]
    return blocks


def _reading(path: Path, revision: int) -> dict:
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    rng = random.Random(revision)
    preds = []
    for row in table:
        # surprisal that tracks word frequency a little (so the regressions gain something), plus noise
        s = 12.0 - 0.5 * float(row["Subtlex_log10"] or 0) + rng.random()
        prev = math.nan if row["prev_item"] in ("", "None") else 3.0 + rng.random() * 5
        preds.append({"id": int(row[""]), "pred": s, "prev_pred": prev})
    return {"reading": {"predictions": preds}}


def _zero_shot(base: Path, data: Path, revision: int, fast: bool) -> None:
    sets = data / ("fast_eval" if fast else "full_eval")
    suffix = "fast" if fast else "filtered"
    dump(base / "blimp" / f"blimp_{suffix}" / "predictions.json",
         predictions(_blimp_like(sets / f"blimp_{suffix}", revision, True)))
    dump(base / "blimp" / f"supplement_{suffix}" / "predictions.json",
         predictions(_blimp_like(sets / f"supplement_{suffix}", revision, False)))
    dump(base / "ewok" / f"ewok_{suffix}" / "predictions.json", predictions(_ewok(sets / f"ewok_{suffix}", revision)))
    et = "entity_tracking_fast" if fast else "entity_tracking"
    files = ("regular",) if fast else ("regular", "ambiref", "move_contents")
    dump(base / "entity_tracking" / et / "predictions.json", predictions(_entity(sets / et, revision, files)))
    for task in GLOBAL_PIQA:
        dump(base / task / task / "predictions.json", predictions(_global_piqa(sets / task / "eng_latn.jsonl", revision)))
    dump(base / "reading" / "predictions.json", _reading(sets / "reading" / "reading_data.csv", revision))


def official_tree(results: Path, data: Path, model: str, backend: str, track: str,
                  revisions: list[str] | None = None, aoa_rows: int = AOA_SIZE) -> Path:
    """Everything the 3d57ddc collator reads for ``model``: main, and every milestone of ``track`` (or only
    ``revisions``); ``aoa_rows`` surprisal rows per milestone (the official count unless told)."""
    root = results / model
    main = root / "main" / "zero_shot" / backend
    _zero_shot(main, data, 0, fast=False)
    comps = {key: [f"Prefix {i} has property {key}." for i in range(n)] for key, n in COMPS_SIZES.items()}
    dump(main / "comps" / "comps" / "predictions.json", predictions(comps))
    steps = milestones(track)
    rng = random.Random(7)
    surprisals = {"metadata": {"model": model, "backend": backend},
                  "results": [{"step": s, "target_word": f"w{i % 500}", "context_id": i, "surprisal": rng.random() * 20}
                              for s in steps for i in range(aoa_rows)]}
    dump(main / "AoA_word" / "surprisal.json", surprisals, indent=2)
    dump(main / "AoA_word" / "aoa_score.json", {"aoa": 0.123456789}, indent=2)
    for task in GLUE:
        labels = [r["label"] for r in rows(data / "full_eval" / "glue_filtered" / f"{task}.valid.jsonl")]
        preds = [(1 - y if task != "mnli" else (y + 1) % 3) if wrong(i, 0) else y for i, y in enumerate(labels)]
        dump(root / "main" / "finetune" / task / "predictions.json", predictions({task: preds}))
    for n, revision in enumerate(steps, start=1):
        if revisions is None or revision in revisions:
            _zero_shot(root / revision / "zero_shot" / backend, data, n, fast=True)
    return root


# ----------------------------------------------------------------------------- the 2025 tree (kit-written)


def kit_tree_2025(results: Path, data: Path, model: str, backend: str, track: str) -> Path:
    """A tree as the kit wrote it for the 2025 rules (45fe2c1): entity tracking unfiltered, WUG present,
    EWoK predictions ``" " + Target``, AoA surprisals only, and for each milestone a ``summary.json``
    beside its predictions (the 2025 collation takes the fast metrics from it)."""
    root = results / model
    main = root / "main" / "zero_shot" / backend
    full = data / "full_eval"
    dump(main / "blimp" / "blimp_filtered" / "predictions.json", predictions(_blimp_like(full / "blimp_filtered", 0, True)))
    dump(main / "blimp" / "supplement_filtered" / "predictions.json",
         predictions(_blimp_like(full / "supplement_filtered", 0, False)))
    ewok = {d: [" " + r["Target2" if wrong(i, 0) else "Target1"] for i, r in enumerate(rows(full / "ewok_filtered" / f"{d}.jsonl"))]
            for d in EWOK_SIZES}
    dump(main / "ewok" / "ewok_filtered" / "predictions.json", predictions(ewok))
    entity: dict[str, list] = {}
    for name in ("regular", "ambiref", "move_contents"):
        for i, r in enumerate(rows(full / "entity_tracking" / f"{name}.jsonl")):
            entity.setdefault(f"{name}_{r['numops']}_ops", []).append(r["options"][1 if wrong(i, 0) else 0])
    dump(main / "entity_tracking" / "entity_tracking" / "predictions.json", predictions(entity))
    for task, n in (("wug_adj", 200), ("wug_past", 50)):
        preds = {task: {"predictions": [{"id": f"{task}_{i}", "pred": f"wug{i}ness", "prob": 0.25 + (i % 50) / 100}
                                        for i in range(n)]}}
        dump(main / task / ("wug_adj_nominalization" if task == "wug_adj" else "wug_past_tense") / "predictions.json", preds)
    dump(main / "comps" / "comps" / "predictions.json",
         predictions({k: [f"Prefix {i} has {k}." for i in range(n)] for k, n in COMPS_SIZES.items()}))
    dump(main / "reading" / "predictions.json", _reading(full / "reading" / "reading_data.csv", 0))
    steps = milestones(track)
    dump(main / "AoA_word" / "surprisal.json", {"metadata": {"model": model}, "results": [
        {"step": s, "word": f"w{i}", "surprisal": (i % 97) / 7} for s in steps for i in range(3)]})
    for task in GLUE:
        labels = [r["label"] for r in rows(full / "glue_filtered" / f"{task}.valid.jsonl")]
        dump(root / "main" / "finetune" / task / "predictions.json", predictions({task: labels}))
    blimp_uids = sorted({r["UID"] for p in (data / "fast_eval" / "blimp_fast").glob("*.jsonl") for r in rows(p)[:1]})
    supplement = sorted(p.stem for p in (data / "fast_eval" / "supplement_fast").glob("*.jsonl"))
    fast = {("blimp", "blimp_fast"): blimp_uids, ("blimp", "supplement_fast"): supplement,
            ("ewok", "ewok_fast"): sorted(EWOK_SIZES),
            ("entity_tracking", "entity_tracking_fast"): [f"regular_{k}_ops" for k in range(6)]}
    for n, revision in enumerate(steps, start=1):
        base = root / revision / "zero_shot" / backend
        for (task, folder), uids in fast.items():
            dump(base / task / folder / "predictions.json", {})
            dump(base / task / folder / "summary.json",
                 {"task": task, "subtasks": {u: {"accuracy": ((k * 13 + n * 7) % 101) / 100, "ties": 0, "n": 100}
                                             for k, u in enumerate(uids)}})
        for task, folder in (("wug_adj", "wug_adj_nominalization"), ("wug_past", "wug_past_tense")):
            dump(base / task / folder / "predictions.json", {})
            dump(base / task / folder / "summary.json", {"task": task, "metrics": {task: n / 100 - 0.05}})
        dump(base / "reading" / "predictions.json", {})
        dump(base / "reading" / "summary.json", {"task": "reading", "metrics": {"spr": n / 1000, "rt": n / 3000}})
    return root


def collated_2026(data: Path, track: str = "strict-small") -> dict:
    """A complete 2026 collated file (as a dict) for the predictions of revision 0 of the rule above, the
    AoA rows and fast metrics made up (of the right shapes): what collate writes for a finished run."""
    full, fast = data / "full_eval", data / "fast_eval"
    obj: dict = {"blimp": predictions(_blimp_like(full / "blimp_filtered", 0, True)),
                 "blimp_supplement": predictions(_blimp_like(full / "supplement_filtered", 0, False)),
                 "ewok": predictions(_ewok(full / "ewok_filtered", 0)),
                 "entity_tracking_filtered": predictions(_entity(full / "entity_tracking", 0,
                                                                 ("regular", "ambiref", "move_contents"))),
                 "comps": predictions({k: [f"Prefix {i} has property {k}." for i in range(n)] for k, n in COMPS_SIZES.items()})}
    for task in GLOBAL_PIQA:
        obj[task] = predictions(_global_piqa(full / task / "eng_latn.jsonl", 0))
    obj["reading"] = _reading(full / "reading" / "reading_data.csv", 0)
    steps = milestones(track)
    obj["aoa_surprisals"] = {"metadata": {}, "results": [{"step": s, "surprisal": 1.5} for s in steps for _ in range(AOA_SIZE)]}
    obj["aoa"] = {"aoa": 0.25}
    obj["glue"] = {t: {"predictions": [{"id": f"{t}_{i}", "pred": r["label"]} for i, r in
                                       enumerate(rows(full / "glue_filtered" / f"{t}.valid.jsonl"))]} for t in GLUE}
    names = {"blimp": sorted(p.stem for p in (fast / "blimp_fast").glob("*.jsonl")),
             "blimp_supplement": sorted(p.stem for p in (fast / "supplement_fast").glob("*.jsonl")),
             "ewok": sorted(EWOK_SIZES), "entity_tracking_filtered": [f"regular_{k}_ops" for k in range(6)],
             "global_piqa_parallel": ["global_piqa_parallel"], "global_piqa_nonparallel": ["global_piqa_nonparallel"],
             "reading": ["spr", "rt"]}
    obj["fast_eval_results"] = {key: [{n: 0.5 for n in subtasks} for _ in steps] for key, subtasks in names.items()}
    return obj
