"""elf+bsdiff4 on real x86-64 binaries built here with gcc: round trips, the C scan against its Python twin,
corrupt address maps, and the fallback taken when the extension is absent."""

from __future__ import annotations

import platform
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wheelfactory import build_wheel

from pipdelta import WheelSource, apply_patch, make_patch
from pipdelta.differs.elf import ElfBsdiff, map_limit
from pipdelta.errors import PatchFormatError
from pipdelta.format import codec
from pipdelta.native import addrmap, elf, predict, scan

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or platform.machine() not in ("x86_64", "AMD64"), reason="needs gcc on x86-64"
)


def _source(extra: bool) -> str:
    """Functions calling one another, a table of pointers to them (RELATIVE relocations) and strings; with
    ``extra``, one more function early on, so that all the code after it moves."""
    lines = ["#include <stdio.h>", "int counter;"]
    if extra:
        lines.append("int inserted(int x) { for (int i = 0; i < x; i++) counter += i * 3; return counter; }")
    for i in range(60):
        callee = f"f{i - 1}(x + {i})" if i else ("inserted(x)" if extra else "x")
        lines.append(f'int f{i}(int x) {{ counter += {i}; if (x > {i * 7}) puts("f{i}"); return {callee} ^ {i}; }}')
    lines.append("int (*table[])(int) = {" + ", ".join(f"f{i}" for i in range(60)) + "};")
    lines.append("int run(int k) { return table[k % 60](k); }")
    lines.append("int main(int argc, char **argv) { return run(argc) & 1; }")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, bytes]]:
    """The old and new builds of a shared object and of an executable."""
    folder = tmp_path_factory.mktemp("elf")
    built: dict[str, list[bytes]] = {"so": [], "exe": []}
    for version, extra in (("1", False), ("2", True)):
        source = folder / f"m{version}.c"
        source.write_text(_source(extra))
        for kind, flags in (("so", ["-shared", "-fPIC"]), ("exe", ["-fPIE", "-pie"])):
            out = folder / f"{kind}{version}"
            subprocess.run(["gcc", "-O1", *flags, "-o", str(out), str(source)], check=True)
            built[kind].append(out.read_bytes())
    return {kind: (pair[0], pair[1]) for kind, pair in built.items()}


def _wheels(tmp_path: Path, old: bytes, new: bytes, name: str) -> tuple[Path, Path]:
    tag = "cp311-cp311-linux_x86_64"
    files = {"pkg/__init__.py": b"from pkg._m import *\n"}
    return (
        build_wheel(tmp_path, "pkg", "1.0", {**files, name: old}, tag=tag),
        build_wheel(tmp_path, "pkg", "1.1", {**files, name: new}, tag=tag),
    )


@pytest.mark.parametrize(
    ("kind", "name"), [("so", "pkg/_m.cpython-311-x86_64-linux-gnu.so"), ("exe", "pkg-1.1.data/scripts/tool")]
)
def test_moved_code_round_trips_and_costs_less(tmp_path: Path, roundtrip, binaries, kind: str, name: str) -> None:
    old, new = _wheels(tmp_path, *binaries[kind], name)
    plain = roundtrip(old, new, differ="bsdiff4")
    aware = roundtrip(old, new, differ="elf+bsdiff4")
    assert aware < plain
    assert roundtrip(old, new) <= aware  # "auto" keeps the smallest


def test_images_are_found_in_a_blob(binaries) -> None:
    so = binaries["so"][0]
    found = elf.images(b"name\n" + so + b"\x7fELF but no header" + so)
    assert [(i.start, i.size) for i in found] == [(5, len(so)), (5 + len(so) + 18, len(so))]
    assert found[0].vaddr(found[0].offset(found[0].low) or 0) == found[0].low


def _elf_payload(binaries) -> tuple[bytes, bytes, bytes]:
    old, new = binaries["so"]
    return old, new, ElfBsdiff().diff(old, new)


def _with_map(payload: bytes, raw_map: bytes) -> bytes:
    packed = struct.unpack_from("<QQ", payload)[1]
    new_map = codec.xz_compress(raw_map)
    return struct.pack("<QQ", len(raw_map), len(new_map)) + new_map + payload[16 + packed :]


