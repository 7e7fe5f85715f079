"""The old -> new address map of each moved ELF image: piecewise constant, derived from a first diff's matches."""

from __future__ import annotations

import bisect
import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from pipdelta.errors import PatchFormatError
from pipdelta.native.elf import Image

MASK = (1 << 64) - 1
_IMAGE = struct.Struct("<II")  # image index in scan order, breakpoints
# Each breakpoint as the distance from the previous one's start (from 0 for the first) and the change of what
# it adds to addresses (new - old) from the previous one's (from 0): small numbers, which xz packs well.
_POINT = struct.Struct("<Qq")
# A match shorter than this says little about where code went (bsdiff4 pairs short runs by chance).
MIN_MATCH = 32
TRUSTED_MATCH = 128


@dataclass(frozen=True)
class Pieces:
    """One image's map: address ``a`` goes to ``a + deltas[i]`` for the last ``starts[i] <= a`` (``a`` below
    ``starts[0]``: unchanged); arithmetic is modulo 2**64."""

    image: int
    starts: tuple[int, ...]
    deltas: tuple[int, ...]

    def __call__(self, address: int) -> int:
        i = bisect.bisect_right(self.starts, address) - 1
        return address if i < 0 else (address + self.deltas[i]) & MASK


def encode(maps: Sequence[Pieces]) -> bytes:
    parts = []
    for pieces in maps:
        parts.append(_IMAGE.pack(pieces.image, len(pieces.starts)))
        steps = zip((0, *pieces.starts[:-1]), pieces.starts, (0, *pieces.deltas[:-1]), pieces.deltas, strict=True)
        parts += (_POINT.pack(start - before, delta - was) for before, start, was, delta in steps)
    return b"".join(parts)


def decode(data: bytes, images: int) -> list[Pieces]:
    """The maps of a patch, checked: images in increasing order among the ``images`` the old blob holds, each
    with at least one breakpoint, breakpoints strictly increasing; anything else is a format error."""
    maps, position, last = [], 0, -1
    while position < len(data):
        if position + _IMAGE.size > len(data):
            raise PatchFormatError("corrupt address map in the patch (truncated)")
        image, count = _IMAGE.unpack_from(data, position)
        position += _IMAGE.size
        if not last < image < images or count == 0 or position + count * _POINT.size > len(data):
            raise PatchFormatError("corrupt address map in the patch (no such image, or a wrong count)")
        points = [_POINT.unpack_from(data, position + k * _POINT.size) for k in range(count)]
        position += count * _POINT.size
        starts = list(itertools.accumulate(p[0] for p in points))
        deltas = list(itertools.accumulate(p[1] for p in points))
        if any(p[0] == 0 for p in points[1:]) or starts[-1] > MASK or not all(-MASK <= d <= MASK for d in deltas):
            raise PatchFormatError("corrupt address map in the patch (breakpoints out of order or out of range)")
        maps.append(Pieces(image, tuple(starts), tuple(deltas)))
        last = image
    return maps


def _locate(images: Sequence[Image], position: int) -> tuple[int, Image] | None:
    i = bisect.bisect_right([image.start for image in images], position) - 1
    if i >= 0 and position < images[i].start + images[i].size:
        return i, images[i]
    return None


def derive(
    control: Sequence[tuple[int, int, int]], old_images: Sequence[Image], new_images: Sequence[Image]
) -> list[Pieces]:
    """Maps from bsdiff4's control triples (add, extra, seek) between the blobs that hold these images: each
    add-run of at least :data:`MIN_MATCH` bytes inside loaded bytes of an old and a new image says how far
    its old addresses moved. A run that moved unlike the one before starts a piece if it is long
    (:data:`TRUSTED_MATCH`) or the next run moved alike: short runs alone are mostly chance matches."""
    moved: dict[int, list[tuple[int, int, int]]] = {}
    old_pos = new_pos = 0
    for add, extra, seek in control:
        if add >= MIN_MATCH:
            old, new = _locate(old_images, old_pos), _locate(new_images, new_pos)
            if old is not None and new is not None:
                runs = moved.setdefault(old[0], [])
                runs += _moves(old[1], old_pos - old[1].start, new[1], new_pos - new[1].start, add)
        old_pos += add + seek
        new_pos += add + extra
    maps = [_pieces(image, sorted(runs)) for image, runs in sorted(moved.items())]
    return [pieces for pieces in maps if pieces.starts]


def _moves(old: Image, old_at: int, new: Image, new_at: int, length: int) -> list[tuple[int, int, int]]:
    """(old address, how far it moved, length) for each part of a matched run that lies in one loaded segment
    on each side: a long run can cross from one segment to the next, and segments move apart."""
    cuts = {0, length}
    for image, at in ((old, old_at), (new, new_at)):
        for segment in image.segments:
            for edge in (segment.offset, segment.offset + segment.filesz):
                if at < edge < at + length:
                    cuts.add(edge - at)
    found = []
    edges = sorted(cuts)
    for begin, end in itertools.pairwise(edges):
        old_va, new_va = old.vaddr(old_at + begin), new.vaddr(new_at + begin)
        if old_va is not None and new_va is not None and end - begin >= MIN_MATCH:
            found.append((old_va, _signed(new_va - old_va), end - begin))
    return found


def _pieces(image: int, runs: list[tuple[int, int, int]]) -> Pieces:
    starts: list[int] = []
    deltas: list[int] = []
    for k, (start, delta, length) in enumerate(runs):
        if deltas and deltas[-1] == delta:
            continue
        if length < TRUSTED_MATCH and (k + 1 == len(runs) or runs[k + 1][1] != delta):
            continue
        if starts and starts[-1] == start:
            deltas[-1] = delta
        else:
            starts.append(start)
            deltas.append(delta)
    return Pieces(image, tuple(starts), tuple(deltas))


def _signed(value: int) -> int:
    value &= MASK
    return value - (1 << 64) if value >= 1 << 63 else value


def control_triples(control: bytes) -> list[tuple[int, int, int]]:
    """bsdiff4's control stream as triples: three little-endian int64 per entry, in sign-and-magnitude."""
    values = [v & ~(1 << 63) if v < 1 << 63 else -(v & ~(1 << 63)) for (v,) in struct.iter_unpack("<Q", control)]
    return list(zip(values[0::3], values[1::3], values[2::3], strict=True))
