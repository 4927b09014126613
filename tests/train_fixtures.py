"""Tiny, real inputs for the training tests: a BPE tokenizer trained in-process and packed blocks.

Independent of babylm.corpus / babylm.data, so the model, checkpoint and loop tests exercise
the training side alone; the CLI tests go through the real data pipeline.
"""

from __future__ import annotations

import random
from pathlib import Path

SUBJECTS = ["the dog", "the cat", "a girl", "the boy", "my friend", "the bird", "a teacher", "the baby"]
VERBS = ["sees", "likes", "finds", "wants", "helps", "hears"]
OBJECTS = ["the ball", "a cake", "the tree", "my book", "the car", "a toy", "the water", "the moon"]


def sentences(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} ." for _ in range(n)]


def make_tokenizer(folder: Path, vocab_size: int = 120):
    """Train a byte-level BPE on the synthetic sentences and save it as a HF fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(sentences(), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")
    fast.save_pretrained(folder)
    return fast


def make_blocks(tokenizer, block_size: int = 32, n_sentences: int = 400, seed: int = 0):
    """Pack the synthetic sentences into a datasets.Dataset with input_ids and n_words (the data contract)."""
    from datasets import Dataset

    ids, out_words = [], []
    for text in sentences(n_sentences, seed):
        piece = [tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        start_block = len(ids) // block_size
        ids.extend(piece)
        # Credit the unit's words to the block where its first token lands.
        while len(out_words) <= start_block:
            out_words.append(0)
        out_words[start_block] += len(text.split())
    n_full = len(ids) // block_size
    out_ids = [ids[i * block_size:(i + 1) * block_size] for i in range(n_full)]
    return Dataset.from_dict({"input_ids": out_ids, "n_words": out_words[:n_full]})
