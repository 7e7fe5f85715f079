"""Make a patch from an old wheel to a new one, describing the new wheel by its uncompressed content."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import bsdiff4.core

from pipdelta import differs
from pipdelta.apply.applier import rebuild
from pipdelta.apply.sources import RawMember
from pipdelta.differs import Differ
from pipdelta.differs.bsdiff import Bsdiff
from pipdelta.differs.elf import ElfBsdiff
from pipdelta.differs.zstd import ZstdPrefix
from pipdelta.engines.recipes import Recipe
from pipdelta.errors import ReconstructionFailed
from pipdelta.format import blob, fields, gzmember, wire
from pipdelta.format.fields import Placed
from pipdelta.format.patchfile import (
    Check,
    Copy,
    FromTarget,
    Literal,
    Member,
    Op,
    PatchHeader,
    Raw,
    Source,
    write_patch,
)
from pipdelta.format.wheelfile import WheelFile
from pipdelta.format.ziplayout import STORED
from pipdelta.format.ziplayout import Member as ZipMember
from pipdelta.make.bounded import Background
from pipdelta.make.divination import Diviner
from pipdelta.make.limits import DEFAULT_LIMITS, Budget, SizeLimits

DIFFERS = ("auto", "bsdiff4", "zstd", "elf+bsdiff4")
# bsdiff4's suffix sort needs about 17 bytes per byte of old blob; above this it is not attempted.
BSDIFF_MEMORY = 8 << 30
ZSTD_AUTO_LIMIT = 16 << 20


@dataclass
class MakeReport:
    """What making one patch found: sizes, the differ chosen, and how each member was described."""

    old: str
    new: str
    new_size: int
    patch_size: int = 0
    differ: str = ""
    recipes: dict[str, int] = field(default_factory=dict)
    raw_members: int = 0
    raw_bytes: int = 0
    copied_members: int = 0
    left_out: int = 0  # raw members the patch leaves to range requests (cheaper on the wire)
    payloads: dict[str, int] = field(default_factory=dict)  # each differ tried: its payload's size

    @property
    def ratio(self) -> float:
        return self.patch_size / self.new_size if self.new_size else 0.0


@dataclass
class _Target:
    """The new wheel taking shape as operations over a target blob."""

    ops: list[Op] = field(default_factory=list)
    parts: list[bytes | range] = field(default_factory=list)  # a range: those bytes of the toggled wheel
    placed: list[Placed] = field(default_factory=list)
    directory: tuple[int, int] | None = None

    def literal(self, start: int, end: int, directory: bool = False) -> None:
        last = self.ops[-1] if self.ops else None
        if isinstance(last, Literal) and not last.directory and not directory:
            self.ops[-1] = Literal(last.size + end - start)
        else:
            self.ops.append(Literal(end - start, directory))
        if directory:
            self.directory = (start, end)
        self.parts.append(range(start, end))

    def header_before(self, member: ZipMember) -> int:
        """The local header's length if it lies in the literal just before the member's data, else 0."""
        length, last = member.data_offset - member.header_offset, self.ops[-1] if self.ops else None
        fits = isinstance(last, Literal) and not last.directory and 30 <= length <= last.size
        return length if fits else 0

    def member(self, op: Member | Copy | Raw | FromTarget, placed: Placed, *data: bytes) -> None:
        self.ops.append(op)
        self.placed.append(placed)
        self.parts += data

    def blob(self, wheel: bytes) -> bytes:
        toggled = bytearray(wheel)
        fields.toggle(toggled, self.placed, self.directory)
        return b"".join(toggled[p.start : p.stop] if isinstance(p, range) else p for p in self.parts)


def _sources(old: WheelFile) -> tuple[list[Source], list[bytes], list[RawMember]]:
    """The old members a patch may read, with their content and their compressed bytes."""
    sources, contents, raws = [], [], []
    for name, member in old.members_by_name.items():
        if not blob.is_source_name(name):
            continue
        content = old.content(member)
        first_line = None
        if ".data/scripts/" in name and content.startswith(b"#!python"):
            first_line = content[: content.find(b"\n") + 1] or content
        sources.append(Source(name, len(content), first_line=first_line))
        contents.append(content)
        raws.append(RawMember(old.raw(member), member.crc))
    return sources, contents, raws


def _in_blob(
    sources: list[Source],
    contents: list[bytes],
    inners: dict[int, int],
    ops: list[Op],
    diviner: Diviner,
    budget: Budget,
) -> list[Source]:
    """Only content no new member repeats enters the blob (a diff rarely reads a file that did not change);
    gzip files there enter uncompressed when a recipe re-creates them. ``inners``: gzip sources a new gzip
    file repeats the content of, with that content's size."""
    repeated = {op.source for op in ops if isinstance(op, Copy | Member) and op.source is not None}
    return [
        replace(source, in_blob=False, gz_size=inners.get(k))
        if k in repeated
        else replace(source, gz_size=_gzip_size(content, diviner, budget))
        for k, (source, content) in enumerate(zip(sources, contents, strict=True))
    ]


