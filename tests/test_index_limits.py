"""The builder against hostile uploads and a second builder: size limits per job, one builder per INDEX_DIR."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from mirrorfactory import release
from wheelfactory import Raw, build_raw_wheel, wheel_members

from pipdelta.cli import main
from pipdelta.index.builder import LOCK_FILE, build_index
from pipdelta.index.files import STATE_DIR, read_project
from pipdelta.index.jobs import make_delta
from pipdelta.locking import Busy, exclusive
from pipdelta.make.limits import SizeLimits

LINUX = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory from Linux's /proc")
ZEROS = 64 << 20  # a member of this many zeros deflates to about 64 KB


def _bomb(folder: Path, version: str) -> Path:
    """A wheel of about 65 KB whose one big member expands to 64 MiB of zeros (the issue's upload, scaled down)."""
    path = folder / f"bomb-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in wheel_members("bomb", version, {"bomb/__init__.py": b"v = 1\n"}).items():
            archive.writestr(name, content)
        with archive.open("bomb/huge.bin", "w") as member:
            for _ in range(ZEROS >> 20):
                member.write(bytes(1 << 20))
            member.write(version.encode())
    return path


def _mirror(folder: Path) -> Path:
    folder.mkdir()
    for version in ("1.0", "1.1"):
        _bomb(folder, version)
        release(folder, "demo", version)
    return folder


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ([], "more than the 17,"),  # the default: no client could rebuild a 65 KB wheel that expands 1,000x
        (["--max-member-size", "8M"], "over the limit of 8,388,608 per member"),
    ],
)
def test_a_small_pair_of_huge_members_is_skipped_before_inflating(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    options: list[str],
    reason: str,
) -> None:
    source, index = _mirror(tmp_path / "mirror"), tmp_path / "index"
    assert main(["index", "build", str(source), "-o", str(index), "-j", "1", "-q", *options]) == 0
    out = capsys.readouterr().out
    assert "1 deltas made" in out and "1 over the size limits, 0 failed" in out
    [warning] = [record.getMessage() for record in caplog.records]
    assert warning.startswith("skipped the delta bomb-1.0-py3-none-any.whl -> bomb-1.1-py3-none-any.whl: ")
    assert reason in warning
    assert read_project(index / "bomb" / "deltas.json").deltas == ()  # clients download bomb 1.1 in full
    assert len(read_project(index / "demo" / "deltas.json").deltas) == 1  # the other pair goes on


@LINUX
def test_refused_jobs_stay_small_and_the_total_limit_counts_both_wheels(tmp_path: Path) -> None:
    source, index = _mirror(tmp_path / "mirror"), tmp_path / "index"
    baseline = _resident()
    summary = build_index(source, index, jobs=1, limits=SizeLimits(member=8 << 20, total=8 << 20))
    refused = [result for name, _, result in summary.jobs if name.startswith("bomb")]
    # Nothing was inflated (main: 8 GB at 1 GiB)
    assert refused[0].refused and refused[0].peak_memory < baseline + ZEROS
    tight = build_index(source, tmp_path / "tight", jobs=1, limits=SizeLimits(total=50 << 10))
    assert (tight.made, tight.refused) == (0, 2)
    assert any("the limit per delta" in warning for warning in tight.warnings)
    assert build_index(source, tmp_path / "tight", jobs=1).made == 1  # refusals are not remembered


@LINUX
def test_a_member_that_expands_past_its_declared_size_fails_without_inflating_it(tmp_path: Path) -> None:
    files = {"bomb/__init__.py": b"v = 1\n", "bomb/data.bin": bytes(1000)}
    old = build_raw_wheel(tmp_path, "bomb-1.0-py3-none-any.whl", {n: Raw(c) for n, c in files.items()})
    lying = {n: Raw(c) for n, c in wheel_members("bomb", "1.1", files).items()}
    # The headers declare 1,000 bytes; the deflate stream holds 64 MiB of zeros.
    lying["bomb/data.bin"] = Raw(bytes(1000), lambda _: zlib.compress(bytes(ZEROS))[2:-4])
    new = build_raw_wheel(tmp_path, "bomb-1.1-py3-none-any.whl", lying)
    baseline = _resident()
    with concurrent.futures.ProcessPoolExecutor(1) as pool:  # a fresh worker, so its peak is this job's
        result = pool.submit(make_delta, old, new, tmp_path / "p.pdelta", 0.5).result()
    assert result.failed and "does not match its size and CRC" in (result.reason or "")
    assert result.peak_memory < baseline + ZEROS


def test_a_second_builder_on_one_index_dir_says_who_holds_it_and_deletes_nothing(tmp_path: Path) -> None:
    source, index = tmp_path / "mirror", tmp_path / "index"
    source.mkdir()
    for minor in range(12):
        release(source, "many", f"1.{minor}")
    command = [sys.executable, "-m", "pipdelta", "index", "build", str(source), "-o", str(index), "-j", "1", "-q"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while first.poll() is None and not list(index.glob("many/patches/*")) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert first.poll() is None  # mid-build: its patches (and temporary files) are being written
    with pytest.raises(Busy, match=rf"another pipdelta \(pid {first.pid}\) is using the delta index {index}"):
        build_index(source, index, jobs=1, lock_wait=0)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0 and not err
    assert "30 deltas made" in out and "0 failed" in out
    assert len(read_project(index / "many" / "deltas.json").deltas) == 30


def test_the_command_line_waits_briefly_then_reports_the_holder_in_one_line(tmp_path: Path) -> None:
    source, index = tmp_path / "mirror", tmp_path / "index"
    source.mkdir()
    release(source, "demo", "1.0")
    command = [sys.executable, "-m", "pipdelta", "index", "build", str(source), "-o", str(index), "-q"]
    with exclusive(index / STATE_DIR / LOCK_FILE, wait=0, what="held by this test"):
        started = time.monotonic()
        second = subprocess.run(command, capture_output=True, text=True, timeout=60)
        waited = time.monotonic() - started
    assert second.returncode == 75 and waited >= 2
    assert second.stderr.count("\n") == 1
    assert f"another pipdelta (pid {os.getpid()}) is using the delta index {index}" in second.stderr
    assert not (index / "index.json").exists()
    assert subprocess.run(command, capture_output=True, timeout=60).returncode == 0  # released: runs


def _resident() -> int:
    """This process's resident bytes now: what a worker forked from it starts with, before any job's work."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
