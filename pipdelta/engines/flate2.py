"""zlib-ng driven with the exact deflate() calls of Rust flate2's writer, as maturin wheels were made.

zlib-ng's output depends on how both the input and the output room are split across deflate() calls,
so its Python binding (which hides the stream) cannot reproduce flate2; this drives the native
``zng_deflate`` of the extension module that the pinned ``zlib-ng`` package ships, through ctypes.
flate2's ``zio::Writer`` receives writes (8 KiB pieces from ``io::copy``, or the whole content from one
``write_all``), runs deflate with ``avail_out`` = the spare room of a 32 KiB buffer, dumps that buffer
before each further call, and ends with a sync flush and a finish, each drained until no output grows.
maturin writes RECORD itself, in many small writes and without the sync flush: one per line (1.14, 1.15)
or one per comma-separated field and separator (1.16).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import re
from collections.abc import Iterator

from pipdelta.engines.zlibapi import stream_fields
from pipdelta.errors import EngineMismatch

OUTPUT_ROOM = 32 * 1024
READ_PIECE = 8 * 1024
_NO_FLUSH, _SYNC_FLUSH, _FINISH = 0, 2, 4
WRITES = ("8k", "whole", "lines", "fields")
_PIECES = {"lines": re.compile(rb"[^\n]*\n|[^\n]+"), "fields": re.compile(rb"[^,\n]+|[,\n]")}


class _ZStream(ctypes.Structure):
    """zlib-ng's native ``zng_stream``."""

    _fields_ = stream_fields(ctypes.c_size_t, ctypes.c_uint32)


@functools.cache
def _library() -> ctypes.CDLL:
    try:
        import zlib_ng
    except ImportError:
        raise EngineMismatch("the zlib-ng package is not installed; `pip install zlib-ng`") from None
    found = glob.glob(os.path.join(os.path.dirname(zlib_ng.__file__), "zlib_ng*.*"))
    for path in found:
        if path.endswith((".so", ".pyd", ".dylib")):
            lib = ctypes.CDLL(path)
            if hasattr(lib, "zng_deflate"):
                lib.zng_deflateInit2.argtypes = [ctypes.POINTER(_ZStream)] + [ctypes.c_int] * 5
                lib.zng_deflate.argtypes = [ctypes.POINTER(_ZStream), ctypes.c_int]
                lib.zng_deflateEnd.argtypes = [ctypes.POINTER(_ZStream)]
                return lib
    raise EngineMismatch("the installed zlib-ng package does not export zng_deflate; reinstall zlib-ng")


class _Writer:
    """One flate2 ``zio::Writer`` over a raw deflate stream, yielding each dump of its output buffer."""

    def __init__(self, data: bytes, level: int) -> None:
        self._lib = _library()
        self._stream = _ZStream()
        if self._lib.zng_deflateInit2(ctypes.byref(self._stream), level, 8, -15, 8, 0) != 0:
            raise EngineMismatch(f"zlib-ng refused deflate level {level}")
        self._input = (ctypes.c_char * max(1, len(data))).from_buffer_copy(data or b"\0")
        self._output = ctypes.create_string_buffer(OUTPUT_ROOM)
        self._pending = 0

    def close(self) -> None:
        self._lib.zng_deflateEnd(ctypes.byref(self._stream))

    def dump(self) -> bytes:
        out, self._pending = self._output.raw[: self._pending], 0
        return out

    def run(self, offset: int, length: int, flush: int) -> int:
        """One deflate() call into the buffer's spare room; returns how much input it took."""
        stream = self._stream
        stream.next_in = ctypes.addressof(self._input) + offset
        stream.avail_in = length
        stream.next_out = ctypes.addressof(self._output) + self._pending
        stream.avail_out = OUTPUT_ROOM - self._pending
        self._lib.zng_deflate(ctypes.byref(stream), flush)
        self._pending = OUTPUT_ROOM - stream.avail_out
        return length - int(stream.avail_in)

    def drain(self, flush: int) -> Iterator[bytes]:
        while True:
            yield self.dump()
            before = self._stream.total_out
            self.run(0, 0, flush)
            if self._stream.total_out == before:
                return


def _writes(data: bytes, writes: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each write_all() that hands ``data`` to the writer."""
    pattern = _PIECES.get(writes)
    if pattern is not None:
        yield from (match.span() for match in pattern.finditer(data))
        return
    step = max(len(data) if writes == "whole" else READ_PIECE, 1)
    yield from ((start, min(start + step, len(data))) for start in range(0, len(data), step))


def deflate_pieces(data: bytes, level: int, writes: str) -> Iterator[bytes]:
    """Yield the raw deflate stream flate2 writes for ``data``, in the pieces it dumps them."""
    writer = _Writer(data, level)
    try:
        for start, end in _writes(data, writes):
            position = start
            while position < end:  # write_all() -> write(), each retried until it takes input
                yield writer.dump()
                position += writer.run(position, end - position, _NO_FLUSH)
        if writes in ("8k", "whole"):  # the zip crate flushes a member's writer; maturin's RECORD does not
            writer.run(0, 0, _SYNC_FLUSH)  # flush(): the first call runs without dumping
            yield from writer.drain(_NO_FLUSH)
        yield from writer.drain(_FINISH)
        yield writer.dump()
    finally:
        writer.close()
