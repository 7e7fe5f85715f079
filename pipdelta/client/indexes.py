"""Which indexes the user's installers use (pip's configuration, uv's variables), and pointing them elsewhere."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipdelta.client import pipconfig
from pipdelta.client.environment import Environment

PYPI = "https://pypi.org/simple/"


@dataclass(frozen=True)
class Indexes:
    """The index URLs in pip's order (the first is the primary); ``http(s)`` ones go through the local index."""

    urls: tuple[str, ...]

    @property
    def upstream(self) -> list[str]:
        return [u for u in self.urls if u.split(":", 1)[0].lower() in ("http", "https")]

    @property
    def local(self) -> list[str]:
        """``file:`` indexes: left to the installer, as ``find-links`` folders are."""
        return [u for u in self.urls if u not in self.upstream]


def from_pip(environment: Environment) -> Indexes:
    """``index-url`` and ``extra-index-url`` as the environment's ``pip install`` would use them."""
    chosen = pipconfig.options(environment.prefix()[0])
    primary = chosen.get("index-url") or PYPI
    return Indexes(_unique([primary, *chosen.get("extra-index-url", "").split()]))


def with_options(indexes: Indexes, options: Sequence[str]) -> tuple[Indexes, list[str]]:
    """``indexes`` as pip's own ``-i``/``--index-url`` and ``--extra-index-url`` among ``options`` set them, and
    the other options.

    Given on pipdelta's command line they replace the configured ones, as on pip's; the local index then
    stands in front of them, so they are not passed on to pip (it would go around the local index).
    """
    primary: str | None = None
    extras: list[str] = []
    rest: list[str] = []
    items = iter(options)
    for token in items:
        name, equals, value = token.partition("=")
        if token in ("-i", "--index-url", "--extra-index-url"):
            name, value = token, next(items, "")
        elif token.startswith("-i") and not token.startswith("--") and len(token) > 2:
            name, value = "-i", token[2:]
        elif not (equals and name in ("--index-url", "--extra-index-url")):
            rest.append(token)
            continue
        if name == "--extra-index-url":
            extras.append(value)
        else:
            primary = value
    if primary is None and not extras:
        return indexes, rest
    return Indexes(_unique([primary or indexes.urls[0], *(extras or indexes.urls[1:])])), rest


def with_uv(indexes: Indexes, environ: Mapping[str, str]) -> Indexes:
    """``indexes`` with uv's own index variables, when set, taking part too (uv's default index first)."""
    primary = environ.get("UV_DEFAULT_INDEX") or environ.get("UV_INDEX_URL")
    extras = [*environ.get("UV_INDEX", "").split(), *environ.get("UV_EXTRA_INDEX_URL", "").split()]
    extras = [item.split("=", 1)[1] if "=" in item.split("://", 1)[0] else item for item in extras]  # name=url
    return Indexes(_unique([*([primary] if primary else []), *indexes.urls, *extras]))


def installer_environment(urls: Sequence[str], local: Sequence[str]) -> dict[str, str]:
    """Variables that make pip, uv and pdm use ``urls`` (the first as their default index) and ``local`` too."""
    extras = " ".join([*urls[1:], *local])
    env = {"PIP_INDEX_URL": urls[0], "UV_DEFAULT_INDEX": urls[0], "UV_INDEX_URL": urls[0], "PDM_PYPI_URL": urls[0]}
    if extras:
        env.update(PIP_EXTRA_INDEX_URL=extras, UV_INDEX=extras, UV_EXTRA_INDEX_URL=extras)
    return env


def _unique(urls: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for url in urls:
        if url and url.rstrip("/") not in (u.rstrip("/") for u in seen):
            seen[url] = None
    return tuple(seen)
