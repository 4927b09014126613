"""Checkpoints load and give identical logits under the official pipeline's versions.

The 2025/2026 evaluation pipeline pins transformers 4.51.3 and tokenizers 0.21.1. A second,
cached package folder with those versions (``.venv-official/``, installed from PyPI on first
use) is put first on PYTHONPATH of a fresh interpreter, so torch comes from the main venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
import torch

from babylm import checkpoint, models
from tests.conftest import REPO

OFFICIAL = {"transformers": "4.51.3", "tokenizers": "0.21.1"}
TARGET = REPO / ".venv-official" / f"transformers-{OFFICIAL['transformers']}"
TEXT = "The cats with the dog see themselves."


def official_dir():
    """The cached package folder, installed with pip --target on first use (atomic rename)."""
    if (TARGET / ".complete").is_file():
        return TARGET
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-official-", dir=TARGET.parent)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", tmp,
           f"transformers=={OFFICIAL['transformers']}", f"tokenizers=={OFFICIAL['tokenizers']}", "huggingface-hub<1.0",
           "requests"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(f"could not install the official versions: {res.stderr[-1500:]}")
    # torch and numpy must come from the main venv (same build as the checkpoints were made with).
    for name in os.listdir(tmp):
        if name.startswith(("torch", "numpy")):
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
    open(os.path.join(tmp, ".complete"), "w").close()
    try:
        os.replace(tmp, TARGET)
    except OSError:  # another run finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return TARGET


_CHECK = """
import json, sys, torch, transformers, tokenizers
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer
print(json.dumps({"transformers": transformers.__version__, "tokenizers": tokenizers.__version__}))
for folder, kind in zip(sys.argv[2::2], sys.argv[3::2]):
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok(sys.argv[1], return_tensors="pt")["input_ids"]
    auto = AutoModelForCausalLM if kind == "causal" else AutoModelForMaskedLM
    model = auto.from_pretrained(folder).eval()
    AutoModel.from_pretrained(folder)
    with torch.no_grad():
        torch.save({"ids": ids, "logits": model(ids).logits, "mask": tok.mask_token_id, "pad": tok.pad_token_id},
                   folder + "/official.pt")
"""


@pytest.mark.slow
def test_checkpoints_load_under_official_versions(tmp_path):
    from babylm.tokenizer import train_tokenizer_from_texts

    site = official_dir()
    texts = [TEXT, "A dog sees the cats.", "Those girls like their ball."] * 30
    argv, expected = [], {}
    for target in ("causal", "masked"):
        tok = train_tokenizer_from_texts(iter(texts), vocab_size=300, min_frequency=1, target=target,
                                         add_eos=target == "masked")
        archs = ["gpt2", "llama"] if target == "causal" else ["bert", "roberta", "deberta-v2"]
        for arch in archs:
            model = models.build_model(arch, models.resolve_shape("tiny", hidden=32, positions=64), tok, seed=3).eval()
            folder = tmp_path / arch
            checkpoint.save_model(folder, model, tok, {"run_config.json": {}})
            ids = tok(TEXT, return_tensors="pt")["input_ids"]
            with torch.no_grad():
                expected[arch] = (ids, model(ids).logits, tok.mask_token_id, tok.pad_token_id)
            argv += [str(folder), models.ARCHS[arch]]
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-c", _CHECK, TEXT, *argv], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.splitlines()[0]) == OFFICIAL
    for arch, (ids, logits, mask_id, pad_id) in expected.items():
        got = torch.load(tmp_path / arch / "official.pt", weights_only=True)
        assert torch.equal(got["ids"], ids), f"{arch}: tokenization differs under the official versions"
        assert (got["mask"], got["pad"]) == (mask_id, pad_id), arch
        torch.testing.assert_close(got["logits"], logits, rtol=0, atol=1e-5, msg=f"{arch}: logits differ")
