"""The challenge's vocabulary, spelled once: tracks and their word budgets, the milestone
checkpoints, the scoring backends, and whether a model is causal or masked.

Every other module imports these names; none spells a track, a milestone or a backend itself.

Sources: the BabyLM calls for papers (track budgets, 2023-2026); babylm-org/babylm-eval,
``strict/evaluation_pipeline/collate_preds.py`` (the checkpoint list and its order) and
``strict/evaluation_pipeline/sentence_zero_shot/run.py`` (``--backend`` values).
"""

from __future__ import annotations

import enum
import re
from typing import Any


class Track(enum.StrEnum):
    """The text-only tracks; the value is the spelling the CLI and the official files use."""

    STRICT_SMALL = "strict-small"
    STRICT = "strict"


TRACKS: tuple[str, ...] = tuple(Track)
# Words of training text a track allows (one pass over the official corpus).
WORD_BUDGET: dict[str, int] = {Track.STRICT_SMALL: 10_000_000, Track.STRICT: 100_000_000}


class Backend(enum.StrEnum):
    """Scoring backends of the official 2025/2026 zero-shot code that a text-only model can use.

    ``causal`` reads log p(token i | tokens < i) from a causal LM; ``mlm`` masks token i and reads
    it at position i (pseudo-log-likelihood, Salazar et al. 2020); ``mntp`` masks token i and reads
    it at position i - 1 (masked next-token prediction, as GPT-BERT is trained).
    """

    CAUSAL = "causal"
    MLM = "mlm"
    MNTP = "mntp"


BACKENDS: tuple[str, ...] = tuple(Backend)
MASKED_BACKENDS: tuple[str, ...] = (Backend.MLM, Backend.MNTP)


class Rules(enum.StrEnum):
    """Which year's evaluation rules the exporter follows (``--year``).

    ``2026`` is babylm-org/babylm-eval at 3d57ddc (2026-07-08), the revision the 2026 leaderboard
    scores against; ``2025`` is the same repository at 45fe2c1 (April 2026), whose ``strict/`` code is
    the 2025 pipeline. The two differ in the task set, some tasks' scoring and the collated file.
    """

    Y2025 = "2025"
    Y2026 = "2026"


RULES: tuple[str, ...] = tuple(Rules)
DEFAULT_RULES = Rules.Y2026

# ----------------------------------------------------------------------------- milestones

MILESTONE = re.compile(r"^chck_(\d+)M$")


def milestone_millions(track: str) -> list[int]:
    """Words seen (in millions) at each intermediate checkpoint of ``track``, in the official order.

    Every 1M words up to 10M, every 10M up to 100M and, on the strict track, every 100M up to
    1000M: 19 checkpoints for strict-small, 28 for strict (collate_preds.py's fixed list).
    """
    millions = list(range(1, 11)) + list(range(20, 101, 10))
    if Track(track) is Track.STRICT:
        millions += list(range(200, 1001, 100))
    return millions


def milestones(track: str) -> list[str]:
    """The official revision names ``chck_1M`` ... of ``track``, in the official order."""
    return [f"chck_{m}M" for m in milestone_millions(track)]


def milestone_words(track: str, unit: int = 1_000_000) -> list[tuple[str, int]]:
    """(name, words) of each milestone; ``unit`` is the words one "M" stands for (tests shrink it)."""
    return [(f"chck_{m}M", m * unit) for m in milestone_millions(track)]


def milestone_number(name: str) -> int | None:
    """``chck_20M`` -> 20; None for a name that is not a milestone."""
    m = MILESTONE.match(name)
    return int(m.group(1)) if m else None


def words_of_milestone(name: str) -> int | None:
    """Words seen at a milestone by its official name (``chck_20M`` -> 20,000,000)."""
    n = milestone_number(name)
    return None if n is None else n * 1_000_000


# ----------------------------------------------------------------------------- model kind

# Head classes whose name says which objective the model was built for.
_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
_MASKED_SUFFIXES = ("ForMaskedLM", "ForPreTraining")
# model_type values of encoders, for configs that name no architecture.
_ENCODER_TYPES = {"bert", "roberta", "deberta", "deberta-v2", "distilbert", "electra", "albert", "xlm-roberta",
                  "camembert", "modernbert", "ltg-bert", "ltgbert"}
_DECODER_TYPES = {"gpt2", "llama", "gpt_neox", "opt", "mistral", "qwen2", "gpt_neo", "gptj", "olmo", "phi"}


def model_kind(config: Any) -> str | None:
    """``causal`` or ``masked`` judged from a model config: a config object, the dict of a
    ``config.json``, or a model (its ``.config`` is read).

    The head classes in ``architectures`` decide first, then the kit's own flags (``causal`` of a
    custom-head config), then well-known ``model_type`` values. None when the config does not say.
    A hybrid model (both heads) is reported by its first architecture.
    """
    config = getattr(config, "config", config)
    get = config.get if isinstance(config, dict) else (lambda key, default=None: getattr(config, key, default))
    for arch in get("architectures") or []:
        if arch.endswith(_CAUSAL_SUFFIXES):
            return "causal"
        if arch.endswith(_MASKED_SUFFIXES):
            return "masked"
    flag = get("causal")
    if isinstance(flag, bool):
        return "causal" if flag else "masked"
    model_type = get("model_type", "")
    if model_type in _ENCODER_TYPES:
        return "masked"
    if get("is_decoder", False) or model_type in _DECODER_TYPES:
        return "causal"
    if isinstance(config, dict):
        return None
    # Last resort: which Auto head classes transformers registers for this config type.
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_FOR_MASKED_LM_MAPPING

    causal, masked = type(config) in MODEL_FOR_CAUSAL_LM_MAPPING, type(config) in MODEL_FOR_MASKED_LM_MAPPING
    if causal != masked:
        return "causal" if causal else "masked"
    return None


def default_backend(config: Any) -> str | None:
    """The backend to score a model with when none is asked for: causal or mlm by its kind, except
    the kit's own GPT-BERT, trained mostly by masked next-token prediction and so scored with mntp
    (``--backend causal`` scores it causally). Other mntp models must ask for it."""
    from babylm.gpt_bert import MODEL_TYPE as GPT_BERT_TYPE  # imported here: the module needs torch

    config = getattr(config, "config", config)
    model_type = config.get("model_type") if isinstance(config, dict) else getattr(config, "model_type", None)
    if model_type == GPT_BERT_TYPE:
        return Backend.MNTP
    kind = model_kind(config)
    return None if kind is None else (Backend.CAUSAL if kind == "causal" else Backend.MLM)
