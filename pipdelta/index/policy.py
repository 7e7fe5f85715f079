"""The server's target-version policy: the latest version by default; per project a pin, a hold or a maximum."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from pipdelta.errors import PipdeltaError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class PolicyError(PipdeltaError, ValueError):
    """A target policy file is not valid TOML of the documented shape."""


@dataclass(frozen=True)
class Rule:
    """One project's policy: ``pin`` (always this version), ``hold`` (offer nothing) or ``maximum``."""

    pin: Version | None = None
    hold: bool = False
    maximum: SpecifierSet = field(default_factory=SpecifierSet)

    def allows(self, version: Version) -> bool:
        if self.hold:
            return False
        if self.pin is not None:
            return version == self.pin
        return self.maximum.contains(version, prereleases=True)

    def refusal(self, version: Version) -> str:
        """Why ``version`` is past this rule, for a ``refused`` answer."""
        if self.hold:
            return "held by the server's policy"
        if self.pin is not None:
            return f"pinned to {self.pin} by the server's policy"
        return f"above the server's maximum ({self.maximum})"


@dataclass(frozen=True)
class Policy:
    """Rules by normalized project name; projects without one get the default, the latest final release."""

    projects: Mapping[NormalizedName, Rule] = field(default_factory=dict)

    def rule(self, name: NormalizedName) -> Rule:
        return self.projects.get(name, Rule())

    def current(self, warn: Callable[[str], None]) -> Policy:
        """The policy in force: this one (a :class:`PolicyFile` may have been edited since)."""
        return self

    @classmethod
    def load(cls, path: Path) -> Policy:
        try:
            return cls.parse(path.read_text(encoding="utf-8"), str(path))
        except OSError as exc:
            raise PolicyError(f"cannot read target policy {path}: {exc.strerror}") from None

    @classmethod
    def parse(cls, text: str, where: str = "target policy") -> Policy:
        try:
            obj = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{where} is not valid TOML: {exc}") from None
        _only(obj, {"default", "projects"}, where)
        default = _table(obj, "default", where)
        _only(default, {"policy"}, f"{where} [default]")
        if default.get("policy", "latest") != "latest":
            raise PolicyError(f'{where}: [default] policy must be "latest", not {default["policy"]!r}')
        rules = {}
        for name, table in _table(obj, "projects", where).items():
            if not isinstance(table, dict):
                raise PolicyError(f"{where}: [projects.{name}] must be a table")
            rules[canonicalize_name(name)] = _rule(table, f"{where} [projects.{name}]")
        return cls(rules)


class PolicyFile:
    """``--targets FILE``, read again when it changes: a fleet's policy is edited without a restart.

    An edit that is not a valid policy is reported through ``warn`` (once) and the last valid policy stays
    in force, so a typo never opens every project to the latest version.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp = _stamp(path)
        self._policy = Policy.load(path)

    def current(self, warn: Callable[[str], None]) -> Policy:
        stamp = _stamp(self.path)
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._policy = Policy.load(self.path)
                except PolicyError as exc:
                    warn(f"{exc}; the previous policy stays in force")
            return self._policy


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _rule(table: dict[str, Any], where: str) -> Rule:
    _only(table, {"pin", "hold", "max"}, where)
    if len(table) != 1:
        raise PolicyError(f"{where}: give exactly one of pin, hold or max")
    if "hold" in table:
        if table["hold"] is not True:
            raise PolicyError(f"{where}: hold must be true (remove the table to lift the hold)")
        return Rule(hold=True)
    if "pin" in table:
        try:
            return Rule(pin=Version(str(table["pin"])))
        except InvalidVersion:
            raise PolicyError(f"{where}: pin {table['pin']!r} is not a version") from None
    return Rule(maximum=maximum(str(table["max"]), where))


def maximum(text: str, where: str = "max") -> SpecifierSet:
    """``"2.0.*"`` (nothing past 2.0.x), ``"2.1"`` (up to 2.1) or a specifier set such as ``"<2.1"``."""
    text = text.strip()
    try:
        if text[:1] in "<>=!~":
            return SpecifierSet(text)
        wildcard = re.fullmatch(r"(\d+(?:\.\d+)*)\.\*", text)
        if wildcard:
            parts = [int(p) for p in wildcard[1].split(".")]
            parts[-1] += 1
            return SpecifierSet("<" + ".".join(map(str, parts)))
        return SpecifierSet(f"<={Version(text)}")
    except (InvalidSpecifier, InvalidVersion):
        raise PolicyError(f"{where}: {text!r} is neither a version, a wildcard like 2.0.* nor a specifier") from None


def _table(obj: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = obj.get(key, {})
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: {key} must be a table")
    return value


def _only(obj: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = set(obj) - keys
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(keys))})")
