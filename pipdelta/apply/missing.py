"""Members this machine cannot re-create: found by their checks, fetched as byte ranges of the new wheel."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

from pipdelta.errors import EngineMismatch, RangeError
from pipdelta.format.limits import Budget
from pipdelta.format.patchfile import Copy, FromTarget, Member, Op, PatchHeader, wheel_size

#: Given ``[(offset, length), ...]`` of the new wheel as the primary index serves it, the bytes of each range.
RangeFetcher = Callable[[Sequence[tuple[int, int]]], Sequence[bytes]]


class Piece(NamedTuple):
    """A piece of the new wheel: its bytes, for a member its content's CRC-32 and size, and whether the bytes
    pass the member's check (whoever made them checked them, on the core that made them)."""

    data: bytes | memoryview
    crc: int = 0
    size: int = 0
    exact: bool = True


#: A piece, or None where this machine has no engine for it or the patch leaves it out.
Made = Piece | None


def _wanted(header: PatchHeader, pieces: Sequence[Made]) -> list[tuple[int, int]]:
    """(op index, offset in the new wheel) of each member whose bytes were not made here exactly."""
    found, offset = [], 0
    for k, (op, piece) in enumerate(zip(header.ops, pieces, strict=True)):
        if isinstance(op, FromTarget | Member | Copy) and (piece is None or not piece.exact):
            found.append((k, offset))
        offset += wheel_size(op)
    return found


def fill(header: PatchHeader, pieces: list[Made], fetch: RangeFetcher | None) -> list[Piece]:
    """``pieces`` with every member this machine could not re-create fetched from the new wheel and checked."""
    missing = _wanted(header, pieces)
    if missing and fetch is None:
        raise EngineMismatch(_cannot(header, [k for k, _ in missing]))
    if missing and fetch is not None:
        ranges = [(offset, wheel_size(header.ops[k])) for k, offset in missing]
        got = fetch(ranges)
        if len(got) != len(ranges):
            raise RangeError(f"asked for {len(ranges)} ranges of {header.new.filename}, got {len(got)}")
        limit = Budget.for_wheel(header.new.size).expanded
        for (k, _), data in zip(missing, got, strict=True):
            pieces[k] = _checked(header, header.ops[k], pieces[k], bytes(data), limit)
    return [piece if piece is not None else Piece(b"") for piece in pieces]


def _checked(header: PatchHeader, op: Op, made: Made, data: bytes, limit: int) -> Piece:
    """A fetched member's bytes with its content's CRC-32 and size (those of the content made here, if any)."""
    assert isinstance(op, FromTarget | Member | Copy)
    if not op.check.matches(data):
        raise RangeError(f"the server sent other bytes than {header.new.filename} holds at a member's range")
    if isinstance(op, FromTarget):
        return Piece(data)  # like a raw member: its header fields are not toggled
    if made is not None and not (isinstance(op, Member) and op.gz is not None):
        return Piece(data, made.crc, made.size)
    # A gzip member's content (or one whose engine is missing here) is known only from the fetched bytes.
    content = data if op.recipe is None else _inflate(data, limit)
    return Piece(data, zlib.crc32(content), len(content))


def _inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(-15)
    try:
        content = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise RangeError("a fetched member is not a deflate stream") from None
    if len(content) > limit or not inflater.eof:
        raise RangeError("a fetched member does not inflate within the patch's limits")
    return content


def _cannot(header: PatchHeader, indices: list[int]) -> str:
    """What this machine cannot re-create, and what would."""
    recipes = sorted({str(op.recipe) for k in indices if isinstance(op := header.ops[k], Member | Copy)} - {"None"})
    left_out = sum(isinstance(header.ops[k], FromTarget) for k in indices)
    what = f"{len(indices) - left_out} members made with {', '.join(recipes)}" if recipes else ""
    if left_out:
        what += f"{' and ' if what else ''}{left_out} members the patch leaves out"
    return (
        f"{header.new.filename} needs {what or f'{len(indices)} members'} fetched from the new wheel "
        "(this machine's deflate engines cannot re-create them): give its URL (--url) or download the full wheel"
    )
