"""The delta index as the client sees it: the upgrade query when a server answers, ``deltas.json`` otherwise."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin

from packaging.tags import parse_tag
from packaging.utils import BuildTag, NormalizedName
from packaging.version import Version

from pipdelta.client.http import MAX_JSON, FetchError, Http
from pipdelta.index.model import (
    API_VERSION,
    MAX_CHAIN,
    PROJECT_FILE,
    DeltaEntry,
    IndexFormatError,
    ProjectIndex,
    WheelEntry,
    WheelKey,
    cheapest_path,
    check_api_version,
)


@dataclass(frozen=True)
class Start:
    """What a patch path starts from: an installed version (by tags) or a cached wheel (by filename)."""

    name: NormalizedName
    version: Version
    tags: tuple[str, ...]
    build: str | None = None
    filename: str | None = None

    @property
    def key(self) -> WheelKey:
        if self.filename is not None:
            return WheelKey.from_filename(self.filename)
        tags = frozenset(tag for text in self.tags for tag in parse_tag(text))
        return WheelKey(self.name, self.version, _build_tag(self.build), tags)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "version": str(self.version)}
        if self.filename is not None:
            out["filename"] = self.filename
        else:
            out["tags"] = list(self.tags)
            out["build"] = self.build
        return out


@dataclass(frozen=True)
class Goal:
    """The wheel pip chose: the primary index's sha256 is the only one trusted."""

    version: Version
    sha256: str


@dataclass(frozen=True)
class Offer:
    """The delta index's answer for one project: patches to apply in order, or why there are none."""

    patches: tuple[DeltaEntry, ...] = ()
    full_size: int | None = None
    reason: str = ""

    @property
    def bytes(self) -> int:
        return sum(p.size for p in self.patches)


class DeltaIndex:
    """A delta index at ``base``: ``pipdelta serve`` or any static copy of its folder."""

    def __init__(self, base: str, http: Http) -> None:
        self.base = base.rstrip("/") + "/"
        self.http = http

    def offers(
        self, starts: Mapping[NormalizedName, Start], goals: Mapping[NormalizedName, Goal]
    ) -> dict[NormalizedName, Offer]:
        """An offer for each project in ``goals`` that has a start; raises FetchError when the index is down."""
        answered = self._query(starts, goals)
        if answered is None:
            answered = {name: self._static(starts[name], goal) for name, goal in goals.items() if name in starts}
        return {name: _checked(offer, starts[name], goals[name]) for name, offer in answered.items()}

    def _query(
        self, starts: Mapping[NormalizedName, Start], goals: Mapping[NormalizedName, Goal]
    ) -> dict[NormalizedName, Offer] | None:
        """The server's answers, or None when ``<base>/query`` is not there (a static index)."""
        asked = [name for name in goals if name in starts]
        request = {
            "meta": {"api-version": API_VERSION},
            "installed": [starts[name].to_json() for name in asked],
            "want": {name: str(goals[name].version) for name in asked},
        }
        try:
            status, answer = self.http.post_json(self.base + "query", request)
        except FetchError as exc:
            if exc.status is None:
                raise  # unreachable (or cut off): the static files are on the same server
            return None  # the query failed, but the static files may still be served
        if status != 200 or not isinstance(answer, dict):
            return None
        check_api_version(answer)
        projects = answer.get("projects")
        if not isinstance(projects, dict):
            raise IndexFormatError("the query answer has no 'projects' object")
        return {name: _offer(projects.get(name)) for name in asked}

    def _static(self, start: Start, goal: Goal) -> Offer:
        url = f"{self.base}{start.name}/{PROJECT_FILE}"
        try:
            document = self.http.get(url, limit=MAX_JSON)
        except FetchError as exc:
            if exc.status == 404:
                return Offer(reason="the delta index has no deltas for this project")
            raise
        try:
            project = ProjectIndex.from_json(json.loads(document))
        except (ValueError, RecursionError) as exc:
            raise IndexFormatError(f"{url} is not a valid delta file: {str(exc) or type(exc).__name__}") from None
        target = next((w for w in project.wheels if w.sha256 == goal.sha256), None)
        if target is None:
            return Offer(reason="the delta index does not have the wheel pip chose")
        path = cheapest_path(project.deltas, start.key, goal.sha256, target.size)
        if path is None:
            return Offer(full_size=target.size, reason="no patch path is smaller than the wheel")
        return Offer(tuple(replace(d, url=urljoin(url, d.url)) for d in path), target.size)


def _offer(project: Any) -> Offer:
    """One project's entry of a query answer (docs/INDEX.md)."""
    if not isinstance(project, Mapping):
        return Offer(reason="the delta index did not answer for this project")
    status = project.get("status")
    if status != "upgrade":
        reason = project.get("reason")
        why = {
            "up-to-date": "the index's policy keeps the installed version",
            "held": "the index's policy holds this project",
            "unknown": "the delta index has no wheels of this project with these tags",
            "refused": f"the index's policy refuses this version ({reason})" if reason else "refused by the index",
        }
        return Offer(reason=why.get(str(status), f"the delta index answered status {status!r}"))
    target = WheelEntry.from_json(_mapping(project, "to"))
    patches = project.get("patches")
    if not isinstance(patches, list):
        raise IndexFormatError("'patches' must be a list")
    if not patches:
        return Offer(full_size=target.size, reason="no patch path is smaller than the wheel")
    return Offer(tuple(DeltaEntry.from_json(p) for p in patches), target.size)


def _checked(offer: Offer, start: Start, goal: Goal) -> Offer:
    """Refuse paths that do not lead from ``start`` to pip's wheel, are too long or cost more than the wheel."""
    patches = offer.patches
    if not patches:
        return offer
    problem = None
    if len(patches) > MAX_CHAIN:
        problem = f"a chain of {len(patches)} patches (at most {MAX_CHAIN})"
    elif offer.full_size is None or offer.bytes >= offer.full_size:
        problem = "patches no smaller than the wheel"
    elif patches[0].old.key != start.key or not patches[0].old.key.same_tags(start.key):
        problem = f"a path from {patches[0].old.filename}, not from the installed version"
    elif patches[-1].new.sha256 != goal.sha256:
        problem = "a path to another wheel than the one pip chose"
    elif any(a.new.sha256 != b.old.sha256 for a, b in itertools.pairwise(patches)):
        problem = "a broken chain"
    if problem is None:
        return offer
    return Offer(full_size=offer.full_size, reason=f"the delta index offered {problem}")


def _mapping(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if not isinstance(value, Mapping):
        raise IndexFormatError(f"{key!r} must be an object")
    return value


def _build_tag(build: str | None) -> BuildTag:
    match = re.fullmatch(r"(\d+)(.*)", build or "")
    return (int(match.group(1)), match.group(2)) if match else ()
