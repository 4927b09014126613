"""finetune never reports another model's or other options' results, names a run's final model by the run,
refuses a second run into the same output while one is running, and refuses a model that is not a text
model before it trains. Tiny BERTs (hidden 16) on 48 made-up RTE rows: each run is a second or two."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from babylm.errors import InputError, UsageError
from babylm.files import FolderLock
from tests.train_fixtures import SUBJECTS, make_tokenizer


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [{"sentence1": rng.choice(SUBJECTS), "sentence2": rng.choice(SUBJECTS) + (" sees" if i % 2 else ""),
             "label": i % 2, "idx": i} for i in range(n)]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("glue")
    for split, (n, seed) in {"train": (48, 1), "valid": (16, 2)}.items():
        (out / f"rte.{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows(n, seed)))
    return out


def _bert(folder: Path, seed: int) -> Path:
    import torch
    from transformers import BertConfig, BertForMaskedLM

    tok = make_tokenizer(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, pad_token_id=tok.pad_token_id)
    BertForMaskedLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"a": _bert(root / "a" / "model", 1), "b": _bert(root / "b" / "model", 2),
            "run_final": _bert(root / "runs" / "r1" / "final", 3)}


def _cfg(model: Path, data: Path, out: Path, **kw):
    from babylm.config import build
    from eval_export.finetune import FinetuneConfig

    return build(FinetuneConfig, {"model": str(model), "tasks": "rte", "data_dir": str(data), "output_dir": str(out),
                                  "epochs": 1, "batch_size": 16, "max_length": 32, "progress": False, **kw},
                 command="finetune")


def test_another_model_into_the_same_folder_is_refused(models, data, tmp_path):
    from eval_export.finetune import run_finetune

    first = run_finetune(_cfg(models["a"], data, tmp_path, model_name="m"))["rte"]
    with pytest.raises(UsageError, match=r"rte: .*made from another model .*--overwrite true") as err:
        run_finetune(_cfg(models["b"], data, tmp_path, model_name="m"))
    assert "\n" not in str(err.value) and str(models["b"]) in str(err.value)
    # the same path retrained (other weights): refused too
    _bert(models["a"], 4)
    with pytest.raises(UsageError, match=r"other weights"):
        run_finetune(_cfg(models["a"], data, tmp_path, model_name="m"))
    # --overwrite true fine-tunes it again; the stored results are the new model's
    again = run_finetune(_cfg(models["a"], data, tmp_path, model_name="m", overwrite=True))["rte"]
    assert again["run"]["weights"] != first["run"]["weights"]
    stored = json.loads((tmp_path / "m" / "main" / "finetune" / "rte" / "results.json").read_text())
    assert stored["run"]["weights"] == again["run"]["weights"]


@pytest.mark.parametrize("option,value", [("lr", 1e-4), ("epochs", 2), ("max_train_examples", 32)])
def test_changed_options_are_refused(option, value, models, data, tmp_path):
    from eval_export.finetune import run_finetune

    run_finetune(_cfg(models["a"], data, tmp_path))
    with pytest.raises(UsageError, match=rf"rte: .*made with --{option} .*not {value}.*--overwrite true"):
        run_finetune(_cfg(models["a"], data, tmp_path, **{option: value}))
    assert run_finetune(_cfg(models["a"], data, tmp_path))["rte"]["run"]["lr"] == 3e-5  # same options: reused


def test_a_runs_final_model_is_named_by_the_run(models, data, tmp_path):
    from eval_export.finetune import run_finetune, task_dir

    cfg = _cfg(models["run_final"], data, tmp_path)
    run_finetune(cfg)
    assert task_dir(cfg, "rte") == tmp_path / "r1" / "main" / "finetune" / "rte"
    assert (tmp_path / "r1" / "main" / "finetune" / "rte" / "predictions.json").is_file()
    assert not (tmp_path / "final").exists()


def test_a_second_finetune_into_a_held_output_is_refused(models, data, tmp_path):
    from eval_export.finetune import run_finetune

    with FolderLock(tmp_path / "m" / "main" / "finetune"):  # as a running finetune holds it
        with pytest.raises(InputError, match=r"finetune is in use by process \d+"):
            run_finetune(_cfg(models["a"], data, tmp_path, model_name="m"))
    assert not (tmp_path / "m" / "main" / "finetune" / "rte").exists()


def test_a_vision_model_is_refused_before_training(data, tmp_path):
    from transformers import ViTConfig

    folder = tmp_path / "vit"  # the check reads the config before any weights are loaded
    config = ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    config.architectures = ["ViTModel"]
    config.save_pretrained(folder)
    make_tokenizer(folder)  # a tokenizer beside it does not make it a text model
    from eval_export.finetune import run_finetune

    said: list[str] = []
    with pytest.raises(InputError, match=r"--model .*vit: not a text model \(model_type 'vit'") as err:
        run_finetune(_cfg(folder, data, tmp_path / "out"), log=said.append)
    assert "\n" not in str(err.value) and said == []  # nothing trained, nothing said
    assert not (tmp_path / "out").exists()
