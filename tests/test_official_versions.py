"""Checkpoints and tokenizer folders load, and give identical results, under the official pipeline's versions.

The 2025/2026 evaluation pipeline pins transformers 4.51.3 and tokenizers 0.21.1. These tests use
a cached package folder with its pins, built by ``bench/official_env.py`` outside the checkout
(``${XDG_CACHE_HOME:-~/.cache}/babylm-kit/official-<hash>``, or ``$BABYLM_OFFICIAL_ENV``) and
installed from the package index on first use; later runs reuse it. A fresh interpreter of the
kit's venv runs with that folder first on PYTHONPATH, so torch comes from the venv.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from babylm import checkpoint, models
from bench import official_env
from tests.conftest import run_cli

OFFICIAL = {"transformers": "4.51.3", "tokenizers": "0.21.1"}
TEXT = "The cats with the dog see themselves."


def run_official(site, code: str, *args, cwd=None) -> subprocess.CompletedProcess:
    env = official_env.environ(site)
    env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


_CHECK = """
import json, sys, torch, transformers, tokenizers
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer
print(json.dumps({"transformers": transformers.__version__, "tokenizers": tokenizers.__version__}))
for folder, kind in zip(sys.argv[2::2], sys.argv[3::2]):
    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok(sys.argv[1], return_tensors="pt")
    auto = AutoModelForCausalLM if kind == "causal" else AutoModelForMaskedLM
    model = auto.from_pretrained(folder).eval()
    AutoModel.from_pretrained(folder)
    with torch.no_grad():
        # model(**enc): everything the tokenizer returns, as the official reading code passes it
        torch.save({"ids": enc["input_ids"], "logits": model(**enc).logits, "mask": tok.mask_token_id,
                    "pad": tok.pad_token_id}, folder + "/official.pt")
    print(json.dumps({"folder": folder, "inputs": sorted(enc.keys())}))
