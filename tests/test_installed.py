"""Applying from the files pip installed: each checked against RECORD, scripts and .data mapped back."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import venvs
from conftest import module_text
from wheelfactory import build_wheel

from pipdelta import InstalledDistribution, InstalledSource, apply_patch, make_patch
from pipdelta.errors import DistributionNotFound, SourceMismatch

MODEL = b"".join(b'{"op%d": "Shape%d"},\n' % (i, i % 31) for i in range(3000))


def files(version: int) -> dict[str, bytes]:
    return {
        "demo_pkg/__init__.py": f"__version__ = '{version}'\n".encode(),
        "demo_pkg/core.py": module_text(version % 2, 800),
        "demo_pkg/models/api.json.gz": gzip.compress(MODEL + b"%d\n" % version, mtime=version),
        "demo_pkg/models/static.json.gz": gzip.compress(MODEL, mtime=version),  # only the mtime changes
        f"demo_pkg-{version}.0.data/scripts/demo-tool": b"#!python\nimport demo_pkg\nprint(demo_pkg.__version__)\n",
        f"demo_pkg-{version}.0.data/data/share/demo_pkg/notes.txt": b"notes\n" * 50,
        f"demo_pkg-{version}.0.data/headers/demo.h": b"#define DEMO 1\n",
        f"demo_pkg-{version}.0.data/purelib/demo_extra.py": b"EXTRA = True\n",
        # Shipped as numpy ships one; pip compiles over it at install time.
        f"demo_pkg/__pycache__/__init__.{sys.implementation.cache_tag}.pyc": b"shipped bytecode\n" * 20,
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A venv with demo-pkg 1.0 installed by pip, and the 1.0 and 2.0 wheels."""
    tmp = tmp_path_factory.mktemp("installed")
    old = build_wheel(tmp, "demo_pkg", "1.0", files(1))
    new = build_wheel(tmp, "demo_pkg", "2.0", files(2))
    python = venvs.create(tmp / "venv")
    venvs.pip(python, "install", "--no-index", "--no-deps", str(old))
    return python, old, new


