"""Tokenizers: train byte-level BPE, WordPiece or Unigram on the training files; load existing ones.

One place defines the special tokens and the BOS/EOS policy. Every tokenizer the kit writes has
the same five special tokens with fixed ids (``<pad>`` 0, ``<unk>`` 1, ``<s>`` 2, ``</s>`` 3,
``<mask>`` 4); for masked (BERT/RoBERTa-style) models ``cls`` and ``sep`` are ``<s>`` and ``</s>``,
as in RoBERTa. Whether ``<s>`` is prepended is the explicit option ``add_bos``: the official 2025
scorer tokenises sentences with the tokenizer's default special tokens and never prepends
anything itself, so without a BOS the first token of a BLiMP sentence is never scored
(babylm-org/babylm-eval, strict/evaluation_pipeline/sentence_zero_shot/dataset.py). The result is
saved with ``save_pretrained`` as a fast tokenizer that ``AutoTokenizer.from_pretrained(dir)``
loads offline, with offsets (special tokens get (0, 0)), under transformers 5 and under the official
pipeline's transformers 4.51 alike, returning the same inputs (ids and attention mask) under both.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from babylm.config import option, to_dict
from babylm.corpus import CorpusConfig, load_corpus
from babylm.errors import InputError, UsageError
from babylm.files import atomic_dir, write_json

PAD, UNK, BOS, EOS, MASK = "<pad>", "<unk>", "<s>", "</s>", "<mask>"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS, MASK]  # ids 0..4 in this order
MODELS = ("bpe", "wordpiece", "unigram")
TARGETS = ("causal", "masked")
BYTE_ALPHABET = 256  # byte-level BPE always holds the 256 byte symbols
TRAIN_INFO = "tokenizer_train_config.json"  # not tokenizer_config.json, which transformers owns
# What every kit model is trained on. transformers 4.x fast tokenizers also return token_type_ids
# unless told otherwise, and code that calls ``model(**tokenizer(text))`` (the official reading
# task does) then feeds them to the model: GPT-2 adds ``wte(token_type_ids)`` to every position,
# an input its training never saw. transformers 5 returns none by default; recording the names
# makes both versions hand the model the same inputs.
MODEL_INPUTS = ["input_ids", "attention_mask"]


@dataclasses.dataclass
class TokenizerConfig(CorpusConfig):
    out_dir: str = option("outputs/tokenizer", "folder to write the tokenizer to (must not exist unless --overwrite)")
    model: str = option("bpe", "tokenizer model: byte-level BPE, WordPiece or Unigram. Only BPE training is "
                        "byte-reproducible: the tokenizers library's WordPiece and Unigram trainers depend on "
                        "hash-map order and thread timing (huggingface/tokenizers#1794)", choices=MODELS)
    vocab_size: int = option(8192, "vocabulary size including the special tokens", ge=1)
    min_frequency: int = option(2, "minimum count of a merge/piece (BPE, WordPiece)", ge=1)
    target: str = option("causal", "architecture the tokenizer serves: causal (GPT-2/Llama style) or masked "
                                   "(BERT/RoBERTa style: cls=<s>, sep=</s>)", choices=TARGETS)
    add_bos: bool | None = option(None, "prepend <s> to every text (default: true). Without it the official "
                                        "scorers never score a sentence's first token")
    add_eos: bool | None = option(None, "append </s> to every text (default: false for causal, true for masked)")
    model_max_length: int = option(1_000_000, "model_max_length recorded in the tokenizer config", ge=1)
    overwrite: bool = option(False, "replace an existing out_dir")

    def validate(self) -> None:
        check_vocab_size(self.model, self.vocab_size)  # its least value depends on --model

    def resolved(self) -> tuple[bool, bool]:
        add_bos = True if self.add_bos is None else self.add_bos
        add_eos = (self.target == "masked") if self.add_eos is None else self.add_eos
        return add_bos, add_eos


def check_vocab_size(model: str, vocab_size: int) -> None:
    """UsageError when ``vocab_size`` cannot hold the special tokens (and the byte alphabet for BPE)."""
    need = len(SPECIAL_TOKENS) + (BYTE_ALPHABET if model == "bpe" else 1)
    if vocab_size < need:
        extra = f" + {BYTE_ALPHABET} byte symbols" if model == "bpe" else " + at least one piece"
        raise UsageError(f"--vocab_size: {vocab_size} is too small for {model}: it must hold the "
                         f"{len(SPECIAL_TOKENS)} special tokens{extra} (at least {need})")


class AlphabetOverVocabulary(UsageError):
    """Unigram keeps every character of its training text as a piece: the vocabulary asked for is smaller."""


def _build(model: str, vocab_size: int, min_frequency: int):
    """An untrained ``tokenizers.Tokenizer`` with its pre-tokenizer/decoder and a matching trainer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if model == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
    elif model == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=SPECIAL_TOKENS, show_progress=False)
    elif model == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token=UNK,
                                          show_progress=False)
    else:
        raise UsageError(f"--model: {model!r} is not one of {', '.join(MODELS)}")
    return tok, trainer


