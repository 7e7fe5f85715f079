"""The local index end to end: real pip and uv, real upstreams (JSON + PEP 658, bare HTML), ``pipdelta serve``."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import module_text
from httpclient import request
from simpleindex import SimpleIndex, serving
from venvs import isolated_env
from wheelfactory import build_wheel

from pipdelta.cli import main
from pipdelta.client.config import load
from pipdelta.client.environment import Environment
from pipdelta.index.builder import build_index
from pipdelta.proxy.local import local_index
from pipdelta.proxy.upstreams import Upstream
from pipdelta.server.app import IndexApp
from pipdelta.server.catalog import StaticCatalog
from pipdelta.server.logs import JsonLog
from pipdelta.server.run import running

OLD = {f"alpha/mod{i}.py": module_text(i) for i in range(12)}
NEW = {**OLD, "alpha/mod3.py": module_text(103), "alpha/new.py": b"NEW = 1\n"}
SECRET = "s3cr3t-pw"
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    build_wheel(folder, "alpha", "1.0", OLD)
    build_wheel(folder, "alpha", "1.1", NEW)
    build_wheel(folder, "gamma", "1.0", {"gamma/__init__.py": b"G = 1\n"})
    return folder


@pytest.fixture(scope="module")
def deltas(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    out = tmp_path_factory.mktemp("deltas")
    build_index(wheels, out)
    with running(IndexApp(StaticCatalog(out), log=JsonLog(io.StringIO()))) as url:
        yield url


@pytest.fixture(scope="module")
def template(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with alpha 1.0, installed from its file."""
    venv = tmp_path_factory.mktemp("template") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    wheel = next(wheels.glob("alpha-1.0-*.whl"))
    subprocess.run([venv / "bin/python", "-m", "pip", "install", "-q", str(wheel)], check=True, env=isolated_env())
    return venv


