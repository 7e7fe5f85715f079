"""The index builder on real wheels: layout, pins, incremental and resumed runs, corrupt input, executors."""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mirrorfactory import mirror, release, unrelated

from pipdelta import WheelSource, apply_patch
from pipdelta.format.patchfile import VERSION
from pipdelta.index.builder import build_index
from pipdelta.index.files import read_project
from pipdelta.index.jobs import inspect
from pipdelta.index.model import ProjectIndex


def _deltas(index: Path, project: str) -> ProjectIndex:
    return read_project(index / project / "deltas.json")


def _pairs(project: ProjectIndex) -> set[tuple[str, str]]:
    return {(d.old.filename, d.new.filename) for d in project.deltas}


def test_build_lays_out_pinned_patches_that_rebuild_their_targets(tmp_path: Path) -> None:
    source, index = mirror(tmp_path / "mirror"), tmp_path / "index"
    summary = build_index(source, index, keep=2, jobs=2, primary_url=lambda f: f"https://primary.invalid/{f}")
    root = json.loads((index / "index.json").read_text())
    assert root == {"meta": {"api-version": "1.0"}, "projects": ["demo", "solo"]}
    demo = _deltas(index, "demo")
    assert _pairs(demo) == {
        ("demo-1.0-py3-none-any.whl", "demo-1.1-py3-none-any.whl"),
        ("demo-1.0-py3-none-any.whl", "demo-1.2-py3-none-any.whl"),
        ("demo-1.1-py3-none-any.whl", "demo-1.2-py3-none-any.whl"),
        ("demo-1.1-py3-none-any.whl", "demo-2.0-py3-none-any.whl"),
        ("demo-1.2-py3-none-any.whl", "demo-2.0-py3-none-any.whl"),
        ("demo-1.0-cp311-cp311-linux_x86_64.whl", "demo-1.1-cp311-cp311-linux_x86_64.whl"),
    }
    assert (summary.made, summary.reused, summary.failed, summary.wheels, summary.projects) == (6, 0, 0, 7, 2)
    assert all(w.url == f"https://primary.invalid/{w.filename}" for w in demo.wheels)
    for delta in demo.deltas:
        data = (index / "demo" / delta.url).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (delta.size, delta.sha256)
        assert delta.engines == ("zlib:6:8:0",) and delta.size < delta.new.size / 2
        rebuilt = apply_patch(data, WheelSource(source / delta.old.filename), tmp_path / "out.whl")
        assert hashlib.sha256(rebuilt.read_bytes()).hexdigest() == delta.new.sha256
    assert _deltas(index, "solo").deltas == () and len(_deltas(index, "solo").wheels) == 1


def test_rerun_does_only_new_work_and_prunes_what_left(tmp_path: Path) -> None:
    source, index = mirror(tmp_path / "mirror"), tmp_path / "index"
    build_index(source, index, keep=1, jobs=2)
    before = {p: p.stat().st_mtime_ns for p in index.rglob("*") if p.is_file() and ".pipdelta" not in p.parts}
    again = build_index(source, index, keep=1, jobs=2)
    assert (again.made, again.reused) == (0, 4)
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing rewritten

    release(source, "demo", "2.1")
    (source / "demo-1.0-cp311-cp311-linux_x86_64.whl").unlink()
    (source / "solo-0.1-py3-none-any.whl").unlink()
    third = build_index(source, index, keep=1, jobs=2)
    assert (third.made, third.reused) == (1, 3)
    assert ("demo-2.0-py3-none-any.whl", "demo-2.1-py3-none-any.whl") in _pairs(_deltas(index, "demo"))
    assert not (index / "demo" / "patches" / "demo-1.0-cp311-cp311-linux_x86_64--1.1.pdelta").exists()
    assert json.loads((index / "index.json").read_text())["projects"] == ["demo"]
    assert not (index / "solo" / "deltas.json").exists()


