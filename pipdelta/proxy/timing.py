"""Whether a patch pays in time: the link's measured speed against this machine's measured apply speed."""

from __future__ import annotations

import threading

BYTES, TIME = "bytes", "time"
_SAMPLE_MIN = 256 << 10  # shorter transfers measure latency, not the link
_APPLY_GUESS = 8e6  # bytes of rebuilt wheel per second before the first rebuild is measured (2-core laptop)
_WEIGHT = 0.3  # of the newest sample in the running averages


class Meter:
    """Running averages of download and rebuild speed, shared by every request of one local index."""

    def __init__(self, prefer: str = TIME, *, wait: float = 15.0) -> None:
        self.prefer = prefer
        self.wait = wait  # the longest a wheel request waits for a rebuild before streaming upstream's file
        self.link: float | None = None  # bytes/s
        self.apply = _APPLY_GUESS
        self._lock = threading.Lock()

    def downloaded(self, size: int, seconds: float) -> None:
        if size >= _SAMPLE_MIN and seconds > 0:
            with self._lock:
                speed = size / seconds
                self.link = speed if self.link is None else (1 - _WEIGHT) * self.link + _WEIGHT * speed

    def rebuilt(self, size: int, seconds: float) -> None:
        if size >= _SAMPLE_MIN and seconds > 0:
            with self._lock:
                self.apply = (1 - _WEIGHT) * self.apply + _WEIGHT * size / seconds

    def pays(self, patch_bytes: int, full_size: int) -> bool:
        """Whether fetching ``patch_bytes`` and rebuilding beats downloading ``full_size`` (always, for bytes)."""
        if self.prefer == BYTES or self.link is None:
            return True
        return patch_bytes / self.link + full_size / self.apply < full_size / self.link

    def deadline(self, full_size: int | None) -> float:
        """Seconds a wheel request waits for its rebuild: at most ``wait``, less where the link is fast."""
        if self.prefer == BYTES or self.link is None or full_size is None:
            return self.wait
        return min(self.wait, max(1.0, 2 * full_size / self.link))
