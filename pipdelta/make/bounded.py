"""Run a differ in a forked child with a time limit: bsdiff4 has inputs that run for hours."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Callable


def run_with_timeout(work: Callable[[], bytes], seconds: float) -> bytes | None:
    """``work()``'s result, or None if it ran out of time or failed; without fork, run it in place."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return work()
    context = multiprocessing.get_context("fork")
    fd, path = tempfile.mkstemp(prefix="pipdelta-diff-")
    os.close(fd)
    try:
        child = context.Process(target=_child, args=(work, path), daemon=True)
        child.start()
        child.join(seconds)
        if child.is_alive():
            child.kill()
            child.join()
            return None
        if child.exitcode != 0:
            return None
        with open(path, "rb") as result:
            return result.read()
    finally:
        os.unlink(path)


def _child(work: Callable[[], bytes], path: str) -> None:
    # The child inherits the blobs by fork (copy-on-write); only the result crosses back, through a file.
    data = work()
    with open(path, "wb") as out:
        out.write(data)
