"""Unwind tables moved through an address map: ``.eh_frame_hdr``'s index and each ``.eh_frame`` FDE's pointers."""

from __future__ import annotations

import struct

from pipdelta.native.addrmap import MASK, Pieces

EH_FRAME_HDR = b"\x01\x1b\x03\x3b"  # version 1; eh_frame_ptr pcrel sdata4; count udata4; table datarel sdata4
PCREL_SDATA4 = 0x1B
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_POINTER_SIZES = {0x00: 8, 0x02: 2, 0x03: 4, 0x04: 8, 0x0A: 2, 0x0B: 4, 0x0C: 8}  # by the encoding's low 4 bits


def moved_offset(out: bytearray, at: int, base: int, anchor: int, f: Pieces) -> None:
    """Rewrite the int32 at ``at``, an offset from address ``base``, to reach map(target) from map(``anchor``)
    where the target is ``base`` + offset; left alone when the result does not fit."""
    target = (base + _I32.unpack_from(out, at)[0]) & MASK
    moved = (f(target) - f(anchor)) & MASK
    moved = moved - (1 << 64) if moved >= 1 << 63 else moved
    if -(1 << 31) <= moved < 1 << 31:
        _I32.pack_into(out, at, moved)


def index(out: bytearray, begin: int, end: int, addr: int, f: Pieces) -> None:
    """``.eh_frame_hdr``'s table: each (function start, FDE) pair, relative to the table section's address."""
    count = _U32.unpack_from(out, begin + 8)[0] if begin + 12 <= end else 0
    for at in range(begin + 12, begin + 12 + 8 * min(count, (end - begin - 12) // 8), 4):
        moved_offset(out, at, addr, addr, f)


def _uleb(data: bytearray, at: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while at < end:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at
    return value, end


def _cie(data: bytearray, at: int, end: int) -> tuple[int | None, int | None]:
    """A CIE's FDE pointer and LSDA encodings (``R`` and ``L`` of its augmentation), None where absent or
    where the CIE is not understood."""
    version = data[at]
    nul = data.find(b"\x00", at + 1, end)
    if nul < 0:
        return None, None
    augmentation = bytes(data[at + 1 : nul])
    at = _uleb(data, nul + 1, end)[1]  # code alignment
    at = _uleb(data, at, end)[1]  # data alignment (sleb: same length)
    at = at + 1 if version == 1 else _uleb(data, at, end)[1]  # return register
    if not augmentation.startswith(b"z"):
        return None, None
    at = _uleb(data, at, end)[1]
    fde = lsda = None
    for letter in augmentation[1:]:
        if at >= end:
            return None, None
        if letter == ord("R"):
            fde, at = data[at], at + 1
        elif letter == ord("L"):
            lsda, at = data[at], at + 1
        elif letter == ord("P"):
            size = _POINTER_SIZES.get(data[at] & 0x0F)
            if size is None:
                return None, None
            at += 1 + size
        elif letter not in b"SB":
            return None, None
    return fde, lsda


def frames(out: bytearray, begin: int, end: int, addr: int, f: Pieces) -> None:
    """``.eh_frame``, record by record until a terminator, a 64-bit length or the section's end: each FDE's
    start address and LSDA pointer, when its CIE encodes them pc-relative sdata4."""
    cies: dict[int, tuple[int | None, int | None]] = {}
    at = begin
    while at + 8 <= end:
        length = _U32.unpack_from(out, at)[0]
        if length in (0, 0xFFFFFFFF) or at + 4 + length > end or length < 4:
            return
        record_end, pointer = at + 4 + length, _U32.unpack_from(out, at + 4)[0]
        if pointer == 0:
            cies[at] = _cie(out, at + 8, record_end) if at + 9 <= record_end else (None, None)
        else:
            fde, lsda = cies.get(at + 4 - pointer, (None, None))
            if fde == PCREL_SDATA4 and at + 16 <= record_end:
                field = addr + at + 8 - begin
                moved_offset(out, at + 8, field, field, f)
                if lsda == PCREL_SDATA4:
                    size, data_at = _uleb(out, at + 16, record_end)
                    if size == 4 and data_at + 4 <= record_end and _I32.unpack_from(out, data_at)[0]:
                        field = addr + data_at - begin
                        moved_offset(out, data_at, field, field, f)
        at = record_end
