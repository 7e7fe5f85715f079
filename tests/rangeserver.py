"""A real HTTP server on 127.0.0.1 serving one file with Range support (or without, or lying), counting."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

from simpleindex import running

MODES = ("multipart", "first-only", "refuse", "short", "wrong")


class RangeServer:
    """``data`` at ``/file.whl``: ``multipart`` answers several ranges in one response, ``first-only`` only the
    first range asked, ``refuse`` always the whole file (200), ``short`` and ``wrong`` lie about the bytes."""

    def __init__(self, data: bytes, mode: str = "multipart") -> None:
        assert mode in MODES
        self.data, self.mode = data, mode
        self.requests = 0
        self.sent = 0
        self.lock = threading.Lock()

    def answer(self, header: str | None) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for a GET with this Range header."""
        wanted = [(int(a), int(b)) for a, b in re.findall(r"(\d+)-(\d+)", header or "")]
        if self.mode == "refuse" or not wanted:
            return 200, {"Content-Type": "application/octet-stream"}, self.data
        if self.mode == "first-only":
            wanted = wanted[:1]
        parts = [(a, b, self.data[a : b + 1]) for a, b in wanted]
        if self.mode == "short":
            parts = [(a, b, data[:-1]) for a, b, data in parts]
        if self.mode == "wrong":
            parts = [(a, b, bytes(255 - x for x in data)) for a, b, data in parts]
        total = len(self.data)
        if len(parts) == 1:
            a, b, data = parts[0]
            return 206, {"Content-Range": f"bytes {a}-{b}/{total}"}, data
        body = b"".join(
            b"--SEP\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes %d-%d/%d\r\n\r\n%s\r\n"
            % (a, b, total, data)
            for a, b, data in parts
        )
        return 206, {"Content-Type": "multipart/byteranges; boundary=SEP"}, body + b"--SEP--\r\n"


@contextmanager
def serving(server: RangeServer) -> Iterator[str]:
    """The server running on 127.0.0.1; yields the file's URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = server.answer(self.headers.get("Range"))
            with server.lock:
                server.requests += 1
                server.sent += len(body)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with running(Handler) as port:
        yield f"http://127.0.0.1:{port}/file.whl"
