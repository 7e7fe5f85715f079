"""Recipes: an engine and the way of calling it that re-creates a member's deflate stream exactly."""

from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pipdelta.engines import flate2, zlibapi
from pipdelta.errors import EngineMismatch, PatchFormatError

_PIECE = 256 * 1024
_LEVELS = range(0, 10)


@dataclass(frozen=True)
class Recipe:
    """A recipe id names one engine and how it is driven.

    ``zlib:LEVEL:MEMLEVEL:STRATEGY`` is CPython's zlib, as ``zipfile`` writes; ``zlibng:...`` the same calls
    into the pinned zlib-ng package (``zipfile`` under an interpreter whose zlib is zlib-ng 2.3), ``zlibng22:...``
    into zlib-ng 2.2 (CPython 3.14 on Windows; :mod:`pipdelta.engines.zlibapi`); ``cramjam:LEVEL``
    is the one-shot deflate of cramjam's C backend, which matches Rust flate2 over miniz_oxide (maturin until
    2025); ``flate2:LEVEL:8k|whole|lines|fields`` is zlib-ng driven like flate2 over zlib-rs (maturin since).
    """

    engine: str
    level: int
    mem_level: int = 8
    strategy: int = 0
    writes: str = "8k"

    def __str__(self) -> str:
        if self.engine == "cramjam":
            return f"cramjam:{self.level}"
        if self.engine == "flate2":
            return f"flate2:{self.level}:{self.writes}"
        return f"{self.engine}:{self.level}:{self.mem_level}:{self.strategy}"

    @classmethod
    @functools.lru_cache(maxsize=64)  # a patch names a few recipes, over and over
    def parse(cls, text: str) -> Recipe:
        """Read a recipe id as written in a patch; anything unknown is a format error."""
        parts = text.split(":")
        try:
            if parts[0] in ("zlib", "zlibng", "zlibng22") and len(parts) == 4:
                level, mem_level, strategy = (int(p) for p in parts[1:])
                if level in _LEVELS and 1 <= mem_level <= 9 and 0 <= strategy <= 4:
                    return cls(parts[0], level, mem_level, strategy)
            elif parts[0] == "cramjam" and len(parts) == 2 and int(parts[1]) in _LEVELS:
                return cls("cramjam", int(parts[1]))
            elif parts[0] == "flate2" and len(parts) == 3 and parts[2] in flate2.WRITES:
                level = int(parts[1])
                if level in _LEVELS:
                    return cls("flate2", level, writes=parts[2])
        except ValueError:
            pass
        raise PatchFormatError(f"unknown compression recipe {text!r}; a newer pipdelta may understand it")

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """Yield the raw deflate stream for ``data`` in pieces, so a mismatch can stop it early."""
        if self.engine == "flate2":
            yield from flate2.deflate_pieces(data, self.level, self.writes)
        elif self.engine == "zlib" and not zlibapi.is_zlib_ng(zlib):  # classic zlib: its output ignores chunking
            compressor = self._compressobj(zlib)
            view = memoryview(data)
            for start in range(0, len(data), _PIECE):
                yield compressor.compress(view[start : start + _PIECE])
            yield compressor.flush()
        else:
            yield self.compress(data)

    def _compressobj(self, module: Any) -> Any:
        return module.compressobj(self.level, zlib.DEFLATED, -15, self.mem_level, self.strategy)

    def compress(self, data: bytes) -> bytes:
        if self.engine == "cramjam":
            return bytes(_cramjam_deflate().compress(data, level=self.level))
        if self.engine == "flate2":
            return b"".join(self.pieces(data))
        module = _zlib_ng() if self.engine == "zlibng" else zlib
        if self.engine in ("zlib", "zlibng22"):
            variable = zlibapi.CLASSIC if self.engine == "zlib" else zlibapi.ZLIBNG22
            if os.environ.get(variable) or (self.engine == "zlib") == zlibapi.is_zlib_ng(zlib):
                # a library named, or this interpreter's zlib is not the engine named: a library that is, else
                # the nearest engine here (small members often come out the same; the members' checks tell)
                try:
                    return zlibapi.library(variable)(data, self.level, self.mem_level, self.strategy)
                except EngineMismatch:
                    module = zlib if self.engine == "zlib" else _zlib_ng()
        # zipfile hands a member's whole content to one compress() call; zlib-ng's output depends on that.
        compressor = self._compressobj(module)
        return bytes(compressor.compress(data) + compressor.flush())

    def reproduces(self, data: bytes, target: bytes | memoryview) -> bool:
        """True if compressing ``data`` gives exactly ``target``; stops at the first differing piece."""
        target = memoryview(target)
        position = 0
        for piece in self.pieces(data):
            end = position + len(piece)
            if end > len(target) or target[position:end] != piece:
                return False
            position = end
        return position == len(target)


@functools.cache
def _zlib_ng() -> Any:
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        raise EngineMismatch("the zlib-ng package is not installed; `pip install zlib-ng`") from None
    return zlib_ng


@functools.cache
def _cramjam_deflate() -> Any:
    try:
        # The C backend's module itself: CRAMJAM_BACKEND must not swap the engine under a patch.
        from cramjam.cramjam import deflate  # type: ignore[import-not-found]
    except ImportError:
        raise EngineMismatch("the cramjam package is not installed; `pip install cramjam`") from None
    return deflate


# The order divination tries them in, most common first: CPython's zipfile (setuptools, flit, hatchling,
# poetry-core, meson-python, ...) writes zlib level 6; maturin writes flate2 over zlib-ng; zipfile under an
# interpreter whose zlib is zlib-ng (Fedora 40+, Windows CPython 3.14) writes zlib-ng level 6.
CANDIDATES: tuple[Recipe, ...] = (
    Recipe("zlib", 6),
    Recipe("cramjam", 6),
    Recipe("flate2", 6),
    Recipe("flate2", 6, writes="whole"),
    Recipe("zlibng", 6),
    Recipe("zlibng22", 6),
    Recipe("flate2", 6, writes="lines"),
    Recipe("flate2", 6, writes="fields"),
    Recipe("zlib", 9),
    *(Recipe("zlib", level) for level in (1, 2, 3, 4, 5, 7, 8)),
    Recipe("zlib", 6, mem_level=9),
    Recipe("zlib", 9, mem_level=9),
    Recipe("zlibng", 9),
    *(Recipe("cramjam", level) for level in (9, 1)),
    *(Recipe("flate2", level, writes=writes) for level in (9, 1) for writes in ("8k", "whole")),
)
