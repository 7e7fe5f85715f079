"""The server's counters: queries and their answers, patches served and the full-wheel bytes they replaced."""

from __future__ import annotations

import threading
from collections import Counter


class Stats:
    """Thread-safe counters behind ``GET /stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, **counts: int) -> None:
        with self._lock:
            self._counts.update(counts)

    def snapshot(self) -> dict[str, int]:
        keys = (
            "queries",
            "answers_upgrade_delta",
            "answers_upgrade_chain",
            "answers_upgrade_full",
            "answers_other",
            "patches_served",
            "patch_bytes_served",
            "full_bytes_replaced",
            "deltas_made",
            "bad_requests",
        )
        with self._lock:
            out = {key: self._counts[key] for key in keys}
        out["bytes_saved"] = out["full_bytes_replaced"] - out["patch_bytes_served"]
        return out
