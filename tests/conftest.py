"""Shared fixtures: sample package contents and helpers that make and apply patches on real files."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from pipdelta import WheelSource, apply_patch, make_patch


def module_text(seed: int, lines: int = 400) -> bytes:
    """Python-looking source that changes a little with ``seed``."""
    rng = random.Random(seed)
    words = ["value", "result", "self", "return", "config", "items", "name", "path", "data", "index"]
    out = [f"def function_{i}({rng.choice(words)}, {rng.choice(words)}):\n" for i in range(lines)]
    return "".join(line + f"    return {rng.randint(0, 9)}\n" for line in out).encode()


@pytest.fixture
def roundtrip(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Make a patch from ``old`` to ``new``, apply it from the old wheel, and check the bytes."""

    def run(old: Path, new: Path, **options: object) -> int:
        patch = tmp_path / "out.pdelta"
        report = make_patch(old, new, patch, **options)  # type: ignore[arg-type]
        out = tmp_path / "rebuilt"
        out.mkdir(exist_ok=True)
        rebuilt = apply_patch(patch.read_bytes(), WheelSource(old), out)
        assert rebuilt.read_bytes() == new.read_bytes()
        assert report.patch_size == patch.stat().st_size
        return report.patch_size

    return run


@pytest.fixture
def corpus() -> Path:
    path = Path(os.environ.get("PIPDELTA_CORPUS", Path.home() / ".cache" / "pipdelta-corpus"))
    if not any(path.glob("*.whl")):
        pytest.skip("corpus not fetched (../shared/corpus/fetch.sh)")
    return path
