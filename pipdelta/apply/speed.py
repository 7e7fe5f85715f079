"""This machine's rebuild cost per kind of patch: what a client weighs a patch's download against a full one with."""

from __future__ import annotations

import threading
import time

from pipdelta.engines import fingerprint
from pipdelta.engines.recipes import Recipe

# Before any rebuild is measured, the CPU seconds a rebuild takes per compressed byte it deflates, in seconds that
# deflating one byte of content at level 6 takes here: a member's content is about 3x its compressed bytes, and
# the differ, inflating and hashing add about as much again (fitted on the public corpus's native pairs).
_CONTENT_PER_DEFLATED = 6.0
_WEIGHT = 0.5  # of the newest measurement in the running average
_MEASURES = 1 << 20  # bytes deflated below which a rebuild's time is mostly its fixed cost: not a rate to go by
_lock = threading.Lock()
_measured: dict[bool, float] = {}  # CPU seconds per compressed byte deflated, by source (installed files or not)
_calibration: dict[str, float] = {}


def record(installed: bool, deflated: int, cpu_seconds: float) -> None:
    """Remember one real rebuild: it deflated ``deflated`` compressed bytes again in ``cpu_seconds`` (every thread);
    a small one is not a measure."""
    if deflated >= _MEASURES and cpu_seconds > 0:
        with _lock:
            rate = cpu_seconds / deflated
            before = _measured.get(installed)
            _measured[installed] = rate if before is None else (1 - _WEIGHT) * before + _WEIGHT * rate


def cpu_seconds(deflated: int, *, installed: bool = False) -> float:
    """CPU seconds this machine takes to rebuild a wheel whose patch deflates ``deflated`` compressed bytes again,
    from an old wheel or (``installed``) from installed files: as its rebuilds of that kind took per byte, else as
    its deflate speed says."""
    with _lock:
        rate = _measured.get(installed)
    if rate is None:
        rate = _CONTENT_PER_DEFLATED / (deflate_speed() * 1e6)
    return deflated * rate


def deflate_speed() -> float:
    """MB of content per CPU second one core deflates at zlib level 6 (the fingerprint sample, timed once)."""
    with _lock:
        if "deflate" not in _calibration:
            sample, recipe = fingerprint.sample(), Recipe("zlib", 6)
            start = time.thread_time()  # CPU time: the same figure however busy the machine is
            recipe.compress(sample)
            _calibration["deflate"] = len(sample) / 1e6 / max(time.thread_time() - start, 1e-6)
        return _calibration["deflate"]
