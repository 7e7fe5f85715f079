"""Rebuilding a wheel in the background: find the old version, ask the delta index, fetch, apply, verify."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pipdelta.apply import speed
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
from pipdelta.proxy.targets import Target
from pipdelta.proxy.timing import Meter
from pipdelta.proxy.upstreams import Upstream

NO_HASH = "the index publishes no sha256 to verify a rebuilt wheel against"
FASTER = "a full download is faster on this link"
# Queries at once (each waits on the delta index), and patch downloads at once: few, so that the link brings
# the costliest rebuild's patches first rather than everyone's at a fraction of its speed.
PLANS, DOWNLOADS = 4, 2
QUICK = 6 << 20  # content bytes a rebuild deflates in a fraction of a second: one the installer waits for runs now
_T = TypeVar("_T")


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
class Plan:
    """A rebuild decided on: the patches to fetch, the old version (open), the wheel's size and the rebuild's cost."""

    patches: Sequence[DeltaEntry]
    source: OldContent
    full: int
    cost: int  # content bytes the rebuild deflates again: what rebuilds are ordered by
    cpu: float  # the CPU seconds it is expected to take (booked on the meter)


@dataclass(frozen=True)
class Work:
    """A rebuild ready to run: its plan, and its patches, here."""

    plan: Plan
    data: Sequence[bytes]


class Job:
    """One target's rebuild; ``done`` is set when ``path`` holds the verified wheel or ``outcome`` says why not.

    It runs in three steps, each on its own kind of thread: :meth:`plan` (the old version and the delta index's
    offer), :meth:`download` (the patches: the link) and :meth:`rebuild` (the apply: the CPU).
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.outcome = Outcome(target.name, None, str(target.version), full_size=target.size)
        self.path: Path | None = None
        self.fetched = 0
        self.failed = False  # something went wrong (not merely "no patch here"): worth a warning
        self.hurried = False  # the installer waits for it
        self.cost: int | None = None  # the plan's, once planned
        self.fetched_all = threading.Event()  # its patches are here: only the rebuild is left
        self.done = threading.Event()

    def plan(self, context: Context) -> Plan | None:
        """Whether and how to rebuild; None (and the job done) when not."""
        return self._step(lambda: self._plan(context))

    def download(self, context: Context, plan: Plan) -> Work | None:
        """The patches; None (and the job done) when they cannot be had, or when a full download is faster now.
        ``fetched_all`` is set once they are here: a wheel request then waits past the deadline, for the rebuild."""
        return self._step(lambda: self._download(context, plan))

    def rebuild(self, context: Context, work: Work) -> None:
        try:
            self._guarded(lambda: self._rebuild(context, work))
        finally:
            self.done.set()

    def _step(self, step: Callable[[], _T | None]) -> _T | None:
        found = self._guarded(step)
        if found is None:
            self.done.set()
        return found

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

    def _plan(self, context: Context) -> Plan | None:
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
        try:
            source, outcome.source = open_source(context.finders, found.patches[0])
        except PipdeltaError as exc:
            raise PipdeltaError(f"no usable old version: {exc}") from None
        cost = _cost(found.patches, installed=not source.has_raw)
        cpu = speed.cpu_seconds(cost, installed=not source.has_raw)
        if not context.meter.rebuild_first(cpu, found.bytes, full):
            outcome.source = None
            outcome.fall_back(FASTER)
            return None
        outcome.method = DELTA if len(found.patches) == 1 else CHAIN
        outcome.downloaded = found.bytes
        if context.plan_only:
            return None
        self.cost = cost
        return Plan(found.patches, source, full, cost, cpu)

    def _download(self, context: Context, plan: Plan) -> Work | None:
        def advance(n: int) -> None:
            self.fetched += n

        out = []
        for patch in plan.patches:
            counted = context.meter.started(patch.size)
            data = b""
            try:
                data = context.http.get(
                    patch.url, limit=patch.size, size=patch.size, sha256=patch.sha256, progress=advance
                )
            except PipdeltaError as exc:
                raise PipdeltaError(f"patch download failed: {exc}") from None
            finally:
                if counted:
                    context.meter.finished(len(data))
            out.append(data)
        # the link may be measured now: the rebuild is weighed again, its booking on the cores given back if it loses
        if not context.meter.rebuild_first(plan.cpu, 0, plan.full, booked=plan.cpu):
            self.outcome.fall_back(FASTER, self.fetched)
            return None
        self.fetched_all.set()
        return Work(plan, out)

    def _rebuild(self, context: Context, work: Work) -> None:
        target = self.target
        upstream = context.upstreams[target.index]
        plan = work.plan
        ranges = RangeClient(
            target.url, size=plan.full or None, pool=context.http.pool(target.url), headers=upstream.headers(target.url)
        )
        try:
            self.path = _apply(target, plan.patches, work.data, plan.source, context.cache, ranges)
        finally:
            self.fetched += ranges.received
        self.outcome.downloaded = self.fetched


def _cost(patches: Sequence[DeltaEntry], *, installed: bool) -> int:
    """The content bytes the steps deflate again (from installed files, the first step deflates its copies
    too), as their index entries publish them; a step without figures counts three times its whole wheel."""
    return sum(
        3 * p.new.size if p.members is None else p.members.work(installed=installed and k == 0)
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

    Planning (the delta index), downloading (the link) and rebuilding (the CPU) are separate lanes, so that each
    keeps busy. Installers wait for every wheel before they install, so the run ends with the last rebuild: the
    lanes take the largest wheel first, then the costliest rebuild first (rather than the order the installer
    read their metadata in), which ends it soonest.
    """

    def __init__(self, context: Context, workers: int) -> None:
        self.context = context
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._rebuilding: Lane[tuple[Job, Work]] = Lane("rebuild", workers, self._rebuild)
        self._downloading: Lane[tuple[Job, Plan]] = Lane("download", DOWNLOADS, self._download)
        self._planning: Lane[Job] = Lane("plan", PLANS, self._plan)

    def start(self, target: Target) -> Job:
        """The job for ``target``, queued now unless it already was."""
        with self._lock:
            job = self._jobs.get(target.url)
            if job is None:
                job = self._jobs[target.url] = Job(target)
                self._planning.put(target.size or 0, job, job)
            return job

    def hurry(self, job: Job) -> None:
        """The installer waits for ``job``: its query runs at once, and so do its download and rebuild if they are
        small (a large one would only slow the others down: the run ends with the last rebuild either way)."""
        job.hurried = True
        self._planning.hurry(job)
        if job.cost is not None and job.cost <= QUICK:
            self._downloading.hurry(job)
            self._rebuilding.hurry(job)

    def _plan(self, job: Job) -> None:
        plan = job.plan(self.context)
        if plan is not None:
            self._downloading.put(plan.cost, job, (job, plan), now=job.hurried and plan.cost <= QUICK)

    def _download(self, item: tuple[Job, Plan]) -> None:
        job, plan = item
        work = job.download(self.context, plan)
        if work is not None:
            self._rebuilding.put(plan.cost, job, (job, work), now=job.hurried and plan.cost <= QUICK)

    def _rebuild(self, item: tuple[Job, Work]) -> None:
        job, work = item
        job.rebuild(self.context, work)

    def get(self, url: str) -> Job | None:
        with self._lock:
            return self._jobs.get(url)

    def close(self) -> None:
        """Start no more jobs (those running finish in their daemon threads)."""
        for lane in (self._planning, self._downloading, self._rebuilding):
            lane.close()