"""


@pytest.mark.slow
def test_checkpoints_load_under_official_versions(tmp_path, official_site):
    """Every architecture's checkpoint loads under 4.51.3; ``model(**tokenizer(text))`` there gives the
    kit's logits, because the saved tokenizer returns ids and mask only (no token_type_ids, which
    GPT-2 would add to every position through its word embeddings)."""
    from babylm.tokenizer import train_tokenizer_from_texts

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
    res = run_official(official_site, _CHECK, TEXT, *argv, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert lines[0] == OFFICIAL
    inputs = {line["folder"]: line["inputs"] for line in lines[1:]}
    for arch, (ids, logits, mask_id, pad_id) in expected.items():
        assert inputs[str(tmp_path / arch)] == ["attention_mask", "input_ids"], f"{arch}: {inputs[str(tmp_path / arch)]}"
        got = torch.load(tmp_path / arch / "official.pt", weights_only=True)
        assert torch.equal(got["ids"], ids), f"{arch}: tokenization differs under the official versions"
        assert (got["mask"], got["pad"]) == (mask_id, pad_id), arch
        torch.testing.assert_close(got["logits"], logits, rtol=0, atol=1e-5, msg=f"{arch}: logits differ")


_TOKENIZE = """
import json, sys, transformers
from transformers import AutoTokenizer
out = {"version": transformers.__version__}
for folder in sys.argv[2:]:
    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok(sys.argv[1], return_offsets_mapping=True)
    out[folder] = {"class": type(tok).__name__, "keys": sorted(enc.keys()), "ids": enc["input_ids"],
                   "offsets": [list(o) for o in enc["offset_mapping"]],
                   "special": [tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.mask_token_id,
                               tok.cls_token_id, tok.sep_token_id]}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_tokenizer_folder_loads_under_official_versions(tmp_path, official_site):
    """The bare folder ``python -m babylm tokenizer`` writes loads under 4.51.3 (transformers 5 records
    the class TokenizersBackend, which 4.x does not have) and encodes exactly as under the kit's
    transformers, with the same special tokens and no token_type_ids."""
    from babylm.tokenizer import load_tokenizer

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = [f"the giraffe {w} near the cat number {i} is happy ." for i in range(200) for w in ("sees", "likes")]
    (corpus / "toy.train").write_text("\n".join(lines) + "\n", encoding="utf-8")
    folders = []
    for target, model in (("causal", "bpe"), ("masked", "wordpiece")):
        out = tmp_path / f"tok_{target}"
        r = run_cli("babylm", "tokenizer", "--corpus", corpus, "--model", model, "--vocab_size", "300",
                    "--min_frequency", "1", "--target", target, "--out_dir", out)
        assert r.returncode == 0, r.stderr[-2000:]
        folders.append(out)
    text = "the giraffe sees the cat near number 12 ."
    res = run_official(official_site, _TOKENIZE, text, *folders, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["version"] == OFFICIAL["transformers"]
    for folder in folders:
        theirs = got[str(folder)]
        assert theirs["class"] == "PreTrainedTokenizerFast"
        assert theirs["keys"] == ["attention_mask", "input_ids", "offset_mapping"], theirs["keys"]
        ours = load_tokenizer(folder)
        enc = ours(text, return_offsets_mapping=True)
        assert theirs["ids"] == enc["input_ids"] and len(enc["input_ids"]) > 5
        assert theirs["offsets"] == [list(o) for o in enc["offset_mapping"]]
        assert theirs["special"] == [ours.bos_token_id, ours.eos_token_id, ours.pad_token_id, ours.mask_token_id,
                                     ours.cls_token_id, ours.sep_token_id]


_KEYS = """
import json, sys
from transformers import AutoTokenizer
print(json.dumps({f: sorted(AutoTokenizer.from_pretrained(f)(sys.argv[1]).keys()) for f in sys.argv[2:]}))
"""


@pytest.mark.slow
def test_reading_token_types_follow_official_versions(tmp_path, official_site, shared):
    """``--reading_token_types official`` passes token types exactly when the official versions'
    tokenizer returns them: for a tokenizer that names no inputs (transformers 4.x's default returns
    them, 5.x's does not), for classes that name their own (GPT-2: none, BERT: yes), and for kit
    checkpoints (named: none)."""
    from babylm.tokenizer import make_legacy_readable, wrap_fast
    from eval_export.loading import load_model
    from eval_export.zero_shot import official_input_names
    from tests import export_models as em

    lines = em.corpus_lines(shared)
    folders = {}
    for name, cls in (("generic", None), ("gpt2", "GPT2TokenizerFast"), ("bert", "BertTokenizerFast")):
        model, tok = em.build("bert" if name == "bert" else "gpt2", lines, seed=1)
        folder = em.save(model, tok, tmp_path / name)
        make_legacy_readable(folder)
        if cls:  # the same fast tokenizer under a class that names its own inputs
            cfg = json.loads((folder / "tokenizer_config.json").read_text())
            (folder / "tokenizer_config.json").write_text(json.dumps({**cfg, "tokenizer_class": cls}))
        folders[name] = folder
    model, tok = em.build("gpt2", lines, seed=1)
    kit_tok = wrap_fast(tok.backend_tokenizer)
    folders["kit"] = checkpoint.save_model(tmp_path / "kit", model, kit_tok, {})
    res = run_official(official_site, _KEYS, TEXT, *folders.values(), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    theirs = json.loads(res.stdout.strip().splitlines()[-1])
    expected = {"generic": True, "gpt2": False, "bert": True, "kit": False}  # token types under 4.51
    for name, folder in folders.items():
        assert ("token_type_ids" in theirs[str(folder)]) == expected[name], (name, theirs[str(folder)])
        ours = official_input_names(load_model(str(folder), backend="mlm" if name == "bert" else "causal").tokenizer)
        assert sorted(ours) == theirs[str(folder)], (name, ours, theirs[str(folder)])
