"""On-demand deltas: a project's wheels from an upstream simple index; a missing delta made once, then cached."""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import threading
import time
from dataclasses import replace
from pathlib import Path, PurePosixPath

from packaging.utils import NormalizedName

from pipdelta.errors import PipdeltaError
from pipdelta.format.patchfile import VERSION
from pipdelta.index import files
from pipdelta.index.jobs import exit_with_parent, inspect, make_delta
from pipdelta.index.model import PROJECT_FILE, DeltaEntry, IndexFormatError, ProjectIndex, WheelEntry, WheelKey
from pipdelta.make.limits import DEFAULT_LIMITS, SizeLimits
from pipdelta.server.stats import Stats
from pipdelta.server.upstream import SimpleIndex, UpstreamFile

log = logging.getLogger(__name__)
RETRY_FAILED = 600.0  # seconds before a delta that failed is tried again


class OnDemandCatalog:
    """The index folder ``cache`` filled from ``upstream`` as queries ask for deltas.

    Each delta is made at most once at a time: concurrent queries for it share one job (a future per
    delta), and wait for it up to ``wait`` seconds; past that they answer "full" and the job goes on.
    """

    def __init__(
        self,
        upstream: str,
        cache: Path,
        *,
        wait: float = 30.0,
        jobs: int | None = None,
        ttl: float = 60.0,
        max_ratio: float = 0.5,
        stats: Stats | None = None,
        limits: SizeLimits = DEFAULT_LIMITS,
    ) -> None:
        self.root = cache
        self.limits = limits  # what one job may inflate, as for `pipdelta index build`
        self.upstream = SimpleIndex(upstream)
        self.wait, self.ttl, self.max_ratio = wait, ttl, max_ratio
        self.stats = stats or Stats()
        self._lock = threading.Lock()
        self._listings: dict[NormalizedName, tuple[float, dict[str, UpstreamFile]]] = {}
        self._sizes: dict[str, int] = {}  # sha256 -> size, for indexes that do not publish sizes (PEP 503)
        self._jobs: dict[tuple[str, str], concurrent.futures.Future[DeltaEntry | None]] = {}
        self._failed: dict[tuple[str, str], float] = {}
        self._locks: dict[object, threading.Lock] = {}
        self._threads = concurrent.futures.ThreadPoolExecutor(jobs or 2, thread_name_prefix="pipdelta-ondemand")
        # A server has threads: its workers are spawned, never forked from it.
        self._processes = concurrent.futures.ProcessPoolExecutor(
            jobs or 2,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=exit_with_parent,
            initargs=(os.getpid(),),
        )
        cache.mkdir(parents=True, exist_ok=True)
        _count_members(cache)

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        self._processes.shutdown(wait=True, cancel_futures=True)

    def project(self, name: NormalizedName) -> ProjectIndex | None:
        listing = self._listing(name)
        if not listing:
            return None
        wheels = tuple(
            WheelEntry(f.filename, f.sha256, f.size or self._sizes.get(f.sha256, 0), f.url) for f in listing.values()
        )
        present = {w.sha256 for w in wheels}
        deltas = tuple(d for d in self._made(name).deltas if d.old.sha256 in present and d.new.sha256 in present)
        return ProjectIndex(name, wheels, deltas)

    def make(self, name: NormalizedName, old: WheelEntry, new: WheelEntry) -> DeltaEntry | None:
        """The delta from ``old`` to ``new``, made now (once, however many ask) if ``wait`` allows."""
        key = (old.sha256, new.sha256)
        with self._lock:
            if time.monotonic() - self._failed.get(key, -RETRY_FAILED) < RETRY_FAILED:
                return None
            future = self._jobs.get(key)
            created = future is None
            if future is None:
                future = self._threads.submit(self._build, name, old, new)
                self._jobs[key] = future
        if created:  # outside the lock: a future already done runs its callback right here
            future.add_done_callback(lambda done: self._finished(key, done))
        try:
            return future.result(timeout=self.wait)
        except concurrent.futures.TimeoutError:
            return None
        except Exception:  # logged by _finished; this query answers "full"
            return None

    def fill_size(self, wheel: WheelEntry) -> bool:
        """Learn the size of a wheel the upstream page listed without one; True if now known."""
        upstream = self._listing(wheel.key.name).get(wheel.sha256)
        size = self.upstream.size(upstream) if upstream else None
        if size is None:
            return False
        with self._lock:
            self._sizes[wheel.sha256] = size
        return True

    def _finished(self, key: tuple[str, str], future: concurrent.futures.Future[DeltaEntry | None]) -> None:
        with self._lock:
            del self._jobs[key]
            error = None if future.cancelled() else future.exception()
            if error is not None or future.cancelled() or future.result() is None:
                self._failed[key] = time.monotonic()
        if error is not None:
            log.warning("on-demand delta %s -> %s failed: %s", key[0][:12], key[1][:12], error)

    def _listing(self, name: NormalizedName) -> dict[str, UpstreamFile]:
        with self._lock_for(("listing", name)):
            with self._lock:
                cached = self._listings.get(name)
            if cached is not None and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
            found = {}
            for wheel in self.upstream.wheels(name):
                try:
                    if WheelKey.from_filename(wheel.filename).name == name:
                        found[wheel.sha256] = wheel
                except IndexFormatError:
                    continue
            with self._lock:
                self._listings[name] = (time.monotonic(), found)
            return found

    def _lock_for(self, what: object) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(what, threading.Lock())

    def _made(self, name: NormalizedName) -> ProjectIndex:
        try:
            return files.read_project(files.project_file(self.root, name))
        except IndexFormatError:
            return ProjectIndex(name, (), ())

    def _fetch(self, name: NormalizedName, wheel: WheelEntry) -> Path:
        upstream = self._listing(name).get(wheel.sha256)
        if upstream is None:
            raise PipdeltaError(f"{wheel.filename} is no longer listed upstream")
        with self._lock_for(("wheel", wheel.sha256)):
            path = self.upstream.download(upstream, self.root / files.STATE_DIR / "wheels" / wheel.sha256)
        with self._lock:
            self._sizes[wheel.sha256] = path.stat().st_size
        return path

    def _build(self, name: NormalizedName, old: WheelEntry, new: WheelEntry) -> DeltaEntry | None:
        old_path, new_path = self._fetch(name, old), self._fetch(name, new)
        patch_name = files.patch_name(old.filename, new.key)
        patch = files.patch_path(self.root, name, patch_name)
        result = self._processes.submit(make_delta, old_path, new_path, patch, self.max_ratio, self.limits).result()
        if result.facts is None:
            log.info("no on-demand delta %s -> %s: %s", old.filename, new.filename, result.reason)
            return None
        sized = [WheelEntry(w.filename, w.sha256, p.stat().st_size) for w, p in ((old, old_path), (new, new_path))]
        delta = result.facts.entry(sized[0], sized[1], f"{files.PATCHES}/{patch_name}")
        with self._lock_for(("project", name)):
            deltas = {d.url: d for d in self._made(name).deltas}
            deltas[delta.url] = delta
            current = self.project(name)
            listed = current.wheels if current else ()
            index = ProjectIndex(name, listed, tuple(deltas.values()))
            files.write_json(files.project_file(self.root, name), index.to_json())
            root = [p.parent.name for p in self.root.glob(f"*/{PROJECT_FILE}")]
            files.write_json(self.root / files.ROOT_FILE, files.root_json(root))
        self.stats.add(deltas_made=1)
        return delta


def _count_members(root: Path) -> None:
    """Give the deltas an older pipdelta made here their member figures, read from their patches (once)."""
    for path in root.glob(f"*/{PROJECT_FILE}"):
        try:
            index = files.read_project(path)
        except IndexFormatError:
            continue
        deltas = tuple(_counted(path.parent, delta) for delta in index.deltas)
        if deltas != index.deltas:
            files.write_json(path, replace(index, deltas=deltas).to_json())


def _counted(folder: Path, delta: DeltaEntry) -> DeltaEntry:
    counted = delta.members is not None and delta.members.content is not None
    if counted or delta.format != VERSION or PurePosixPath(delta.url).parent.name != files.PATCHES:
        return delta
    try:
        facts = inspect(folder / files.PATCHES / PurePosixPath(delta.url).name)
    except (OSError, PipdeltaError):
        return delta
    return replace(delta, members=facts.members) if facts.sha256 == delta.sha256 else delta
