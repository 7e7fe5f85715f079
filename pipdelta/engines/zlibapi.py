"""Deflate libraries with zlib's C API, driven through ctypes exactly as CPython's zlib module drives them.

Two recipes need a library the interpreter may not have. Wheels zipped by CPython 3.14 on Windows are zlib-ng
2.2.4's output, which 2.2.5 and 2.3 (what the pinned ``zlib-ng`` package bundles) do not make, and no package
on PyPI bundles 2.2.0 to 2.2.4: a client on Windows 3.14 re-creates them with its own zlib, and an index
builder names a zlib-compatible build of zlib-ng 2.2 with ``PIPDELTA_ZLIBNG22``. Conversely, an interpreter
whose zlib is zlib-ng (Fedora 40+, Windows 3.14) cannot re-create classic zlib's output, which most wheels are:
the ``cmeel-zlib`` package (classic zlib 1.3.2, which makes what 1.2.13 and 1.3.1 make), or a library named by
``PIPDELTA_ZLIB``, stands in for it. The calls are CPython's: zipfile hands a member's whole content to one
``compress()``, which deflates into output blocks of 32 KiB, then 64 KiB, 256 KiB, 1 MiB, ... (CPython's blocks
output buffer); ``flush()`` finishes into a new run of blocks. (zlib-ng's output depends on those blocks.)
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable
from typing import Any

from pipdelta.errors import EngineMismatch

ZLIBNG22 = "PIPDELTA_ZLIBNG22"
CLASSIC = "PIPDELTA_ZLIB"
_BLOCKS = (32 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20, 16 << 20, 32 << 20)
_NO_FLUSH, _FINISH = 0, 4

#: compress(data, level, mem_level, strategy) -> the raw deflate stream
Compress = Callable[[bytes, int, int, int], bytes]


def stream_fields(total: Any, adler: Any) -> list[tuple[str, Any]]:
    """zlib's ``z_stream`` with ``total`` the type of its byte counts and ``adler`` that of its checksum
    (``uLong`` both in zlib's API; ``size_t`` and ``uint32_t`` in zlib-ng's native one)."""
    return [
        ("next_in", ctypes.c_void_p),
        ("avail_in", ctypes.c_uint32),
        ("total_in", total),
        ("next_out", ctypes.c_void_p),
        ("avail_out", ctypes.c_uint32),
        ("total_out", total),
        ("msg", ctypes.c_char_p),
        ("state", ctypes.c_void_p),
        ("zalloc", ctypes.c_void_p),
        ("zfree", ctypes.c_void_p),
        ("opaque", ctypes.c_void_p),
        ("data_type", ctypes.c_int),
        ("adler", adler),
        ("reserved", ctypes.c_ulong),
    ]


class _ZStream(ctypes.Structure):
    """zlib's ``z_stream``, as zlib and zlib-ng's compatible build lay it out."""

    _fields_ = stream_fields(ctypes.c_ulong, ctypes.c_ulong)


def is_zlib_ng(module: Any) -> bool:
    """True when a ``zlib``-like module runs on zlib-ng (CPython's says so in its runtime version)."""
    return str(module.ZLIB_RUNTIME_VERSION).endswith("zlib-ng") or hasattr(module, "ZLIBNG_RUNTIME_VERSION")


@functools.cache
def library(variable: str) -> Compress:
    """The library the environment ``variable`` names (``PIPDELTA_ZLIB``: else cmeel-zlib's), driven like CPython."""
    path = os.environ.get(variable) or (_cmeel_zlib() if variable == CLASSIC else None)
    if not path:
        what = "classic zlib (pip install cmeel-zlib)" if variable == CLASSIC else "zlib-ng 2.2"
        raise EngineMismatch(f"this machine has no {what}; {variable} may name such a library")
    try:
        lib = ctypes.CDLL(path)
        lib.zlibVersion.restype = ctypes.c_char_p
        lib.deflateInit2_.argtypes = [ctypes.POINTER(_ZStream), *[ctypes.c_int] * 5, ctypes.c_char_p, ctypes.c_int]
        lib.deflate.argtypes = [ctypes.POINTER(_ZStream), ctypes.c_int]
        lib.deflateEnd.argtypes = [ctypes.POINTER(_ZStream)]
    except (OSError, AttributeError) as exc:
        raise EngineMismatch(f"{path} is not a zlib-compatible library ({exc})") from None
    return functools.partial(_deflate, lib)


def _cmeel_zlib() -> str | None:
    from importlib import metadata  # only where classic zlib is wanted: importing it costs every command 12 ms

    try:
        files = metadata.distribution("cmeel-zlib").files or []
    except metadata.PackageNotFoundError:
        return None
    found = [f for f in files if f.name.startswith("libz.") and (".so" in f.name or f.name.endswith(".dylib"))]
    return str(found[0].locate()) if found else None


def _deflate(lib: ctypes.CDLL, data: bytes, level: int, mem_level: int, strategy: int) -> bytes:
    stream = _ZStream()
    version, size = lib.zlibVersion(), ctypes.sizeof(stream)
    if lib.deflateInit2_(ctypes.byref(stream), level, 8, -15, mem_level, strategy, version, size):
        raise EngineMismatch(f"the zlib library refused deflate level {level}")
    source = (ctypes.c_char * max(1, len(data))).from_buffer_copy(data or b"\0")
    out: list[bytes] = []
    try:
        stream.next_in, stream.avail_in = ctypes.addressof(source), len(data)
        for flush in (_NO_FLUSH, _FINISH):  # compress(), then flush(): each into a new run of blocks
            for room in _BLOCKS:
                block = ctypes.create_string_buffer(room)
                stream.next_out, stream.avail_out = ctypes.addressof(block), room
                lib.deflate(ctypes.byref(stream), flush)
                out.append(block.raw[: room - stream.avail_out])
                if stream.avail_out:
                    break
    finally:
        lib.deflateEnd(ctypes.byref(stream))
    return b"".join(out)
