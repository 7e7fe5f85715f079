"""Whether a patch pays in time: the link's measured speed and the wheels already on it, against this machine's
cores and the rebuilds already on them."""

from __future__ import annotations

import os
import threading
import time

BYTES, TIME = "bytes", "time"
_SAMPLE_MIN = 256 << 10  # until this much has come, the link's figure is latency, not speed
_KEEP = 0.7  # of the past in the link's figure, at each transfer's end: the recent past counts most
# Of a rebuild's CPU seconds, the share one core does alone however many are free (the largest member's deflate
# and the differ): 0.6 to 1.0 on the public corpus's native pairs.
SERIAL = 0.75
# Preferring time, a wheel is downloaded in full when that ends the run sooner by more than this share of the
# time its extra bytes take on the link: an even trade (1) would let a download win by a hair; none (0) would
# pay any bytes for any time.
EXCHANGE = 0.5
_SMALL = 64 << 10  # a transfer this small measures latency: it is left out of the link's figure


class Meter:
    """The link's speed (bytes over the time any transfer was under way, so that transfers side by side count as
    one link), shared by every request of one local index, weighed against this machine's cores.

    Each choice books its resource until the time it is expected to end: a rebuild books the cores (its CPU
    seconds, spread over them; its patches, the link), a full download the link. The installer waits for every
    wheel, so a wheel is rebuilt unless downloading it ends the run sooner, given what is booked already, by more
    than half the time the link takes to carry the extra bytes: on a fast link the costliest rebuilds are downloaded
    instead while the cores rebuild the rest, so that both end together; on a slow one nearly everything is
    rebuilt.
    """

    def __init__(self, prefer: str = TIME, *, wait: float = 15.0, cores: int | None = None) -> None:
        self.prefer = prefer
        self.wait = wait  # the longest a wheel request waits for a rebuild's patches before streaming upstream's file
        self.cores = cores or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._bytes = 0.0  # that came over the link, decayed
        self._busy = 0.0  # seconds with a transfer under way, decayed alike
        self._active = 0
        self._since = 0.0  # when the transfers under way began
        self._cores_free = 0.0  # time.monotonic() when the rebuilds booked are done
        self._link_free = 0.0  # time.monotonic() when the full downloads booked are done

    @property
    def link(self) -> float | None:
        """Bytes/s; None until enough has come to say."""
        with self._lock:
            return self._speed()

    def _speed(self) -> float | None:
        return self._bytes / self._busy if self._bytes >= _SAMPLE_MIN and self._busy > 0 else None

    def started(self, size: int | None) -> bool:
        """A transfer of ``size`` bytes (None: unknown) from the network begins; False when it is too small to say
        anything of the link but latency (it is then not counted, and :meth:`finished` is not to be called)."""
        if size is not None and size < _SMALL:
            return False
        with self._lock:
            if self._active == 0:
                self._since = time.monotonic()
            self._active += 1
        return True

    def finished(self, size: int) -> None:
        """A transfer :meth:`started` ended, having brought ``size`` bytes."""
        with self._lock:
            now = time.monotonic()
            self._active -= 1
            self._bytes = _KEEP * self._bytes + size
            self._busy = _KEEP * self._busy + (now - self._since)
            self._since = now

    def rebuild_first(self, cpu: float, patch_bytes: int, full_size: int, *, booked: float = 0.0) -> bool:
        """Whether fetching ``patch_bytes`` and rebuilding (``cpu`` seconds of this machine's CPU) rather than
        downloading the ``full_size`` wheel ends the run sooner, given the rebuilds and downloads booked (the run
        ends when the cores and the link are both done); books the one chosen. Always when the smallest download
        is preferred or the link is not measured yet. ``booked``: the CPU seconds this wheel's rebuild booked
        when first chosen, given back if the download now wins."""
        with self._lock:
            now, link = time.monotonic(), self._speed()
            cores_free = max(now, self._cores_free - booked / self.cores)
            if self.prefer == BYTES or link is None:
                self._cores_free = cores_free + cpu / self.cores
                return True
            link_free = max(now, self._link_free)
            # a rebuild alone ends no sooner than its serial part: the largest member's deflate, the differ
            rebuilt = max(cores_free + cpu / self.cores, now + SERIAL * cpu, link_free + patch_bytes / link)
            downloaded = max(cores_free, link_free + full_size / link)
            # the download must save more than half the time the link takes to carry its extra bytes
            if (rebuilt - downloaded) * link <= EXCHANGE * (full_size - patch_bytes):
                self._cores_free = cores_free + cpu / self.cores
                self._link_free = link_free + patch_bytes / link
                return True
            self._cores_free, self._link_free = cores_free, link_free + full_size / link
            return False

    def deadline(self, full_size: int | None) -> float:
        """Seconds a wheel request waits for its rebuild's patches (then for the rebuild): at most ``wait``, less where
        the link is fast."""
        link = self.link
        if self.prefer == BYTES or link is None or full_size is None:
            return self.wait
        return min(self.wait, max(1.0, 2 * full_size / link))
