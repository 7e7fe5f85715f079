"""A hostile patch never writes outside the folder it is given, never takes memory past its budget, and
always ends in one line (issue 7: each case is the exact input that once broke the applier)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hostile
import pytest
from conftest import module_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from patchtools import join, split
from wheelfactory import build_wheel

from pipdelta import Target, WheelSource, apply_patch, make_patch
from pipdelta.errors import PatchFormatError, PipdeltaError
from pipdelta.format.patchfile import read_patch

FILES = {f"pkg/m{i}.py": module_text(i) for i in range(4)}
NEW = "pkg-1.1-py3-none-any.whl"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    tmp = tmp_path_factory.mktemp("pair")
    old = build_wheel(tmp, "pkg", "1.0", FILES)
    new = build_wheel(tmp, "pkg", "1.1", {**FILES, "pkg/m1.py": module_text(50)}, level=9)
    make_patch(old, new, tmp / "p.pdelta", differ="bsdiff4")
    return old, new, (tmp / "p.pdelta").read_bytes()


def tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


UNSAFE_NAMES = [
    "../../ESCAPED-rel.sh",
    "../../pkg-1.1-py3-none-any.whl",
    "sub/pkg-1.1-py3-none-any.whl",
    "pkg-1.1-py3-none-any.whl/../../x.whl",
    "..",
    "",
    "pkg-1.1-py3-none-any.whl\0",
    "x" * 300 + "-1.1-py3-none-any.whl",
    ".pkg-1.1-py3-none-any.whl",
    "pkg-1.1-py3-none-any.whl\n",
    "not a wheel.whl",
]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_target_name_from_the_patch_is_checked(pair: tuple[Path, Path, bytes], tmp_path: Path, name: str) -> None:
    old, _, patch = pair
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    before = tree(tmp_path)
    with pytest.raises(PatchFormatError) as caught:
        apply_patch(hostile.named(patch, name), WheelSource(old), out)
    assert "\n" not in str(caught.value)
    assert tree(tmp_path) == before


def test_absolute_target_name_is_refused(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    old, _, patch = pair
    escaped = tmp_path / "ESCAPED-abs.sh"
    with pytest.raises(PatchFormatError):
        apply_patch(hostile.named(patch, str(escaped)), WheelSource(old), tmp_path / "out")
    assert not escaped.exists() and not (tmp_path / "out").exists()


def test_another_projects_name_is_refused(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    old, _, patch = pair
    with pytest.raises(PatchFormatError, match="another project"):
        apply_patch(hostile.named(patch, "evil-9.9-py3-none-any.whl"), WheelSource(old), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_callers_target_names_the_file(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    old, new, patch = pair
    path = apply_patch(patch, WheelSource(old), tmp_path, target=Target(NEW, None, new.stat().st_size))
    assert path == tmp_path / NEW and path.read_bytes() == new.read_bytes()
    with pytest.raises(PatchFormatError, match=r"not pkg-1\.2"):
        apply_patch(patch, WheelSource(old), tmp_path, target=Target("pkg-1.2-py3-none-any.whl"))
    with pytest.raises(PatchFormatError, match="another size"):
        apply_patch(patch, WheelSource(old), tmp_path, target=Target(NEW, size=new.stat().st_size + 1))


def test_cli_apply_of_an_escaping_patch(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    old, _, patch = pair
    evil = tmp_path / "evil.pdelta"
    evil.write_bytes(hostile.named(patch, "../../ESCAPED-rel.sh"))
    (tmp_path / "a" / "b").mkdir(parents=True)
    before = tree(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pipdelta", "apply", str(evil), "--old", str(old), "-o", str(tmp_path / "a" / "b")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "unsafe wheel file" in result.stderr
    assert tree(tmp_path) == before


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory read from Linux's /proc")
@pytest.mark.parametrize("name", sorted(hostile.CRAFTED))
def test_crafted_sizes_are_refused_before_allocation(pair: tuple[Path, Path, bytes], tmp_path: Path, name: str) -> None:
    """Each once took gigabytes (4.2 GB, 3.9 GB, 1.1 GB, 2.3 GB) or a traceback; now one line, little memory."""
    old, new, patch = pair
    crafted = tmp_path / "crafted.pdelta"
    crafted.write_bytes(hostile.CRAFTED[name](patch))
    for target in (None, new.stat().st_size):  # the client knows the size from the primary index; the CLI not
        result = subprocess.run([sys.executable, "-c", _MEASURE, str(crafted), str(old), str(target)], **_RUN)
        outcome = json.loads(result.stdout)
        assert outcome["error"] is not None and "\n" not in outcome["error"], outcome
        assert outcome["peak_mb"] < 100, outcome  # a bare interpreter with pipdelta imported: 23 MB


_RUN: dict[str, object] = {"capture_output": True, "text": True, "check": True, "timeout": 60}
_MEASURE = """
import json, sys
from pathlib import Path
from pipdelta import Target, WheelSource, apply_patch
from pipdelta.errors import PipdeltaError
patch, old, size = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]), sys.argv[3]
try:
    target = None if size == "None" else Target(size=int(size))
    apply_patch(patch, WheelSource(old), old.parent / "never.whl", target=target)
    error = None
except PipdeltaError as exc:
    error = str(exc)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
status = Path("/proc/self/status").read_text().splitlines()
peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
print(json.dumps({"error": error, "peak_mb": round(peak)}))
"""


@pytest.mark.parametrize(
    "name",
    ["pkg-1.1-py3-none-any.whl\0", "x" * 300 + ".whl", "", "a/b.whl"],
)
def test_odd_filenames_in_old_are_refused(pair: tuple[Path, Path, bytes], name: str) -> None:
    header, payload = split(pair[2])
    header["old"]["filename"] = name
    with pytest.raises(PatchFormatError):
        read_patch(join(header, payload))


def test_deeply_nested_header_is_one_line() -> None:
    with pytest.raises(PatchFormatError, match="corrupt patch header"):
        read_patch(hostile.nested_header())


# Any JSON value, put anywhere in a real header: the parser and the applier refuse it cleanly or rebuild
# exactly the wheel the patch promises, never anything else.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _places(value: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _places(item, (*path, index))
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.integers(0, 10**6), value=_JSON)
def test_fuzzed_headers(pair: tuple[Path, Path, bytes], tmp_path: Path, where: int, value: object) -> None:
    old, new, patch = pair
    header, payload = split(patch)
    places = _places(header)[1:]
    *parents, last = places[where % len(places)]
    holder = header
    for key in parents:
        holder = holder[key]
    holder[last] = value
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    try:
        path = apply_patch(join(header, payload), WheelSource(old), out)
    except PipdeltaError as exc:
        assert str(exc) and "\n" not in str(exc)
        assert os.listdir(out) == []
    else:
        assert path.parent == out and path.read_bytes() == new.read_bytes()
        path.unlink()
