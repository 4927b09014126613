"""Stage 3 of the device run: a real strict-small model trained and scored by the kit on real text.

GPT-BERT at the published strict-small shape (preset ``gpt_bert_strict_small``: 12 layers x 384
hidden, 6 heads, GEGLU 1280, BPE 8,192, block 128, batch 128, AdamW 1e-3), model and loss compiled,
bf16, milestones on, on every training file carried (about 4.5M words: the 2023 strict-small slices
and the 2024 samples; their ``*_dev`` samples validate). Length: ``--epochs`` epochs (10, the
challenge's cap) or as many words as fit the stage's time, whichever is fewer: a short probe run of
the same configuration (1M words, no milestones) measures words/s first, and its compiled graphs
stay cached for the real run. The final model is scored the way a submission is (``eval_export
score``, official files written) with the mntp and the causal backend on full BLiMP, the full
supplement, EWoK fast (when its password is carried) and entity tracking fast; milestones with mntp
on the fast BLiMP and supplement (the curve). Then GPT-2 at the same size on the same words, when
the time left fits it. Published final scores of the official baselines stand beside the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.device.results import StagePart, md_table  # noqa: E402  (after the path line)

PRESET = "gpt_bert_strict_small"
# What the final model is scored on, per eval set: the submission's full sets where the data exist.
FINAL_TASKS = {"full": ("blimp", "blimp_supplement"), "fast": ("ewok", "entity_tracking")}
CURVE_TASKS = ("blimp", "blimp_supplement")  # the milestones' fast sets
CURVE = ("chck_1M", "chck_2M", "chck_5M", "chck_10M", "chck_20M", "chck_40M", "chck_60M", "chck_80M", "chck_100M")
LABELS = {("blimp", "full"): "BLiMP", ("blimp_supplement", "full"): "supplement", ("ewok", "fast"): "EWoK fast",
          ("entity_tracking", "fast"): "entity tracking fast", ("blimp", "fast"): "BLiMP fast",
          ("blimp_supplement", "fast"): "supplement fast"}
# Published final scores (percent) of the official strict-small baselines, 10 epochs = 100M words seen:
# (model, backend, BLiMP, supplement, EWoK, entity tracking, source). Their EWoK is the full set and
# the 2025 entity tracking keeps the items the 2026 rules drop, so those two columns compare loosely.
SOURCE_2025 = ("babylm/evaluation-pipeline-2025 README, draft baseline table at commit 19993f9 (later withdrawn in "
               "4be13d5); 'masked-focus' is the GPT-BERT baseline trained mostly on masked examples, as the kit's 1 causal "
               ": 15 masked (model cards of BabyLM-community/babylm-baseline-10m-gpt-bert-*)")
SOURCE_2026 = "babylm-org/babylm-eval README at 45fe2c1 ('add strict zero-shot baselines')"
PUBLISHED = (
    ("GPT-BERT masked-focus (2025 baseline)", "mntp", 70.36, 63.71, 49.95, 40.02, SOURCE_2025),
    ("GPT-BERT masked-focus (2025 baseline)", "causal", 65.22, 59.49, 49.47, 30.60, SOURCE_2025),
    ("GPT-2 small (2025 baseline)", "causal", 67.29, 59.09, 49.80, 18.92, SOURCE_2025),
    ("GPT-2 (2026 baseline)", "causal", 65.08, 57.25, None, 21.07, SOURCE_2026),
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True)
    p.add_argument("--corpus", default="", help="training text (default: <work>/data/corpus)")
    p.add_argument("--eval_data", default="", help="evaluation data (default: <work>/data/eval)")
    p.add_argument("--epochs", type=float, default=10.0, help="at most this many passes over the training files")
    p.add_argument("--budget_s", type=float, default=240.0, help="seconds this stage may take in all")
    p.add_argument("--score_reserve_s", type=float, default=60.0, help="seconds kept for scoring a model")
    p.add_argument("--smoke", action="store_true", help="tiny models on the CPU, one item per subtask: checks the stage")
    return p.parse_args(argv)


def train_flags(args, arch: str, tokenizer: Path, words: int, name: str, milestones: bool) -> dict:
    """The ``train`` options of one run: the preset, then what this stage sets."""
    flags = {"config": PRESET, "corpus": args.corpus, "files": "train", "tokenizer": str(tokenizer), "words": words,
             "save_dir": str(Path(args.work) / "real_run" / "runs"), "run_name": name, "overwrite": True,
             "milestones": milestones, "save_every": 0, "eval_every": 0, "eval_batches": 20, "tensorboard": False,
             "progress": False, "log_every": 10, "compile": not args.smoke}
    if arch == "gpt2":  # the same size as the published GPT-BERT: 12 x 384, 6 heads (feed-forward 4 x hidden)
        flags.update(arch="gpt2", layers=12, hidden=384, heads=6)
    if args.smoke:
        flags.update(size="tiny", block_size=64, batch_size=16, warmup_steps=5, log_every=2, device="cpu",
                     precision="fp32", milestone_unit_words=2_000)
        if arch == "gpt2":
            flags.update(layers=2, hidden=64, heads=2)
    return {k: str(v) for k, v in flags.items()}


def run_config(args, arch: str, tokenizer: Path, words: int, name: str, milestones: bool):
    """The resolved ``train`` config of one run (validated as the command line would)."""
    from babylm import config
    from babylm.run import TrainConfig

    return config.build(TrainConfig, train_flags(args, arch, tokenizer, words, name, milestones), command="train")


def pack(cfg, num_proc: int) -> float:
    """Tokenize and pack the training and validation files into the kit's cache, in ``num_proc``
    processes (the run itself packs in one); the runs then find them there. Returns the seconds."""
    import os

    from babylm.corpus import load_corpus
    from babylm.data import pack_corpus
    from babylm.tokenizer import load_tokenizer

    start = time.perf_counter()
    tok = load_tokenizer(cfg.tokenizer)
    for files in (cfg.files, cfg.val_files):
        pack_corpus(load_corpus(cfg.corpus, files=files, track=cfg.track), tok, cfg.block_size,
                    num_proc=max(1, min(num_proc, os.cpu_count() or 1)))
    return time.perf_counter() - start


def train(cfg) -> dict:
    """Train one run through the kit's ``train`` path; returns its folder, words, steps, seconds and rates."""
    from babylm.commands import run_training

    if cfg.compile:
        import torch

        # Each run starts with the compiler state a fresh `train` process has: the runs of this stage
        # would otherwise add up against dynamo's recompile limit and fall back to eager. The compiled
        # kernels stay in inductor's on-disk cache.
        torch._dynamo.reset()
    start = time.perf_counter()
    run_dir = run_training(cfg)
    seconds = time.perf_counter() - start
    progress = json.loads((run_dir / "final" / "run_config.json").read_text())["progress"]
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rates = [r["train/tokens_per_s"] for r in logged if r.get("train/tokens_per_s")]
    losses = [r["val/loss"] for r in logged if r.get("val/loss") is not None]
    steady = statistics.median(rates[1:]) if len(rates) > 1 else (rates[0] if rates else 0.0)
    return {"run_dir": str(run_dir), "arch": cfg.arch, "words_seen": progress["words_seen"], "steps": progress["step"],
            "tokens_seen": progress.get("tokens_seen"), "seconds": round(seconds, 1), "tokens_per_s": round(steady),
            "val_loss": losses[-1] if losses else None}


