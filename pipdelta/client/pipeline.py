"""The client's whole job in one place: plan → query → check sources → fetch → rebuild and verify → install."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import NormalizedName
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from pipdelta.apply.applier import apply_patch
from pipdelta.apply.sources import OldContent, WheelSource
from pipdelta.client import locks, pipcache
from pipdelta.client.cache import Cache
from pipdelta.client.config import Settings
from pipdelta.client.deltaindex import DeltaIndex, Goal, Offer, Start
from pipdelta.client.environment import Environment, Installed
from pipdelta.client.http import Http
from pipdelta.client.install import confirm, install
from pipdelta.client.plan import Planned, Request, plan
from pipdelta.client.report import CHAIN, DELTA, DRY_RUN, FULL, NOTHING, Outcome, Report
from pipdelta.client.sources import LocalSources
from pipdelta.errors import PipdeltaError
from pipdelta.format.patchfile import Target
from pipdelta.index.model import DeltaEntry

Warn = Callable[[str], None]


@dataclass
class Job:
    """One wheel pipdelta tries to rebuild instead of letting pip download it."""

    planned: Planned
    outcome: Outcome
    start: Start
    patches: tuple[DeltaEntry, ...] = ()
    source: OldContent | None = None
    data: list[bytes] = field(default_factory=list)
    fetched: int = 0


def run(
    environment: Environment,
    request: Request,
    settings: Settings,
    *,
    dry_run: bool = False,
    console: Console | None = None,
    warn: Warn | None = None,
) -> Report:
    """Do what ``pip install`` would for ``request``, downloading patches instead of wheels where it pays.

    The environment stays locked from the plan to the end of the install (a dry run changes nothing and
    takes no lock), so two runs never interleave their pip runs on it.
    """
    with nullcontext() if dry_run else locks.environment(environment, settings.cache_dir):
        return _run(environment, request, settings, dry_run=dry_run, console=console, warn=warn)


def _run(
    environment: Environment,
    request: Request,
    settings: Settings,
    *,
    dry_run: bool,
    console: Console | None,
    warn: Warn | None,
) -> Report:
    """plan → query → check sources → fetch → rebuild and verify → install, under the lock ``run`` holds."""
    console = console or Console(stderr=True)
    warn = warn or (
        lambda line: console.print(f"[yellow]pipdelta: warning:[/] {line}", highlight=False, soft_wrap=True)
    )
    with ThreadPoolExecutor(max_workers=2) as probe:  # what is installed, and where pip caches, while pip plans
        listing = probe.submit(environment.installed)
        pip_cache = probe.submit(pipcache.pip_cache_dir, environment)
        planned = plan(environment, request)
        installed = listing.result()
    if not planned:
        return Report([], NOTHING)  # pip would install nothing: its second run would change nothing either
    cache = Cache(settings.cache_dir)
    sources = LocalSources(environment, cache, installed, pip_cache.result())
    outcomes = {p.name: _outcome(p, installed.get(p.name)) for p in planned}
    http = Http(timeout=settings.timeout, retries=settings.retries)
    jobs = _query(settings, http, planned, sources, outcomes, warn)
    jobs = [job for job in jobs if _open_source(job, sources, warn)]
    if dry_run:
        return Report(list(outcomes.values()), DRY_RUN)
    with tempfile.TemporaryDirectory(prefix="pipdelta-wheels-") as tmp:
        wheelhouse = Path(tmp)
        (wheelhouse / "files").mkdir()
        _fetch(http, jobs, settings.jobs, console, warn)
        rebuilt = [job for job in jobs if job.data and _rebuild(job, wheelhouse / "files", cache, warn)]
        pip_run = install(environment, request, wheelhouse if rebuilt else None, quiet=not console.is_terminal)
    _reconcile(pip_run.chosen, outcomes, {job.planned.name for job in rebuilt}, sources, cache)
    return confirm(environment, list(outcomes.values()), pip_run.error)


def _outcome(planned: Planned, installed: Installed | None) -> Outcome:
    return Outcome(planned.name, None if installed is None else str(installed.version), str(planned.version))


def _query(
    settings: Settings,
    http: Http,
    planned: Sequence[Planned],
    sources: LocalSources,
    outcomes: dict[NormalizedName, Outcome],
    warn: Warn,
) -> list[Job]:
    """Ask the delta index about every wheel that has an older version here; the rest download in full."""
    starts: dict[NormalizedName, Start] = {}
    goals: dict[NormalizedName, Goal] = {}
    for p in planned:
        outcome = outcomes[p.name]
        start = sources.start(p) if p.is_wheel else None
        if not p.is_wheel:
            outcome.reason = "not a wheel from an index"
        elif p.sha256 is None:
            outcome.reason = "the index publishes no sha256 to verify against"
        elif start is None:
            outcome.reason = "no older version here" if outcome.old is None else "not an upgrade of a wheel install"
        else:
            starts[p.name], goals[p.name] = start, Goal(p.version, p.sha256)
            outcome.old = str(start.version)
    if not goals:
        return []
    assert settings.index_url is not None
    try:
        offers = DeltaIndex(settings.index_url, http).offers(starts, goals)
    except PipdeltaError as exc:
        warn(f"delta index unusable ({exc}); downloading full wheels")
        offers = {name: Offer(reason=f"delta index unusable: {exc}") for name in goals}
    jobs = []
    for p in planned:
        offer = offers.get(p.name)
        if offer is None:
            continue
        outcome = outcomes[p.name]
        outcome.full_size = offer.full_size
        if offer.patches:
            outcome.method = DELTA if len(offer.patches) == 1 else CHAIN
            outcome.downloaded = offer.bytes
            jobs.append(Job(p, outcome, starts[p.name], offer.patches))
        else:
            outcome.fall_back(offer.reason)
    return jobs


def _open_source(job: Job, sources: LocalSources, warn: Warn) -> bool:
    """Find and check the old content before any patch is downloaded."""
    try:
        job.source, job.outcome.source = sources.open(job.start, job.patches[0])
    except PipdeltaError as exc:
        _fail(job, f"no usable old version: {exc}", warn)
        return False
    return True


def _fetch(http: Http, jobs: Sequence[Job], workers: int, console: Console, warn: Warn) -> None:
    """Download every patch, several at once, with one progress bar per package."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:

        def fetch(job: Job) -> None:
            task = progress.add_task(job.planned.name, total=sum(p.size for p in job.patches))

            def advance(n: int) -> None:
                job.fetched += n
                progress.advance(task, n)

            try:
                job.data = [
                    http.get(p.url, limit=p.size, size=p.size, sha256=p.sha256, progress=advance) for p in job.patches
                ]
            except PipdeltaError as exc:
                job.data = []
                _fail(job, f"patch download failed: {exc}", warn)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(fetch, jobs))