def test_deltas_published_in_another_format_are_made_again(tmp_path: Path) -> None:
    """An index built by a pipdelta of another patch format: the next build re-makes its deltas, not reuses them."""
    source, index = mirror(tmp_path / "mirror"), tmp_path / "index"
    build_index(source, index, keep=1, jobs=2)
    project = index / "demo" / "deltas.json"
    document = json.loads(project.read_text())
    for entry in document["deltas"]:
        entry["format"] = 1
        patch = project.parent / entry["url"]
        patch.write_bytes(patch.read_bytes()[:8] + b"\x00\x01" + patch.read_bytes()[10:])  # the container's version
    project.write_text(json.dumps(document))
    again = build_index(source, index, keep=1, jobs=2)
    assert (again.made, again.reused) == (len(document["deltas"]), 4 - len(document["deltas"]))
    assert {d.format for d in read_project(project).deltas} == {VERSION}


def test_a_killed_build_resumes_from_the_patches_it_finished(tmp_path: Path) -> None:
    source, index = mirror(tmp_path / "mirror"), tmp_path / "index"
    build_index(source, index, keep=1, jobs=2)
    # As if killed after the patches were written but before deltas.json and the state file were:
    (index / "demo" / "deltas.json").unlink()
    shutil.rmtree(index / ".pipdelta")
    torn = index / "demo" / "patches" / ".demo-1.1-py3-none-any--1.2.pdelta.abc.part"
    torn.write_bytes(b"PIPDELTA\x00")
    corrupt = index / "demo" / "patches" / "demo-1.0-py3-none-any--1.1.pdelta"
    corrupt.write_bytes(corrupt.read_bytes()[:100])
    resumed = build_index(source, index, keep=1, jobs=2)
    assert (resumed.made, resumed.reused) == (1, 3)  # only the damaged patch is made again
    assert not torn.exists()
    assert len(_deltas(index, "demo").deltas) == 4


def test_corrupt_wheels_are_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source, index = mirror(tmp_path / "mirror"), tmp_path / "index"
    (source / "demo-3.0-py3-none-any.whl").write_bytes(b"not a zip at all")
    (source / "not-a-wheel-name.whl").write_bytes(b"")
    damaged = release(source, "solo", "0.2")
    data = bytearray(damaged.read_bytes())
    data[200:260] = bytes(60)  # inside the first member's deflate data; the central directory is intact
    damaged.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        summary = build_index(source, index, keep=1, jobs=2)
    assert summary.failed == 1 and summary.made == 4
    assert len(summary.warnings) == 3
    assert any("demo-3.0-py3-none-any.whl" in w for w in summary.warnings)
    assert any("solo-0.2-py3-none-any.whl" in w and "could not make" in w for w in summary.warnings)
    assert len(caplog.records) == 3
    assert _deltas(index, "solo").deltas == ()
    assert build_index(source, index, keep=1, jobs=2).failed == 0  # not retried until the file changes


def test_deltas_not_worth_it_are_left_out_and_remembered(tmp_path: Path) -> None:
    source, index = tmp_path / "mirror", tmp_path / "index"
    source.mkdir()
    unrelated(source, "noise", "1.0")
    unrelated(source, "noise", "2.0")
    summary = build_index(source, index, jobs=1)
    assert (summary.made, summary.too_large) == (0, 1)
    assert _deltas(index, "noise").deltas == () and not any((index / "noise" / "patches").iterdir())
    assert build_index(source, index, jobs=1).too_large == 0
    assert build_index(source, tmp_path / "lenient", jobs=1, max_ratio=2.0).made == 1


def test_bandersnatch_tree_and_a_caller_executor(tmp_path: Path) -> None:
    flat = mirror(tmp_path / "flat")
    tree = tmp_path / "bandersnatch"
    for wheel in flat.iterdir():
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        target = tree / "web" / "packages" / digest[:2] / digest[2:4] / digest[4:] / wheel.name
        target.parent.mkdir(parents=True)
        shutil.copy(wheel, target)
    (tree / "web" / "simple" / "demo").mkdir(parents=True)
    (tree / "web" / "simple" / "demo" / "index.html").write_text("<html></html>")
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        summary = build_index(tree, tmp_path / "index", keep=1, executor=executor)
    assert (summary.made, summary.wheels) == (4, 7)


