"""The model card (``README.md``) of a published revision, and the checks the 2026 leaderboard makes of it.

The leaderboard (the Hugging Face Space BabyLM-community/BabyLM-Leaderboard-2026,
``src/submission/check_validity.py``) refuses a model whose card is missing, names no licence
(``license`` metadata, or both ``license_name`` and ``license_link``) or holds fewer than 200
characters of text besides its metadata (``check_model_card``), and one whose config or tokenizer the
Auto classes cannot load without ``trust_remote_code`` (``is_model_on_hub``: "For safety reason, we do not
allow these models to be automatically submitted to the leaderboard"). :func:`write_card` writes a card
that passes; :func:`card_problem` and :func:`loading_problem` apply those checks to a local folder.

The card says what a reader of the hub page needs: the recipe (architecture, size, objective,
optimisation, track), the words seen by this revision, the milestones of the run, and the scores found
in the run's results tree (``<run>/results/<model>/<revision>/summary.json``, written by
``python -m eval_export score``), if any.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from babylm.challenge import MILESTONE, WORD_BUDGET

DEFAULT_LICENSE = "apache-2.0"  # the kit's own licence; --license changes it
MIN_TEXT = 200  # characters of card text besides the metadata (check_validity.py, check_model_card)

# Training options shown under "Recipe", in this order, when the run's config has them.
_RECIPE = ("arch", "size", "layers", "hidden", "heads", "intermediate", "positions", "objective", "causal_share",
           "mlm_probability", "block_size", "batch_size", "grad_accum", "lr", "min_lr_ratio", "schedule",
           "warmup_steps", "weight_decay", "epochs", "words", "precision", "engine", "seed")


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _scores(summary: dict[str, Any]) -> list[str]:
    """Markdown rows ``| task | data | score |`` of a revision's ``summary.json``."""
    rows = []
    for task in summary.get("tasks", []):
        acc = task.get("accuracy")
        if isinstance(acc, (int, float)):
            shown = f"{100 * acc:.2f}% accuracy"
        else:
            metrics = task.get("metrics") or {}
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float)))
        if shown:
            rows.append(f"| {task.get('task', '?')} | {task.get('data_dir') or '-'} | {shown} |")
    return rows


def card_text(branch: str, folder: Path, run_name: str, milestones: list[tuple[str, Path]],
              results: Path | None = None, license: str = DEFAULT_LICENSE) -> str:
    """The README.md of revision ``branch`` (the model in ``folder``) of run ``run_name``.

    ``milestones`` are the run's (branch, folder) pairs in publishing order; ``results`` the model's
    folder of a results tree (scores are shown when ``<results>/<branch>/summary.json`` exists)."""
    meta = _read(folder / "run_config.json")
    cfg = meta.get("config") or {}
    progress = meta.get("progress") or {}
    track = cfg.get("track", "")
    arch = cfg.get("arch") or (_read(folder / "config.json").get("model_type") or "transformer")
    words = progress.get("words_seen")
    budget = WORD_BUDGET.get(track)
    front = ["---", f"license: {license}", "library_name: transformers", "language:", "- en", "tags:", "- babylm",
             "- babylm-2026"] + ([f"- {track}"] if track else []) + ["---", ""]
    lines = [f"# {run_name}: {branch}", "",
             f"A {arch} language model trained from scratch for the BabyLM Challenge"
             + (f" ({track} track, a budget of {budget:,} words of training text)" if budget else "")
             + ", with the BabyLM kit. " + ("This is the final model." if branch == "main" else
                                            f"This is the intermediate checkpoint `{branch}` of the run; the final "
                                            "model is on the `main` branch.")
             + " Every milestone of the run is a branch of this repository, named as the official evaluation "
               "pipeline loads them (`chck_1M`, `chck_2M`, ...).", ""]
    if words is not None:
        lines += [f"Words seen: {words:,}" + (f" at step {progress['step']:,}" if "step" in progress else "") + ".", ""]
    recipe = [f"| {k} | {cfg[k]} |" for k in _RECIPE if cfg.get(k) not in (None, "", [])]
    if recipe:
        lines += ["## Recipe", "", "| option | value |", "|---|---|", *recipe, ""]
    steps = [(b, _read(f / "run_config.json").get("progress", {}).get("words_seen")) for b, f in milestones
             if MILESTONE.match(b)]
    if steps:
        lines += ["## Milestones", "", "| revision | words seen |", "|---|---|",
                  *(f"| {b} | {w:,} |" if isinstance(w, int) else f"| {b} | - |" for b, w in steps), ""]
    summary = _read(results / branch / "summary.json") if results else {}
    rows = _scores(summary)
    if rows:
        lines += ["## Scores", "", f"Zero-shot scores of this revision ({summary.get('backend', '')} backend), "
                  "from `python -m eval_export score`:", "", "| task | data | score |", "|---|---|---|", *rows, ""]
    lines += ["## Use", "", "```python", "from transformers import AutoModel, AutoTokenizer", "",
              f'model = AutoModel.from_pretrained("<repo>", revision="{branch}")',
              f'tokenizer = AutoTokenizer.from_pretrained("<repo>", revision="{branch}")', "```", ""]
    return "\n".join(front + lines)