def plan_words(args, probe: dict, train_words: int, seconds_left: float) -> tuple[int, float, str]:
    """Words for the real run: ``--epochs`` epochs, or what the probe's rate says fits ``seconds_left``;
    with the predicted seconds and a sentence saying why."""
    tokens_per_word = (probe["tokens_seen"] or probe["words_seen"]) / max(1, probe["words_seen"])
    words_per_s = max(probe["tokens_per_s"] / tokens_per_word, 1e-9)
    # Everything in the probe that was not steady training (set-up, compiling, evaluating, saving) is
    # counted again for the real run: an over-estimate, since compiling hits its cache the second time.
    overhead = max(0.0, probe["seconds"] - probe["words_seen"] / words_per_s)
    want = int(args.epochs * train_words)
    fit = int(max(0.0, seconds_left - overhead) * words_per_s)
    words = want if fit >= want else max(fit, probe["words_seen"])
    predicted = overhead + words / words_per_s
    epochs = f"{args.epochs:g} epoch{'' if args.epochs == 1 else 's'}"
    if words == want:
        return words, predicted, f"{epochs} ({want:,} words) fit: about {predicted:.0f} s predicted"
    return words, predicted, (f"{want:,} words ({epochs}) would take about {overhead + want / words_per_s:.0f} s; "
                              f"{words:,} words ({words / train_words:.1f} epochs, about {predicted:.0f} s) fit the "
                              f"{seconds_left:.0f} s left")


