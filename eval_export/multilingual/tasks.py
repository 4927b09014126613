"""The kit's lm-eval task configurations for the multilingual zero-shot tasks, reading local data.

Written from the facts of the official YAMLs (babylm-eval 3d57ddc, ``multilingual/tasks/``): the data
each task reads, its fields and its metric; the configurations themselves are the kit's. Every task is
``multiple_choice`` with zero shots:

* minimal pairs (BLiMP filtered, BLiMP-NL, MultiBLiMP, XCOMPS, ZhoBLiMP, Hanzi): empty context, choices
  ``[good, bad]``, gold 0; ``acc`` is tie-aware (a k-way tie for the top score gives 1/k,
  ``tasks/tie_handling.py``), except Hanzi, where an exact tie is wrong and a pair whose either sentence
  encodes to the tokenizer's unknown token counts wrong (``tasks/hanzi/utils.py``);
* MuBench HellaSwag / Winogrande / XStoryCloze: context ``prompt``, choices ``choices``, gold ``label``;
  tie-aware ``acc`` and character-length ``acc_norm`` (``tie_handling.process_results_labeled``);
* Global PIQA: context ``prompt``, choices ``solution0..`` , gold ``label``; ``acc_norm`` = argmax of the
  summed log-probability over the *token* count of ``" " + solution`` after the prompt, ties to the
  first (``tasks/global_piqa_parallel/utils.py``).

Local layout under ``--data``: a task of one data set reads ``<task>.jsonl`` (or ``.tsv``); a group
reads its folder, one file per subtask (``zhoblimp/<paradigm>.jsonl``, also the release's
``zhoblimp/ZhoBLiMP/``; ``blimp_filtered/<paradigm>.jsonl``; ``blimp_nl/<phenomenon>.jsonl``);
MultiBLiMP reads ``multiblimp/<lang>/`` (its ``data.tsv``, or the one .tsv there).
A task without local data reads the hub data set of the official YAMLs (HUB below) when online: it is
fetched once into a cache folder in the same layout (hub_data.py); offline, the error names it.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from babylm.errors import InputError
from eval_export.multilingual import hub_data

log = logging.getLogger(__name__)
MINIMAL_PAIRS = "pairs"
LABELLED = "labelled"
PIQA = "piqa"
HANZI = "hanzi"

# (kind, (good, bad) fields or None, hub dataset id, hub config or None, split) from the official YAMLs
HUB: dict[str, tuple[str, Any, str, str | None, str]] = {
    "multiblimp_eng": (MINIMAL_PAIRS, ("sen", "wrong_sen"), "jumelet/multiblimp", "eng", "train"),
    "multiblimp_nld": (MINIMAL_PAIRS, ("sen", "wrong_sen"), "jumelet/multiblimp", "nld", "train"),
    "xcomps_nl": (MINIMAL_PAIRS, ("acceptable_sent", "unacceptable_sent"), "fpadovani/xcomps-dataset", None, "comps_nl"),
    "xcomps_zh": (MINIMAL_PAIRS, ("acceptable_sent", "unacceptable_sent"), "fpadovani/xcomps-dataset", None, "comps_zh"),
    "hanzi_structure": (HANZI, ("sentence_good", "sentence_bad"), "chinese-babylm-org/hanzi-structure", None, "train"),
    "hanzi_pinyin": (HANZI, ("sentence_good", "sentence_bad"), "chinese-babylm-org/hanzi-pinyin", None, "train"),
}
for _lang, _xx in (("en", "en"), ("nl", "nl"), ("zh", "zh")):
    for _name, _config in (("hellaswag", "HellaswagDataset"), ("winogrande", "WinoGrandeDataset"),
                           ("xstorycloze", "StoryClozeDataset")):
        HUB[f"{_name}_{_lang}_mubench"] = (LABELLED, None, "aialt/MuBench", f"{_config}_lighteval_{_xx}", "test")
    _piqa = {"en": "eng_latn", "nl": "nld_latn", "zh": "cmn_hans"}[_lang]
    HUB[f"global_piqa_parallel_{_lang}"] = (PIQA, None, "mrlbenchmarks/global-piqa-parallel", _piqa, "test")
    HUB[f"global_piqa_nonparallel_{_lang}"] = (PIQA, None, "mrlbenchmarks/global-piqa-nonparallel", _piqa, "test")
# Groups of one subtask per file / hub config: (subtask prefix, local folder, hub id, split, fields)
GROUPS: dict[str, tuple[str, str, str, str, tuple[str, str]]] = {
    "zhoblimp": ("zhoblimp_", "zhoblimp", "Junrui1202/zhoblimp", "train", ("sentence_good", "sentence_bad")),
    "blimp_babylm_filtered": ("blimp_babylm_filtered_", "blimp_filtered", "BabyLM-community/BabyLM-BLIMP-Filtered",
                              "train", ("sentence_good", "sentence_bad")),
    "blimp_nl": ("blimp_nl_", "blimp_nl", "juletxara/blimp-nl", "train", ("sentence_good", "sentence_bad")),
}
KNOWN = tuple(HUB) + tuple(GROUPS)


@dataclasses.dataclass
class Subtask:
    name: str
    kind: str
    fields: tuple[str, str] | None
    data_file: Path


@dataclasses.dataclass
class Task:
    name: str  # the lm-eval task or group name, the key of the collated files
    subtasks: list[Subtask]

    @property
    def is_group(self) -> bool:
        return len(self.subtasks) > 1 or self.subtasks[0].name != self.name


def _one_file(folder: Path, stems: tuple[str, ...]) -> Path | None:
    for stem in stems:
        for suffix in (".jsonl", ".tsv"):
            if (folder / f"{stem}{suffix}").is_file():
                return folder / f"{stem}{suffix}"
    return None


def _local_single(name: str, data: Path) -> Path | None:
    if name.startswith("multiblimp_"):
        folder = data / "multiblimp" / name.split("_", 1)[1]
        if folder.is_dir():
            tsvs = sorted(folder.glob("*.tsv"))
            if (folder / "data.tsv").is_file():
                return folder / "data.tsv"
            if len(tsvs) == 1:
                return tsvs[0]
            if tsvs:
                raise InputError(f"{folder}: {len(tsvs)} .tsv files; keep one (data.tsv) for {name}")
    return _one_file(data, (name,))  # also the layout of the hub cache: <task>.jsonl


def _local_group(name: str, data: Path) -> list[Path]:
    folder = data / GROUPS[name][1]
    for candidate in (folder / "ZhoBLiMP", folder):  # the ZhoBLiMP release unpacks into ZhoBLiMP/
        files = sorted(candidate.glob("*.jsonl")) if candidate.is_dir() else []
        if files:
            return files
    return []


def _local(name: str, root: Path) -> list[Subtask]:
    if name in GROUPS:
        prefix, _, _, _, fields = GROUPS[name]
        return [Subtask(prefix + f.stem, MINIMAL_PAIRS, fields, f) for f in _local_group(name, root)]
    kind, fields, *_ = HUB[name]
    found = _local_single(name, root)
    return [Subtask(name, kind, fields, found)] if found else []


def resolve(names: list[str], data: str | Path | None, hub_cache: str | Path | None = None) -> list[Task]:
    """The tasks named, with their files; InputError naming a task without data.

    A task reads ``data`` first; without data there it reads ``hub_cache`` (the hub data sets fetched
    before), and when that lacks it too, fetches its hub data set into ``hub_cache`` (hub_data.py).
    ``hub_cache`` None is an offline run: a task without local data is refused with the path it was
    looked for at, so nothing runs half."""
    root = Path(data) if data else None
    tasks = []
    for name in names:
        if name not in KNOWN:
            raise InputError(f"--tasks: unknown task {name!r}; known: {', '.join(sorted(KNOWN))}")
        subtasks = _local(name, root) if root else []
        if not subtasks and hub_cache is not None:
            subtasks = _local(name, Path(hub_cache))
            if not subtasks:
                if name in GROUPS:
                    hub_data.fetch(name, GROUPS[name][2], None, GROUPS[name][3], Path(hub_cache), GROUPS[name][1])
                else:
                    hub_data.fetch(name, HUB[name][2], HUB[name][3], HUB[name][4], Path(hub_cache))
                subtasks = _local(name, Path(hub_cache))
        if not subtasks:
            hub = GROUPS[name][2] if name in GROUPS else HUB[name][2]
            where = root / (GROUPS[name][1] if name in GROUPS else f"{name}.jsonl") if root else None
            if root is None:
                raise InputError(f"{name}: no --data folder and offline; put the hub data set {hub} in a folder laid "
                                 "out as docs/multilingual.md says and pass it as --data")
            raise InputError(f"{name}: no local data at {where} and offline (the hub is not read); put the {hub} "
                             "data there (layout in docs/multilingual.md) or leave the task out of --tasks")
        tasks.append(Task(name, subtasks))
    return tasks


def available(data: str | Path) -> list[str]:
    """The known tasks whose local data is under ``data`` (the others are named in a warning)."""
    found, absent = [], []
    for name in KNOWN:
        try:
            resolve([name], data)
            found.append(name)
        except InputError:
            absent.append(name)
    if absent:
        log.warning("no local data, not scored: %s", ", ".join(absent))
    if not found:
        raise InputError(f"{data}: no zero-shot task has local data there (layout in docs/multilingual.md)")
    return found


# ---- scoring (process_results) -----------------------------------------------------------------

def fractional(scores: np.ndarray, gold: int) -> float:
    """A k-way tie for the top score that includes gold gives 1/k; gold not on top gives 0."""
    top = np.flatnonzero(scores == scores.max())
    return 1.0 / top.size if gold in top else 0.0


def pairs_results(doc: dict, results: list) -> dict[str, float]:
    return {"acc": fractional(np.array([r[0] for r in results], dtype=float), 0)}


def labelled_results(doc: dict, results: list) -> dict[str, float]:
    lls = np.array([r[0] for r in results], dtype=float)
    choices = doc["choices"]
    gold = doc["label"]
    if isinstance(gold, str):
        gold = choices.index(gold) if gold in choices else (int(gold) if gold.lstrip("-").isdigit() else -100)
    lengths = np.array([float(len(c)) for c in choices])
    return {"acc": fractional(lls, int(gold)), "acc_norm": fractional(lls / lengths, int(gold))}


def piqa_results(tokenizer) -> Callable[[dict, list], dict[str, float]]:
    def process(doc: dict, results: list) -> dict[str, float]:
        lls = np.array([r[0] for r in results], dtype=float)
        choices = piqa_choices(doc)
        context = len(tokenizer.encode(doc["prompt"], add_special_tokens=False))
        counts = np.array([max(len(tokenizer.encode(doc["prompt"] + " " + c, add_special_tokens=False)) - context, 1)
                           for c in choices], dtype=float)
        return {"acc_norm": 1.0 if int(np.argmax(lls / counts)) == int(doc["label"]) else 0.0}
    return process


def hanzi_results(tokenizer) -> Callable[[dict, list], dict[str, float]]:
    unk = tokenizer.unk_token_id

    def process(doc: dict, results: list) -> dict[str, float]:
        if unk is not None and any(unk in tokenizer.encode(doc[f], add_special_tokens=False)
                                   for f in ("sentence_good", "sentence_bad")):
            return {"acc": 0.0}
        lls = np.array([r[0] for r in results], dtype=float)
        top = np.flatnonzero(lls == lls.max())
        return {"acc": 1.0 if top.size == 1 and top[0] == 0 else 0.0}
    return process


def piqa_choices(doc: dict) -> list[str]:
    return [doc[f"solution{i}"] for i in range(sum(1 for k in doc if k.startswith("solution")))]


def _dataset(path: Path) -> dict[str, Any]:
    if path.suffix == ".tsv":
        return {"dataset_path": "csv", "dataset_kwargs": {"data_files": {"train": str(path)}, "delimiter": "\t"}}
    return {"dataset_path": "json", "dataset_kwargs": {"data_files": {"train": str(path)}}}


def lm_eval_config(sub: Subtask, tokenizer) -> dict[str, Any]:
    """The lm-eval task configuration (a dict lm-eval takes in place of a YAML file) of one subtask."""
    config: dict[str, Any] = {"task": sub.name, **_dataset(sub.data_file), "output_type": "multiple_choice",
                              "test_split": "train", "num_fewshot": 0,
                              "metadata": {"version": 1.0}}
    if sub.kind in (MINIMAL_PAIRS, HANZI):
        good, bad = sub.fields
        config.update(doc_to_text="", doc_to_target=0, doc_to_choice=lambda doc, g=good, b=bad: [doc[g], doc[b]],
                      process_results=pairs_results if sub.kind == MINIMAL_PAIRS else hanzi_results(tokenizer),
                      metric_list=[{"metric": "acc", "aggregation": "mean", "higher_is_better": True}])
    elif sub.kind == LABELLED:
        config.update(doc_to_text="prompt", doc_to_target="label", doc_to_choice="choices",
                      process_results=labelled_results,
                      metric_list=[{"metric": m, "aggregation": "mean", "higher_is_better": True}
                                   for m in ("acc", "acc_norm")])
    else:
        config.update(doc_to_text="prompt", doc_to_target="label", doc_to_choice=piqa_choices,
                      process_results=piqa_results(tokenizer),
                      metric_list=[{"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}])
    return config