@pytest.mark.parametrize(
    "raw_map",
    [
        struct.pack("<II", 1, 1) + struct.pack("<Qq", 0, 16),  # no image 1 in the old blob
        struct.pack("<II", 0, 0),  # no breakpoint
        struct.pack("<II", 0, 2) + struct.pack("<Qq", 4096, 16) + struct.pack("<Qq", 0, 16),  # out of order
        struct.pack("<II", 0, 3) + struct.pack("<Qq", 4096, 16),  # truncated
        struct.pack("<II", 0, 2) + struct.pack("<Qq", 1 << 63, 0) * 2,  # beyond 64 bits
    ],
    ids=["image", "empty", "order", "truncated", "range"],
)
def test_a_corrupt_map_is_one_line(binaries, raw_map: bytes) -> None:
    old, new, payload = _elf_payload(binaries)
    with pytest.raises(PatchFormatError) as caught:
        ElfBsdiff().patch(old, _with_map(payload, raw_map), len(new))
    assert "address map" in str(caught.value) and "\n" not in str(caught.value)


def test_a_map_size_beyond_the_limit_is_refused_before_allocation(binaries) -> None:
    old, new, payload = _elf_payload(binaries)
    with pytest.raises(PatchFormatError, match="address map size"):
        ElfBsdiff().patch(old, struct.pack("<QQ", map_limit(len(old)) + 1, 8) + payload[16:], len(new))


def test_without_the_extension_the_same_bytes(tmp_path: Path, binaries, monkeypatch) -> None:
    old_wheel, new_wheel = _wheels(tmp_path, *binaries["so"], "pkg/_m.so")
    patch = tmp_path / "p"
    make_patch(old_wheel, new_wheel, patch, differ="elf+bsdiff4")
    monkeypatch.setattr(predict, "COMPILED", None)
    out = tmp_path / "out"
    out.mkdir()
    assert apply_patch(patch.read_bytes(), WheelSource(old_wheel), out).read_bytes() == new_wheel.read_bytes()


needs_extension = pytest.mark.skipif(predict.COMPILED is None, reason="the optional C extension is not built")
_OPCODES = [0xE8, 0xE9, 0x0F, 0x85, 0xFF, 0x15, 0x25, 0x48, 0x4C, 0x8B, 0x8D, 0x05, 0x00, 0xFF, 0x10, 0x28, 0xD6]


@needs_extension
def test_compiled_scan_equals_python_on_real_code(binaries) -> None:
    old, _, payload = _elf_payload(binaries)
    raw, packed = struct.unpack_from("<QQ", payload)
    maps = addrmap.decode(codec.xz_decompress(payload[16 : 16 + packed], raw, "map"), 1)
    images = elf.images(old)
    assert predict.predict(old, maps, images, scan.rel32) == predict.predict(old, maps, images, predict.COMPILED)


@needs_extension
@settings(max_examples=300, deadline=None)
@given(
    code=st.lists(st.one_of(st.sampled_from(_OPCODES), st.integers(0, 255)), max_size=300).map(bytes),
    vaddr=st.integers(0, 1 << 20),
    low=st.integers(0, 1 << 20),
    span=st.integers(0, 1 << 21),
    points=st.lists(st.tuples(st.integers(0, 1 << 21), st.integers(-(1 << 33), 1 << 33)), max_size=8),
    cut=st.integers(0, 20),
)
def test_compiled_scan_equals_python(code: bytes, vaddr: int, low: int, span: int, points, cut: int) -> None:
    points = sorted(dict(points).items())
    starts = b"".join(struct.pack("<Q", s) for s, _ in points)
    deltas = b"".join(struct.pack("<q", d) for _, d in points)
    start, end = min(cut, len(code)), max(min(cut, len(code)), len(code) - cut)
    ours, theirs = bytearray(code), bytearray(code)
    assert predict.COMPILED is not None
    count = scan.rel32(ours, start, end, vaddr, low, low + span, starts, deltas)
    assert predict.COMPILED(theirs, start, end, vaddr, low, low + span, starts, deltas) == count
    assert ours == theirs