def test_bad_arguments_are_user_errors(tmp_path: Path) -> None:
    from pipdelta.errors import PipdeltaError

    with pytest.raises(PipdeltaError, match="not a folder"):
        build_index(tmp_path / "missing", tmp_path / "index")
    with pytest.raises(PipdeltaError, match="keep"):
        build_index(tmp_path, tmp_path / "index", keep=0)


def test_cli_builds_with_an_executor_from_an_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipdelta.cli import main

    source = mirror(tmp_path / "mirror")
    (source / "broken-1.0-py3-none-any.whl").write_bytes(b"junk")
    argv = ["index", "build", str(source), "-o", str(tmp_path / "index"), "--keep", "1", "-q"]
    assert main([*argv, "--executor", "concurrent.futures:ThreadPoolExecutor"]) == 0
    out = capsys.readouterr()
    assert "7 wheels in 2 projects; 4 deltas made" in out.out
    assert main([*argv, "--executor", "pipdelta:__version__"]) == 1
    assert "cannot load executor" in capsys.readouterr().err
    assert main([*argv, "--executor", "builtins:object"]) == 1
    assert "not a concurrent.futures.Executor" in capsys.readouterr().err
    assert main([*argv, "--primary-url", "https://files.example/{path}"]) == 1
    assert "use only {filename} and {project}" in capsys.readouterr().err
    assert main([*argv, "--primary-url", "https://files.example/{project}/{filename}"]) == 0
    wheel = _deltas(tmp_path / "index", "demo").wheels[0]
    assert wheel.url == f"https://files.example/demo/{wheel.filename}"


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def test_sigkill_mid_build_leaves_no_torn_file_and_a_rerun_finishes(tmp_path: Path) -> None:
    source, index = tmp_path / "mirror", tmp_path / "index"
    source.mkdir()
    for minor in range(12):
        release(source, "many", f"1.{minor}")
    command = [sys.executable, "-m", "pipdelta", "index", "build", str(source), "-o", str(index), "-j", "1", "-q"]
    build = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while build.poll() is None and not list(index.glob("many/patches/*.pdelta")) and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = _children(build.pid)
    build.kill()
    build.wait()
    deadline = time.monotonic() + 10
    while workers and time.monotonic() < deadline:  # orphaned pool workers notice and leave
        time.sleep(0.1)
        workers = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    assert not workers
    for patch in index.glob("many/patches/*.pdelta"):
        inspect(patch)  # whole patches only: each one was renamed into place complete
    resumed = build_index(source, index, jobs=2)
    assert resumed.made + resumed.reused == 3 * 12 - 6 and resumed.failed == 0
    assert len(_deltas(index, "many").deltas) == 30


def test_a_worker_killed_mid_job_stops_the_build_with_advice_and_a_rerun_resumes(tmp_path: Path) -> None:
    from pipdelta.errors import PipdeltaError

    source, index = tmp_path / "mirror", tmp_path / "index"
    source.mkdir()
    for minor in range(8):
        release(source, "many", f"1.{minor}")
    pool = concurrent.futures.ProcessPoolExecutor(1)
    with concurrent.futures.ThreadPoolExecutor(1) as runner:
        build = runner.submit(build_index, source, index, keep=1, executor=pool)
        while not build.done() and not list(index.glob("many/patches/*.pdelta")):
            time.sleep(0.01)
        for process in list(pool._processes.values()):  # as the kernel's OOM killer would
            os.kill(process.pid, signal.SIGKILL)
        with pytest.raises(PipdeltaError, match=r"worker died .* run again to resume"):
            build.result()
    pool.shutdown()
    resumed = build_index(source, index, keep=1, jobs=2)
    assert resumed.reused >= 1 and resumed.made + resumed.reused == 7
