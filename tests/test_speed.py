"""The apply speed a client weighs patches with: estimated before any apply, then what applies measured."""

from __future__ import annotations

from pathlib import Path

from conftest import module_text
from wheelfactory import build_wheel

from pipdelta import WheelSource, apply_patch, make_patch
from pipdelta.apply import speed


def test_an_estimate_before_any_apply_then_the_measured_speed(tmp_path: Path) -> None:
    estimate = speed.speed("never-applied")
    assert estimate > 0 and speed.speed("never-applied", installed=True) < estimate
    old = build_wheel(tmp_path, "pkg", "1.0", {"pkg/a.py": module_text(1)})
    new = build_wheel(tmp_path, "pkg", "1.1", {"pkg/a.py": module_text(2)})
    make_patch(old, new, tmp_path / "p", differ="zstd")
    speed.record("zstd", False, 1, 1.0)
    out = tmp_path / "out"
    out.mkdir()
    apply_patch((tmp_path / "p").read_bytes(), WheelSource(old), out)
    measured = speed.speed("zstd")
    assert measured != 1e-6 and measured > 0
