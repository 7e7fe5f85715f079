"""The patch container: magic, version, a compressed JSON header and the differ's payload."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipdelta.engines.recipes import Recipe
from pipdelta.errors import PatchFormatError
from pipdelta.format import codec

MAGIC = b"PIPDELTA"
VERSION = 1
_PREAMBLE = struct.Struct(">8sHI")
MAX_HEADER = 64 << 20
# Declared sizes above this are refused before anything is allocated; PIPDELTA_MAX_SIZE raises it.
MAX_DECLARED = int(os.environ.get("PIPDELTA_MAX_SIZE", 4 << 30))


@dataclass(frozen=True)
class WheelRef:
    """A wheel named by its filename, pinned by its sha256 and size."""

    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Source:
    """One member of the old wheel the patch reads: its name, size, and how it enters the source blob."""

    name: str
    size: int
    gz_size: int | None = None  # the blob holds this gzip member's uncompressed content, of this size
    first_line: bytes | None = None  # a ``#!python`` script's first line, which installers rewrite
    in_blob: bool = True  # False: a new member has this very content; only its name enters the blob


@dataclass(frozen=True)
class Literal:
    """The next ``size`` bytes of the target blob: headers and gaps (``directory``: the central directory
    and what follows it), their data-determined fields toggled (see :mod:`pipdelta.format.fields`)."""

    size: int
    directory: bool = False


@dataclass(frozen=True)
class Raw:
    """A member's data that no recipe re-creates: the next ``size`` bytes of the target blob, as they are."""

    size: int


@dataclass(frozen=True)
class Member:
    """A member's data: its content compressed by ``recipe`` (None = stored).

    The content is the next ``size`` bytes of the target blob (``source`` None), or source ``source``'s.
    With ``gz`` = (header length, recipe) the member is a gzip file rebuilt from a gzip header and its
    uncompressed content: both the next ``size`` bytes of the target blob, or (``source`` set) the header
    from the blob and the uncompressed content of gzip source ``source``.
    """

    recipe: Recipe | None
    size: int = 0
    source: int | None = None
    gz: tuple[int, Recipe] | None = None
    header: int = 0  # length of the local header that ends where the data starts (0: not toggled)


@dataclass(frozen=True)
class Copy:
    """Data identical to old source ``source``'s compressed bytes; without the old wheel, ``recipe`` redoes it."""

    source: int
    recipe: Recipe | None
    header: int = 0


Op = Literal | Raw | Member | Copy


@dataclass(frozen=True)
class PatchHeader:
    """Everything the applier must know before it reads the payload."""

    old: WheelRef
    new: WheelRef
    sources: tuple[Source, ...]
    source_sha256: str
    source_size: int
    target_blob_size: int
    differ: str
    ops: tuple[Op, ...]
    payload_size: int
    payload_sha256: str

    def recipes(self, *, copies: bool = True) -> frozenset[Recipe]:
        """The engine recipes rebuilding the target needs (``copies``: also those of copied members)."""
        found: set[Recipe] = set()
        for op in self.ops:
            if isinstance(op, Member) and op.gz is not None:
                found.add(op.gz[1])
            if (isinstance(op, Member) or (copies and isinstance(op, Copy))) and op.recipe is not None:
                found.add(op.recipe)
        return frozenset(found)

    def to_json(self) -> dict[str, Any]:
        return {
            "old": vars(self.old),
            "new": vars(self.new),
            "sources": [_source_json(s) for s in self.sources],
            "source_sha256": self.source_sha256,
            "source_size": self.source_size,
            "target_blob_size": self.target_blob_size,
            "differ": self.differ,
            "ops": [_op_json(op) for op in self.ops],
            "payload_size": self.payload_size,
            "payload_sha256": self.payload_sha256,
        }


def _source_json(source: Source) -> list[Any]:
    extra: dict[str, Any] = {}
    if source.gz_size is not None:
        extra["gz"] = source.gz_size
    if source.first_line is not None:
        extra["line"] = source.first_line.decode("latin-1")
    if not source.in_blob:
        extra["content"] = False
    return [source.name, source.size, extra] if extra else [source.name, source.size]


def _op_json(op: Op) -> list[Any]:
    if isinstance(op, Literal):
        return ["dir" if op.directory else "lit", op.size]
    if isinstance(op, Raw):
        return ["raw", op.size]
    header = [op.header] if op.header else []
    if isinstance(op, Copy):
        return ["copy", op.source, _recipe_json(op.recipe), *header]
    content: list[Any]
    if op.gz is not None:
        content = ["gz", op.size, op.gz[0], str(op.gz[1])]
        if op.source is not None:
            content.append(op.source)
    elif op.source is not None:
        content = ["src", op.source]
    else:
        content = ["blob", op.size]
    return ["mem", _recipe_json(op.recipe), content, *header]


def _recipe_json(recipe: Recipe | None) -> str | None:
    return None if recipe is None else str(recipe)


def write_patch(path: Path, header: PatchHeader, payload: bytes) -> None:
    """Write the patch atomically: a reader sees the old file or the whole new one, never a torn one."""
    body = codec.xz_compress(json.dumps(header.to_json(), separators=(",", ":")).encode())
    atomic_write(path, [_PREAMBLE.pack(MAGIC, VERSION, len(body)), body, payload])


