"""A wheel's bytes split into member data (which can be re-created from content) and literal bytes."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pipdelta.errors import InvalidWheel

STORED = zipfile.ZIP_STORED
DEFLATED = zipfile.ZIP_DEFLATED
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_ENCRYPTED = 0x1


@dataclass(frozen=True)
class Member:
    """One ZIP member whose data bytes pipdelta can describe by their content."""

    name: str
    method: int
    crc: int
    size: int
    header_offset: int
    data_offset: int
    data_size: int

    @property
    def data_end(self) -> int:
        return self.data_offset + self.data_size


@dataclass(frozen=True)
class Layout:
    """Members in file order; every byte outside their data ranges is a literal (headers, gaps, comment)."""

    size: int
    members: tuple[Member, ...]
    directory_offset: int | None  # where the central directory starts

    def pieces(self) -> Iterator[tuple[int, int, Member | None]]:
        """Yield ``(offset, length, member)`` covering the file; ``member`` is None for literal bytes."""
        position = 0
        for member in self.members:
            if member.data_offset > position:
                yield position, member.data_offset - position, None
            yield member.data_offset, member.data_size, member
            position = member.data_end
        if self.size > position:
            yield position, self.size - position, None


def read_layout(archive: zipfile.ZipFile, fp: BinaryIO, size: int) -> Layout:
    """Locate each stored or deflated member's data in ``fp``; anything unusual stays literal."""
    members = []
    for info in archive.infolist():
        if info.compress_type not in (STORED, DEFLATED) or info.flag_bits & _ENCRYPTED or info.is_dir():
            continue
        fp.seek(info.header_offset)
        header = fp.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size:
            raise InvalidWheel(f"{info.filename!r}: local header is cut short")
        fields = _LOCAL_HEADER.unpack(header)
        if fields[0] != _LOCAL_SIGNATURE:
            raise InvalidWheel(f"{info.filename!r}: no local header where the central directory points")
        data_offset = info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10]
        if data_offset + info.compress_size > size:
            raise InvalidWheel(f"{info.filename!r}: member data runs past the end of the file")
        members.append(
            Member(
                info.filename,
                info.compress_type,
                info.CRC,
                info.file_size,
                info.header_offset,
                data_offset,
                info.compress_size,
            )
        )
    members.sort(key=lambda m: m.data_offset)
    disjoint: list[Member] = []
    for member in members:
        # Overlapping data (a trick of zip bombs) is left as literal bytes rather than described twice.
        if not disjoint or member.data_offset >= disjoint[-1].data_end:
            disjoint.append(member)
    directory = getattr(archive, "start_dir", None)  # set by zipfile when it read the central directory
    return Layout(size, tuple(disjoint), directory if isinstance(directory, int) else None)


def open_wheel(fp: BinaryIO, label: str) -> zipfile.ZipFile:
    """Open ``fp`` as a ZIP archive, turning every way it can fail into :class:`InvalidWheel`."""
    try:
        return zipfile.ZipFile(fp)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InvalidWheel(f"{label}: not a readable wheel ({exc})") from None
