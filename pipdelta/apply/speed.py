"""This machine's rebuild cost per kind of patch: what a client weighs a patch's download against a full one with."""

from __future__ import annotations

import threading
import time

from pipdelta.engines import fingerprint
from pipdelta.engines.recipes import Recipe

# Before any rebuild is measured, the CPU seconds a rebuild takes per byte of content it deflates, in seconds that
# deflating one byte of content at level 6 takes here: the differ, inflating and hashing add about as much again
# (1.0 to 2.5 on the public corpus's pairs: botocore's gzip files the least, ruff's Rust binary the most).
_WORK_PER_CONTENT = 2.2
_WEIGHT = 0.5  # of the newest measurement in the running average
_MEASURES = 3 << 20  # content bytes below which a rebuild's time is mostly its fixed cost: not a rate to go by
_lock = threading.Lock()
_measured: dict[bool, float] = {}  # CPU seconds per content byte deflated, by source (installed files or not)
_calibration: dict[str, float] = {}


def record(installed: bool, content: int, cpu_seconds: float) -> None:
    """Remember one real rebuild: it deflated ``content`` bytes of content again in ``cpu_seconds`` (every thread);
    a small one is not a measure."""
    if content >= _MEASURES and cpu_seconds > 0:
        with _lock:
            rate = cpu_seconds / content
            before = _measured.get(installed)
            _measured[installed] = rate if before is None else (1 - _WEIGHT) * before + _WEIGHT * rate


def cpu_seconds(content: int, *, installed: bool = False) -> float:
    """CPU seconds this machine takes to rebuild a wheel whose patch deflates ``content`` bytes of content again,
    from an old wheel or (``installed``) from installed files: as its rebuilds of that kind took per byte, or as
    its deflate speed says if that is more."""
    with _lock:
        measured = _measured.get(installed, 0.0)
    # Never cheaper than the deflate calibration says: a run's first measured rebuilds may be of content that
    # deflates fast (botocore's gzip files, at half the rate), and the wheels weighed next may not be.
    return content * max(measured, _WORK_PER_CONTENT / (deflate_speed() * 1e6))


def deflate_speed() -> float:
    """MB of content per CPU second one core deflates at zlib level 6 (the fingerprint sample, timed once)."""
    with _lock:
        if "deflate" not in _calibration:
            sample, recipe = fingerprint.sample(), Recipe("zlib", 6)
            start = time.thread_time()  # CPU time: the same figure however busy the machine is
            recipe.compress(sample)
            _calibration["deflate"] = len(sample) / 1e6 / max(time.thread_time() - start, 1e-6)
        return _calibration["deflate"]
