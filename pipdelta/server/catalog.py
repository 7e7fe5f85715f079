"""Where the server reads a project's wheels and deltas: the index folder, re-read when a file changes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

from packaging.utils import NormalizedName

from pipdelta.index import files
from pipdelta.index.model import DeltaEntry, IndexFormatError, ProjectIndex, WheelEntry


class Catalog(Protocol):
    """A project's part of the index, and a chance to make a missing delta before the answer."""

    root: Path

    def project(self, name: NormalizedName) -> ProjectIndex | None: ...

    def make(self, name: NormalizedName, old: WheelEntry, new: WheelEntry) -> DeltaEntry | None: ...

    def fill_size(self, wheel: WheelEntry) -> bool: ...

    def close(self) -> None: ...


class StaticCatalog:
    """A prebuilt index folder (``pipdelta index build``); it never makes deltas."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._cache: dict[NormalizedName, tuple[tuple[int, int], ProjectIndex]] = {}

    def project(self, name: NormalizedName) -> ProjectIndex | None:
        path = files.project_file(self.root, name)
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)  # the builder replaces files atomically: a new one is a new stamp
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            index = files.read_project(path)
        except IndexFormatError:
            return None
        with self._lock:
            self._cache[name] = (stamp, index)
        return index

    def make(self, name: NormalizedName, old: WheelEntry, new: WheelEntry) -> DeltaEntry | None:
        return None

    def fill_size(self, wheel: WheelEntry) -> bool:
        return False  # the builder always records sizes

    def close(self) -> None:
        """Nothing to release: the folder is read as requests come."""
