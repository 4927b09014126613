"""GPT-BERT: one transformer trained as a causal LM and as a masked next-token predictor.

The hybrid of Charpentier & Samuel, "GPT or BERT: why not both?" (CoNLL-BabyLM 2024,
arXiv 2410.24159): the same weights run with causal attention (predict token t+1 from tokens
<= t) or with bidirectional attention over an input where some tokens are masked (masked
next-token prediction, MNTP). In both modes the output at position t predicts token t+1, so
one head serves both and the official ``mntp`` scorer reads the prediction for a masked token
i at position i-1.

The same checkpoint therefore loads three ways, and the class decides the attention:

* ``AutoModelForCausalLM`` -> :class:`GPTBertForCausalLM`: causal attention (the ``causal`` backend);
* ``AutoModelForMaskedLM`` -> :class:`GPTBertForMaskedLM`: bidirectional attention (``mntp``);
* ``AutoModel`` -> :class:`GPTBertModel`: bidirectional hidden states for fine-tuning (the official
  2025 fine-tuning code puts its own head on ``AutoModel``); a (B, T, T) attention mask, as the
  official ``--causal`` fine-tuning passes, makes it causal.

No stock transformers class can do this (a config fixes one attention kind per class), so this
file travels inside every checkpoint (``auto_map``) and loads with ``trust_remote_code=True``
under transformers 4.51 (the official pipeline's pin) and 5.x. It imports nothing but torch and
transformers for that reason. The kit itself registers the classes in-process
(:func:`register`) and never needs remote code.

Architecture: what is taken from the published model (ltgoslo/gpt-bert, ``pretraining/model_extra.py``
and ``configs/{small,base}.json``) and why:

* LTG-BERT blocks: pre-norm residual branches with extra, affine-free layer norms (on the
  attention context before its output projection and inside the feed-forward block, NormFormer
  style). They keep activations bounded at the high learning rates the recipe uses; they cost
  no parameters.
* GEGLU feed-forward (``intermediate_size`` is the width after gating: 1280 for 384 hidden).
* Disentangled relative-position attention (content-to-position and position-to-content terms)
  with 32 log-spaced distance buckets shared by all layers, no absolute positions: the model
  has no position table to outgrow, and LTG-BERT's ablations favour it over absolute positions.
  Computed against the (2 x buckets - 1) relative embeddings and gathered, so the extra work is
  O(T x buckets) per head, not O(T^2 x head size).
* A GELU gate on the attention output (value and gate come from one projection).
* Layer weighting (ELC-BERT / DenseFormer style): the input of every sub-layer is a learned
  weighted sum of the embedding and all earlier sub-layer outputs, initialised to the plain
  residual stream. Stored as offsets from that identity, so weight decay pulls towards the plain
  residual, not towards zero, and initialisation only ever writes zeros.
* Output projection tied to the input embeddings (with its own bias) behind a small MLM head
  (LayerNorm -> Linear -> GELU -> LayerNorm), as the published model; tying saves
  ``vocab x hidden`` parameters (a tenth of the small model).
* Truncated-normal initialisation with std sqrt(2 / (5 x hidden)), feed-forward weights of
  layer i scaled by sqrt(1 / (2 (i + 1))).

Not in the model (training choices, see ``babylm.objective``): z-loss, the mask-rate schedule,
the causal share. Not taken at all: LAMB, EMA weights, batch-size and sequence-length ramps (the
kit's loop and optimizer stay what they are for every architecture).

Attention runs through ``scaled_dot_product_attention`` with the position terms and the mask as
one additive bias; nothing is cached between forward calls (no buffers: transformers 5 builds
models on the meta device, where a computed buffer would come back uninitialised).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, CausalLMOutput, MaskedLMOutput

try:  # transformers 5 name; 4.x only has PretrainedConfig
    from transformers import PreTrainedConfig
except ImportError:  # pragma: no cover - exercised under transformers 4.x
    from transformers import PretrainedConfig as PreTrainedConfig

try:
    from transformers import GenerationMixin
except ImportError:  # pragma: no cover
    GenerationMixin = object

MODEL_TYPE = "babylm-gpt-bert"
# Every Auto class the checkpoint answers to. Written into config.json on save: saving one class
# would otherwise record only that class, and the official pipeline loads the same folder as
# CausalLM, MaskedLM and (for fine-tuning) the bare model.
AUTO_MAP = {
    "AutoConfig": "gpt_bert.GPTBertConfig",
    "AutoModel": "gpt_bert.GPTBertModel",
    "AutoModelForCausalLM": "gpt_bert.GPTBertForCausalLM",
    "AutoModelForMaskedLM": "gpt_bert.GPTBertForMaskedLM",
}


class GPTBertConfig(PreTrainedConfig):
    """Sizes of a GPT-BERT model. Defaults are the published strict-small model (configs/small.json)."""

    model_type = MODEL_TYPE

    def __init__(self, vocab_size: int = 8192, hidden_size: int = 384, num_hidden_layers: int = 12,
                 num_attention_heads: int = 6, intermediate_size: int = 1280, max_position_embeddings: int = 512,
                 position_bucket_size: int = 32, layer_norm_eps: float = 1e-5, hidden_dropout_prob: float = 0.1,
                 attention_probs_dropout_prob: float = 0.1, tie_word_embeddings: bool = True, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        # Relative positions only: this sets the distance at which the log buckets end, not a limit.
        self.max_position_embeddings = max_position_embeddings
        self.position_bucket_size = position_bucket_size
        self.layer_norm_eps = layer_norm_eps
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        kwargs.setdefault("auto_map", dict(AUTO_MAP))  # a fresh dict: saving mutates it in place
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def relative_buckets(length: int, buckets: int, max_distance: int, device=None) -> torch.Tensor:
    """Index of the relative embedding used between query q and key k, as a (T, T) tensor.

    Distances up to ``buckets // 2`` each get their own embedding; longer ones share
    log-spaced buckets up to ``max_distance - 1`` (and beyond, clamped), signed by direction.
    The result lies in [0, 2 * buckets - 2]. Same bucketing as ltgoslo/gpt-bert
    (``Attention.make_log_bucket_position`` in ``pretraining/model_extra.py``).
    """
    pos = torch.arange(length, device=device)
    rel = pos[:, None] - pos[None, :]  # (T, T) query minus key
    half = buckets // 2
    dist = rel.abs().clamp(max=max(max_distance - 1, half + 1))  # (T, T)
    # ceil(log(d / half) / log((max - 1) / half) * (half - 1)) + half: half .. buckets - 1 for d > half.
    # In float64: the ceil must fall the same way on every device, or CPU and GPU would disagree.
    span = math.log(max(max_distance - 1, half + 1) / half)
    far = torch.ceil(torch.log(dist.clamp(min=half).double() / half) / span * (half - 1)).long() + half
    bucket = torch.where(dist > half, far.clamp(max=buckets - 1) * rel.sign(), rel)  # (T, T) in [-(B-1), B-1]
    return bucket + buckets - 1


class _Embedding(nn.Module):
    """Token embeddings (normalised) and the shared relative-position embeddings."""

    def __init__(self, config: GPTBertConfig):
        super().__init__()
        self.word = nn.Embedding(config.vocab_size, config.hidden_size)
        self.word_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, elementwise_affine=False)
        self.relative = nn.Parameter(torch.empty(2 * config.position_bucket_size - 1, config.hidden_size))
        self.relative_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.dropout(self.word_norm(self.word(input_ids)))  # (B, T, H)
        return x, self.relative_norm(self.relative)  # (R, H) with R = 2 * buckets - 1


class _Attention(nn.Module):
    """Pre-norm self-attention with relative-position terms, a GELU gate and a post-norm."""

    def __init__(self, config: GPTBertConfig):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(f"hidden_size {config.hidden_size} is not divisible by "
                             f"num_attention_heads {config.num_attention_heads}")
        self.heads = config.num_attention_heads
        self.head_size = config.hidden_size // config.num_attention_heads
        # Three score terms (content-content, content-position, position-content) are summed,
        # so each is scaled by 1/sqrt(3 d) to keep the sum at unit scale (published recipe).
        self.scale = 1.0 / math.sqrt(3 * self.head_size)
        self.pre_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, elementwise_affine=False)
        self.qk = nn.Linear(config.hidden_size, 2 * config.hidden_size)
        self.vg = nn.Linear(config.hidden_size, 2 * config.hidden_size)
        self.post_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, elementwise_affine=False)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.p_attn = config.attention_probs_dropout_prob
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.pos_dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_size).transpose(1, 2)  # (B, nh, T, d)

    def forward(self, x: torch.Tensor, relative: torch.Tensor, buckets: torch.Tensor,
                blocked: torch.Tensor | None) -> torch.Tensor:
        b, t, h = x.shape
        x = self.pre_norm(x)
        q, k = (self._split(y) for y in self.qk(x).chunk(2, dim=-1))  # (B, nh, T, d) each
        v, gate = self.vg(x).chunk(2, dim=-1)  # (B, T, H) each
        v = self._split(v)  # (B, nh, T, d)

        # The relative embeddings go through the same query/key projection as the tokens.
        pq, pk = self.qk(self.pos_dropout(relative)).chunk(2, dim=-1)  # (R, H) each
        pq = pq.view(-1, self.heads, self.head_size).transpose(0, 1)  # (nh, R, d)
        pk = pk.view(-1, self.heads, self.head_size).transpose(0, 1)  # (nh, R, d)
        index = buckets.expand(b, self.heads, t, t)  # (B, nh, T, T) bucket of (query, key)
        # content -> position: query q against the key-position embedding of bucket(q, k)
        c2p = torch.gather(q @ pk.transpose(-1, -2), -1, index)  # (B, nh, T, R) -> (B, nh, T, T)
        # position -> content: key k against the query-position embedding of bucket(q, k)
        p2c = torch.gather(k @ pq.transpose(-1, -2), -1, index.transpose(-1, -2)).transpose(-1, -2)  # (B, nh, T, T)
        bias = (c2p + p2c) * self.scale  # (B, nh, T, T)
        if blocked is not None:
            bias = bias.masked_fill(blocked, float("-inf"))  # blocked: (B or 1, 1, T, T)

        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale,
                                             dropout_p=self.p_attn if self.training else 0.0)  # (B, nh, T, d)
        ctx = ctx.transpose(1, 2).reshape(b, t, h) * F.gelu(gate)  # (B, T, H)
        return self.dropout(self.out(self.post_norm(ctx)))  # (B, T, H)


class _FeedForward(nn.Module):
    """Pre-norm GEGLU feed-forward with a norm between the two projections (no biases)."""

    def __init__(self, config: GPTBertConfig, depth: int):
        super().__init__()
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, elementwise_affine=False)
        self.up = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.mid_norm = nn.LayerNorm(config.intermediate_size, eps=config.layer_norm_eps, elementwise_affine=False)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        # Deeper layers start smaller, so the summed residual stream keeps its scale (published init).
        self.init_scale = math.sqrt(1.0 / (2.0 * (depth + 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.up(self.norm(x)).chunk(2, dim=-1)  # (B, T, I) each
        return self.dropout(self.down(self.mid_norm(a * F.gelu(gate, approximate="tanh"))))  # (B, T, H)


class _Encoder(nn.Module):
    """Alternating attention and feed-forward sub-layers with learned layer weighting.

    ``mix[i]`` holds one weight per stream state available to sub-layer i+1 (the embedding and
    the outputs of sub-layers 0..i); the input of the next sub-layer is that state plus the
    weighted sum, so all-zero weights are the plain residual stream.
    """

    def __init__(self, config: GPTBertConfig):
        super().__init__()
        n = config.num_hidden_layers
        self.attention = nn.ModuleList(_Attention(config) for _ in range(n))
        self.feed_forward = nn.ModuleList(_FeedForward(config, i) for i in range(n))
        self.mix = nn.ParameterList(nn.Parameter(torch.zeros(i + 2)) for i in range(2 * n))

    def forward(self, x: torch.Tensor, relative: torch.Tensor, buckets: torch.Tensor, blocked: torch.Tensor | None,
                keep_layers: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        states = [x]  # the stream after the embedding and after every sub-layer, unweighted
        layers = []
        for i, (attn, ff) in enumerate(zip(self.attention, self.feed_forward)):
            # the lambda runs within this iteration, so binding the loop's ``attn`` late is safe
            for j, sub in ((2 * i, lambda y: attn(y, relative, buckets, blocked)), (2 * i + 1, ff)):  # noqa: B023
                y = x + sub(x)  # (B, T, H)
                states.append(y)
                # A running sum, not a stacked tensordot: autograd then keeps no stacked copy of
                # the stream per sub-layer (memory stays O(layers), not O(layers^2)).
                for w, s in zip(self.mix[j], states):
                    y = y + w * s  # (B, T, H)
                x = y
            if keep_layers:
                layers.append(x)
        return x, layers


class _LMHead(nn.Module):
    """LayerNorm -> Linear -> GELU -> LayerNorm -> vocabulary projection tied to the embeddings."""

    def __init__(self, config: GPTBertConfig):
        super().__init__()
        self.pre_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, elementwise_affine=False)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, elementwise_affine=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.norm(F.gelu(self.dense(self.pre_norm(h)))))  # (..., H)
        return self.decoder(h)  # (..., V)


def _blocked(attention_mask: torch.Tensor | None, causal: bool, length: int, device) -> torch.Tensor | None:
    """True where a query may not attend a key, broadcastable to (B, nh, T, T); None when nothing is blocked.

    ``attention_mask`` is (B, T) with 1 for real tokens (padding keys are hidden) or (B, T, T)
    with 1 where query q may attend key k. Every query may attend itself, so a padding row
    never has all its keys blocked (its output is unused but must not be NaN).
    """
    allowed = None
    if attention_mask is not None:
        m = attention_mask.to(device=device).bool()
        if m.dim() == 2:
            allowed = m[:, None, None, :]  # (B, 1, 1, T)
        elif m.dim() == 3:
            allowed = m[:, None]  # (B, 1, T, T)
        elif m.dim() == 4 and m.size(1) == 1:
            allowed = m  # (B, 1, T, T)
        else:
            raise ValueError(f"attention_mask of shape {tuple(attention_mask.shape)}: expected (B, T) or (B, T, T)")
        if bool(allowed.all()):
            allowed = None
    if causal:
        tril = torch.ones(length, length, dtype=torch.bool, device=device).tril()  # (T, T)
        allowed = tril if allowed is None else allowed & tril
    if allowed is None:
        return None
    eye = torch.eye(length, dtype=torch.bool, device=device)  # (T, T)
    return ~(allowed | eye)


# ---------------------------------------------------------------------------------------------
# Hugging Face classes
# ---------------------------------------------------------------------------------------------


class GPTBertPreTrainedModel(PreTrainedModel):
    config_class = GPTBertConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = False

    def _init_weights(self, module: nn.Module) -> None:
        # Only torch.nn.init calls: transformers 5 guards them so loaded weights are never re-drawn.
        # Each block initialises its own parameters; the tied decoder weight is the embedding's.
        std = math.sqrt(2.0 / (5.0 * self.config.hidden_size))

        def normal(w, scale=1.0):
            nn.init.trunc_normal_(w, mean=0.0, std=std * scale, a=-2 * std * scale, b=2 * std * scale)

        if isinstance(module, _Embedding):
            normal(module.word.weight)
            normal(module.relative)
            nn.init.ones_(module.relative_norm.weight)
            nn.init.zeros_(module.relative_norm.bias)
        elif isinstance(module, _Attention):
            for lin in (module.qk, module.vg, module.out):
                normal(lin.weight)
                nn.init.zeros_(lin.bias)
        elif isinstance(module, _FeedForward):
            normal(module.up.weight, module.init_scale)
            normal(module.down.weight, module.init_scale)
        elif isinstance(module, _Encoder):
            for w in module.mix:
                nn.init.zeros_(w)
        elif isinstance(module, _LMHead):
            normal(module.dense.weight)
            nn.init.zeros_(module.dense.bias)
            nn.init.zeros_(module.decoder.bias)


class GPTBertModel(GPTBertPreTrainedModel):
    """The transformer body: token ids -> final hidden states (B, T, H).

    ``causal`` (constructor) is the attention used when ``forward`` is not told otherwise:
    bidirectional for ``AutoModel`` and the masked LM, causal inside the causal LM.
    """

    def __init__(self, config: GPTBertConfig, causal: bool = False):
        super().__init__(config)
        self.causal = causal
        self.embedding = _Embedding(config)
        self.encoder = _Encoder(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.embedding.word

    def set_input_embeddings(self, value):
        self.embedding.word = value

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                causal: bool | None = None, output_hidden_states: bool | None = None, return_dict: bool | None = None,
                **kwargs) -> BaseModelOutput:
        """Hidden states of every position.

        Args:
            input_ids: (B, T) token ids.
            attention_mask: (B, T) 1 = token, 0 = padding; or (B, T, T) 1 = query may attend key.
            causal: causal attention (True) or bidirectional (False); default: this module's own.
            output_hidden_states: also return the stream after the embedding and after every layer.
        """
        causal = self.causal if causal is None else causal
        t = input_ids.size(1)
        x, relative = self.embedding(input_ids)  # (B, T, H), (R, H)
        buckets = relative_buckets(t, self.config.position_bucket_size, self.config.max_position_embeddings,
                                   device=input_ids.device)  # (T, T)
        blocked = _blocked(attention_mask, causal, t, input_ids.device)
        keep = bool(output_hidden_states)
        first = x
        x, layers = self.encoder(x, relative, buckets, blocked, keep_layers=keep)
        hidden = (first, *layers) if keep else None
        if return_dict is False:
            return (x, hidden) if keep else (x,)
        return BaseModelOutput(last_hidden_state=x, hidden_states=hidden)


class _GPTBertLM(GPTBertPreTrainedModel):
    """Body + tied LM head; subclasses fix the attention kind."""

    causal = False
    # {tied parameter: source}. transformers 5 reads the mapping, 4.x iterates the keys.
    _tied_weights_keys = {"head.decoder.weight": "model.embedding.word.weight"}

    def __init__(self, config: GPTBertConfig):
        super().__init__(config)
        self.model = GPTBertModel(config, causal=self.causal)
        self.head = _LMHead(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embedding.word

    def set_input_embeddings(self, value):
        self.model.embedding.word = value

    def get_output_embeddings(self):
        return self.head.decoder

    def set_output_embeddings(self, value):
        self.head.decoder = value

    def _forward(self, input_ids, attention_mask, labels, output_hidden_states, kwargs):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, causal=kwargs.pop("causal", None),
                         output_hidden_states=output_hidden_states)
        logits = self.head(out.last_hidden_state)  # (B, T, V): position t predicts token t+1
        loss = None
        if labels is not None:
            # Both modes read the label of token t+1 at position t (MNTP is shifted like a causal LM).
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), labels[:, 1:].reshape(-1),
                                   ignore_index=-100)
        return loss, logits, out.hidden_states


class GPTBertForMaskedLM(_GPTBertLM):
    """Bidirectional attention; ``logits[:, i]`` predicts the (masked) token at i+1 (MNTP).

    ``labels`` follow the input positions (the original id at masked positions, -100 elsewhere);
    the loss reads label i+1 at output i.
    """

    causal = False

    def forward(self, input_ids=None, attention_mask=None, labels=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        loss, logits, hidden = self._forward(input_ids, attention_mask, labels, output_hidden_states, kwargs)
        if return_dict is False:
            return tuple(x for x in (loss, logits, hidden) if x is not None)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=hidden)


class GPTBertForCausalLM(_GPTBertLM, GenerationMixin):
    """Causal attention; ``logits[:, t]`` predicts token t+1. ``labels`` are the input ids."""

    causal = True

    def forward(self, input_ids=None, attention_mask=None, labels=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        loss, logits, hidden = self._forward(input_ids, attention_mask, labels, output_hidden_states, kwargs)
        if return_dict is False:
            return tuple(x for x in (loss, logits, hidden) if x is not None)
        return CausalLMOutput(loss=loss, logits=logits, hidden_states=hidden)

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        # No key/value cache: every generation step re-reads the whole sequence.
        return {"input_ids": input_ids, "attention_mask": attention_mask}


def register() -> None:
    """Register the classes with the Auto classes in this process, and for ``auto_map`` on save.

    After this, ``AutoModelFor*.from_pretrained`` loads a GPT-BERT folder with the classes of
    this module and ``trust_remote_code`` off; ``save_pretrained`` copies this file beside the
    weights so other processes (the official pipeline) can load it with remote code.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

    try:
        AutoConfig.register(MODEL_TYPE, GPTBertConfig)
    except ValueError:  # already registered
        pass
    for auto, cls in ((AutoModel, GPTBertModel), (AutoModelForCausalLM, GPTBertForCausalLM),
                      (AutoModelForMaskedLM, GPTBertForMaskedLM)):
        try:
            auto.register(GPTBertConfig, cls)
        except ValueError:
            pass
    GPTBertConfig.register_for_auto_class()
    GPTBertModel.register_for_auto_class("AutoModel")
    GPTBertForCausalLM.register_for_auto_class("AutoModelForCausalLM")
    GPTBertForMaskedLM.register_for_auto_class("AutoModelForMaskedLM")
