"""Faults a flaky network, a leaked credential or a damaged file cause: each is one line or is repaired.

Downloads run against a real HTTP server on 127.0.0.1 whose replies can close early, stall after
their headers or ask for basic auth.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import threading
import zipfile

import pytest

from babylm.download import Archive, download_archive
from babylm.errors import InputError
from tests.conftest import run_cli

TEXT = "where is the ball ?\nthere it is .\n" * 600
USER, PASSWORD, TOKEN = "kid", "pw-SECRET-7", "tok-SECRET-9"


def _zip(members: dict[str, str] | None = None, links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, text in (members or {"train_10M/childes.train": TEXT}).items():
            zf.writestr(name, text)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)  # a symbolic link, as `zip --symlinks` stores it
            zf.writestr(info, target)
    return buf.getvalue()


PAYLOAD = _zip()
CUT = 5004  # bytes sent before an early close


@pytest.fixture
def server():
    """Paths: /ok.zip; /flaky.zip closes its first reply after CUT bytes (Content-Length says all);
    /stall.zip sends headers, then nothing; /auth.zip wants basic auth. Records Range headers."""
    ranges: list[str | None] = []
    release = threading.Event()
    state = {"flaky": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            path = self.path.split("?")[0]
            if path == "/auth.zip":
                wanted = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != wanted:
                    self.send_error(401)
                    return
            if path not in ("/ok.zip", "/flaky.zip", "/stall.zip", "/auth.zip"):
                self.send_error(404)
                return
            rng = self.headers.get("Range")
            ranges.append(rng)
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            self.send_response(206 if rng else 200)
            if rng:
                self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
            self.send_header("Content-Length", str(len(PAYLOAD) - start))
            self.end_headers()
            if path == "/stall.zip":
                release.wait(30)  # silent until the test ends
                return
            if path == "/flaky.zip" and state["flaky"] == 0:
                state["flaky"] += 1
                self.wfile.write(PAYLOAD[start:CUT])
                self.close_connection = True
                return
            self.wfile.write(PAYLOAD[start:])

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}", ranges
    release.set()
    httpd.shutdown()
    httpd.server_close()


def _archive(url: str) -> Archive:
    return Archive("train_10M", url, md5=hashlib.md5(PAYLOAD).hexdigest(), size=len(PAYLOAD))


# ---------------------------------------------------------------- downloads


def test_early_close_is_resumed_by_range_not_deleted(server, tmp_path):
    host, ranges = server
    placed = download_archive(_archive(f"http://{host}/flaky.zip"), tmp_path, wait=0)
    assert ranges == [None, f"bytes={CUT}-"] and len(PAYLOAD) > 2 * CUT
    assert placed == [tmp_path / "train_10M"] and (tmp_path / "train_10M/childes.train").read_text() == TEXT


def test_early_close_without_retries_keeps_the_part_for_the_next_run(server, tmp_path):
    host, ranges = server
    with pytest.raises(InputError, match=rf"interrupted \(the connection closed at {CUT:,} of {len(PAYLOAD):,} "
                                         r"bytes\); 5,004 bytes are kept in .*run the same command again to resume"):
        download_archive(_archive(f"http://{host}/flaky.zip"), tmp_path, retries=0)
    part = tmp_path / ".downloads/train_10M.zip.part"
    assert part.read_bytes() == PAYLOAD[:CUT]
    download_archive(_archive(f"http://{host}/flaky.zip"), tmp_path, retries=0)  # the rerun resumes
    assert ranges == [None, f"bytes={CUT}-"] and (tmp_path / "train_10M/childes.train").read_text() == TEXT


def test_a_short_file_is_incomplete_and_kept_not_corrupt(tmp_path):
    from babylm.download import verify

    part = tmp_path / "x.zip.part"
    part.write_bytes(PAYLOAD[:CUT])
    with pytest.raises(InputError, match=r"is incomplete \(5,004 of .* run the same command again to resume"):
        verify(part, _archive("http://h/x.zip"))
    assert part.stat().st_size == CUT


def test_a_server_that_stalls_after_its_headers_is_one_line(server, tmp_path):
    host, ranges = server
    r = run_cli("babylm", "download", "--out_dir", tmp_path, "--url", f"http://{host}/stall.zip",
                "--timeout", "0.5", "--retries", "0")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]  # earlier lines are the progress bar
    assert last.startswith(f"error: download of http://{host}/stall.zip interrupted (TimeoutError"), last
    assert "run the same command again to resume" in last and ranges == [None]
    r = run_cli("babylm", "download", "--out_dir", tmp_path, "--url", f"http://{host}/ok.zip", "--timeout", "0")
    assert r.returncode == 2 and "--timeout" in r.stderr


def test_zip_members_that_are_links_or_both_file_and_folder_are_refused(tmp_path):
    from babylm.download import unpack

    cases = {"link": (_zip(links={"train_10M/link.train": "/etc/passwd"}), "is a symbolic link"),
             "clash": (_zip({"train_10M/a.train": "x\n", "train_10M/a.train/b.train": "y\n"}),
                       "'train_10M/a.train' is both a file and the folder of 'train_10M/a.train/b.train'")}
    for name, (payload, message) in cases.items():
        zpath = tmp_path / f"{name}.zip"
        zpath.write_bytes(payload)
        with pytest.raises(InputError, match=message.replace("(", r"\(")):
            unpack(zpath, Archive("train_10M", None), tmp_path / name)
        assert [p.name for p in (tmp_path / name).iterdir()] == []  # nothing unpacked, no temp folder left


# ---------------------------------------------------------------- credentials


def test_redact_hides_userinfo_and_credential_query_parameters():
    from babylm.credentials import redact, redact_values

    assert redact("https://me:hf_abc@host/x.git") == "https://me:***@host/x.git"
    assert redact("http://h/x.zip?token=abc&n=1") == "http://h/x.zip?token=***&n=1"
    assert redact("u https://h/x?a=1&access_token=zz#f.") == "u https://h/x?a=1&access_token=***#f."
    assert (redact("https://h/x?X-Amz-Signature=dd&api_key=5&sig=q&Secret=s&password=p&b=2") ==
            "https://h/x?X-Amz-Signature=***&api_key=***&sig=***&Secret=***&password=***&b=2")
    assert redact("http://h/x?page=2&lang=en") == "http://h/x?page=2&lang=en"
    assert redact("(see http://h/x?key=k1)") == "(see http://h/x?key=***)"
    assert redact_values({"a": ["http://u:p@h/", 3]}) == {"a": ["http://u:***@h/", 3]}


def test_download_with_user_password_and_token_url_works_and_saves_no_secret(server, tmp_path):
    host, _ = server
    url = f"http://{USER}:{PASSWORD}@{host}/auth.zip?token={TOKEN}"
    out = tmp_path / "data"
    r = run_cli("babylm", "download", "--out_dir", out, "--url", url, "--md5", hashlib.md5(PAYLOAD).hexdigest())
    assert r.returncode == 0, r.stderr
    assert (out / "train_10M/childes.train").read_text() == TEXT
    written = (out / "download_config.json").read_text() + (out / "train_10M.download.json").read_text()
    assert json.loads((out / "train_10M.download.json").read_text())["url"] == \
        f"http://{USER}:***@{host}/auth.zip?token=***"
    for secret in (PASSWORD, TOKEN):
        assert secret not in written + r.stdout + r.stderr
    # a failure names the URL without them too
    r = run_cli("babylm", "download", "--out_dir", tmp_path / "x", "--url", url.replace("auth.zip", "gone.zip"))
    assert r.returncode == 1 and r.stderr.strip().endswith("failed: HTTP 404 Not Found"), r.stderr
    assert f"http://{USER}:***@{host}/gone.zip?token=***" in r.stderr
    assert PASSWORD not in r.stderr + r.stdout and TOKEN not in r.stderr + r.stdout


# ---------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model, tokenizer) small enough to save in milliseconds."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from tests.train_fixtures import make_tokenizer

    tok = make_tokenizer(tmp_path_factory.mktemp("tok"))
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=512,
                                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).eval()
    return model, tok


def _truncate(path, keep: int = 100) -> None:
    data = path.read_bytes()
    path.unlink()  # a new file: the hard links derive() made keep the old bytes, as a copy would
    path.write_bytes(data[:keep])


def test_checkpoints_carry_checksums_and_a_damaged_or_linked_file_is_named(tiny, tmp_path):
    from babylm import checkpoint, models
    from babylm.integrity import verify

    model, tok = tiny
    folder = checkpoint.save_model(tmp_path / "chck_1M", model, tok, {"run_config.json": {"progress": {}}})
    record = json.loads((folder / "checksums.json").read_text())["files"]
    weights = folder / "model.safetensors"
    assert record["model.safetensors"] == {"sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
                                           "bytes": weights.stat().st_size}
    assert set(record) == {p.name for p in folder.iterdir()} - {"checksums.json"}
    verify(folder)
    derived = checkpoint.derive(folder, tmp_path / "final", {"run_config.json": {"progress": {"step": 1}}})
    verify(derived)  # the new metadata is recorded, the linked weights keep their entry
    assert json.loads((derived / "checksums.json").read_text())["files"]["model.safetensors"] == \
        record["model.safetensors"]
    _truncate(weights)
    with pytest.raises(InputError, match=r"chck_1M/model.safetensors is damaged \(100 bytes; its sha256 differs"):
        verify(folder)
    with pytest.raises(InputError, match=r"model.safetensors is damaged"):
        models.load_model(folder)  # what `test` and --init_from load
    weights.unlink()
    weights.symlink_to(derived / "model.safetensors")
    with pytest.raises(InputError, match=r"model.safetensors is a symbolic link \(to .*final/model.safetensors\)"):
        verify(folder)


def test_publish_refuses_a_truncated_or_linked_milestone_before_writing(tiny, tmp_path):
    from babylm import checkpoint
    from babylm.publish import PublishConfig, publish

    model, tok = tiny
    run = tmp_path / "myrun"
    for name in ("chck_1M", "chck_2M", "final"):
        checkpoint.save_model(run / name, model, tok, {"run_config.json": {"progress": {"words_seen": 1}}})
    _truncate(run / "chck_2M/model.safetensors")
    with pytest.raises(InputError, match=r"chck_2M/model.safetensors is damaged"):
        publish(PublishConfig(run=str(run)))
    assert not (run / "myrun.git").exists()
    (run / "chck_2M/model.safetensors").unlink()
    (run / "chck_2M/model.safetensors").symlink_to("/etc/passwd")
    with pytest.raises(InputError, match=r"chck_2M/model.safetensors is a symbolic link \(to /etc/passwd\)"):
        publish(PublishConfig(run=str(run)))
    assert not (run / "myrun.git").exists()


def _state(step: int) -> dict:
    import torch

    return {"loop": json.dumps({"step": step}), "optimizer": {"state": {}, "param_groups": []},
            "w": torch.arange(3)}


def test_resume_falls_back_from_a_damaged_latest_and_refuses_pointers_outside(tiny, tmp_path, caplog):
    from babylm import checkpoint

    model, tok = tiny
    run = tmp_path / "run"
    first = checkpoint.save_resume(run, 10, model, tok, {}, _state(10))
    second = checkpoint.save_resume(run, 20, model, tok, {}, _state(20))
    third = checkpoint.save_resume(run, 30, model, tok, {}, _state(30))
    assert not first.exists() and second.is_dir()  # the previous one is kept, older ones pruned
    assert checkpoint.latest(run, verified=True) == third
    _truncate(third / checkpoint.STATE_FILE, keep=10)
    with caplog.at_level("WARNING", logger="babylm"):
        assert checkpoint.latest(run, verified=True) == second
    assert "run/step_0000030/train_state.pt is damaged" in caplog.text and "previous checkpoint" in caplog.text
    assert checkpoint.load_state(second)["loop"] == json.dumps({"step": 20})
    _truncate(second / "model.safetensors")
    with pytest.raises(InputError, match=r"step_0000030/train_state.pt is damaged"):
        checkpoint.latest(run, verified=True)  # no intact one left: the newest damage is named
    # written without checksums (older versions): a truncated file is still one line
    (third / "checksums.json").unlink()
    with pytest.raises(InputError, match=r"train_state.pt: cannot read the training state .* the checkpoint is damaged"):
        checkpoint.load_state(third)
    (second / "checksums.json").unlink()
    with pytest.raises(InputError, match=r"model.safetensors: cannot read the weights"):
        checkpoint.load_weights(model, second)
    for pointer in ("../other/step_0000010", "/etc", "final"):
        (run / checkpoint.LATEST).write_text(pointer + "\n")
        with pytest.raises(InputError, match="which is not a resume checkpoint of"):
            checkpoint.latest(run)


def test_score_all_revisions_reports_a_damaged_milestone_scores_the_rest_and_fails(tiny, tmp_path, shared, capsys):
    from babylm import checkpoint
    from babylm.config import build
    from eval_export import commands

    model, tok = tiny
    run = tmp_path / "tinyrun"
    for name in ("chck_1M", "chck_2M", "final"):
        checkpoint.save_model(run / name, model, tok, {})
    _truncate(run / "chck_1M/model.safetensors")
    flags = {"model": str(run), "revision": "all", "eval_data": str(shared / "data" / "eval"),
             "results": str(tmp_path / "results"), "tasks": "blimp_supplement", "eval_set": "fast", "limit": 2,
             "progress": False}
    with pytest.raises(InputError, match=r"^1 of 3 revisions could not be scored \(chck_1M; the first: .*chck_1M/"
                                         r"model.safetensors is damaged .*\); the others were scored$"):
        commands.score(build(commands.ScoreConfig, flags, "score"))
    scored = sorted(p.relative_to(tmp_path / "results").parts[1] for p in (tmp_path / "results").rglob("predictions.json"))
    assert scored and set(scored) == {"chck_2M", "main"}


def test_publish_remote_with_an_access_token_never_prints_it(tiny, tmp_path):
    import subprocess

    from babylm import checkpoint

    model, tok = tiny
    run = tmp_path / "myrun"
    checkpoint.save_model(run / "final", model, tok, {"run_config.json": {"progress": {"words_seen": 1}}})
    # git takes everything after file:// as a path: a bare repository of that very name receives the push
    remote = tmp_path / f"remote.git?access_token={TOKEN}"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    r = run_cli("babylm", "publish", "--run", run, "--remote", f"file://{remote}")
    assert r.returncode == 0, r.stderr
    assert f"(pushed to file://{tmp_path}/remote.git?access_token=***)" in r.stdout, r.stdout
    assert TOKEN not in r.stdout + r.stderr
    r = run_cli("babylm", "publish", "--run", run, "--remote", f"file://{tmp_path}/gone.git?access_token={TOKEN}")
    assert r.returncode == 1 and "gone.git?access_token=***" in r.stderr and TOKEN not in r.stdout + r.stderr, r.stderr


# ---------------------------------------------------------------- the packed-data cache


def test_a_damaged_packed_cache_entry_is_rebuilt_with_one_warning(tmp_path, caplog):
    import numpy as np

    from babylm.corpus import load_corpus
    from babylm.data import DATA_FILE, pack_corpus
    from babylm.tokenizer import train_tokenizer_from_texts

    lines = [f"the dog {i} sees the cat {i % 7} ." for i in range(200)]
    tok = train_tokenizer_from_texts(iter(lines), "bpe", vocab_size=300, min_frequency=1)
    (tmp_path / "c").mkdir()
    (tmp_path / "c/a.train").write_text("\n".join(lines) + "\n", encoding="utf-8")
    corpus = load_corpus(tmp_path / "c")
    first = pack_corpus(corpus, tok, 16, cache_dir=tmp_path / "cache")
    blocks = [list(b) for b in first["input_ids"]]  # read now: the dataset maps the file
    assert len(blocks) > 4 and blocks[0] != blocks[1]
    data = next((tmp_path / "cache").glob("packed-*")) / DATA_FILE
    raw = bytearray(data.read_bytes())
    a, b = (raw.find(np.asarray(blocks[i], dtype=np.int64).tobytes()) for i in (0, 1))
    n = 16 * 8
    assert a >= 0 and b == a + n
    raw[a:a + n], raw[b:b + n] = raw[b:b + n], raw[a:a + n]  # two blocks swapped: still a valid Arrow file
    data.write_bytes(bytes(raw))
    del first
    with caplog.at_level("WARNING", logger="babylm"):
        again = pack_corpus(corpus, tok, 16, cache_dir=tmp_path / "cache")
    assert [list(b) for b in again["input_ids"]] == blocks
    assert caplog.text.count("building it again") == 1 and "differs from the checksum" in caplog.text
    caplog.clear()
    data.write_bytes(data.read_bytes()[:300])  # truncated
    with caplog.at_level("WARNING", logger="babylm"):
        assert [list(b) for b in pack_corpus(corpus, tok, 16, cache_dir=tmp_path / "cache")["input_ids"]] == blocks
    assert "holds 300 bytes, not the" in caplog.text


# ---------------------------------------------------------------- one weights policy for every loader


def _loaders():
    """Each loader of the kit on a local folder: test / --init_from, score, finetune."""
    from babylm import models
    from eval_export import classifier, loading

    return {"test": lambda p: models.load_model(p),
            "score": lambda p: loading.load_model(str(p)),
            "finetune": lambda p: classifier.load_backbone(str(p), "main", "right", 64)}


def test_every_loader_refuses_pickled_weights_and_names_misfit_or_damaged_weights(tiny, tmp_path, capfd):
    model, tok = tiny
    pickled = tmp_path / "pickled"
    import torch

    model.config.save_pretrained(pickled)
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")  # the pickled format of older transformers
    tok.save_pretrained(pickled)
    assert (pickled / "pytorch_model.bin").is_file() and not list(pickled.glob("*.safetensors"))
    for load in _loaders().values():
        with pytest.raises(InputError, match=r"pickled: no \*.safetensors weights \(it holds pytorch_model.bin\); "
                                             r"pickled .bin weights are not loaded"):
            load(pickled)
    plain = tmp_path / "plain"  # written by save_pretrained alone: no checksums.json to catch what follows
    model.save_pretrained(plain)
    tok.save_pretrained(plain)
    config = json.loads((plain / "config.json").read_text())
    (plain / "config.json").write_text(json.dumps({**config, "n_embd": 32}))
    capfd.readouterr()
    for load in list(_loaders().values())[:2]:  # finetune builds its model later, from the same helper
        with pytest.raises(InputError, match=r"plain: the weights do not fit config.json \(tensor shapes differ"):
            load(plain)
    assert "LOAD REPORT" not in "".join(capfd.readouterr())  # one line, not a table of every tensor
    (plain / "config.json").write_text(json.dumps(config))
    _truncate(plain / "model.safetensors", keep=200)
    for load in list(_loaders().values())[:2]:
        with pytest.raises(InputError, match=r"plain: the safetensors weights are damaged or truncated"):
            load(plain)


def test_finetune_classifier_names_weights_that_do_not_fit(tiny, tmp_path):
    from eval_export import classifier

    model, tok = tiny
    plain = tmp_path / "plain"
    model.save_pretrained(plain)
    tok.save_pretrained(plain)
    backbone = classifier.load_backbone(str(plain), "main", "right", 64)
    config = json.loads((plain / "config.json").read_text())
    (plain / "config.json").write_text(json.dumps({**config, "n_embd": 32}))
    for head in ("official", "stock"):
        with pytest.raises(InputError, match=r"the weights do not fit config.json"):
            classifier.build_classifier(backbone, 2, head, "auto", 0.1, True)


# ---------------------------------------------------------------- output folders


def test_results_or_save_dir_naming_a_file_is_one_line(tiny, tmp_path):
    model, tok = tiny
    folder = tmp_path / "m"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    for path in (blocker, blocker / "below"):
        r = run_cli("eval_export", "score", "--model", folder, "--results", path, "--tasks", "blimp",
                    "--eval_data", tmp_path)
        assert r.returncode == 1 and r.stderr.strip() == (
            f"error: --results: {blocker}: cannot write (a regular file, not a folder); a file is in the way where "
            "a folder is needed: give a folder path, or move the file"), r.stderr
    r = run_cli("babylm", "train", "--config", "smoke", "--save_dir", blocker)
    assert r.returncode == 1 and r.stderr.strip().startswith(f"error: --save_dir: {blocker}: cannot write (a "
                                                             "regular file, not a folder)"), r.stderr
    assert blocker.read_text() == "x"


def test_summary_refuses_a_revision_that_a_running_score_holds(tmp_path):
    from babylm.files import FolderLock

    revision = tmp_path / "results" / "tinyrun" / "main"
    revision.mkdir(parents=True)
    with FolderLock(revision, "--results"):  # what score holds while it writes there
        r = run_cli("eval_export", "summary", "--model", "tinyrun", "--results", tmp_path / "results")
    assert r.returncode == 1 and f"{revision} is in use by process" in r.stderr, r.stderr
    assert list(revision.iterdir()) == []


def test_score_refuses_results_of_another_model_with_the_same_folder_name(tiny, tmp_path, shared):
    import torch

    from babylm import checkpoint
    from babylm.config import build
    from babylm.errors import UsageError
    from eval_export import commands

    model, tok = tiny
    first = checkpoint.save_model(tmp_path / "a" / "final", model, tok, {})
    other = type(model)(model.config)
    with torch.no_grad():
        for p in other.parameters():
            p.normal_(0, 0.02, generator=torch.Generator().manual_seed(1))
    second = checkpoint.save_model(tmp_path / "b" / "final", other, tok, {})  # another run: the same name, final
    flags = {"eval_data": str(shared / "data" / "eval"), "results": str(tmp_path / "results"),
             "tasks": "blimp_supplement", "eval_set": "fast", "limit": 2, "progress": False}
    commands.score(build(commands.ScoreConfig, {**flags, "model": str(first)}, "score"))
    commands.score(build(commands.ScoreConfig, {**flags, "model": str(first)}, "score"))  # the same model: skipped
    with pytest.raises(UsageError, match=r"predictions.json was made with other weights \(fingerprint [0-9a-f]{16}, "
                                         r"not [0-9a-f]{16}: another model or a retrained one\); pass --overwrite"):
        commands.score(build(commands.ScoreConfig, {**flags, "model": str(second)}, "score"))