def _post_processor(tok, add_bos: bool, add_eos: bool):
    from tokenizers import processors

    single = " ".join(([f"{BOS}:0"] if add_bos else []) + ["$A:0"] + ([f"{EOS}:0"] if add_eos else []))
    pair = single + " " + " ".join(["$B:1"] + ([f"{EOS}:1"] if add_eos else []))
    specials = [(t, tok.token_to_id(t)) for t in (BOS, EOS)]
    return processors.TemplateProcessing(single=single, pair=pair, special_tokens=specials)


def wrap_fast(tok, target: str = "causal", model_max_length: int = 1_000_000):
    """Wrap a ``tokenizers.Tokenizer`` holding our special tokens as a transformers fast tokenizer."""
    from transformers import PreTrainedTokenizerFast

    extra = {"cls_token": BOS, "sep_token": EOS} if target == "masked" else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   unk_token=UNK, mask_token=MASK, model_max_length=model_max_length,
                                   model_input_names=list(MODEL_INPUTS), **extra)


def save_tokenizer(tokenizer, folder: Path) -> None:
    """``save_pretrained`` into ``folder``, in a form transformers 4.51 (the official pipeline) reads too."""
    tokenizer.save_pretrained(str(folder))
    make_legacy_readable(Path(folder))


def make_legacy_readable(folder: Path, model_inputs: list[str] | None = None) -> None:
    """Rewrite the tokenizer fields transformers 5 writes that transformers 4.51 cannot read.

    * ``tokenizer_class``: v5 records ``TokenizersBackend``, a class 4.x does not have
      ("Tokenizer class TokenizersBackend does not exist"); ``PreTrainedTokenizerFast`` is the same
      fast tokenizer under its 4.x name.
    * ``extra_special_tokens``: v5 may write a list where 4.x expects a dict.
    * ``special_tokens_map.json``: v5 no longer writes it; 4.x reads the special-token roles from it.
    * ``model_input_names``: set to ``model_inputs`` when given (a checkpoint knows what its model
      was trained on), else kept; see :data:`MODEL_INPUTS`.
    """
    tok_cfg = Path(folder) / "tokenizer_config.json"
    if not tok_cfg.is_file():
        return
    data = json.loads(tok_cfg.read_text(encoding="utf-8"))
    if data.get("tokenizer_class") in (None, "TokenizersBackend"):
        data["tokenizer_class"] = "PreTrainedTokenizerFast"
    if isinstance(data.get("extra_special_tokens"), list):
        data["extra_special_tokens"] = {}
    if model_inputs is not None:
        data["model_input_names"] = list(model_inputs)
    write_json(tok_cfg, data)
    specials = {k: data[k] for k in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                                     "mask_token") if isinstance(data.get(k), str)}
    if specials and not (Path(folder) / "special_tokens_map.json").exists():
        write_json(Path(folder) / "special_tokens_map.json", specials)


def train_tokenizer_from_texts(texts: Iterator[str] | Iterator[list[str]], model: str = "bpe", vocab_size: int = 8192,
                               min_frequency: int = 2, target: str = "causal", add_bos: bool = True,
                               add_eos: bool = False, model_max_length: int = 1_000_000, length: int | None = None):
    """Train a tokenizer on an iterator of texts (or of lists of texts); return it as a fast tokenizer."""
    check_vocab_size(model, vocab_size)
    tok, trainer = _build(model, vocab_size, min_frequency)
    try:
        tok.train_from_iterator(texts, trainer=trainer, length=length)
    except Exception as exc:  # the tokenizers library raises a bare Exception
        if model == "unigram" and "not large enough to contain all chars" in str(exc):
            raise AlphabetOverVocabulary(f"--vocab_size: {vocab_size} is smaller than the characters of the "
                                         "training text, each of which unigram keeps as a piece") from None
        raise
    for i, t in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(t) == i, f"special token {t} must have id {i}"
    tok.post_processor = _post_processor(tok, add_bos, add_eos)
    return wrap_fast(tok, target, model_max_length)


