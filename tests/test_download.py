"""The downloader end to end against a real HTTP server on 127.0.0.1 (with Range support)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import zipfile

import pytest

from babylm.corpus import load_corpus
from babylm.download import Archive, download_archive
from babylm.errors import InputError
from tests.conftest import run_cli

FILES = {"train_10M/childes.train": "where is the ball ?\nthere it is .\n" * 200,
         "train_10M/switchboard.train": "A:\tyeah .\nB:\tright .\n" * 100}


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, text in FILES.items():
            zf.writestr(name, text)
        zf.writestr("__MACOSX/train_10M/._childes.train", b"junk")
    return buf.getvalue()


@pytest.fixture
def server():
    """Serves /train_10M.zip (and /corrupt.zip with one flipped byte); records the Range headers."""
    payload = _zip()
    corrupt = bytearray(payload)
    corrupt[len(corrupt) // 2] ^= 0xFF
    files = {"/train_10M.zip": payload, "/corrupt.zip": bytes(corrupt)}
    ranges: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            rng = self.headers.get("Range")
            ranges.append(rng)
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            self.send_response(206 if rng else 200)
            if rng:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start:])

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", payload, ranges
    httpd.shutdown()
    httpd.server_close()


def _archive(base, payload, path="/train_10M.zip"):
    return Archive("train_10M", base + path, md5=hashlib.md5(payload).hexdigest(), size=len(payload))


def test_full_download_unpacks_layout(server, tmp_path):
    base, payload, ranges = server
    placed = download_archive(_archive(base, payload), tmp_path)
    assert placed == [tmp_path / "train_10M"] and ranges == [None]
    for name, text in FILES.items():
        assert (tmp_path / name).read_text() == text
    assert not (tmp_path / "__MACOSX").exists() and not list((tmp_path / ".downloads").iterdir())
    assert json.loads((tmp_path / "train_10M.download.json").read_text())["md5"] == hashlib.md5(payload).hexdigest()
    c = load_corpus(tmp_path)  # the layout corpus.py reads
    assert c.layout == "2024" and c.total_words == sum(len(t.split()) for t in FILES.values())
    with pytest.raises(InputError, match="already exists; pass --overwrite true"):
        download_archive(_archive(base, payload), tmp_path)


def test_resume_after_truncated_partial(server, tmp_path):
    base, payload, ranges = server
    part = tmp_path / ".downloads" / "train_10M.zip.part"
    part.parent.mkdir(parents=True)
    half = len(payload) // 2
    part.write_bytes(payload[:half])  # an interrupted earlier download
    download_archive(_archive(base, payload), tmp_path)
    assert half > 4000 and ranges == [f"bytes={half}-"]
    assert (tmp_path / "train_10M/childes.train").read_text() == FILES["train_10M/childes.train"]


def test_corrupted_archive_is_rejected(server, tmp_path):
    base, payload, _ = server
    with pytest.raises(InputError, match=r"is corrupt \(md5 [0-9a-f]{32}, expected"):
        download_archive(_archive(base, payload, "/corrupt.zip"), tmp_path)
    assert not (tmp_path / "train_10M").exists()
    assert not list((tmp_path / ".downloads").iterdir())  # the bad file is gone: a rerun starts clean


def test_cli_with_url_override(server, tmp_path):
    base, payload, _ = server
    out = tmp_path / "data"
    md5 = hashlib.md5(payload).hexdigest()
    r = run_cli("babylm", "download", "--year", "2024", "--track", "strict-small", "--out_dir", out,
                "--url", f"{base}/train_10M.zip", "--md5", md5)
    assert r.returncode == 0, r.stderr
    assert (out / "train_10M/switchboard.train").is_file() and (out / "download_config.json").is_file()
    r = run_cli("babylm", "download", "--out_dir", tmp_path / "bad", "--url", f"{base}/corrupt.zip", "--md5", md5)
    last = r.stderr.strip().splitlines()[-1]  # earlier stderr lines are the progress bar
    assert r.returncode == 1 and last.startswith("error: download of") and "is corrupt" in last
    r = run_cli("babylm", "download", "--year", "2026", "--out_dir", tmp_path / "x")
    assert r.returncode == 2 and "hf:BabyLM-community/BabyLM-2026-Strict-Small" in r.stderr