def _rebuild(job: Job, wheelhouse: Path, cache: Cache, warn: Warn) -> bool:
    """Apply the patches in order; only a wheel with pip's sha256 reaches the wheelhouse (and the cache).

    Each step must build exactly the wheel the index names for it, under the name pipdelta gives it: the
    steps of a chain stay in a private folder, and each is the checked source of the next.
    """
    assert job.source is not None and job.planned.sha256 is not None
    source = job.source
    final = Target(job.planned.filename, job.planned.sha256)
    try:
        with tempfile.TemporaryDirectory(prefix="pipdelta-chain-") as tmp:
            for step, (patch, data) in enumerate(zip(job.patches, job.data, strict=True)):
                last = step == len(job.patches) - 1
                target = final if last else Target(patch.new.filename, patch.new.sha256, patch.new.size)
                out = wheelhouse / job.planned.filename if last else Path(tmp)  # named after its checked target
                path = apply_patch(data, source, out, target=target)
                source = WheelSource(path)
            cache.add(job.planned.filename, path.read_bytes(), job.planned.sha256)
    except PipdeltaError as exc:
        _fail(job, f"rebuild failed: {exc}", warn)
        return False
    job.outcome.downloaded = job.fetched
    return True


def _fail(job: Job, reason: str, warn: Warn) -> None:
    warn(f"{job.planned.name} {job.planned.version}: {reason}; downloading the full wheel")
    job.outcome.fall_back(reason, job.fetched)


def _reconcile(
    done: Sequence[Planned],
    outcomes: dict[NormalizedName, Outcome],
    rebuilt: set[NormalizedName],
    sources: LocalSources,
    cache: Cache,
) -> None:
    """Check pip used the rebuilt wheels; keep the wheels pip downloaded for next time's patches."""
    for p in done:
        outcome = outcomes.get(p.name)
        if outcome is None:  # pip chose differently at install time than when planning
            outcomes[p.name] = outcome = Outcome(p.name, None, str(p.version), reason="chosen by pip at install time")
        outcome.new = str(p.version)  # pip may have found a newer release since the plan
        local = p.url.startswith("file:")
        if p.name in rebuilt and not local:
            outcome.fall_back("pip took the index's copy instead of the rebuilt wheel")
        size = outcome.full_size
        if outcome.method == FULL and size is not None and p.sha256 and cache.find(p.sha256) is None:
            data = sources.pip_wheel(size, p.sha256)
            if data is not None:
                with suppress(PipdeltaError):  # pip installed it: a cache that cannot take it costs only next time
                    cache.add(p.filename, data, p.sha256)
