"""Stock Hugging Face model builders: causal GPT-2 / Llama, masked BERT / RoBERTa / DeBERTa-v2.

A model is built from a size preset (or explicit sizes) and the tokenizer: the vocabulary size
and the special-token ids come from the tokenizer, so the saved ``config.json`` agrees with the
saved tokenizer. Everything here is a plain ``transformers`` class, so the official evaluation
pipeline loads it with ``AutoModelForCausalLM`` / ``AutoModelForMaskedLM`` and no custom code.
The exceptions ship their own code in the checkpoint (``auto_map``) and need ``trust_remote_code``
outside the kit: ``custom_head=True`` wraps any body in :mod:`babylm.custom_model`, and ``gpt-bert``
is the causal/masked hybrid of :mod:`babylm.gpt_bert` (one model, scored causally or with masked
next-token prediction).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from babylm.challenge import model_kind
from babylm.errors import InputError, UsageError
from babylm.files import read_json
from babylm.integrity import check_local_model, from_pretrained

# Architecture name -> objective family. The names are the transformers ``model_type``s.
ARCHS: dict[str, str] = {"gpt2": "causal", "llama": "causal", "bert": "masked", "roberta": "masked", "deberta-v2": "masked"}
# The kit's own hybrid (babylm/gpt_bert.py), trained with the causal and the MNTP objective.
GPT_BERT = "gpt-bert"

# Size presets: (layers, hidden, heads, intermediate). "small" is the seed's small GPT
# (4 layers, 256 hidden, 4 heads); "base" is GPT-2 124M / BERT-base / RoBERTa-base.
SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 64, 2, 256),
    "small": (4, 256, 4, 1024),
    "medium": (8, 512, 8, 2048),
    "base": (12, 768, 12, 3072),
}

# GPT-BERT presets: "small" and "base" are the published strict-small and strict models
# (ltgoslo/gpt-bert configs/small.json, configs/base.json); the feed-forward width is the
# width after the GEGLU gate, 10/3 of the hidden size in both.
GPT_BERT_SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 64, 2, 192),
    "small": (12, 384, 6, 1280),
    "base": (12, 768, 12, 2560),
}

# Architectures whose transformers implementation has a PyTorch SDPA attention path.
_SDPA = {"gpt2", "llama", "bert", "roberta"}


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """Resolved model sizes (a preset with any explicit overrides applied)."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    positions: int
    dropout: float = 0.0


def resolve_shape(size: str = "tiny", layers: int | None = None, hidden: int | None = None, heads: int | None = None,
                  intermediate: int | None = None, positions: int = 512, dropout: float = 0.0,
                  arch: str | None = None) -> ModelShape:
    """Apply explicit sizes over a preset and check they fit together.

    ``arch`` picks the preset table: :data:`GPT_BERT_SIZES` for ``gpt-bert``, else :data:`SIZES`.
    """
    presets = GPT_BERT_SIZES if arch == GPT_BERT else SIZES
    if size not in presets:
        raise UsageError(f"--size: {size!r} is not one of {', '.join(presets)}" + (f" for {arch}" if arch else ""))
    p_layers, p_hidden, p_heads, p_inter = presets[size]
    hidden = hidden or p_hidden
    wide = hidden * 10 // 3 if arch == GPT_BERT else 4 * hidden  # the preset's width ratio for other hidden sizes
    shape = ModelShape(layers or p_layers, hidden, heads or p_heads, intermediate or (p_inter if hidden == p_hidden else wide),
                       positions, dropout)
    if shape.hidden % shape.heads:
        raise UsageError(f"--hidden {shape.hidden} is not divisible by --heads {shape.heads}")
    return shape


def objective_of(arch: str) -> str:
    """``clm`` for causal architectures, ``mlm`` for masked ones, ``hybrid`` for gpt-bert."""
    if arch == GPT_BERT:
        return "hybrid"
    if arch not in ARCHS:
        raise UsageError(f"--arch: unknown architecture {arch!r}; choose one of {', '.join([*ARCHS, GPT_BERT])}")
    return "clm" if ARCHS[arch] == "causal" else "mlm"


