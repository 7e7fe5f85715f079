"""Wheels made by zlib-ng (zipfile under a zlib-ng interpreter, maturin's RECORD) and zlib-ng clients."""

from __future__ import annotations

from pathlib import Path

import pytest
import venvs
from conftest import module_text
from rangeserver import RangeServer, serving
from wheelfactory import Raw, build_raw_wheel, build_wheel, wheel_members
from zlibng import zlibng_client, zlibng_zipfile

from pipdelta import InstalledDistribution, InstalledSource, WheelSource, apply_patch, make_patch
from pipdelta.client.ranges import RangeClient
from pipdelta.engines import flate2


def files(version: int) -> dict[str, bytes]:
    return {
        "ngpkg/__init__.py": f"__version__ = '{version}'\n".encode(),
        "ngpkg/core.py": module_text(version, 1500),  # large enough for zlib-ng's output to depend on the calls
        "ngpkg/util.py": module_text(7, 200),
        "ngpkg/blob.bin": bytes(range(256)) * 64,
    }


def zlibng_wheel(folder: Path, version: int) -> Path:
    with zlibng_zipfile():
        return build_wheel(folder, "ngpkg", f"{version}.0", files(version), stored=("ngpkg/blob.bin",))


@pytest.mark.parametrize("client", ["classic", "zlib-ng"])
def test_zipfile_under_zlibng_is_rebuilt_exactly(tmp_path: Path, client: str) -> None:
    old, new = zlibng_wheel(tmp_path, 1), zlibng_wheel(tmp_path, 2)
    report = make_patch(old, new, tmp_path / "p.pdelta")
    assert report.raw_members == 0 and "zlibng:6:8:0" in report.recipes
    out = tmp_path / "out.whl"
    if client == "zlib-ng":
        with zlibng_client():
            apply_patch((tmp_path / "p.pdelta").read_bytes(), WheelSource(old), out)
    else:
        apply_patch((tmp_path / "p.pdelta").read_bytes(), WheelSource(old), out)
    assert out.read_bytes() == new.read_bytes()


@pytest.mark.parametrize("writes", ["lines", "fields"])
def test_maturins_record_writes_are_divined(tmp_path: Path, writes: str) -> None:
    def maturin_wheel(version: int) -> Path:
        members = {}
        many = {f"rs/m{i}.py": b"X = %d\n" % (i * version) for i in range(400)}  # a RECORD of 30 KB
        for name, content in wheel_members("rs", f"{version}.0", many).items():
            pattern = writes if name.endswith("/RECORD") else "8k"
            members[name] = Raw(content, lambda data, p=pattern: b"".join(flate2.deflate_pieces(data, 6, p)))
        return build_raw_wheel(tmp_path, f"rs-{version}.0-py3-none-any.whl", members)

    old, new = maturin_wheel(1), maturin_wheel(2)
    report = make_patch(old, new, tmp_path / "p.pdelta")
    # one write per line can give what one write of the whole RECORD gives: zlib-ng's own call then matches
    assert report.raw_members == 0 and report.recipes.keys() - {"flate2:6:8k"} <= {f"flate2:6:{writes}", "zlibng:6:8:0"}
    rebuilt = apply_patch((tmp_path / "p.pdelta").read_bytes(), WheelSource(old), tmp_path / "out.whl")
    assert rebuilt.read_bytes() == new.read_bytes()


def test_zlibng_client_from_installed_files_fetches_by_range(tmp_path: Path) -> None:
    """Copies cannot come from an old wheel here: each member classic zlib made is a range of the new wheel."""
    old = build_wheel(tmp_path, "ngpkg", "1.0", files(1), stored=("ngpkg/blob.bin",))
    new = build_wheel(tmp_path, "ngpkg", "2.0", files(2), stored=("ngpkg/blob.bin",))
    make_patch(old, new, tmp_path / "p.pdelta")
    python = venvs.create(tmp_path / "venv")
    venvs.pip(python, "install", "--no-index", "--no-deps", str(old))
    source = InstalledSource(InstalledDistribution.find("ngpkg", str(python)))
    server = RangeServer(new.read_bytes())
    with zlibng_client(), serving(server) as url:
        client = RangeClient(url, size=new.stat().st_size)
        rebuilt = apply_patch((tmp_path / "p.pdelta").read_bytes(), source, tmp_path / "out.whl", fetch=client)
    assert rebuilt.read_bytes() == new.read_bytes()
    assert server.requests == 1 and client.received > 0
