"""zstd from the standard library (3.14+) or its backport, with bounded decompression."""

from __future__ import annotations

import sys

from pipdelta.errors import PatchFormatError

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

__all__ = ["compress", "decompress", "zstd"]


def compress(data: bytes, level: int = 19) -> bytes:
    return zstd.compress(data, level=level)


def decompress(data: bytes, size: int, what: str) -> bytes:
    """Decompress a zstd frame that must give exactly ``size`` bytes, never allocating more."""
    try:
        decompressor = zstd.ZstdDecompressor()
        out = decompressor.decompress(data, max_length=size + 1)
    except zstd.ZstdError as exc:
        raise PatchFormatError(f"corrupt {what} in the patch ({exc})") from None
    if len(out) != size or not decompressor.eof or decompressor.unused_data:
        raise PatchFormatError(f"corrupt {what} in the patch (wrong length or trailing data)")
    return out
