"""Which pretraining recipe is better at equal words: the kit's GPT-2, BERT or GPT-BERT?

Trains each recipe at the same size (layers, hidden, heads), on the same words of the same real
corpus, with the same tokenizer, block size, batch, schedule shape and seeds, then scores every
final model and its milestone checkpoints (chck_1M ...) on the official fast zero-shot sets:
BLiMP-fast, the BLiMP supplement (fast), EWoK-fast (when ``BABYLM_EWOK_PASSWORD`` opens its
encrypted zip; otherwise skipped and said so), entity tracking (fast) and WUG adjectives. Each
model is scored with the backend the official pipeline would use: GPT-2 ``causal``, BERT ``mlm``,
GPT-BERT ``mntp`` (its default) and, for comparison, ``causal``.

Prints one table (recipe x task, words seen, CPU and wall minutes, mean and spread over the
seeds) and writes it as ``<out>.json`` and ``<out>.md``; the milestone scores are in both files.
Every training run and every scored revision is kept under ``--work``, so an interrupted bench
continues where it stopped.

    # CPU, three seeds (see docs/benchmarks.md for the recorded runs)
    OMP_NUM_THREADS=2 .venv/bin/python bench/recipe_bench.py --corpus <2024_samples/train_600k>,<2023 folder> \\
        --eval_data <evaluation_data> --size tiny --words 1_000_000 --seeds 1,2,3
    # learning-rate pilot: every recipe at every learning rate, one seed
    .venv/bin/python bench/recipe_bench.py ... --seeds 1 --lrs 1e-3,2e-3,4e-3
    # GPT-BERT and GPT-2 at the strict-small shape on a GPU: bench/device/run.sh (stage 3)

Not a test. Sizes (layers x hidden, heads): ``tiny`` 2 x 64 (2) and ``small`` 4 x 256 (4), the kit's
presets of those names, and ``strict-small`` 12 x 384 (6), the published GPT-BERT strict-small shape;
``--layers/--hidden/--heads`` override. GPT-2 and BERT take a 4 x hidden feed-forward, GPT-BERT its
GEGLU of 10/3 x hidden (parameter counts are in the table).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from babylm.challenge import milestone_number  # noqa: E402  (after the path line: runs from a checkout)

# (layers, hidden, heads) per --size, the same for every recipe: the kit's tiny and small presets
# (babylm.models.SIZES) and GPT-BERT's published strict-small shape (babylm.models.GPT_BERT_SIZES).
SHAPES = {"tiny": (2, 64, 2), "small": (4, 256, 4), "strict-small": (12, 384, 6)}
# The official fast zero-shot tasks (strict/scripts/eval_zero_shot_fast.sh of babylm-org/babylm-eval) minus
# reading, which has no accuracy to compare.
TASKS = ("blimp", "blimp_supplement", "ewok", "entity_tracking", "wug_adj")
LABELS = {"blimp": "BLiMP-fast", "blimp_supplement": "supplement", "ewok": "EWoK-fast",
          "entity_tracking": "entity tracking", "wug_adj": "WUG adj. (rho)"}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One recipe: the kit's architecture and objective, and the backends its models are scored with."""

    name: str
    arch: str
    backends: tuple[str, ...]  # the first is the one the official pipeline would use


