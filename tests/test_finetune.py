"""Fine-tuning on the BabyLM GLUE tasks: data, metrics, pooling, heads, the CLI and its output files.

Models are tiny (2 layers, hidden 32) and built in-process from plain transformers configs with a
BPE tokenizer trained here on RTE text; nothing is downloaded.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from eval_export import glue
from tests.conftest import run_cli

WORDS = ("the cat sat on a mat while my dog ran far away from home and we saw birds fly over "
         "green hills near old towns where people sing songs at night").split()


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: tiny models gain nothing from more, and on a busy 2-core machine two
    OpenMP threads spin against other processes (measured: 0.86 s vs 0.024 s per step)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def glue_dir(shared) -> Path:
    return shared / "data" / "eval" / "glue_filtered"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory, glue_dir) -> Path:
    """A BPE tokenizer (vocab 600) with BERT-style pair template, trained on RTE sentences + WORDS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [" ".join(WORDS)] * 20
    with (glue_dir / "rte.train.jsonl").open() as fh:
        for line, _ in zip(fh, range(800)):
            row = json.loads(line)
            texts += [row["sentence1"], row["sentence2"]]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=600, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", eos_token="[SEP]", bos_token="[CLS]")
    out = tmp_path_factory.mktemp("tokenizer")
    fast.save_pretrained(out)
    return out