def score(args, run_dir: str, backend: str, revisions: list[str], eval_set: str, tasks: tuple[str, ...]) -> dict:
    """Score through ``eval_export score`` (official files under <work>/real_run/results); {revision: {label: %}}."""
    from babylm import config
    from eval_export import loading, submission
    from eval_export.commands import ScoreConfig
    from eval_export.commands import score as run_score
    from eval_export.tasks import DATA_DIRS

    results = Path(args.work) / "real_run" / "results"
    if not os.environ.get("BABYLM_EWOK_PASSWORD"):  # score refuses ewok named without its password
        tasks = tuple(t for t in tasks if t != "ewok")
    flags = {"model": run_dir, "revision": ",".join(revisions), "backend": backend, "tasks": ",".join(tasks),
             "eval_set": eval_set, "eval_data": args.eval_data, "results": str(results), "overwrite": True,
             "progress": False, "limit": 1 if args.smoke else 0}
    run_score(config.build(ScoreConfig, {k: str(v) for k, v in flags.items()}, command="score"))
    out: dict = {}
    for revision in revisions:
        for task in tasks:
            task_folder, data_dir = DATA_DIRS[(task, eval_set)]
            path = submission.task_dir(results, loading.model_name(run_dir), revision, backend, task_folder, data_dir)
            if (path / "summary.json").is_file():  # absent: skipped (EWoK without its password)
                summary = json.loads((path / "summary.json").read_text())
                out.setdefault(revision, {})[LABELS[(task, eval_set)]] = round(100 * summary["accuracy"], 2)
    return out


def score_final(args, part: StagePart, run: dict, label: str, backends: tuple[str, ...]) -> float:
    """Score the final model with each backend; one row each. Returns the seconds it took."""
    start = time.perf_counter()
    for backend in backends:
        scores: dict = {}
        for eval_set, tasks in FINAL_TASKS.items():
            scores.update(score(args, run["run_dir"], backend, ["main"], eval_set, tasks).get("main", {}))
        row = {"kind": "final", "model": label, "backend": backend, "revision": "main", **run, "scores": scores}
        part.add(row, markdown(part.rows + [row], part.facts))
    return time.perf_counter() - start


def score_curve(args, part: StagePart, run: dict, label: str) -> None:
    """The milestones of :data:`CURVE` the run wrote, with mntp, on the fast BLiMP and supplement."""
    written = [r for r in CURVE if (Path(run["run_dir"]) / r).is_dir()]
    if not written:
        part.note(f"{label}: no milestone of {', '.join(CURVE)} was written")
        return
    by_rev = score(args, run["run_dir"], "mntp", written, "fast", CURVE_TASKS)
    for rev in written:
        progress = json.loads((Path(run["run_dir"]) / rev / "run_config.json").read_text())["progress"]
        row = {"kind": "milestone", "model": label, "backend": "mntp", "revision": rev,
               "words_seen": progress["words_seen"], "scores": by_rev.get(rev, {})}
        part.add(row, markdown(part.rows + [row], part.facts))


