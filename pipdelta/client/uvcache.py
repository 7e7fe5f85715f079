"""uv's cache as a source of old wheels: its unpacked wheels (``archive-v*/<id>/``) keep the wheel's own RECORD."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from pipdelta.apply.installed import InstalledDistribution

_DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)\.dist-info$")


@dataclass(frozen=True)
class Archive:
    """One unpacked wheel in uv's cache: its project, version and ``.dist-info`` folder."""

    name: NormalizedName
    version: Version
    dist_info: Path

    def distribution(self) -> InstalledDistribution:
        """The unpacked wheel read like installed files: every scheme folder is the archive's own folder.

        The installed-files checks then confine every read to the archive: regular files only, of
        RECORD's size and sha256, nothing a RECORD row leads outside it.
        """
        root = self.dist_info.parent
        data = root / f"{self.dist_info.name[: -len('.dist-info')]}.data"
        scheme = {key: data / key for key in ("scripts", "data", "headers")}
        scheme.update(purelib=root, platlib=root)
        return InstalledDistribution(self.name, str(self.version), self.dist_info, scheme)


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """uv's cache folder as uv would use it (``UV_CACHE_DIR``, ``uv cache dir``, the platform's), or None.

    None when uv's cache is off (``UV_NO_CACHE``) or the folder does not exist.
    """
    if environ.get("UV_NO_CACHE", "").lower() in ("1", "true", "yes", "on"):
        return None
    chosen = environ.get("UV_CACHE_DIR")
    uv = shutil.which("uv", path=environ.get("PATH"))
    if not chosen and uv is not None:
        try:
            result = subprocess.run(
                [uv, "cache", "dir"], capture_output=True, text=True, timeout=30, env=dict(environ), check=False
            )
            chosen = result.stdout.strip() if result.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired):
            chosen = None
    path = Path(chosen).expanduser() if chosen else _platform_dir(environ)
    return path if path.is_dir() else None


def _platform_dir(environ: Mapping[str, str]) -> Path:
    """Where uv keeps its cache when nothing says otherwise (``~/.cache/uv`` on macOS too, as uv does)."""
    if os.name == "nt":
        return Path(environ.get("LOCALAPPDATA", "~/AppData/Local"), "uv", "cache").expanduser()
    return Path(environ.get("XDG_CACHE_HOME") or "~/.cache", "uv").expanduser()


def archives(cache: Path) -> Iterator[Archive]:
    """Every unpacked wheel in ``cache``: real folders directly under ``archive-v*/``, one ``.dist-info`` each."""
    for bucket in _folders(cache, lambda name: name.startswith("archive-v")):
        for entry in _folders(bucket, lambda name: not name.startswith(".")):
            for dist_info in _folders(entry, lambda name: name.endswith(".dist-info")):
                match = _DIST_INFO.match(dist_info.name)
                if match is None:
                    continue
                try:
                    version = Version(match["version"])
                except InvalidVersion:
                    continue
                yield Archive(canonicalize_name(match["name"]), version, dist_info)


def _folders(parent: Path, wanted: Callable[[str], bool]) -> Iterator[Path]:
    """The folders in ``parent`` (never a symlink: nothing leads out of the cache) whose names are ``wanted``."""
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        if wanted(entry.name) and entry.is_dir(follow_symlinks=False):
            yield Path(entry.path)