def test_rebuild_from_installed_files(installed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    python, old, new = installed
    patch = tmp_path / "p.pdelta"
    make_patch(old, new, patch)
    source = InstalledSource(InstalledDistribution.find("demo-pkg", str(python)))
    assert apply_patch(patch.read_bytes(), source, tmp_path).read_bytes() == new.read_bytes()


def test_command_line_rebuild_from_installed_files(installed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    python, old, new = installed
    run = [sys.executable, "-m", "pipdelta"]
    subprocess.run([*run, "diff", str(old), str(new), "-o", str(tmp_path / "p")], check=True, capture_output=True)
    out = tmp_path / "rebuilt.whl"
    result = subprocess.run(
        [*run, "apply", str(tmp_path / "p"), "--installed", "demo_pkg", "--python", str(python), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == new.read_bytes()


def test_locally_modified_file_is_refused(installed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    python, old, new = installed
    patch = tmp_path / "p.pdelta"
    make_patch(old, new, patch)
    distribution = InstalledDistribution.find("demo_pkg", str(python))
    edited = distribution.path_of("demo_pkg/core.py")
    original = edited.read_bytes()
    edited.write_bytes(original + b"# edited by hand\n")
    try:
        with pytest.raises(SourceMismatch, match="modified"):
            apply_patch(patch.read_bytes(), InstalledSource(distribution), tmp_path / "out.whl")
    finally:
        edited.write_bytes(original)
    assert not (tmp_path / "out.whl").exists()


def test_other_installed_version_is_refused(installed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    python, old, new = installed
    make_patch(new, old, tmp_path / "back.pdelta")  # starts from 2.0, but 1.0 is installed
    source = InstalledSource(InstalledDistribution.find("demo_pkg", str(python)))
    with pytest.raises(SourceMismatch, match=r"1\.0 is installed"):
        apply_patch((tmp_path / "back.pdelta").read_bytes(), source, tmp_path)


def test_distribution_not_installed(installed: tuple[Path, Path, Path]) -> None:
    with pytest.raises(DistributionNotFound, match="not installed"):
        InstalledDistribution.find("no-such-project", str(installed[0]))


def test_scripts_and_data_map_to_the_scheme(installed: tuple[Path, Path, Path]) -> None:
    distribution = InstalledDistribution.find("demo_pkg", str(installed[0]))
    tool = distribution.path_of("demo_pkg-1.0.data/scripts/demo-tool")
    assert tool.read_bytes().startswith(b"#!/")  # pip rewrote the #!python line
    assert distribution.read_verified("demo_pkg-1.0.data/data/share/demo_pkg/notes.txt") == b"notes\n" * 50


# Reading installed files never leaves the environment (issue 7, item 4): the exact inputs that broke it.

CORE = module_text(9, 50)
TOOL = b"#!/env/bin/python\nimport demo\n"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def fake_install(tmp: Path, *rows: str, via: str = "lib") -> InstalledDistribution:
    """demo 1.0 as pip lays it out in ``tmp/env`` (a module, a script), its site-packages seen through ``via``."""
    env = tmp / "env"
    site = env / "lib" / "python3" / "site-packages"
    (site / "demo-1.0.dist-info").mkdir(parents=True)
    (site / "demo").mkdir()
    (site / "demo" / "core.py").write_bytes(CORE)
    (env / "bin").mkdir()
    (env / "bin" / "tool").write_bytes(TOOL)
    if via != "lib":
        (env / via).symlink_to("lib")  # a venv's lib64 -> lib
    record = [
        f"demo/core.py,{_record_hash(CORE)},{len(CORE)}",
        f"../../../bin/tool,{_record_hash(TOOL)},{len(TOOL)}",
        "demo-1.0.dist-info/RECORD,,",
        *rows,
    ]
    (site / "demo-1.0.dist-info" / "RECORD").write_text("\n".join(record) + "\n")
    seen = env / via / "python3" / "site-packages"
    scheme = {"purelib": seen, "platlib": seen, "scripts": env / "bin", "data": env, "headers": env / "include"}
    return InstalledDistribution("demo", "1.0", seen / "demo-1.0.dist-info", scheme)


def refused_quickly(check: Callable[[], object], match: str) -> None:
    """``check`` raises SourceMismatch matching ``match`` within 2 s (a blocking open would hang it)."""
    pool = ThreadPoolExecutor(1)
    try:
        with pytest.raises(SourceMismatch, match=match):
            pool.submit(check).result(timeout=2)
    finally:
        pool.shutdown(wait=False)  # a hung thread must not hang the test too


def test_installed_files_reached_through_a_symlinked_lib_are_read(tmp_path: Path) -> None:
    distribution = fake_install(tmp_path, via="lib64")
    distribution.check_files()  # ../../../bin/tool resolves into the scheme's scripts folder
    assert distribution.read_verified("demo-1.0.data/scripts/tool") == TOOL
    assert distribution.read_verified("demo/core.py") == CORE


def test_pip_installed_scripts_data_and_headers_pass_the_check(installed: tuple[Path, Path, Path]) -> None:
    InstalledDistribution.find("demo_pkg", str(installed[0])).check_files()


@pytest.mark.parametrize(
    "swap", ["link to /dev/zero", "fifo", "link to a fifo", "link to an identical copy", "folder linked to a copy"]
)
def test_installed_file_that_is_not_a_regular_file_inside_is_refused(tmp_path: Path, swap: str) -> None:
    distribution = fake_install(tmp_path)
    core = distribution.path_of("demo/core.py")
    outside = tmp_path / "outside"
    if swap == "folder linked to a copy":
        shutil.move(core.parent, outside)
        core.parent.symlink_to(outside)
    else:
        core.unlink()
    if swap == "link to /dev/zero":
        core.symlink_to("/dev/zero")
    elif swap == "fifo":
        os.mkfifo(core)
    elif swap == "link to a fifo":
        os.mkfifo(outside)
        core.symlink_to(outside)
    elif swap == "link to an identical copy":
        outside.write_bytes(CORE)
        core.symlink_to(outside)
    match = "not a regular file" if swap == "fifo" else "outside its environment"
    started = time.monotonic()
    refused_quickly(distribution.check_files, match)
    refused_quickly(lambda: distribution.read_verified("demo/core.py"), match)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("row", ["../../../../../../../../etc/shadow", "../../../../outside", "absolute"])
def test_record_rows_that_leave_the_environment_are_never_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, row: str
) -> None:
    outside = tmp_path / "outside"
    os.mkfifo(outside)  # a blocking open to read it would hang
    opened: list[str] = []
    real_open = os.open

    def spy(path: str, flags: int, mode: int = 0o777) -> int:
        opened.append(os.path.realpath(path))
        return real_open(path, flags, mode)

    distribution = fake_install(tmp_path, f"{outside if row == 'absolute' else row},sha256=AAAA,4")
    monkeypatch.setattr(os, "open", spy)
    refused_quickly(distribution.check_files, "outside its environment")
    assert opened == [str(distribution.dist_info / "RECORD")]  # only RECORD itself was opened


def test_record_rows_without_a_size_are_refused(tmp_path: Path) -> None:
    distribution = fake_install(tmp_path, f"demo/empty.py,{_record_hash(b'')},")
    (distribution.dist_info.parent / "demo" / "empty.py").write_bytes(b"")
    refused_quickly(distribution.check_files, "gives no size")


def test_a_record_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    distribution = fake_install(tmp_path)
    record = distribution.dist_info / "RECORD"
    record.unlink()
    record.symlink_to("/dev/zero")
    refused_quickly(distribution.check_files, "outside its environment")


def test_a_source_larger_than_the_patch_declares_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A patch declaring a 1-byte source that is a larger installed file: refused from RECORD, never opened."""
    distribution = fake_install(tmp_path)
    distribution.check_files()
    opened: list[str] = []
    real_open = os.open

    def spy(path: str, flags: int, mode: int = 0o777) -> int:
        opened.append(str(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", spy)
    refused_quickly(lambda: distribution.read_verified("demo/core.py", most=1), "larger than the file")
    assert not [path for path in opened if path.endswith("core.py")]
    assert distribution.read_verified("demo/core.py", most=len(CORE)) == CORE
