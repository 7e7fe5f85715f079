"""Whether a patch pays in time: the link's measured speed against this machine's measured apply speed."""

from __future__ import annotations

import threading

from pipdelta.apply import speed

BYTES, TIME = "bytes", "time"
_SAMPLE_MIN = 256 << 10  # shorter transfers measure latency, not the link
_WEIGHT = 0.3  # of the newest sample in the running average
# A patch's differ is known only once it is here: the slower one, bsdiff4 (native code), decides beforehand.
_DIFFER = "bsdiff4"


class Meter:
    """A running average of the link's speed, shared by every request of one local index, weighed against this
    machine's apply speed (:mod:`pipdelta.apply.speed`: measured by its last rebuilds, else estimated)."""

    def __init__(self, prefer: str = TIME, *, wait: float = 15.0) -> None:
        self.prefer = prefer
        self.wait = wait  # the longest a wheel request waits for a rebuild before streaming upstream's file
        self.link: float | None = None  # bytes/s
        self._lock = threading.Lock()

    def downloaded(self, size: int, seconds: float) -> None:
        if size >= _SAMPLE_MIN and seconds > 0:
            with self._lock:
                speed = size / seconds
                self.link = speed if self.link is None else (1 - _WEIGHT) * self.link + _WEIGHT * speed

    def pays(self, patch_bytes: int, full_size: int, *, installed: bool = False) -> bool:
        """Whether fetching ``patch_bytes`` and rebuilding (from installed files, ``installed``) beats downloading
        ``full_size`` (always, for bytes)."""
        if self.prefer == BYTES or self.link is None:
            return True
        rebuild = full_size / (speed.speed(_DIFFER, installed=installed) * 1e6)
        return patch_bytes / self.link + rebuild < full_size / self.link

    def deadline(self, full_size: int | None) -> float:
        """Seconds a wheel request waits for its rebuild's patches (then for the rebuild): at most ``wait``, less where
        the link is fast."""
        if self.prefer == BYTES or self.link is None or full_size is None:
            return self.wait
        return min(self.wait, max(1.0, 2 * full_size / self.link))
