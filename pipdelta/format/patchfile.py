"""The patch container: magic, version, a compressed JSON header and the differ's payload."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from pipdelta.atomic import atomic_write
from pipdelta.engines.recipes import Recipe
from pipdelta.errors import PatchFormatError
from pipdelta.format import codec
from pipdelta.format.limits import EXPANSION, MAX_WHEEL, Budget

MAGIC = b"PIPDELTA"
VERSION = 2
_PREAMBLE = struct.Struct(">8sHI")
MAX_HEADER = 16 << 20  # bytes of header JSON, whatever the wheel
_MAX_NAME = 255  # bytes of a file name on every common file system
_SHA256 = re.compile("[0-9a-f]{64}")
_DIGEST = re.compile("[0-9a-f]{8}")


@dataclass(frozen=True)
class WheelRef:
    """A wheel named by its filename, pinned by its sha256 and size."""

    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Target:
    """The wheel a caller asks a patch to build, as far as it knows it: filename, sha256, size."""

    filename: str | None = None
    sha256: str | None = None
    size: int | None = None

    def check(self, new: WheelRef) -> None:
        """Refuse a patch that builds another wheel than this one."""
        if self.filename is not None and new.filename != self.filename:
            raise PatchFormatError(f"the patch makes {new.filename}, not {self.filename}")
        if self.sha256 is not None and new.sha256 != self.sha256.lower():
            raise PatchFormatError(f"the patch makes {new.filename} with another sha256 than expected")
        if self.size is not None and new.size != self.size:
            raise PatchFormatError(f"the patch makes {new.filename} of another size than expected")


@dataclass(frozen=True)
class Source:
    """One member of the old wheel the patch reads: its name, size, and how it enters the source blob."""

    name: str
    size: int
    gz_size: int | None = None  # the blob holds this gzip member's uncompressed content, of this size
    first_line: bytes | None = None  # a ``#!python`` script's first line, which installers rewrite
    in_blob: bool = True  # False: a new member has this very content; only its name enters the blob


@dataclass(frozen=True)
class Check:
    """A member's data as the new wheel holds it: its length and the first 4 bytes of its sha256, in hex.

    The applier compares what its engines make with it, so it knows at once which members this machine
    cannot re-create (and fetches exactly those bytes of the new wheel instead).
    """

    size: int
    digest: str

    @classmethod
    def of(cls, data: bytes | memoryview) -> Check:
        return cls(len(data), hashlib.sha256(data).hexdigest()[:8])

    def matches(self, data: bytes | memoryview) -> bool:
        return len(data) == self.size and hashlib.sha256(data).hexdigest()[:8] == self.digest


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
class FromTarget:
    """A member's data the patch leaves out: the next ``check.size`` bytes of the new wheel, fetched by range."""

    check: Check


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
    check: Check = field(kw_only=True)


@dataclass(frozen=True)
class Copy:
    """Data identical to old source ``source``'s compressed bytes; without the old wheel, ``recipe`` redoes it."""

    source: int
    recipe: Recipe | None
    header: int = 0
    check: Check = field(kw_only=True)


Op = Literal | Raw | FromTarget | Member | Copy


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
            "checks": [[op.check.size, op.check.digest] for op in self.ops if isinstance(op, Member | Copy)],
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
    if isinstance(op, FromTarget):
        return ["tgt", op.check.size, op.check.digest]
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


def read_patch(data: bytes, target: Target | None = None) -> tuple[PatchHeader, memoryview]:
    """Parse and check a whole patch; every inconsistency is a :class:`PatchFormatError`.

    Every size the header declares is checked against a :class:`Budget` before anything is allocated:
    that of ``target``'s size when the caller knows it (from the primary index), else of the size the
    header declares, which the final sha256 check pins.
    """
    if len(data) < _PREAMBLE.size or data[:8] != MAGIC:
        raise PatchFormatError("not a pipdelta patch (bad magic)")
    _, version, length = _PREAMBLE.unpack_from(data)
    if version != VERSION:
        raise PatchFormatError(f"patch format version {version}; this pipdelta reads version {VERSION}")
    if _PREAMBLE.size + length > len(data):
        raise PatchFormatError("patch is truncated (header)")
    limit = MAX_HEADER if target is None or target.size is None else min(MAX_HEADER, Budget(target.size).header)
    raw = codec.xz_decompress(data[_PREAMBLE.size : _PREAMBLE.size + length], limit, "header", exact=False)
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise PatchFormatError(f"corrupt patch header ({type(exc).__name__})") from None
    try:
        header = _parse_header(_fields(obj, "header"), len(raw), target)
    except PatchFormatError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise PatchFormatError(f"corrupt patch header ({type(exc).__name__})") from None
    payload = memoryview(data)[_PREAMBLE.size + length :]
    if len(payload) != header.payload_size:
        raise PatchFormatError(f"patch is truncated: payload has {len(payload)} of {header.payload_size} bytes")
    if hashlib.sha256(payload).hexdigest() != header.payload_sha256:
        raise PatchFormatError("patch payload is corrupt (sha256 mismatch)")
    return header, payload


