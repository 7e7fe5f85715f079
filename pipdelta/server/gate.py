"""A bound on expensive requests in flight, in total and per client address, that refuses instead of queueing."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator


class Full(Exception):
    """The gate is full (for everyone, or for this client): try again in a moment."""


class Gate:
    """``with gate.enter(client):`` holds one of ``total`` slots, at most ``per_client`` of them per client."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()

    @contextlib.contextmanager
    def enter(self, client: str) -> Iterator[None]:
        with self._lock:
            if self._held.total() >= self.total:
                raise Full("the server is busy with other queries")
            if self._held[client] >= self.per_client:
                raise Full(f"at most {self.per_client} queries at once per client")
            self._held[client] += 1
        try:
            yield
        finally:
            with self._lock:
                self._held[client] -= 1
                if not self._held[client]:
                    del self._held[client]
