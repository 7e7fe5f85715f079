"""zstd with the old blob as a prefix and long-distance matching (``zstd --patch-from``)."""

from __future__ import annotations

from pipdelta.errors import PatchFormatError
from pipdelta.format.codec import zstd

_MAX_WINDOW_LOG = 31


def _window_log(old: int, new: int) -> int:
    return max(10, min(_MAX_WINDOW_LOG, (old + new).bit_length()))


class ZstdPrefix:
    """Fast to apply; wins on text, loses to bsdiff4 on native code."""

    name = "zstd"
    level = 19

    def diff(self, old: bytes, new: bytes) -> bytes:
        options: dict[int, int] = {
            zstd.CompressionParameter.compression_level: self.level,
            zstd.CompressionParameter.window_log: _window_log(len(old), len(new)),
            zstd.CompressionParameter.enable_long_distance_matching: 1,
        }
        prefix = zstd.ZstdDict(old, is_raw=True).as_prefix if old else None
        return zstd.ZstdCompressor(options=options, zstd_dict=prefix).compress(new, zstd.ZstdCompressor.FLUSH_FRAME)

    def patch(self, old: bytes, payload: bytes, size: int) -> bytes:
        # The window never needs to reach past the prefix and the result: a frame asking for more is refused
        # before the decoder allocates it.
        options: dict[int, int] = {zstd.DecompressionParameter.window_log_max: _window_log(len(old), size)}
        prefix = zstd.ZstdDict(old, is_raw=True).as_prefix if old else None
        try:
            decompressor = zstd.ZstdDecompressor(zstd_dict=prefix, options=options)
            out = decompressor.decompress(payload, max_length=size + 1)
        except zstd.ZstdError as exc:
            raise PatchFormatError(f"corrupt zstd payload ({exc})") from None
        if len(out) != size or not decompressor.eof or decompressor.unused_data:
            raise PatchFormatError("corrupt zstd payload (wrong length or trailing data)")
        return out
