"""Cross-lingual POS tagging: one model trained on a uniform mixture of the languages' treebanks,
scored per language (babylm-eval 3d57ddc, ``multilingual/finetune/pos_data.py`` and
``finetune_token_classification.py``).

Data. The official script fetches UD treebanks from the hub (en_ewt, nl_alpino, zh_gsdsimp); the kit
reads local CoNLL-U files, ``<pos_data>/<xx>/*.conllu`` (every split of a treebank pooled, as there).
Per language: word forms and UPOS tags of each sentence (multi-word token ranges and empty nodes
skipped), shuffled with the split seed 42, at most 4,000 sentences kept, then an 80/10/10
train/validation/test split (two ``train_test_split`` calls, as there). The mixture takes from every
language as many training sentences as the smallest has, and shuffles them together; early stopping
reads the pooled validation sentences; each language is then scored on its own validation split
(``eval_results.json``) and predicted on its own test split (``predictions.txt``).

Model. The checkpoint's body (AutoModel) with a linear layer over each word's mean subword state
(``pool_subwords`` there); a word is encoded as ``" " + word`` (the official tokenizer is loaded with
``add_prefix_space``), after ``<s>``; at most 128 tokens. Training: AdamW, lr 5e-5, linear decay,
batch 64, at most 10 epochs, patience 3 on word accuracy, seed 12.

Output: ``<out>/pos/<xx>/eval_results.json`` and ``predictions.txt`` (``index<TAB>predictions``, the
tags of a sentence space-separated), the layout the official collator reads as ``pos: {xx: acc}``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from babylm.errors import InputError
from babylm.files import atomic_dir, write_text

log = logging.getLogger(__name__)
UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X")  # the 17 universal tags (universaldependencies.org/u/pos)
SPLIT_SEED = 42  # pos_data.py seed
MAX_SENTENCES = 4000  # finetune_token_classification.py --max_sentences default


def read_conllu(path: Path) -> list[tuple[list[str], list[str]]]:
    """(forms, UPOS tags) per sentence; InputError naming the file and line of a malformed row."""
    sentences, forms, tags = [], [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            if forms:
                sentences.append((forms, tags))
            forms, tags = [], []
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise InputError(f"{path}:{number}: a CoNLL-U word line has 10 tab-separated columns, found {len(cols)}")
        if "-" in cols[0] or "." in cols[0]:
            continue  # multi-word token range or empty node: no UPOS of its own
        if cols[3] not in UPOS:
            raise InputError(f"{path}:{number}: UPOS {cols[3]!r} is not one of the 17 universal tags")
        forms.append(cols[1])
        tags.append(cols[3])
    if forms:
        sentences.append((forms, tags))
    return sentences


def language_splits(sentences: list[tuple[list[str], list[str]]], max_sentences: int | None = MAX_SENTENCES,
                    seed: int = SPLIT_SEED) -> dict[str, Any]:
    """make_pos_split's 80/10/10 split of one treebank (a datasets.Dataset per split)."""
    from datasets import Dataset

    if len(sentences) < 3:
        raise InputError(f"a treebank needs at least 3 sentences to split, found {len(sentences)}")
    pooled = Dataset.from_dict({"tokens": [s[0] for s in sentences],
                                "upos": [[UPOS.index(t) for t in s[1]] for s in sentences]}).shuffle(seed=seed)
    if max_sentences is not None and len(pooled) > max_sentences:
        pooled = pooled.select(range(max_sentences))
    first = pooled.train_test_split(test_size=0.2, seed=seed)
    second = first["test"].train_test_split(test_size=0.5, seed=seed)
    return {"train": first["train"], "validation": second["train"], "test": second["test"]}


def mixture(per_lang: dict[str, dict[str, Any]], seed: int = SPLIT_SEED) -> dict[str, Any]:
    """build_pos_mixture: the same number of training sentences from every language, shuffled together."""
    from datasets import concatenate_datasets

    cap = min(len(s["train"]) for s in per_lang.values())
    parts = [s["train"].shuffle(seed=seed).select(range(cap)) if len(s["train"]) > cap else s["train"]
             for s in per_lang.values()]
    return {"train": concatenate_datasets(parts).shuffle(seed=seed),
            "validation": concatenate_datasets([s["validation"] for s in per_lang.values()])}


def encode(tok, words: list[str], max_length: int) -> tuple[list[int], list[int]]:
    """(input ids, word index of each id, -1 for <s>), truncated to max_length ids."""
    ids = [tok.bos_token_id] if tok.bos_token_id is not None else []
    word_ids = [-1] * len(ids)
    for i, word in enumerate(words):
        piece = tok.encode(" " + word, add_special_tokens=False)
        ids += piece
        word_ids += [i] * len(piece)
    return ids[:max_length], word_ids[:max_length]


def _batch(rows: list[dict], tok, max_length: int):
    import torch

    enc = [encode(tok, r["tokens"], max_length) for r in rows]
    width = max(len(ids) for ids, _ in enc)
    n_words = max(len(r["upos"]) for r in rows)
    pad = tok.pad_token_id or 0
    ids = torch.tensor([e[0] + [pad] * (width - len(e[0])) for e in enc])
    mask = torch.tensor([[1] * len(e[0]) + [0] * (width - len(e[0])) for e in enc])
    word_ids = torch.tensor([e[1] + [-1] * (width - len(e[1])) for e in enc])
    kept = [max(e[1], default=-1) + 1 for e in enc]  # words with at least one token after truncation
    labels = torch.tensor([[t if j < k else -100 for j, t in enumerate(r["upos"])] + [-100] * (n_words - len(r["upos"]))
                           for r, k in zip(rows, kept)])
    return ids, mask, word_ids, labels


