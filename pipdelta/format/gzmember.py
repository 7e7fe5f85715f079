"""Gzip files inside wheels: split one into header, deflate stream and content, and join it back."""

from __future__ import annotations

import struct
import zlib

from pipdelta.errors import PatchFormatError

_MAGIC = b"\x1f\x8b\x08"
_FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 0x02, 0x04, 0x08, 0x10


def header_length(content: bytes) -> int | None:
    """Length of the gzip header at the start of ``content``, or None if it is not gzip."""
    if len(content) < 18 or content[:3] != _MAGIC or content[3] & 0xE0:
        return None
    flags, position = content[3], 10
    if flags & _FEXTRA:
        position += 2 + int.from_bytes(content[position : position + 2], "little")
    for flag in (_FNAME, _FCOMMENT):
        if flags & flag:
            end = content.find(b"\0", position)
            if end < 0:
                return None
            position = end + 1
    if flags & _FHCRC:
        position += 2
    return position if position + 8 <= len(content) else None


def stream(content: bytes) -> bytes:
    """A gzip source's deflate stream and trailer: all that follows its header."""
    start = header_length(content)
    if start is None:
        raise PatchFormatError("a gzip source is no gzip file")
    return content[start:]


def split(content: bytes, limit: int) -> tuple[int, bytes] | None:
    """``(header length, uncompressed content)`` of a single-member gzip file with nothing after it."""
    start = header_length(content)
    if start is None:
        return None
    inflater = zlib.decompressobj(-15)
    try:
        inner = inflater.decompress(content[start:], limit + 1)
    except zlib.error:
        return None
    if not inflater.eof or len(inner) > limit or inflater.unused_data != trailer(inner):
        return None
    return start, inner


def trailer(inner: bytes) -> bytes:
    return struct.pack("<II", zlib.crc32(inner), len(inner) & 0xFFFFFFFF)


def gunzip(content: bytes, size: int) -> bytes:
    """The content of a gzip source whose expanded size the patch declares as ``size``."""
    found = split(content, size)
    if found is None or len(found[1]) != size:
        raise PatchFormatError("a gzip source does not expand to the size the patch declares")
    return found[1]
