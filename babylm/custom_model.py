"""The seed design's model: any Hugging Face body plus our own language-modelling head.

``save_pretrained`` copies this file next to the weights and writes ``auto_map`` into
``config.json``, so a fresh process loads the model with
``AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)`` (or ``AutoModelForMaskedLM``).
This module therefore imports nothing but torch and transformers: it must work on its own in
the folder it is copied to.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

try:  # transformers 5 name; 4.x only has PretrainedConfig
    from transformers import PreTrainedConfig
except ImportError:  # pragma: no cover - exercised under transformers 4.x
    from transformers import PretrainedConfig as PreTrainedConfig

try:
    from transformers import GenerationMixin
except ImportError:  # pragma: no cover
    GenerationMixin = object

from transformers.modeling_outputs import CausalLMOutput, MaskedLMOutput


class BabyLMHeadConfig(PreTrainedConfig):
    """Config of the wrapper: the body's own config as a dict, plus the head's settings."""

    model_type = "babylm-head"

    def __init__(self, body_config: dict | None = None, causal: bool = True, **kwargs):
        self.body_config = dict(body_config or {"model_type": "gpt2"})
        self.causal = causal
        body = self.body()
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"):
            kwargs.setdefault(name, getattr(body, name, None))
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            kwargs.setdefault(name, getattr(body, name, None))
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(**kwargs)

    def body(self):
        """The body's transformers config object."""
        return AutoConfig.for_model(**self.body_config)


class _LMHead(nn.Module):
    """Dense -> GELU -> LayerNorm -> vocabulary projection (untied from the input embeddings)."""

    def __init__(self, hidden: int, vocab: int):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(hidden)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(self.act(self.dense(h))))  # (B, T, H) -> (B, T, V)


class _BabyLMBase(PreTrainedModel):
    config_class = BabyLMHeadConfig
    base_model_prefix = "body"
    supports_gradient_checkpointing = False
    _supports_sdpa = True

    def __init__(self, config: BabyLMHeadConfig):
        super().__init__(config)
        body_cfg = config.body()
        impl = getattr(config, "_attn_implementation", None)
        kwargs = {"attn_implementation": impl} if impl in ("sdpa", "eager") else {}
        try:
            self.body = AutoModel.from_config(body_cfg, **kwargs)
        except (ValueError, ImportError):  # a body without that attention implementation
            body_cfg = config.body()  # the failed attempt may have marked the config
            self.body = AutoModel.from_config(body_cfg)
        self.head = _LMHead(body_cfg.hidden_size, body_cfg.vocab_size)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def get_input_embeddings(self):
        return self.body.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.body.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.head.decoder

    def _logits(self, input_ids, attention_mask=None, **kwargs) -> torch.Tensor:
        kwargs = {k: v for k, v in kwargs.items() if k in ("token_type_ids", "position_ids")}
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state  # (B, T, H)
        return self.head(hidden)  # (B, T, V)


class BabyLMForCausalLM(_BabyLMBase, GenerationMixin):
    """A causal body (GPT-2, Llama ...) with our head; labels are shifted inside, as in transformers."""

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        logits = self._logits(input_ids, attention_mask, **kwargs)  # (B, T, V)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(),
                                               labels[:, 1:].reshape(-1), ignore_index=-100)
        return CausalLMOutput(loss=loss, logits=logits)


class BabyLMForMaskedLM(_BabyLMBase):
    """A bidirectional body (BERT, RoBERTa, DeBERTa-v2) with our head."""

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        logits = self._logits(input_ids, attention_mask, **kwargs)  # (B, T, V)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1),
                                               ignore_index=-100)
        return MaskedLMOutput(loss=loss, logits=logits)


def register() -> None:
    """Register the classes with the Auto classes (in-process) and for ``auto_map`` on save."""
    try:
        AutoConfig.register(BabyLMHeadConfig.model_type, BabyLMHeadConfig)
    except ValueError:  # already registered
        pass
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    for auto, cls in ((AutoModelForCausalLM, BabyLMForCausalLM), (AutoModelForMaskedLM, BabyLMForMaskedLM)):
        try:
            auto.register(BabyLMHeadConfig, cls)
        except ValueError:
            pass
    BabyLMHeadConfig.register_for_auto_class()
    BabyLMForCausalLM.register_for_auto_class("AutoModelForCausalLM")
    BabyLMForMaskedLM.register_for_auto_class("AutoModelForMaskedLM")


def build(body_config, causal: bool) -> _BabyLMBase:
    """Wrap a freshly initialised ``body_config`` body with our head."""
    register()
    config = BabyLMHeadConfig(body_config=body_config.to_dict(), causal=causal)
    cls = BabyLMForCausalLM if causal else BabyLMForMaskedLM
    return cls(config)