def card_problem(folder: Path) -> str | None:
    """Why the leaderboard would refuse the model card of ``folder`` (None: it passes), by its own rules
    and with huggingface_hub's own card parser (``ModelCard``), as check_validity.py reads it."""
    from huggingface_hub import ModelCard

    path = Path(folder) / "README.md"
    if not path.is_file():
        return f"{path}: no model card; the leaderboard asks for one (publish writes it)"
    try:
        card = ModelCard.load(path)
    except Exception as exc:  # the YAML header does not parse
        return f"{path}: the card's metadata does not parse ({' '.join(str(exc).split())[:200]})"
    # The Space writes ``"license_name" in card.data``, which is true of every card: ModelCardData always holds
    # the attribute (None when unset; huggingface_hub 0.31.0 and 2.4.0 alike), so as written it refuses no card.
    # Its intent, a licence named in the metadata, is what is checked here.
    named = card.data.to_dict()  # the keys that are set
    if card.data.license is None and not ("license_name" in named and "license_link" in named):
        return (f"{path}: no licence in the card's metadata; add `license: <id>` (or license_name and license_link) "
                "to its YAML header")
    if len(card.text) < MIN_TEXT:
        return (f"{path}: the card's text is {len(card.text)} characters; the leaderboard asks for at least {MIN_TEXT} "
                "(describe how the model was trained)")
    return None


def loading_problem(folder: Path) -> str | None:
    """Why the leaderboard's hub check would refuse ``folder`` (None: config and tokenizer load with the Auto
    classes and without remote code, as ``is_model_on_hub`` loads them)."""
    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    folder = Path(folder)
    config = _read(folder / "config.json")
    if not config:
        return f"{folder}: no readable config.json"
    # judged from the file and transformers' own table: this process may have registered the kit's classes
    if config.get("model_type") not in CONFIG_MAPPING_NAMES:
        return (f"{folder}: model_type {config.get('model_type')!r} needs code shipped with the checkpoint "
                "(trust_remote_code); the leaderboard does not take such models automatically ('For safety reason, "
                "we do not allow these models to be automatically submitted'): ask the organisers to add it")
    try:
        AutoConfig.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        return f"{folder}: AutoConfig cannot load it ({' '.join(str(exc).split())[:200]})"
    try:
        AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except Exception as exc:  # the leaderboard refuses on any failure here
        return (f"{folder}: AutoTokenizer cannot load its tokenizer ({' '.join(str(exc).split())[:200]}); the "
                "leaderboard refuses a tokenizer it cannot load")
    return None
