"""What pip is asked for under the server's policy: the targets, and the installed projects pinned beside them."""

from __future__ import annotations

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from pipdelta.client.deltaindex import Answer
from pipdelta.client.environment import Installed
from pipdelta.client.targets import Row, Survey
from pipdelta.errors import UsageError
from pipdelta.index.model import WheelEntry


def row(name: str, version: str, status: str, target: str | None = None, requires: tuple[str, ...] = ()) -> Row:
    wheel = WheelEntry(f"{name}-{target}-py3-none-any.whl", "0" * 64, 1000) if target else None
    installed = Installed(canonicalize_name(name), Version(version), ("py3-none-any",), None, requires)
    return Row(installed, Answer(status, wheel))


SURVEY = Survey(
    {
        r.installed.name: r
        for r in (
            row("app", "1.0", "up-to-date", requires=("lib>=1", "other; extra == 'x'")),  # depends on lib
            row("lib", "1.0", "upgrade", "2.0", requires=("base<3",)),  # due; depends on base
            row("base", "2.0", "unknown"),
            row("frozen", "0.5", "held"),
            row("loner", "1.0", "up-to-date"),
            row("tool", "3.0", "upgrade", "3.1"),
        )
    },
    server=True,
)


def test_targets_come_with_their_neighbours_and_the_held_pinned() -> None:
    assert SURVEY.due() == {"lib": Version("2.0"), "tool": Version("3.1")}
    assert SURVEY.requirements(SURVEY.due()) == ["app==1.0", "base==2.0", "frozen==0.5", "lib==2.0", "tool==3.1"]
    assert SURVEY.requirements(SURVEY.due(["tool"])) == ["frozen==0.5", "tool==3.1"]
    assert [r.installed.name for r in SURVEY.left_alone()] == ["frozen"]


@pytest.mark.parametrize(
    ("packages", "message"),
    [
        (["lib>=2"], "give project names only, or --policy pip"),
        (["lib[extra]"], "give project names only, or --policy pip"),
        (["not a name"], "give project names only, or --policy pip"),
        (["absent"], "absent is not installed"),
    ],
)
def test_only_installed_project_names_follow_the_server(packages: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        SURVEY.select(packages)


def test_names_are_normalized() -> None:
    assert SURVEY.select(["Tool", "LIB"]) == ["tool", "lib"]
