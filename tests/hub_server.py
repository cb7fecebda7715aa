"""A stand-in for the Hugging Face hub, on 127.0.0.1, good enough for huggingface_hub 2.4's download code.

It serves what a snapshot download asks for: ``GET /api/models/<repo>/revision/<rev>`` (the commit),
``GET /api/models/<repo>/tree/<rev>`` (the files, sizes and hashes), and ``HEAD``/``GET`` on
``/<repo>/resolve/<rev>/<file>`` (``X-Repo-Commit``, ``ETag``, ``Content-Length``, ``Range``). A test can make a
repo answer 401/403/404/500, hold a file transfer after N bytes until it says so (:meth:`HubServer.pause`), or
drop the connection after N bytes and then answer errors (:meth:`HubServer.break_after`). Every request is
logged (:attr:`HubServer.requests`). The ``hub_server`` fixture starts one, points ``HF_ENDPOINT`` at it and
allows network (``HF_HUB_OFFLINE=0``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest

WAIT_S = 30.0  # longest a paused transfer waits for the test; teardown releases it at once


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Pause:
    """Holds the first GET of a file after ``after`` bytes: ``reached`` is set then, the server waits for
    ``release`` and then sends the rest (or closes the connection if ``drop``)."""

    after: int
    drop: bool = False
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    used: bool = False


@dataclass
class Repo:
    repo_id: str
    files: dict[str, bytes]
    lfs: set[str]
    sha: str
    status: int | None = None  # answer every request of this repo with this HTTP status
    error_code: str | None = None  # and this X-Error-Code header
    files_only: bool = False  # ...but only file requests (a gated repo: its listing is public)
    pauses: dict[str, Pause] = field(default_factory=dict)
    failing: dict[str, int] = field(default_factory=dict)  # file -> status for every GET after a break

    def etag(self, path: str) -> str:
        data = self.files[path]
        if path in self.lfs:
            return hashlib.sha256(data).hexdigest()
        return git_blob_sha1(data)


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up (a cancelled download) is not an error here


class HubServer:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        for repo in self.repos.values():
            for pause in repo.pauses.values():
                pause.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def add_repo(self, repo_id: str, files: dict[str, bytes], *, lfs: tuple[str, ...] = (),
                 status: int | None = None, error_code: str | None = None, files_only: bool = False) -> Repo:
        sha = hashlib.sha1(repo_id.encode() + b"".join(sorted(files.values()))).hexdigest()
        repo = Repo(repo_id, dict(files), set(lfs), sha, status, error_code, files_only)
        self.repos[repo_id] = repo
        return repo

    def pause(self, repo_id: str, path: str, after: int, *, drop: bool = False) -> Pause:
        pause = self.repos[repo_id].pauses[path] = Pause(after, drop)
        return pause

    def break_after(self, repo_id: str, path: str, after: int, *, then_status: int = 500) -> None:
        """The next GET of the file drops the connection after ``after`` bytes; every later GET answers
        ``then_status`` (until :meth:`heal`)."""
        pause = self.pause(repo_id, path, after, drop=True)
        pause.release.set()
        self.repos[repo_id].failing[path] = then_status

    def heal(self, repo_id: str) -> None:
        repo = self.repos[repo_id]
        repo.failing.clear()
        repo.pauses.clear()
        repo.status = None

    def gets(self, filename: str | None = None) -> list[Request]:
        """The GET requests of files (``/resolve/``), optionally of one file."""
        with self.lock:
            return [r for r in self.requests if r.method == "GET" and "/resolve/" in r.path
                    and (filename is None or r.path.endswith("/" + filename))]


_API = re.compile(r"^/api/models/(?P<repo>.+?)/(?P<what>revision|tree)/(?P<rev>[^/]+)/?$")
_RESOLVE = re.compile(r"^/(?P<repo>.+?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


def _handler_for(server: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _serve(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            with server.lock:
                server.requests.append(Request(self.command, path, dict(self.headers.items())))
            try:
                if m := _API.match(path):
                    self._api(m["repo"], m["what"], m["rev"])
                elif m := _RESOLVE.match(path):
                    self._resolve(m["repo"], m["rev"], m["file"], head)
                else:
                    self._json(404, {"error": "not found"})
            except (ConnectionError, TimeoutError):
                self.close_connection = True

        def _repo(self, repo_id: str, rev: str, file: bool = False) -> Repo | None:
            repo = server.repos.get(repo_id)
            if repo is None:
                self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                return None
            if repo.status is not None and (file or not repo.files_only):
                extra = {"X-Error-Code": repo.error_code} if repo.error_code else {}
                self._json(repo.status, {"error": f"HTTP {repo.status}"}, extra)
                return None
            if rev not in ("main", repo.sha):
                self._json(404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"})
                return None
            return repo

        def _api(self, repo_id: str, what: str, rev: str) -> None:
            if (repo := self._repo(repo_id, rev)) is None:
                return
            if what == "revision":
                self._json(200, {"id": repo_id, "sha": repo.sha,
                                 "siblings": [{"rfilename": p} for p in sorted(repo.files)]})
                return
            entries = []
            for p, data in sorted(repo.files.items()):
                entry: dict[str, object] = {"type": "file", "path": p, "size": len(data), "oid": git_blob_sha1(data)}
                if p in repo.lfs:
                    entry["lfs"] = {"oid": repo.etag(p), "size": len(data), "pointerSize": 134}
                entries.append(entry)
            self._json(200, entries)

        def _resolve(self, repo_id: str, rev: str, filename: str, head: bool) -> None:
            if (repo := self._repo(repo_id, rev, file=True)) is None:
                return
            if filename not in repo.files:
                self._json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                return
            data = repo.files[filename]
            pause = repo.pauses.get(filename)
            if not head and filename in repo.failing and (pause is None or pause.used):
                self._json(repo.failing[filename], {"error": "server error"})
                return
            start = 0
            if not head and (m := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))):
                start = int(m[1])
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", repo.sha)
            self.send_header("ETag", f'"{repo.etag(filename)}"')
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if head:
                return
            body = data[start:]
            if pause is not None and not pause.used and pause.after < len(body):
                pause.used = True
                self.wfile.write(body[: pause.after])
                self.wfile.flush()
                pause.reached.set()
                pause.release.wait(WAIT_S)
                if pause.drop:
                    self.close_connection = True
                    return
                body = body[pause.after:]
            self.wfile.write(body)

        def _json(self, status: int, value: object, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler


@pytest.fixture
def hub_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """A running :class:`HubServer`, with ``HF_ENDPOINT`` pointing at it and network allowed."""
    server = HubServer().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "60")  # a paused transfer waits for the test, not a timeout
    try:
        yield server
    finally:
        server.stop()