RECIPES = {
    "gpt2": Recipe("gpt2", "gpt2", ("causal",)),
    "bert": Recipe("bert", "bert", ("mlm",)),
    "gpt-bert": Recipe("gpt-bert", "gpt-bert", ("mntp", "causal")),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True, help="comma list of corpus folders (any layout the kit reads); their "
                                                   "training files are pooled")
    p.add_argument("--files", default="train", help="which files of each corpus to pool (kit selectors)")
    p.add_argument("--eval_data", default=os.environ.get("BABYLM_EVAL_DATA", ""),
                   help="the official evaluation_data folder (default: $BABYLM_EVAL_DATA)")
    p.add_argument("--recipes", default="gpt2,bert,gpt-bert")
    p.add_argument("--size", default="tiny", choices=sorted(SHAPES))
    p.add_argument("--layers", type=int, default=0, help="override the size's layers")
    p.add_argument("--hidden", type=int, default=0, help="override the size's hidden width")
    p.add_argument("--heads", type=int, default=0, help="override the size's attention heads")
    p.add_argument("--words", type=lambda s: int(float(s.replace("_", ""))), default=1_000_000,
                   help="words seen per run (each recipe the same)")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--lr", default="", help="per-recipe peak learning rate, e.g. gpt2=2e-3,bert=2e-3,gpt-bert=2e-3 "
                                            "(default --default_lr)")
    p.add_argument("--default_lr", type=float, default=2e-3)
    p.add_argument("--lrs", default="", help="a learning-rate grid run for every recipe (the pilot); overrides --lr")
    p.add_argument("--vocab_size", type=int, default=8192)
    p.add_argument("--block_size", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=8, help="sequences per step: small batches give small models "
                                                                 "more steps at a small word budget")
    p.add_argument("--grad_accum", type=int, default=1)
    p.add_argument("--warmup_steps", type=int, default=100)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--causal_share", type=float, default=1 / 16, help="GPT-BERT's causal steps (default: published 1/16)")
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--milestone_tasks", default="", help="tasks for the milestone checkpoints (default: --tasks)")
    p.add_argument("--milestones", default="all", help="all, none, or a comma list such as chck_1M,chck_2M")
    p.add_argument("--limit", type=int, default=0, help="score only the first N items per subtask (smoke runs)")
    p.add_argument("--task_limits", default="", help="per-task item limits per subtask, e.g. entity_tracking=30 (its "
                                                     "long 5-option items dominate masked scoring on a CPU); the "
                                                     "table says which tasks were cut")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", help="training precision (auto: bf16 on capable GPUs)")
    p.add_argument("--compile", action="store_true", help="torch.compile model + loss (GPU)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--work", default="bench/results/recipe_work", help="tokenizer, corpus links, runs, cached scores")
    p.add_argument("--out", default="bench/results/recipe_bench", help="writes <out>.json and <out>.md")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- corpus and tokenizer


def pooled_corpus(folders: list[str], files: str, work: Path) -> Path:
    """One plain folder linking the selected training files of every corpus folder (names kept unique)."""
    from babylm.corpus import load_corpus

    out = work / "corpus"
    out.mkdir(parents=True, exist_ok=True)
    for i, folder in enumerate(folders):
        corpus = load_corpus(folder, files=files.split(","), allow_over_budget=True)
        for f in corpus.files:
            if f.split != "train":
                continue
            link = out / f"{i}_{f.name.replace('/', '_')}"
            if not link.exists():
                link.symlink_to(Path(f.path).resolve())
    return out


def make_tokenizer(corpus: Path, vocab_size: int, work: Path) -> Path:
    """One byte-level BPE for every recipe. The masked-style template (<s> ... </s>) gives BERT its cls/sep;
    packing ends every text unit with </s> anyway, so all three train on the same ids, and a causal scorer
    never reads the final </s>."""
    from babylm.tokenizer import TokenizerConfig, train_tokenizer

    out = work / f"tokenizer_{vocab_size}"
    if not (out / "tokenizer.json").is_file():
        train_tokenizer(TokenizerConfig(corpus=str(corpus), out_dir=str(out), vocab_size=vocab_size, target="masked"))
    return out


# ----------------------------------------------------------------------------- training


def shape_of(args) -> tuple[int, int, int]:
    layers, hidden, heads = SHAPES[args.size]
    return args.layers or layers, args.hidden or hidden, args.heads or heads


@dataclasses.dataclass
class RunSpec:
    recipe: Recipe
    seed: int
    lr: float

    def name(self, args) -> str:
        layers, hidden, _ = shape_of(args)
        return f"{self.recipe.name}_{layers}x{hidden}_{args.words / 1e6:g}M_lr{self.lr:g}_s{self.seed}"


