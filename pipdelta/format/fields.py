"""ZIP header fields that a member's data determines (CRC-32, sizes, offset), XORed with their true values.

After the toggle, those fields of a local header or central directory entry are zeros wherever they tell the
truth, so the headers of a new wheel cost the diff little even though the source blob holds no old headers.
Toggling twice restores the bytes: the maker and the applier run this same function.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

_LOCAL_FIELDS = 14  # crc32, compressed size, uncompressed size: 12 bytes from here in a local header
_CENTRAL = struct.Struct("<4s12xIIIHHH8xI")  # signature, crc32, sizes, name/extra/comment lengths, offset
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_SIZES = struct.Struct("<III")  # crc32, compressed size, uncompressed size
_OFFSET = struct.Struct("<I")  # a central directory entry's local header offset


@dataclass(frozen=True)
class Placed:
    """A member as laid out in the wheel: its data's offset, the length of the local header just before it
    (0 when the patch does not say), and the values its headers should hold."""

    start: int
    header: int
    crc: int
    csize: int
    usize: int


def _xor(data: bytearray, position: int, crc: int, csize: int, usize: int) -> None:
    old_crc, old_csize, old_usize = _SIZES.unpack_from(data, position)
    _SIZES.pack_into(data, position, old_crc ^ crc, old_csize ^ csize, old_usize ^ usize)


def toggle(data: bytearray, members: Sequence[Placed], directory: tuple[int, int] | None) -> None:
    """XOR each member's local header fields and, entry by entry, the central directory in ``directory``
    (start, end) with the values of the members in file order."""
    for member in members:
        if member.header:
            _xor(data, member.start - member.header + _LOCAL_FIELDS, member.crc, member.csize, member.usize)
    if directory is None:
        return
    position, end = directory
    for member in members:
        if position + _CENTRAL.size > end:
            return
        signature, _, _, _, name, extra, comment, _ = _CENTRAL.unpack_from(data, position)
        if signature != _CENTRAL_SIGNATURE:
            return
        _xor(data, position + 16, member.crc, member.csize, member.usize)
        (offset,) = _OFFSET.unpack_from(data, position + 42)
        _OFFSET.pack_into(data, position + 42, offset ^ ((member.start - member.header) & 0xFFFFFFFF))
        position += _CENTRAL.size + name + extra + comment
