"""The general-purpose codecs patches use (raw LZMA2, named xz here, and zstd), with bounded decompression."""

from __future__ import annotations

import lzma
import sys

from pipdelta.errors import PatchFormatError

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

__all__ = ["xz_compress", "xz_decompress", "zstd"]

# Measured on bsdiff4's streams of real wheels: preset 6 extreme is 13 % smaller than zstd -19 and as small
# as preset 9 extreme, whose 64 MiB dictionary a decoder would have to allocate. Raw LZMA2 rather than the
# .xz container: its filters are fixed here, so a patch cannot make a decoder allocate a larger dictionary,
# and it saves the container's 60 bytes a stream, which small patches notice.
_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6 | lzma.PRESET_EXTREME}]


def xz_compress(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=_FILTERS)


def xz_decompress(data: bytes | memoryview, size: int, what: str, *, exact: bool = True) -> bytes:
    """Decompress an xz stream that must give exactly ``size`` bytes (``exact``; else at most), never more."""
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_FILTERS)
    try:
        out = decompressor.decompress(data, max_length=size + 1)
    except lzma.LZMAError as exc:
        raise PatchFormatError(f"corrupt {what} in the patch ({exc})") from None
    if len(out) > size:
        raise PatchFormatError(f"the {what} in the patch expands past the {size:,} bytes it may have")
    if (exact and len(out) != size) or not decompressor.eof or decompressor.unused_data:
        raise PatchFormatError(f"corrupt {what} in the patch (wrong length or trailing data)")
    return out
