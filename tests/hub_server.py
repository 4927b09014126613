"""A local stand-in of the Hugging Face hub's HTTP API: just what huggingface_hub calls to publish a model.

The kit publishes through the real ``huggingface_hub`` client; the real hub is not reachable from
the tests, so this server answers the client's requests on 127.0.0.1 and keeps what it receives.
Paths and payload fields are the ones the locked client (huggingface_hub 2.4.0) sends and reads:

- ``POST /api/repos/create``                      hf_api.py ``create_repo`` (409 when it exists)
- ``GET  /api/models/{id}/refs``                  hf_api.py ``list_repo_refs``
- ``POST /api/models/{id}/branch/{branch}``       hf_api.py ``create_branch`` (``startingPoint``; 409 when it exists)
- ``GET  /api/models/{id}/tree/{rev}``            hf_api.py ``list_repo_tree`` (``upload_folder(delete_patterns=...)``)
- ``GET  /api/models/{id}[/revision/{rev}]``      hf_api.py ``model_info`` (an upload with nothing to commit;
                                                  create_repo(exist_ok=True) when creating is forbidden)
- ``POST /api/models/{id}/preupload/{rev}``       _commit_api.py ``_fetch_upload_modes`` (regular or lfs, remote oid)
- ``POST /api/models/{id}/commit/{rev}``          _commit_api.py ``_send_commit`` (NDJSON lines: header, file,
                                                  lfsFile, deletedFile)
- ``POST /{id}.git/info/lfs/objects/batch``       lfs.py ``post_lfs_batch_info`` (the git LFS batch API)
- ``PUT  {href of the batch answer}``             lfs.py ``_upload_single_part`` (basic transfer, no auth header)
- ``POST {verify href of the batch answer}``      lfs.py ``lfs_upload`` (verify step)
- ``GET  /api/datasets/{id}[/revision/{rev}]``, ``/api/datasets/{id}/tree/{rev}``: the model routes' answers for
                                                  a dataset (``dataset_info``, ``list_repo_tree``)
- ``HEAD|GET /[datasets/]{id}/resolve/{rev}/{path}``  file_download.py ``get_hf_file_metadata`` (headers
                                                  X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size) and
                                                  ``http_get`` (the bytes; a ``Range`` request is honoured)

Like the hub, a new repository starts with one commit holding ``.gitattributes``, files matching
``*.safetensors`` go to large-file storage (preupload answers ``lfs``), an object already in that
storage gets no upload action, and a commit that names a ``parentCommit`` other than the branch
head is refused (412). Any other request is answered 404 and recorded in ``unhandled``.
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_PATTERNS = ("*.safetensors", "*.bin", "*.pt")
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
_REPO_API = re.compile(r"^/api/(?:models|datasets)/([^/]+/[^/]+)(?:/(refs|branch|tree|revision|preupload|commit)(?:/(.*))?)?$")
_RESOLVE = re.compile(r"^/(?:datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
_LFS_API = re.compile(r"^/([^/]+/[^/]+)\.git/info/lfs/objects/(batch|verify)$")


def git_blob_id(data: bytes) -> str:
    # git's object id of a blob: what the hub reports as a regular file's oid
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclasses.dataclass
class Commit:
    parent: str | None
    files: dict[str, bytes]
    message: str


@dataclasses.dataclass
class Repo:
    private: bool
    branches: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> commit id


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    authorization: str | None


class HubServer:
    """The stand-in's state and its HTTP server; ``url`` is its endpoint. Use as a context manager."""

    def __init__(self, token: str, read_only: bool = False):
        self.token = token
        self.read_only = read_only  # a valid token without write access: every write answers 403
        self.repos: dict[str, Repo] = {}
        self.commits: dict[str, Commit] = {}
        self.lfs: dict[str, bytes] = {}  # sha256 hex -> content: the large-file storage
        self.requests: list[Request] = []
        self.unhandled: list[str] = []
        self.lfs_puts: list[str] = []  # oids received by the basic transfer
        self.received_commits: list[tuple[str, str, dict, list[str]]] = []  # (repo, branch, header, paths) accepted
        self.created_branches: list[tuple[str, str, str | None]] = []  # (repo, branch, startingPoint)
        self.file_gets: list[str] = []  # paths whose bytes were sent (resolve GETs)
        self.serve_instead: dict[str, bytes] = {}  # path -> bytes sent in place of the file's (a damaged transfer)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "HubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ reading back and changing

    def add_repo(self, repo_id: str, files: dict[str, bytes] | None = None) -> None:
        """A repository as create_repo leaves it, then holding ``files`` (for tests that start from an existing
        one; a dataset is served from the same repositories)."""
        self.repos[repo_id] = Repo(private=False, branches={"main": self.initial_commit()})
        if files:
            self.commit(repo_id, "main", files, "add files")

    def initial_commit(self) -> str:
        return self._new_commit(None, {".gitattributes": GITATTRIBUTES}, "initial commit")

    def commit(self, repo: str, branch: str, files: dict[str, bytes], message: str) -> str:
        """Commit on the hub's side, as someone editing in the browser would (files replace or add)."""
        head = self.repos[repo].branches[branch]
        sha = self._new_commit(head, {**self.commits[head].files, **files}, message)
        self.repos[repo].branches[branch] = sha
        return sha

    def files(self, repo: str, branch: str) -> dict[str, bytes]:
        return dict(self.commits[self.repos[repo].branches[branch]].files)

    def history(self, repo: str, branch: str) -> list[str]:
        """Commit messages of ``branch``, newest first."""
        out, sha = [], self.repos[repo].branches[branch]
        while sha is not None:
            out.append(self.commits[sha].message)
            sha = self.commits[sha].parent
        return out

    # ------------------------------------------------------------------ storage

    def _new_commit(self, parent: str | None, files: dict[str, bytes], message: str) -> str:
        digest = hashlib.sha1(json.dumps([parent, message, sorted((p, git_blob_id(d)) for p, d in files.items())])
                              .encode())
        sha = digest.hexdigest()
        self.commits[sha] = Commit(parent, dict(files), message)
        return sha

    def _resolve(self, repo: Repo, rev: str) -> str | None:
        if rev in repo.branches:
            return repo.branches[rev]
        return rev if rev in self.commits else None

    @staticmethod
    def is_lfs(path: str, size: int) -> bool:
        return size > 10_000_000 or any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in LFS_PATTERNS)