def train_tokenizer(cfg: TokenizerConfig, corpus=None) -> Path:
    """Train on the selected training files of ``cfg``'s corpus and save to ``cfg.out_dir`` (atomically)."""
    corpus = corpus or load_corpus(cfg.corpus, files=cfg.files, track=cfg.track,
                                   allow_over_budget=cfg.allow_over_budget)
    train_files = [f for f in corpus.files if f.split == "train"]
    if not train_files:
        raise InputError(f"--files: the selection {','.join(cfg.files)} holds no training files; "
                         f"the tokenizer is trained on training files only")
    add_bos, add_eos = cfg.resolved()
    if cfg.model != "bpe":
        # Upstream, not ours: ids of '##' pieces follow hash-map order and Unigram's EM sums follow
        # thread timing, so two runs can differ (huggingface/tokenizers#1794). Say so once.
        print(f"note: {cfg.model} training is not byte-reproducible across runs (tokenizers#1794); "
              "keep the trained folder with your results, or use --model bpe", file=sys.stderr)
    from tqdm import tqdm

    words = sum(f.words for f in train_files)
    bar = tqdm(total=words, unit="word", unit_scale=True, desc="tokenizer", leave=False)

    def texts() -> Iterator[list[str]]:
        # Batches of texts: far less per-item overhead in train_from_iterator than single strings.
        batch: list[str] = []
        for text in corpus.iter_texts(train_files):
            batch.append(text)
            if len(batch) == 1000:
                bar.update(sum(len(t.split()) for t in batch))
                yield batch
                batch = []
        if batch:
            bar.update(sum(len(t.split()) for t in batch))
            yield batch

    try:
        fast = train_tokenizer_from_texts(texts(), cfg.model, cfg.vocab_size, cfg.min_frequency, cfg.target,
                                          add_bos, add_eos, cfg.model_max_length)
    except AlphabetOverVocabulary:
        bar.close()
        chars = len(unigram_alphabet(corpus.iter_texts(train_files)))
        raise UsageError(f"--vocab_size: {cfg.vocab_size} is too small for unigram on this text: it keeps each of "
                         f"the {chars} characters of the training text (its word-start mark \u2581 included) as a "
                         f"piece; ask for at least {chars}") from None
    bar.close()
    note = vocabulary_note(fast, cfg.model, cfg.vocab_size, cfg.min_frequency,
                           lambda: corpus.iter_texts(train_files))
    if note:
        print(f"note: {note}", file=sys.stderr)
    out = Path(cfg.out_dir)
    try:
        with atomic_dir(out, overwrite=cfg.overwrite) as tmp:
            save_tokenizer(fast, tmp)
            write_json(tmp / TRAIN_INFO, {
                "command": "tokenizer",
                "config": to_dict(cfg),
                "resolved": {"add_bos": add_bos, "add_eos": add_eos},
                "vocab_size": len(fast),
                "vocab_size_asked": cfg.vocab_size,
                "vocab_size_note": note,
                "special_tokens": {t: fast.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS},
                "training_files": [f.name for f in train_files],
                "training_words": words,
                "corpus_fingerprint": corpus.fingerprint(),
            })
    except FileExistsError:
        raise UsageError(f"--out_dir: {out} exists; pass --overwrite true or choose another folder") from None
    return out


def unigram_alphabet(texts: Iterator[str]) -> set[str]:
    """The characters unigram must keep: those of the text after its pre-tokenizer (spaces become \u2581)."""
    chars: set[str] = set()
    for text in texts:
        chars.update(text)
    return {c for c in chars if not c.isspace()} | {"\u2581"}


