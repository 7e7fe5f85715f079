"""Optional: real PyPI wheels from ../shared/corpus (skipped unless fetched). The small pairs only; the
benchmark covers them all."""

from __future__ import annotations

from pathlib import Path

import pytest

SMALL = [
    ("click", "8.1.6", "8.1.7"),
    ("packaging", "24.0", "24.1"),
    ("typing_extensions", "4.12.1", "4.12.2"),
    ("urllib3", "1.26.18", "2.2.3"),
    ("orjson", "3.10.6", "3.10.7"),
    ("rich", "13.0.0", "13.8.0"),
]


def wheel(corpus: Path, name: str, version: str) -> Path:
    found = sorted(corpus.glob(f"{name}-{version}-*.whl"))
    if not found:
        pytest.skip(f"{name} {version} is not in the corpus")
    return found[0]


@pytest.mark.parametrize(("name", "old", "new"), SMALL, ids=[f"{n}-{o}-{v}" for n, o, v in SMALL])
def test_real_pair_round_trips(corpus: Path, roundtrip, name: str, old: str, new: str) -> None:
    new_wheel = wheel(corpus, name, new)
    assert roundtrip(wheel(corpus, name, old), new_wheel) < new_wheel.stat().st_size * 0.4


@pytest.mark.parametrize("tag", ["win-cp314", "mac-cp313"])
def test_platform_pair_on_a_zlibng_client(corpus: Path, tmp_path: Path, tag: str) -> None:
    """msgpack's platform wheels rebuild exactly on a zlib-ng client, its missing members fetched by range."""
    from zlibng import zlibng_client

    from pipdelta import WheelSource, apply_patch, make_patch

    old, new = wheel(corpus / tag, "msgpack", "1.2.3"), wheel(corpus / tag, "msgpack", "1.2.4")
    make_patch(old, new, tmp_path / "p.pdelta")
    data = new.read_bytes()
    with zlibng_client():
        rebuilt = apply_patch(
            (tmp_path / "p.pdelta").read_bytes(),
            WheelSource(old),
            tmp_path / "out.whl",
            fetch=lambda ranges: [data[start : start + length] for start, length in ranges],
        )
    assert rebuilt.read_bytes() == data