def _save_model(kind: str, tokenizer_dir: Path, out: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    if kind == "gpt2":
        config = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                            bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id)
        model = GPT2LMHeadModel(config)
    else:
        config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.pad_token_id)
        model = BertForMaskedLM(config)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory, tokenizer_dir) -> Path:
    return _save_model("gpt2", tokenizer_dir, tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory, tokenizer_dir) -> Path:
    return _save_model("bert", tokenizer_dir, tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def gpt_bert_dir(tmp_path_factory, tokenizer_dir) -> Path:
    """A tiny GPT-BERT saved as training saves it (masked LM class, its code file, auto_map)."""
    from transformers import AutoTokenizer

    from babylm import checkpoint, models

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    shape = models.resolve_shape("tiny", hidden=32, heads=2, positions=128, arch="gpt-bert")
    model = models.build_model("gpt-bert", shape, tok, seed=0)
    out = tmp_path_factory.mktemp("tiny-gpt-bert")
    checkpoint.save_model(out, model, tok, {})
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _separable_rows(n: int, seed: int) -> list[dict]:
    """RTE-shaped rows whose label is 1 exactly when sentence2 contains the word 'zebra'."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = rng.choices(WORDS, k=rng.randint(4, 10))
        label = i % 2
        if label:
            words.insert(rng.randint(0, len(words)), "zebra")
        rows.append({"sentence1": " ".join(rng.choices(WORDS, k=rng.randint(3, 8))),
                     "sentence2": " ".join(words), "label": label, "idx": i})
    return rows


@pytest.fixture(scope="module")
def separable_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("separable")
    _write_jsonl(out / "rte.train.jsonl", _separable_rows(256, seed=1))
    _write_jsonl(out / "rte.valid.jsonl", _separable_rows(64, seed=2))
    return out


def _cfg(**kw):
    from babylm.config import build
    from eval_export.finetune import FinetuneConfig

    return build(FinetuneConfig, {"progress": False, **kw}, command="finetune")


# ----------------------------------------------------------------------------- tasks, data, metrics


def test_task_table_matches_official_settings():
    t = glue.TASKS
    assert {n: x.num_labels for n, x in t.items()} == {"boolq": 2, "mnli": 3, "mrpc": 2, "multirc": 2, "qqp": 2,
                                                     "rte": 2, "wsc": 2}
    assert {n for n, x in t.items() if x.batch_size == 16} == {"boolq", "multirc"}
    assert {n: x.epochs for n, x in t.items() if x.epochs != 10} == {"wsc": 30}
    assert {n for n, x in t.items() if x.best_metric == "f1"} == {"mrpc", "qqp"}
    assert {n for n, x in t.items() if x.subsample} == {"mnli", "qqp"}


def test_templates_on_official_rows(glue_dir):
    multirc = json.loads((glue_dir / "multirc.valid.jsonl").open().readline())
    first, second = glue.TASKS["multirc"].pair(multirc)
    assert first == f"Question: {multirc['question']} Answer: {multirc['answer']}" and second == multirc["paragraph"]
    wsc = json.loads((glue_dir / "wsc.valid.jsonl").open().readline())
    assert glue.TASKS["wsc"].pair(wsc) == ('Does "he" refer to "Joe" in this passage?', wsc["text"])
    boolq = json.loads((glue_dir / "boolq.valid.jsonl").open().readline())
    assert glue.TASKS["boolq"].pair(boolq) == (boolq["question"], boolq["passage"])


def test_official_subsample_reproduces_shared_training_files(glue_dir):
    # The OSF files are random.Random(42).sample of the full GLUE training sets (392,702 / 363,846 rows).
    for task, full in (("mnli", 392_702), ("qqp", 363_846)):
        idx = [json.loads(line)["idx"] for line in (glue_dir / f"{task}.train.jsonl").open()]
        assert glue.official_subsample(full) == idx
        assert glue.official_subsample(len(idx)) == list(range(10_000))  # already subsampled: kept whole


def test_metrics_against_hand_computed_values():
    labels = [1, 1, 1, 0, 0, 0, 0, 1]
    preds = [1, 1, 0, 0, 0, 1, 0, 0]
    # TP=2 FN=2 FP=1 TN=3: acc 5/8, F1 = 2*2/(2*2+1+2) = 4/7, MCC = (2*3-1*2)/sqrt(3*4*5*4) = 4/sqrt(240)
    assert glue.accuracy(labels, preds) == pytest.approx(5 / 8)
    assert glue.f1(labels, preds) == pytest.approx(4 / 7)
    assert glue.mcc(labels, preds) == pytest.approx(4 / 240 ** 0.5)
    # Degenerate cases as scikit-learn: no positive predictions and no positives -> F1 0; constant -> MCC 0.
    assert glue.f1([0, 0], [0, 0]) == 0.0 and glue.mcc([0, 1, 1], [1, 1, 1]) == 0.0
    assert glue.mcc([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)
    # 3 classes: confusion rows (true) [[2,1,0],[0,1,1],[1,0,2]], n=8, correct 5,
    # actual (3,2,3), predicted (3,2,3): MCC = (5*8 - (9+4+9)) / (64 - 22) = 18/42
    y = [0, 0, 0, 1, 1, 2, 2, 2]
    p = [0, 0, 1, 1, 2, 0, 2, 2]
    assert glue.accuracy(y, p) == pytest.approx(5 / 8)
    assert glue.mcc(y, p, 3) == pytest.approx(18 / 42)
    # macro F1: class0 2*2/(3+3)=2/3, class1 2*1/(2+2)=1/2, class2 2*2/(3+3)=2/3
    assert glue.f1(y, p, 3) == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)


def test_lr_schedule_warmup_then_cosine_to_tenth():
    from eval_export.classifier import lr_factor

    assert lr_factor(0, 6, 100, 0.1) == 0.0
    assert lr_factor(3, 6, 100, 0.1) == pytest.approx(0.5)
    assert lr_factor(6, 6, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(53, 6, 100, 0.1) == pytest.approx(0.55)  # half-way through the decay: (1 + 0.1) / 2
    assert lr_factor(100, 6, 100, 0.1) == pytest.approx(0.1)


# ----------------------------------------------------------------------------- pooling and heads


def test_pool_positions_either_padding_side():
    import torch

    from eval_export.classifier import pool_positions

    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    left = right.flip(1)
    assert pool_positions(right, "first").tolist() == [0, 0, 0]
    assert pool_positions(right, "last").tolist() == [2, 4, 0]
    assert pool_positions(left, "first").tolist() == [2, 0, 4]
    assert pool_positions(left, "last").tolist() == [4, 4, 4]


def _classifier(model_dir: Path, padding_side: str, head: str = "official", pooling: str = "auto",
                official: bool = False, num_labels: int = 2):
    import torch

    from eval_export import classifier as clf

    backbone = clf.load_backbone(str(model_dir), "main", padding_side, 128)
    torch.manual_seed(0)
    return backbone, clf.build_classifier(backbone, num_labels, head, pooling, 0.1, official)


def test_decoder_left_and_right_padding_agree(gpt2_dir, separable_dir):
    import torch

    from eval_export import classifier as clf

    train = glue.read_examples(separable_dir / "rte.train.jsonl", glue.TASKS["rte"])
    valid = glue.read_examples(separable_dir / "rte.valid.jsonl", glue.TASKS["rte"])
    results = {}
    for side in ("right", "left"):
        backbone, model = _classifier(gpt2_dir, side)
        assert backbone.decoder and model.pooling == "last"
        for module in model.modules():  # dropout masks follow positions, which the padding side moves
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        tok = backbone.tokenizer
        enc = clf.encode_pairs(tok, valid.pairs[:16], 64)
        assert len({len(e["input_ids"]) for e in enc}) > 3  # varied lengths, so padding really differs
        batch = clf.collate(enc, tok.pad_token_id, left=side == "left")
        model.eval()
        with torch.no_grad():
            pooled, logits = model.pooled(batch), model(batch)
        settings = clf.TrainSettings(epochs=1, batch_size=16, lr=1e-3, progress=False)
        fit = clf.fit(model, clf.encode_pairs(tok, train.pairs, 64), train.labels, clf.encode_pairs(tok, valid.pairs, 64),
                      valid.labels, tok.pad_token_id, side == "left", settings)
        results[side] = (pooled, logits, fit.predictions, fit.history[0]["train_loss"])
    (p_r, l_r, pred_r, loss_r), (p_l, l_l, pred_l, loss_l) = results["right"], results["left"]
    torch.testing.assert_close(p_l, p_r, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(l_l, l_r, atol=1e-5, rtol=1e-4)
    assert pred_l == pred_r and loss_l == pytest.approx(loss_r, rel=1e-4)


def test_official_first_token_pooling_blinds_a_decoder(gpt2_dir, separable_dir):
    """Why --official is not the default for decoders: position 0 of a causal model sees only [CLS]."""
    import torch

    from eval_export import classifier as clf

    valid = glue.read_examples(separable_dir / "rte.valid.jsonl", glue.TASKS["rte"])
    for official, expect_constant in ((True, True), (False, False)):
        backbone, model = _classifier(gpt2_dir, "right", official=official)
        batch = clf.collate(clf.encode_pairs(backbone.tokenizer, valid.pairs[:8], 64), backbone.tokenizer.pad_token_id,
                            left=False)
        model.eval()
        with torch.no_grad():
            pooled = model.pooled(batch)
        spread = (pooled - pooled[0]).abs().max().item()
        assert (spread < 1e-6) == expect_constant, spread


@pytest.mark.parametrize("year,scale", [("2026", 1.0), ("2025", 2.0)])
def test_gradient_accumulation_divides_the_loss_by_year(year, scale, bert_dir, separable_dir):
    """Two micro-batches of 8 give the gradient of one batch of 16 under the 2026 rules (the loss divided
    by the accumulation steps, babylm-eval 02b56cb), twice it under the 2025 rules."""
    import torch

    from eval_export import classifier as clf

    valid = glue.read_examples(separable_dir / "rte.valid.jsonl", glue.TASKS["rte"])
    backbone, model = _classifier(bert_dir, "right")
    model.eval()  # no dropout: the same forward pass both ways
    tok = backbone.tokenizer
    enc = clf.encode_pairs(tok, valid.pairs[:16], 64)
    labels = torch.tensor(valid.labels[:16])

    def grads(parts):
        model.zero_grad()
        settings = clf.TrainSettings(grad_accum=len(parts), divide_loss=year == "2026", progress=False)
        loss = clf.backward_batch(model, [(clf.collate([enc[i] for i in p], tok.pad_token_id, False), labels[p])
                                          for p in parts], settings)
        return loss, [q.grad.clone() for q in model.parameters() if q.grad is not None]

    loss_full, full = grads([list(range(16))])
    loss_split, split = grads([list(range(8)), list(range(8, 16))])
    assert loss_split == pytest.approx(loss_full, rel=1e-5)
    for g_full, g_split in zip(full, split):
        torch.testing.assert_close(g_split, scale * g_full, rtol=1e-4, atol=1e-6)


def test_padding_and_pooling_follow_the_year(gpt2_dir, bert_dir, separable_dir, tmp_path):
    """2026: a decoder read at its last token is padded on the left (eval_finetuning.sh @ 3d57ddc), --official
    reads the last position of every model; 2025: right padding, --official reads position 0."""
    import torch

    from babylm.errors import UsageError
    from eval_export import classifier as clf
    from eval_export.finetune import _backbone

    assert _backbone(_cfg(model=str(gpt2_dir)), clf).tokenizer.padding_side == "left"
    assert _backbone(_cfg(model=str(bert_dir)), clf).tokenizer.padding_side == "right"
    assert _backbone(_cfg(model=str(gpt2_dir), year="2025"), clf).tokenizer.padding_side == "right"
    assert _backbone(_cfg(model=str(bert_dir), official=True), clf).tokenizer.padding_side == "left"
    with pytest.raises(UsageError, match=r"--official \(--year 2026\) fixes .*--padding_side left"):
        _cfg(model=str(gpt2_dir), official=True, padding_side="right")
    with pytest.raises(UsageError, match="must divide the batch size"):
        _cfg(model=str(gpt2_dir), gradient_accumulation=3)
    # the official 2026 head reads the last position: with left padding every row's last token, so a decoder
    # sees each whole input (at position 0 it saw the first token alone: test above)
    valid = glue.read_examples(separable_dir / "rte.valid.jsonl", glue.TASKS["rte"])
    backbone, model = _classifier(gpt2_dir, "left", pooling="final", official=True)
    enc = clf.encode_pairs(backbone.tokenizer, valid.pairs[:8], 64)
    batch = clf.collate(enc, backbone.tokenizer.pad_token_id, left=True)
    model.eval()
    with torch.no_grad():
        pooled, states = model.pooled(batch), model.hidden_states(batch)
    torch.testing.assert_close(pooled, states[:, -1])
    assert (pooled - pooled[0]).abs().max().item() > 1e-4
    assert "position_ids" not in clf._model_inputs(model.backbone, batch, True, official=True)  # as the official code


@pytest.mark.parametrize("model_kind,head", [("bert", "official"), ("bert", "stock"), ("gpt2", "stock")])
def test_heads_train_and_learn_a_separable_task(model_kind, head, bert_dir, gpt2_dir, separable_dir):
    """Label = 'zebra' in sentence2: loss falls and validation accuracy gets near perfect."""
    from eval_export import classifier as clf

    train = glue.read_examples(separable_dir / "rte.train.jsonl", glue.TASKS["rte"])
    valid = glue.read_examples(separable_dir / "rte.valid.jsonl", glue.TASKS["rte"])
    backbone, model = _classifier(bert_dir if model_kind == "bert" else gpt2_dir, "right", head=head)
    tok, seg = backbone.tokenizer, backbone.segments
    settings = clf.TrainSettings(epochs=4, batch_size=16, lr=5e-3, progress=False)
    fit = clf.fit(model, clf.encode_pairs(tok, train.pairs, 64, seg), train.labels,
                  clf.encode_pairs(tok, valid.pairs, 64, seg), valid.labels, tok.pad_token_id, False, settings)
    losses = [h["train_loss"] for h in fit.history]
    assert losses[-1] < 0.5 * losses[0], losses
    assert fit.metrics["accuracy"] >= 0.95, fit.history


def test_decoder_official_head_learns_through_cli(gpt2_dir, separable_dir, tmp_path):
    """The default (last-token pooling) makes a GPT-2 learn; the whole command path in one process."""
    from eval_export.finetune import run_finetune

    cfg = _cfg(model=str(gpt2_dir), tasks="rte", data_dir=str(separable_dir), output_dir=str(tmp_path),
               epochs=4, batch_size=16, lr=5e-3, max_length=64)
    summary = run_finetune(cfg)
    assert summary["rte"]["metrics"]["accuracy"] >= 0.95, summary["rte"]["history"]
    assert summary["rte"]["pooling"] == "last"


def test_gpt_bert_fine_tunes_through_cli_on_its_first_token(gpt_bert_dir, separable_dir, tmp_path):
    """GPT-BERT is fine-tuned as it was trained on most steps: bidirectional, the official head on the first token
    (the published fine-tuning reads position 0 too); loaded with the kit's own classes, no remote code."""
    from eval_export.finetune import run_finetune

    cfg = _cfg(model=str(gpt_bert_dir), tasks="rte", data_dir=str(separable_dir), output_dir=str(tmp_path),
               epochs=4, batch_size=16, lr=5e-3, max_length=64)
    summary = run_finetune(cfg)
    assert summary["rte"]["pooling"] == "first"
    assert summary["rte"]["metrics"]["accuracy"] >= 0.95, summary["rte"]["history"]


def test_segment_ids_only_for_models_with_segment_embeddings(bert_dir, gpt2_dir, separable_dir):
    from eval_export import classifier as clf

    valid = glue.read_examples(separable_dir / "rte.valid.jsonl", glue.TASKS["rte"])
    for model_dir, expect in ((bert_dir, True), (gpt2_dir, False)):
        backbone, model = _classifier(model_dir, "right")
        assert backbone.segments == expect
        batch = clf.collate(clf.encode_pairs(backbone.tokenizer, valid.pairs[:4], 64, segments=True), 0, left=False)
        assert batch["token_type_ids"].max().item() == 1  # the pair template marks the second text
        assert ("token_type_ids" in clf._model_inputs(model.backbone, batch, False)) == expect
        assert "token_type_ids" not in clf._model_inputs(model.backbone, batch, False, official=True)


def test_bf16_autocast_trains_and_predicts(bert_dir, separable_dir):
    """The GPU path (bf16 autocast, float32 loss and logits), exercised with CPU autocast."""
    import math

    from eval_export import classifier as clf

    train = glue.read_examples(separable_dir / "rte.train.jsonl", glue.TASKS["rte"])
    valid = glue.read_examples(separable_dir / "rte.valid.jsonl", glue.TASKS["rte"])
    backbone, model = _classifier(bert_dir, "right")
    tok = backbone.tokenizer
    settings = clf.TrainSettings(epochs=1, batch_size=16, lr=5e-3, bf16=True, progress=False)
    fit = clf.fit(model, clf.encode_pairs(tok, train.pairs[:64], 64), train.labels[:64],
                  clf.encode_pairs(tok, valid.pairs, 64), valid.labels, tok.pad_token_id, False, settings)
    assert math.isfinite(fit.history[0]["train_loss"]) and len(fit.predictions) == len(valid)
    assert set(fit.predictions) <= {0, 1}


# ----------------------------------------------------------------------------- command and files


def test_cli_rte_subset_writes_official_predictions(bert_dir, glue_dir, tmp_path):
    args = ["finetune", "--model", bert_dir, "--tasks", "rte", "--data_dir", glue_dir, "--output_dir", tmp_path,
            "--model_name", "tiny", "--max_train_examples", "256", "--epochs", "2", "--max_length", "64",
            "--progress", "false"]
    proc = run_cli("eval_export", *args, timeout=300, env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "tiny" / "main" / "finetune" / "rte"
    text = (out / "predictions.json").read_text()
    obj = json.loads(text)
    assert text == json.dumps(obj)  # Python json.dump defaults, no trailing newline
    preds = obj["rte"]["predictions"]
    n_valid = sum(1 for _ in (glue_dir / "rte.valid.jsonl").open())
    assert list(obj) == ["rte"] and len(preds) == n_valid == 139
    assert [p["id"] for p in preds] == [f"rte_{i}" for i in range(n_valid)]
    assert all(type(p["pred"]) is int and p["pred"] in (0, 1) for p in preds)
    results = json.loads((out / "results.json").read_text())
    labels = [json.loads(line)["label"] for line in (glue_dir / "rte.valid.jsonl").open()]
    assert results["metrics"]["accuracy"] == pytest.approx(glue.accuracy(labels, [p["pred"] for p in preds]))
    assert results["n_train"] == 256 and len(results["history"]) == 2
    assert (out / "results.txt").read_text().startswith("accuracy: ")
    assert sorted(p.name for p in out.parent.iterdir()) == ["rte"]  # no temporary folder left behind
    # A finished task is skipped (no re-training) unless --overwrite.
    again = run_cli("eval_export", *args, timeout=120, env=ONE_THREAD)
    assert again.returncode == 0 and "done already" in again.stderr
    assert (out / "predictions.json").read_text() == text


def test_interrupted_task_leaves_nothing_and_reruns(bert_dir, separable_dir, tmp_path):
    from eval_export.finetune import run_finetune, task_dir

    cfg = _cfg(model=str(bert_dir), tasks="rte", data_dir=str(separable_dir), output_dir=str(tmp_path),
               epochs=2, batch_size=32, max_length=64)

    def interrupt(message: str) -> None:
        if "epoch 1:" in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_finetune(cfg, log=interrupt)
    out = task_dir(cfg, "rte")
    assert not out.exists() and not list(out.parent.glob(".tmp-*"))
    (out.parent / ".tmp-rte-stale").mkdir(parents=True)  # as a SIGKILL would leave it
    summary = run_finetune(cfg)
    assert (out / "predictions.json").is_file() and summary["rte"]["best_epoch"] in (1, 2)
    assert not list(out.parent.glob(".tmp-*"))


def _bad_data(tmp_path: Path, glue_dir: Path, broken_line: str) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    lines = (glue_dir / "rte.train.jsonl").read_text().splitlines(keepends=True)[:5]
    lines[2] = broken_line + "\n"
    (data / "rte.train.jsonl").write_text("".join(lines))
    (data / "rte.valid.jsonl").write_text((glue_dir / "rte.valid.jsonl").read_text())
    return data


@pytest.mark.parametrize("case", ["unknown_task", "missing_train", "label_range", "bad_json", "missing_model"])
def test_cli_bad_inputs_fail_in_one_line(case, glue_dir, tmp_path):
    out = tmp_path / "results"
    model, tasks, data = str(tmp_path), "rte", glue_dir  # model: an existing folder, never reached
    if case == "unknown_task":
        tasks, expect, code = "rte,cola", ["--tasks", "'cola'"], 2
    elif case == "missing_train":
        tasks, expect, code = "rte,boolq", ["boolq.train.jsonl", "osf.io/ryjfm"], 1
    elif case == "label_range":
        data = _bad_data(tmp_path, glue_dir, '{"sentence1": "a", "sentence2": "b", "label": 2, "idx": 2}')
        expect, code = ["rte.train.jsonl:3", "label 2 out of range"], 1
    elif case == "bad_json":
        data = _bad_data(tmp_path, glue_dir, '{"sentence1": "a", "sentence2": ')
        expect, code = ["rte.train.jsonl:3", "not valid JSON"], 1
    else:
        model, expect, code = str(tmp_path / "no-model"), ["--model", "no such folder"], 1
    proc = run_cli("eval_export", "finetune", "--model", model, "--tasks", tasks, "--data_dir", data,
                   "--output_dir", out, timeout=120, env=ONE_THREAD)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert all(e in lines[0] for e in expect), lines[0]
    assert not out.exists()
