"""``pipdelta demo --offline``: the README's first command, on wheels it builds itself, end to end."""

from __future__ import annotations

import pytest

from pipdelta.cli import main


def test_the_demo_upgrades_through_a_patch(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one table row per package
    assert main(["demo", "--offline"]) == 0
    out, _ = capfd.readouterr()
    assert "pipdelta-demo 1.0 and 1.1 (home-made)" in out
    assert "1 patched, 0 full" in out and "delta" in out
    assert "pipdelta-demo 1.1 is installed" in out and "pip check is clean" in out
