"""Apply a patch: build the source blob, run the differ, rebuild every member, verify, then write."""

from __future__ import annotations

import functools
import hashlib
import heapq
import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

from packaging.utils import parse_wheel_filename

from pipdelta import differs
from pipdelta.apply import missing, speed
from pipdelta.apply.missing import Made, Piece, RangeFetcher
from pipdelta.apply.sources import OldContent, RawMember
from pipdelta.atomic import atomic_write
from pipdelta.engines.recipes import Recipe
from pipdelta.errors import EngineMismatch, PatchFormatError, ReconstructionFailed, SourceMismatch
from pipdelta.format import blob, fields, gzmember
from pipdelta.format.fields import Placed
from pipdelta.format.patchfile import (
    Copy,
    FromTarget,
    Literal,
    Member,
    Op,
    PatchHeader,
    Raw,
    Target,
    read_patch,
)
from pipdelta.index.members import Members

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
    started = time.thread_time()
    with _TimedPool(_WORKERS) as pool:  # inflating, hashing and compressing release the GIL
        pinning = pool.submit(source.prepare)  # the old wheel's sha256 while the header is parsed
        header, payload = read_patch(patch, target)
        if parse_wheel_filename(header.new.filename)[0] != parse_wheel_filename(header.old.filename)[0]:
            raise PatchFormatError(f"the patch turns {header.old.filename} into another project's wheel")
        pinning.result()
        source.check(header.old)
        # Only content the rebuild reads is inflated: a member copied from the old wheel is never read, and
        # RECORD rows come from RECORD (the old wheel's or the installed one; checked with the whole blob below).
        rows = source.record_rows(header.sources)
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
        digest = pool.submit(hashlib.sha256, data)  # on one core while another writes the file
        wrong = f"the rebuilt {header.new.filename} has the wrong sha256; nothing was written"
        if len(data) != header.new.size:
            raise ReconstructionFailed(wrong)

        def verified() -> None:
            if digest.result().hexdigest() != header.new.sha256:
                raise ReconstructionFailed(wrong)

        path = out / header.new.filename if out.is_dir() else out
        atomic_write(path, [data], verified)
    work = Members.of(header).work(installed=not source.has_raw)
    speed.record(not source.has_raw, work, pool.cpu + time.thread_time() - started)
    return path


# Compressing, inflating and hashing release the GIL: one thread per core keeps every core busy.
_WORKERS = max(2, os.cpu_count() or 1)
_P = ParamSpec("_P")
_R = TypeVar("_R")


