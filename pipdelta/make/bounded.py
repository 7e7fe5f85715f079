"""Run a differ in a forked child with time and memory limits: bsdiff4 has inputs that run for hours."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """``work()`` running in a forked child while the caller does something else.

    The child inherits its inputs by fork (copy-on-write); only the result crosses back, through a file.
    Where fork does not exist, the work runs in place when the result is asked for, without a time limit.
    """

    def __init__(self, work: Callable[[], T], memory: int | None = None) -> None:
        self._work = work
        self._child = None
        if "fork" in multiprocessing.get_all_start_methods():
            fd, self._path = tempfile.mkstemp(prefix="pipdelta-diff-")
            os.close(fd)
            context = multiprocessing.get_context("fork")
            self._child = context.Process(target=_child, args=(work, self._path, memory), daemon=True)
            self._child.start()

    def result(self, seconds: float) -> T | None:
        """The result, or None if the work failed or was still running after ``seconds`` (it is then killed)."""
        child = self._child
        if child is None:
            return self._work()
        try:
            child.join(seconds)
            if child.is_alive():
                child.kill()
                child.join()
                return None
            if child.exitcode != 0:
                return None
            with open(self._path, "rb") as result:
                found: T = pickle.load(result)  # written by our own forked child just now
                return found
        finally:
            os.unlink(self._path)


def _child(work: Callable[[], object], path: str, memory: int | None) -> None:
    if memory is not None:
        _limit_memory(memory)
    data = work()
    with open(path, "wb") as out:
        pickle.dump(data, out, protocol=pickle.HIGHEST_PROTOCOL)


def _limit_memory(extra: int) -> None:
    """Let this process grow by at most ``extra`` bytes of address space (where the OS says how big it is)."""
    try:
        import resource

        with open("/proc/self/statm") as statm:
            size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + extra
    if hard == resource.RLIM_INFINITY or limit < hard:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
