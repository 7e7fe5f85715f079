"""The delta index as the client sees it: the upgrade query when a server answers, ``deltas.json`` otherwise."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin

from packaging.tags import parse_tag
from packaging.utils import BuildTag, NormalizedName, canonicalize_name
from packaging.version import Version

from pipdelta.client import batches
from pipdelta.client.batches import Item
from pipdelta.client.http import MAX_JSON, FetchError, Http
from pipdelta.client.ranges import PER_REQUEST
from pipdelta.engines import fingerprint
from pipdelta.engines.recipes import Recipe
from pipdelta.errors import PatchFormatError
from pipdelta.format.patchfile import VERSION
from pipdelta.index import files, query
from pipdelta.index.decide import decide
from pipdelta.index.model import (
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
from pipdelta.index.policy import Rule

# What a static file server answers a POST with: no query here, read the files instead. Anything else (a 403
# from a proxy, a busy server's 503) is an error: the server's policy is never silently replaced by "latest".
NO_QUERY = (404, 405, 501)

_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


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

    def wire(self, *, installed: bool = False) -> int | None:
        """Bytes on the wire to take this offer: the patches, and the ranges of the new wheel that this machine's
        engines cannot re-create after them (an upper bound from the figures the index publishes), rebuilding
        from the old wheel (``installed``: from installed files, where copied members need engines too).
        None when it cannot be taken so: a step before the last would need ranges (only the target has a URL)."""
        steps = [ranges(p, installed=installed and k == 0) for k, p in enumerate(self.patches)]
        if any(steps[:-1]):
            return None
        return self.bytes + sum(steps)


class DeltaIndex:
    """A delta index at ``base``: ``pipdelta serve`` or any static copy of its folder."""

    def __init__(self, base: str, http: Http) -> None:
        given = base.strip()
        if "://" not in given:  # "mirror.example/deltas": the scheme is guessed, and the user told
            host = given.split("/", 1)[0].rsplit(":", 1)[0]
            given = ("http://" if host in _LOOPBACK else "https://") + given
        self.base = http.authorize(given).rstrip("/") + "/"  # credentials go to the host, never into messages
        self.http = http
        self.warnings: list[str] = []
        if given != base.strip():
            self.warnings.append(f"the delta index URL has no scheme (http:// or https://); tried {self.base}")
        self._checked_path = False
        self._lock = threading.Lock()

    def offers(
        self, starts: Mapping[NormalizedName, Start], goals: Mapping[NormalizedName, Goal]
    ) -> dict[NormalizedName, Offer]:
        """An offer for each project in ``goals`` that has a start; raises FetchError when the index is down."""
        asked = [starts[name] for name in goals if name in starts]
        answered = self.answers(asked, {start.name: goals[start.name].version for start in asked})
        if answered is None:
            offers = {start.name: self._static(start, goals[start.name]) for start in asked}
        else:
            offers = {name: _offer(answer) for name, answer in answered.items()}
        return {name: _checked(offer, starts[name], goals[name]) for name, offer in offers.items()}

    def answers(
        self, starts: Sequence[Start], want: Mapping[NormalizedName, Version]
    ) -> dict[NormalizedName, Answer] | None:
        """The server's answer for each start, in as many requests as its limits need; None from a static index."""
        items = [Item(s.name, s.to_json(), len(s.key.tags), _str(want.get(s.name))) for s in starts]
        split = batches.split(items)
        out = {NormalizedName(name): Answer("unknown", reason=why) for name, why in split.refused.items()}
        for body in split.bodies:
            projects = self._post(body)
            if projects is None:
                return None
            out.update((item["name"], Answer.from_json(projects.get(item["name"]))) for item in body["installed"])
        return out

    def survey(self, starts: Sequence[Start], jobs: int = 4) -> tuple[dict[NormalizedName, Answer], bool]:
        """What the index's policy says of each start (no ``want``), and whether a server's policy said it.

        A static index has no policy: the server's own decision is made here from each ``deltas.json``,
        under the default policy (the latest release).
        """
        answered = self.answers(starts, {})
        if answered is not None:
            return answered, True
        listed = self._listed()

        def here(start: Start) -> Answer:
            url, project = self._project(start.name) if listed is None or start.name in listed else ("", None)
            decision = decide(query.Installed(start.key), None, Rule(), project)
            return Answer.from_json(decision.to_json(lambda delta: urljoin(url, delta.url)))

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            return dict(zip((s.name for s in starts), pool.map(here, starts), strict=True)), False

    def _post(self, body: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """One query's ``projects``, or None when ``<base>/query`` is not there (a static index)."""
        status, answer = self.http.post_json(self.base + "query", body)  # a FetchError when down or busy
        if status in NO_QUERY:
            return None
        if status != 200 or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            raise FetchError(f"the delta index's query answered {status}: {error or 'not JSON'}", status)
        check_api_version(answer)
        projects = answer.get("projects")
        if not isinstance(projects, dict):
            raise IndexFormatError("the query answer has no 'projects' object")
        return projects

    def _listed(self) -> frozenset[str] | None:
        """The projects a static index's ``index.json`` lists; None when it has none to read."""
        try:
            document = json.loads(self.http.get(self.base + files.ROOT_FILE, limit=MAX_JSON))
        except FetchError as exc:
            if exc.status == 404:
                return None
            raise
        except ValueError:
            return None
        projects = document.get("projects") if isinstance(document, dict) else None
        if not isinstance(projects, list):
            return None
        return frozenset(canonicalize_name(str(name)) for name in projects)

    def _project(self, name: NormalizedName) -> tuple[str, ProjectIndex | None]:
        """A project's ``deltas.json`` URL and contents (None when the index has no such file)."""
        url = f"{self.base}{name}/{PROJECT_FILE}"
        try:
            document = self.http.get(url, limit=MAX_JSON)
        except FetchError as exc:
            if exc.status == 404:
                self._check_path(url)
                return url, None
            raise
        try:
            return url, ProjectIndex.from_json(json.loads(document))
        except (ValueError, RecursionError) as exc:
            raise IndexFormatError(f"{url} is not a valid delta file: {str(exc) or type(exc).__name__}") from None

    def _static(self, start: Start, goal: Goal) -> Offer:
        url, project = self._project(start.name)
        if project is None:
            return Offer(reason="the delta index has no deltas for this project")
        target = next((w for w in project.wheels if w.sha256 == goal.sha256), None)
        if target is None:
            return Offer(reason="the delta index does not have the wheel pip chose")
        readable = [d for d in project.deltas if d.format == VERSION]  # an index half rebuilt by a newer builder
        weighed = cheapest_path(readable, start.key, goal.sha256, target.size, extra=ranges)
        # none here: the cheapest by patch bytes alone, which ``_checked`` refuses saying why
        path = weighed or cheapest_path(readable, start.key, goal.sha256, target.size)
        if path is None:
            return Offer(full_size=target.size, reason="no patch path is smaller than the wheel")
        return Offer(tuple(replace(d, url=urljoin(url, d.url)) for d in path), target.size)

    def _check_path(self, missing: str) -> None:
        """Once: when ``index.json`` is missing too, the URL's path is likely wrong; a warning says what was tried."""
        with self._lock:
            if self._checked_path:
                return
            self._checked_path = True
        root = self.base + files.ROOT_FILE
        try:
            self.http.get(root, limit=MAX_JSON)
        except FetchError as exc:
            if exc.status == 404:
                self.warnings.append(
                    f"the delta index URL {self.base} looks wrong: {self.base}query, {missing} and {root} "
                    "all answered 404 (give the folder that holds index.json)"
                )


@dataclass(frozen=True)
class Answer:
    """One project's entry of a query answer (docs/INDEX.md); ``status`` is empty when there was none."""

    status: str
    target: WheelEntry | None = None
    patches: tuple[DeltaEntry, ...] = ()
    reason: str | None = None

    @property
    def path(self) -> str:
        return "full" if not self.patches else "delta" if len(self.patches) == 1 else "chain"

    @property
    def bytes(self) -> int:
        return sum(p.size for p in self.patches) if self.patches else self.target.size if self.target else 0

    @classmethod
    def from_json(cls, obj: Any) -> Answer:
        if not isinstance(obj, Mapping):
            return cls("")
        status, reason = str(obj.get("status")), obj.get("reason")
        reason = reason if isinstance(reason, str) else None
        if status != "upgrade":
            return cls(status, reason=reason)
        patches = obj.get("patches")
        if not isinstance(patches, list):
            raise IndexFormatError("'patches' must be a list")
        target = WheelEntry.from_json(_mapping(obj, "to"))
        return cls(status, target, tuple(DeltaEntry.from_json(p) for p in patches), reason)


def _offer(answer: Answer) -> Offer:
    """What the client makes of one project's answer when it asked for pip's version."""
    if answer.status != "upgrade" or answer.target is None:
        why = {
            "up-to-date": "the index's policy keeps the installed version",
            "held": "the index's policy holds this project",
            "unknown": "the delta index has no wheels of this project with these tags",
            "refused": f"the index's policy refuses this version ({answer.reason})"
            if answer.reason
            else "refused by the index",
            "": "the delta index did not answer for this project",
        }
        return Offer(reason=why.get(answer.status, f"the delta index answered status {answer.status!r}"))
    if not answer.patches:
        return Offer(full_size=answer.target.size, reason="no patch path is smaller than the wheel")
    return Offer(answer.patches, answer.target.size)


def _checked(offer: Offer, start: Start, goal: Goal) -> Offer:
    """Refuse paths that do not lead from ``start`` to pip's wheel, are too long or cost more than the wheel."""
    patches = offer.patches
    if not patches:
        return offer
    problem = None
    unreadable = sorted({p.format for p in patches} - {VERSION})
    if unreadable:
        problem = (
            f"patches of format {unreadable[0]} (this pipdelta reads format {VERSION}: the index needs rebuilding)"
        )
    elif len(patches) > MAX_CHAIN:
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
        return _weighed(offer)
    return Offer(full_size=offer.full_size, reason=f"the delta index offered {problem}")


def _weighed(offer: Offer) -> Offer:
    """``offer``, unless the ranges this machine would fetch after it make the full wheel cheaper.

    Weighed with the old wheel at hand: which old version the rebuild will read is known only once it is opened
    (an installed version's wheel is often in a cache), and from installed files ``wire(installed=True)`` says.
    """
    wire = offer.wire()
    if wire is None:
        why = "a chain whose step before the last needs members this machine's deflate engines cannot re-create"
    elif offer.full_size is not None and wire >= offer.full_size:
        why = (
            f"the patch and the {wire - offer.bytes:,} bytes of members this machine's deflate engines cannot "
            "re-create cost more than the wheel"
        )
    else:
        return offer
    return Offer(full_size=offer.full_size, reason=why)


def ranges(delta: DeltaEntry, *, installed: bool = False) -> int:
    """Bytes on the wire for the members of ``delta``'s target this machine cannot re-create (``installed``: from
    installed files, not the old wheel): an upper bound from the figures the index publishes, else 0."""
    if delta.members is None:
        return 0
    return delta.members.ranges_cost(_exact, installed=installed, per_request=PER_REQUEST)


def _exact(recipe: str) -> bool:
    """Whether this machine re-creates ``recipe`` byte for byte (the fingerprint self-test)."""
    try:
        return fingerprint.reproduces(Recipe.parse(recipe))
    except PatchFormatError:  # a recipe of a newer pipdelta: not here
        return False


def _mapping(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if not isinstance(value, Mapping):
        raise IndexFormatError(f"{key!r} must be an object")
    return value


def _str(version: Version | None) -> str | None:
    return None if version is None else str(version)


def _build_tag(build: str | None) -> BuildTag:
    match = re.fullmatch(r"(\d+)(.*)", build or "")
    return (int(match.group(1)), match.group(2)) if match else ()
