"""pip's own HTTP cache as a source of old wheels: any cached response body with the pinned size and sha256."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from pipdelta.client import pipconfig
from pipdelta.client.environment import Environment
from pipdelta.errors import PipdeltaError

# A legacy (``http/``) entry is the body plus cachecontrol's serialized headers; these are a few KB.
_HEADERS_MAX = 64 << 10
_ZIP_START = b"PK\x03\x04"


def pip_cache_dir(environment: Environment) -> Path | None:
    """The HTTP cache folder of the environment's ``pip install``; None when its cache is off or unknown."""
    try:
        return pipconfig.cache_dir(environment.prefix()[0])
    except PipdeltaError:
        return None


def find_wheel(cache_dir: Path, size: int, sha256: str) -> bytes | None:
    """The wheel of this ``size`` and ``sha256`` if pip cached its download, in either cache format.

    Entries are keyed by a hash of the URL, and the old wheel's URL on the user's index is unknown
    (mirrors differ), so the entries are matched by size first and then by the pinned hash.
    """
    for path, exact in _candidates(cache_dir, size):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        body = data if exact else _embedded(data, size, sha256)
        if body is not None and hashlib.sha256(body).hexdigest() == sha256:
            return body
    return None


def _candidates(cache_dir: Path, size: int) -> Iterator[tuple[Path, bool]]:
    # pip >= 23.3: ``http-v2/a/b/c/d/e/<key>.body`` holds the body alone.
    for root, _, files in os.walk(cache_dir / "http-v2"):
        for name in files:
            if name.endswith(".body") and _size(Path(root, name)) == size:
                yield Path(root, name), True
    # Older pip: ``http/a/b/c/d/e/<key>`` holds headers and body together.
    for root, _, files in os.walk(cache_dir / "http"):
        for name in files:
            if size < _size(Path(root, name)) <= size + _HEADERS_MAX:
                yield Path(root, name), False


def _embedded(data: bytes, size: int, sha256: str) -> bytes | None:
    """The ``size`` bytes starting at some local-file header that hash to ``sha256``."""
    start = data.find(_ZIP_START)
    while 0 <= start <= len(data) - size:
        body = data[start : start + size]
        if hashlib.sha256(body).hexdigest() == sha256:
            return body
        start = data.find(_ZIP_START, start + 1)
    return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1