def objective_of_model(model) -> str:
    """The objective a built or loaded model trains with: ``hybrid`` for gpt-bert, ``clm`` for causal
    models, ``mlm`` for the others (as :func:`objective_of` says for an architecture name)."""
    from babylm.gpt_bert import MODEL_TYPE as GPT_BERT_TYPE  # imports torch: kept off the --help path

    if model.config.model_type == GPT_BERT_TYPE:
        return "hybrid"
    return "clm" if model_kind(model) == "causal" else "mlm"


def special_ids(tokenizer) -> dict[str, int | None]:
    """The tokenizer's special-token ids under the names the model configs use."""
    def tid(name):
        return getattr(tokenizer, f"{name}_token_id", None)

    bos, eos, pad = tid("bos"), tid("eos"), tid("pad")
    return {"bos_token_id": bos if bos is not None else tid("cls"),
            "eos_token_id": eos if eos is not None else tid("sep"),
            "pad_token_id": pad if pad is not None else (eos if eos is not None else 0)}


def build_config(arch: str, shape: ModelShape, vocab_size: int, ids: dict[str, int | None]):
    """A transformers config for ``arch`` with the given sizes and special-token ids."""
    import transformers as tf

    objective_of(arch)  # validates the name
    common = dict(vocab_size=vocab_size, **{k: v for k, v in ids.items() if v is not None})
    if arch == GPT_BERT:
        from babylm import gpt_bert  # torch and transformers: imported once a model is built

        # Relative positions only: max_position_embeddings sets where the log-spaced distance
        # buckets end, not a length limit. At least the published 512, so the kit's fine-tuning
        # (which caps inputs there) keeps the official 512-token inputs whole.
        return gpt_bert.GPTBertConfig(num_hidden_layers=shape.layers, hidden_size=shape.hidden,
                                      num_attention_heads=shape.heads, intermediate_size=shape.intermediate,
                                      max_position_embeddings=max(shape.positions, 512),
                                      hidden_dropout_prob=shape.dropout, attention_probs_dropout_prob=shape.dropout,
                                      **common)
    if arch == "gpt2":
        return tf.GPT2Config(n_layer=shape.layers, n_embd=shape.hidden, n_head=shape.heads, n_inner=shape.intermediate,
                             n_positions=shape.positions, resid_pdrop=shape.dropout, embd_pdrop=shape.dropout,
                             attn_pdrop=shape.dropout,
                             # GPT-2's tanh GELU as one fused kernel: the same function as the default
                             # "gelu_new" (written in Python ops: ~20% of a CPU step), readable by
                             # every transformers version the official pipeline uses.
                             activation_function="gelu_pytorch_tanh", **common)
    if arch == "llama":
        return tf.LlamaConfig(num_hidden_layers=shape.layers, hidden_size=shape.hidden, num_attention_heads=shape.heads,
                              num_key_value_heads=shape.heads, intermediate_size=shape.intermediate,
                              max_position_embeddings=shape.positions, attention_dropout=shape.dropout,
                              tie_word_embeddings=True, **common)
    enc = dict(num_hidden_layers=shape.layers, hidden_size=shape.hidden, num_attention_heads=shape.heads,
               intermediate_size=shape.intermediate, hidden_dropout_prob=shape.dropout,
               attention_probs_dropout_prob=shape.dropout, **common)
    if arch == "bert":
        return tf.BertConfig(max_position_embeddings=shape.positions, type_vocab_size=2, **enc)
    if arch == "roberta":
        # RoBERTa numbers positions from pad_token_id + 1, so it needs that many extra slots.
        return tf.RobertaConfig(max_position_embeddings=shape.positions + (ids.get("pad_token_id") or 0) + 1,
                                type_vocab_size=1, **enc)
    return tf.DebertaV2Config(max_position_embeddings=shape.positions, type_vocab_size=0, relative_attention=True,
                              position_buckets=256, pos_att_type=["p2c", "c2p"], position_biased_input=False, **enc)


