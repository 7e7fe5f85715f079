"""A wheel an upstream page lists, as the local index knows it."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import NormalizedName, parse_wheel_filename
from packaging.version import Version


@dataclass(frozen=True)
class Target:
    """A wheel an upstream page lists: where it is, and the sha256 and size the page gives (if any)."""

    index: int  # which upstream
    url: str
    filename: str
    sha256: str | None
    size: int | None

    @property
    def name(self) -> NormalizedName:
        return parse_wheel_filename(self.filename)[0]

    @property
    def version(self) -> Version:
        return parse_wheel_filename(self.filename)[1]

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(map(str, parse_wheel_filename(self.filename)[3]))
