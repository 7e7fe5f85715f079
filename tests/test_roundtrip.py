"""Patches rebuild the new wheel byte for byte, whatever the ZIP layout and the engine that wrote it."""

from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path

import pytest
from conftest import module_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wheelfactory import Raw, build_raw_wheel, build_wheel, wheel_members

from pipdelta.engines.recipes import Recipe
from pipdelta.make.maker import make_patch

FILES_V1 = {f"pkg/mod{i}.py": module_text(i) for i in range(6)}
FILES_V2 = {**FILES_V1, "pkg/mod2.py": module_text(99), "pkg/new.py": b"NEW = 1\n"}


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"level": 1},
        {"level": 9},
        {"stored": ("pkg/mod1.py", "pkg/mod2.py")},
        {"data_descriptors": True},
        {"comment": b"a zip comment"},
        {"directories": ("pkg", "pkg/sub")},
    ],
    ids=["level6", "level1", "level9", "stored", "descriptors", "comment", "directories"],
)
def test_zipfile_layouts_rebuild_exactly(tmp_path: Path, roundtrip, options: dict) -> None:
    old = build_wheel(tmp_path, "pkg", "1.0", FILES_V1, **options)
    new = build_wheel(tmp_path, "pkg", "1.1", FILES_V2, **options)
    assert roundtrip(old, new) < new.stat().st_size / 4


def test_empty_and_unicode_members(tmp_path: Path, roundtrip) -> None:
    files = {"pkg/__init__.py": b"", "pkg/données/ü.txt": "ünïcödé\n".encode(), "pkg/日本.py": b"x = 1\n"}
    old = build_wheel(tmp_path, "pkg", "1.0", files)
    new = build_wheel(tmp_path, "pkg", "2.0", {**files, "pkg/日本.py": b"x = 2\n", "pkg/empty": b""})
    roundtrip(old, new)


def test_renamed_file_is_found_in_the_old_content(tmp_path: Path, roundtrip) -> None:
    big = module_text(7, 4000)
    old = build_wheel(tmp_path, "pkg", "1.0", {"pkg/libfoo-1a2b3c.so": big})
    new = build_wheel(tmp_path, "pkg", "1.1", {"pkg/libfoo-9f8e7d.so": big})
    assert roundtrip(old, new) < len(zlib.compress(big)) / 20


def test_unchanged_members_are_copied(tmp_path: Path) -> None:
    old = build_wheel(tmp_path, "pkg", "1.0", FILES_V1)
    new = build_wheel(tmp_path, "pkg", "1.1", FILES_V2)
    report = make_patch(old, new, tmp_path / "p")
    assert report.copied_members == 6  # every module but mod2, and WHEEL
    assert report.raw_members == 0


def _deflate(recipe: str):  # type: ignore[no-untyped-def]
    return Recipe.parse(recipe).compress


@pytest.mark.parametrize("recipe", ["cramjam:6", "flate2:6:8k", "flate2:6:whole", "zlib:9:8:0"])
def test_members_from_other_engines_are_re_created(tmp_path: Path, roundtrip, recipe: str) -> None:
    def wheel(version: str, files: dict[str, bytes]) -> Path:
        members = {n: Raw(c, _deflate(recipe)) for n, c in wheel_members("rs", version, files).items()}
        return build_raw_wheel(tmp_path, f"rs-{version}-py3-none-any.whl", members)

    big = module_text(3, 3000)
    old, new = wheel("1.0", {"rs/core.so": big}), wheel("1.1", {"rs/core.so": big + b"# more\n"})
    report = make_patch(old, new, tmp_path / "p")
    assert report.raw_members == 0
    assert recipe in report.recipes
    roundtrip(old, new)


def test_members_no_engine_re_creates_are_carried_compressed(tmp_path: Path, roundtrip) -> None:
    def odd(data: bytes) -> bytes:  # a 512-byte window: no candidate recipe writes this
        compressor = zlib.compressobj(6, zlib.DEFLATED, -9)
        return compressor.compress(data) + compressor.flush()

    def wheel(version: str, content: bytes) -> Path:
        members = {n: Raw(c, odd) for n, c in wheel_members("odd", version, {"odd/x.py": content}).items()}
        return build_raw_wheel(tmp_path, f"odd-{version}-py3-none-any.whl", members, prefix=b"junk before")

    old, new = wheel("1.0", module_text(1)), wheel("1.1", module_text(2))
    assert make_patch(old, new, tmp_path / "p").raw_members > 0
    roundtrip(old, new)