def train_one(spec: RunSpec, args, corpus: Path, tokenizer: Path, work: Path) -> dict:
    """Train one run (skipped when its final model exists); returns words, parameters and times."""
    import torch

    from babylm.commands import run_training
    from babylm.models import count_parameters, load_model
    from babylm.run import TrainConfig

    run_dir = work / "runs" / spec.name(args)
    info_file = run_dir / "bench_train.json"
    layers, hidden, heads = shape_of(args)
    cfg = TrainConfig(corpus=str(corpus), tokenizer=str(tokenizer), arch=spec.recipe.arch, layers=layers,
                      hidden=hidden, heads=heads, block_size=args.block_size, batch_size=args.batch_size,
                      grad_accum=args.grad_accum, lr=spec.lr, warmup_steps=args.warmup_steps, dropout=args.dropout,
                      causal_share=args.causal_share, words=args.words, seed=spec.seed, val_fraction=0.0,
                      save_every=0, eval_every=0, log_every=10, device=args.device, precision=args.precision,
                      compile=args.compile, save_dir=str(work / "runs"), run_name=spec.name(args), overwrite=True,
                      progress=False, tensorboard=False)
    cfg.validate()
    if info_file.is_file() and (run_dir / "final").is_dir():
        done = json.loads(info_file.read_text())
        if done["config"] == json.loads(json.dumps(dataclasses.asdict(cfg))):
            return done  # trained before with the same settings
    cuda = torch.cuda.is_available() and args.device != "cpu"
    wall, cpu = time.perf_counter(), time.process_time()
    run_training(cfg)
    if cuda:
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    meta = json.loads((run_dir / "final" / "run_config.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    info = {"name": spec.name(args), "recipe": spec.recipe.name, "seed": spec.seed, "lr": spec.lr,
            "words_seen": meta["progress"]["words_seen"], "steps": meta["progress"]["step"],
            # mean of the last tenth of the logged training losses: the fit, comparable between learning
            # rates of one recipe (GPT-BERT's mixes its causal and MNTP steps)
            "final_train_loss": statistics.fmean(losses[-max(1, len(losses) // 10):]) if losses else None,
            "parameters": count_parameters(load_model(run_dir / "final")), "train_wall_s": wall, "train_cpu_s": cpu,
            "device": "cuda" if cuda else "cpu", "config": dataclasses.asdict(cfg)}
    info_file.write_text(json.dumps(info, indent=1))
    return info


# ----------------------------------------------------------------------------- scoring


class Scorer:
    """Scores revisions of runs on the loaded tasks; tokenised requests are shared between runs."""

    def __init__(self, args, eval_root: Path):
        from eval_export import tasks, zero_shot

        self.args, self.root = args, eval_root
        self.notes: list[str] = []
        self.data = {}
        self.limits = {k: int(v) for k, v in (kv.split("=") for kv in args.task_limits.split(",") if kv)}
        for name in dict.fromkeys(args.tasks.split(",") + (args.milestone_tasks.split(",") if args.milestone_tasks
                                                              else [])):
            why = tasks.ewok_unavailable("fast", eval_root, None) if name == "ewok" else None
            if why:
                self.notes.append(f"EWoK-fast skipped: {why}")
                continue
            limit = self.limits.get(name, args.limit)
            # the recipe's measurements were made by the 2025 rules (WUG adjective is not in the 2026 set)
            self.data[name] = tasks.load_task(name, "fast", eval_root, None, limit, year="2025")
            if limit:
                self.notes.append(f"{LABELS[name]}: the first {limit} items of each subtask "
                                  f"({len(self.data[name].items)} items), not the whole fast set")
        self.opts = zero_shot.ScoringOptions(year="2025", bos_rule="2025", token_budget=0)
        self.requests: dict[tuple[str, str], list] = {}

    def score(self, run_dir: Path, revision: str, backend: str, names: list[str]) -> dict:
        """{task: score} of one revision with one backend (cached in the run folder)."""
        import torch

        from eval_export import loading, zero_shot

        cache = run_dir / "bench_scores.json"
        done = json.loads(cache.read_text()) if cache.is_file() else {}
        key = f"{revision}/{backend}"  # then each task under its own item limit
        todo = [n for n in names if n in self.data and self._key(n) not in done.get(key, {})]
        if todo:
            device = "cuda" if torch.cuda.is_available() and self.args.device != "cpu" else "cpu"
            lm = loading.load_model(str(run_dir), revision, backend, device=device)
            budget = 2048 if device == "cpu" else 65536
            opts = dataclasses.replace(self.opts, token_budget=budget)
            for name in todo:
                data = self.data[name]
                if (backend, name) not in self.requests:
                    self.requests[(backend, name)] = zero_shot.prepare(lm.tokenizer, backend, data, opts)
                    zero_shot.check_lengths(lm.model, self.requests[(backend, name)].requests, data)
                wall, cpu = time.perf_counter(), time.process_time()
                with torch.inference_mode():
                    result = zero_shot.score_task(lm.model, lm.tokenizer, backend, data, opts,
                                                  self.requests[(backend, name)])
                summary = zero_shot.task_summary(result)
                value = summary["metrics"][name] if data.kind == "wug" else summary["accuracy"]
                done.setdefault(key, {})[self._key(name)] = {"score": value, "wall_s": time.perf_counter() - wall,
                                                             "cpu_s": time.process_time() - cpu,
                                                             "items": summary["n_items"]}
                cache.write_text(json.dumps(done, indent=1))
        return {n: done[key][self._key(n)] for n in names if self._key(n) in done.get(key, {})}

    def _key(self, name: str) -> str:
        """A task's cache key: its name, with the item limit when there is one."""
        limit = self.limits.get(name, self.args.limit)
        return f"{name}@{limit}" if limit else name


def step_of(model_dir: Path) -> int:
    return json.loads((model_dir / "run_config.json").read_text())["progress"]["step"]


def revisions_of(run_dir: Path, which: str) -> list[str]:
    """main, then the milestone checkpoints the run wrote (in words order) that --milestones asks for."""
    found = sorted((p.name for p in run_dir.glob("chck_*") if p.is_dir() and milestone_number(p.name) is not None),
                   key=milestone_number)
    if which == "none":
        found = []
    elif which != "all":
        found = [n for n in found if n in which.split(",")]
    return ["main", *found]


# ----------------------------------------------------------------------------- the table


def spread(values: list[float]) -> dict:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    return {"mean": statistics.fmean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
            "min": min(vals), "max": max(vals), "n": len(vals)}


def _fmt(s: dict, pct: bool) -> str:
    if not s["n"]:
        return "-"
    k = 100.0 if pct else 1.0
    text = f"{k * s['mean']:.2f}" if pct else f"{s['mean']:.3f}"
    if s["n"] > 1:
        text += f" ± {k * s['sd']:.2f} ({k * s['min']:.1f}–{k * s['max']:.1f})" if pct else \
            f" ± {s['sd']:.3f} ({s['min']:.2f}–{s['max']:.2f})"
    return text


def summarise(results: list[dict], tasks: list[str]) -> list[dict]:
    """One row per (recipe, learning rate, backend): every task's mean and spread over the seeds."""
    rows = {}
    for r in results:
        for backend, by_rev in r["scores"].items():
            key = (r["recipe"], r["lr"], backend)
            row = rows.setdefault(key, {"recipe": r["recipe"], "lr": r["lr"], "backend": backend, "runs": []})
            row["runs"].append({"seed": r["seed"], "main": by_rev.get("main", {}), "train": r["train"]})
    out = []
    for row in rows.values():
        runs = row["runs"]
        cells = {t: spread([x["main"][t]["score"] if t in x["main"] else None for x in runs]) for t in tasks}
        both = [(x["main"]["blimp"]["score"] + x["main"]["blimp_supplement"]["score"]) / 2
                for x in runs if "blimp" in x["main"] and "blimp_supplement" in x["main"]]
        cells["blimp+supplement"] = spread(both)
        out.append({**{k: row[k] for k in ("recipe", "lr", "backend")}, "seeds": [x["seed"] for x in runs],
                    "tasks": cells, "words_seen": spread([x["train"]["words_seen"] for x in runs]),
                    "parameters": runs[0]["train"]["parameters"],
                    "train_loss": spread([x["train"].get("final_train_loss") for x in runs]),
                    "train_cpu_min": spread([x["train"]["train_cpu_s"] / 60 for x in runs]),
                    "train_wall_min": spread([x["train"]["train_wall_s"] / 60 for x in runs]),
                    "score_cpu_min": spread([sum(v["cpu_s"] for v in x["main"].values()) / 60 for x in runs])})
    return out


def milestone_rows(results: list[dict], tasks: list[str]) -> list[dict]:
    """Mean over seeds of every task at every revision, per (recipe, learning rate, backend)."""
    acc: dict = {}
    for r in results:
        for backend, by_rev in r["scores"].items():
            for rev, scores in by_rev.items():
                for t, v in scores.items():
                    acc.setdefault((r["recipe"], r["lr"], backend, rev), {}).setdefault(t, []).append(v["score"])
    out = []
    for (recipe, lr, backend, rev), by_task in sorted(acc.items(), key=lambda kv: (kv[0][:3], _rev_key(kv[0][3]))):
        out.append({"recipe": recipe, "lr": lr, "backend": backend, "revision": rev,
                    **{t: statistics.fmean(by_task[t]) for t in tasks if t in by_task}})
    return out


def _rev_key(rev: str) -> int:
    return 10 ** 9 if rev == "main" else milestone_number(rev)


def markdown(summary: list[dict], milestones: list[dict], tasks: list[str], header: list[str]) -> str:
    cols = [LABELS[t] for t in tasks] + ["BLiMP+supp."]
    lines = header + ["", "| recipe | backend | lr | " + " | ".join(cols) +
                      " | train loss | words seen | params | train CPU min | train wall min | score CPU min |",
                      "|" + "---|" * (len(cols) + 9)]
    for row in summary:
        cells = [_fmt(row["tasks"][t], t != "wug_adj") for t in tasks] + [_fmt(row["tasks"]["blimp+supplement"], True)]
        loss = f"{row['train_loss']['mean']:.3f}" if row["train_loss"]["n"] else "-"
        lines.append(f"| {row['recipe']} | {row['backend']} | {row['lr']:g} | " + " | ".join(cells) +
                     f" | {loss} | {row['words_seen']['mean']:,.0f} | {row['parameters']:,} | {row['train_cpu_min']['mean']:.1f} |"
                     f" {row['train_wall_min']['mean']:.1f} | {row['score_cpu_min']['mean']:.1f} |")
    lines += ["", "Scores: mean ± sample sd (min–max) over the seeds, percent (WUG: Spearman rho). "
                  "BLiMP+supp.: mean of the two task scores per seed. Train loss: mean of the last tenth of "
                  "the logged training losses (comparable between learning rates of one recipe only). "
                  "Times: means per run.", "",
              "Milestones (mean over the seeds):", "",
              "| recipe | backend | lr | revision | " + " | ".join(LABELS[t] for t in tasks) + " |",
              "|" + "---|" * (len(tasks) + 4)]
    for m in milestones:
        cells = [(f"{m[t]:.3f}" if t == "wug_adj" else f"{100 * m[t]:.2f}") if t in m else "-" for t in tasks]
        lines.append(f"| {m['recipe']} | {m['backend']} | {m['lr']:g} | {m['revision']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def verdict(summary: list[dict]) -> str | None:
    """GPT-BERT (mntp) against GPT-2 on BLiMP-fast + supplement: the margin and the seeds' spreads."""
    def best(recipe, backend):
        rows = [r for r in summary if r["recipe"] == recipe and r["backend"] == backend
                and r["tasks"]["blimp+supplement"]["n"]]
        return max(rows, key=lambda r: r["tasks"]["blimp+supplement"]["mean"]) if rows else None

    hybrid, gpt2 = best("gpt-bert", "mntp"), best("gpt2", "causal")
    if not hybrid or not gpt2:
        return None
    h, g = hybrid["tasks"]["blimp+supplement"], gpt2["tasks"]["blimp+supplement"]
    margin = h["mean"] - g["mean"]
    width = max(h["max"] - h["min"], g["max"] - g["min"])
    beats = margin > width if min(h["n"], g["n"]) > 1 else None
    return (f"BLiMP+supp.: gpt-bert (mntp) {100 * h['mean']:.2f} vs gpt2 (causal) {100 * g['mean']:.2f}: margin "
            f"{100 * margin:+.2f} points; widest seed range {100 * width:.2f} points over {min(h['n'], g['n'])} seeds -> "
            + {True: "the hybrid wins by more than the spread", False: "not more than the spread",
               None: "one seed: no spread to compare"}[beats])


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    from babylm.models import register_kit_models

    register_kit_models()
    hf_logging.disable_progress_bar()  # one line per scored revision is enough
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    eval_root = Path(args.eval_data)
    if not eval_root.is_dir():
        print(f"error: --eval_data {eval_root!s} is not a folder (or set BABYLM_EVAL_DATA)", file=sys.stderr)
        return 2
    recipes = [RECIPES[r] for r in args.recipes.split(",")]
    lr_of = {k: float(v) for k, v in (kv.split("=") for kv in args.lr.split(",") if kv)}
    grid = [float(x) for x in args.lrs.split(",") if x]
    specs = [RunSpec(rec, int(seed), lr) for seed in args.seeds.split(",") for rec in recipes
             for lr in (grid or [lr_of.get(rec.name, args.default_lr)])]
    tasks = [t for t in args.tasks.split(",") if t]
    milestone_tasks = [t for t in (args.milestone_tasks or args.tasks).split(",") if t]

    corpus = pooled_corpus(args.corpus.split(","), args.files, work)
    tokenizer = make_tokenizer(corpus, args.vocab_size, work)
    scorer = Scorer(args, eval_root)
    for note in scorer.notes:
        print(note, flush=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    results = []
    for spec in specs:
        print(f"== {spec.name(args)}: training on {args.words:,} words", flush=True)
        train = train_one(spec, args, corpus, tokenizer, work)
        print(f"   {train['words_seen']:,} words, {train['steps']} steps, {train['train_cpu_s'] / 60:.1f} CPU min, "
              f"{train['train_wall_s'] / 60:.1f} wall min", flush=True)
        run_dir = work / "runs" / spec.name(args)
        scores: dict = {}
        for rev in revisions_of(run_dir, args.milestones):
            for backend in spec.recipe.backends:
                names = tasks if rev == "main" else milestone_tasks
                if rev != "main" and step_of(run_dir / rev) == step_of(run_dir / "final"):
                    # written at the last step: the final model's weights, its scores
                    got = {t: v for t, v in scores[backend]["main"].items() if t in names}
                else:
                    got = scorer.score(run_dir, rev, backend, names)
                scores.setdefault(backend, {})[rev] = got
                shown = ", ".join(f"{LABELS[t]} {v['score']:.3f}" for t, v in got.items())
                print(f"   {rev:>9} {backend:>6}: {shown}", flush=True)
        results.append({"name": spec.name(args), "recipe": spec.recipe.name, "seed": spec.seed, "lr": spec.lr,
                        "train": train, "scores": scores})

        write_outputs(args, results, tasks, milestone_tasks, scorer.notes, started, cpu_started,
                      final=spec is specs[-1])
    return 0


def write_outputs(args, results: list[dict], tasks: list[str], milestone_tasks: list[str], notes: list[str],
                  started: float, cpu_started: float, final: bool) -> None:
    """Write <out>.md and <out>.json (after every run, so an interrupted bench leaves its table); print at the end."""
    import torch

    summary = summarise(results, tasks)
    milestones = milestone_rows(results, milestone_tasks)
    layers, hidden, heads = shape_of(args)
    header = [f"Recipes at equal words: size {args.size} ({layers} layers x {hidden} hidden, {heads} heads), "
              f"{args.words:,} words per run, block {args.block_size}, batch {args.batch_size} x {args.grad_accum}, "
              f"warm-up {args.warmup_steps} steps then cosine to 10%, dropout {args.dropout}, BPE {args.vocab_size}, "
              f"seeds {args.seeds}; device {results[0]['train']['device'] if results else '-'}; "
              f"torch threads {torch.get_num_threads()}.", "", *notes]
    text = markdown(summary, milestones, tasks, header)
    decided = verdict(summary)
    if decided:
        text += "\n" + decided + "\n"
    text += (f"\n{'Whole bench' if final else 'So far'}: {(time.perf_counter() - started) / 60:.1f} wall min, "
             f"{(time.process_time() - cpu_started) / 60:.1f} CPU min of this process (runs already done are not "
             "counted again).\n")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"args": vars(args), "notes": notes, "summary": summary,
                                                    "milestones": milestones, "runs": results, "verdict": decided,
                                                    "complete": final}, indent=1))
    if final:
        print()
        print(text)
        print(f"written: {out.with_suffix('.md')} {out.with_suffix('.json')}")


if __name__ == "__main__":
    sys.exit(main())
