"""Applying from the files pip installed: each checked against RECORD, scripts and .data mapped back."""

from __future__ import annotations

import gzip
import subprocess
import sys
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
