"""Where the old bytes come from: one small interface, one class per kind of source."""

from __future__ import annotations

import abc
import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from pipdelta.apply.installed import InstalledDistribution
from pipdelta.errors import SourceMismatch
from pipdelta.format import blob
from pipdelta.format.patchfile import Source, WheelRef
from pipdelta.format.wheelfile import WheelFile
from pipdelta.format.ziplayout import Member as ZipMember

SHEBANG_ROOM = 64 << 10  # bytes an installer's launcher line (and pip's long-path shell trick) may add


class RawMember(NamedTuple):
    """A member's compressed bytes in the old wheel and the CRC-32 of its content (from the wheel's headers)."""

    data: bytes | memoryview
    crc: int


class OldContent(abc.ABC):
    """The old version's files, read for a patch and checked before they are used."""

    #: True when the old wheel's own compressed bytes are at hand (unchanged members are then copied).
    has_raw: bool = False

    def prepare(self) -> None:
        """Read and hash what :meth:`check` compares, on another core while the patch's header is parsed."""
        return None

    @abc.abstractmethod
    def check(self, old: WheelRef) -> None:
        """Raise :class:`SourceMismatch` unless this is the old version the patch was made from."""

    def read(self, source: Source) -> bytes:
        """The member's content exactly as the old wheel holds it, verified."""
        content = self._content(source)
        if len(content) != source.size:
            raise SourceMismatch(f"{source.name} here is not the file the old wheel holds")
        return content

    @abc.abstractmethod
    def _content(self, source: Source) -> bytes:
        """The member's content from this source, checked as far as this source can check it."""

    def raw(self, source: Source) -> RawMember:
        """The member's compressed bytes as the old wheel holds them; only where ``has_raw`` is True."""
        raise NotImplementedError(f"{type(self).__name__} has no compressed bytes")

    def record_rows(self, sources: Sequence[Source]) -> dict[str, bytes]:
        """RECORD rows of ``sources`` (as the source blob holds them) known without hashing the files; the blob's
        sha256 checks them, and the applier hashes the files instead when one is wrong."""
        return {}


class WheelSource(OldContent):
    """An old ``.whl`` file, pinned as a whole by its sha256."""

    has_raw = True

    def __init__(self, path: Path) -> None:
        self.path = path

    @functools.cached_property
    def wheel(self) -> WheelFile:
        return WheelFile.read(self.path)

    @functools.cached_property
    def _sha256(self) -> str:
        return hashlib.sha256(self.wheel.data).hexdigest()

    def prepare(self) -> None:
        self._sha256  # noqa: B018 -- computed now, where the caller runs this

    def check(self, old: WheelRef) -> None:
        if self._sha256 != old.sha256:
            raise SourceMismatch(f"{self.path} is not the wheel the patch was made from ({old.filename})")

    def _content(self, source: Source) -> bytes:
        return self.wheel.content(self._member(source))

    def raw(self, source: Source) -> RawMember:
        member = self._member(source)
        return RawMember(memoryview(self.wheel.data)[member.data_offset : member.data_end], member.crc)

    def record_rows(self, sources: Sequence[Source]) -> dict[str, bytes]:
        records = [m for m in self.wheel.layout.members if blob.is_record_name(m.name)]
        return blob.rows_of_record(self.wheel.content(records[0])) if len(records) == 1 else {}

    def _member(self, source: Source) -> ZipMember:
        member = self.wheel.members_by_name.get(source.name)
        if member is None:
            raise SourceMismatch(f"{self.path} has no member {source.name!r}")
        if member.size != source.size:  # before inflating: the patch's sizes are what the budget checked
            raise SourceMismatch(f"{source.name} in {self.path} is not the file the patch was made from")
        return member


class InstalledSource(OldContent):
    """The files of an installed distribution, each checked against the sha256 in its RECORD."""

    def __init__(self, distribution: InstalledDistribution) -> None:
        self.distribution = distribution

    def check(self, old: WheelRef) -> None:
        self.distribution.check_version(old.filename)

    def record_rows(self, sources: Sequence[Source]) -> dict[str, bytes]:
        # A script whose first line the installer rewrote has another sha256 than the wheel's file.
        rows = {s.name: self.distribution.record_row(s.name) for s in sources if s.first_line is None}
        return {name: row for name, row in rows.items() if row is not None}

    def _content(self, source: Source) -> bytes:
        # An installer rewrites a script's ``#!python`` line to its interpreter's path, of any length.
        most = source.size if source.first_line is None else source.size + SHEBANG_ROOM
        content = self.distribution.read_verified(source.name, most)
        if source.first_line is not None:
            # The installer replaced ``#!python`` by its interpreter's path; put the wheel's line back.
            newline = content.find(b"\n")
            content = source.first_line + (content[newline + 1 :] if newline >= 0 else b"")
        return content
