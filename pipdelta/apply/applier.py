"""Apply a patch: build the source blob, run the differ, rebuild every member, verify, then write."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.utils import parse_wheel_filename

from pipdelta import differs
from pipdelta.apply import missing
from pipdelta.apply.missing import Piece, RangeFetcher
from pipdelta.apply.sources import OldContent
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
    header, payload = read_patch(patch, target)
    if parse_wheel_filename(header.new.filename)[0] != parse_wheel_filename(header.old.filename)[0]:
        raise PatchFormatError(f"the patch turns {header.old.filename} into another project's wheel")
    source.check(header.old)
    with ThreadPoolExecutor() as pool:  # inflating and hashing release the GIL
        contents = list(pool.map(source.read, header.sources))
    source_blob = blob.build(header.sources, contents)
    if len(source_blob) != header.source_size or hashlib.sha256(source_blob).hexdigest() != header.source_sha256:
        raise SourceMismatch(f"the old content of {header.old.filename} differs from what the patch was made from")
    raws = [source.raw(s) for s in header.sources] if source.has_raw else None
    data = rebuild(header, payload, source_blob, raws, contents, fetch)
    if len(data) != header.new.size or hashlib.sha256(data).hexdigest() != header.new.sha256:
        raise ReconstructionFailed(f"the rebuilt {header.new.filename} has the wrong sha256; nothing was written")
    path = out / header.new.filename if out.is_dir() else out
    atomic_write(path, [data])
    return path


def rebuild(
    header: PatchHeader,
    payload: bytes | memoryview,
    source_blob: bytes,
    raws: Sequence[bytes] | None,
    contents: Sequence[bytes],
    fetch: RangeFetcher | None = None,
) -> bytes:
    """The target wheel's bytes; ``raws`` are the old members' compressed bytes, when the old wheel is here."""
    target_blob = differs.get(header.differ).patch(source_blob, bytes(payload), header.target_blob_size)
    with ThreadPoolExecutor() as pool:  # zlib, cramjam and ctypes release the GIL while they compress
        made = list(pool.map(_attempt, _jobs(header, target_blob, raws, contents)))
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
    return bytes(wheel)


def _attempt(job: _Job | None) -> Piece:
    """The job's piece, or None where this machine has no engine for it (the new wheel then supplies it)."""
    try:
        return None if job is None else job()
    except EngineMismatch:
        return None


def _jobs(
    header: PatchHeader, target_blob: bytes, raws: Sequence[bytes] | None, contents: Sequence[bytes]
) -> Iterator[_Job | None]:
    """One callable per op, in file order; each returns that piece's bytes (and its content's CRC and size)."""
    view = memoryview(target_blob)
    position = 0
    for op in header.ops:
        if isinstance(op, Literal | Raw):
            yield _Job(bytes(view[position : position + op.size]), verbatim=True)
            position += op.size
        elif isinstance(op, FromTarget):
            yield None
        elif isinstance(op, Copy):
            if raws is not None:
                yield _Job(contents[op.source], data=raws[op.source])
            else:  # without a recipe this is right only for a stored member; the checks tell
                yield _Job(contents[op.source], op.recipe)
        else:
            content = bytes(view[position : position + op.size])
            position += op.size
            if op.source is not None and op.gz is not None:  # a gzip header from the blob, content from a source
                source = header.sources[op.source]
                content += gzmember.gunzip(contents[op.source], source.gz_size or 0)
            elif op.source is not None:
                content = contents[op.source]
            yield _Job(content, op.recipe, op.gz)


class _Job:
    """A member's data: ``content`` compressed with ``recipe`` (after wrapping it as a gzip file when ``gz``
    says so), or ``data`` when it is known already; ``verbatim`` bytes are no member's and pass as they are."""

    def __init__(
        self,
        content: bytes,
        recipe: Recipe | None = None,
        gz: tuple[int, Recipe] | None = None,
        *,
        data: bytes | None = None,
        verbatim: bool = False,
    ) -> None:
        self.content, self.recipe, self.gz, self.data, self.verbatim = content, recipe, gz, data, verbatim

    def __call__(self) -> tuple[bytes, int, int]:
        content = self.content
        if self.verbatim:
            return content, 0, 0
        if self.gz is not None:
            start, inner_recipe = self.gz
            inner = content[start:]
            content = content[:start] + inner_recipe.compress(inner) + gzmember.trailer(inner)
        data = self.data
        if data is None:
            data = content if self.recipe is None else self.recipe.compress(content)
        return data, zlib.crc32(content), len(content)
