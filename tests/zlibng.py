"""Stand-ins for an interpreter whose zlib is zlib-ng (Fedora 40+, CPython 3.14 on Windows): the zlib-ng binding."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from zlib_ng import zlib_ng

from pipdelta.engines import fingerprint, recipes


@contextmanager
def zlibng_client() -> Iterator[None]:
    """pipdelta's ``zlib`` recipes run on zlib-ng, as on such a client."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recipes, "zlib", zlib_ng)
        fingerprint.reproduces.cache_clear()
        try:
            yield
        finally:
            fingerprint.reproduces.cache_clear()


@contextmanager
def zlibng_zipfile() -> Iterator[None]:
    """zipfile compresses with zlib-ng, as such an interpreter's wheel builders do."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zipfile, "zlib", zlib_ng)
        yield
