"""Patches an attacker crafts from a real one: each the exact input that once broke the applier (issue 7)."""

from __future__ import annotations

import hashlib
import lzma
import struct
from collections.abc import Callable
from typing import Any

from patchtools import join, rewrite, split

from pipdelta.format import codec
from pipdelta.format.codec import zstd

Header = dict[str, Any]
GIB = 1 << 30


def named(patch: bytes, filename: str) -> bytes:
    """The same, valid patch, its target renamed (the payload and every hash still check out)."""

    def change(header: Header) -> None:
        header["new"]["filename"] = filename

    return rewrite(patch, change)


def _repayload(header: Header, payload: bytes) -> bytes:
    header["payload_size"] = len(payload)
    header["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    return join(header, payload)


def zstd_bomb(patch: bytes, size: int = GIB) -> bytes:
    """A zstd payload of ``size`` zeros (33 KB for 1 GiB), declared as the whole target blob."""
    compressor = zstd.ZstdCompressor(level=3)
    chunk = bytes(1 << 20)
    body = b"".join(compressor.compress(chunk) for _ in range(size >> 20)) + compressor.flush()
    header, _ = split(patch)
    header.update(differ="zstd", target_blob_size=size, ops=[["lit", size]])
    return _repayload(header, body)


def empty_ops(patch: bytes, count: int = 2_000_000) -> bytes:
    """Two million empty literals (8 KB of patch), which once took 3.9 GB and 41 s and were accepted."""
    header, payload = split(patch)
    header["ops"] = header["ops"] + [["lit", 0]] * count
    return join(header, payload)


def bsdiff_extra_bomb(patch: bytes, size: int = 256 << 20, *, declared: bool = True) -> bytes:
    """A bsdiff4 payload whose extra stream is ``size`` zeros (40 KB for 256 MiB), declared as the whole
    target blob, or not (``declared`` False: the header keeps the real, small target blob size)."""
    header, _ = split(patch)
    blob_size = size if declared else header["target_blob_size"]
    streams = [struct.pack("<3q", 0, size, 0), b"", bytes(size)]
    # Preset 0: fast to craft, and its smaller dictionary is within what the applier's decoder accepts.
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 0}]
    packed = [lzma.compress(s, format=lzma.FORMAT_RAW, filters=filters) for s in streams]
    payload = struct.pack("<6Q", *(len(s) for s in streams), *(len(p) for p in packed)) + b"".join(packed)
    header.update(differ="bsdiff4", target_blob_size=blob_size, ops=[["lit", blob_size]])
    return _repayload(header, payload)


def repeated_source(patch: bytes, times: int = 4_000) -> bytes:
    """The largest source named ``times`` times, each copy read in full before any hash could refuse it."""

    def change(header: Header) -> None:
        largest = max(header["sources"], key=lambda s: s[1])
        header["sources"] = header["sources"] + [largest] * times

    return rewrite(patch, change)


def nested_header(depth: int = 100_000) -> bytes:
    """A header of nothing but nested lists."""
    return join_raw(b"[" * depth + b"]" * depth)


def join_raw(body: bytes) -> bytes:
    packed = codec.xz_compress(body)
    return struct.pack(">8sHI", b"PIPDELTA", 2, len(packed)) + packed


CRAFTED: dict[str, Callable[[bytes], bytes]] = {
    "zstd-1GiB-of-zeros": zstd_bomb,
    "2M-empty-ops": empty_ops,
    "bsdiff-extra-256MiB": bsdiff_extra_bomb,
    "bsdiff-extra-256MiB-undeclared": lambda patch: bsdiff_extra_bomb(patch, declared=False),
    "source-named-4000-times": repeated_source,
    "nested-header": lambda _: nested_header(),
}
