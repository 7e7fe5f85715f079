"""One delta job, run in a worker: make the patch, keep it only if it is worth it, and report back."""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pipdelta.errors import PipdeltaError
from pipdelta.format.patchfile import VERSION, read_patch
from pipdelta.index.members import Members
from pipdelta.index.model import DeltaEntry, WheelEntry
from pipdelta.make.limits import DEFAULT_LIMITS, SizeLimits, TooLarge
from pipdelta.make.maker import make_patch


@dataclass(frozen=True)
class PatchFacts:
    """What the index pins about a patch file."""

    old_sha256: str
    new_sha256: str
    size: int
    sha256: str
    engines: tuple[str, ...]
    members: Members
    format: int = VERSION

    def entry(self, old: WheelEntry, new: WheelEntry, url: str) -> DeltaEntry:
        """The delta's index entry; its ends are pinned by filename, sha256 and size (no URL)."""
        ends = [WheelEntry(w.filename, w.sha256, w.size) for w in (old, new)]
        return DeltaEntry(ends[0], ends[1], url, self.size, self.sha256, self.format, self.engines, self.members)


@dataclass(frozen=True)
class JobResult:
    """A job's outcome: the patch's facts, or why there is none; with time and peak memory."""

    facts: PatchFacts | None
    reason: str | None  # why there is no patch: too large, or how making it failed
    seconds: float
    peak_memory: int
    failed: bool = False
    retry: bool = False  # the failure was of this run (disk, executor), not of these wheels
    refused: bool = False  # the wheels hold more than the size limits: nothing was inflated or diffed


def inspect(path: Path) -> PatchFacts:
    """The facts of a patch file on disk (PatchFormatError if it is not one)."""
    data = path.read_bytes()
    header, _ = read_patch(data)
    engines = tuple(sorted(str(recipe) for recipe in header.recipes(copies=True)))
    digest = hashlib.sha256(data).hexdigest()
    return PatchFacts(header.old.sha256, header.new.sha256, len(data), digest, engines, Members.of(header))


def too_large(size: int, target_size: int, max_ratio: float) -> str | None:
    if size > max_ratio * target_size:
        return f"patch is {size:,} bytes, over {max_ratio:.0%} of the {target_size:,}-byte wheel"
    return None


def make_delta(old: Path, new: Path, out: Path, max_ratio: float, limits: SizeLimits = DEFAULT_LIMITS) -> JobResult:
    """Make ``out`` from ``old`` to ``new``; a patch over ``max_ratio`` of the new wheel is deleted.

    Wheels whose content is over ``limits`` are refused from their declared sizes, before any is inflated.
    """
    _reset_peak()
    start = time.perf_counter()
    facts, reason, failed, retry = None, None, False, False
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        report = make_patch(old, new, out, limits=limits)
        reason = too_large(report.patch_size, report.new_size, max_ratio)
        if reason:
            out.unlink()
        else:
            facts = inspect(out)
    except TooLarge as exc:
        return JobResult(None, str(exc), time.perf_counter() - start, _peak(), refused=True)
    except PipdeltaError as exc:
        reason, failed = str(exc), True
    except OSError as exc:
        reason, failed, retry = str(exc), True, True
    except Exception as exc:  # a corrupt wheel may break the engine anywhere; it must not stop the build
        reason, failed = f"{type(exc).__name__}: {exc}", True
    return JobResult(facts, reason, time.perf_counter() - start, _peak(), failed, retry)


def exit_with_parent(parent: int) -> None:
    """Make this pool worker exit when the builder is gone (killed, it cannot tell its workers to stop)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="pipdelta-parent-watch", daemon=True).start()


def _reset_peak() -> None:
    # Linux resets VmHWM (this process's peak RSS) when "5" is written to clear_refs.
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass


def _peak() -> int:
    """Peak RSS of this job in bytes: the worker's since the reset, or its differ child's if larger."""
    worker = 0
    try:
        with open("/proc/self/status") as status:
            worker = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        pass
    if sys.platform == "win32":
        return worker
    import resource

    unit = 1 if sys.platform == "darwin" else 1024
    # The largest child of this worker so far, so an upper bound when a worker runs several jobs.
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * unit
    return max(worker or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit, children)
