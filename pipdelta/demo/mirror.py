"""The demo's mirror: a folder of wheels as a PEP 503 index with PEP 658 metadata, served on 127.0.0.1."""

from __future__ import annotations

import hashlib
import html
import shutil
import threading
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import parse_wheel_filename


class QuietHandler(SimpleHTTPRequestHandler):
    """Static files without a log line per request; wheels are immutable, as on PyPI."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def end_headers(self) -> None:
        if self.path.endswith(".whl"):
            self.send_header("Cache-Control", "max-age=365000000, immutable, public")
        super().end_headers()


class Served:
    """A folder served over HTTP in a daemon thread until :meth:`close`."""

    def __init__(self, directory: Path, handler: type[SimpleHTTPRequestHandler] = QuietHandler) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_simple_index(wheels: Iterable[Path], root: Path) -> None:
    """``root/simple/<project>/index.html`` linking to ``root/files/<wheel>#sha256=…``, as PyPI's pages do.

    Each wheel's METADATA is published beside it (``<wheel>.metadata``), so that pip's resolver reads a
    few kB instead of downloading the wheel to learn its dependencies.
    """
    projects: dict[str, list[Path]] = defaultdict(list)
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        if wheel.parent != files:
            shutil.copy2(wheel, files / wheel.name)
        projects[parse_wheel_filename(wheel.name)[0]].append(files / wheel.name)
    for project, paths in projects.items():
        folder = root / "simple" / project
        folder.mkdir(parents=True, exist_ok=True)
        links = "".join(_link(path) for path in sorted(paths))
        folder.joinpath("index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
    names = "".join(f'<a href="{p}/">{p}</a><br>\n' for p in sorted(projects))
    (root / "simple" / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{names}</body></html>\n")


def _link(wheel: Path) -> str:
    name = html.escape(wheel.name)
    attributes = ""
    metadata = _metadata(wheel)
    if metadata is not None:
        wheel.with_name(wheel.name + ".metadata").write_bytes(metadata)
        pin = f"sha256={hashlib.sha256(metadata).hexdigest()}"
        # PEP 714 renamed PEP 658's attribute; pip before 23.3 reads only the old name.
        attributes = f' data-core-metadata="{pin}" data-dist-info-metadata="{pin}"'
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return f'<a href="../../files/{name}#sha256={digest}"{attributes}>{name}</a><br>\n'


def _metadata(wheel: Path) -> bytes | None:
    try:
        with zipfile.ZipFile(wheel) as archive:
            found = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            return archive.read(found[0]) if len(found) == 1 else None
    except (OSError, zipfile.BadZipFile):
        return None
