"""Run a differ in a forked child with a time limit: bsdiff4 has inputs that run for hours."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Callable


class Background:
    """``work()`` running in a forked child while the caller does something else.

    The child inherits its inputs by fork (copy-on-write); only the result crosses back, through a file.
    Where fork does not exist, the work runs in place when the result is asked for, without a time limit.
    """

    def __init__(self, work: Callable[[], bytes]) -> None:
        self._work = work
        self._child = None
        if "fork" in multiprocessing.get_all_start_methods():
            fd, self._path = tempfile.mkstemp(prefix="pipdelta-diff-")
            os.close(fd)
            context = multiprocessing.get_context("fork")
            self._child = context.Process(target=_child, args=(work, self._path), daemon=True)
            self._child.start()

    def result(self, seconds: float) -> bytes | None:
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
                return result.read()
        finally:
            os.unlink(self._path)


def _child(work: Callable[[], bytes], path: str) -> None:
    data = work()
    with open(path, "wb") as out:
        out.write(data)
