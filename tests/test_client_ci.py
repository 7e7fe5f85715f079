"""The CI case end to end: a fresh runner, a restored cache (pipdelta's or uv's), new pins; real pip and uv."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ciworld import (
    UV,
    delta_folder,
    deltas,
    empty_venv,
    fresh_venv,
    needs_uv,
    pins,
    rows,
    runner,
    upstream,
    uv_cache,
    version_of,
    wheels,
)
from simpleindex import SimpleIndex

from pipdelta.cli import main

__all__ = ["delta_folder", "deltas", "empty_venv", "runner", "upstream", "uv_cache", "wheels"]  # fixtures


def install_alpha_11(deltas: str, empty_venv: Path, runner: Path) -> dict[str, Any]:
    """``pipdelta install -r requirements.txt`` (alpha==1.1) into a fresh venv; alpha's row of the report."""
    python = fresh_venv(empty_venv, runner / "venv")
    report = runner / "report.json"
    argv = ["install", "-r", str(pins(runner, "alpha==1.1")), "--delta-index", deltas, "--python", str(python)]
    assert main([*argv, "--json", str(report), "-q"]) == 0
    assert version_of(python, "alpha") == "1.1"
    return rows(report)["alpha"]


@needs_uv
def test_uv_run_patches_against_a_restored_uv_cache(
    upstream: tuple[SimpleIndex, str], deltas: str, uv_cache: Path, runner: Path
) -> None:
    assert UV is not None
    shutil.copytree(uv_cache, runner / "uvcache", symlinks=True)
    subprocess.run([UV, "venv", "-q", str(runner / "venv")], check=True)
    requirements = pins(runner, "alpha==1.1")
    report = runner / "report.json"
    command = [UV, "pip", "install", "--python", str(runner / "venv"), "-r", str(requirements)]
    assert main(["run", "--delta-index", deltas, "--json", str(report), "-q", "--", *command]) == 0
    assert version_of(runner / "venv/bin/python", "alpha") == "1.1"
    alpha = rows(report)["alpha"]
    assert alpha["method"] == "delta" and alpha["source"] == "uv's cache" and alpha["old"] == "1.0"
    assert upstream[0].downloads == {}


@needs_uv
def test_pip_install_patches_against_a_restored_uv_cache(
    upstream: tuple[SimpleIndex, str], deltas: str, uv_cache: Path, empty_venv: Path, runner: Path
) -> None:
    shutil.copytree(uv_cache, runner / "uvcache", symlinks=True)
    alpha = install_alpha_11(deltas, empty_venv, runner)
    assert alpha["method"] == "delta" and alpha["source"] == "uv's cache"
    assert upstream[0].downloads == {}


@needs_uv
def test_an_unpacked_wheel_edited_in_uvs_cache_is_not_a_source(
    upstream: tuple[SimpleIndex, str], deltas: str, uv_cache: Path, empty_venv: Path, runner: Path
) -> None:
    shutil.copytree(uv_cache, runner / "uvcache", symlinks=True)
    edited = next((runner / "uvcache").glob("archive-v*/*/alpha/mod5.py"))
    edited.unlink()  # uv links the file into venvs: replace it, never write through the link
    edited.write_text("# edited\n")
    alpha = install_alpha_11(deltas, empty_venv, runner)
    assert alpha["method"] == "full" and "modified" in alpha["reason"]
    assert upstream[0].downloads == {"alpha-1.1-py3-none-any.whl": 1}


def test_the_ci_recipe_patches_on_the_second_run(
    upstream: tuple[SimpleIndex, str], deltas: str, empty_venv: Path, runner: Path
) -> None:
    """Run 1 downloads in full into a fresh cache; run 2 (fresh venv, new pins, the cache restored) patches."""
    report = runner / "report.json"
    first = fresh_venv(empty_venv, runner / "run1")
    argv = ["install", "-r", str(pins(runner, "alpha==1.1")), "--delta-index", deltas, "--json", str(report), "-q"]
    assert main([*argv, "--python", str(first)]) == 0
    alpha = rows(report)["alpha"]
    size = (upstream[0].folder / "alpha-1.1-py3-none-any.whl").stat().st_size
    assert alpha["method"] == "full" and alpha["downloaded"] == alpha["full_size"] == size
    assert list((runner / "pdcache").glob("wheels/*/alpha-1.1-*.whl"))

    second = fresh_venv(empty_venv, runner / "run2")
    argv = ["install", "-r", str(pins(runner, "alpha==1.2")), "--delta-index", deltas, "--json", str(report), "-q"]
    assert main([*argv, "--python", str(second)]) == 0
    alpha = rows(report)["alpha"]
    assert alpha["method"] == "delta" and alpha["source"] == "cached wheel" and alpha["old"] == "1.1"
    assert upstream[0].downloads == {"alpha-1.1-py3-none-any.whl": 1}


def test_hash_pinned_requirements_get_patches_and_the_report_counts_what_was_fetched(
    upstream: tuple[SimpleIndex, str], deltas: str, empty_venv: Path, runner: Path
) -> None:
    """``--hash`` lines (pip-tools, ``uv export``): pip checks the rebuilt wheel's hash and installs it."""
    python = fresh_venv(empty_venv, runner / "venv")
    old = upstream[0].folder / "alpha-1.0-py3-none-any.whl"
    subprocess.run([python, "-m", "pip", "install", "-q", str(old)], check=True)
    new, gamma = (upstream[0].folder / f"{n}-py3-none-any.whl" for n in ("alpha-1.1", "gamma-1.0"))
    requirements = pins(
        runner,
        f"alpha==1.1 --hash=sha256:{hashlib.sha256(new.read_bytes()).hexdigest()}",
        f"gamma==1.0 --hash=sha256:{hashlib.sha256(gamma.read_bytes()).hexdigest()}",
    )
    report = runner / "report.json"
    argv = ["install", "-r", str(requirements), "--delta-index", deltas, "--python", str(python)]
    assert main([*argv, "--json", str(report), "-q"]) == 0
    assert version_of(python, "alpha") == "1.1"
    document = json.loads(report.read_text())
    alpha, gamma_row = (rows(report)[n] for n in ("alpha", "gamma"))
    assert alpha["method"] == "delta" and alpha["downloaded"] < new.stat().st_size / 5
    assert gamma_row["method"] == "full" and gamma_row["downloaded"] == gamma_row["full_size"] == gamma.stat().st_size
    assert upstream[0].downloads == {gamma.name: 1}
    totals = document["totals"]
    assert totals["downloaded"] == alpha["downloaded"] + gamma_row["downloaded"]
    assert totals["saved"] == new.stat().st_size - alpha["downloaded"]
