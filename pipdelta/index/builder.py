"""Build or update a delta index from a folder of wheels: plan, reuse what exists, make the rest, publish."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import NormalizedName

from pipdelta.errors import PipdeltaError
from pipdelta.format.patchfile import VERSION
from pipdelta.index import files
from pipdelta.index.jobs import JobResult, PatchFacts, exit_with_parent, inspect, make_delta, too_large
from pipdelta.index.mirror import MirrorWheel, groups, scan
from pipdelta.index.model import PROJECT_FILE, DeltaEntry, IndexFormatError, ProjectIndex
from pipdelta.index.plan import Job, plan
from pipdelta.index.progress import Progress
from pipdelta.index.schedule import Call, Scheduler
from pipdelta.index.state import BuildState
from pipdelta.locking import exclusive
from pipdelta.make.limits import DEFAULT_LIMITS, SizeLimits

log = logging.getLogger(__name__)
SAVE_EVERY = 30.0  # seconds between saves of the state file during a long build
LOCK_FILE = "build.lock"
# A second builder on one INDEX_DIR waits this long for the first to finish, then stops with an error.
LOCK_WAIT = 2.0


@dataclass
class BuildSummary:
    """What a build did: wheels seen, deltas made, reused and skipped, bytes, time and peak job memory."""

    wheels: int = 0
    projects: int = 0
    made: int = 0
    reused: int = 0
    too_large: int = 0
    refused: int = 0  # over the size limits (--max-member-size, --max-total-size): clients download in full
    failed: int = 0
    input_bytes: int = 0  # old + new wheel bytes of the deltas made (or tried) in this run
    target_bytes: int = 0  # new wheel bytes of the deltas made
    patch_bytes: int = 0  # bytes of the deltas made
    seconds: float = 0.0
    peak_job_memory: int = 0
    warnings: list[str] = field(default_factory=list)
    # Each delta tried in this run: its patch name, the memory estimate it was scheduled by, and its outcome.
    jobs: list[tuple[str, int, JobResult]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.patch_bytes / self.target_bytes if self.target_bytes else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.input_bytes / 1e6 / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        return (
            f"{self.wheels} wheels in {self.projects} projects; {self.made} deltas made "
            f"({self.patch_bytes:,} bytes, {self.ratio:.1%} of their targets), {self.reused} reused, "
            f"{self.too_large} not worth it, {self.refused} over the size limits, {self.failed} failed; "
            f"{self.seconds:.1f} s, "
            f"{self.mb_per_second:.1f} MB/s of input, peak job memory {self.peak_job_memory / 2**20:,.0f} MiB"
        )


class _Project:
    """One project's part of the index while it is being built."""

    def __init__(self, index_dir: Path, name: NormalizedName, wheels: list[MirrorWheel]) -> None:
        self.index_dir = index_dir
        self.name = name
        self.wheels = sorted((w.entry for w in wheels), key=lambda e: (e.key, e.filename))
        self.deltas: dict[str, DeltaEntry] = {}
        self.waiting = 0
        try:
            old = files.read_project(files.project_file(index_dir, name))
            self.published = {d.url: d for d in old.deltas}
        except IndexFormatError:
            self.published = {}

    def add(self, job: Job, facts: PatchFacts) -> None:
        url = f"{files.PATCHES}/{job.patch_name}"
        self.deltas[url] = facts.entry(job.old.entry, job.new.entry, url)

    def reusable(self, job: Job, max_ratio: float) -> PatchFacts | None:
        """The facts of this job's patch if a previous run left it complete and still wanted."""
        path = files.patch_path(self.index_dir, self.name, job.patch_name)
        known = self.published.get(f"{files.PATCHES}/{job.patch_name}")
        ends = (job.old.entry.sha256, job.new.entry.sha256)
        if (
            known
            and known.format == VERSION
            and known.members is not None
            and known.members.content is not None
            and (known.old.sha256, known.new.sha256) == ends
        ):
            with contextlib.suppress(OSError):
                if path.stat().st_size == known.size:
                    return PatchFacts(*ends, known.size, known.sha256, known.engines, known.members)
        try:
            # written by a run stopped before it published deltas.json, or published by a builder that did not
            # count its members (or their content): its header says
            facts = inspect(path)
        except (OSError, PipdeltaError):
            return None
        if (facts.old_sha256, facts.new_sha256) != (job.old.entry.sha256, job.new.entry.sha256):
            return None
        if too_large(facts.size, job.new.entry.size, max_ratio):
            return None
        return facts

    def publish(self) -> None:
        """Write deltas.json, then remove patches it no longer lists (and temporary files of killed runs)."""
        deltas = sorted(self.deltas.values(), key=lambda d: (d.new.key, d.old.key, d.url))
        index = ProjectIndex(self.name, tuple(self.wheels), tuple(deltas))
        files.write_json(files.project_file(self.index_dir, self.name), index.to_json())
        folder = self.index_dir / self.name / files.PATCHES
        with contextlib.suppress(FileNotFoundError):
            for path in folder.iterdir():
                if f"{files.PATCHES}/{path.name}" not in self.deltas:
                    path.unlink()


