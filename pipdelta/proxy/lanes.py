"""A lane of work: a few threads that each take the costliest item waiting, and a way to jump the queue."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")


class Lane(Generic[_T]):
    """Threads that each take the costliest item waiting, one at a time, until closed.

    An item someone is waiting for (the installer asked for its wheel) is :meth:`hurry`-ed: it runs at once on a
    thread of its own rather than after everything costlier.
    """

    def __init__(self, name: str, threads: int, handle: Callable[[_T], None]) -> None:
        self.name = name
        self._handle = handle
        self._waiting: list[list[Any]] = []  # [-cost, arrival, key, item]: a heap, the costliest first
        self._entries: dict[object, list[Any]] = {}  # key -> its entry while it waits
        self._arrivals = itertools.count()
        self._ready = threading.Condition()
        self._closed = False
        for number in range(threads):
            threading.Thread(target=self._work, daemon=True, name=f"pipdelta-{name}-{number}").start()

    def put(self, cost: int, key: object, item: _T, *, now: bool = False) -> None:
        """Queue ``item`` (known by ``key``); ``now``: run it at once instead, as if hurried."""
        if now:
            self._now(item)
            return
        with self._ready:
            entry = [-cost, next(self._arrivals), key, item]
            self._entries[key] = entry
            heapq.heappush(self._waiting, entry)
            self._ready.notify()

    def hurry(self, key: object) -> None:
        """Run the item ``key`` names now, if it is still waiting."""
        with self._ready:
            entry = self._entries.pop(key, None)
            if entry is None:
                return
            entry[2] = _TAKEN  # left in the heap, skipped when it comes up
        self._now(entry[3])

    def _now(self, item: _T) -> None:
        with self._ready:
            if self._closed:
                return
        threading.Thread(target=self._handle, args=(item,), daemon=True, name=f"pipdelta-{self.name}-now").start()

    def _work(self) -> None:
        while True:
            with self._ready:
                while True:
                    while not self._waiting and not self._closed:
                        self._ready.wait()
                    if self._closed:
                        return
                    _, _, key, item = heapq.heappop(self._waiting)
                    if key is not _TAKEN:
                        del self._entries[key]
                        break
            self._handle(item)

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()


_TAKEN = object()  # the key of an entry that was hurried out of the heap
