"""Per-member checks: a machine whose engines differ re-creates what it can and fetches the rest by range."""

from __future__ import annotations

import ctypes.util
from pathlib import Path

import pytest
from conftest import module_text
from patchtools import rewrite
from rangeserver import RangeServer, serving
from wheelfactory import build_wheel
from zlibng import zlibng_client

from pipdelta import WheelSource, apply_patch, make_patch
from pipdelta.apply.sources import OldContent
from pipdelta.client.ranges import RangeClient, RangesRefused
from pipdelta.engines import zlibapi
from pipdelta.errors import EngineMismatch, PatchFormatError, RangeError
from pipdelta.format import wire
from pipdelta.format.patchfile import Source, WheelRef, read_patch


def files(version: int) -> dict[str, bytes]:
    return {
        "pkg/__init__.py": f"__version__ = '{version}'\n".encode(),
        "pkg/core.py": module_text(version, 600),
        "pkg/same.py": module_text(99, 300),
        "pkg/data.bin": bytes(range(256)) * 40,
    }


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """Classic-zlib wheels (as zipfile makes them on most Linux interpreters) and the patch between them."""
    old = build_wheel(tmp_path, "pkg", "1.0", files(1), stored=("pkg/data.bin",))
    new = build_wheel(tmp_path, "pkg", "2.0", files(2), stored=("pkg/data.bin",))
    make_patch(old, new, tmp_path / "p.pdelta")
    return old, new, (tmp_path / "p.pdelta").read_bytes()


def test_zlibng_client_from_old_wheel_fetches_only_what_it_cannot_remake(
    pair: tuple[Path, Path, bytes], tmp_path: Path
) -> None:
    old, new, patch = pair
    server = RangeServer(new.read_bytes())
    with zlibng_client(), serving(server) as url:
        client = RangeClient(url, size=new.stat().st_size)
        rebuilt = apply_patch(patch, WheelSource(old), tmp_path / "out.whl", fetch=client)
    assert rebuilt.read_bytes() == new.read_bytes()
    assert server.requests == 1  # every range it needed, in one request
    assert 0 < client.received < new.stat().st_size / 2  # the changed members only: copies need no engine


def test_without_a_range_source_the_error_says_what_this_machine_cannot_do(
    pair: tuple[Path, Path, bytes], tmp_path: Path
) -> None:
    old, _, patch = pair
    with zlibng_client(), pytest.raises(EngineMismatch) as caught:
        apply_patch(patch, WheelSource(old), tmp_path / "out.whl")
    message = str(caught.value)
    assert "zlib:6:8:0" in message and "--url" in message and "old wheel instead" not in message
    assert "\n" not in message and not (tmp_path / "out.whl").exists()


def test_zlibng_client_with_a_classic_zlib_library_needs_no_ranges(
    pair: tuple[Path, Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ctypes.util.find_library("z")
    if path is None:
        pytest.skip("no zlib library on this machine")
    old, new, patch = pair
    monkeypatch.setenv(zlibapi.CLASSIC, path)  # as cmeel-zlib's library would be found
    zlibapi.library.cache_clear()
    try:
        with zlibng_client():
            assert apply_patch(patch, _ContentOnly(old), tmp_path / "out.whl").read_bytes() == new.read_bytes()
    finally:
        zlibapi.library.cache_clear()


def test_classic_client_needs_no_ranges(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    old, new, patch = pair
    assert apply_patch(patch, WheelSource(old), tmp_path / "out.whl").read_bytes() == new.read_bytes()


class _ContentOnly(OldContent):
    """The old wheel's contents without its compressed bytes, as installed files give them."""

    def __init__(self, path: Path) -> None:
        self.wheel = WheelSource(path)

    def check(self, old: WheelRef) -> None:
        self.wheel.check(old)

    def _content(self, source: Source) -> bytes:
        return self.wheel.read(source)


def test_server_refusing_ranges_is_one_line(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    old, new, patch = pair
    with zlibng_client(), serving(RangeServer(new.read_bytes(), "refuse")) as url, pytest.raises(RangesRefused):
        apply_patch(patch, _ContentOnly(old), tmp_path / "out.whl", fetch=RangeClient(url))


def test_lying_range_answers_are_caught(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    old, new, patch = pair
    for mode, message in (("wrong", "other bytes than"), ("short", "length is not")):
        with (
            zlibng_client(),
            serving(RangeServer(new.read_bytes(), mode)) as url,
            pytest.raises(RangeError, match=message),
        ):
            apply_patch(patch, _ContentOnly(old), tmp_path / "out.whl", fetch=RangeClient(url))
    assert not (tmp_path / "out.whl").exists()


def test_raw_members_left_out_come_from_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = build_wheel(tmp_path, "pkg", "1.0", files(1), level=1)
    new = build_wheel(tmp_path, "pkg", "2.0", files(2), level=1)
    monkeypatch.setattr("pipdelta.make.divination.CANDIDATES", ())  # no recipe: every member raw
    monkeypatch.setattr(wire, "carried_cost", lambda data: len(data) + 10 * wire.PART)  # ranges are cheaper
    report = make_patch(old, new, tmp_path / "p.pdelta")
    assert report.left_out == report.raw_members > 0
    patch = (tmp_path / "p.pdelta").read_bytes()
    assert sum(op[0] == "tgt" for op in _ops(patch)) == report.left_out
    with pytest.raises(EngineMismatch, match="leaves out"):
        apply_patch(patch, WheelSource(old), tmp_path / "out.whl")
    with serving(RangeServer(new.read_bytes())) as url:
        rebuilt = apply_patch(patch, WheelSource(old), tmp_path / "out.whl", fetch=RangeClient(url))
    assert rebuilt.read_bytes() == new.read_bytes()


def _ops(patch: bytes) -> list[list[object]]:
    seen: list[list[object]] = []
    rewrite(patch, lambda header: seen.extend(header["ops"]))
    return seen


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h["checks"].pop(), "member checks for"),
        (lambda h: h["checks"][0].__setitem__(1, "XYZ"), "not 8 hex digits"),
        (lambda h: h["checks"][0].__setitem__(0, h["checks"][0][0] + 1), "do not add up to the"),
        (lambda h: h.pop("checks"), "check is not a list"),
    ],
)
def test_malformed_checks_are_format_errors(pair: tuple[Path, Path, bytes], change: object, message: str) -> None:
    _, _, patch = pair
    with pytest.raises(PatchFormatError, match=message):
        read_patch(rewrite(patch, change))  # type: ignore[arg-type]
