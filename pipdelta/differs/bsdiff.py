"""bsdiff4's control, diff and extra streams, each compressed with xz (smaller than bsdiff4's own bz2)."""

from __future__ import annotations

import struct

import bsdiff4.core

from pipdelta.errors import PatchFormatError
from pipdelta.format import codec

_SIZES = struct.Struct("<6Q")
_TRIPLE = 24  # bytes of one control entry: three int64


class Bsdiff:
    """bsdiff4 with the streams kept apart: the diff stream is mostly zeros and compresses far better alone."""

    name = "bsdiff4"

    def diff(self, old: bytes, new: bytes) -> bytes:
        return self.encode(bsdiff4.core.diff(old, new))

    @staticmethod
    def encode(raw: tuple[bytes, bytes, bytes]) -> bytes:
        """The payload of bsdiff4's raw control, diff and extra streams."""
        streams = [codec.xz_compress(s) for s in raw]
        sizes = (*(len(s) for s in raw), *(len(s) for s in streams))
        return _SIZES.pack(*sizes) + b"".join(streams)

    def patch(self, old: bytes, payload: bytes, size: int) -> bytes:
        if len(payload) < _SIZES.size:
            raise PatchFormatError("bsdiff4 payload is truncated")
        raw = _SIZES.unpack_from(payload)
        # The diff and extra streams supply every byte of the result once; the control stream has one entry
        # per match, and real matches are at least tens of bytes long (so 24 bytes of control per 8 of result
        # is far beyond any real patch, and bounds what a hostile one can make us allocate).
        if raw[0] % _TRIPLE or raw[1] + raw[2] != size or raw[0] > _TRIPLE * (size // 8 + 64):
            raise PatchFormatError("bsdiff4 payload declares impossible stream sizes")
        position, streams = _SIZES.size, []
        for what, length, packed in zip(("control", "diff", "extra"), raw[:3], raw[3:], strict=True):
            streams.append(codec.xz_decompress(payload[position : position + packed], length, f"bsdiff4 {what}"))
            position += packed
        if position != len(payload):
            raise PatchFormatError("bsdiff4 payload has trailing bytes")
        try:
            return bytes(bsdiff4.core.patch(old, size, *streams))
        except (ValueError, MemoryError, OverflowError) as exc:
            raise PatchFormatError(f"corrupt bsdiff4 payload ({exc})") from None
