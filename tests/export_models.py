"""Tiny, seeded, real HF models and tokenizers for the exporter tests (built in-process, no network).

Tokenizers are trained with ``tokenizers`` on a few hundred sentences of the fast BLiMP files and
wrapped with ``PreTrainedTokenizerFast``; models are 2-layer, 32-64 hidden random inits from stock
configs, saved with ``save_pretrained`` (safetensors) so the exporter loads them like any checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    DebertaV2Config,
    DebertaV2ForMaskedLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaForMaskedLM,
)

KINDS = ("gpt2", "llama", "bert", "roberta", "deberta")


def one_thread() -> None:
    """Tiny models on a shared 2-core machine run ~10x faster single-threaded (no thread contention)."""
    torch.set_num_threads(1)


def corpus_lines(shared: Path, n_per_file: int = 6) -> list[str]:
    """Sentences from the fast BLiMP and supplement files (enough to cover most of their words)."""
    lines = []
    for folder in ("blimp_fast", "supplement_fast"):
        for f in sorted((shared / "data" / "eval" / folder).glob("*.jsonl")):
            with open(f, encoding="utf-8") as fh:
                for k, line in enumerate(fh):
                    if k >= n_per_file:
                        break
                    row = json.loads(line)
                    lines += [row["sentence_good"], row["sentence_bad"]]
    return lines


def byte_bpe(lines: list[str], bos: bool, roberta: bool = False, vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """GPT-2 style byte-level BPE; ``bos`` adds ``<s>`` in front (Llama style); ``roberta`` wraps in <s> ... </s>."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if roberta:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    elif bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", mask_token="<mask>")


def wordpiece(lines: list[str], vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """BERT style WordPiece with [CLS] $A [SEP]."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(lines, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def build(kind: str, lines: list[str], seed: int = 0, hidden: int = 32):
    """(model, tokenizer) of the given kind, randomly initialised with ``seed``."""
    torch.manual_seed(seed)
    if kind == "gpt2":
        tok = byte_bpe(lines, bos=False)
        cfg = GPT2Config(vocab_size=len(tok), n_embd=hidden, n_layer=2, n_head=2, n_positions=1024,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        model = GPT2LMHeadModel(cfg)
    elif kind == "llama":
        tok = byte_bpe(lines, bos=True)
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        model = LlamaForCausalLM(cfg)
    elif kind == "bert":
        tok = wordpiece(lines)
        cfg = BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=2 * hidden, max_position_embeddings=1024, pad_token_id=tok.pad_token_id)
        model = BertForMaskedLM(cfg)
    elif kind == "roberta":
        tok = byte_bpe(lines, bos=False, roberta=True)
        cfg = RobertaConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=2 * hidden, max_position_embeddings=1026, pad_token_id=tok.pad_token_id,
                            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        model = RobertaForMaskedLM(cfg)
    elif kind == "deberta":
        tok = wordpiece(lines)
        cfg = DebertaV2Config(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=2 * hidden, max_position_embeddings=1024, pad_token_id=tok.pad_token_id,
                              relative_attention=True, position_buckets=32, pos_att_type=["p2c", "c2p"])
        model = DebertaV2ForMaskedLM(cfg)
    else:
        raise ValueError(kind)
    model.eval()
    return model, tok


def save(model, tok, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def milestone_run(folder: Path, kind: str, lines: list[str], track: str = "strict-small") -> Path:
    """A run folder as training leaves it: one ``chck_*`` folder per milestone of ``track`` (each its own
    seed, so the curves move) and the final model in ``main/``, all with one tokenizer."""
    from babylm.challenge import milestones

    model, tok = build(kind, lines, seed=0)
    for k, name in enumerate([*milestones(track), "main"]):
        torch.manual_seed(100 + k)
        fresh = type(model)(model.config)
        fresh.eval()
        save(fresh, tok, folder / name)
    return folder
