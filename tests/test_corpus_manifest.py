"""The corpus manifest travels beside every checkpoint (and to the hub with every revision): it names
the corpus and its files without a local path."""

from __future__ import annotations

import json
import os

from babylm.corpus import load_corpus
from tests.conftest import run_cli


def test_manifest_holds_no_local_path(tmp_path):
    home = tmp_path / "home" / "alice"
    root = home / "data" / "babylm"
    for folder, name in (("babylm_10M", "speech.train"), ("babylm_dev", "speech.dev")):
        (root / folder).mkdir(parents=True)
        (root / folder / name).write_text("the dog sees the cat\n" * 10)
    out = tmp_path / "out"
    proc = run_cli("babylm", "corpus", "--corpus", root, "--files", "train,dev", "--out_dir", out,
                   env={"HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    text = (out / "corpus_manifest.json").read_text()
    assert str(tmp_path) not in text and "alice" not in text
    manifest = json.loads(text)
    assert manifest["source"] == manifest["root"] == "babylm"  # the corpus folder's own name
    assert [(f["name"], f["path"]) for f in manifest["files"]] == [("babylm_10M/speech.train", "babylm_10M/speech.train"),
                                                                   ("babylm_dev/speech.dev", "babylm_dev/speech.dev")]
    assert manifest["files"][0]["words"] == 50 and len(manifest["files"][0]["sha256"]) == 64
    # a relative --corpus is named the same way
    rel = load_corpus(os.path.relpath(root), files=["train"]).manifest()
    assert rel["source"] == rel["root"] == "babylm" and rel["files"][0]["path"] == "babylm_10M/speech.train"


def test_embedded_manifest_names_no_cache_folder():
    manifest = load_corpus("embedded").manifest()
    cache = os.environ["BABYLM_CACHE"]  # where the embedded corpus is written (tests/conftest.py)
    assert cache not in json.dumps(manifest)
    assert manifest["source"] == "embedded" and manifest["root"] is None
    assert all(f["path"] == f["name"] and not f["path"].startswith("/") for f in manifest["files"])
