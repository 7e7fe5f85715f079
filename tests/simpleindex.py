"""A real simple index on 127.0.0.1 for the on-demand tests: PEP 691 JSON or PEP 503 HTML, counting downloads."""

from __future__ import annotations

import hashlib
import html
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import parse_wheel_filename


class SimpleIndex:
    """The wheels of ``folder`` as ``/simple/<project>/`` pages and ``/files/<filename>`` downloads."""

    def __init__(self, folder: Path, *, json_pages: bool, tamper: tuple[str, ...] = ()) -> None:
        self.folder = folder
        self.json_pages = json_pages
        self.tamper = tamper  # files served with bytes that do not match their listed sha256
        self.downloads: Counter[str] = Counter()
        self.lock = threading.Lock()

    def page(self, project: str) -> tuple[str, bytes] | None:
        wheels = sorted(p for p in self.folder.glob("*.whl") if parse_wheel_filename(p.name)[0] == project)
        if not wheels:
            return None
        files = [(p.name, hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size) for p in wheels]
        if self.json_pages:
            body = {
                "meta": {"api-version": "1.1"},
                "name": project,
                "files": [
                    {"filename": n, "url": f"../../files/{n}", "hashes": {"sha256": h}, "size": s} for n, h, s in files
                ],
            }
            return "application/vnd.pypi.simple.v1+json", json.dumps(body).encode()
        links = "".join(f'<a href="/files/{html.escape(n)}#sha256={h}">{html.escape(n)}</a>\n' for n, h, _ in files)
        return "text/html", f"<!DOCTYPE html><html><body>{links}</body></html>".encode()

    def file(self, name: str) -> bytes | None:
        path = self.folder / name
        if "/" in name or not path.is_file():
            return None
        with self.lock:
            self.downloads[name] += 1
        data = path.read_bytes()
        return data[:-1] + b"!" if name in self.tamper else data


@contextmanager
def serving(index: SimpleIndex) -> Iterator[str]:
    """Yields the index's URL (``http://127.0.0.1:PORT/simple``)."""

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            parts = [p for p in self.path.split("/") if p]
            path = index.folder / parts[-1]
            if len(parts) != 2 or parts[0] != "files" or not path.is_file():
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()

        def do_GET(self) -> None:
            parts = [p for p in self.path.split("/") if p]
            found: tuple[str, bytes] | None = None
            if len(parts) == 2 and parts[0] == "simple":
                found = index.page(parts[1])
            elif len(parts) == 2 and parts[0] == "files":
                data = index.file(parts[1])
                found = None if data is None else ("application/octet-stream", data)
            if found is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", found[0])
            self.send_header("Content-Length", str(len(found[1])))
            self.end_headers()
            self.wfile.write(found[1])

        def log_message(self, format: str, *args: object) -> None:
            pass

    with running(Handler) as port:
        yield f"http://127.0.0.1:{port}/simple"


@contextmanager
def running(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A threaded HTTP server with ``handler`` on 127.0.0.1; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
