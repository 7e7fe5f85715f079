"""Static files of the index folder, with no way out of it: no dot names, no escaping symlinks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipdelta.index.model import CONTENT_TYPE

TYPES = {".json": CONTENT_TYPE, ".pdelta": "application/octet-stream"}


@dataclass(frozen=True)
class StaticFile:
    """A file that may be served, with the headers that describe it."""

    path: Path
    size: int
    etag: str
    content_type: str


def resolve(root: Path, path_info: str) -> StaticFile | None:
    """The file ``path_info`` names under ``root``, or None (served as 404) for anything else.

    WSGI servers hand over ``PATH_INFO`` percent-decoded, so ``%2e%2e`` arrives here as ``..``.
    """
    parts = [part for part in path_info.split("/") if part]
    if not parts or any(_unsafe(part) for part in parts):
        return None
    base = root.resolve()
    try:
        real = base.joinpath(*parts).resolve(strict=True)
        if not real.is_relative_to(base) or not real.is_file():
            return None
        stat = real.stat()
    except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, an embedded NUL
        return None
    content_type = TYPES.get(real.suffix, "application/octet-stream")
    return StaticFile(real, stat.st_size, f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"', content_type)


def _unsafe(part: str) -> bool:
    # Dot names are the builder's state and temporary files, and "." and ".."; a backslash or a colon
    # would be a separator or a drive on Windows.
    return part.startswith(".") or any(c in part for c in "\\:\x00")
