"""The ``python -m babylm`` commands: an explicit name -> function map (see babylm.cli).

Each function here is thin: it receives its validated config, calls one library function and
says what it did (``log.info``: hidden by ``-q``); ``print`` is kept for a command's result, what a
pipe reads (``env``, ``test``, the corpus table). The config dataclasses live beside the code they
configure.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import threading
from pathlib import Path

from babylm import distributed
from babylm.cli import Command
from babylm.config import option
from babylm.config import save as save_config
from babylm.corpus import CorpusConfig, load_corpus
from babylm.credentials import redact
from babylm.data import PrepareConfig
from babylm.data import prepare as prepare_data
from babylm.download import DownloadConfig
from babylm.download import download as download_files
from babylm.errors import RESUME_HINT, InputError
from babylm.files import write_json
from babylm.perplexity import TestConfig, test_model
from babylm.publish import PublishConfig
from babylm.publish import publish as publish_run
from babylm.run import TrainConfig, build, setup
from babylm.runtime import environment_summary
from babylm.synthetic import GenerateConfig, generate_corpus
from babylm.tokenizer import TokenizerConfig, describe, load_tokenizer, train_tokenizer

log = logging.getLogger(__name__)


@dataclasses.dataclass
class EnvConfig:
    json: bool = option(False, "print the summary as one JSON object instead of aligned lines")


def env(cfg: EnvConfig) -> None:
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
    loaded = load_corpus(cfg.corpus, files=cfg.files, track=cfg.track, allow_over_budget=cfg.allow_over_budget)
    print(loaded.table())
    path = write_json(f"{cfg.out_dir}/corpus_manifest.json", loaded.manifest())
    save_config(cfg, cfg.out_dir, "corpus")
    log.info("manifest: %s", path)


def generate(cfg: GenerateConfig) -> None:
    out = generate_corpus(cfg)
    save_config(cfg, out, "generate")
    log.info("synthetic corpus written to %s", out)


def tokenizer(cfg: TokenizerConfig) -> None:
    out = train_tokenizer(cfg)
    info = describe(load_tokenizer(out))
    log.info("tokenizer written to %s: %s", out, ", ".join(f"{k} {v}" for k, v in info.items()))


def prepare(cfg: PrepareConfig) -> None:
    folder = prepare_data(cfg)
    info = json.loads((folder / "pack_info.json").read_text())
    log.info(f"{info['blocks']:,} blocks of {info['block_size']} ids, {info['words_kept']:,} words kept "
             f"({info['words_dropped']:,} dropped with the final partial block)")
    log.info("packed data: %s", folder)


def download(cfg: DownloadConfig) -> None:
    placed = download_files(cfg)
    save_config(cfg, cfg.out_dir, "download")
    log.info("unpacked: %s", ", ".join(str(p) for p in placed))
    log.info("use it with --corpus %s", cfg.out_dir)


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
    if cfg.engine == "hf":
        from babylm.hf_engine import fit  # torch and transformers: loaded when a run starts, not for --help
    else:
        from babylm.train import fit  # torch: loaded when a run starts, not for --help
    run = setup(cfg)  # takes the run folder (babylm.run.hold_run_dir); released however the run ends
    try:
        model, optimizer = build(run)  # bad input fails here, before the run folder is touched
        fit(run, model, optimizer)
    finally:
        run.release()
        distributed.shutdown(run.dist)
    return run.run_dir


def _terminated(signum, frame) -> None:
    raise KeyboardInterrupt  # ends the run as Ctrl-C does: the command line says how --resume continues it


def train(cfg: TrainConfig) -> None:
    # SIGTERM (a scheduler's time limit, `kill`) stops a run as Ctrl-C does, with the same message.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        run_dir = run_training(cfg)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    log.info("run folder: %s", run_dir)  # under torchrun from rank 0 only (babylm.logs)


def train_interrupted(cfg: TrainConfig) -> str:
    """What continues a run that Ctrl-C or SIGTERM stopped: resume from its checkpoint, or start it again."""
    from babylm.checkpoint import LATEST  # imports torch: kept off the --help path

    run_dir = Path(cfg.save_dir) / cfg.name
    if (run_dir / LATEST).is_file():
        return RESUME_HINT
    if run_dir.is_dir():
        return (f"{run_dir} holds no checkpoint yet (one is written every --save_every {cfg.save_every} steps); "
                "run the same command with --overwrite true to start it again")
    return "nothing was written; run the same command again"


def test(cfg: TestConfig) -> None:
    metrics = test_model(cfg)
    print(json.dumps(metrics))


@dataclasses.dataclass
class TensorboardConfig:
    logdir: str = option("runs", "a run folder or the folder holding runs (--save_dir)")
    port: int = option(6006, "port to serve on (0: any free port; the address is printed)", ge=0, le=65535)
    host: str = option("localhost", "address to serve on; 0.0.0.0 serves every interface of this machine "
                                    "(a remote GPU server; or forward the port with ssh -L 6006:localhost:6006)")


def tensorboard(cfg: TensorboardConfig) -> None:
    """Serve TensorBoard on the runs' ``tb`` folders until Ctrl-C, which stops it (not an error).

    In this process (TensorBoard's own program API), so that no server outlives the command.
    """
    logdir = Path(cfg.logdir)
    if not logdir.is_dir():
        raise InputError(f"--logdir: {logdir} does not exist; give a run folder or the --save_dir of your runs")
    from tensorboard import program  # heavy: only when the command runs

    board = program.TensorBoard()
    board.configure(argv=[None, "--logdir", str(logdir), "--port", str(cfg.port), "--host", cfg.host])
    log.info("TensorBoard on %s: Ctrl-C stops it (the numbers are also in <run>/metrics.jsonl)", logdir)
    try:
        code = board.main()  # returns when Ctrl-C stops the server (or raises KeyboardInterrupt)
    except KeyboardInterrupt:
        code = 0
    if code:
        raise InputError(f"TensorBoard could not serve on {cfg.host}:{cfg.port} (its message is above); "
                         "choose another --port")
    log.info("TensorBoard stopped")


def publish(cfg) -> None:
    out = publish_run(cfg, say=log.info)  # one line per branch as it is done
    log.info("repository: %s%s", out.repo, f" (pushed to {redact(cfg.remote)})" if cfg.remote else "")
    log.info("score a revision: python -m eval_export score --model %s --revision %s", out.repo, out.branches[0].branch)
    if out.hub:
        log.info("from the hub: python -m eval_export score --model %s --revision %s", cfg.hub_repo, out.hub[0].branch)


COMMANDS.update({
    "train": Command("train", TrainConfig, train,
                     "Train a model (gpt2, llama, bert, roberta, deberta-v2, gpt-bert) with word-milestone checkpoints.",
                     interrupted=train_interrupted),
    "test": Command("test", TestConfig, test, "Report loss and perplexity of a saved model on test files."),
    "publish": Command("publish", PublishConfig, publish,
                       "Write a run's milestones and final model as git branches (chck_1M ... main); optionally push "
                       "them or upload them to the Hugging Face hub."),
    "tensorboard": Command("tensorboard", TensorboardConfig, tensorboard,
                           "Start TensorBoard on the runs' logs (the folder of one run or of several); Ctrl-C stops it."),
})
