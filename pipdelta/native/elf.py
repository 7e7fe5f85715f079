"""ELF64 little-endian x86-64 images found inside a blob: their extents, loaded segments and sections."""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"\x7fELF"
X86_64 = 62
_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")  # the ELF64 file header
_SEGMENT = struct.Struct("<IIQQQQQQ")  # type, flags, offset, vaddr, paddr, filesz, memsz, align
_SECTION = struct.Struct("<IIQQQQIIQQ")  # name, type, flags, addr, offset, size, link, info, align, entsize
_IDENT = b"\x7fELF\x02\x01\x01"  # 64-bit, little-endian, version 1
PT_LOAD = 1
SHT_PROGBITS, SHT_SYMTAB, SHT_RELA, SHT_DYNSYM, SHT_NOBITS = 1, 2, 4, 11, 8
SHF_EXECINSTR = 0x4


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD segment: file bytes [offset, offset + filesz) are loaded at vaddr."""

    offset: int
    vaddr: int
    filesz: int
    memsz: int


@dataclass(frozen=True)
class Section:
    """A section whose file bytes lie inside the image."""

    name: bytes
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    entsize: int


@dataclass(frozen=True)
class Image:
    """One ELF file inside a blob: ``start`` is its offset in the blob, ``size`` its extent."""

    start: int
    size: int
    segments: tuple[Segment, ...]
    sections: tuple[Section, ...]

    @property
    def low(self) -> int:
        return min(s.vaddr for s in self.segments)

    @property
    def high(self) -> int:
        return max(s.vaddr + s.memsz for s in self.segments)

    def vaddr(self, offset: int) -> int | None:
        """The address the byte at file ``offset`` (from the image's start) is loaded at, if it is loaded."""
        for segment in self.segments:
            if segment.offset <= offset < segment.offset + segment.filesz:
                return segment.vaddr + offset - segment.offset
        return None

    def offset(self, vaddr: int) -> int | None:
        """The file offset (from the image's start) holding the byte loaded at ``vaddr``, if a file byte does."""
        for segment in self.segments:
            if segment.vaddr <= vaddr < segment.vaddr + segment.filesz:
                return segment.offset + vaddr - segment.vaddr
        return None


def parse(blob: bytes | bytearray, start: int) -> Image | None:
    """The x86-64 ELF64 image starting at ``start``, or None when its headers do not hold together."""
    room = len(blob) - start
    if room < _HEADER.size or blob[start : start + len(_IDENT)] != _IDENT:
        return None
    fields = _HEADER.unpack_from(blob, start)
    machine, phoff, shoff, phentsize, phnum, shentsize, shnum, names = (fields[i] for i in (2, 5, 6, 9, 10, 11, 12, 13))
    if machine != X86_64 or phentsize != _SEGMENT.size or phnum == 0 or phoff + phnum * phentsize > room:
        return None
    if shnum and (shentsize != _SECTION.size or shoff + shnum * shentsize > room):
        return None
    segments, size = [], max(phoff + phnum * phentsize, shoff + shnum * shentsize)
    for k in range(phnum):
        kind, _, offset, vaddr, _, filesz, memsz, _ = _SEGMENT.unpack_from(blob, start + phoff + k * phentsize)
        if kind == PT_LOAD and filesz <= memsz and offset + filesz <= room:
            segments.append(Segment(offset, vaddr, filesz, memsz))
            size = max(size, offset + filesz)
    headers = [_SECTION.unpack_from(blob, start + shoff + k * _SECTION.size) for k in range(shnum)]
    strings = headers[names] if names < shnum and headers[names][1] != SHT_NOBITS else None
    sections = []
    for name, kind, flags, addr, offset, length, _, _, _, entsize in headers:
        if kind != SHT_NOBITS and offset + length <= room:
            sections.append(
                Section(_name(blob, start, strings, name, room), kind, flags, addr, offset, length, entsize)
            )
            size = max(size, offset + length)
    if not segments:
        return None
    return Image(start, size, tuple(segments), tuple(sections))


def _name(blob: bytes | bytearray, start: int, strings: tuple[int, ...] | None, at: int, room: int) -> bytes:
    """A section's name from the section-name string table, b"" when it is not inside the image."""
    if strings is None or at >= strings[5] or strings[4] + strings[5] > room:
        return b""
    begin = start + strings[4] + at
    end = blob.find(b"\x00", begin, start + strings[4] + strings[5])
    return bytes(blob[begin:end]) if end >= 0 else b""


def images(blob: bytes | bytearray) -> list[Image]:
    """The ELF images of ``blob`` in scan order: the first valid header from the start, then the next one
    after its extent, and so on (a magic whose headers do not hold together is skipped)."""
    found, position = [], 0
    while (position := blob.find(MAGIC, position)) >= 0:
        image = parse(blob, position)
        if image is None:
            position += 1
        else:
            found.append(image)
            position += image.size
    return found
