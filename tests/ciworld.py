"""A small world for client tests: alpha 1.0-1.2 and gamma on a PEP 691 index, their delta index, fresh runners."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import module_text
from simpleindex import SimpleIndex, serving
from venvs import isolated_env
from wheelfactory import build_wheel

from pipdelta.index.builder import build_index
from pipdelta.server.app import IndexApp
from pipdelta.server.catalog import StaticCatalog
from pipdelta.server.logs import JsonLog
from pipdelta.server.run import running

V10 = {f"alpha/mod{i}.py": module_text(i) for i in range(12)}
V11 = {**V10, "alpha/mod3.py": module_text(103), "alpha/new.py": b"NEW = 1\n"}
V12 = {**V11, "alpha/mod7.py": module_text(107)}
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
needs_uv = pytest.mark.skipif(UV is None, reason="uv is not installed (pip install uv)")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    for version, files in (("1.0", V10), ("1.1", V11), ("1.2", V12)):
        build_wheel(folder, "alpha", version, files)
    build_wheel(folder, "gamma", "1.0", {"gamma/__init__.py": b"G = 1\n"})
    return folder


@pytest.fixture(scope="module")
def delta_folder(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deltas")
    build_index(wheels, out)
    return out


@pytest.fixture(scope="module")
def deltas(delta_folder: Path) -> Iterator[str]:
    """``pipdelta serve`` of the delta index."""
    with running(IndexApp(StaticCatalog(delta_folder), log=JsonLog(io.StringIO()))) as url:
        yield url


@pytest.fixture(scope="module")
def upstream(wheels: Path) -> Iterator[tuple[SimpleIndex, str]]:
    index = SimpleIndex(wheels, json_pages=True, metadata=True)
    with serving(index) as url:
        yield index, url


@pytest.fixture(scope="module")
def empty_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with nothing but its own pip: a fresh runner's."""
    venv = tmp_path_factory.mktemp("template") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return venv


@pytest.fixture(scope="module")
def uv_cache(upstream: tuple[SimpleIndex, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """uv's cache after an earlier CI run installed alpha 1.0 (as restored by the CI's cache step)."""
    if UV is None:
        pytest.skip("uv is not installed (pip install uv)")
    base = tmp_path_factory.mktemp("uv")
    env = {**isolated_env(), "UV_CACHE_DIR": str(base / "cache"), "UV_NO_CONFIG": "1"}
    subprocess.run([UV, "venv", "-q", str(base / "venv")], check=True, env=env)
    install = [UV, "pip", "install", "-q", "--python", str(base / "venv"), "--index-url", upstream[1], "alpha==1.0"]
    subprocess.run(install, check=True, env=env)
    upstream[0].downloads.clear()
    return base / "cache"


@pytest.fixture
def runner(upstream: tuple[SimpleIndex, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh runner: no pip, uv or pipdelta settings of this machine's; pip's index is the upstream."""
    for key in list(os.environ):
        if key.startswith(("PIP_", "PIPDELTA_", "UV_", "VIRTUAL_ENV")):
            monkeypatch.delenv(key)
    for key, value in isolated_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_INDEX_URL", upstream[1])
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uvcache"))
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    monkeypatch.setenv("PIPDELTA_CACHE_DIR", str(tmp_path / "pdcache"))
    monkeypatch.setenv("PIPDELTA_CONFIG", str(tmp_path / "config.toml"))
    upstream[0].downloads.clear()
    return tmp_path


def fresh_venv(template: Path, where: Path) -> Path:
    shutil.copytree(template, where, symlinks=True)
    return where / "bin" / "python"


def rows(report: Path) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in json.loads(report.read_text())["packages"]}


def version_of(python: Path, name: str) -> str:
    code = f"from importlib.metadata import version; print(version({name!r}))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def pins(folder: Path, *lines: str) -> Path:
    path = folder / "requirements.txt"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def old_venv(upstream: tuple[SimpleIndex, str], empty_venv: Path) -> Path:
    """A venv with alpha 1.0 installed by its own pip, from the wheel file."""
    venv = empty_venv.parent / "old"
    shutil.copytree(empty_venv, venv, symlinks=True)
    wheel = upstream[0].folder / "alpha-1.0-py3-none-any.whl"
    subprocess.run([venv / "bin/python", "-m", "pip", "install", "-q", str(wheel)], check=True, env=isolated_env())
    return venv
