"""A wheel held in memory with its ZIP layout: each member's content and its exact compressed bytes."""

from __future__ import annotations

import functools
import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from pipdelta.errors import InvalidWheel
from pipdelta.format.patchfile import WheelRef
from pipdelta.format.ziplayout import STORED, Layout, Member, open_wheel, read_layout


@dataclass(frozen=True)
class WheelFile:
    """The bytes of one wheel, its filename and its layout."""

    filename: str
    data: bytes
    layout: Layout

    @classmethod
    def read(cls, path: Path) -> WheelFile:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidWheel(f"cannot read {path}: {exc.strerror}") from None
        return cls.from_bytes(path.name, data)

    @classmethod
    def from_bytes(cls, filename: str, data: bytes) -> WheelFile:
        try:
            parse_wheel_filename(filename)
        except InvalidWheelFilename as exc:
            raise InvalidWheel(str(exc)) from None
        with open_wheel(io.BytesIO(data), filename) as archive:
            return cls(filename, data, read_layout(archive, io.BytesIO(data), len(data)))

    def ref(self) -> WheelRef:
        return WheelRef(self.filename, hashlib.sha256(self.data).hexdigest(), len(self.data))

    def raw(self, member: Member) -> bytes:
        """The member's data bytes exactly as they sit in the wheel."""
        return self.data[member.data_offset : member.data_end]

    def content(self, member: Member) -> bytes:
        """The member's uncompressed content, checked against its declared size and CRC."""
        raw = self.raw(member)
        if member.method == STORED:
            content = raw
        else:
            inflater = zlib.decompressobj(-15)
            try:
                content = inflater.decompress(raw, member.size + 1)
            except zlib.error as exc:
                raise InvalidWheel(f"{self.filename}: {member.name!r} is corrupt ({exc})") from None
        if len(content) != member.size or zlib.crc32(content) != member.crc:
            raise InvalidWheel(f"{self.filename}: {member.name!r} does not match its size and CRC")
        return content

    @functools.cached_property
    def members_by_name(self) -> dict[str, Member]:
        """The first member of each name (a later duplicate never shadows it)."""
        found: dict[str, Member] = {}
        for member in self.layout.members:
            found.setdefault(member.name, member)
        return found