def check_wheel_filename(value: object) -> str:
    """``value`` if it is a wheel filename safe to create in a folder: one path component, valid per the spec."""
    if (
        not isinstance(value, str)
        or not value.endswith(".whl")
        or len(value.encode("utf-8", "replace")) > _MAX_NAME
        or not value.isprintable()
        or any(c in value for c in "/\\:")
        or value.startswith(".")
    ):
        raise PatchFormatError(f"patch names an unsafe wheel file {str(value)[:80]!r}")
    try:
        parse_wheel_filename(value)
    except InvalidWheelFilename:
        raise PatchFormatError(f"patch names an invalid wheel file {value[:80]!r}") from None
    return value


def _fields(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PatchFormatError(f"corrupt patch header: {what} is not an object")
    return value


def _list(value: Any, what: str, limit: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise PatchFormatError(f"corrupt patch header: {what} is not a list")
    if limit is not None and len(value) > limit:
        raise PatchFormatError(f"patch lists {len(value):,} {what}s, more than the {limit:,} allowed")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise PatchFormatError(f"corrupt patch header: {what} is not a string")
    return value


def _sha256(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise PatchFormatError(f"corrupt patch header: {what} is not a sha256")
    return value


def _size(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_WHEEL * EXPANSION:
        raise PatchFormatError(f"patch declares an impossible {what}: {str(value)[:40]!r}")
    return value


def _ref(obj: Any, what: str) -> WheelRef:
    fields = _fields(obj, what)
    return WheelRef(
        check_wheel_filename(fields.get("filename")),
        _sha256(fields.get("sha256"), f"{what} sha256"),
        _size(fields.get("size"), f"{what} size"),
    )


def _recipe(value: Any) -> Recipe | None:
    return None if value is None else Recipe.parse(_text(value, "recipe"))


def _parse_source(value: Any) -> Source:
    entry = _list(value, "source entry")
    name = _text(entry[0], "source name")
    parts = [part for part in name.split("/") if part not in ("", ".")]  # as PurePosixPath(name).parts, faster
    if name.startswith("/") or not parts or ".." in parts or "\\" in name or ":" in parts[0]:
        raise PatchFormatError(f"patch names an unsafe source path {name[:80]!r}")
    extra = _fields(entry[2], "source options") if len(entry) > 2 else {}
    gz_size = _size(extra["gz"], "gzip size") if "gz" in extra else None
    first_line = _text(extra["line"], "first line").encode("latin-1") if "line" in extra else None
    return Source(name, _size(entry[1], "source size"), gz_size, first_line, extra.get("content", True) is not False)


def _parse_sources(value: Any, budget: Budget) -> tuple[Source, ...]:
    sources = tuple(map(_parse_source, _list(value, "source", budget.ops)))
    if len({s.name for s in sources}) != len(sources):
        raise PatchFormatError("patch names a source more than once")
    budget.check(sum(s.size + (s.gz_size or 0) for s in sources), budget.expanded, "bytes of old content")
    return sources


def _check(size: Any, digest: Any) -> Check:
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise PatchFormatError("corrupt patch header: a member check is not 8 hex digits")
    return Check(_size(size, "member data size"), digest)


def _parse_checks(value: Any, budget: Budget) -> tuple[Check, ...]:
    return tuple(_check(*_list(entry, "check entry")[:2]) for entry in _list(value, "check", budget.ops))


def _parse_op(value: Any, sources: tuple[Source, ...], checks: Iterator[Check]) -> Op:
    def source(value: Any) -> int:
        if type(value) is not int or not 0 <= value < len(sources):
            raise PatchFormatError(f"patch refers to a source that does not exist: {str(value)[:40]!r}")
        return value

    entry = _list(value, "operation entry")
    kind = entry[0]
    if kind in ("lit", "dir"):
        return Literal(_size(entry[1], "literal size"), directory=kind == "dir")
    if kind == "raw":
        return Raw(_size(entry[1], "raw member size"))
    if kind == "tgt":
        return FromTarget(_check(entry[1], entry[2]))
    if kind == "copy":
        return Copy(source(entry[1]), _recipe(entry[2]), _header(entry, 3), check=next(checks))
    if kind == "mem":
        recipe, content, header = _recipe(entry[1]), _list(entry[2], "member entry"), _header(entry, 3)
        if content[0] == "src":
            return Member(recipe, source=source(content[1]), header=header, check=next(checks))
        if content[0] == "blob":
            return Member(recipe, _size(content[1], "member size"), header=header, check=next(checks))
        if content[0] == "gz":
            gz = (_size(content[2], "header"), Recipe.parse(_text(content[3], "recipe")))
            inner = source(content[4]) if len(content) > 4 else None
            if inner is not None and (sources[inner].gz_size is None or gz[0] != content[1]):
                raise PatchFormatError("patch rebuilds a gzip file from a source that is no gzip file")
            return Member(
                recipe, _size(content[1], "member size"), source=inner, gz=gz, header=header, check=next(checks)
            )
    raise PatchFormatError(f"unknown patch operation {str(entry)[:80]!r}")


def _parse_ops(value: Any, sources: tuple[Source, ...], checks: tuple[Check, ...], budget: Budget) -> tuple[Op, ...]:
    """The ops, each ``mem`` and ``copy`` op with its check: "checks" has exactly one per such op, in order."""
    entries = _list(value, "operation", budget.ops)
    members = sum(isinstance(entry, list) and entry[:1] in (["mem"], ["copy"]) for entry in entries)
    if members != len(checks):
        raise PatchFormatError(f"patch has {len(checks):,} member checks for {members:,} members")
    each = iter(checks)
    return tuple(_parse_op(entry, sources, each) for entry in entries)


def wheel_size(op: Op) -> int:
    """How many bytes of the new wheel ``op`` makes."""
    if isinstance(op, Literal | Raw):
        return op.size
    return op.check.size


def _header(entry: list[Any], index: int) -> int:
    return _size(entry[index], "local header length") if len(entry) > index else 0


def _content_size(op: Op, sources: tuple[Source, ...]) -> int:
    """The bytes of content rebuilding ``op`` holds in memory (before compressing it)."""
    if isinstance(op, Copy):
        return sources[op.source].size
    if isinstance(op, Member) and op.source is not None:
        inner = sources[op.source]
        return op.size + (inner.gz_size or 0) if op.gz is not None else inner.size
    return 0 if isinstance(op, FromTarget) else op.size


def _check_toggles(ops: tuple[Op, ...]) -> None:
    """A toggled local header must lie inside the literal just before its member; one directory at most."""
    for before, op in zip((None, *ops), ops, strict=False):
        if not isinstance(op, Member | Copy) or not op.header:
            continue
        if not isinstance(before, Literal) or before.directory or not 30 <= op.header <= before.size:
            raise PatchFormatError("patch places a local header outside the bytes before its member")
    if sum(isinstance(op, Literal) and op.directory for op in ops) > 1:
        raise PatchFormatError("patch has more than one central directory")


def _parse_header(obj: dict[str, Any], length: int, target: Target | None) -> PatchHeader:
    """The header's fields, in an order that checks each size against the budget before it is used."""
    new = _ref(obj.get("new"), "new wheel")
    if target is not None:
        target.check(new)
    budget = Budget.for_wheel(new.size)
    budget.check(length, budget.header, "bytes of header")
    sources = _parse_sources(obj.get("sources"), budget)
    ops = _parse_ops(obj.get("ops"), sources, _parse_checks(obj.get("checks"), budget), budget)
    header = PatchHeader(
        old=_ref(obj.get("old"), "old wheel"),
        new=new,
        sources=sources,
        source_sha256=_sha256(obj.get("source_sha256"), "source sha256"),
        source_size=_size(obj.get("source_size"), "source size"),
        target_blob_size=_size(obj.get("target_blob_size"), "target blob size"),
        differ=_text(obj.get("differ"), "differ"),
        ops=ops,
        payload_size=_size(obj.get("payload_size"), "payload size"),
        payload_sha256=_sha256(obj.get("payload_sha256"), "payload sha256"),
    )
    budget.check(header.source_size, budget.expanded, "bytes of source blob")
    budget.check(header.target_blob_size, budget.expanded, "bytes of target blob")
    budget.check(sum(_content_size(op, sources) for op in ops), budget.expanded, "bytes of member content")
    _check_toggles(ops)
    from_blob = sum(op.size for op in ops if isinstance(op, Literal | Raw | Member))
    if from_blob != header.target_blob_size:
        raise PatchFormatError("patch operations do not add up to the target blob it declares")
    if sum(map(wheel_size, ops)) != new.size:
        raise PatchFormatError(f"patch operations do not add up to the {new.size:,} bytes of {new.filename}")
    return header
