"""The ``python -m babylm`` commands: an explicit name -> function map (see babylm.cli).

Each function here is thin: it receives its validated config, calls one library function and
prints what the user needs. The config dataclasses live beside the code they configure.
"""

from __future__ import annotations

import dataclasses
import json

from babylm.cli import Command
from babylm.config import option
from babylm.corpus import CorpusConfig
from babylm.data import PrepareConfig
from babylm.download import DownloadConfig
from babylm.perplexity import TestConfig
from babylm.publish import PublishConfig
from babylm.run import TrainConfig
from babylm.synthetic import GenerateConfig
from babylm.tokenizer import TokenizerConfig


@dataclasses.dataclass
class EnvConfig:
    json: bool = option(False, "print the summary as one JSON object instead of aligned lines")


def env(cfg: EnvConfig) -> None:
    from babylm.runtime import environment_summary

    summary = environment_summary()
    if cfg.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:>15}: {value}")


@dataclasses.dataclass
class CorpusCommandConfig(CorpusConfig):
    out_dir: str = option("outputs/corpus", "folder for corpus_manifest.json and corpus_config.json")


def corpus(cfg: CorpusCommandConfig) -> None:
    from babylm.config import save
    from babylm.corpus import load_corpus
    from babylm.files import write_json

    loaded = load_corpus(cfg.corpus, files=cfg.files, track=cfg.track, allow_over_budget=cfg.allow_over_budget)
    print(loaded.table())
    path = write_json(f"{cfg.out_dir}/corpus_manifest.json", loaded.manifest())
    save(cfg, cfg.out_dir, "corpus")
    print(f"manifest: {path}")


def generate(cfg: GenerateConfig) -> None:
    from babylm.config import save
    from babylm.synthetic import generate_corpus

    out = generate_corpus(cfg)
    save(cfg, out, "generate")
    print(f"synthetic corpus written to {out}")


def tokenizer(cfg: TokenizerConfig) -> None:
    from babylm.tokenizer import describe, load_tokenizer, train_tokenizer

    out = train_tokenizer(cfg)
    info = describe(load_tokenizer(out))
    print(f"tokenizer written to {out}: " + ", ".join(f"{k} {v}" for k, v in info.items()))


def prepare(cfg: PrepareConfig) -> None:
    from babylm.data import prepare as prepare_data

    folder = prepare_data(cfg)
    info = json.loads((folder / "pack_info.json").read_text())
    print(f"{info['blocks']:,} blocks of {info['block_size']} ids, {info['words_kept']:,} words kept "
          f"({info['words_dropped']:,} dropped with the final partial block)")
    print(f"packed data: {folder}")


def download(cfg: DownloadConfig) -> None:
    from babylm.config import save
    from babylm.download import download as download_all

    placed = download_all(cfg)
    save(cfg, cfg.out_dir, "download")
    print("unpacked: " + ", ".join(str(p) for p in placed))
    print(f"use it with --corpus {cfg.out_dir}")


COMMANDS: dict[str, Command] = {
    "env": Command("env", EnvConfig, env, "Print the environment summary (kit commit, lock hash, torch, GPUs)."),
    "generate": Command("generate", GenerateConfig, generate,
                        "Write the synthetic embedded corpus (train/dev/test text + BLiMP-format minimal pairs)."),
    "corpus": Command("corpus", CorpusCommandConfig, corpus,
                      "Select corpus files, print exact word counts per file and write the manifest."),
    "tokenizer": Command("tokenizer", TokenizerConfig, tokenizer,
                         "Train a BPE, WordPiece or Unigram tokenizer on the selected training files."),
    "download": Command("download", DownloadConfig, download,
                        "Download, verify and unpack the official BabyLM text archives (resumable)."),
    "prepare": Command("prepare", PrepareConfig, prepare,
                       "Tokenize and pack the selected files into fixed-size blocks (cached on disk)."),
}


# ---- training ------------------------------------------------------------------------------

def run_training(cfg: TrainConfig):
    """Set up the run, build the model, and train it with the chosen engine; returns the run folder.

    Both engines take the same :class:`babylm.run.Run`, model and optimizer and write the same run
    layout: ``torch`` is the kit's loop (babylm/train.py), ``hf`` the transformers Trainer
    (babylm/hf_engine.py).
    """
    from babylm import distributed
    from babylm.run import build, setup

    if cfg.engine == "hf":
        from babylm.hf_engine import fit
    else:
        from babylm.train import fit
    run = setup(cfg)  # takes the run folder (babylm.run.hold_run_dir); released however the run ends
    try:
        model, optimizer = build(run)  # bad input fails here, before the run folder is touched
        fit(run, model, optimizer)
    finally:
        run.release()
        distributed.shutdown(run.dist)
    return run.run_dir


def train(cfg: TrainConfig) -> None:
    import os

    run_dir = run_training(cfg)
    if os.environ.get("RANK", "0") == "0":  # torchrun: one line, from rank 0
        print(f"run folder: {run_dir}")


def test(cfg: TestConfig) -> None:
    from babylm.perplexity import test_model

    metrics = test_model(cfg)
    print(json.dumps(metrics))


@dataclasses.dataclass
class TensorboardConfig:
    logdir: str = option("runs", "a run folder or the folder holding runs (--save_dir)")
    launch: bool = option(False, "start TensorBoard now instead of printing the command")
    port: int = option(6006, "port for TensorBoard")


def tensorboard(cfg: TensorboardConfig) -> None:
    import subprocess
    import sys
    from pathlib import Path

    from babylm.errors import InputError

    logdir = Path(cfg.logdir)
    if not logdir.is_dir():
        raise InputError(f"--logdir: {logdir} does not exist; give a run folder or the --save_dir of your runs")
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(cfg.port)]
    if not cfg.launch:
        print(f"{' '.join(command)}\nthen open http://localhost:{cfg.port}  (metrics also in <run>/metrics.jsonl)")
        return
    subprocess.run(command, check=False)


def publish(cfg) -> None:
    from babylm.publish import publish as publish_run
    from babylm.publish import redact

    out = publish_run(cfg, say=lambda line: print(line, flush=True))  # one line per branch as it is done
    print(f"repository: {out.repo}" + (f" (pushed to {redact(cfg.remote)})" if cfg.remote else ""))
    print(f"score a revision: python -m eval_export score --model {out.repo} --revision {out.branches[0].branch}")
    if out.hub:
        print(f"from the hub: python -m eval_export score --model {cfg.hub_repo} --revision {out.hub[0].branch}")


COMMANDS.update({
    "train": Command("train", TrainConfig, train,
                     "Train a model (gpt2, llama, bert, roberta, deberta-v2, gpt-bert) with word-milestone checkpoints."),
    "test": Command("test", TestConfig, test, "Report loss and perplexity of a saved model on test files."),
    "publish": Command("publish", PublishConfig, publish,
                       "Write a run's milestones and final model as git branches (chck_1M ... main); optionally push "
                       "them or upload them to the Hugging Face hub."),
    "tensorboard": Command("tensorboard", TensorboardConfig, tensorboard,
                           "Show (or --launch) the TensorBoard command for a run's logs."),
})