def usable_positions(config) -> int:
    """How many tokens one sequence may hold for this config (RoBERTa loses pad_id + 1 slots)."""
    body = getattr(config, "body_config", None)
    if body is not None:  # our custom wrapper: ask the body
        import transformers as tf

        return usable_positions(tf.AutoConfig.for_model(**body))
    n = getattr(config, "n_positions", None) or config.max_position_embeddings
    if config.model_type == "roberta":
        n -= (config.pad_token_id or 0) + 1
    return n


def build_model(arch: str, shape: ModelShape, tokenizer, custom_head: bool = False, seed: int = 0):
    """Build a freshly initialised model for ``arch`` sized by ``shape`` around ``tokenizer``.

    Args:
        arch: one of :data:`ARCHS`.
        shape: resolved sizes (:func:`resolve_shape`).
        tokenizer: the run's tokenizer; its length is the vocabulary size.
        custom_head: wrap the architecture's body in :class:`babylm.custom_model` with our LM head.
        seed: torch seed for the initial weights.

    Returns:
        A ``PreTrainedModel`` (``*ForCausalLM`` or ``*ForMaskedLM``) in float32. For ``gpt-bert`` the
        masked LM (bidirectional attention; the same weights load as ``GPTBertForCausalLM``).
    """
    import torch
    import transformers as tf

    config = build_config(arch, shape, len(tokenizer), special_ids(tokenizer))
    torch.manual_seed(seed)
    if arch == GPT_BERT:
        if custom_head:
            raise UsageError("--custom_head: gpt-bert already has its own head")
        register_kit_models()
        from babylm import gpt_bert  # torch and transformers: imported once a model is built

        return gpt_bert.GPTBertForMaskedLM(config)
    if custom_head:
        from babylm import custom_model  # torch and transformers: imported once a model is built

        return custom_model.build(config, causal=ARCHS[arch] == "causal")
    auto = tf.AutoModelForCausalLM if ARCHS[arch] == "causal" else tf.AutoModelForMaskedLM
    kwargs: dict[str, Any] = {"attn_implementation": "sdpa"} if arch in _SDPA else {}
    return auto.from_config(config, **kwargs)


def register_kit_models() -> None:
    """Make the kit's own architectures (gpt-bert) loadable by the Auto classes in this process.

    Their checkpoints carry the code for other processes (``auto_map``); inside the kit the
    classes come from the installed package, so ``trust_remote_code`` stays off.
    """
    from babylm import gpt_bert  # torch and transformers: imported once a model is loaded

    gpt_bert.register()


def count_parameters(model) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def check_fits(model, tokenizer, block_size: int) -> None:
    """Refuse a tokenizer/model vocabulary mismatch or a block longer than the model's positions."""
    vocab = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > vocab:
        raise InputError(f"tokenizer has {len(tokenizer)} tokens but the model's vocabulary holds {vocab}; "
                         "use the tokenizer the model was built with or build a new model")
    limit = usable_positions(model.config)
    if block_size > limit:
        raise UsageError(f"--block_size {block_size} is over the model's {limit} positions; lower it or raise --positions")


def load_model(path: str | Path, trust_remote_code: bool = False):
    """Load a saved model folder as CausalLM or MaskedLM, whichever its config declares.

    The kit's own custom-head wrapper is loaded through the kit's classes (registered in-process),
    so it needs no remote code; anything else goes through the Auto classes.
    """
    import transformers as tf

    path = Path(path)
    if not (path / "config.json").is_file():
        raise InputError(f"{path} is not a model folder (no config.json)")
    check_local_model(path)  # the policy of every loader: verified files, safetensors weights
    config = read_json(path / "config.json")
    if config.get("model_type") == "babylm-head":
        from babylm import custom_model  # torch and transformers: imported once a model is loaded

        custom_model.register()
        cls = custom_model.BabyLMForCausalLM if config.get("causal", True) else custom_model.BabyLMForMaskedLM
        return from_pretrained(cls, str(path))
    register_kit_models()  # the kit's own architectures (gpt-bert) load without remote code
    kind = model_kind(config)
    auto = tf.AutoModelForMaskedLM if kind == "masked" else tf.AutoModelForCausalLM
    return from_pretrained(auto, str(path), trust_remote_code=trust_remote_code)
