"""A PEP 691 (JSON) or PEP 503 (HTML) simple index upstream: a project's wheels, and verified downloads."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName

from pipdelta.errors import PipdeltaError
from pipdelta.format.limits import MAX_WHEEL

ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
MAX_PAGE = 64 << 20  # the largest project pages on PyPI are a few MB


class UpstreamError(PipdeltaError):
    """The upstream index could not be read, or served something other than it promised."""


@dataclass(frozen=True)
class UpstreamFile:
    """A wheel the upstream index lists: absolute URL, sha256 and size (when the index gives it, PEP 700)."""

    filename: str
    url: str
    sha256: str
    size: int | None


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))


class SimpleIndex:
    """``SimpleIndex("https://mirror.example/simple")``: read pages and fetch wheels from it."""

    def __init__(self, url: str, timeout: float = 60) -> None:
        self.url = url.rstrip("/") + "/"
        self.timeout = timeout

    def wheels(self, project: NormalizedName) -> list[UpstreamFile]:
        """The project's wheels that are not yanked and carry a sha256; [] when upstream has no such project."""
        page_url = urllib.parse.urljoin(self.url, f"{project}/")
        try:
            with urllib.request.urlopen(
                urllib.request.Request(page_url, headers={"Accept": ACCEPT}), timeout=self.timeout
            ) as response:
                kind = response.headers.get_content_type()
                page = response.read(MAX_PAGE + 1)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise UpstreamError(f"upstream {page_url} answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise UpstreamError(f"cannot reach upstream {page_url}: {exc}") from None
        if len(page) > MAX_PAGE:
            raise UpstreamError(f"upstream page {page_url} is over {MAX_PAGE:,} bytes")
        files = _from_json(page, page_url) if kind.endswith("json") else _from_html(page, page_url)
        # A filename becomes a path in the cache: nothing that could name another folder gets through.
        return [f for f in files if f.filename.endswith(".whl") and _plain(f.filename)]

    def size(self, wheel: UpstreamFile) -> int | None:
        """The wheel's size from a HEAD request (for pages that do not give it), or None."""
        try:
            request = urllib.request.Request(wheel.url, method="HEAD")
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                length = response.headers.get("Content-Length")
        except (urllib.error.URLError, OSError):
            return None
        return int(length) if length and length.isdigit() else None

    def download(self, wheel: UpstreamFile, folder: Path) -> Path:
        """``folder/<filename>``, fetched once and checked against the sha256 upstream published."""
        path = folder / wheel.filename
        if path.is_file():
            return path
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{wheel.filename}.", suffix=".part", dir=folder)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(wheel.url, timeout=self.timeout) as response:
                while chunk := response.read(1 << 20):
                    size += len(chunk)
                    if size > MAX_WHEEL:
                        raise UpstreamError(f"{wheel.url} is larger than {MAX_WHEEL:,} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != wheel.sha256:
                raise UpstreamError(f"{wheel.url} does not have the sha256 upstream lists for it")
            os.replace(tmp, path)
        except (urllib.error.URLError, OSError) as exc:
            raise UpstreamError(f"cannot download {wheel.url}: {exc}") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path


def _plain(filename: str) -> bool:
    return not filename.startswith(".") and not any(c in filename for c in "/\\:\x00")


def _from_json(page: bytes, page_url: str) -> list[UpstreamFile]:
    try:
        obj = json.loads(page)
        entries: list[dict[str, Any]] = obj["files"]
        out = []
        for entry in entries:
            sha256 = entry.get("hashes", {}).get("sha256")
            if isinstance(sha256, str) and not entry.get("yanked"):
                size = entry.get("size")
                url = urllib.parse.urljoin(page_url, entry["url"])
                out.append(UpstreamFile(entry["filename"], url, sha256.lower(), size if type(size) is int else None))
        return out
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise UpstreamError(f"upstream {page_url} is not a PEP 691 project page ({exc})") from None


def _from_html(page: bytes, page_url: str) -> list[UpstreamFile]:
    parser = _Anchors()
    parser.feed(page.decode("utf-8", "replace"))
    out = []
    for link in parser.links:
        href = link.get("href")
        if not href or "data-yanked" in link:
            continue
        url, _, fragment = urllib.parse.urljoin(page_url, href).partition("#")
        algorithm, _, value = fragment.partition("=")
        if algorithm == "sha256" and value:
            out.append(UpstreamFile(urllib.parse.unquote(url.rsplit("/", 1)[-1]), url, value.lower(), None))
    return out