def _gunzip(content: bytes, budget: Budget) -> tuple[int, bytes] | None:
    """``(header length, content)`` of a gzip file, if it is one that expands within the job's limits."""
    found = gzmember.split(content, budget.gzip_limit(content))
    if found is not None:
        budget.take(len(found[1]), "a gzip file")
    return found


def _gzip_contents(sources: list[Source], contents: list[bytes], budget: Budget) -> dict[bytes, tuple[int, int]]:
    """For each gzip source, sha256 of its uncompressed content -> (source index, size)."""
    found = {}
    for k, (source, content) in enumerate(zip(sources, contents, strict=True)):
        split = _gunzip(content, budget) if source.name.endswith(".gz") else None
        if split is not None:
            found[hashlib.sha256(split[1]).digest()] = (k, len(split[1]))
    return found


def _gzip_split(content: bytes, diviner: Diviner, budget: Budget) -> tuple[int, bytes, Recipe] | None:
    """A gzip file whose deflate stream some recipe re-creates: (header length, content, recipe)."""
    found = _gunzip(content, budget)
    if found is None:
        return None
    start, inner = found
    recipe = diviner.recipe_for(inner, content[start:-8])
    return None if recipe is None else (start, inner, recipe)


def _same_stream(old: bytes, stream: bytes) -> bool:
    """True if the old gzip file ends in exactly this deflate stream and trailer."""
    start = gzmember.header_length(old)
    return start is not None and old[start:] == stream


def _gzip_size(content: bytes, diviner: Diviner, budget: Budget) -> int | None:
    found = _gzip_split(content, diviner, budget)
    return None if found is None else len(found[1])


def describe(
    old: WheelFile, new: WheelFile, budget: Budget
) -> tuple[list[Source], list[bytes], list[RawMember], _Target, MakeReport]:
    """The sources (with content and compressed bytes) and the target, each member tied to one or the other.

    ``budget`` must already hold the members' declared sizes; gzip files expand only within what it has left.
    """
    diviner = Diviner()
    sources, contents, raws = _sources(old)
    by_hash = {hashlib.sha256(c).digest(): k for k, c in enumerate(contents)}
    old_inners, inners = _gzip_contents(sources, contents, budget), {}
    report = MakeReport(old.filename, new.filename, len(new.data))
    target = _Target()
    directory = new.layout.directory_offset
    for offset, length, member in new.layout.pieces():
        end = offset + length
        if member is None:
            if directory is not None and offset <= directory < end:
                if directory > offset:
                    target.literal(offset, directory)
                target.literal(directory, end, directory=True)
            else:
                target.literal(offset, end)
            continue
        content, compressed = new.content(member), new.raw(member)
        recipe = None if member.method == STORED else diviner.recipe_for(content, compressed)
        known = by_hash.get(hashlib.sha256(content).digest())
        header = target.header_before(member)
        placed = Placed(member.data_offset, header, member.crc, len(compressed), len(content))
        check = Check.of(compressed)
        if known is not None and raws[known].data == compressed:
            target.member(Copy(known, recipe, header, check=check), placed)
            report.copied_members += 1
        elif recipe is None and member.method != STORED:
            report.raw_members += 1
            report.raw_bytes += len(compressed)
            if wire.carried_cost(compressed) > len(compressed) + wire.PART:
                target.member(FromTarget(check), Placed(member.data_offset, 0, 0, 0, 0))
                report.left_out += 1
            else:
                target.member(Raw(len(compressed)), Placed(member.data_offset, 0, 0, 0, 0), compressed)
        elif known is not None:
            target.member(Member(recipe, source=known, header=header, check=check), placed)
        elif (gz := _gzip_split(content, diviner, budget)) is not None:
            start, inner, gz_recipe = gz
            same = old_inners.get(hashlib.sha256(inner).digest())
            if same is not None and _same_stream(contents[same[0]], content[start:]):
                # Only the gzip header changed (botocore's models: the mtime): the applier copies the old
                # file's deflate stream and trailer instead of deflating the content again.
                inners[same[0]] = same[1]
                op = Member(recipe, start, source=same[0], gz=(start, gz_recipe), header=header, check=check)
                target.member(op, placed, content[:start])
            else:
                op = Member(recipe, start + len(inner), gz=(start, gz_recipe), header=header, check=check)
                target.member(op, placed, content[:start], inner)
        else:
            target.member(Member(recipe, len(content), header=header, check=check), placed, content)
    sources = _in_blob(sources, contents, inners, target.ops, diviner, budget)
    report.recipes = dict(diviner.found)
    return sources, contents, raws, target, report


