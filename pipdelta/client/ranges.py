"""Byte ranges of a wheel from the primary index: several per request where the server allows, checked."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from pipdelta import __version__
from pipdelta.errors import RangeError
from pipdelta.format import wire

PER_REQUEST = 64  # ranges in one Range header: about 1.5 KB of header, well inside every server's limit
_CONTENT_RANGE = re.compile(rb"bytes (\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_BOUNDARY = re.compile(r'multipart/byteranges;.*boundary="?([^";]+)"?', re.IGNORECASE)


class RangesRefused(RangeError):
    """The server answers a Range request with the whole file: the caller downloads the full wheel instead."""


def coalesce(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ranges sorted, with those that overlap or lie closer than a multipart part costs merged."""
    merged: list[tuple[int, int]] = []
    for start, length in sorted(r for r in ranges if r[1] > 0):
        if merged and start <= merged[-1][0] + merged[-1][1] + wire.PART:
            first, size = merged[-1]
            merged[-1] = (first, max(size, start + length - first))
        else:
            merged.append((start, length))
    return merged


def cost(ranges: Sequence[tuple[int, int]]) -> int:
    """Bytes on the wire to fetch ``ranges`` with multipart requests."""
    merged = coalesce(ranges)
    return wire.ranges_cost(merged, -(-len(merged) // PER_REQUEST))


def worth_it(ranges: Sequence[tuple[int, int]], wheel_size: int) -> bool:
    """True when fetching ``ranges`` costs less on the wire than downloading the whole wheel."""
    return cost(ranges) < wheel_size + wire.REQUEST


class RangeClient:
    """Byte ranges of the file at ``url`` (of ``size`` bytes, when known), as a patch's range fetcher.

    Many ranges go in one multipart request; a server that answers them one part at a time (or only the
    first) is asked range by range; one that answers with the whole file (200) raises :class:`RangesRefused`.
    Every part is checked against what was asked (position, length, file size) before it is used.
    """

    def __init__(
        self,
        url: str,
        *,
        size: int | None = None,
        pool: urllib3.PoolManager | None = None,
        timeout: float = 15.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url, self.size = url, size
        self.headers = dict(headers or {})  # the index's credentials, when it has some
        self.pool = pool or urllib3.PoolManager(headers={"User-Agent": f"pipdelta/{__version__}"})
        self.timeout = urllib3.Timeout(connect=min(timeout, 5.0), read=timeout)
        self.multipart = True
        self.requests = 0
        self.received = 0  # body bytes, as the wire cost of what was fetched

    def __call__(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each ``(offset, length)`` of the file, in the order asked."""
        merged = coalesce(ranges)
        if self.size is not None and not worth_it(merged, self.size):
            raise RangesRefused(f"the ranges of {self.url} would cost more than the wheel: download it in full")
        got: dict[int, bytes] = {}
        pending = merged
        while pending:
            batch = pending[:PER_REQUEST] if self.multipart else pending[:1]
            parts = self._request(batch)
            got.update(parts)
            if len(batch) > 1 and any(start not in parts for start, _ in batch):
                self.multipart = False  # this server answers one range at a time
            pending = [r for r in pending if r[0] not in got]
        out = []
        for start, length in ranges:
            if length <= 0:
                out.append(b"")
                continue
            first = next(s for s, n in merged if s <= start and start + length <= s + n)
            out.append(got[first][start - first : start - first + length])
        return out

    def _request(self, batch: list[tuple[int, int]]) -> dict[int, bytes]:
        header = "bytes=" + ",".join(f"{start}-{start + length - 1}" for start, length in batch)
        limit = wire.ranges_cost(batch) + 4096
        try:
            response = self.pool.request(
                "GET",
                self.url,
                headers={**self.headers, "Range": header},
                preload_content=False,
                timeout=self.timeout,
                retries=2,
            )
            body = b""
            try:
                if response.status == 200:
                    raise RangesRefused(f"{self.url} does not serve byte ranges: download the full wheel")
                if response.status != 206:
                    raise RangeError(f"{self.url} answered HTTP {response.status} to a range request")
                body = response.read(limit + 1)
            finally:  # a connection is reused only when its answer was read to the end
                if body and len(body) <= limit:
                    response.release_conn()
                else:
                    response.close()
        except Urllib3Error as exc:
            raise RangeError(f"cannot fetch ranges of {self.url}: {exc}") from None
        self.requests += 1
        self.received += len(body)
        if len(body) > limit:
            raise RangeError(f"{self.url} sent more than the ranges asked for")
        kind = response.headers.get("Content-Type", "")
        boundary = _BOUNDARY.search(kind)
        if boundary is not None:
            parts = _multipart(body, boundary.group(1).encode())
        else:
            parts = [(response.headers.get("Content-Range", "").encode(), body)]
        return dict(self._checked(part, batch) for part in parts)

    def _checked(self, part: tuple[bytes, bytes], batch: list[tuple[int, int]]) -> tuple[int, bytes]:
        """(start, bytes) of a part that is exactly one of the ranges asked for; else a one-line RangeError."""
        found = _CONTENT_RANGE.fullmatch(part[0].strip())
        if found is None:
            raise RangeError(f"{self.url} sent a part without a valid Content-Range")
        start, end, total = int(found[1]), int(found[2]), found[3]
        if (start, end - start + 1) not in batch or len(part[1]) != end - start + 1:
            raise RangeError(f"{self.url} sent bytes {start}-{end} ({len(part[1]):,} bytes), not a range asked for")
        if self.size is not None and total != b"*" and int(total) != self.size:
            raise RangeError(f"{self.url} is {int(total):,} bytes, not the {self.size:,} of the wheel asked for")
        return start, part[1]


def _multipart(body: bytes, boundary: bytes) -> list[tuple[bytes, bytes]]:
    """(Content-Range value, data) of each part of a multipart/byteranges body."""
    parts = []
    delimiter = b"--" + boundary
    position = body.find(delimiter)
    while position >= 0 and not body.startswith(b"--", position + len(delimiter)):
        head_end = body.find(b"\r\n\r\n", position)
        if head_end < 0:
            break
        headers = body[position + len(delimiter) : head_end].split(b"\r\n")
        content_range = next((h.split(b":", 1)[1] for h in headers if h.lower().startswith(b"content-range:")), b"")
        found = _CONTENT_RANGE.fullmatch(content_range.strip())
        length = int(found[2]) - int(found[1]) + 1 if found else 0
        end = head_end + 4 + length
        if not body.startswith(b"\r\n" + delimiter, end):
            raise RangeError("the server sent a part whose length is not its Content-Range's")
        parts.append((content_range, body[head_end + 4 : end]))
        position = end + 2
    if not parts:
        raise RangeError("the server sent a multipart answer without parts")
    return parts
