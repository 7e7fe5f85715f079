"""The upgrade query's request: what the client has installed and, optionally, the versions it wants."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packaging.tags import Tag, parse_tag
from packaging.utils import BuildTag, NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from pipdelta.index.bounds import MAX_INSTALLED, MAX_QUERY_TAGS, MAX_TAGS
from pipdelta.index.model import IndexFormatError, WheelKey, check_api_version


@dataclass(frozen=True)
class Installed:
    """One installed distribution: its name, version, build tag and the tag set of the wheel it came from."""

    key: WheelKey

    @property
    def name(self) -> NormalizedName:
        return self.key.name

    @classmethod
    def from_json(cls, obj: Any) -> Installed:
        if not isinstance(obj, Mapping):
            raise IndexFormatError("each 'installed' item must be an object")
        if isinstance(obj.get("filename"), str):
            _check_tag_count(obj["filename"][:100], [obj["filename"].removesuffix(".whl").rsplit("-", 3)[-3:]])
            key = WheelKey.from_filename(obj["filename"])
            if "version" in obj and _version(obj["version"]) != key.version:
                raise IndexFormatError(f"'version' {obj['version']!r} disagrees with {obj['filename']!r}")
            return cls(key)
        name, tags = obj.get("name"), obj.get("tags")
        if not isinstance(name, str) or not name:
            raise IndexFormatError("each 'installed' item needs a 'name' (or a 'filename')")
        if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
            raise IndexFormatError(f"{name}: 'tags' must be a non-empty list of wheel tags (or give 'filename')")
        bad = next((tag for tag in tags if tag.count("-") != 2), None)
        if bad is not None:
            raise IndexFormatError(f"{name}: {bad[:100]!r} is not a wheel tag like py3-none-any")
        _check_tag_count(name, [tag.split("-") for tag in tags])
        parsed: set[Tag] = set()
        for tag in tags:
            parsed |= parse_tag(tag)
        return cls(
            WheelKey(canonicalize_name(name), _version(obj.get("version")), _build(obj.get("build")), frozenset(parsed))
        )


@dataclass(frozen=True)
class Query:
    """A whole request: the installed distributions and the client's wanted versions by project."""

    installed: tuple[Installed, ...]
    want: Mapping[NormalizedName, Version]

    @classmethod
    def parse(cls, body: bytes) -> Query:
        """IndexFormatError with a message for the client when the body is not a valid query."""
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise IndexFormatError(f"the body is not JSON ({type(exc).__name__})") from None
        if not isinstance(obj, Mapping):
            raise IndexFormatError("the body must be a JSON object")
        check_api_version(obj)
        items = obj.get("installed")
        if not isinstance(items, list):
            raise IndexFormatError("'installed' must be a list")
        if len(items) > MAX_INSTALLED:
            raise IndexFormatError(f"at most {MAX_INSTALLED} installed distributions per query")
        want = obj.get("want", {})
        if not isinstance(want, Mapping):
            raise IndexFormatError("'want' must be an object of project name to version")
        installed: list[Installed] = []
        tag_count = 0
        for item in items:
            installed.append(Installed.from_json(item))
            tag_count += len(installed[-1].key.tags)
            if tag_count > MAX_QUERY_TAGS:
                raise IndexFormatError(f"at most {MAX_QUERY_TAGS:,} wheel tags in all per query")
        return cls(
            tuple(installed),
            {canonicalize_name(str(name)): _version(version) for name, version in want.items()},
        )


def _check_tag_count(name: str, tag_sets: list[list[str]]) -> None:
    """Refuse tag sets that expand to more than MAX_TAGS tags, counting them without expanding."""
    count = sum(math.prod(part.count(".") + 1 for part in parts) for parts in tag_sets)
    if count > MAX_TAGS:
        raise IndexFormatError(f"{name}: its tags expand to {count:,} wheel tags; at most {MAX_TAGS:,} are allowed")


def _version(value: Any) -> Version:
    if not isinstance(value, str):
        raise IndexFormatError("'version' must be a string")
    try:
        return Version(value)
    except InvalidVersion:
        raise IndexFormatError(f"{value!r} is not a PEP 440 version") from None


def _build(value: Any) -> BuildTag:
    if value is None or value == "":
        return ()
    found = re.fullmatch(r"(\d+)(\w*)", str(value))
    if not found:
        raise IndexFormatError(f"'build' {value!r} is not a wheel build tag like 1 or 2b")
    return int(found[1]), found[2]