def _payload(differ: str, source_blob: bytes, target_blob: bytes, seconds: float) -> list[tuple[str, bytes]]:
    """Each differ's name and payload: the one asked for, or under "auto" those worth running."""
    zstd = ZstdPrefix()
    if differ != "auto":
        chosen: Differ = differs.get(differ)
        return [(chosen.name, chosen.diff(source_blob, target_blob))]
    if 17 * len(source_blob) > BSDIFF_MEMORY:
        return [(zstd.name, zstd.diff(source_blob, target_blob))]
    job = Background(lambda: _bsdiffs(source_blob, target_blob, seconds), memory=BSDIFF_MEMORY)
    # zstd wins on small, text-heavy wheels; on large ones bsdiff4 wins and zstd -19 would only add time.
    candidates = []
    if len(source_blob) <= ZSTD_AUTO_LIMIT:
        candidates.append((zstd.name, zstd.diff(source_blob, target_blob)))
    candidates += job.result(seconds) or []
    if not candidates:  # bsdiff4 ran out of time (or failed): zstd is the fallback
        candidates.append((zstd.name, zstd.diff(source_blob, target_blob)))
    return candidates


def _bsdiffs(source_blob: bytes, target_blob: bytes, seconds: float) -> list[tuple[str, bytes]]:
    """bsdiff4's payload, and elf+bsdiff4's when the source blob holds ELF images that moved: its address
    map comes from the first diff's matches, so the second diff is the only extra cost. That one is skipped
    when the first took more than a third of the ``seconds`` both may take (it takes about as long)."""
    started = time.monotonic()
    raw = bsdiff4.core.diff(source_blob, target_blob)
    found = [(Bsdiff.name, Bsdiff.encode(raw))]
    if time.monotonic() - started > seconds / 3:
        return found
    elf = ElfBsdiff().diff_from(source_blob, target_blob, raw[0])
    if elf is not None:
        found.append((ElfBsdiff.name, elf))
    return found


def make_patch(
    old_path: Path,
    new_path: Path,
    out_path: Path,
    *,
    differ: str = "auto",
    bsdiff_seconds: float = 600,
    limits: SizeLimits = DEFAULT_LIMITS,
) -> MakeReport:
    """Write a patch that turns ``old_path`` into ``new_path`` byte for byte, checked by applying it.

    Wheels holding more content than ``limits`` allow are refused (:class:`TooLarge`) before any is inflated.
    """
    old, new = WheelFile.read(old_path), WheelFile.read(new_path)
    budget = Budget(limits, len(new.data))
    budget.declared(old)
    budget.declared(new)
    sources, contents, raws, target, report = describe(old, new, budget)
    source_blob = blob.build(sources, dict(enumerate(contents)))
    target_blob = target.blob(new.data)
    candidates = _payload(differ, source_blob, target_blob, bsdiff_seconds)
    best = min(candidates, key=lambda candidate: len(candidate[1]))
    header = PatchHeader(
        old=old.ref(),
        new=new.ref(),
        sources=tuple(sources),
        source_sha256=hashlib.sha256(source_blob).hexdigest(),
        source_size=len(source_blob),
        target_blob_size=len(target_blob),
        differ=best[0],
        ops=tuple(target.ops),
        payload_size=len(best[1]),
        payload_sha256=hashlib.sha256(best[1]).hexdigest(),
    )
    with ThreadPoolExecutor() as pool:
        rebuilt = rebuild(
            header,
            best[1],
            source_blob,
            raws,
            dict(enumerate(contents)),
            pool,
            lambda ranges: [new.data[o : o + n] for o, n in ranges],
        )
    if rebuilt != new.data:
        raise ReconstructionFailed(f"internal error: the patch for {new.filename} does not rebuild it exactly")
    write_patch(out_path, header, best[1])
    report.differ = best[0]
    report.payloads = {name: len(payload) for name, payload in candidates}
    report.patch_size = out_path.stat().st_size
    return report
