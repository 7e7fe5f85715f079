"""Every bad input ends in a PipdeltaError with a one-line message, and no output file is left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import module_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from patchtools import rewrite, split, with_payload
from wheelfactory import build_wheel

from pipdelta import Target, WheelSource, apply_patch, make_patch
from pipdelta.errors import (
    EngineMismatch,
    InvalidWheel,
    PatchFormatError,
    PipdeltaError,
    ReconstructionFailed,
    SourceMismatch,
)

FILES = {f"pkg/m{i}.py": module_text(i) for i in range(4)}


@pytest.fixture(scope="module", params=["bsdiff4", "zstd"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    tmp = tmp_path_factory.mktemp("pair")
    old = build_wheel(tmp, "pkg", "1.0", FILES)
    new = build_wheel(tmp, "pkg", "1.1", {**FILES, "pkg/m1.py": module_text(50)}, level=9)
    make_patch(old, new, tmp / "p.pdelta", differ=request.param)
    return old, new, (tmp / "p.pdelta").read_bytes()


def fails(patch: bytes, old: Path, out: Path, error: type[PipdeltaError] = PipdeltaError, **kw: Target) -> str:
    """Apply, expect ``error``, and check nothing was written to ``out``'s folder."""
    out.mkdir(exist_ok=True)
    with pytest.raises(error) as caught:
        apply_patch(patch, WheelSource(old), out / "result.whl", **kw)
    assert list(out.iterdir()) == []
    message = str(caught.value)
    assert message and "\n" not in message
    return message


def test_the_pair_applies(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    old, new, patch = pair
    assert apply_patch(patch, WheelSource(old), tmp_path / "x.whl").read_bytes() == new.read_bytes()


@pytest.mark.parametrize("keep", [0, 5, 13, 14, 40, -200, -1])
def test_truncated_patch(pair: tuple[Path, Path, bytes], tmp_path: Path, keep: int) -> None:
    old, _, patch = pair
    message = fails(patch[:keep], old, tmp_path, PatchFormatError)
    assert ("bad magic" if 0 <= keep < 14 else "truncated") in message


def test_every_flipped_byte_is_caught(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    old, _, patch = pair
    for position in range(0, len(patch), max(1, len(patch) // 97)):
        corrupt = bytearray(patch)
        corrupt[position] ^= 0x55
        fails(bytes(corrupt), old, tmp_path)


def test_not_a_patch(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    assert "bad magic" in fails(b"PK\x03\x04 not a patch at all", pair[0], tmp_path, PatchFormatError)


def test_newer_format_version(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    old, _, patch = pair
    message = fails(patch[:8] + b"\x00\x09" + patch[10:], old, tmp_path, PatchFormatError)
    assert "version 9" in message


def test_patch_for_another_wheel(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    old, _, patch = pair
    fails(patch, old, tmp_path, PatchFormatError, target=Target(sha256="0" * 64))


def test_wrong_old_wheel(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    _, new, patch = pair
    assert "not the wheel the patch was made from" in fails(patch, new, tmp_path, SourceMismatch)


def test_old_file_that_is_not_a_wheel(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    junk = tmp_path / "pkg-1.0-py3-none-any.whl"
    junk.write_bytes(b"this is no zip")
    fails(pair[2], junk, tmp_path / "out", InvalidWheel)


def test_target_hash_mismatch_writes_nothing(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    old, _, patch = pair

    def lie(header: dict) -> None:  # type: ignore[type-arg]
        header["new"]["sha256"] = "ab" * 32

    assert "wrong sha256" in fails(rewrite(patch, lie), old, tmp_path, ReconstructionFailed)


@pytest.mark.parametrize("size", [10**15, -1, "12", 2**62])
def test_absurd_declared_sizes(pair: tuple[Path, Path, bytes], tmp_path: Path, size: object) -> None:
    old, _, patch = pair
    for field in ("target_blob_size", "source_size"):

        def change(header: dict, field: str = field) -> None:  # type: ignore[type-arg]
            header[field] = size

        assert "impossible" in fails(rewrite(patch, change), old, tmp_path, PatchFormatError)


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/etc/passwd", "pkg\\..\\x", "C:/x", "", ".", "./C:/x", "./a/../../x", "a//../../x"]
)
def test_path_tricks_in_source_names(pair: tuple[Path, Path, bytes], tmp_path: Path, name: str) -> None:
    old, _, patch = pair

    def change(header: dict) -> None:  # type: ignore[type-arg]
        header["sources"][0][0] = name

    assert "unsafe source path" in fails(rewrite(patch, change), old, tmp_path, PatchFormatError)


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h["ops"].append(["lit", 5]),
        lambda h: h["ops"].append(["copy", 999, None]),
        lambda h: h["ops"].append(["mem", "lzw:9", ["blob", 0]]),
        lambda h: h["ops"].append(["teleport", 1]),
        lambda h: h.update(differ="courgette"),
        lambda h: h.pop("ops"),
        lambda h: [op.__setitem__(slice(3, None), [10**6]) for op in h["ops"] if op[0] in ("mem", "copy")],
        lambda h: h["ops"].extend([["dir", 0], ["dir", 0]]),
        lambda h: h.update(sources="nope"),
    ],
    ids=[
        "ops-do-not-add-up",
        "missing-source",
        "unknown-recipe",
        "unknown-op",
        "unknown-differ",
        "no-ops",
        "header-outside-literal",
        "two-directories",
        "junk",
    ],
)
def test_inconsistent_headers(pair: tuple[Path, Path, bytes], tmp_path: Path, change) -> None:  # type: ignore[no-untyped-def]
    fails(rewrite(pair[2], change), pair[0], tmp_path, PatchFormatError)


def test_recipe_this_machine_cannot_reproduce(pair: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    old, _, patch = pair

    def change(header: dict) -> None:  # type: ignore[type-arg]
        for op in header["ops"]:
            if op[0] == "mem":
                op[1] = "zlib:5:9:3"  # a valid recipe no fingerprint vouches for

    assert "zlib:5:9:3" in fails(rewrite(patch, change), old, tmp_path, EngineMismatch)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=400), keep=st.integers(0, 400))
def test_any_payload_with_a_valid_hash_is_refused_cleanly(
    pair: tuple[Path, Path, bytes], tmp_path: Path, payload: bytes, keep: int
) -> None:
    old, _, patch = pair
    real = split(patch)[1]
    for candidate in (payload, real[:keep] + payload, real[:keep] + real[keep + 1 :]):
        if candidate == real:
            continue
        fails(with_payload(patch, candidate), old, tmp_path)
