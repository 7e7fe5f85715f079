"""Predicted old: each mapped ELF image of the old blob with its references moved through its address map."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from pipdelta.native import elf, scan, unwind
from pipdelta.native.addrmap import MASK, Pieces
from pipdelta.native.elf import Image

Scan = Callable[[bytearray, int, int, int, int, int, bytes, bytes], int]


def _compiled() -> Scan | None:
    try:
        from pipdelta.native._scan import rel32
    except ImportError:
        return None
    found: Scan = rel32
    return found


#: the compiled scan when the optional extension was built, else None (the Python scan gives the same bytes)
COMPILED = _compiled()
R_X86_64_RELATIVE = 8
_RELA = struct.Struct("<QQq")  # offset, info, addend
_SYM = struct.Struct("<IBBHQQ")  # name, info, other, section index, value, size
_U64 = struct.Struct("<Q")
SHN_LORESERVE = 0xFF00


def predict(old: bytes, maps: Sequence[Pieces], images: Sequence[Image], rel32: Scan | None = None) -> bytearray:
    """The old blob with, in each mapped image, every reference of the scan moved (docs/FORMAT.md)."""
    out = bytearray(old)
    for pieces in maps:
        _image(out, images[pieces.image], pieces, rel32 or COMPILED or scan.rel32)
    return out


def _image(out: bytearray, image: Image, f: Pieces, rel32: Scan) -> None:
    """Sections in header order: code, then relocations, symbols and the unwind index, each rewritten in place."""
    base, low, high = image.start, image.low, min(image.high, MASK)
    starts = b"".join(_U64.pack(s) for s in f.starts)
    deltas = b"".join(struct.pack("<q", d) for d in f.deltas)
    for section in image.sections:
        begin, end = base + section.offset, base + section.offset + section.size
        if section.type == elf.SHT_PROGBITS and section.flags & elf.SHF_EXECINSTR:
            rel32(out, begin, end, section.addr, low, high, starts, deltas)
        elif section.type == elf.SHT_RELA and section.entsize == _RELA.size:
            _relocations(out, image, begin, end, f)
        elif section.type in (elf.SHT_SYMTAB, elf.SHT_DYNSYM) and section.entsize == _SYM.size:
            _symbols(out, begin, end, f)
        elif section.name == b".eh_frame_hdr" and out[begin : begin + 4] == unwind.EH_FRAME_HDR:
            unwind.index(out, begin, end, section.addr, f)
        elif section.name == b".eh_frame" and section.type == elf.SHT_PROGBITS:
            unwind.frames(out, begin, end, section.addr, f)


def _relocations(out: bytearray, image: Image, begin: int, end: int, f: Pieces) -> None:
    """Each entry's offset, and a RELATIVE entry's addend (and the pointer at its offset when it holds it)."""
    for at in range(begin, end - _RELA.size + 1, _RELA.size):
        offset, info, addend = _RELA.unpack_from(out, at)
        moved = addend
        if info & 0xFFFFFFFF == R_X86_64_RELATIVE:
            moved = _signed(f(addend & MASK))
            slot = image.offset(offset)
            if slot is not None and slot + 8 <= image.size:
                slot += image.start
                if _U64.unpack_from(out, slot)[0] == addend & MASK:
                    _U64.pack_into(out, slot, moved & MASK)
        _RELA.pack_into(out, at, f(offset), info, moved)


def _symbols(out: bytearray, begin: int, end: int, f: Pieces) -> None:
    """Each defined symbol's value (not undefined, absolute or common ones)."""
    for at in range(begin, end - _SYM.size + 1, _SYM.size):
        name, info, other, index, value, size = _SYM.unpack_from(out, at)
        if 0 < index < SHN_LORESERVE and value:
            _SYM.pack_into(out, at, name, info, other, index, f(value), size)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value