def test_gzip_members_are_diffed_uncompressed(tmp_path: Path, roundtrip) -> None:
    model = b"".join(b'{"operation%d": {"input": "Shape%d"}},\n' % (i, i % 97) for i in range(20000))
    old = build_wheel(tmp_path, "bc", "1.0", {"bc/model.json.gz": gzip.compress(model, mtime=1)})
    new = build_wheel(tmp_path, "bc", "1.1", {"bc/model.json.gz": gzip.compress(model + b"{}\n", mtime=2)})
    assert roundtrip(old, new) < 1500


def test_gzip_files_whose_header_alone_changed_cost_only_the_header(tmp_path: Path, roundtrip) -> None:
    models = {f"bc/m{i}.json.gz": b'{"shape%d": "String"},\n' % i * 3000 for i in range(5)}
    old = build_wheel(tmp_path, "bc", "1.0", {n: gzip.compress(m, mtime=1) for n, m in models.items()})
    new = build_wheel(tmp_path, "bc", "1.1", {n: gzip.compress(m, mtime=2) for n, m in models.items()})
    assert roundtrip(old, new) < 1200


def test_gzip_files_no_engine_re_creates_still_rebuild(tmp_path: Path, roundtrip) -> None:
    def odd_gzip(data: bytes, mtime: int) -> bytes:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -10)
        body = compressor.compress(data) + compressor.flush()
        header = b"\x1f\x8b\x08\x08" + mtime.to_bytes(4, "little") + b"\x00\x03model.json\x00"
        return header + body + zlib.crc32(data).to_bytes(4, "little") + len(data).to_bytes(4, "little")

    model = module_text(5, 2000)
    old = build_wheel(tmp_path, "bc", "1.0", {"bc/m.json.gz": odd_gzip(model, 1)})
    new = build_wheel(tmp_path, "bc", "1.1", {"bc/m.json.gz": odd_gzip(model, 2)})
    roundtrip(old, new)


@pytest.mark.parametrize("differ", ["bsdiff4", "zstd"])
def test_each_differ_rebuilds_exactly(tmp_path: Path, roundtrip, differ: str) -> None:
    old = build_wheel(tmp_path, "pkg", "1.0", FILES_V1)
    new = build_wheel(tmp_path, "pkg", "1.1", FILES_V2)
    roundtrip(old, new, differ=differ)


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé_/0123456789", min_size=1, max_size=20).filter(
    lambda n: not n.startswith("/") and not n.endswith("/") and "//" not in n
)
contents = st.one_of(st.binary(max_size=3000), st.sampled_from([module_text(i, 50) for i in range(4)]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    old_files=st.dictionaries(names, contents, max_size=6),
    new_files=st.dictionaries(names, contents, max_size=6),
    level=st.integers(0, 9),
    descriptors=st.booleans(),
)
def test_any_pair_of_wheels_round_trips(
    tmp_path: Path, roundtrip, old_files: dict, new_files: dict, level: int, descriptors: bool
) -> None:
    old = build_wheel(tmp_path, "hyp", "1.0", {"hyp/" + n: c for n, c in old_files.items()}, level=level)
    new = build_wheel(
        tmp_path, "hyp", "2.0", {"hyp/" + n: c for n, c in new_files.items()}, data_descriptors=descriptors
    )
    roundtrip(old, new)


def test_an_old_wheel_whose_record_lies_still_rebuilds(tmp_path: Path, roundtrip) -> None:
    # The applier takes copied members' RECORD rows from the old wheel's RECORD; a wrong row there must
    # only cost it the hashing of every file, never the rebuild.
    old = build_wheel(tmp_path, "pkg", "1.0", FILES_V1)
    with zipfile.ZipFile(old) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    record = "pkg-1.0.dist-info/RECORD"
    row = next(line for line in members[record].splitlines() if line.startswith(b"pkg/mod1.py,"))
    lying = row[: len(b"pkg/mod1.py,sha256=")] + b"AAAA" + row[len(b"pkg/mod1.py,sha256=AAAA") :]
    members[record] = members[record].replace(row, lying)  # a digest of the right length, but wrong
    with zipfile.ZipFile(old, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    roundtrip(old, build_wheel(tmp_path, "pkg", "1.1", FILES_V2))
