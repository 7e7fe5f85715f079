"""Where old versions are at hand: one small interface, one class per place."""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from packaging.tags import parse_tag
from packaging.utils import NormalizedName, parse_wheel_filename
from packaging.version import Version

from pipdelta.apply.installed import InstalledDistribution
from pipdelta.apply.sources import InstalledSource, OldContent, WheelSource
from pipdelta.client import pipcache, uvcache
from pipdelta.client.cache import Cache
from pipdelta.client.deltaindex import Start
from pipdelta.client.environment import Environment, Installed
from pipdelta.engines import fingerprint
from pipdelta.engines.recipes import Recipe
from pipdelta.errors import EngineMismatch, PatchFormatError, PipdeltaError, SourceMismatch
from pipdelta.index.model import DeltaEntry

WHEEL_LIMIT = 64 << 10  # a WHEEL file is a few lines


class OldVersions(abc.ABC):
    """One place old wheels may be found: what it has of a project, and the exact old wheel a patch needs."""

    #: how the report names this place ("cached wheel", "installed files", ...)
    label: str

    @abc.abstractmethod
    def start(self, name: NormalizedName, below: Version, tags: frozenset[str]) -> Start | None:
        """The newest version below ``below`` with exactly ``tags`` held here, as a patch path's start."""

    @abc.abstractmethod
    def open(self, first: DeltaEntry) -> OldContent | None:
        """The old wheel ``first`` starts from, checked; None when not here. May raise a PipdeltaError why not."""


class CachedWheels(OldVersions):
    """pipdelta's own cache: verified wheels kept from earlier downloads and rebuilds."""

    label = "cached wheel"

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def start(self, name: NormalizedName, below: Version, tags: frozenset[str]) -> Start | None:
        cached = self.cache.older(name, below, tags)
        return None if cached is None else Start(name, cached.version, (), filename=cached.path.name)

    def open(self, first: DeltaEntry) -> OldContent | None:
        path = self.cache.find(first.old.sha256)
        return None if path is None else WheelSource(path)


class PipCache(OldVersions):
    """pip's HTTP cache: any response body with the old wheel's size and sha256 (its keys are URLs, unknown here)."""

    label = "pip's cache"

    def __init__(self, environment: Environment, cache: Cache) -> None:
        self.environment = environment
        self.cache = cache
        self._dir: Path | None = None
        self._asked = threading.Event()
        # ``pip cache dir`` takes pip half a second to answer: asked now, in the background, once.
        threading.Thread(target=self._ask, daemon=True, name="pipdelta-pip-cache-dir").start()

    def _ask(self) -> None:
        try:
            self._dir = pipcache.pip_cache_dir(self.environment)
        finally:
            self._asked.set()

    def start(self, name: NormalizedName, below: Version, tags: frozenset[str]) -> Start | None:
        return None  # bodies carry no names: this place can only serve a start found elsewhere

    def open(self, first: DeltaEntry) -> OldContent | None:
        self._asked.wait()
        if self._dir is None:
            return None
        data = pipcache.find_wheel(self._dir, first.old.size, first.old.sha256)
        return None if data is None else WheelSource(self.cache.add(first.old.filename, data, first.old.sha256))


class InstalledFiles(OldVersions):
    """The target environment's installed files, each checked against RECORD, if this machine's engines fit."""

    label = "installed files"
    FRESH = 1.0  # seconds a listing of the environment stays current (an installer run changes it)

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self._listing: dict[NormalizedName, Installed] = {}
        self._listed = -self.FRESH
        self._lock = threading.Lock()

    def installed(self) -> dict[NormalizedName, Installed]:
        """What the environment holds now (listed again when the last listing is over a second old)."""
        with self._lock:
            if time.monotonic() - self._listed > self.FRESH:
                self._listing = self.environment.installed()
                self._listed = time.monotonic()
            return self._listing

    def start(self, name: NormalizedName, below: Version, tags: frozenset[str]) -> Start | None:
        here = self.installed().get(name)
        if here is None or here.version >= below or _expand(here.tags) != _expand(tuple(tags)):
            return None
        return Start(name, here.version, here.tags, here.build)

    def open(self, first: DeltaEntry) -> OldContent | None:
        here = self.installed().get(parse_wheel_filename(first.old.filename)[0])
        return None if here is None else _files(self.environment.distribution(here), first)


