"""A local stand-in for the Hugging Face hub: the HTTP endpoints `snapshot_download` uses.

    GET  /api/models/{repo}/revision/{rev}    repo info: commit sha and file list
    GET  /api/models/{repo}/tree/{rev}        file listing (path, size, oid)
    HEAD /{repo}/resolve/{rev}/{file}         X-Repo-Commit, ETag, Content-Length
    GET  /{repo}/resolve/{rev}/{file}         the bytes; honours `Range: bytes=K-`

Errors carry the hub's `X-Error-Code` header (RepoNotFound, RevisionNotFound,
EntryNotFound), which is how huggingface_hub tells them apart. Faults on demand:
`cut_once` files break off half-way through their first download, `refuse_get` files
answer 403, `answer_commit` makes repo info report another commit than asked for.
Every request is recorded (method, path, Range header) so tests can see what was fetched.
Binds 127.0.0.1 on a free port; point `HF_ENDPOINT` at `url`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]]  # commit sha -> {filename: content}
    refs: dict[str, str] = field(default_factory=dict)  # "main" -> commit sha

    def resolve(self, revision: str) -> str | None:
        if revision in self.commits:
            return revision
        return self.refs.get(revision)


@dataclass
class Request:
    method: str
    path: str
    range: str | None


def commit_id(label: str) -> str:
    """A fake, stable 40-hex commit id."""
    return hashlib.sha1(label.encode()).hexdigest()


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir()) if p.is_file()}


class HubStandIn:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[Request] = []
        self.cut_once: set[str] = set()
        self.refuse_get: set[str] = set()
        self.answer_commit: dict[str, str] = {}  # repo id -> commit to report
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo_id: str, files: dict[str, bytes], *, commit: str | None = None, ref: str = "main") -> str:
        commit = commit or commit_id(repo_id + json.dumps(sorted(files)))
        repo = self.repos.setdefault(repo_id, Repo(commits={}))
        repo.commits[commit] = files
        repo.refs[ref] = commit
        return commit

    def gets(self, filename: str) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.path.endswith("/" + filename) and "/resolve/" in r.path]

    def __enter__(self) -> "HubStandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- HTTP -----------------------------------------------------------------------------

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def do_GET(self) -> None:
                self._serve(head=False)

            def _error(self, status: int, code: str) -> None:
                body = json.dumps({"error": code}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, data: object) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _serve(self, head: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                with hub._lock:
                    hub.requests.append(Request(self.command, path, self.headers.get("Range")))
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
                    self._api(f"{parts[2]}/{parts[3]}", parts[4], parts[5])
                elif len(parts) >= 5 and parts[2] == "resolve":
                    self._file(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), head)
                else:
                    self._error(404, "EntryNotFound")

            def _api(self, repo_id: str, kind: str, revision: str) -> None:
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(404, "RepoNotFound")
                commit = repo.resolve(revision)
                if commit is None:
                    return self._error(404, "RevisionNotFound")
                files = repo.commits[commit]
                if kind == "revision":
                    self._json({
                        "id": repo_id, "modelId": repo_id, "private": False,
                        "sha": hub.answer_commit.get(repo_id, commit),
                        "siblings": [{"rfilename": name} for name in files],
                    })
                else:
                    self._json([
                        {"type": "file", "path": name, "size": len(data),
                         "oid": hashlib.sha1(data).hexdigest()}
                        for name, data in files.items()
                    ])

            def _file(self, repo_id: str, revision: str, filename: str, head: bool) -> None:
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(404, "RepoNotFound")
                commit = repo.resolve(revision)
                if commit is None:
                    return self._error(404, "RevisionNotFound")
                data = repo.commits[commit].get(filename)
                if data is None:
                    return self._error(404, "EntryNotFound")
                if not head and filename in hub.refuse_get:
                    return self._error(403, "Forbidden")
                start = 0
                range_header = self.headers.get("Range")
                if range_header and range_header.startswith("bytes=") and not head:
                    start = int(range_header[len("bytes="):].split("-", 1)[0] or 0)
                body = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", commit)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if head:
                    return
                with hub._lock:
                    cut = filename in hub.cut_once
                    hub.cut_once.discard(filename)
                if cut:
                    # Half the bytes, then the connection drops: an interrupted download.
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        return Handler
