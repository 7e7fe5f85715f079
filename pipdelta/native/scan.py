"""The rel32 scan of x86-64 code, in Python: the reference the optional C extension must match byte for byte."""

from __future__ import annotations

import bisect
import struct

# The opcode table (docs/FORMAT.md, "Native code"): what a rel32 or RIP-relative displacement follows.
JUMPS = frozenset((0xE8, 0xE9))  # call rel32, jmp rel32: the displacement at +1
REX = frozenset((0x48, 0x4C))  # REX.W, REX.WR before one of MODRM_OPS
MODRM_OPS = frozenset((0x03, 0x2B, 0x39, 0x3B, 0x63, 0x85, 0x89, 0x8B, 0x8D))  # add sub cmp movsxd test mov lea
# 0F-prefixed SSE moves and arithmetic (movups/movsd, movaps, ucomis, and/xor, add/mul/sub/div, movq/movdqa...)
SSE_OPS = frozenset(
    (0x10, 0x11, 0x12, 0x16, 0x28, 0x29, 0x2E, 0x2F, 0x54, 0x57, 0x58, 0x59, 0x5C, 0x5E, 0x6E, 0x6F, 0x7E, 0x7F, 0xD6)
)
_I32 = struct.Struct("<i")
_MASK = (1 << 64) - 1


def displacement_at(code: bytes | bytearray, i: int, end: int) -> int:
    """Where the displacement of a referencing instruction starting at ``i`` lies (it may reach past ``end``:
    the caller checks), or 0 if none starts there; nothing at or past ``end`` is read."""
    op = code[i]
    if op in JUMPS:
        return i + 1
    if i + 1 >= end:
        return 0
    nxt = code[i + 1]
    if (op == 0x0F and 0x80 <= nxt <= 0x8F) or (op == 0xFF and nxt in (0x15, 0x25)):
        return i + 2  # jcc rel32; call/jmp [rip + disp32]
    if op in REX and nxt in MODRM_OPS and i + 2 < end and code[i + 2] & 0xC7 == 0x05:
        return i + 3  # REX.W op modrm(mod 00, rm 101: RIP-relative)
    if op == 0x0F and nxt in SSE_OPS and i + 2 < end and code[i + 2] & 0xC7 == 0x05:
        return i + 3  # 0F op modrm, after any 66/F2/F3 prefix (the scan reaches 0F one byte later)
    return 0


def rel32(code: bytearray, start: int, end: int, vaddr: int, low: int, high: int, starts: bytes, deltas: bytes) -> int:
    """Rewrite, in ``code[start:end]`` loaded at ``vaddr``, each displacement whose target lies in
    [``low``, ``high``) so that it reaches the mapped target from the mapped site; returns how many. The map
    is ``starts`` (little-endian uint64, increasing) and ``deltas`` (little-endian int64), one per piece.

    Left to right: where an instruction of the table starts and its target is in range, its displacement is
    rewritten (when the new one fits 32 bits) and the scan resumes after it; anywhere else one byte on.
    """
    points = [v for (v,) in struct.iter_unpack("<Q", starts)]
    moves = [v for (v,) in struct.iter_unpack("<q", deltas)]

    def mapped(address: int) -> int:
        k = bisect.bisect_right(points, address) - 1
        return address if k < 0 else (address + moves[k]) & _MASK

    rewritten, i = 0, start
    while i < end:
        at = displacement_at(code, i, end)
        if not at or at + 4 > end:
            i += 1
            continue
        site = (vaddr + at + 4 - start) & _MASK
        target = (site + _I32.unpack_from(code, at)[0]) & _MASK
        if not low <= target < high:
            i += 1
            continue
        moved = (mapped(target) - mapped(site)) & _MASK
        moved = moved - (1 << 64) if moved >= 1 << 63 else moved
        if -(1 << 31) <= moved < 1 << 31:
            _I32.pack_into(code, at, moved)
            rewritten += 1
        i = at + 4
    return rewritten
