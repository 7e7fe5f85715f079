"""What fetching byte ranges of a wheel costs on the wire, next to carrying the bytes in a patch."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

# A request and its response's status line and headers (measured against common servers: 400 to 700 bytes).
REQUEST = 600
# A part of a multipart/byteranges response: its boundary and its Content-Type and Content-Range lines.
PART = 100


def ranges_cost(ranges: Sequence[tuple[int, int]], requests: int = 1) -> int:
    """Bytes on the wire for ``ranges`` fetched in ``requests`` requests."""
    return parts_cost(sum(length for _, length in ranges), len(ranges), requests)


def parts_cost(length: int, parts: int, requests: int) -> int:
    """Bytes on the wire for ``parts`` ranges of ``length`` bytes in all, fetched in ``requests`` requests."""
    return length + PART * parts + REQUEST * requests


def carried_cost(data: bytes) -> int:
    """About what ``data`` adds to a patch's payload (compressed data is mostly incompressible)."""
    return len(zlib.compress(data, 1)) if data else 0
