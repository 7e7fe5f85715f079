"""Rebuilding a wheel in the background: find the old version, ask the delta index, fetch, apply, verify."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from packaging.utils import NormalizedName, parse_wheel_filename
from packaging.version import Version

from pipdelta.apply.applier import apply_patch
from pipdelta.apply.sources import OldContent, WheelSource
from pipdelta.client.cache import Cache
from pipdelta.client.deltaindex import DeltaIndex, Goal
from pipdelta.client.http import Http
from pipdelta.client.ranges import RangeClient
from pipdelta.client.report import CHAIN, DELTA, Outcome
from pipdelta.errors import PipdeltaError
from pipdelta.format.patchfile import Target as Wanted
from pipdelta.index.model import DeltaEntry
from pipdelta.proxy.finders import OldVersions, best_start, open_source
from pipdelta.proxy.lanes import Lane
from pipdelta.proxy.timing import Meter
from pipdelta.proxy.upstreams import Upstream

NO_HASH = "the index publishes no sha256 to verify a rebuilt wheel against"
# Queries and patch downloads at once: they wait on the network, so a few more than the cores rebuilding.
FETCHERS = 4
_T = TypeVar("_T")


@dataclass(frozen=True)
class Target:
    """A wheel an upstream page lists: where it is, and the sha256 and size the page gives (if any)."""

    index: int  # which upstream
    url: str
    filename: str
    sha256: str | None
    size: int | None

    @property
    def name(self) -> NormalizedName:
        return parse_wheel_filename(self.filename)[0]

    @property
    def version(self) -> Version:
        return parse_wheel_filename(self.filename)[1]

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(map(str, parse_wheel_filename(self.filename)[3]))


@dataclass(frozen=True)
class Context:
    """What every rebuild shares: the delta index, the places old versions are, the cache and the meter."""

    delta_index: DeltaIndex
    http: Http
    finders: Sequence[OldVersions]
    cache: Cache
    meter: Meter
    upstreams: Sequence[Upstream]  # for the byte ranges of a wheel this machine cannot fully re-create
    plan_only: bool = False  # ``--dry-run``: decide and check the source, download no patch


@dataclass(frozen=True)
class Work:
    """A rebuild ready to run: its patches are here, its old version is open, and ``cost`` says how long it takes."""

    patches: Sequence[DeltaEntry]
    data: Sequence[bytes]
    source: OldContent
    full: int
    cost: int  # compressed bytes the rebuild deflates again


class Job:
    """One target's rebuild; ``done`` is set when ``path`` holds the verified wheel or ``outcome`` says why not.

    It runs in two steps on two kinds of thread: :meth:`fetch` (the old version, the delta index's offer, the
    patches: waiting on the network) and :meth:`rebuild` (the apply: the CPU).
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.outcome = Outcome(target.name, None, str(target.version), full_size=target.size)
        self.path: Path | None = None
        self.fetched = 0
        self.failed = False  # something went wrong (not merely "no patch here"): worth a warning
        self.done = threading.Event()

    def fetch(self, context: Context) -> Work | None:
        """Everything before the apply; None (and the job done) when there is nothing to rebuild."""
        work = self._guarded(lambda: self._fetch(context))
        if work is None:
            self.done.set()
        return work

    def rebuild(self, context: Context, work: Work) -> None:
        try:
            self._guarded(lambda: self._rebuild(context, work))
        finally:
            self.done.set()

    def _guarded(self, step: Callable[[], _T]) -> _T | None:
        try:
            return step()
        except PipdeltaError as exc:
            self.failed = True
            self.outcome.fall_back(str(exc), self.fetched)
        except Exception as exc:  # a bug must cost a full download, never the installer's run
            self.failed = True
            self.outcome.fall_back(f"internal error: {type(exc).__name__}: {exc}", self.fetched)
        return None

    def _fetch(self, context: Context) -> Work | None:
        target, outcome = self.target, self.outcome
        if target.sha256 is None:
            outcome.reason = NO_HASH
            return None
        start = best_start(context.finders, target.name, target.version, target.tags)
        if start is None:
            outcome.reason = "no older version here"
            return None
        outcome.old = str(start.version)
        try:
            offer = context.delta_index.offers({start.name: start}, {start.name: Goal(target.version, target.sha256)})
        except PipdeltaError as exc:
            raise PipdeltaError(f"delta index unusable: {exc}") from None
        found = offer.get(start.name)
        if found is None or not found.patches:
            outcome.fall_back(found.reason if found else "the delta index did not answer for this project")
            outcome.full_size = outcome.full_size or (found.full_size if found else None)
            return None
        full = found.full_size or target.size or 0
        outcome.full_size = full
        if not context.meter.pays(found.bytes, full):
            outcome.fall_back("a full download is faster on this link")
            return None
        try:
            source, outcome.source = open_source(context.finders, found.patches[0])
        except PipdeltaError as exc:
            raise PipdeltaError(f"no usable old version: {exc}") from None
        outcome.method = DELTA if len(found.patches) == 1 else CHAIN
        outcome.downloaded = found.bytes
        if context.plan_only:
            return None
        data = self._download(context, found.patches)
        if not context.meter.pays(0, full, installed=not source.has_raw):  # a link faster than a rebuild: stream
            outcome.fall_back("a full download is faster on this link", self.fetched)
            return None
        return Work(found.patches, data, source, full, _cost(found.patches, installed=not source.has_raw))

    def _download(self, context: Context, patches: Sequence[DeltaEntry]) -> list[bytes]:
        def advance(n: int) -> None:
            self.fetched += n

        out = []
        for patch in patches:
            began = time.perf_counter()
            try:
                out.append(
                    context.http.get(
                        patch.url, limit=patch.size, size=patch.size, sha256=patch.sha256, progress=advance
                    )
                )
            except PipdeltaError as exc:
                raise PipdeltaError(f"patch download failed: {exc}") from None
            context.meter.downloaded(patch.size, time.perf_counter() - began)
        return out

    def _rebuild(self, context: Context, work: Work) -> None:
        target = self.target
        upstream = context.upstreams[target.index]
        ranges = RangeClient(
            target.url, size=work.full or None, pool=context.http.pool(target.url), headers=upstream.headers(target.url)
        )
        try:
            self.path = _apply(target, work.patches, work.data, work.source, context.cache, ranges)
        finally:
            self.fetched += ranges.received
        self.outcome.downloaded = self.fetched


