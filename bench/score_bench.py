"""Benchmark: our scorer vs a straightforward per-sentence implementation, in one process.

Both score filtered BLiMP + the BLiMP supplement (``--limit N``: the first N pairs of each file;
``--tasks`` picks other tasks) with the same tiny-but-real seeded model and the same token spans
(2025 rule). The baseline runs one forward per sentence (masked: all the sentence's masked copies
in that one batch) with full-vocabulary logits; ``--against plain`` makes it the kit's own causal
path without shared prefixes (``--prefix_sharing false``) instead. Prints sentences/s of both, the
ratio, and both accuracies, which must match except on near ties (items whose candidates differ by
less than float32 rounding, counted and printed). Wall and process CPU time are both printed: on a
shared machine the CPU-time ratio is the steadier.

    .venv/bin/python bench/score_bench.py --backend both --limit 20
    .venv/bin/python bench/score_bench.py --backend mlm --model path/to/checkpoint   # a real model
    .venv/bin/python bench/score_bench.py --backend causal --kit_model --against plain \
        --tasks entity_tracking --eval_set fast --limit 30                        # shared prefixes vs plain
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval_export import scoring, tasks, zero_shot  # noqa: E402


def tiny_model(backend: str, eval_root: Path, hidden: int, layers: int, vocab: int, corpus: str = "",
               model_vocab: int = 0):
    """A seeded random model with a BPE/WordPiece tokenizer trained on ``corpus`` (a folder of
    text files, e.g. a BabyLM train_10M slice) or, without one, on BLiMP sentences."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    text = tokenizer_text(eval_root, corpus)
    torch.manual_seed(0)
    if backend == "causal":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<pad>", "<s>", "</s>"],
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
        model = GPT2LMHeadModel(GPT2Config(vocab_size=max(len(fast), model_vocab), n_embd=hidden, n_layer=layers,
                                           n_head=max(hidden // 64, 2), n_positions=1024))
    else:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok.train_from_iterator(text, trainers.WordPieceTrainer(vocab_size=vocab, special_tokens=specials))
        tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                       sep_token="[SEP]", mask_token="[MASK]")
        model = BertForMaskedLM(BertConfig(vocab_size=max(len(fast), model_vocab), hidden_size=hidden,
                                           num_hidden_layers=layers, num_attention_heads=max(hidden // 64, 2),
                                           intermediate_size=4 * hidden, max_position_embeddings=1024))
    return model.eval(), fast


def tokenizer_text(eval_root: Path, corpus: str = "") -> list[str]:
    """The lines a bench tokenizer is trained on: every line of ``corpus`` (a folder of text files), or
    without one both sentences of the first 50 pairs of each BLiMP-fast phenomenon."""
    import json

    if corpus:
        return [ln for f in sorted(Path(corpus).iterdir()) if f.is_file() for ln in f.read_text(errors="ignore").splitlines()]
    rows = [json.loads(ln) for f in sorted((eval_root / "blimp_fast").glob("*.jsonl")) for ln in f.read_text().splitlines()[:50]]
    return [s for r in rows for s in (r["sentence_good"], r["sentence_bad"])]


def kit_model(eval_root: Path, hidden: int, layers: int, vocab: int, corpus: str = ""):
    """The kit's own GPT-2 (babylm.models: fused tanh GELU, SDPA, tied head; 1024 positions so that
    the longest entity-tracking strings fit) and byte-level BPE tokenizer (babylm.tokenizer: BOS
    prepended), trained on ``corpus`` or, without one, on BLiMP sentences; seeded random weights."""
    from babylm.models import build_model, resolve_shape
    from babylm.tokenizer import train_tokenizer_from_texts

    tok = train_tokenizer_from_texts(iter(tokenizer_text(eval_root, corpus)), "bpe", vocab)
    shape = resolve_shape("small", layers=layers, hidden=hidden, heads=max(hidden // 64, 2), positions=1024)
    return build_model("gpt2", shape, tok, seed=0).eval(), tok


def ewok_like(blimp) -> list:
    """EWoK-format items made of BLiMP sentences (a proxy: EWoK itself is encrypted): the context is
    the previous pair's good sentence, the targets are " " + this pair's good and bad sentences."""
    items, prev = [], {}
    for it in blimp.items:
        good, bad = it.candidates[0][1], it.candidates[1][1]
        if it.uid in prev:
            t1, t2 = " " + good, " " + bad
            items.append(tasks.Item(it.uid, [(prev[it.uid], t1), (prev[it.uid], t2)], [t1, t2]))
        prev[it.uid] = good
    return items


def load_tasks(names: list[str], eval_set: str, root: Path, limit: int) -> list:
    out = []
    for name in names:
        if name == "ewok_like":
            data = tasks.load_task("blimp", eval_set, root, limit=limit + 1 if limit else 0)
            data.name, data.items = "ewok_like", ewok_like(data)
            out.append(data)
        else:
            out.append(tasks.load_task(name, eval_set, root, limit=limit))
    return out


@torch.no_grad()
def straightforward(model, requests: list[scoring.Request], backend: str, mask_id: int | None) -> np.ndarray:
    """One forward per sentence, full-vocabulary logits (the way most scripts do it)."""
    device = next(model.parameters()).device
    out = np.zeros(len(requests))
    for k, r in enumerate(requests):
        ids = torch.tensor(r.ids, device=device)
        if backend == "causal":
            logp = torch.log_softmax(model(ids[None]).logits[0].float(), -1)  # (T, V)
            out[k] = sum(float(logp[p - 1, r.ids[p]]) for p in r.scored if p > 0)
        else:
            copies = ids.repeat(len(r.scored), 1)  # (n, T): one masked copy per scored token
            rows = torch.arange(len(r.scored), device=device)
            pos = torch.tensor(r.scored, device=device)
            copies[rows, pos] = mask_id
            logp = torch.log_softmax(model(copies).logits.float(), -1)  # (n, T, V)
            read = pos - 1 if backend == "mntp" else pos
            out[k] = float(logp[rows, read, ids[pos]].sum())
    return out


def margins(data_list, scores: np.ndarray) -> np.ndarray:
    """Per item: score of the first (correct) candidate minus the best other one (> 0: counted correct)."""
    out, pos = [], 0
    for data in data_list:
        for it in data.items:
            cand = scores[pos: pos + len(it.candidates)]
            pos += len(it.candidates)
            out.append(cand[0] - np.max(cand[1:]))
    return np.asarray(out)


def accuracy(data_list, scores: np.ndarray) -> float:
    return float(np.mean(margins(data_list, scores) >= 0))


# Two float32 implementations that sum the same log-probabilities in a different order agree to
# about 1e-5 nats per sentence, so an item whose two candidates are closer than that can be decided
# differently by each; any other disagreement is a bug.
NEAR_TIE = 1e-4


def run(backend: str, args) -> None:
    root = Path(args.eval_data)
    data_list = load_tasks(args.tasks.split(","), args.eval_set, root, args.limit)
    if args.against == "plain" and backend != "causal":
        raise SystemExit("--against plain compares the causal paths; use --backend causal")
    if args.model:
        from eval_export.loading import load_model

        loaded = load_model(args.model, backend=backend, device=args.device, dtype=args.dtype)
        model, tok = loaded.model, loaded.tokenizer
    elif args.kit_model and backend == "causal":
        model, tok = kit_model(root, args.hidden, args.layers, args.vocab, args.corpus)
        model.to(device=args.device, dtype=getattr(torch, args.dtype))
    else:
        model, tok = tiny_model(backend, root, args.hidden, args.layers, args.vocab, args.corpus, args.model_vocab)
        model.to(device=args.device, dtype=getattr(torch, args.dtype))
    n_sent = sum(len(it.candidates) for d in data_list for it in d.items)
    opts = zero_shot.ScoringOptions(token_budget=args.token_budget)
    # warm-up (CUDA context, kernel selection) outside the timed region
    warm = zero_shot.prepare_requests(tok, backend, data_list[0], opts)[:16]
    scoring.score_requests(model, warm, backend, pad_id=scoring.pad_id_of(tok), mask_id=tok.mask_token_id)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    ours, used, plain = [], 0, 0
    for data in data_list:
        requests = zero_shot.prepare_requests(tok, backend, data, opts)
        scores = scoring.score_requests(model, requests, backend, scoring.ScoringOptions(token_budget=args.token_budget),
                                        pad_id=scoring.pad_id_of(tok), mask_id=tok.mask_token_id)
        ours.append(scores.logprob)
        used, plain = used + scores.model_tokens, plain + scores.plain_tokens
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t_ours, c_ours = time.perf_counter() - t0, time.process_time() - c0
    ours_all = np.concatenate(ours)
    names = ",".join(d.name for d in data_list)
    subset = "all" if not args.limit else f"first {args.limit} items/subtask"
    line = (f"{backend:<6} {names} ({args.eval_set}): {n_sent} sentences ({subset}), "
            f"model {type(model).__name__} {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params "
            f"(vocabulary {len(tok)}) on {args.device}, {torch.get_num_threads()} threads\n"
            f"  ours: {t_ours:.2f} s (cpu {c_ours:.2f} s) = {n_sent / t_ours:.0f} sent/s, "
            f"accuracy {100 * accuracy(data_list, ours_all):.2f}%")
    if plain:
        line += f"; model tokens {used:,} of the plain path's {plain:,} ({plain / max(used, 1):.2f}x fewer)"
    print(line, flush=True)
    if args.skip_baseline:
        return
    t0, c0 = time.perf_counter(), time.process_time()
    base = []
    for data in data_list:
        requests = zero_shot.prepare_requests(tok, backend, data, opts)
        if args.against == "plain":
            base.append(scoring.score_requests(model, requests, backend,
                                               scoring.ScoringOptions(token_budget=args.token_budget, prefix_sharing=False),
                                               pad_id=scoring.pad_id_of(tok)).logprob)
        else:
            base.append(straightforward(model, requests, backend, tok.mask_token_id))
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t_base, c_base = time.perf_counter() - t0, time.process_time() - c0
    base_all = np.concatenate(base)
    acc_o, acc_b = accuracy(data_list, ours_all), accuracy(data_list, base_all)
    m_o, m_b = margins(data_list, ours_all), margins(data_list, base_all)
    flips = (m_o >= 0) != (m_b >= 0)
    real = flips & ((np.abs(m_o) > NEAR_TIE) | (np.abs(m_b) > NEAR_TIE))
    print(f"  {args.against}: {t_base:.2f} s (cpu {c_base:.2f} s) = {n_sent / t_base:.0f} sent/s, "
          f"accuracy {100 * acc_b:.2f}%\n"
          f"  speed-up {t_base / t_ours:.2f}x (cpu time {c_base / c_ours:.2f}x); "
          f"max |score difference| {np.abs(ours_all - base_all).max():.2e}; "
          f"accuracies {'EQUAL' if acc_o == acc_b else 'DIFFER'}; items decided differently: {int(flips.sum())} "
          f"(near ties, both margins within {NEAR_TIE:g} nats: {int((flips & ~real).sum())}; others: {int(real.sum())})",
          flush=True)
    if real.any():
        sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("causal", "mlm", "mntp", "both"), default="both")
    ap.add_argument("--eval_data", default=os.environ.get("BABYLM_EVAL_DATA", "evaluation_data"),
                    help="the official evaluation_data folder (default: $BABYLM_EVAL_DATA)")
    ap.add_argument("--limit", type=int, default=0, help="first N items per subtask (0: the whole sets)")
    ap.add_argument("--tasks", default="blimp,blimp_supplement",
                    help="comma list: blimp, blimp_supplement, entity_tracking, ewok (needs the plain ewok folder), "
                         "ewok_like (EWoK-format items made of BLiMP pairs; EWoK itself is encrypted)")
    ap.add_argument("--eval_set", default="full", choices=("full", "fast"))
    ap.add_argument("--against", default="straightforward", choices=("straightforward", "plain"),
                    help="baseline: the per-sentence scorer, or the kit's causal path without shared prefixes")
    ap.add_argument("--kit_model", action="store_true", help="causal: the kit's own GPT-2 and BPE tokenizer "
                    "(babylm.models / babylm.tokenizer, --layers x --hidden) instead of the bench's GPT2Config")
    ap.add_argument("--model", default="", help="a checkpoint instead of the tiny seeded model")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=16384)
    ap.add_argument("--corpus", default=os.environ.get("BABYLM_DATA", ""),
                    help="text folder to train the tokenizer on, e.g. the official train_10M ('' : BLiMP sentences; "
                         "default: $BABYLM_DATA)")
    ap.add_argument("--model_vocab", type=int, default=0, help="embedding rows of the model (>= the tokenizer's; "
                    "e.g. 50257 for GPT-2 size heads)")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                    help="weight dtype (log-softmax stays float32)")
    ap.add_argument("--token_budget", type=int, default=2048, help="our scorer's padded tokens per forward (GPU: raise it)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--skip_baseline", action="store_true", help="time only our scorer (GPU runs)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for backend in (("causal", "mlm") if args.backend == "both" else (args.backend,)):
        run(backend, args)


if __name__ == "__main__":
    main()
