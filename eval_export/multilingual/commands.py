"""``python -m eval_export.multilingual``: the multilingual track's commands, one per stage.

torch, transformers and lm_eval are imported inside the functions that need them, so that ``--help``
stays quick."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from babylm import multilingual_corpus as mc
from babylm.cli import Command
from babylm.config import option
from babylm.errors import InputError, UsageError
from babylm.files import write_json
from babylm.tokenizer import TokenizerConfig as KitTokenizerConfig
from babylm.tokenizer import load_tokenizer, train_tokenizer
from eval_export.loading import resolve_model_path
from eval_export.multilingual import finetune as ft
from eval_export.multilingual import hub_data, pos, spec
from eval_export.multilingual.collate import check_files, write_files
from eval_export.multilingual.collate import collate as run_collate
from eval_export.multilingual.fertility import fertility_table
from eval_export.multilingual.meco import l1_predictions, l2_predictions
from eval_export.multilingual.tasks import available, resolve
from eval_export.multilingual.zeroshot import bos_model, run_tasks, write_zeroshot

log = logging.getLogger(__name__)
LANGS = "eng,nld,zho"


@dataclasses.dataclass
class CorpusConfig:
    languages: str = option(LANGS, "languages of the mixture, comma-separated (eng, nld, zho)")
    data: str = option("", "folder with one sub-folder per language (eng/, nld/, zho/) of text or JSON Lines "
                           "('text' field) files, the BabyBabelLM layout")
    finetune_data: str = option("", "instead of --data: the official fine-tuning folder (<xx>/<task>/*.train.jsonl), "
                                    "whose text makes a small real mixed corpus (the smoke run)")
    max_bytes: int = option(400_000, "with --finetune_data: UTF-8 bytes taken per language", ge=1)
    budget_words: int = option(100_000_000, "budget in English-equivalent words (bytes / byte premium / 5.43)", ge=1)
    out_dir: str = option("outputs/multilingual_corpus", "folder to write (train/mixed.train, multilingual_corpus.json)")
    overwrite: bool = option(False, "replace an existing out_dir")


def corpus(cfg: CorpusConfig) -> None:

    langs = mc.parse_languages(cfg.languages)
    if bool(cfg.data) == bool(cfg.finetune_data):
        raise UsageError("give exactly one of --data (per-language folders) and --finetune_data")
    if Path(cfg.out_dir).exists() and not cfg.overwrite:
        raise UsageError(f"--out_dir {cfg.out_dir} exists; pass --overwrite true to replace it")
    if cfg.data:
        texts = [mc.read_language(Path(cfg.data) / lang, lang) for lang in langs]
    else:
        texts = [mc.read_finetune_language(Path(cfg.finetune_data), lang, cfg.max_bytes) for lang in langs]
    manifest = mc.build_corpus(texts, cfg.out_dir, cfg.budget_words, cfg.overwrite)
    print(json.dumps({k: manifest[k] for k in ("words_equivalent", "whitespace_words", "milestone_unit_words")}))


@dataclasses.dataclass
class TokenizerConfig:
    corpus: str = option("outputs/multilingual_corpus", "folder written by the corpus command")
    vocab_size: int = option(16384, "vocabulary size including the special tokens", ge=262)
    out_dir: str = option("outputs/multilingual_tokenizer", "folder to write the tokenizer to")
    overwrite: bool = option(False, "replace an existing out_dir")


def tokenizer(cfg: TokenizerConfig) -> None:
    # the tokenizers library and transformers stay off the --help path

    path = train_tokenizer(KitTokenizerConfig(corpus=cfg.corpus, files=["train"], track="strict", model="bpe",
                                              vocab_size=cfg.vocab_size, out_dir=cfg.out_dir, overwrite=cfg.overwrite))
    table = fertility_table(load_tokenizer(path), Path(cfg.corpus) / "by_language")
    for row in table:
        print(json.dumps(row, ensure_ascii=False))


@dataclasses.dataclass
class ZeroshotConfig:
    model: str = option("", "model folder (a kit run folder with final/ and chck_*), or a saved model folder")
    revision: str = option("main", "main or a milestone (chck_10M ...): the sub-folder of --model")
    tasks: list[str] = option(["available"], "zero-shot tasks (lm-eval names), comma-separated; available: every task "
                                             "whose data is under --data")
    data: str = option("", "local data folder of the zero-shot tasks (layout in docs/multilingual.md); a task "
                           "without data there reads its hub data set when online")
    offline: bool = option(False, "never read the hub (also when HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set): "
                                  "a task without local data is an error")
    hub_cache: str = option("", "folder the hub data sets are fetched into, in the --data layout (default: "
                                "$BABYLM_CACHE/multilingual or ~/.cache/babylm/multilingual)")
    limit: int | None = option(None, "score only the first N items of every subtask (quick runs, not submissions)", ge=1)
    batch_size: int = option(32, "lm-eval batch size", ge=1)
    device: str = option("cpu", "cpu, cuda or cuda:N")
    results: str = option("results", "output root: <results>/<model name>/<revision>/zeroshot/")
    model_name: str = option("", "name in the results path (default: the model folder's name)")


def _model_dir(model: str, name: str) -> str:
    if not model:
        raise UsageError("--model is required")
    return name or Path(model.rstrip("/")).name


def zeroshot(cfg: ZeroshotConfig) -> None:

    name = _model_dir(cfg.model, cfg.model_name)
    if "available" in cfg.tasks and (cfg.tasks != ["available"] or not cfg.data):
        raise UsageError("--tasks available stands alone and needs --data (the folder whose tasks are scored)")
    names = available(cfg.data) if cfg.tasks == ["available"] else cfg.tasks
    cache = None if hub_data.offline(cfg.offline) else Path(cfg.hub_cache or hub_data.default_cache())
    tasks = resolve(names, cfg.data or None, cache)  # every task's data found before anything is scored
    path, hub_revision = resolve_model_path(cfg.model, cfg.revision)
    lm = bos_model(path, hub_revision, cfg.batch_size, cfg.device)
    results, samples = run_tasks(lm, tasks, cfg.limit)
    out = write_zeroshot(Path(cfg.results) / name / cfg.revision / "zeroshot", tasks, results, samples,
                         {"model": cfg.model, "revision": cfg.revision, "limit": cfg.limit, "tasks": names})
    written = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]
    for task in tasks:
        log.info("%s: %s %.4f", task.name, spec.metric_of(task.name), written[task.name][spec.metric_of(task.name)])
    print(out / "results.json")


@dataclasses.dataclass
class FinetuneConfig:
    model: str = option("", "model folder (a kit run folder with final/) or a saved model folder")
    revision: str = option("main", "main or a milestone sub-folder")
    languages: str = option(LANGS, "languages, comma-separated")
    tasks: list[str] = option(list(spec.FINETUNE_TASKS) + ["pos"], "tasks, comma-separated (a language without a "
                                                                    "task's files is named and left out); pos needs --pos_data")
    data_dir: str = option("", "the official fine-tuning folder: <xx>/<task>/<task>_<xx>.{train,valid}.jsonl")
    pos_data: str = option("", "UD treebanks for pos: <xx>/*.conllu (one joint model over the languages given)")
    lr: float = option(5e-5, "learning rate", gt=0)
    batch_size: int = option(64, "batch size", ge=1)
    epochs: int = option(10, "most epochs", ge=1)
    patience: int = option(3, "epochs without a gain (> 0.001) before stopping", ge=1)
    max_length: int = option(128, "tokens per example", ge=1)
    seed: int = option(12, "seed", ge=0)
    limit: int | None = option(None, "use only the first N training and validation rows (quick runs)", ge=1)
    device: str = option("auto", "cpu, cuda or auto")
    results: str = option("results", "output root: <results>/<model name>/<revision>/finetune_multilingual/<xx>/<task>/")
    model_name: str = option("", "name in the results path (default: the model folder's name)")


def finetune(cfg: FinetuneConfig) -> None:

    unknown = [t for t in cfg.tasks if t not in spec.FINETUNE_FIELDS and t != "pos"]
    if unknown:
        raise UsageError(f"--tasks: unknown task {unknown[0]!r}; known: {', '.join(spec.FINETUNE_TASKS)}, pos")
    classification = [t for t in cfg.tasks if t != "pos"]
    if classification and not cfg.data_dir:
        raise UsageError("--data_dir is required (the official fine-tuning folder)")
    name = _model_dir(cfg.model, cfg.model_name)
    langs = mc.parse_languages(cfg.languages)
    out = Path(cfg.results) / name / cfg.revision / "finetune_multilingual"
    options = {"lr": cfg.lr, "batch_size": cfg.batch_size, "epochs": cfg.epochs, "patience": cfg.patience,
               "max_length": cfg.max_length, "seed": cfg.seed, "limit": cfg.limit}
    done = {k: v["eval_accuracy"] for k, v in ft.run(cfg.model, cfg.revision, langs, classification, cfg.data_dir,
                                                     out, options, cfg.device).items()} if classification else {}
    if "pos" in cfg.tasks and not cfg.pos_data:
        log.warning("pos: no --pos_data (UD treebanks as <xx>/*.conllu); not fine-tuned")
    elif "pos" in cfg.tasks:
        path, _ = resolve_model_path(cfg.model, cfg.revision)
        tok = load_tokenizer_for(path)
        scores = pos.run(path, tok, cfg.pos_data, [spec.ISO2[x] for x in langs], out,
                         {**options, "max_sentences": cfg.limit or pos.MAX_SENTENCES})
        done.update({f"pos_{xx}": acc for xx, acc in scores.items()})
    print(json.dumps({k: round(v, 4) for k, v in done.items()}))


def load_tokenizer_for(path: str):
    from transformers import AutoTokenizer  # off the --help path

    return AutoTokenizer.from_pretrained(path)


@dataclasses.dataclass
class MecoConfig:
    model: str = option("", "model folder")
    revision: str = option("main", "main or a milestone sub-folder")
    languages: str = option(LANGS, "languages of the mixture (L1 of each; L2 when English is among them)")
    meco_dir: str = option("", "folder holding meco_l2_stims.tsv and, for L1, meco_l1_stims.tsv (the official "
                               "meco/data)")
    limit: int | None = option(None, "only the first N passages (quick runs)", ge=1)
    results: str = option("results", "output root: <results>/<model name>/<revision>/meco/predictions_meco.json")
    model_name: str = option("", "name in the results path")


def meco(cfg: MecoConfig) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer


    name = _model_dir(cfg.model, cfg.model_name)
    langs = mc.parse_languages(cfg.languages)
    if not cfg.meco_dir:
        raise UsageError("--meco_dir is required (the folder of meco_l2_stims.tsv)")
    path, hub_revision = resolve_model_path(cfg.model, cfg.revision)
    tok = AutoTokenizer.from_pretrained(path, revision=hub_revision)
    model = AutoModelForCausalLM.from_pretrained(path, revision=hub_revision, dtype=torch.float32).eval()
    max_len = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", 1024)
    folder = Path(cfg.meco_dir)
    l1_stims = folder / "meco_l1_stims.tsv"
    if l1_stims.is_file():
        l1 = l1_predictions(model, tok, l1_stims, langs, max_len, cfg.limit)
    else:
        l1 = {}
        log.warning("%s not there: MECO L1 is not computed (the official meco/data holds it)", l1_stims)
    l2 = l2_predictions(model, tok, folder / "meco_l2_stims.tsv", langs, max_len, cfg.limit) \
        if "eng" in langs and set(langs) & {"nld", "zho"} else {}
    if not l1 and not l2:
        raise InputError(f"{folder}: nothing to compute: MECO L1 needs meco_l1_stims.tsv there, L2 needs English "
                         "and Dutch or Chinese in --languages")
    out = Path(cfg.results) / name / cfg.revision / "meco" / "predictions_meco.json"
    write_json(out, {"meco_l1": l1, "meco_l2": l2})
    print(out)


@dataclasses.dataclass
class CollateConfig:
    model: str = option("", "model name: the folder under --results")
    results: str = option("results", "results root")
    fast: bool = option(False, "add fast_eval_results from the chck_* revisions")
    out_dir: str = option("", "folder of the two files (default: <results>/<model>)")


def collate(cfg: CollateConfig) -> None:

    if not cfg.model:
        raise UsageError("--model is required")
    scores, predictions = run_collate(Path(cfg.results) / cfg.model, cfg.fast)
    out = Path(cfg.out_dir or Path(cfg.results) / cfg.model)
    write_files(scores, predictions, out / f"{cfg.model}_submission.json", out / f"{cfg.model}_predictions.json")
    print(out / f"{cfg.model}_submission.json")
    print(out / f"{cfg.model}_predictions.json")


@dataclasses.dataclass
class ValidateConfig:
    scores: str = option("", "the scores file (<model>_submission.json)")
    predictions: str = option("", "the predictions file (<model>_predictions.json)")


def validate(cfg: ValidateConfig) -> None:

    if not cfg.scores:
        raise UsageError("give the scores file")
    for note in check_files(cfg.scores, cfg.predictions or None):
        print(note)
    print("ok")


COMMANDS = {
    "corpus": Command("corpus", CorpusConfig, corpus, "Build the mixed training corpus under the track's budget "
                      "(English-equivalent words: UTF-8 bytes / byte premium / 5.43)."),
    "tokenizer": Command("tokenizer", TokenizerConfig, tokenizer, "Train one byte-level BPE on the mixed corpus and "
                         "print each language's fertility."),
    "zeroshot": Command("zeroshot", ZeroshotConfig, zeroshot, "Score the zero-shot tasks through lm-evaluation-harness "
                        "with the kit's task configurations on local data."),
    "finetune": Command("finetune", FinetuneConfig, finetune, "Fine-tune per language on the official multilingual "
                        "files (lr 5e-5, batch 64, 10 epochs, patience 3, 128 tokens, seed 12)."),
    "meco": Command("meco", MecoConfig, meco, "Write the MECO per-word surprisals (predictions_meco.json)."),
    "collate": Command("collate", CollateConfig, collate, "Write the scores file and the predictions file as the "
                       "official collate_results.py keys them."),
    "validate": Command("validate", ValidateConfig, validate, "Check the two files as the leaderboard checks "
                        "multilingual files.", positional=("scores", "predictions")),
}
