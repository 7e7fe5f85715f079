"""A lane of work: a few threads that each take the costliest item waiting."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

_T = TypeVar("_T")


class Lane(Generic[_T]):
    """Threads that each take the costliest item waiting, one at a time, until closed."""

    def __init__(self, name: str, threads: int, handle: Callable[[_T], None]) -> None:
        self._handle = handle
        self._waiting: list[tuple[int, int, _T]] = []  # (-cost, arrival, item): a heap, the costliest first
        self._arrivals = itertools.count()
        self._ready = threading.Condition()
        self._closed = False
        for number in range(threads):
            threading.Thread(target=self._work, daemon=True, name=f"pipdelta-{name}-{number}").start()

    def put(self, cost: int, item: _T) -> None:
        with self._ready:
            heapq.heappush(self._waiting, (-cost, next(self._arrivals), item))
            self._ready.notify()

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._waiting and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return
                item = heapq.heappop(self._waiting)[2]
            self._handle(item)

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
