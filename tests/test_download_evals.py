"""`python -m eval_export download-evals`: the 2026 evaluation data from a hub dataset (the local stand-in of
the hub in tests/hub_server.py), laid out as the official script does, pinned to one commit, every file checked
against the hub's checksum, nothing fetched twice, nothing half-written."""

from __future__ import annotations

import json

import pytest

from babylm.errors import InputError
from eval_export.evaluation_data import REPO, DownloadEvalsConfig, download_evals
from tests.conftest import run_cli
from tests.hub_server import HubServer

TOKEN = "hf_evals_test_token"
FILES = {
    "evaluation_data/full_eval/blimp_filtered/adjunct_island.jsonl": b'{"sentence_good": "a b", "sentence_bad": "b a"}\n',
    "evaluation_data/fast_eval/reading/reading_data.csv": b",item,word\n0,The,cat\n",
    "evaluation_data/full_eval/aoa/cdi_surprisals.bin": bytes(range(256)) * 40,  # large-file storage: sha256
    "README.md": b"# BabyLM 2026 strict evaluation data\n",
}


@pytest.fixture()
def hub(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with HubServer(TOKEN) as server:
        server.add_repo(REPO, FILES)
        yield server


def _cfg(hub, out, **kw) -> DownloadEvalsConfig:
    return DownloadEvalsConfig(out_dir=str(out), endpoint=hub.url, **kw)


def test_files_laid_out_checked_and_fetched_once(hub, tmp_path):
    written = download_evals(_cfg(hub, tmp_path), say=lambda _: None)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(FILES)
    for path, data in FILES.items():
        assert (tmp_path / path).read_bytes() == data
    record = json.loads((tmp_path / "evaluation_data.download.json").read_text())
    assert record["repo"] == REPO and record["commit"] == hub.repos[REPO].branches["main"]
    assert record["files"]["evaluation_data/full_eval/aoa/cdi_surprisals.bin"]["sha256"] is not None
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name or p.name == ".cache"]  # no staging left
    # again: nothing fetched; a file lost since is fetched alone
    gets = len(hub.file_gets)
    assert download_evals(_cfg(hub, tmp_path), say=lambda _: None) == [] and len(hub.file_gets) == gets
    (tmp_path / "README.md").unlink()
    assert [p.name for p in download_evals(_cfg(hub, tmp_path), say=lambda _: None)] == ["README.md"]
    assert not hub.unhandled


def test_a_damaged_transfer_writes_nothing_and_other_contents_need_overwrite(hub, tmp_path):
    damaged = "evaluation_data/full_eval/aoa/cdi_surprisals.bin"
    hub.serve_instead[damaged] = b"\0" * len(FILES[damaged])  # same size, other bytes
    with pytest.raises(InputError, match=r"cdi_surprisals\.bin: the download does not match the checksum the hub "
                                         r"lists \(sha256 [0-9a-f]{64}\)"):
        download_evals(_cfg(hub, tmp_path), say=lambda _: None)
    assert not (tmp_path / damaged).exists() and not list(tmp_path.rglob("*.tmp-*"))
    del hub.serve_instead[damaged]
    download_evals(_cfg(hub, tmp_path), say=lambda _: None)  # the rerun completes it
    assert (tmp_path / damaged).read_bytes() == FILES[damaged]
    edited = tmp_path / "evaluation_data/full_eval/blimp_filtered/adjunct_island.jsonl"
    edited.write_text("edited\n")
    with pytest.raises(InputError, match=r"adjunct_island\.jsonl exists with other contents .*--overwrite true"):
        download_evals(_cfg(hub, tmp_path), say=lambda _: None)
    download_evals(_cfg(hub, tmp_path, overwrite=True), say=lambda _: None)
    assert edited.read_bytes() == FILES["evaluation_data/full_eval/blimp_filtered/adjunct_island.jsonl"]


def test_cli_one_line_failures(hub, tmp_path):
    env = {"HF_TOKEN": "hf_wrong", "HF_HUB_OFFLINE": "0"}
    res = run_cli("eval_export", "download-evals", "--out_dir", tmp_path / "x", "--endpoint", hub.url, env=env, timeout=120)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "--repo BabyLM-community/BabyLM-2026-Strict-Evals" in res.stderr and "hf_wrong" not in res.stderr
    with pytest.raises(InputError, match=r"no revision 'nope'$"):
        download_evals(_cfg(hub, tmp_path / "y", revision="nope"), say=lambda _: None)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