def atomic_write(path: Path, chunks: list[bytes]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_patch(data: bytes) -> tuple[PatchHeader, memoryview]:
    """Parse and check a whole patch; every inconsistency is a :class:`PatchFormatError`."""
    if len(data) < _PREAMBLE.size or data[:8] != MAGIC:
        raise PatchFormatError("not a pipdelta patch (bad magic)")
    _, version, length = _PREAMBLE.unpack_from(data)
    if version != VERSION:
        raise PatchFormatError(f"patch format version {version}; this pipdelta reads version {VERSION}")
    if length > MAX_HEADER or _PREAMBLE.size + length > len(data):
        raise PatchFormatError("patch is truncated (header)")
    try:
        raw = codec.xz_decompress(data[_PREAMBLE.size : _PREAMBLE.size + length], MAX_HEADER, "header", exact=False)
        header = _parse_header(json.loads(raw))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        if isinstance(exc, PatchFormatError):
            raise
        raise PatchFormatError(f"corrupt patch header ({type(exc).__name__}: {exc})") from None
    payload = memoryview(data)[_PREAMBLE.size + length :]
    if len(payload) != header.payload_size:
        raise PatchFormatError(f"patch is truncated: payload has {len(payload)} of {header.payload_size} bytes")
    if hashlib.sha256(payload).hexdigest() != header.payload_sha256:
        raise PatchFormatError("patch payload is corrupt (sha256 mismatch)")
    return header, payload


def _size(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_DECLARED:
        raise PatchFormatError(f"patch declares an impossible {what}: {value!r}")
    return value


def _ref(obj: dict[str, Any]) -> WheelRef:
    return WheelRef(str(obj["filename"]), str(obj["sha256"]), _size(obj["size"], "wheel size"))


def _recipe(value: Any) -> Recipe | None:
    return None if value is None else Recipe.parse(str(value))


def _parse_source(entry: list[Any]) -> Source:
    name = str(entry[0])
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name or ":" in path.parts[0]:
        raise PatchFormatError(f"patch names an unsafe source path {name!r}")
    extra = entry[2] if len(entry) > 2 else {}
    gz_size = _size(extra["gz"], "gzip size") if "gz" in extra else None
    first_line = str(extra["line"]).encode("latin-1") if "line" in extra else None
    return Source(name, _size(entry[1], "source size"), gz_size, first_line, extra.get("content", True) is not False)


def _parse_op(entry: list[Any], sources: tuple[Source, ...]) -> Op:
    def source(value: Any) -> int:
        if type(value) is not int or not 0 <= value < len(sources):
            raise PatchFormatError(f"patch refers to a source that does not exist: {value!r}")
        return value

    kind = entry[0]
    if kind in ("lit", "dir"):
        return Literal(_size(entry[1], "literal size"), directory=kind == "dir")
    if kind == "raw":
        return Raw(_size(entry[1], "raw member size"))
    if kind == "copy":
        return Copy(source(entry[1]), _recipe(entry[2]), _header(entry, 3))
    if kind == "mem":
        recipe, content, header = _recipe(entry[1]), entry[2], _header(entry, 3)
        if content[0] == "src":
            return Member(recipe, source=source(content[1]), header=header)
        if content[0] == "blob":
            return Member(recipe, _size(content[1], "member size"), header=header)
        if content[0] == "gz":
            gz = (_size(content[2], "header"), Recipe.parse(str(content[3])))
            inner = source(content[4]) if len(content) > 4 else None
            if inner is not None and (sources[inner].gz_size is None or gz[0] != content[1]):
                raise PatchFormatError("patch rebuilds a gzip file from a source that is no gzip file")
            return Member(recipe, _size(content[1], "member size"), source=inner, gz=gz, header=header)
    raise PatchFormatError(f"unknown patch operation {entry!r:.80}")


def _header(entry: list[Any], index: int) -> int:
    return _size(entry[index], "local header length") if len(entry) > index else 0


def _check_toggles(ops: tuple[Op, ...]) -> None:
    """A toggled local header must lie inside the literal just before its member; one directory at most."""
    for before, op in zip((None, *ops), ops, strict=False):
        if not isinstance(op, Member | Copy) or not op.header:
            continue
        if not isinstance(before, Literal) or before.directory or not 30 <= op.header <= before.size:
            raise PatchFormatError("patch places a local header outside the bytes before its member")
    if sum(isinstance(op, Literal) and op.directory for op in ops) > 1:
        raise PatchFormatError("patch has more than one central directory")


def _parse_header(obj: dict[str, Any]) -> PatchHeader:
    sources = tuple(_parse_source(entry) for entry in obj["sources"])
    ops = tuple(_parse_op(entry, sources) for entry in obj["ops"])
    header = PatchHeader(
        old=_ref(obj["old"]),
        new=_ref(obj["new"]),
        sources=sources,
        source_sha256=str(obj["source_sha256"]),
        source_size=_size(obj["source_size"], "source size"),
        target_blob_size=_size(obj["target_blob_size"], "target blob size"),
        differ=str(obj["differ"]),
        ops=ops,
        payload_size=_size(obj["payload_size"], "payload size"),
        payload_sha256=str(obj["payload_sha256"]),
    )
    _check_toggles(ops)
    from_blob = sum(op.size for op in ops if isinstance(op, Literal | Raw | Member))
    if from_blob != header.target_blob_size:
        raise PatchFormatError("patch operations do not add up to the target blob it declares")
    return header
