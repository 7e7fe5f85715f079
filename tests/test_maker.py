"""The maker's safety nets: bsdiff4 runs under a time limit, and zstd takes over when it runs out."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import module_text
from wheelfactory import build_wheel

from pipdelta.make import maker
from pipdelta.make.bounded import Background
from pipdelta.make.maker import make_patch


def test_background_returns_the_result() -> None:
    assert Background(lambda: b"done").result(30) == b"done"


def test_background_gives_up_on_work_that_runs_too_long() -> None:
    def forever() -> bytes:
        time.sleep(60)
        return b"never"

    started = time.monotonic()
    assert Background(forever).result(0.5) is None
    assert time.monotonic() - started < 30


def test_background_reports_failure_as_none() -> None:
    def broken() -> bytes:
        raise MemoryError("bsdiff4 ran out of memory")

    assert Background(broken).result(30) is None


def test_background_enforces_its_memory_limit() -> None:
    assert Background(lambda: bytes(1 << 30), memory=64 << 20).result(60) is None
    assert Background(lambda: bytes(1 << 20), memory=64 << 20).result(60) == bytes(1 << 20)


def test_zstd_takes_over_when_bsdiff_runs_out_of_time(tmp_path: Path, roundtrip, monkeypatch) -> None:
    monkeypatch.setattr(maker, "ZSTD_AUTO_LIMIT", 0)  # as for a large wheel: zstd is not tried up front
    old = build_wheel(tmp_path, "pkg", "1.0", {"pkg/a.py": module_text(1, 3000)})
    new = build_wheel(tmp_path, "pkg", "1.1", {"pkg/a.py": module_text(2, 3000)})
    assert make_patch(old, new, tmp_path / "p").differ == "bsdiff4"
    assert make_patch(old, new, tmp_path / "p", bsdiff_seconds=0).differ == "zstd"
    roundtrip(old, new, bsdiff_seconds=0)
