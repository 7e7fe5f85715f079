"""This machine's apply speed per kind of patch: what a client weighs a patch's download against a full one with."""

from __future__ import annotations

import os
import threading
import time

from pipdelta.engines import fingerprint
from pipdelta.engines.recipes import Recipe

# A wheel's compressed bytes are about a third of its content (the corpus: 0.3x to 4.4x expansion, mostly 3x):
# a rebuild that re-deflates everything makes about this many bytes of wheel per byte deflated.
_WHEEL_PER_CONTENT = 1 / 3
_lock = threading.Lock()
_measured: dict[tuple[str, bool], float] = {}
_calibration: dict[str, float] = {}


def record(differ: str, installed: bool, wheel_size: int, seconds: float) -> None:
    """Remember one real apply: ``wheel_size`` bytes of wheel rebuilt in ``seconds``."""
    if seconds > 0:
        with _lock:
            _measured[differ, installed] = wheel_size / 1e6 / seconds


def speed(differ: str, *, installed: bool = False) -> float:
    """MB (10**6 bytes) of wheel per second this machine rebuilds with a patch of ``differ``, from an old wheel
    or (``installed``) from installed files: the last apply of that kind in this process, else an estimate
    from this machine's deflate speed on every core (deflating is most of a rebuild's work)."""
    with _lock:
        found = _measured.get((differ, installed))
    if found is not None:
        return found
    rate = deflate_speed() * (os.cpu_count() or 1) * _WHEEL_PER_CONTENT
    # From an old wheel, unchanged members are copied without an engine: a third of the work, measured.
    return rate if installed else 3 * rate


def deflate_speed() -> float:
    """MB of content per second one core deflates at zlib level 6 (the fingerprint sample, timed once)."""
    with _lock:
        if "deflate" not in _calibration:
            sample, recipe = fingerprint.sample(), Recipe("zlib", 6)
            start = time.perf_counter()
            recipe.compress(sample)
            _calibration["deflate"] = len(sample) / 1e6 / max(time.perf_counter() - start, 1e-6)
        return _calibration["deflate"]
