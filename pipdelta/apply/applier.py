"""Apply a patch: build the source blob, run the differ, rebuild every member, verify, then write."""

from __future__ import annotations

import hashlib
import os
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.utils import parse_wheel_filename

from pipdelta import differs
from pipdelta.apply import missing, speed
from pipdelta.apply.missing import Piece, RangeFetcher
from pipdelta.apply.sources import OldContent, RawMember
from pipdelta.engines.recipes import Recipe
from pipdelta.errors import EngineMismatch, PatchFormatError, ReconstructionFailed, SourceMismatch
from pipdelta.format import blob, fields, gzmember
from pipdelta.format.fields import Placed
from pipdelta.format.patchfile import (
    Copy,
    FromTarget,
    Literal,
    Member,
    PatchHeader,
    Raw,
    Target,
    atomic_write,
    read_patch,
)

Bytes = bytes | memoryview


def apply_patch(
    patch: bytes, source: OldContent, out: Path, *, target: Target | None = None, fetch: RangeFetcher | None = None
) -> Path:
    """Rebuild the patch's target wheel from ``source`` as ``out`` (or into it, if a folder); returns its path.

    In a folder the file is named after ``target``, which the patch must build, or else after the patch's
    wheel filename once checked: one valid wheel filename of the old wheel's project. Nothing is written
    unless the result has the sha256 the patch (and ``target``) promise. Members this machine's engines
    cannot re-create (each member's check says which) and those the patch leaves out are byte ranges of the
    new wheel: ``fetch`` gets them from the primary index; without it they are an :class:`EngineMismatch`.
    """
    started = time.perf_counter()
    header, payload = read_patch(patch, target)
    if parse_wheel_filename(header.new.filename)[0] != parse_wheel_filename(header.old.filename)[0]:
        raise PatchFormatError(f"the patch turns {header.old.filename} into another project's wheel")
    source.check(header.old)
    with ThreadPoolExecutor(_WORKERS) as pool:  # inflating and hashing release the GIL
        # Only content the rebuild reads is inflated: a member copied from the old wheel is never read, and
        # its RECORD row comes from the old wheel's RECORD (checked with the whole blob below).
        rows = source.record_rows()
        needed = _needed(header, source.has_raw, rows)
        contents = _read(pool, source, header, needed)
        source_blob = blob.build(header.sources, contents, rows, pool)
        if not _matches(header, source_blob) and rows:  # a RECORD that lies: hash every source instead
            rest = [k for k in range(len(header.sources)) if k not in contents]
            contents.update(_read(pool, source, header, rest))
            source_blob = blob.build(header.sources, contents, {}, pool)
        if not _matches(header, source_blob):
            raise SourceMismatch(f"the old content of {header.old.filename} differs from what the patch was made from")
        raws = [source.raw(s) for s in header.sources] if source.has_raw else None
        data = rebuild(header, payload, source_blob, raws, contents, pool, fetch)
    if len(data) != header.new.size or hashlib.sha256(data).hexdigest() != header.new.sha256:
        raise ReconstructionFailed(f"the rebuilt {header.new.filename} has the wrong sha256; nothing was written")
    path = out / header.new.filename if out.is_dir() else out
    atomic_write(path, [data])
    speed.record(header.differ, not source.has_raw, len(data), time.perf_counter() - started)
    return path


# Compressing, inflating and hashing release the GIL: one thread per core keeps every core busy.
_WORKERS = max(2, os.cpu_count() or 1)


def _matches(header: PatchHeader, source_blob: bytes) -> bool:
    return len(source_blob) == header.source_size and hashlib.sha256(source_blob).hexdigest() == header.source_sha256


def _read(pool: ThreadPoolExecutor, source: OldContent, header: PatchHeader, wanted: list[int]) -> dict[int, bytes]:
    return dict(zip(wanted, pool.map(source.read, [header.sources[k] for k in wanted]), strict=True))


def _needed(header: PatchHeader, has_raw: bool, rows: Mapping[str, bytes]) -> list[int]:
    """The sources whose content the blob or a member needs (copies need none when the old wheel is here),
    and those whose RECORD row is not known."""
    needed = {k for k, s in enumerate(header.sources) if s.in_blob or s.name not in rows}
    needed.update(op.source for op in header.ops if isinstance(op, Member) and op.source is not None)
    if not has_raw:
        needed.update(op.source for op in header.ops if isinstance(op, Copy))
    return sorted(needed)


