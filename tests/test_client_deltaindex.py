"""The client's reading of query answers: statuses explained, unsafe paths refused before any download."""

from __future__ import annotations

from typing import Any

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from pipdelta.client.deltaindex import Answer, Goal, Offer, Start, _checked, _offer
from pipdelta.format.patchfile import VERSION
from pipdelta.index.model import DeltaEntry, WheelEntry

START = Start(canonicalize_name("rich"), Version("1.0"), ("py3-none-any",))


def wheel(version: str, sha: str, size: int = 1000) -> WheelEntry:
    return WheelEntry(f"rich-{version}-py3-none-any.whl", sha, size)


def delta(old: WheelEntry, new: WheelEntry, size: int = 100, version: int = VERSION) -> DeltaEntry:
    return DeltaEntry(old, new, f"http://127.0.0.1/{old.sha256}-{new.sha256}.pdelta", size, "p" * 64, version, ())


V1, V2, V3, V4, V5 = (wheel(f"{i}.0", str(i) * 64) for i in range(1, 6))


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"status": "up-to-date", "version": "1.0"}, "policy keeps the installed version"),
        ({"status": "held"}, "policy holds this project"),
        ({"status": "unknown"}, "no wheels of this project with these tags"),
        ({"status": "refused", "reason": "pinned to 1.5"}, "refuses this version (pinned to 1.5)"),
        ({"status": "sideways"}, "answered status 'sideways'"),
        (None, "did not answer for this project"),
    ],
)
def test_every_status_but_upgrade_is_a_full_download_with_its_reason(answer: Any, reason: str) -> None:
    offer = _offer(Answer.from_json(answer))
    assert offer.patches == () and reason in offer.reason


def test_a_full_path_keeps_the_wheel_size() -> None:
    offer = _offer(Answer.from_json({"status": "upgrade", "to": V2.to_json(), "path": "full", "patches": []}))
    assert offer == Offer(full_size=1000, reason="no patch path is smaller than the wheel")


@pytest.mark.parametrize(
    ("patches", "goal", "problem"),
    [
        ((delta(V1, V2), delta(V2, V3), delta(V3, V4), delta(V4, V5)), V5, "a chain of 4 patches"),
        ((delta(V1, V2, size=1000),), V2, "patches no smaller than the wheel"),
        ((delta(V2, V3),), V3, "a path from rich-2.0-py3-none-any.whl"),
        ((delta(V1, V2),), V3, "a path to another wheel than the one pip chose"),
        ((delta(V1, V2), delta(V3, V4)), V4, "a broken chain"),
        ((delta(V1, V2, version=1),), V2, "patches of format 1 (this pipdelta reads format 2"),
    ],
)
def test_unsafe_paths_are_refused(patches: tuple[DeltaEntry, ...], goal: WheelEntry, problem: str) -> None:
    checked = _checked(Offer(patches, 1000), START, Goal(Version("5.0"), goal.sha256))
    assert checked.patches == () and problem in checked.reason


def test_a_sound_chain_is_kept() -> None:
    offer = Offer((delta(V1, V2), delta(V2, V3)), 1000)
    assert _checked(offer, START, Goal(Version("3.0"), V3.sha256)) is offer


def test_a_start_with_other_tags_is_refused() -> None:
    linux = Start(canonicalize_name("rich"), Version("1.0"), ("cp311-cp311-manylinux_2_17_x86_64",))
    checked = _checked(Offer((delta(V1, V2),), 1000), linux, Goal(Version("2.0"), V2.sha256))
    assert "not from the installed version" in checked.reason
