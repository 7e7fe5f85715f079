"""The deflate engines: recipes parse strictly, fingerprints vouch for this machine, divination finds them."""

from __future__ import annotations

import ctypes.util
import os
import zlib

import pytest

from pipdelta.engines import fingerprint, zlibapi
from pipdelta.engines.recipes import CANDIDATES, Recipe
from pipdelta.errors import EngineMismatch, PatchFormatError
from pipdelta.make.divination import Diviner


@pytest.mark.parametrize("recipe", CANDIDATES, ids=str)
def test_every_candidate_passes_its_fingerprint_here(recipe: Recipe) -> None:
    if recipe.engine == "zlibng22" and not os.environ.get(zlibapi.ZLIBNG22):
        pytest.skip("no zlib-ng 2.2 here (PIPDELTA_ZLIBNG22 names one)")
    assert fingerprint.reproduces(recipe)
    assert Recipe.parse(str(recipe)) == recipe


@pytest.mark.parametrize("text", ["zlib:6:8", "zlib:10:8:0", "zlib:6:0:0", "flate2:6:4k", "cramjam:x", "brotli:5", ""])
def test_malformed_recipes_are_format_errors(text: str) -> None:
    with pytest.raises(PatchFormatError, match="unknown compression recipe"):
        Recipe.parse(text)


def test_recipe_without_fingerprint_is_an_engine_mismatch() -> None:
    with pytest.raises(EngineMismatch, match="zlib:4:9:1"):
        fingerprint.check([Recipe("zlib", 6), Recipe("zlib", 4, 9, 1)])


def test_fingerprints_tell_engines_apart() -> None:
    digests = {r: fingerprint.EXPECTED[str(r)] for r in CANDIDATES}
    assert len(set(digests.values())) == len(CANDIDATES)


def test_reproduces_rejects_near_misses() -> None:
    data = b"some text that repeats, some text that repeats " * 500
    target = Recipe("zlib", 6).compress(data)
    assert Recipe("zlib", 6).reproduces(data, target)
    assert not Recipe("zlib", 6).reproduces(data, target[:-1])
    assert not Recipe("zlib", 6).reproduces(data, target + b"\0")
    assert not Recipe("zlib", 1).reproduces(data, target)


def test_divination_prefers_what_worked_before() -> None:
    diviner = Diviner()
    data = bytes(range(256)) * 300
    level9 = zlib.compressobj(9, zlib.DEFLATED, -15)
    target = level9.compress(data) + level9.flush()
    found = diviner.recipe_for(data, target)
    assert found is not None and found.reproduces(data, target)
    assert diviner.recipe_for(b"x", b"not deflate at all") is None
    assert diviner.missed == 1


def test_a_zlib_library_is_driven_as_cpython_drives_it(monkeypatch: pytest.MonkeyPatch) -> None:
    path = ctypes.util.find_library("z")
    if path is None:
        pytest.skip("no zlib library on this machine")
    monkeypatch.setenv(zlibapi.CLASSIC, path)
    zlibapi.library.cache_clear()
    data = fingerprint.sample() * 3  # several output blocks
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    try:
        assert zlibapi.library(zlibapi.CLASSIC)(data, 9, 9, 0) == compressor.compress(data) + compressor.flush()
    finally:
        zlibapi.library.cache_clear()


def test_a_missing_engine_is_an_engine_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(zlibapi.ZLIBNG22, raising=False)
    zlibapi.library.cache_clear()
    with pytest.raises(EngineMismatch, match=r"no zlib-ng 2\.2"):
        zlibapi.library(zlibapi.ZLIBNG22)
    # without it, the nearest engine here runs: small members often come out the same, and checks tell
    data = fingerprint.sample()
    assert Recipe("zlibng22", 6).compress(data) == Recipe("zlibng", 6).compress(data)
    assert not fingerprint.reproduces(Recipe("zlibng22", 6))