def _cost(patches: Sequence[DeltaEntry], *, installed: bool) -> int:
    """The compressed bytes the steps deflate again (from installed files, the first step deflates its copies
    too), as their index entries publish them; a step without figures counts its whole wheel."""
    return sum(
        p.new.size if p.members is None else p.members.deflated(installed=installed and k == 0)
        for k, p in enumerate(patches)
    )


def _apply(
    target: Target,
    patches: Sequence[DeltaEntry],
    data: Sequence[bytes],
    source: OldContent,
    cache: Cache,
    ranges: RangeClient,
) -> Path:
    """Apply the patches in order; only a wheel with the upstream page's sha256 reaches the cache.

    Each step must build exactly the wheel the index names for it, under a name pipdelta gives it: the steps
    of a chain stay in a private folder, and each is the checked source of the next. Members of the target
    this machine cannot re-create come as byte ranges of the upstream file (``ranges``).
    """
    assert target.sha256 is not None
    final = Wanted(target.filename, target.sha256, target.size)
    try:
        with tempfile.TemporaryDirectory(prefix="pipdelta-chain-") as tmp:
            for step, (patch, blob) in enumerate(zip(patches, data, strict=True)):
                last = step == len(patches) - 1
                wanted = final if last else Wanted(patch.new.filename, patch.new.sha256, patch.new.size)
                folder = Path(tmp, f"step{step}")  # apply_patch names the file: the wanted name, once checked
                folder.mkdir()
                path = apply_patch(blob, source, folder, target=wanted, fetch=ranges if last else None)
                source = WheelSource(path)
            return cache.add(target.filename, path.read_bytes(), target.sha256)
    except PipdeltaError as exc:
        raise PipdeltaError(f"rebuild failed: {exc}") from None


class Rebuilds:
    """The jobs of one local index, by upstream URL; each runs once, several at a time.

    Fetching (the delta index, the patches) and rebuilding (the CPU) are separate lanes, so that downloads go on
    while every core rebuilds. Installers wait for every wheel before they install, so the run ends with the last
    rebuild: the lanes take the largest wheel first and the costliest rebuild first (rather than the order the
    installer read their metadata in), which ends it soonest.
    """

    def __init__(self, context: Context, workers: int, fetchers: int = FETCHERS) -> None:
        self.context = context
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._rebuilding: Lane[tuple[Job, Work]] = Lane("rebuild", workers, self._rebuild)
        self._fetching: Lane[Job] = Lane("fetch", fetchers, self._fetch)

    def start(self, target: Target) -> Job:
        """The job for ``target``, queued now unless it already was."""
        with self._lock:
            job = self._jobs.get(target.url)
            if job is None:
                job = self._jobs[target.url] = Job(target)
                self._fetching.put(target.size or 0, job)
            return job

    def _fetch(self, job: Job) -> None:
        work = job.fetch(self.context)
        if work is not None:
            self._rebuilding.put(work.cost, (job, work))

    def _rebuild(self, item: tuple[Job, Work]) -> None:
        job, work = item
        job.rebuild(self.context, work)

    def get(self, url: str) -> Job | None:
        with self._lock:
            return self._jobs.get(url)

    def close(self) -> None:
        """Start no more jobs (those running finish in their daemon threads)."""
        self._fetching.close()
        self._rebuilding.close()
