"""The delta index's JSON documents as typed values, and the cheapest way from one wheel to another."""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from packaging.tags import Tag
from packaging.utils import (
    BuildTag,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version

from pipdelta.errors import PipdeltaError
from pipdelta.index.members import Members

API_VERSION = "1.0"
CONTENT_TYPE = "application/vnd.pipdelta.v1+json"
PROJECT_FILE = "deltas.json"
MAX_CHAIN = 3


class IndexFormatError(PipdeltaError, ValueError):
    """A delta index document (or query) is not valid JSON of the documented shape."""


@dataclass(frozen=True, order=True)
class WheelKey:
    """What makes two wheel files the same node: project, version, build tag and the *set* of tags."""

    name: NormalizedName
    version: Version
    build: BuildTag
    tags: frozenset[Tag] = field(compare=False)

    @classmethod
    def from_filename(cls, filename: str) -> WheelKey:
        try:
            name, version, build, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename as exc:
            raise IndexFormatError(str(exc)) from None
        return cls(name, version, build, tags)

    def same_tags(self, other: WheelKey) -> bool:
        return self.tags == other.tags


@dataclass(frozen=True)
class WheelEntry:
    """A wheel the mirror has: the files deltas start from and lead to."""

    filename: str
    sha256: str
    size: int
    url: str | None = None  # on the primary index, when known

    @functools.cached_property
    def key(self) -> WheelKey:  # parsed once: a query asks for it of every wheel and delta of a project
        return WheelKey.from_filename(self.filename)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"filename": self.filename, "sha256": self.sha256, "size": self.size}
        if self.url is not None:
            out["url"] = self.url
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> WheelEntry:
        url = obj.get("url")
        return cls(_str(obj, "filename"), _str(obj, "sha256"), _int(obj, "size"), None if url is None else str(url))


@dataclass(frozen=True)
class DeltaEntry:
    """One patch: from which wheel to which, where it is (relative to the project file) and its pins."""

    old: WheelEntry
    new: WheelEntry
    url: str
    size: int
    sha256: str
    format: int = 1
    engines: tuple[str, ...] = ()  # recipes needed when rebuilding from installed files
    members: Members | None = None  # the target's bytes by what re-creates them; None: not published

    def to_json(self) -> dict[str, Any]:
        out = {
            "from": self.old.to_json(),
            "to": self.new.to_json(),
            "url": self.url,
            "size": self.size,
            "sha256": self.sha256,
            "format": self.format,
            "engines": list(self.engines),
        }
        if self.members is not None:
            out["members"] = self.members.to_json()
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> DeltaEntry:
        engines = obj.get("engines", [])
        if not isinstance(engines, list):
            raise IndexFormatError("'engines' must be a list")
        new = WheelEntry.from_json(_obj(obj, "to"))
        return cls(
            WheelEntry.from_json(_obj(obj, "from")),
            new,
            _str(obj, "url"),
            _int(obj, "size"),
            _str(obj, "sha256"),
            _int(obj, "format"),
            tuple(str(e) for e in engines),
            Members.from_json(obj.get("members"), new.size),  # unsound figures are ignored, as an old client does
        )


@dataclass(frozen=True)
class ProjectIndex:
    """``{project}/deltas.json``: the wheels of one project the index knows and the deltas between them."""

    name: NormalizedName
    wheels: tuple[WheelEntry, ...]
    deltas: tuple[DeltaEntry, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": {"api-version": API_VERSION},
            "name": self.name,
            "wheels": [w.to_json() for w in self.wheels],
            "deltas": [d.to_json() for d in self.deltas],
        }

    @classmethod
    def from_json(cls, obj: Any) -> ProjectIndex:
        if not isinstance(obj, Mapping):
            raise IndexFormatError("a project delta file must be a JSON object")
        check_api_version(obj)
        try:
            wheels = tuple(WheelEntry.from_json(w) for w in _list(obj, "wheels"))
            deltas = tuple(DeltaEntry.from_json(d) for d in _list(obj, "deltas"))
        except (TypeError, AttributeError) as exc:
            raise IndexFormatError(f"malformed project delta file ({exc})") from None
        # A delta's ends are the very entries of the wheel list: each filename is then parsed once (``key``).
        shared = {wheel: wheel for wheel in wheels}
        deltas = tuple(
            replace(d, old=shared.setdefault(d.old, d.old), new=shared.setdefault(d.new, d.new)) for d in deltas
        )
        return cls(canonicalize_name(_str(obj, "name")), wheels, deltas)


def check_api_version(obj: Mapping[str, Any]) -> None:
    """PEP 691's rule: refuse a major version we do not know, accept any minor one."""
    meta = obj.get("meta")
    version = meta.get("api-version") if isinstance(meta, Mapping) else None
    if not isinstance(version, str) or version.split(".")[0] != API_VERSION.split(".")[0]:
        raise IndexFormatError(f"unsupported delta index api-version {version!r} (this pipdelta reads 1.x)")


#: Bytes a client fetches besides ``delta`` when it applies it; a step before the last must need none (only the
#: goal has a URL).
Extra = Callable[[DeltaEntry], int]


def cheapest_path(
    deltas: Iterable[DeltaEntry],
    start: WheelKey,
    goal_sha256: str,
    full_size: int,
    max_chain: int = MAX_CHAIN,
    extra: Extra | None = None,
) -> list[DeltaEntry] | None:
    """The fewest-bytes chain of at most ``max_chain`` deltas from ``start`` to the goal wheel.

    ``start`` matches by key (an installed version has no wheel file to hash); every later step matches
    by sha256. ``extra`` adds what a client fetches besides the patches. None when no chain costs less than
    the full wheel.
    """
    by_source: dict[str, list[DeltaEntry]] = {}
    first: list[DeltaEntry] = []
    for delta in deltas:
        by_source.setdefault(delta.old.sha256, []).append(delta)
        if delta.old.key == start and delta.old.key.same_tags(start):
            first.append(delta)
    queue: list[tuple[int, int, int, list[DeltaEntry], bool]] = []
    for order, delta in enumerate(first):
        heapq.heappush(queue, (delta.size, 1, order, [delta], False))
    counter = len(first)
    while queue:
        cost, steps, _, chain, weighed = heapq.heappop(queue)
        if cost >= full_size:
            return None
        more = 0 if extra is None or weighed else extra(chain[-1])
        if chain[-1].new.sha256 == goal_sha256:
            if not more:
                return chain
            counter += 1  # back in the queue with what it costs besides: a cheaper chain may come first
            heapq.heappush(queue, (cost + more, steps, counter, chain, True))
            continue
        if steps == max_chain or more:
            continue
        for delta in by_source.get(chain[-1].new.sha256, ()):
            counter += 1
            heapq.heappush(queue, (cost + delta.size, steps + 1, counter, [*chain, delta], False))
    return None


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise IndexFormatError(f"{key!r} must be a string")
    return value


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if type(value) is not int or value < 0:
        raise IndexFormatError(f"{key!r} must be a non-negative integer")
    return value


def _obj(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if not isinstance(value, Mapping):
        raise IndexFormatError(f"{key!r} must be an object")
    return value


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list):
        raise IndexFormatError(f"{key!r} must be a list")
    return value
