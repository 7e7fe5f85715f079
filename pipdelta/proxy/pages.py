"""Simple-index project pages: read PEP 691 JSON or PEP 503 HTML, write either, with every file field kept."""

from __future__ import annotations

import html
import json
import urllib.parse
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

from pipdelta.errors import PipdeltaError

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
# What the local index asks upstream for: JSON when offered, HTML otherwise (a bare folder of files).
ACCEPT = f"{JSON}, {HTML};q=0.2, text/html;q=0.1"
_ALIASES = {
    JSON: JSON,
    "application/vnd.pypi.simple.latest+json": JSON,
    HTML: HTML,
    "application/vnd.pypi.simple.latest+html": HTML,
    "text/html": "text/html",
}

Page = dict[str, Any]  # a project page as PEP 691 JSON: {"meta", "name", "files": [...], ...}


class PageError(PipdeltaError):
    """An upstream project page is neither PEP 691 JSON nor PEP 503 HTML."""


def negotiate(accept: str | None) -> str | None:
    """The content type to answer an ``Accept`` header with, as PyPI chooses it; None: nothing acceptable (406)."""
    if not accept:
        return "text/html"
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept.split(",")):
        kind, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        chosen = _ALIASES.get(kind.lower()) or (JSON if kind in ("*/*", "application/*") else None)
        if chosen is not None and quality > 0 and (best is None or (quality, -position) > (best[0], -best[1])):
            best = (quality, position, chosen)
    return best[2] if best else None


def parse(body: bytes, content_type: str, page_url: str) -> Page:
    """The page as PEP 691 JSON, every file URL made absolute against ``page_url``."""
    page = _from_json(body) if content_type.endswith("json") else _from_html(body)
    for entry in page["files"]:
        entry["url"] = urllib.parse.urljoin(page_url, entry["url"])
        if isinstance(entry.get("provenance"), str):
            entry["provenance"] = urllib.parse.urljoin(page_url, entry["provenance"])
    return page


def rewrite(page: Page, local_url: Callable[[str, str], str]) -> Page:
    """A copy of ``page`` whose file URLs are ``local_url(upstream_url, filename)``; nothing else changes."""
    files = [{**entry, "url": local_url(entry["url"], entry["filename"])} for entry in page["files"]]
    return {**page, "files": files}


def render(page: Page, content_type: str) -> bytes:
    """``page`` as JSON or as PEP 503 HTML with the data-* attributes of PEPs 503, 592, 658, 714 and 740."""
    if content_type == JSON:
        return json.dumps(page).encode()
    version = html.escape(str(page.get("meta", {}).get("api-version", "1.0")))
    lines = [
        "<!DOCTYPE html>",
        f'<html><head><meta name="pypi:repository-version" content="{version}">',
        f"<title>Links for {html.escape(str(page.get('name', '')))}</title></head><body>",
    ]
    lines += [_anchor(entry) for entry in page["files"]]
    lines.append("</body></html>\n")
    return "\n".join(lines).encode()


def _anchor(entry: dict[str, Any]) -> str:
    hashes: dict[str, str] = entry.get("hashes") or {}
    algorithm = "sha256" if "sha256" in hashes else next(iter(hashes), None)
    href = entry["url"] + (f"#{algorithm}={hashes[algorithm]}" if algorithm else "")
    attributes = [("href", href)]
    if entry.get("requires-python"):
        attributes.append(("data-requires-python", entry["requires-python"]))
    yanked = entry.get("yanked")
    if yanked:
        attributes.append(("data-yanked", yanked if isinstance(yanked, str) else ""))
    metadata = entry.get("core-metadata", entry.get("dist-info-metadata"))
    if metadata:
        pin = _pin(metadata)
        # PEP 714 renamed PEP 658's attribute; pip before 23.3 reads only the old name.
        attributes += [("data-core-metadata", pin), ("data-dist-info-metadata", pin)]
    if "gpg-sig" in entry:
        attributes.append(("data-gpg-sig", "true" if entry["gpg-sig"] else "false"))
    if entry.get("provenance"):
        attributes.append(("data-provenance", entry["provenance"]))
    text = " ".join(f'{key}="{html.escape(str(value))}"' for key, value in attributes)
    return f"<a {text}>{html.escape(entry['filename'])}</a><br>"


def _pin(metadata: object) -> str:
    if isinstance(metadata, dict) and metadata:
        algorithm = "sha256" if "sha256" in metadata else next(iter(metadata))
        return f"{algorithm}={metadata[algorithm]}"
    return "true"


def _from_json(body: bytes) -> Page:
    try:
        page = json.loads(body)
        files = page["files"]
        if not isinstance(files, list) or not all(isinstance(f["url"], str) for f in files):
            raise TypeError("'files' must be a list of objects with a 'url'")
        for entry in files:
            if not isinstance(entry.get("filename"), str):
                raise TypeError("every file needs a 'filename'")
    except (ValueError, KeyError, TypeError) as exc:
        raise PageError(f"not a PEP 691 project page ({exc})") from None
    return dict(page)


class _Anchors(HTMLParser):
    """Each ``<a>`` of a page: its attributes and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.links.append((self._open, "".join(self._text).strip()))
            self._open = None


def _from_html(body: bytes) -> Page:
    parser = _Anchors()
    parser.feed(body.decode("utf-8", "replace"))
    parser.close()
    files = []
    for attrs, text in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        url, _, fragment = href.partition("#")
        algorithm, _, value = fragment.partition("=")
        filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]) or text
        entry: dict[str, Any] = {"filename": filename, "url": url, "hashes": {algorithm: value} if value else {}}
        if attrs.get("data-requires-python"):
            entry["requires-python"] = attrs["data-requires-python"]
        if "data-yanked" in attrs:
            entry["yanked"] = attrs["data-yanked"] or True
        metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        if metadata is not None:
            name, _, digest = metadata.partition("=")
            entry["core-metadata"] = {name: digest} if digest else metadata.lower() == "true"
            entry["dist-info-metadata"] = entry["core-metadata"]  # PEP 714: old pips read only this key
        if attrs.get("data-gpg-sig") is not None:
            entry["gpg-sig"] = attrs["data-gpg-sig"] == "true"
        if attrs.get("data-provenance"):
            entry["provenance"] = attrs["data-provenance"]
        files.append(entry)
    return {"meta": {"api-version": "1.0"}, "files": files}