class _TimedPool(ThreadPoolExecutor):
    """A pool that adds up the CPU time its tasks take: a rebuild's own cost, whatever else the machine runs."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.cpu = 0.0
        self._cpu_lock = threading.Lock()

    def submit(self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_R]:
        def timed() -> _R:
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.thread_time() - start
                with self._cpu_lock:
                    self.cpu += spent

        return super().submit(timed)


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
    """The target wheel's bytes; ``raws`` are the old members' compressed bytes, when the old wheel is here.

    Members made of old content are compressed (or, copied, checked) while the differ runs; the others once
    it is done. Every core takes the costliest job waiting, so the largest member never ends up alone last.
    """
    made: list[Made] = [None] * len(header.ops)
    queue = _Queue(pool, header.ops, made)
    queue.add(_old_jobs(header, raws, contents))
    try:
        target_blob = differs.get(header.differ).patch(source_blob, bytes(payload), header.target_blob_size)
    except BaseException:
        queue.cancel()  # a corrupt payload is one line now, not once every member waiting is compressed
        raise
    queue.add(_blob_jobs(header, memoryview(target_blob), made, contents))
    queue.wait()
    pieces = missing.fill(header, made, fetch)
    placed, directory, position = [], None, 0
    for op, piece in zip(header.ops, pieces, strict=True):
        if isinstance(op, Literal) and op.directory:
            directory = (position, position + len(piece.data))
        elif isinstance(op, Raw | FromTarget):
            placed.append(Placed(position, 0, 0, 0, 0))
        elif isinstance(op, Member | Copy):
            placed.append(Placed(position, op.header, piece.crc, len(piece.data), piece.size))
        position += len(piece.data)
    wheel = bytearray().join(piece.data for piece in pieces)
    fields.toggle(wheel, placed, directory)
    return wheel


#: One member's piece, made by a worker: its op's index, its cost (bytes of work) and how to make its data.
_Job = tuple[int, int, Callable[[], tuple[Bytes, int, int]]]
# Jobs smaller than this share one hand-over to a worker: a thread switch costs about as much as deflating 2 KB.
_BATCH = 64 << 10
# Checking a copied member's bytes (sha256) costs about this fraction of deflating them.
_HASH_COST = 16


def _old_jobs(header: PatchHeader, raws: Sequence[RawMember] | None, contents: Mapping[int, bytes]) -> list[_Job]:
    """The members made of old content alone: copies, and members compressed from an old file's content."""
    jobs: list[_Job] = []
    for k, op in enumerate(header.ops):
        if isinstance(op, Copy) and raws is not None:
            raw, size = raws[op.source], header.sources[op.source].size
            jobs.append((k, len(raw.data) // _HASH_COST, functools.partial(_copied, raw.data, raw.crc, size)))
            continue
        # a copy without the old wheel is compressed again (without a recipe, right only for a stored member;
        # the checks tell), as is a member whose content is an old file's
        source = op.source if isinstance(op, Copy) or (isinstance(op, Member) and op.gz is None) else None
        if isinstance(op, Copy | Member) and source is not None:
            jobs.append((k, header.sources[source].size, _compressor(contents[source], op.recipe)))
    return jobs


def _blob_jobs(
    header: PatchHeader, target_blob: memoryview, made: list[Made], contents: Mapping[int, bytes]
) -> list[_Job]:
    """The members whose content the target blob holds; the literal bytes between them go straight to ``made``."""
    jobs: list[_Job] = []
    position = 0
    for k, op in enumerate(header.ops):
        if isinstance(op, Literal | Raw):
            made[k] = Piece(target_blob[position : position + op.size])
            position += op.size
        elif isinstance(op, Member) and (op.source is None or op.gz is not None):
            content: Bytes = target_blob[position : position + op.size]
            position += op.size
            if op.source is not None:
                # A gzip header from the blob; the deflate stream and trailer are the old gzip file's (the
                # maker uses this op only then): copied, not deflated again.
                content, gz = bytes(content) + gzmember.stream(contents[op.source]), None
            else:
                gz = op.gz
            jobs.append((k, len(content), _compressor(content, op.recipe, gz)))
    return jobs


def _copied(data: Bytes, crc: int, size: int) -> tuple[Bytes, int, int]:
    return data, crc, size


def _compressor(
    content: Bytes, recipe: Recipe | None, gz: tuple[int, Recipe] | None = None
) -> Callable[[], tuple[Bytes, int, int]]:
    """A member's data: ``content`` compressed with ``recipe`` (after wrapping it as a gzip file when ``gz``
    says so), with the content's CRC-32 and size."""

    def compress() -> tuple[Bytes, int, int]:
        data = bytes(content)  # the engines want bytes: a member's content from the target blob is copied
        if gz is not None:
            start, inner_recipe = gz
            inner = data[start:]
            data = data[:start] + inner_recipe.compress(inner) + gzmember.trailer(inner)
        packed = data if recipe is None else recipe.compress(data)
        return packed, zlib.crc32(data), len(data)

    return compress


class _Queue:
    """Jobs run on the pool's workers in batches, the costliest batch waiting first, whenever it was added."""

    def __init__(self, pool: ThreadPoolExecutor, ops: Sequence[Op], made: list[Made]) -> None:
        self.pool, self.ops, self.made = pool, ops, made
        self.waiting: list[tuple[int, int, list[_Job]]] = []
        self.lock = threading.Lock()
        self.started: list[Future[None]] = []

    def add(self, jobs: list[_Job]) -> None:
        batches: list[list[_Job]] = []
        cost = _BATCH
        for job in sorted(jobs, key=lambda job: -job[1]):
            if cost >= _BATCH:
                batches.append([])
                cost = 0
            batches[-1].append(job)
            cost += job[1]
        with self.lock:
            for batch in batches:
                heapq.heappush(self.waiting, (-sum(job[1] for job in batch), len(self.started), batch))
                self.started.append(self.pool.submit(self._next))

    def _next(self) -> None:
        with self.lock:
            _, _, batch = heapq.heappop(self.waiting)
        for k, _, make in batch:
            self.made[k] = _attempt(self.ops[k], make)

    def wait(self) -> None:
        for future in self.started:
            future.result()

    def cancel(self) -> None:
        """Drop the batches no worker has started."""
        for future in self.started:
            future.cancel()


def _attempt(op: Op, make: Callable[[], tuple[Bytes, int, int]]) -> Made:
    """The member's piece and whether it passes its check; None where this machine has no engine for it (the
    new wheel then supplies it)."""
    try:
        data, crc, size = make()
    except EngineMismatch:
        return None
    assert isinstance(op, Member | Copy)
    return Piece(data, crc, size, op.check.matches(data))