def vocabulary_note(fast, model: str, vocab_size: int, min_frequency: int,
                    texts: Callable[[], Iterator[str]]) -> str | None:
    """Why a trained vocabulary is not the size asked for, in one line (None when it is).

    More tokens: the trainer always keeps the special tokens and its alphabet (WordPiece: every
    character of the text, also in its ``##`` continuation form; unigram: every character). Fewer: it
    ran out of merges or pieces, which only a pass over the text can say, so ``texts`` is read again,
    and only then.
    """
    size = len(fast)
    if size == vocab_size:
        return None
    backend = json.loads(fast.backend_tokenizer.to_str())["model"]
    vocab = backend["vocab"]
    specials = len(SPECIAL_TOKENS)
    if model == "bpe":
        parts = f"{specials} special tokens + {BYTE_ALPHABET} byte symbols + {len(backend['merges']):,} merges"
    elif model == "wordpiece":
        chars = sum(1 for t in vocab if len(t) == 1 or (len(t) == 3 and t.startswith("##")))
        parts = f"{specials} special tokens + {chars} characters (alone and as ##-continuations) + " \
                f"{size - specials - chars:,} merged pieces"
    else:
        parts = f"{specials} special tokens + {size - specials:,} pieces"
    if size > vocab_size:
        kept = "every character of the text, alone and as a ##-continuation" if model == "wordpiece" \
            else "every character of the text"
        return (f"the vocabulary holds {size:,} tokens, more than the --vocab_size {vocab_size:,} asked for ({parts}): "
                f"{model} always keeps the special tokens and {kept}")
    pre = fast.backend_tokenizer.pre_tokenizer
    words: set[str] = set()
    for text in texts():
        words.update(w for w, _ in pre.pre_tokenize_str(text))
    if model == "unigram":
        why = f"unigram found no more pieces worth keeping in the {len(words):,} distinct words of the training text"
    elif not (split := sum(1 for w in words if w not in vocab)):
        why = (f"after the last merge each of the {len(words):,} distinct words of the training text was one token, "
               "so nothing was left to merge")
    else:
        return (f"the vocabulary holds {size:,} of the {vocab_size:,} tokens asked for ({parts}): after the last merge "
                f"no pair of adjacent symbols in the {split:,} words still split occurred --min_frequency "
                f"{min_frequency} times or more; lower --min_frequency to merge further")
    return (f"the vocabulary holds {size:,} of the {vocab_size:,} tokens asked for ({parts}): {why}; more (or more "
            "varied) training text gives a larger vocabulary")


def load_tokenizer(path_or_id: str | Path, trust_remote_code: bool = False):
    """Load a fast tokenizer from a local folder or a hub id (offline when HF_HUB_OFFLINE=1).

    Raises InputError (one line) when it cannot be loaded or is not a fast tokenizer (the official
    scorers need offsets, which only fast tokenizers give).
    """
    from transformers import AutoTokenizer

    where = str(path_or_id)
    local = Path(where).expanduser()
    if local.exists() and not (local / "tokenizer.json").is_file() and not (local / "tokenizer_config.json").is_file():
        raise InputError(f"--tokenizer: {local} holds no tokenizer.json; train one with `python -m babylm tokenizer`")
    # A hub id is `name` or `namespace/name`; anything else can only have been meant as a folder.
    if not local.exists() and (where.startswith((".", "/", "~")) or where.count("/") > 1 or where.endswith("/")):
        raise InputError(f"--tokenizer: {where}: no such folder; train a tokenizer there with "
                         "`python -m babylm tokenizer --out_dir ...` or give an existing folder or hub id")
    try:
        tok = AutoTokenizer.from_pretrained(str(local) if local.exists() else where, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - any loader failure becomes one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        elsewhere = "" if local.exists() else "no such folder, and as a hub id: "
        raise InputError(f"--tokenizer: cannot load {where!r} ({elsewhere}{first[:200]}); give a local folder or a hub id") \
            from None
    if not getattr(tok, "is_fast", False):
        raise InputError(f"--tokenizer: {where!r} is not a fast tokenizer; offsets (needed by the official scorers) "
                         f"require one")
    return tok


def tokenizer_fingerprint(tokenizer) -> str:
    """Stable hash of everything that decides a tokenizer's output (model, post-processor, specials)."""
    import hashlib

    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    payload = json.dumps({"backend": backend, "specials": tokenizer.all_special_tokens}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def describe(tokenizer) -> dict[str, Any]:
    return {"vocab_size": len(tokenizer), "bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id,
            "pad": tokenizer.pad_token_id, "unk": tokenizer.unk_token_id, "mask": tokenizer.mask_token_id}
