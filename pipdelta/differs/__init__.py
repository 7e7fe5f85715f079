"""Binary differs behind one small interface: ``diff(old, new) -> payload`` and ``patch(old, payload, size)``."""

from __future__ import annotations

from typing import Protocol

from pipdelta.errors import PatchFormatError


class Differ(Protocol):
    """Turns two blobs into a payload and back; ``patch`` must reject a payload that does not fit."""

    name: str

    def diff(self, old: bytes, new: bytes) -> bytes: ...

    def patch(self, old: bytes, payload: bytes, size: int) -> bytes: ...


def get(name: str) -> Differ:
    """The differ a patch names; unknown names are a format error (a newer pipdelta made the patch)."""
    from pipdelta.differs.bsdiff import Bsdiff
    from pipdelta.differs.elf import ElfBsdiff
    from pipdelta.differs.zstd import ZstdPrefix

    for differ in (Bsdiff(), ZstdPrefix(), ElfBsdiff()):
        if differ.name == name:
            return differ
    raise PatchFormatError(f"patch uses differ {name!r}, which this pipdelta does not know")