@pytest.fixture
def venv(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the template venv, and an environment that knows no index and no cache of this machine's."""
    target = tmp_path / "venv"
    shutil.copytree(template, target, symlinks=True)
    for key in list(os.environ):
        if key.startswith(("PIP_", "PIPDELTA_", "UV_")):
            monkeypatch.delenv(key)
    for key, value in isolated_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uvcache"))
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    monkeypatch.setenv("PIPDELTA_CACHE_DIR", str(tmp_path / "pdcache"))
    monkeypatch.setenv("PIPDELTA_CONFIG", str(tmp_path / "config.toml"))
    return target / "bin" / "python"


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://user:{SECRET}@")


def installed(python: Path, wheels: Path, name: str, version: str) -> None:
    """``name`` ``version`` is installed, every file byte-identical to the wheel's."""
    code = f"from importlib.metadata import version; print(version({name!r}))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == version
    site = next(python.parent.parent.glob("lib/python*/site-packages"))
    new = next(wheels.glob(f"{name}-{version}-*.whl"))
    import zipfile

    with zipfile.ZipFile(new) as archive:
        for member in archive.namelist():
            if not member.endswith("RECORD"):
                assert (site / member).read_bytes() == archive.read(member), member


def test_pip_upgrades_through_the_local_index_with_credentials_kept_secret(
    wheels: Path, deltas: str, venv: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True, auth=f"user:{SECRET}")
    with serving(upstream) as url:
        os.environ["PIP_INDEX_URL"] = with_credentials(url)
        report = tmp_path / "report.json"
        argv = ["upgrade", "alpha==1.1", "--delta-index", deltas, "--python", str(venv), "--json", str(report)]
        assert main([*argv, "--prefer", "bytes"]) == 0
    installed(venv, wheels, "alpha", "1.1")
    alpha = json.loads(report.read_text())["packages"][0]
    assert alpha["method"] == "delta" and alpha["old"] == "1.0" and alpha["downloaded"] < alpha["full_size"] / 5
    assert upstream.downloads == {}  # pip read the metadata file; the wheel was rebuilt
    assert upstream.authorizations and all(a.startswith("Basic ") for a in upstream.authorizations)
    out, err = capfd.readouterr()
    assert SECRET not in out + err + report.read_text()


def test_uv_through_pipdelta_run_gets_the_rebuilt_wheel(
    wheels: Path, deltas: str, venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if UV is None:
        pytest.skip("uv is not installed (pip install uv)")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("alpha==1.1\ngamma==1.0\n")
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True)
    report = tmp_path / "report.json"
    with serving(upstream) as url:
        monkeypatch.setenv("PIP_INDEX_URL", url)
        command = [UV, "pip", "install", "--python", str(venv), "-r", str(requirements)]
        argv = ["run", "--delta-index", deltas, "--python", str(venv), "--json", str(report), "-q", "--", *command]
        assert main(argv) == 0
    installed(venv, wheels, "alpha", "1.1")
    rows = {p["name"]: p for p in json.loads(report.read_text())["packages"]}
    assert rows["alpha"]["method"] == "delta" and rows["gamma"]["method"] == "full"
    assert upstream.downloads == {"gamma-1.0-py3-none-any.whl": 1}


def test_a_bare_upstream_never_downloads_a_wheel_twice_and_survives_a_dropped_connection(
    wheels: Path, deltas: str, venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hashes on the page: nothing can verify a rebuilt wheel, so the upstream's file is streamed through."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("alpha==1.1\ngamma==1.0\n")
    upstream = SimpleIndex(wheels, json_pages=False, hashes=False)
    upstream.break_once.add("alpha-1.1-py3-none-any.whl")
    report = tmp_path / "report.json"
    with serving(upstream) as url:
        monkeypatch.setenv("PIP_INDEX_URL", url)
        argv = ["run", "--delta-index", deltas, "--python", str(venv), "--json", str(report), "-q", "--"]
        assert main([*argv, str(venv), "-m", "pip", "install", "-q", "-r", str(requirements)]) == 0
    installed(venv, wheels, "alpha", "1.1")
    # alpha's connection dropped halfway and was resumed with a Range request: one download, in two parts.
    assert upstream.downloads == {"alpha-1.1-py3-none-any.whl": 2, "gamma-1.0-py3-none-any.whl": 1}
    rows = {p["name"]: p for p in json.loads(report.read_text())["packages"]}
    assert rows["alpha"]["method"] == "full" and "no sha256" in rows["alpha"]["reason"]
    assert rows["alpha"]["downloaded"] == rows["alpha"]["full_size"] == next(wheels.glob("alpha-1.1-*")).stat().st_size


def test_two_installer_runs_at_once_through_one_local_index(
    wheels: Path, deltas: str, venv: Path, template: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    shutil.copytree(template, other, symlinks=True)
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True)
    settings = load(deltas, prefer="bytes")
    results: list[int] = []
    with serving(upstream) as url, local_index([Upstream.parse(url)], settings, Environment(str(venv))) as local:

        def install(python: Path) -> None:
            env = {**isolated_env(), "PIP_INDEX_URL": local.urls[0], "PIP_NO_CACHE_DIR": "1"}
            command = [python, "-m", "pip", "install", "-q", "alpha==1.1", "gamma==1.0"]
            results.append(subprocess.run(command, env=env, check=False).returncode)

        threads = [threading.Thread(target=install, args=(p,)) for p in (venv, other / "bin/python")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        rows = {o.name: o for o in local.ledger.outcomes()}
    assert results == [0, 0]
    installed(venv, wheels, "alpha", "1.1")
    installed(other / "bin/python", wheels, "alpha", "1.1")
    assert rows["alpha"].method == "delta"
    assert upstream.downloads["alpha-1.1-py3-none-any.whl"] == 0


def test_pages_pass_every_field_on_and_negotiate_as_pypi_does(wheels: Path, deltas: str, tmp_path: Path) -> None:
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True)
    settings = load(deltas)
    with serving(upstream) as url, local_index([Upstream.parse(url)], settings, Environment(sys.executable)) as local:
        page = local.urls[0] + "alpha/"
        status, headers, body = request(page, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        assert status == 200 and headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"
        served = json.loads(body)
        original = json.loads(upstream.page("alpha")[1])  # type: ignore[index]
        assert served["versions"] == original["versions"] and served["meta"] == original["meta"]
        for mine, theirs in zip(served["files"], original["files"], strict=True):
            assert {**mine, "url": None} == {**theirs, "url": None}
            assert mine["url"].startswith(urllib.parse.urlsplit(page).path.split("/0/")[0])
        wheel = served["files"][1]
        status, _, data = request(urllib.parse.urljoin(page, wheel["url"]) + ".metadata")
        assert status == 200 and b"Name: alpha" in data
        status, headers, body = request(page, headers={"Accept": "text/html"})
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        text = body.decode()
        assert f"#sha256={wheel['hashes']['sha256']}" in text and 'data-requires-python="&gt;=3.8"' in text
        assert 'data-core-metadata="sha256=' in text and "data-provenance=" in text
        assert request(page, headers={"Accept": "application/json"})[0] == 406
        assert request(page.replace(local.base, local.base[:-4] + "xxxx"))[0] == 404  # not the secret prefix
        # The same page gives the same URLs every time: installers' HTTP caches recognise them.
        assert json.loads(request(page, headers={"Accept": "application/vnd.pypi.simple.v1+json"})[2]) == served
