"""A real loopback HTTP file server for URL-source tests, with knobs: missing, slow, changed, lying types."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LAST_MODIFIED = "Mon, 30 Nov 2026 08:00:00 GMT"


@dataclass(frozen=True)
class Hit:
    """One request the server answered."""

    path: str  # with its query string
    status: int
    body_bytes: int
    authorization: str | None


@dataclass
class Files:
    """What the server serves (by path, without the query string) and what it saw."""

    bodies: dict[str, bytes] = field(default_factory=dict)
    content_types: dict[str, str] = field(default_factory=dict)  # default application/octet-stream
    slow_s: dict[str, float] = field(default_factory=dict)  # wait this long before answering
    status: dict[str, int] = field(default_factory=dict)  # answer this status instead (404, 500...)
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hits_since(self, index: int) -> list[Hit]:
        with self.lock:
            return list(self.hits[index:])


def etag(data: bytes) -> str:
    return f'"{hashlib.sha256(data).hexdigest()[:16]}"'


class _Handler(BaseHTTPRequestHandler):
    files: Files  # set on the subclass made per server

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        files, path = self.files, urlsplit(self.path).path
        if path in files.slow_s:
            threading.Event().wait(files.slow_s[path])
        status, body = self._answer(files, path)
        with files.lock:  # logged before the answer leaves, so a client that has it always finds its hit
            files.hits.append(Hit(self.path, status, len(body), self.headers.get("Authorization")))
        self.send_response(status)
        if status in (200, 304):
            self.send_header("ETag", etag(files.bodies[path]))
            self.send_header("Last-Modified", LAST_MODIFIED)
        self.send_header("Content-Type", files.content_types.get(path, "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.wfile.write(body)

    def _answer(self, files: Files, path: str) -> tuple[int, bytes]:
        if path in files.status:
            return files.status[path], b"no"
        if path not in files.bodies:
            return 404, b"not here"
        if self.headers.get("If-None-Match") == etag(files.bodies[path]):
            return 304, b""
        return 200, files.bodies[path]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # quiet: tests read `hits`


@contextmanager
def serving(files: Files) -> Iterator[str]:
    """Serve `files` on 127.0.0.1 (a free port) until the block ends; yields the base URL."""
    handler = type("Handler", (_Handler,), {"files": files})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