def markdown(rows: list[dict], facts: dict) -> str:
    cols = ["BLiMP", "supplement", "EWoK fast", "entity tracking fast"]
    body = [[r["model"], r["backend"], f"{r['words_seen']:,}", f"{r['words_seen'] / facts['train_words']:.1f}",
             r["seconds"], *[r["scores"].get(c) for c in cols]] for r in rows if r["kind"] == "final"]
    body += [[f"published: {m}", b, "100,000,000", "10", None, blimp, supp, ewok, et]
             for m, b, blimp, supp, ewok, et, _ in PUBLISHED]
    probe = facts.get("probe") or {}
    lines = [f"Training text: {facts.get('train_words', 0):,} words (validation: {facts.get('dev_words', 0):,}). "
             f"Tokenizer {facts.get('tokenizer_s')} s, packing {facts.get('pack_s')} s; probe run "
             f"{probe.get('words_seen', 0):,} words in {probe.get('seconds')} s at {probe.get('tokens_per_s', 0):,} "
             f"tokens/s steady; {facts.get('plan', '')}.", "",
             md_table(["model", "backend", "words seen", "epochs", "train s", *cols], body), "",
             "Kit rows: BLiMP and supplement are the full filtered sets (the submission's); EWoK and entity tracking "
             "the fast sets. Published rows are final models at 100M words seen (10 epochs of the 10M-word corpus): "
             "no published score of the baselines' intermediate checkpoints is known, so the curve below has no "
             "published counterpart at the same words seen. Sources: " + SOURCE_2025 + "; " + SOURCE_2026 + "."]
    curve = [r for r in rows if r["kind"] == "milestone"]
    if curve:
        lines += ["", "Milestones (fast sets, mntp):", "",
                  md_table(["model", "checkpoint", "words seen", "BLiMP fast", "supplement fast"],
                           [[r["model"], r["revision"], f"{r['words_seen']:,}", r["scores"].get("BLiMP fast"),
                             r["scores"].get("supplement fast")] for r in curve])]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    args.corpus = args.corpus or str(Path(args.work) / "data" / "corpus")
    args.eval_data = args.eval_data or str(Path(args.work) / "data" / "eval")
    import torch

    from babylm import config
    from babylm.corpus import load_corpus
    from babylm.tokenizer import TokenizerConfig, train_tokenizer

    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("stage 3: no CUDA device visible to torch (SMOKE=1 runs the CPU path)")
    part = StagePart(args.work, 3, "A real run: GPT-BERT (and GPT-2) at the strict-small shape on the carried text",
                     args.smoke)
    part.facts.update(train_words=load_corpus(args.corpus, files=["train"], allow_over_budget=True).train_words,
                      dev_words=load_corpus(args.corpus, files=["dev"], allow_over_budget=True).total_words)
    tok_flags = {"config": PRESET, "corpus": args.corpus, "files": "train", "overwrite": "true",
                 "out_dir": str(Path(args.work) / "real_run" / "tokenizer"), **({"vocab_size": "1000"} if args.smoke else {})}
    tokenizer = train_tokenizer(config.build(TokenizerConfig, tok_flags, command="tokenizer"))
    part.facts["tokenizer_s"] = round(time.perf_counter() - started, 1)
    probe_cfg = run_config(args, "gpt-bert", tokenizer, 5_000 if args.smoke else 1_000_000, "probe", milestones=False)
    part.facts["pack_s"] = round(pack(probe_cfg, 2 if args.smoke else 8), 1)
    part.facts["probe"] = probe = train(probe_cfg)
    seconds_left = args.budget_s - (time.perf_counter() - started) - args.score_reserve_s
    words, part.facts["predicted_s"], part.facts["plan"] = plan_words(args, probe, part.facts["train_words"],
                                                                        seconds_left)
    part.note(part.facts["plan"])
    hybrid = train(run_config(args, "gpt-bert", tokenizer, words, "gpt_bert", milestones=True))
    part.facts["trained"] = hybrid  # kept even if scoring runs out of time
    part.save()
    score_seconds = score_final(args, part, hybrid, "kit GPT-BERT 12x384" if not args.smoke else "kit GPT-BERT tiny",
                                ("mntp", "causal"))
    score_curve(args, part, hybrid, "kit GPT-BERT")
    left = args.budget_s - (time.perf_counter() - started)
    need = hybrid["seconds"] + score_seconds / 2  # same words, one backend
    if left < 1.1 * need:
        part.note(f"GPT-2 at the same size left out: about {need:.0f} s needed, {left:.0f} s left in the stage")
    else:
        causal = train(run_config(args, "gpt2", tokenizer, words, "gpt2", milestones=False))
        score_final(args, part, causal, "kit GPT-2 12x384" if not args.smoke else "kit GPT-2 tiny", ("causal",))
    part.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
