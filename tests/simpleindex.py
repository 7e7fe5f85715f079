"""A real simple index on 127.0.0.1: PEP 691 JSON (with PEP 658 metadata) or bare PEP 503 HTML, counting downloads."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import parse_wheel_filename


class SimpleIndex:
    """The wheels of ``folder`` as ``/simple/<project>/`` pages and ``/files/<filename>`` downloads."""

    def __init__(
        self,
        folder: Path,
        *,
        json_pages: bool,
        tamper: tuple[str, ...] = (),
        hashes: bool = True,
        metadata: bool = False,
        auth: str | None = None,
    ) -> None:
        self.folder = folder
        self.json_pages = json_pages
        self.tamper = tamper  # files served with bytes that do not match their listed sha256
        self.hashes = hashes  # False: a bare folder of files, no hashes (HTML pages only)
        self.metadata = metadata  # PEP 658: each wheel's METADATA beside it, pinned on the page
        self.auth = auth  # "user:password" this index demands (HTTP basic), or None
        self.break_once: set[str] = set()  # files whose next download stops halfway (the connection drops)
        self.errors: dict[str, int] = {}  # a project or file name -> the HTTP error status it is answered with
        self.downloads: Counter[str] = Counter()
        self.pages: Counter[str] = Counter()  # project pages served, by project
        self.ranges = 0  # byte ranges answered in multipart requests
        self.authorizations: list[str] = []
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
                "versions": sorted({n.split("-")[1] for n, _, _ in files}),
                "files": [self._entry(n, h, s) for n, h, s in files],
            }
            return "application/vnd.pypi.simple.v1+json", json.dumps(body).encode()
        links = "".join(
            f'<a href="/files/{html.escape(n)}{f"#sha256={h}" if self.hashes else ""}">{html.escape(n)}</a>\n'
            for n, h, _ in files
        )
        return "text/html", f"<!DOCTYPE html><html><body>{links}</body></html>".encode()

    def _entry(self, name: str, sha256: str, size: int) -> dict[str, object]:
        """One file as PyPI lists it, with every optional field a proxy must pass on."""
        entry: dict[str, object] = {
            "filename": name,
            "url": f"../../files/{name}",
            "hashes": {"sha256": sha256},
            "size": size,
            "requires-python": ">=3.8",
            "upload-time": "2024-06-01T12:00:00.000000Z",
            "yanked": name.split("-")[1] == "0.9" and "broken build",
            "provenance": f"https://example.invalid/provenance/{name}",
        }
        if self.metadata:
            pin = {"sha256": hashlib.sha256(_metadata(self.folder / name)).hexdigest()}
            entry.update({"core-metadata": pin, "dist-info-metadata": pin})
        return entry

    def file(self, name: str) -> bytes | None:
        path = self.folder / name
        if "/" in name or not path.is_file():
            return None
        with self.lock:
            self.downloads[name] += 1
        data = path.read_bytes()
        return data[:-1] + b"!" if name in self.tamper else data

    def metadata_file(self, name: str) -> bytes | None:
        path = self.folder / name
        return _metadata(path) if self.metadata and "/" not in name and path.is_file() else None


def _metadata(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA")))


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
            if index.auth is not None:
                given = self.headers.get("Authorization", "")
                index.authorizations.append(given)
                if given != "Basic " + base64.b64encode(index.auth.encode()).decode():
                    self.send_error(401)
                    return
            parts = [p for p in self.path.split("/") if p]
            if parts and parts[-1] in index.errors:
                self.send_error(index.errors[parts[-1]])
                return
            found: tuple[str, bytes] | None = None
            if len(parts) == 2 and parts[0] == "simple":
                with index.lock:
                    index.pages[parts[1]] += 1
                found = index.page(parts[1])
            elif len(parts) == 2 and parts[0] == "files" and parts[1].endswith(".metadata"):
                data = index.metadata_file(parts[1].removesuffix(".metadata"))
                found = None if data is None else ("application/octet-stream", data)
            elif len(parts) == 2 and parts[0] == "files":
                data = index.file(parts[1])
                found = None if data is None else ("application/octet-stream", data)
            if found is None:
                self.send_error(404)
                return
            body, start = found[1], 0
            spans = re.findall(r"(\d+)-(\d*)", self.headers.get("Range", ""))
            if len(spans) > 1 and parts[0] == "files":  # several ranges: one multipart/byteranges answer
                self._multipart(body, [(int(a), int(b)) for a, b in spans])
                return
            if spans and parts[0] == "files":
                start = int(spans[0][0])
                if spans[0][1]:
                    body = body[: int(spans[0][1]) + 1]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(found[1])}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", found[0])
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if parts[-1] in index.break_once:  # half the file, then the connection drops
                index.break_once.discard(parts[-1])
                self.wfile.write(body[start : start + len(body) // 2])
                self.close_connection = True
                return
            self.wfile.write(body[start:])

        def _multipart(self, body: bytes, spans: list[tuple[int, int]]) -> None:
            out = b"".join(
                b"--pipdelta\r\nContent-Type: application/octet-stream\r\n"
                + f"Content-Range: bytes {a}-{b}/{len(body)}\r\n\r\n".encode()
                + body[a : b + 1]
                + b"\r\n"
                for a, b in spans
            )
            out += b"--pipdelta--\r\n"
            index.ranges += len(spans)
            self.send_response(206)
            self.send_header("Content-Type", "multipart/byteranges; boundary=pipdelta")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

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
