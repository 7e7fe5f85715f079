"""The benchmarks' link and mirror: a folder of wheels as a simple index on 127.0.0.1, behind a token bucket.

``Link`` is the one connection to the internet every server shares: bytes leave at ``rate`` per second at
most (with a 64 KiB burst), however many connections send at once, and it counts them. ``Mirror`` serves
``/simple/<project>/`` (PEP 691 JSON or PEP 503 HTML as the ``Accept`` header asks, with sha256 hashes and
PEP 658 metadata, as PyPI does; or, ``bare``, HTML links without either, as a plain folder of files),
``/files/<wheel>`` and ``/files/<wheel>.metadata``, and any ``/deltas/...`` file of a static delta index.
"""

from __future__ import annotations

import hashlib
import html
import json
import threading
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import parse_wheel_filename

JSON = "application/vnd.pypi.simple.v1+json"
_CHUNK = 16 << 10


class Link:
    """A token bucket: ``rate`` bytes/s shared by every sender, at most ``burst`` at once; ``sent`` counts bytes."""

    def __init__(self, rate: float, burst: int = 64 << 10) -> None:
        self.rate = rate
        self.burst = burst
        self.sent = 0
        self._tokens = float(burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def send(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate) - len(data)
            self._last = now
            self.sent += len(data)
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait:
            time.sleep(wait)
        handler.wfile.write(data)


class Mirror:
    """The pages, files and metadata of ``wheels`` (bare: HTML links only), and a delta index folder."""

    def __init__(self, wheels: Iterable[Path], deltas: Path, *, bare: bool) -> None:
        self.files = {w.name: w for w in wheels}
        self.deltas = deltas.resolve()
        self.bare = bare
        self.metadata = {} if bare else {name: _metadata(path) for name, path in self.files.items()}
        projects: dict[str, list[str]] = defaultdict(list)
        for name in sorted(self.files):
            projects[parse_wheel_filename(name)[0]].append(name)
        self.projects = dict(projects)
        self.hashes = {} if bare else {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in self.files.items()}

    def page(self, project: str, accept: str) -> tuple[str, bytes] | None:
        names = self.projects.get(project)
        if names is None:
            return None
        if not self.bare and JSON in accept:
            files = [self._entry(name) for name in names]
            body = {"meta": {"api-version": "1.1"}, "name": project, "files": files}
            return JSON, json.dumps(body).encode()
        links = "".join(self._anchor(name) for name in names)
        return "text/html", f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode()

    def _entry(self, name: str) -> dict[str, object]:
        pin = {"sha256": hashlib.sha256(self.metadata[name]).hexdigest()}
        return {
            "filename": name,
            "url": f"../../files/{name}",
            "hashes": {"sha256": self.hashes[name]},
            "size": self.files[name].stat().st_size,
            "core-metadata": pin,
            "dist-info-metadata": pin,
        }

    def _anchor(self, name: str) -> str:
        if self.bare:
            return f'<a href="../../files/{html.escape(name)}">{html.escape(name)}</a><br>\n'
        pin = hashlib.sha256(self.metadata[name]).hexdigest()
        href = f"../../files/{html.escape(name)}#sha256={self.hashes[name]}"
        return f'<a href="{href}" data-core-metadata="sha256={pin}">{html.escape(name)}</a><br>\n'

    def find(self, path: str, accept: str) -> tuple[str, bytes | Path] | None:
        """What ``path`` names: a content type and the bytes or file to send."""
        parts = [p for p in path.split("?")[0].split("/") if p]
        if len(parts) == 2 and parts[0] == "simple":
            return self.page(parts[1], accept)
        if len(parts) == 2 and parts[0] == "files":
            if parts[1] in self.files:
                return "application/octet-stream", self.files[parts[1]]
            wheel = parts[1].removesuffix(".metadata")
            if wheel in self.metadata and wheel != parts[1]:
                return "application/octet-stream", self.metadata[wheel]
        if parts[:1] == ["deltas"] and not any(p.startswith(".") for p in parts):
            file = self.deltas.joinpath(*parts[1:]) if parts[1:] else self.deltas / "index.json"
            if file.resolve().is_relative_to(self.deltas) and file.is_file():
                return "application/json" if file.suffix == ".json" else "application/octet-stream", file
        return None


def _metadata(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA")))


class Served:
    """``mirror`` on 127.0.0.1 behind ``link`` in a daemon thread; ``url`` is its root."""

    def __init__(self, mirror: Mirror, link: Link) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, *, body: bool) -> None:
                found = mirror.find(self.path, self.headers.get("Accept", ""))
                if found is None:
                    self.send_error(404)
                    return
                kind, content = found
                size = content.stat().st_size if isinstance(content, Path) else len(content)
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(size))
                if isinstance(content, Path):  # as PyPI: files never change (pip's HTTP cache keeps them)
                    self.send_header("Cache-Control", "max-age=365000000, immutable, public")
                self.end_headers()
                if not body:
                    return
                if isinstance(content, bytes):
                    for start in range(0, len(content), _CHUNK):
                        link.send(self, content[start : start + _CHUNK])
                    return
                with content.open("rb") as stream:
                    while chunk := stream.read(_CHUNK):
                        link.send(self, chunk)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
