"""Files written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path


def atomic_write(
    path: Path, chunks: Sequence[bytes | bytearray | memoryview], ready: Callable[[], None] | None = None
) -> None:
    """Write ``chunks`` as ``path``: whole or not at all. ``ready`` runs once they are written, before the file
    takes its name; if it raises, the file never does (a check that runs while the bytes are written)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        if ready is not None:
            ready()
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
