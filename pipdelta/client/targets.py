"""The delta index's policy applied to an environment: each installed project's status, and pip's requirements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from pipdelta.client.config import Settings
from pipdelta.client.deltaindex import Answer, DeltaIndex, Start
from pipdelta.client.environment import Environment, Installed
from pipdelta.client.http import Http
from pipdelta.errors import UsageError

UPGRADE, HELD, REFUSED = "upgrade", "held", "refused"


@dataclass(frozen=True)
class Row:
    """One installed project and what the index's policy says of it."""

    installed: Installed
    answer: Answer

    @property
    def target(self) -> Version | None:
        """The version the policy wants installed, when it is not the installed one."""
        target = self.answer.target
        return target.key.version if self.answer.status == UPGRADE and target is not None else None


@dataclass(frozen=True)
class Survey:
    """Every installed project under the index's policy; ``server`` is False for a static index (latest)."""

    rows: Mapping[NormalizedName, Row]
    server: bool

    def select(self, packages: Iterable[str]) -> list[NormalizedName]:
        """The installed projects named on the command line; UsageError for anything but their bare names."""
        names = []
        for text in packages:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                requirement = None
            if requirement is None or str(requirement) != requirement.name:
                raise UsageError(
                    f"{text!r}: the server's policy sets versions; give project names only, or --policy pip"
                )
            name = canonicalize_name(requirement.name)
            if name not in self.rows:
                raise UsageError(f"{text} is not installed: --policy server upgrades installed projects only")
            names.append(name)
        return names

    def due(self, names: Iterable[NormalizedName] | None = None) -> dict[NormalizedName, Version]:
        """The target of each project (of ``names``, or all) that the policy wants upgraded."""
        chosen = self.rows if names is None else {n: self.rows[n] for n in names}
        return {name: row.target for name, row in chosen.items() if row.target is not None}

    def left_alone(self, names: Iterable[NormalizedName] | None = None) -> list[Row]:
        """The held and refused projects (of ``names``, or all): the policy keeps them where they are."""
        chosen = self.rows.values() if names is None else [self.rows[n] for n in names]
        return [row for row in chosen if row.answer.status in (HELD, REFUSED)]

    def requirements(self, due: Mapping[NormalizedName, Version]) -> list[str]:
        """``name==target`` for ``due``, and ``name==installed`` for the projects that must not move with them.

        pip's resolver only checks the projects it is asked about: the installed projects that depend on
        a due one, or that one depends on, are pinned where they are (so that a target breaking them
        makes pip refuse the whole run instead of installing half of it), and so are held and refused ones.
        """
        pinned = {row.installed.name for row in self.left_alone()}
        for name, row in self.rows.items():
            needs = _names(row.installed.requires)
            if name in due:
                pinned |= needs
            elif needs & due.keys():
                pinned.add(name)
        pins = {name: self.rows[name].installed.version for name in pinned - due.keys() if name in self.rows}
        return [f"{name}=={version}" for name, version in sorted({**pins, **due}.items())]


def survey(environment: Environment, settings: Settings) -> Survey:
    """Ask the delta index about every distribution installed from a wheel (no ``want``: its policy decides)."""
    assert settings.index_url is not None
    installed = environment.installed()
    rows: dict[NormalizedName, Row] = {}
    starts = []
    for item in installed.values():
        start = Start(item.name, item.version, item.tags, item.build)
        try:
            usable = bool(item.tags) and bool(start.key.tags)
        except ValueError:
            usable = False
        if usable:
            starts.append(start)
        else:
            rows[item.name] = Row(item, Answer("unknown", reason="not installed from a wheel with readable tags"))
    http = Http(timeout=settings.timeout, retries=settings.retries)
    answers, server = DeltaIndex(settings.index_url, http).survey(starts, settings.jobs)
    for start in starts:
        rows[start.name] = Row(installed[start.name], answers.get(start.name) or Answer(""))
    return Survey(dict(sorted(rows.items())), server)


def _names(requires: Iterable[str]) -> set[NormalizedName]:
    out = set()
    for line in requires:
        try:
            out.add(canonicalize_name(Requirement(line).name))
        except InvalidRequirement:
            continue  # pip will not honour it either
    return out
