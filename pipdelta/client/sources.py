"""Where the old bytes come from on this machine, checked *before* a patch is downloaded."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from packaging.utils import NormalizedName, parse_wheel_filename

from pipdelta.apply.installed import InstalledDistribution
from pipdelta.apply.sources import InstalledSource, OldContent, WheelSource
from pipdelta.client import pipcache
from pipdelta.client.cache import Cache
from pipdelta.client.deltaindex import Start
from pipdelta.client.environment import Environment, Installed
from pipdelta.client.plan import Planned
from pipdelta.engines import fingerprint
from pipdelta.engines.recipes import Recipe
from pipdelta.errors import EngineMismatch, PatchFormatError, SourceMismatch
from pipdelta.index.model import DeltaEntry


class LocalSources:
    """The old versions at hand: pipdelta's cache, pip's HTTP cache, then the installed files."""

    def __init__(
        self,
        environment: Environment,
        cache: Cache,
        installed: Mapping[NormalizedName, Installed],
        pip_cache: Path | None,
    ) -> None:
        self.environment = environment
        self.cache = cache
        self.installed = installed
        self.pip_cache = pip_cache  # ``pip cache dir``, None when pip's cache is off

    def start(self, planned: Planned) -> Start | None:
        """The version a patch path can start from: the installed one if older, else the newest cached one."""
        here = self.installed.get(planned.name)
        if here is not None:
            if here.version >= planned.version or not here.tags:
                return None  # not an upgrade (or not installed from a wheel): nothing to patch from
            return Start(planned.name, here.version, here.tags, here.build)
        _, _, _, tags = parse_wheel_filename(planned.filename)
        cached = self.cache.older(planned.name, planned.version, frozenset(map(str, tags)))
        if cached is None:
            return None
        return Start(planned.name, cached.version, (), filename=cached.path.name)

    def open(self, start: Start, first: DeltaEntry) -> tuple[OldContent, str]:
        """The checked source for ``first`` and what it is; SourceMismatch/EngineMismatch when there is none.

        An old wheel first, from pipdelta's cache or pip's (unchanged members are then copied, with no
        engine involved: much faster for big wheels), else the installed files if they are intact and
        this machine's engines reproduce the patch's.
        """
        old = first.old
        cached = self.cache.find(old.sha256)
        if cached is not None:
            return WheelSource(cached), "cached wheel"
        data = self.pip_wheel(old.size, old.sha256)
        if data is not None:
            return WheelSource(self.cache.add(old.filename, data, old.sha256)), "pip's cache"
        if start.filename is not None:
            raise SourceMismatch(f"the cached {start.filename} is not the wheel the patch starts from")
        return self._installed(start, first), "installed files"

    def _installed(self, start: Start, first: DeltaEntry) -> InstalledSource:
        distribution = InstalledDistribution.find(start.name, self.environment.python)
        distribution.check_version(first.old.filename)
        distribution.check_files()
        try:
            recipes = [Recipe.parse(text) for text in first.engines]
        except PatchFormatError as exc:
            raise EngineMismatch(f"the delta index names an unknown deflate engine ({exc})") from None
        fingerprint.check(recipes)
        return InstalledSource(distribution)

    def pip_wheel(self, size: int, sha256: str) -> bytes | None:
        """A wheel pip downloaded and cached, by its size and sha256."""
        return None if self.pip_cache is None else pipcache.find_wheel(self.pip_cache, size, sha256)