class Tagger:
    """The body, mean pooling of each word's subword states, a linear layer over the 17 tags."""

    def __init__(self, path: str, seed: int):
        import torch
        from transformers import AutoModel

        torch.manual_seed(seed)
        self.body = AutoModel.from_pretrained(path, dtype=torch.float32)
        hidden = self.body.config.hidden_size
        self.drop = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(hidden, len(UPOS))
        self.modules = torch.nn.ModuleList([self.body, self.head])

    def logits(self, ids, mask, word_ids, n_words: int):
        import torch

        hidden = self.body(input_ids=ids, attention_mask=mask).last_hidden_state
        onehot = torch.nn.functional.one_hot(word_ids.clamp(min=0), n_words).to(hidden.dtype)
        onehot = onehot * (word_ids >= 0).unsqueeze(-1)
        counts = onehot.sum(1).clamp(min=1.0)  # (batch, words)
        words = torch.bmm(onehot.transpose(1, 2), hidden) / counts.unsqueeze(-1)
        return self.head(self.drop(words))


def _predict(tagger: Tagger, data, tok, max_length: int, batch_size: int = 64) -> tuple[float, list[list[str]]]:
    import torch

    tagger.modules.eval()
    right = total = 0
    tags: list[list[str]] = []
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            rows = [data[i] for i in range(start, min(start + batch_size, len(data)))]
            ids, mask, word_ids, labels = _batch(rows, tok, max_length)
            pred = tagger.logits(ids, mask, word_ids, labels.size(1)).argmax(-1)
            keep = labels != -100
            right += int((pred[keep] == labels[keep]).sum())
            total += int(keep.sum())
            tags += [[UPOS[p] for p, k in zip(row_pred.tolist(), row_keep.tolist()) if k]
                     for row_pred, row_keep in zip(pred, keep)]
    return (right / total if total else 0.0), tags


def run(model_path: str, tok, pos_data: str | Path, xxs: list[str], out: Path, options: dict[str, Any]) -> dict:
    """Train the joint tagger and write ``<out>/pos/<xx>/``; returns {xx: accuracy}."""
    import torch

    per_lang = {}
    for xx in xxs:
        files = sorted((Path(pos_data) / xx).glob("*.conllu"))
        if not files:
            raise InputError(f"{Path(pos_data) / xx}: no .conllu treebank for {xx}; give --pos_data a folder of "
                             "<xx>/*.conllu or leave pos out")
        per_lang[xx] = language_splits([s for f in files for s in read_conllu(f)],
                                       options.get("max_sentences", MAX_SENTENCES))
    mixed = mixture(per_lang)
    tagger = Tagger(model_path, options["seed"])
    optimizer = torch.optim.AdamW(tagger.modules.parameters(), lr=options["lr"], weight_decay=0.0)
    steps_per_epoch = max(1, len(mixed["train"]) // options["batch_size"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: max(0.0, 1 - s / (steps_per_epoch * options["epochs"])))
    generator = torch.Generator().manual_seed(options["seed"])
    best = gain_epoch = 0
    best_acc = -1.0
    best_state = None
    for epoch in range(1, options["epochs"] + 1):
        tagger.modules.train()
        order = torch.randperm(len(mixed["train"]), generator=generator).tolist()
        for b in range(steps_per_epoch):
            rows = [mixed["train"][i] for i in order[b * options["batch_size"]:(b + 1) * options["batch_size"]]]
            ids, mask, word_ids, labels = _batch(rows, tok, options["max_length"])
            loss = torch.nn.functional.cross_entropy(tagger.logits(ids, mask, word_ids, labels.size(1)).flatten(0, 1),
                                                     labels.flatten(), ignore_index=-100)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        acc, _ = _predict(tagger, mixed["validation"], tok, options["max_length"])
        if acc > best_acc + 0.001 or best_state is None:
            gain_epoch = epoch
        if acc > best_acc:
            best, best_acc = epoch, acc
            best_state = {k: v.clone() for k, v in tagger.modules.state_dict().items()}
        if epoch - gain_epoch >= options["patience"]:
            break
    tagger.modules.load_state_dict(best_state)
    scores = {}
    for xx, splits in per_lang.items():
        acc, _ = _predict(tagger, splits["validation"], tok, options["max_length"])
        _, tags = _predict(tagger, splits["test"], tok, options["max_length"])
        with atomic_dir(out / "pos" / xx, overwrite=True) as tmp:
            write_text(tmp / "eval_results.json", json.dumps({"eval_accuracy": acc, "eval_samples": len(splits["validation"]),
                                                              "best_epoch": best}, indent=4) + "\n")
            write_text(tmp / "predictions.txt", "index\tpredictions\n" + "".join(
                f"{i}\t{' '.join(t)}\n" for i, t in enumerate(tags)))
        scores[xx] = acc
        log.info("pos %s: accuracy %.4f (best epoch %d)", xx, acc, best)
    return scores