def _default_budget() -> int | None:
    try:
        return int(0.75 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


@contextlib.contextmanager
def _executor(given: concurrent.futures.Executor | None, jobs: int) -> Iterator[concurrent.futures.Executor]:
    if given is not None:
        yield given
        return
    pool = concurrent.futures.ProcessPoolExecutor(jobs, initializer=exit_with_parent, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        # Stopped (Ctrl-C, a dead worker): do not wait for the jobs in flight; their patches are atomic.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def build_index(
    source: Path,
    out: Path,
    *,
    keep: int = 3,
    max_ratio: float = 0.5,
    jobs: int | None = None,
    executor: concurrent.futures.Executor | None = None,
    progress: bool = False,
    primary_url: Callable[[str], str | None] | None = None,
    memory: int | None = None,
    limits: SizeLimits = DEFAULT_LIMITS,
    lock_wait: float = LOCK_WAIT,
) -> BuildSummary:
    """Make or update the delta index ``out`` for the wheels under ``source``.

    ``keep``: deltas to each wheel from this many versions before it. ``max_ratio``: a delta larger than
    this share of its target is not kept. ``jobs``: jobs in flight (default: CPU count). ``executor``: run
    jobs there instead of a local process pool (any :class:`concurrent.futures.Executor`, e.g. Dask's
    ``Client.get_executor()``; its workers must see ``source`` and ``out`` at the same paths).
    ``memory``: bytes the jobs in flight may take together by estimate (default: 3/4 of RAM with the
    local pool, unbounded with a given executor). ``primary_url(filename)``: a wheel's URL on the primary index.
    ``limits``: uncompressed bytes one job may hold; a pair over them is skipped (its clients download in full).
    One builder at a time per ``out``: another waits ``lock_wait`` seconds for it, then raises
    :class:`pipdelta.locking.Busy`.
    """
    if not source.is_dir():
        raise PipdeltaError(f"{source} is not a folder of wheels")
    if not max_ratio > 0:
        raise PipdeltaError("max_ratio must be above 0")
    if keep < 1:
        raise PipdeltaError("keep must be at least 1")
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    # Two builders on one folder would delete each other's temporary files and publish each other's half.
    with exclusive(out / files.STATE_DIR / LOCK_FILE, wait=lock_wait, what=f"the delta index {out}"):
        state = BuildState.load(out)
        wheels, warnings = scan(source, state.hashes, primary_url)
        state.hashes.keep([w.path for w in wheels])
        summary = BuildSummary(wheels=len(wheels), warnings=warnings)
        by_group = groups(wheels)
        by_name: dict[NormalizedName, list[MirrorWheel]] = {}
        for (name, _), members in by_group.items():
            by_name.setdefault(name, []).extend(members)
        projects = {name: _Project(out, name, members) for name, members in by_name.items()}
        summary.projects = len(projects)

        todo = _todo(plan(by_group, keep), projects, state, max_ratio, summary)
        slots = jobs or os.cpu_count() or 1
        budget = memory if memory is not None else (None if executor else _default_budget())
        last_save = time.monotonic()
        try:
            with Progress(len(todo), enabled=progress) as bar, _executor(executor, slots) as pool:
                scheduler: Scheduler[Job, JobResult] = Scheduler(pool, slots, budget)
                for job, future in scheduler.run(todo, _work(out, max_ratio, limits), lambda j: j.memory):
                    project = projects[job.project]
                    _record(summary, state, project, job, _result(job, future))
                    bar.advance(job.new.entry.filename)
                    project.waiting -= 1
                    if not project.waiting:
                        project.publish()
                    if time.monotonic() - last_save > SAVE_EVERY:
                        state.save(out)
                        last_save = time.monotonic()
            files.write_json(out / files.ROOT_FILE, files.root_json(list(projects)))
            _forget_gone(out, set(projects))
        finally:
            state.save(out)  # even when stopped: what was learnt about skipped deltas and hashes is kept
    summary.seconds = time.perf_counter() - started
    return summary


def _todo(
    planned: list[Job],
    projects: dict[NormalizedName, _Project],
    state: BuildState,
    max_ratio: float,
    summary: BuildSummary,
) -> list[Job]:
    """The planned jobs still to do; the others are reused, and projects with nothing to do are published."""
    todo = []
    for job in planned:
        project = projects[job.project]
        facts = project.reusable(job, max_ratio)
        if facts is not None:
            project.add(job, facts)
            summary.reused += 1
        elif BuildState.pair(job.old.entry.sha256, job.new.entry.sha256) not in state.skipped:
            todo.append(job)
            project.waiting += 1
    for project in projects.values():
        if not project.waiting:
            project.publish()
    return todo


def _forget_gone(out: Path, projects: set[NormalizedName]) -> None:
    """Remove the files of projects that have no wheels left in the mirror (after index.json dropped them)."""
    for listed in out.glob(f"*/{PROJECT_FILE}"):
        if listed.parent.name not in projects:
            shutil.rmtree(listed.parent / files.PATCHES, ignore_errors=True)
            listed.unlink()


def _work(out: Path, max_ratio: float, limits: SizeLimits) -> Callable[[Job], Call[JobResult]]:
    def work(job: Job) -> Call[JobResult]:
        target = files.patch_path(out, job.project, job.patch_name)
        return make_delta, (job.old.path, job.new.path, target, max_ratio, limits)

    return work


def _result(job: Job, future: concurrent.futures.Future[JobResult]) -> JobResult:
    try:
        return future.result()
    except concurrent.futures.BrokenExecutor:
        raise PipdeltaError(
            f"a worker died while making {job.patch_name} (out of memory?); run again to resume, "
            "with fewer --jobs or a smaller --memory"
        ) from None
    except Exception as exc:  # an executor of another kind failed the job: keep building the rest
        return JobResult(None, f"{type(exc).__name__}: {exc}", 0.0, 0, failed=True, retry=True)


def _record(summary: BuildSummary, state: BuildState, project: _Project, job: Job, result: JobResult) -> None:
    summary.input_bytes += job.input_bytes
    summary.jobs.append((job.patch_name, job.memory, result))
    summary.peak_job_memory = max(summary.peak_job_memory, result.peak_memory)
    if result.facts is not None:
        project.add(job, result.facts)
        summary.made += 1
        summary.patch_bytes += result.facts.size
        summary.target_bytes += job.new.entry.size
        return
    reason = result.reason or "no patch"
    if result.refused:  # not remembered: with other limits, a later run makes it
        summary.refused += 1
        _warn(summary, f"skipped the delta {job.old.entry.filename} -> {job.new.entry.filename}: {reason}")
        return
    if not result.retry:
        state.skipped[BuildState.pair(job.old.entry.sha256, job.new.entry.sha256)] = reason
    if result.failed:
        summary.failed += 1
        _warn(summary, f"could not make the delta {job.old.entry.filename} -> {job.new.entry.filename}: {reason}")
    else:
        summary.too_large += 1


def _warn(summary: BuildSummary, message: str) -> None:
    summary.warnings.append(message)
    log.warning(message)
