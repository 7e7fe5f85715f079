"""The rebuild cost a client weighs patches with: estimated before any rebuild, then what rebuilds measured."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import module_text
from wheelfactory import build_wheel

from pipdelta import WheelSource, apply_patch, make_patch
from pipdelta.apply import speed


def test_an_estimate_before_any_rebuild_then_the_measured_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speed, "_measured", {})
    estimate = speed.cpu_seconds(1_000_000)
    assert 0 < estimate < 10 and speed.cpu_seconds(2_000_000) == pytest.approx(2 * estimate)
    data = random.Random(7).randbytes(3_200_000)  # over 3 MB of content to deflate: a rebuild that measures
    old = build_wheel(tmp_path, "pkg", "1.0", {"pkg/a.py": module_text(1), "pkg/blob.bin": data})
    new = build_wheel(tmp_path, "pkg", "1.1", {"pkg/a.py": module_text(2), "pkg/blob.bin": data[:-9] + b"different"})
    make_patch(old, new, tmp_path / "p", differ="zstd")
    monkeypatch.setattr(speed, "_measured", {})
    out = tmp_path / "out"
    out.mkdir()
    apply_patch((tmp_path / "p").read_bytes(), WheelSource(old), out)
    assert set(speed._measured) == {False}  # an old wheel's rebuild: its CPU seconds per content byte
    speed.record(True, 1000, 5.0)  # a small rebuild is mostly fixed cost: not a measure
    assert True not in speed._measured
    assert speed.cpu_seconds(1_000_000) >= estimate  # never cheaper than the deflate calibration
    speed.record(True, 4_000_000, 40.0)  # rebuilds from installed files measured at 10 s per MB of content
    assert speed.cpu_seconds(1_000_000, installed=True) == pytest.approx(10.0)  # dearer than the calibration
    assert speed.cpu_seconds(1_000_000) == pytest.approx(max(estimate, speed._measured[False] * 1e6))
