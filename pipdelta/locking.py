"""An exclusive lock on a file that says who holds it: one pipdelta at a time on a folder."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipdelta.errors import PipdeltaError

#: how often a waiting process tries the lock again
POLL_SECONDS = 0.1
#: Windows locks are mandatory: the byte locked lies past the pid, so a waiting process can still read the pid
_WINDOWS_LOCKED_BYTE = 64


class Busy(PipdeltaError):
    """Another pipdelta holds the lock on what this run needs; it may be tried again when that one is done."""

    #: EX_TEMPFAIL: a temporary failure, the same command may succeed later
    exit_status = 75


@contextmanager
def exclusive(path: Path, *, wait: float, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created, never deleted), waiting up to ``wait`` seconds for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise Busy(f"another pipdelta{_holder(fd)} is using {what}; try again when it has finished")
            time.sleep(POLL_SECONDS)
        try:
            _record_pid(fd)
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


def _record_pid(fd: int) -> None:
    """Write this process's pid as the lock file's only line, for a waiting process to name."""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{os.getpid()}\n".encode())


def _holder(fd: int) -> str:
    """`` (pid N)`` naming the process that wrote its pid into the lock file, or nothing if unreadable."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode("ascii", "replace").strip()
    return f" (pid {text})" if text.isdigit() else ""


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        """Take the lock without waiting; False if another process holds it."""
        os.lseek(fd, _WINDOWS_LOCKED_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        """Release the lock taken by ``_try_lock``."""
        os.lseek(fd, _WINDOWS_LOCKED_BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        """Take the lock without waiting; False if another process (or open file) holds it."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        """Release the lock taken by ``_try_lock``."""
        fcntl.flock(fd, fcntl.LOCK_UN)