def _handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        # ---------------------------------------------------------- plumbing

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, payload=None, headers: dict[str, str] | None = None) -> None:
            body = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str, code: str | None = None) -> None:
            headers = {"X-Error-Message": message}
            if code:
                headers["X-Error-Code"] = code
            self._send(status, {"error": message}, headers)

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {hub.token}":
                self._error(401, "Invalid credentials in Authorization header")
                return False
            return True

        def _writable(self) -> bool:
            if hub.read_only:
                self._error(403, "You don't have the rights to write to this repository")
                return False
            return True

        def _dispatch(self, method: str) -> None:
            url = urlsplit(self.path)
            path = unquote(url.path)
            body = self._body()
            with hub._lock:
                hub.requests.append(Request(method, path, self.headers.get("Authorization")))
                route = self._route(method, path)
                if route is None:
                    hub.unhandled.append(f"{method} {path}")
                    return self._error(404, f"not implemented by the stand-in: {method} {path}")
                # the storage URL handed out by the LFS batch answer is pre-signed: no token on it
                if path.startswith("/lfs-storage/") or self._authorized():
                    route(body, parse_qs(url.query))
                return None

        def _route(self, method: str, path: str):
            """The handler of a request, called with (body, query), or None when the stand-in does not serve it."""
            if method == "PUT" and path.startswith("/lfs-storage/"):
                return lambda body, query: self._lfs_put(path.rsplit("/", 1)[1], body)
            if method == "POST" and path == "/api/repos/create":
                return lambda body, query: self._create_repo(json.loads(body))
            if (m := _RESOLVE.match(path)) and method in ("GET", "HEAD"):
                return lambda body, query: self._resolve_file(m.group(1), m.group(2), m.group(3), method == "HEAD")
            if method == "POST" and path == "/api/validate-yaml":  # asked before a README.md is uploaded
                return lambda body, query: self._validate_yaml(json.loads(body))
            if m := _REPO_API.match(path):
                repo_id, action, rest = m.group(1), m.group(2) or "revision", m.group(3) or "main"
                handler = getattr(self, f"_{action}_{method.lower()}", None)
                if handler is None:
                    return None

                def call(body, query):
                    if repo_id not in hub.repos:
                        return self._error(404, "Repository not found", "RepoNotFound")
                    return handler(repo_id, hub.repos[repo_id], rest, body, query)
                return call
            if (m := _LFS_API.match(path)) and method == "POST":
                def lfs(body, query):
                    if m.group(1) not in hub.repos:
                        return self._error(404, "Repository not found", "RepoNotFound")
                    payload = json.loads(body)
                    return self._lfs_batch(m.group(1), payload) if m.group(2) == "batch" else self._lfs_verify(payload)
                return lfs
            return None

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_HEAD(self) -> None:
            self._dispatch("HEAD")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

        # ---------------------------------------------------------- repositories and refs

        def _create_repo(self, payload: dict) -> None:
            if not self._writable():
                return
            repo_id = f"{payload['organization']}/{payload['name']}"
            if repo_id in hub.repos:  # create_repo(exist_ok=True) reads the url from this answer too
                return self._send(409, {"error": "You already created this model repo", "url": f"{hub.url}/{repo_id}"},
                                  {"X-Error-Message": "You already created this model repo"})
            repo = hub.repos[repo_id] = Repo(private=payload.get("visibility") == "private")
            repo.branches["main"] = hub.initial_commit()
            self._send(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id})

        def _resolve_file(self, repo_id: str, rev: str, path: str, head: bool) -> None:
            """A file's bytes (or, for HEAD, the headers the client reads its metadata from)."""
            repo = hub.repos.get(repo_id)
            sha = hub._resolve(repo, rev) if repo else None
            data = hub.commits[sha].files.get(path) if sha else None
            if data is None:
                return self._error(404, f"{path} not found at {rev}", "EntryNotFound")
            start = 0
            if m := re.match(r"bytes=(\d+)-", self.headers.get("Range") or ""):
                start = min(int(m.group(1)), len(data))
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", sha)
            etag = hashlib.sha256(data).hexdigest() if hub.is_lfs(path, len(data)) else git_blob_id(data)
            self.send_header("ETag", f'"{etag}"')
            if hub.is_lfs(path, len(data)):
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            if not head:
                hub.file_gets.append(path)
                self.wfile.write(hub.serve_instead.get(path, data)[start:])

        def _validate_yaml(self, payload: dict) -> None:
            """The hub's check of a model card's YAML header: it must parse to a mapping."""
            import yaml

            text = payload.get("content", "")
            header = text.split("---", 2)[1] if text.startswith("---") and text.count("---") >= 2 else ""
            try:
                ok = isinstance(yaml.safe_load(header) or {}, dict)
            except yaml.YAMLError:
                ok = False
            if ok:
                return self._send(200, {"errors": [], "warnings": []})
            return self._send(400, {"errors": [{"message": "metadata is not a YAML mapping"}], "warnings": []})

        def _refs_get(self, repo_id, repo, rest, body, query) -> None:
            branches = [{"name": name, "ref": f"refs/heads/{name}", "targetCommit": sha}
                        for name, sha in repo.branches.items()]
            self._send(200, {"branches": branches, "tags": [], "converts": []})

        def _branch_post(self, repo_id, repo, branch, body, query) -> None:
            if not self._writable():
                return
            start = (json.loads(body) if body else {}).get("startingPoint")
            if branch in repo.branches:
                return self._error(409, "Reference already exists")
            sha = hub._resolve(repo, start or "main")
            if sha is None:
                return self._error(404, f"Invalid rev id: {start}", "RevisionNotFound")
            repo.branches[branch] = sha
            hub.created_branches.append((repo_id, branch, start))
            self._send(200, {})

        def _files_at(self, repo: Repo, rev: str) -> dict[str, bytes] | None:
            sha = hub._resolve(repo, rev)
            if sha is None:
                self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
                return None
            return hub.commits[sha].files

        def _tree_get(self, repo_id, repo, rest, body, query) -> None:
            rev = rest.split("/", 1)[0]
            files = self._files_at(repo, rev)
            if files is None:
                return
            entries = []
            for path, data in sorted(files.items()):
                entry = {"type": "file", "path": path, "size": len(data), "oid": git_blob_id(data)}
                if hub.is_lfs(path, len(data)):
                    entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                entries.append(entry)
            self._send(200, entries)

        def _revision_get(self, repo_id, repo, rev, body, query) -> None:
            sha = hub._resolve(repo, rev)
            if sha is None:
                return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            siblings = [{"rfilename": p} for p in sorted(hub.commits[sha].files)]
            self._send(200, {"id": repo_id, "sha": sha, "private": repo.private, "siblings": siblings})

        # ---------------------------------------------------------- uploads

        def _preupload_post(self, repo_id, repo, rev, body, query) -> None:
            files = self._files_at(repo, rev)
            if files is None:
                return
            answer = []
            for item in json.loads(body)["files"]:
                lfs = hub.is_lfs(item["path"], item["size"])
                oid = None
                if item["path"] in files:
                    remote = files[item["path"]]
                    # the client compares this with its own oid: sha256 for lfs files, git's blob id otherwise
                    oid = hashlib.sha256(remote).hexdigest() if lfs else git_blob_id(remote)
                answer.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular",
                               "shouldIgnore": False, "oid": oid})
            self._send(200, {"files": answer})

        def _lfs_batch(self, repo_id: str, payload: dict) -> None:
            if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", ["basic"]):
                return self._error(422, "only basic uploads are served here")
            objects = []
            for obj in payload["objects"]:
                entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in hub.lfs:  # already stored: no actions, the client skips the upload
                    entry["actions"] = {"upload": {"href": f"{hub.url}/lfs-storage/{obj['oid']}"},
                                        "verify": {"href": f"{hub.url}/{repo_id}.git/info/lfs/objects/verify"}}
                objects.append(entry)
            self._send(200, {"transfer": "basic", "objects": objects})

        def _lfs_put(self, oid: str, body: bytes) -> None:
            if hashlib.sha256(body).hexdigest() != oid:
                return self._error(400, "content does not match its oid")
            hub.lfs[oid] = body
            hub.lfs_puts.append(oid)
            self._send(200, None, {"ETag": f'"{oid[:32]}"'})

        def _lfs_verify(self, payload: dict) -> None:
            data = hub.lfs.get(payload["oid"])
            if data is None or len(data) != payload["size"]:
                return self._error(404, "object not found or of another size")
            self._send(200, {})

        def _commit_post(self, repo_id, repo, branch, body, query) -> None:
            if not self._writable():
                return
            if branch not in repo.branches:
                return self._error(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            if not lines or lines[0]["key"] != "header":
                return self._error(400, "the first line of a commit must be its header")
            header = lines[0]["value"]
            head = repo.branches[branch]
            if header.get("parentCommit") not in (None, head):
                return self._error(412, "A commit has happened since. Please refresh and try again.")
            files = dict(hub.commits[head].files)
            paths = [line["value"]["path"] for line in lines[1:]]
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                if key == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "lfsFile":
                    data = hub.lfs.get(value["oid"])
                    if data is None or ("size" in value and len(data) != value["size"]):
                        return self._error(422, f"lfs object {value['oid']} of {value['path']} was never uploaded")
                    files[value["path"]] = data
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    files = {p: d for p, d in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
                else:
                    return self._error(400, f"unknown commit operation {key!r}")
            sha = hub._new_commit(head, files, header["summary"])
            repo.branches[branch] = sha
            hub.received_commits.append((repo_id, branch, header, paths))
            self._send(200, {"success": True, "commitOid": sha, "commitUrl": f"{hub.url}/{repo_id}/commit/{sha}",
                             "hookOutput": ""})

    return Handler