class UvCache(OldVersions):
    """uv's cache: the wheels it unpacked (``archive-v*/``), read like installed files against their own RECORD."""

    label = "uv's cache"

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._found: dict[NormalizedName, list[uvcache.Archive]] | None = None

    def archives(self, name: NormalizedName) -> list[uvcache.Archive]:
        """The unpacked wheels of ``name`` (the cache is listed once, when first asked)."""
        with self._lock:
            if self._found is None:
                self._found = {}
                for archive in uvcache.archives(self.folder) if self.folder is not None else ():
                    self._found.setdefault(archive.name, []).append(archive)
            return self._found.get(name, [])

    def start(self, name: NormalizedName, below: Version, tags: frozenset[str]) -> Start | None:
        for archive in sorted(self.archives(name), key=lambda a: a.version, reverse=True):
            if archive.version >= below:
                continue
            wheel = self._wheel(archive)
            if wheel is not None and _expand(wheel[0]) == _expand(tuple(tags)):
                return Start(name, archive.version, wheel[0], wheel[1])
        return None

    def open(self, first: DeltaEntry) -> OldContent | None:
        name, version, _, tags = parse_wheel_filename(first.old.filename)
        wanted = frozenset(map(str, tags))
        for archive in self.archives(name):
            wheel = self._wheel(archive) if archive.version == version else None
            if wheel is not None and _expand(wheel[0]) == wanted:
                return _files(archive.distribution(), first)
        return None

    @staticmethod
    def _wheel(archive: uvcache.Archive) -> tuple[tuple[str, ...], str | None] | None:
        """The tags and build of an unpacked wheel, from its WHEEL file checked against its RECORD; None if unusable."""
        try:
            text = archive.distribution().read_verified(f"{archive.dist_info.name}/WHEEL", WHEEL_LIMIT)
        except SourceMismatch:
            return None
        lines = text.decode("utf-8", "replace").splitlines()
        tags = tuple(line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:"))
        build = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Build:")]
        return tags, build[0] if build else None


def _files(distribution: InstalledDistribution, first: DeltaEntry) -> OldContent:
    """Files checked against RECORD as the source of ``first``, if this machine's engines fit its recipes."""
    distribution.check_version(first.old.filename)
    distribution.check_files()
    try:
        recipes = [Recipe.parse(text) for text in first.engines]
    except PatchFormatError as exc:
        raise EngineMismatch(f"the delta index names an unknown deflate engine ({exc})") from None
    fingerprint.check(recipes)
    return InstalledSource(distribution)


def best_start(
    finders: Sequence[OldVersions], name: NormalizedName, below: Version, tags: frozenset[str]
) -> Start | None:
    """The newest start any place offers (the installed one on a tie: every place can still open its wheel)."""
    found = [s for f in finders if (s := f.start(name, below, tags)) is not None]
    return max(found, key=lambda s: (s.version, s.filename is None), default=None)


def open_source(finders: Sequence[OldVersions], first: DeltaEntry) -> tuple[OldContent, str]:
    """The first place that holds the exact old wheel ``first`` starts from; PipdeltaError why none does."""
    problems = []
    for finder in finders:
        try:
            source = finder.open(first)
        except PipdeltaError as exc:
            problems.append(str(exc))
            continue
        if source is not None:
            return source, finder.label
    raise PipdeltaError("; ".join(problems) or f"{first.old.filename} is not here")


def _expand(tags: tuple[str, ...]) -> frozenset[str]:
    return frozenset(str(tag) for text in tags for tag in parse_tag(text))