def rebuild(
    header: PatchHeader,
    payload: bytes | memoryview,
    source_blob: bytes,
    raws: Sequence[RawMember] | None,
    contents: Mapping[int, bytes],
    pool: ThreadPoolExecutor,
    fetch: RangeFetcher | None = None,
) -> bytearray:
    """The target wheel's bytes; ``raws`` are the old members' compressed bytes, when the old wheel is here."""
    target_blob = differs.get(header.differ).patch(source_blob, bytes(payload), header.target_blob_size)
    jobs = list(_jobs(header, target_blob, raws, contents))
    # The largest members first, so that no core is left compressing one big member at the end alone.
    order = sorted(range(len(jobs)), key=lambda i: -_cost(jobs[i]))
    made: list[Piece] = [None] * len(jobs)
    for i, piece in zip(order, pool.map(lambda i: _attempt(jobs[i]), order), strict=True):
        made[i] = piece
    pieces = missing.fill(header, made, fetch)
    placed, directory, position = [], None, 0
    for op, (data, crc, size) in zip(header.ops, pieces, strict=True):
        if isinstance(op, Literal) and op.directory:
            directory = (position, position + len(data))
        elif isinstance(op, Raw | FromTarget):
            placed.append(Placed(position, 0, 0, 0, 0))
        elif isinstance(op, Member | Copy):
            placed.append(Placed(position, op.header, crc, len(data), size))
        position += len(data)
    wheel = bytearray(b"".join(data for data, _, _ in pieces))
    fields.toggle(wheel, placed, directory)
    return wheel


def _cost(job: _Job | None) -> int:
    return 0 if job is None else job.cost


def _attempt(job: _Job | None) -> Piece:
    """The job's piece, or None where this machine has no engine for it (the new wheel then supplies it)."""
    try:
        return None if job is None else job()
    except EngineMismatch:
        return None


def _jobs(
    header: PatchHeader, target_blob: bytes, raws: Sequence[RawMember] | None, contents: Mapping[int, bytes]
) -> Iterator[_Job | None]:
    """One callable per op, in file order; each returns that piece's bytes (and its content's CRC and size)."""
    view = memoryview(target_blob)
    position = 0
    for op in header.ops:
        if isinstance(op, Literal | Raw):
            yield _Job.done(view[position : position + op.size], 0, 0)
            position += op.size
        elif isinstance(op, FromTarget):
            yield None
        elif isinstance(op, Copy):
            if raws is not None:
                raw = raws[op.source]
                yield _Job.done(raw.data, raw.crc, header.sources[op.source].size)
            else:  # without a recipe this is right only for a stored member; the checks tell
                yield _Job(contents[op.source], op.recipe)
        else:
            content: Bytes = view[position : position + op.size]
            position += op.size
            if op.source is not None and op.gz is not None:
                # A gzip header from the blob; the deflate stream and trailer are the old gzip file's (the
                # maker uses this op only then): copied, not deflated again.
                yield _Job(bytes(content) + gzmember.stream(contents[op.source]), op.recipe)
                continue
            if op.source is not None:
                content = contents[op.source]
            yield _Job(content, op.recipe, op.gz)


class _Job:
    """A member's data: ``content`` compressed with ``recipe`` (after wrapping it as a gzip file when ``gz``
    says so); ``cost`` says how much work that is, so the biggest jobs start first."""

    def __init__(self, content: Bytes, recipe: Recipe | None = None, gz: tuple[int, Recipe] | None = None) -> None:
        self.content, self.recipe, self.gz = content, recipe, gz
        self.cost = len(content)
        self._run: Callable[[], tuple[Bytes, int, int]] = self._compress

    @classmethod
    def done(cls, data: Bytes, crc: int, size: int) -> _Job:
        """A piece known already: literal bytes, or a member's compressed bytes copied from the old wheel."""
        job = cls(b"")
        job._run = lambda: (data, crc, size)
        return job

    def __call__(self) -> tuple[Bytes, int, int]:
        return self._run()

    def _compress(self) -> tuple[Bytes, int, int]:
        content = bytes(self.content)  # a member rebuilt from the target blob: the engines want bytes
        if self.gz is not None:
            start, inner_recipe = self.gz
            inner = content[start:]
            content = bytes(content[:start]) + inner_recipe.compress(inner) + gzmember.trailer(inner)
        data = content if self.recipe is None else self.recipe.compress(content)
        return data, zlib.crc32(content), len(content)
