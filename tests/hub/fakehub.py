"""A local stand-in for the Hugging Face hub and its CDN, speaking the HTTP API `huggingface_hub` uses.

    hub  GET  /api/models?search=&filter=&limit=           search (list of model summaries)
         GET  /api/models/{repo}[/revision/{rev}]?blobs=  model info with siblings (size, lfs.sha256)
         HEAD /{repo}/resolve/{rev}/{file}                 302 to the CDN + X-Repo-Commit, X-Linked-Etag, X-Linked-Size
         GET  /{repo}/resolve/{rev}/{file}                 the same redirect (or the bytes, with redirect=False)
    cdn  HEAD/GET /blobs/{sha256}                          the bytes, with Range support

The CDN listens on another port, so it is another origin: a client must not send it the hub token. Every
request is recorded (host, method, path, Authorization, Range, body bytes sent). Faults are set per file:
drop the connection at a share of the body, stall, flip a byte, serve a truncated body, advertise a wrong
sha256 or a huge size.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

CHUNK = 64 << 10
TOKEN = "hf_fake_secret_token_0123456789"


@dataclass
class Faults:
    """What goes wrong when a file is served (each `*_times` counts down per request that hits it)."""

    drop_at: float | None = None
    drop_times: int = 1
    stall_at: float | None = None
    stall_seconds: float = 3.0
    stall_times: int = 1
    flip_offset: int | None = None
    truncate_to: int | None = None
    wrong_sha256: bool = False
    advertised_size: int | None = None


@dataclass
class Hosted:
    """A file served by the fake hub."""

    repo: str
    name: str
    path: Path
    sha256: str
    size: int
    faults: Faults = field(default_factory=Faults)

    @property
    def advertised_sha256(self) -> str:
        return ("0" * 64) if self.faults.wrong_sha256 else self.sha256

    @property
    def advertised_size(self) -> int:
        return self.faults.advertised_size or self.size


@dataclass
class Repo:
    repo_id: str
    commit: str
    files: dict[str, Hosted]
    downloads: int = 0
    likes: int = 0
    gated: bool = False
    license: str | None = None
    extra_files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Seen:
    """One request as the fake hub received it."""

    host: str
    method: str
    path: str
    authorization: str | None
    range: str | None
    sent: int = 0


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class FakeHub:
    """The hub and its CDN, each a threaded HTTP server on 127.0.0.1."""

    def __init__(self, *, redirect: bool = True) -> None:
        self.repos: dict[str, Repo] = {}
        self.blobs: dict[str, Hosted] = {}
        self.requests: list[Seen] = []
        self.redirect = redirect
        self.redirect_to: str | None = None  # another base URL for the CDN redirect (a hostile hub)
        self.lock = threading.Lock()
        self._hub = _Server(self, "hub")
        self._cdn = _Server(self, "cdn")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._hub.server_port}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._cdn.server_port}"

    def start(self) -> FakeHub:
        for server in (self._hub, self._cdn):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()

    def add_repo(self, repo_id: str, files: dict[str, Path], *, downloads: int = 100, likes: int = 1,
                 gated: bool = False, license: str | None = "apache-2.0",
                 extra_files: dict[str, bytes] | None = None) -> Repo:
        hosted = {}
        for name, path in files.items():
            digest = sha256_file(path)
            hosted[name] = Hosted(repo_id, name, path, digest, path.stat().st_size)
            self.blobs[digest] = hosted[name]
        commit = hashlib.sha1(repo_id.encode()).hexdigest()
        repo = Repo(repo_id, commit, hosted, downloads, likes, gated, license, dict(extra_files or {}))
        self.repos[repo_id.lower()] = repo
        return repo

    def file(self, repo_id: str, name: str) -> Hosted:
        return self.repos[repo_id.lower()].files[name]

    def seen(self, host: str | None = None, method: str | None = None) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if (host is None or r.host == host)
                    and (method is None or r.method == method)]

    def bytes_sent(self, sha256: str | None = None) -> int:
        return sum(r.sent for r in self.seen("cdn") if sha256 is None or sha256 in r.path) + sum(
            r.sent for r in self.seen("hub") if "/resolve/" in r.path)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, hub: FakeHub, role: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hub = hub
        self.role = role


_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
_INFO = re.compile(r"^/api/models/([^/]+/[^/]+?)(?:/revision/([^/]+))?$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing ------------------------------------------------------------------------------------------
    def _record(self) -> Seen:
        seen = Seen(self.server.role, self.command, self.path, self.headers.get("Authorization"),
                    self.headers.get("Range"))
        with self.server.hub.lock:
            self.server.hub.requests.append(seen)
        return seen

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, val in (headers or {}).items():
            self.send_header(key, val)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str = "") -> None:
        self._json(status, {"error": message or code}, {"X-Error-Code": code, "X-Error-Message": message or code})

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(self._record())

    def do_GET(self) -> None:  # noqa: N802
        self._route(self._record())

    def _route(self, seen: Seen) -> None:
        try:
            if self.server.role == "cdn":
                self._cdn(seen)
            else:
                self._hub(seen)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- hub -----------------------------------------------------------------------------------------------
    def _hub(self, seen: Seen) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        if path == "/api/models":
            return self._search(query)
        info = _INFO.match(path)
        if info:
            return self._info(info.group(1), info.group(2), "blobs" in query)
        resolve = _RESOLVE.match(path)
        if resolve:
            return self._resolve(seen, resolve.group(1), resolve.group(2), resolve.group(3))
        return self._error(404, "NotFound")

    def _repo(self, repo_id: str) -> Repo | None:
        repo = self.server.hub.repos.get(repo_id.lower())
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if repo.gated and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._error(403 if self.headers.get("Authorization") else 401, "GatedRepo", "Access to this repo is gated")
            return None
        return repo

    def _search(self, query: dict[str, list[str]]) -> None:
        text = (query.get("search") or [""])[0].lower()
        limit = int((query.get("limit") or ["1000"])[0])
        found = []
        for repo in self.server.hub.repos.values():
            if text in repo.repo_id.lower():
                found.append({"id": repo.repo_id, "_id": repo.commit[:24], "modelId": repo.repo_id,
                              "downloads": repo.downloads, "likes": repo.likes, "tags": ["gguf"],
                              "private": False, "lastModified": "2025-01-01T00:00:00.000Z"})
        found.sort(key=lambda r: -r["downloads"])
        self._json(200, found[:limit])

    def _info(self, repo_id: str, revision: str | None, blobs: bool) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        if revision not in (None, "main", repo.commit):
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        siblings: list[dict[str, Any]] = []
        for hosted in repo.files.values():
            sibling: dict[str, Any] = {"rfilename": hosted.name}
            if blobs:
                sibling.update(size=hosted.advertised_size, blobId=hosted.sha256[:40],
                               lfs={"size": hosted.advertised_size, "sha256": hosted.advertised_sha256,
                                    "pointerSize": 135})
            siblings.append(sibling)
        for name, data in repo.extra_files.items():
            sibling = {"rfilename": name}
            if blobs:
                sibling.update(size=len(data), blobId=hashlib.sha1(data).hexdigest())
            siblings.append(sibling)
        body = {"id": repo.repo_id, "modelId": repo.repo_id, "sha": repo.commit, "private": False,
                "gated": "auto" if repo.gated else False, "downloads": repo.downloads, "likes": repo.likes,
                "tags": ["gguf"], "siblings": siblings, "lastModified": "2025-01-01T00:00:00.000Z"}
        if repo.license:
            body["cardData"] = {"license": repo.license}
        self._json(200, body)

    def _resolve(self, seen: Seen, repo_id: str, revision: str, name: str) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        if revision not in ("main", repo.commit):
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        hosted = repo.files.get(name)
        if hosted is None:
            return self._error(404, "EntryNotFound", "Entry not found")
        headers = {"X-Repo-Commit": repo.commit, "X-Linked-Etag": f'"{hosted.advertised_sha256}"',
                   "X-Linked-Size": str(hosted.advertised_size), "ETag": f'"{hosted.sha256[:40]}"',
                   "Accept-Ranges": "bytes"}
        if self.server.hub.redirect:
            self.send_response(302)
            for key, value in headers.items():
                self.send_header(key, value)
            base = self.server.hub.redirect_to or self.server.hub.cdn_url
            self.send_header("Location", f"{base}/blobs/{hosted.sha256}?signed=1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._serve(seen, hosted, headers)

    # -- cdn -----------------------------------------------------------------------------------------------
    def _cdn(self, seen: Seen) -> None:
        match = re.match(r"^/blobs/([0-9a-f]{64})$", urlsplit(self.path).path)
        hosted = self.server.hub.blobs.get(match.group(1)) if match else None
        if hosted is None:
            return self._error(404, "NotFound")
        self._serve(seen, hosted, {"ETag": f'"{hosted.sha256}"', "Accept-Ranges": "bytes"})

    def _serve(self, seen: Seen, hosted: Hosted, headers: dict[str, str]) -> None:
        faults = hosted.faults
        size = hosted.size if faults.truncate_to is None else min(hosted.size, faults.truncate_to)
        start, end = 0, size - 1
        wanted = self.headers.get("Range")
        status = 200
        if wanted:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
            if not match:
                return self._error(416, "BadRange")
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        length = end - start + 1
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        self._body(seen, hosted, start, end + 1)

    def _body(self, seen: Seen, hosted: Hosted, start: int, stop: int) -> None:
        faults = hosted.faults
        drop = _fault_offset(hosted, faults.drop_at, "drop_times", start, stop)
        stall = _fault_offset(hosted, faults.stall_at, "stall_times", start, stop)
        with open(hosted.path, "rb") as handle:
            handle.seek(start)
            offset = start
            while offset < stop:
                step = min(CHUNK, stop - offset)
                if drop is not None and offset < drop <= offset + step:
                    step = drop - offset
                if stall is not None and offset < stall <= offset + step:
                    step = stall - offset
                data = bytearray(handle.read(step))
                if faults.flip_offset is not None and offset <= faults.flip_offset < offset + len(data):
                    data[faults.flip_offset - offset] ^= 0xFF
                self.wfile.write(data)
                offset += len(data)
                seen.sent += len(data)
                if drop is not None and offset == drop:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if stall is not None and offset == stall:
                    self.wfile.flush()
                    time.sleep(faults.stall_seconds)
                    stall = None


def _fault_offset(hosted: Hosted, share: float | None, counter: str, start: int, stop: int) -> int | None:
    """The byte offset at which a fault fires in this response (counted), or None."""
    faults = hosted.faults
    if share is None or getattr(faults, counter) <= 0:
        return None
    offset = max(1, int(hosted.size * share))
    if not start < offset < stop:
        return None
    setattr(faults, counter, getattr(faults, counter) - 1)
    return offset
