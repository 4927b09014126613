"""Proof that the pipeline learns: a small GPT-2 trained on the embedded synthetic corpus prefers
the grammatical sentence of the corpus's own minimal pairs far above chance.

The pairs are scored here with a plain sum of token log-probabilities given the BOS token (the
official causal rule), independent of eval_export.
"""

from __future__ import annotations

import json

import pytest
import torch


def _sentence_logprob(model, tok, text: str) -> float:
    ids = torch.tensor([tok(text)["input_ids"]])  # (1, T), starts with <s>
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits.float(), dim=-1)  # (1, T, V)
    return float(logp[0, :-1].gather(-1, ids[0, 1:, None]).sum())  # every sentence token given its prefix


@pytest.mark.slow
def test_small_gpt_learns_embedded_minimal_pairs(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from babylm.commands import run_training
    from babylm.run import TrainConfig
    from babylm.synthetic import embedded_corpus_dir
    from babylm.tokenizer import TokenizerConfig, train_tokenizer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_tokenizer(TokenizerConfig(out_dir=str(tmp_path / "tok"), vocab_size=400))
        cfg = TrainConfig(tokenizer=str(tmp_path / "tok"), arch="gpt2", layers=2, hidden=64, heads=2, block_size=64,
                          batch_size=16, words=200_000, lr=5e-3, warmup_steps=20, dropout=0.0, val_fraction=0.01,
                          milestones=False, save_every=0, log_every=50, save_dir=str(tmp_path), run_name="proof",
                          device="cpu", progress=False, tensorboard=False)
        run_dir = run_training(cfg)
    finally:
        torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(run_dir / "final").eval()
    tok = AutoTokenizer.from_pretrained(run_dir / "final")
    right = total = 0
    per_task = {}
    for path in sorted((embedded_corpus_dir() / "blimp").glob("*.jsonl")):
        hits = [_sentence_logprob(model, tok, p["sentence_good"]) > _sentence_logprob(model, tok, p["sentence_bad"])
                for p in map(json.loads, path.read_text().splitlines()[:60])]
        per_task[path.stem] = sum(hits) / len(hits)
        right, total = right + sum(hits), total + len(hits)
    assert total >= 200
    assert right / total > 0.8, f"accuracy {right / total:.2f} on {total} synthetic minimal pairs: {per_task}"
