"""pipdelta's wheel cache: verified wheels to patch from next time (``PIPDELTA_CACHE_DIR`` moves it, for CI)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from packaging.utils import InvalidWheelFilename, NormalizedName, parse_wheel_filename
from packaging.version import Version

from pipdelta.atomic import atomic_write
from pipdelta.client import locks
from pipdelta.errors import PipdeltaError


class CacheError(PipdeltaError):
    """The cache folder cannot be read or written."""


@dataclass(frozen=True)
class CachedWheel:
    """A wheel in the cache (its folder is named by its sha256, checked again whenever it is used)."""

    path: Path
    name: NormalizedName
    version: Version
    tags: frozenset[str]
    size: int


def default_dir(environ: Mapping[str, str] = os.environ) -> Path:
    override = environ.get("PIPDELTA_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("pipdelta"))


class Cache:
    """``DIR/wheels/<sha256>/<filename>``: content-addressed, so two indexes' files never collide."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.wheels = directory / "wheels"

    def __iter__(self) -> Iterator[CachedWheel]:
        if not self.wheels.is_dir():
            return
        for folder in sorted(self.wheels.iterdir()):
            for path in folder.glob("*.whl"):
                try:
                    name, version, _, tags = parse_wheel_filename(path.name)
                except InvalidWheelFilename:
                    continue
                size = path.stat().st_size
                yield CachedWheel(path, name, version, frozenset(map(str, tags)), size)

    def find(self, sha256: str) -> Path | None:
        """The cached wheel with this sha256, re-hashed (a cache restored by CI may hold anything)."""
        folder = self.wheels / sha256.lower()
        for path in folder.glob("*.whl") if folder.is_dir() else ():
            if sha256_of(path) == sha256.lower():
                return path
            path.unlink(missing_ok=True)  # damaged: never offer it again
        return None

    def older(self, name: NormalizedName, version: Version, tags: frozenset[str]) -> CachedWheel | None:
        """The newest cached wheel of ``name`` below ``version`` with the same tag set."""
        found = [w for w in self if w.name == name and w.version < version and w.tags == tags]
        return max(found, key=lambda w: w.version, default=None)

    def add(self, filename: str, data: bytes, sha256: str) -> Path:
        """Keep a verified wheel (written atomically, so readers need no lock: they see all of it or nothing)."""
        target = self.wheels / sha256.lower() / filename
        if not target.exists():
            try:
                with locks.cache(self.directory):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(target, [data])
            except OSError as exc:
                raise CacheError(f"cannot write to the pipdelta cache {self.directory}: {exc.strerror}") from None
        return target

    def keep(self, filename: str, path: str, sha256: str) -> Path:
        """Move the verified wheel at ``path`` (a file on the cache's own disk) into the cache."""
        target = self.wheels / sha256.lower() / filename
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        except OSError as exc:
            raise CacheError(f"cannot write to the pipdelta cache {self.directory}: {exc.strerror}") from None
        return target

    def prune(self, keep: int) -> list[CachedWheel]:
        """Remove all but the ``keep`` newest versions of each project and tag set; returns what went."""
        groups: dict[tuple[NormalizedName, frozenset[str]], list[CachedWheel]] = {}
        removed: list[CachedWheel] = []
        if not self.wheels.is_dir():
            return removed
        with locks.cache(self.directory):
            for wheel in self:
                groups.setdefault((wheel.name, wheel.tags), []).append(wheel)
            for wheels in groups.values():
                for wheel in sorted(wheels, key=lambda w: w.version, reverse=True)[keep:]:
                    shutil.rmtree(wheel.path.parent, ignore_errors=True)
                    removed.append(wheel)
        return removed


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
