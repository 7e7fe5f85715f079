"""The local index end to end: real pip and uv, real upstreams (JSON + PEP 658, bare HTML), ``pipdelta serve``."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import module_text
from httpclient import request
from packaging.requirements import Requirement
from simpleindex import SimpleIndex, serving
from venvs import isolated_env
from wheelfactory import build_wheel
from zlibng import zlibng_client

from pipdelta.cli import main
from pipdelta.client.cache import Cache
from pipdelta.client.config import load
from pipdelta.client.environment import Environment
from pipdelta.client.http import Http
from pipdelta.index.builder import build_index
from pipdelta.proxy.download import Download
from pipdelta.proxy.local import local_index
from pipdelta.proxy.targets import Target
from pipdelta.proxy.timing import BYTES, Meter
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
    build_wheel(folder, "bulk", "1.0", {"bulk/data.bin": random.Random(1).randbytes(512 << 10)})
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


@pytest.mark.parametrize(("wanted", "rebuilt"), [("alpha", "1.1"), ("alpha<1.1", None), ("alpha==1.1", "1.1")])
def test_what_the_installer_was_asked_for_is_rebuilt_before_it_asks(
    wheels: Path, deltas: str, venv: Path, wanted: str, rebuilt: str | None
) -> None:
    """The newest wheel each requirement admits is rebuilt early; the installer then reads the page read early."""
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True)
    settings = load(deltas, prefer="bytes")
    with serving(upstream) as url, local_index([Upstream.parse(url)], settings, Environment(str(venv))) as local:
        local.app.start_early([Requirement(wanted)])
        files = url.rsplit("/simple", 1)[0] + "/files/"
        newest = files + "alpha-1.1-py3-none-any.whl"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and upstream.pages["alpha"] == 0:
            time.sleep(0.01)
        job = local.rebuilds.get(newest)
        while rebuilt and job is None and time.monotonic() < deadline:
            time.sleep(0.01)
            job = local.rebuilds.get(newest)
        if rebuilt is None:
            assert job is None  # the specifier admits only the installed 1.0: nothing to rebuild
        else:
            assert job is not None and job.done.wait(30) and job.path is not None  # before any installer request
        assert upstream.pages["alpha"] == 1
        assert pip_through(venv, local.urls[0], "-U", wanted).returncode == 0
        assert upstream.pages["alpha"] == 1  # pip's request was answered with the page read early
    if rebuilt:
        installed(venv, wheels, "alpha", "1.1")
        assert upstream.downloads == {}


def test_a_wheel_whose_patches_are_here_waits_past_the_deadline_for_its_rebuild(
    wheels: Path, deltas: str, venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline guards against a slow delta index; a rebuild busy on this machine's cores is waited for."""
    from pipdelta.proxy import jobs

    real = jobs._apply

    def slow(*args: Any) -> Path:
        time.sleep(2.5)  # cores busy with the run's other rebuilds
        return real(*args)

    monkeypatch.setattr(jobs, "_apply", slow)
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True)
    settings = replace(load(deltas, prefer="bytes"), deadline=2.0)
    with serving(upstream) as url, local_index([Upstream.parse(url)], settings, Environment(str(venv))) as local:
        assert pip_through(venv, local.urls[0], "alpha==1.1").returncode == 0
        rows = {o.name: o for o in local.ledger.outcomes()}
    assert rows["alpha"].method == "delta" and upstream.downloads == {}
    installed(venv, wheels, "alpha", "1.1")


def test_pages_are_served_while_the_rebuilds_start_and_wheels_asked_for_meanwhile_are_rebuilt(
    wheels: Path, deltas: str, venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The machinery starts beside the installer: its first requests need none of it."""
    from pipdelta.proxy import local as module

    real, release = module.finders, threading.Event()

    def slow(*args: Any) -> Any:
        release.wait(30)  # the engine still importing
        return real(*args)

    monkeypatch.setattr(module, "finders", slow)
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True)
    settings = load(deltas, prefer="bytes")
    with serving(upstream) as url, local_index([Upstream.parse(url)], settings, Environment(str(venv))) as local:
        status, _, body = request(local.urls[0] + "alpha/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        assert status == 200 and not local.app._ready.is_set()
        wheel = next(f for f in json.loads(body)["files"] if f["filename"].startswith("alpha-1.1"))
        status, _, _ = request(urllib.parse.urljoin(local.urls[0] + "alpha/", wheel["url"]) + ".metadata")
        assert status == 200  # and alpha 1.1's rebuild waits for the machinery
        release.set()
        assert pip_through(venv, local.urls[0], "alpha==1.1").returncode == 0
        rows = {o.name: o for o in local.ledger.outcomes()}
    assert rows["alpha"].method == "delta" and upstream.downloads == {}


def test_rebuilds_that_cannot_start_cost_full_downloads_never_the_install(
    wheels: Path, deltas: str, venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipdelta.proxy import local as module

    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(module, "finders", broken)
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True)
    with serving(upstream) as url, local_index([Upstream.parse(url)], load(deltas), Environment(str(venv))) as local:
        assert pip_through(venv, local.urls[0], "alpha==1.1").returncode == 0
        rows = {o.name: o for o in local.ledger.outcomes()}
        assert any("could not start" in line and "a bug" in line for line in local.warnings)
    assert rows["alpha"].method == "full" and rows["alpha"].reason == "the rebuilds could not start"
    installed(venv, wheels, "alpha", "1.1")


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


def pip_through(python: Path, index: str, *requirements: str) -> subprocess.CompletedProcess[str]:
    """``pip install`` of ``requirements`` from ``index`` alone, without retries or cache."""
    env = {**isolated_env(), "PIP_INDEX_URL": index, "PIP_NO_CACHE_DIR": "1", "PIP_RETRIES": "0"}
    command = [str(python), "-m", "pip", "install", "--no-deps", *requirements]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("gamma", "No matching distribution found for gamma==1.0"),
        ("gamma-1.0-py3-none-any.whl", "too many 500 error responses"),
    ],
)
def test_an_upstream_answering_500_fails_the_installer_as_it_fails_plain_pip(
    wheels: Path, deltas: str, venv: Path, broken: str, message: str
) -> None:
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True)
    upstream.errors[broken] = 500
    settings = replace(load(deltas), retries=0)
    with serving(upstream) as url, local_index([Upstream.parse(url)], settings, Environment(str(venv))) as local:
        plain = pip_through(venv, url, "gamma==1.0")
        through = pip_through(venv, local.urls[0], "gamma==1.0")
        assert local.ledger.outcomes() == []  # nothing was served
    assert plain.returncode == through.returncode == 1
    assert message in plain.stderr and message in through.stderr
    assert "gamma" not in subprocess.run([venv, "-m", "pip", "list"], capture_output=True, text=True).stdout


def test_wrong_bytes_for_a_listed_sha256_are_never_accepted(
    wheels: Path, deltas: str, venv: Path, tmp_path: Path
) -> None:
    """alpha is rebuilt (its verified bytes, not upstream's); gamma is streamed and pip's hash check refuses it."""
    upstream = SimpleIndex(
        wheels, json_pages=True, metadata=True, tamper=("alpha-1.1-py3-none-any.whl", "gamma-1.0-py3-none-any.whl")
    )
    settings = load(deltas, prefer="bytes")
    with serving(upstream) as url, local_index([Upstream.parse(url)], settings, Environment(str(venv))) as local:
        gamma = pip_through(venv, local.urls[0], "gamma==1.0")
        alpha = pip_through(venv, local.urls[0], "alpha==1.1")
    assert gamma.returncode == 1 and "THESE PACKAGES DO NOT MATCH THE HASHES" in gamma.stderr
    assert alpha.returncode == 0, alpha.stderr
    installed(venv, wheels, "alpha", "1.1")
    assert upstream.downloads == {"gamma-1.0-py3-none-any.whl": 1}
    cached = {p.name for p in (tmp_path / "pdcache").rglob("*.whl")}
    assert "gamma-1.0-py3-none-any.whl" not in cached  # the wrong bytes are not the old version next time


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_pipdelta_proxy_in_the_foreground_serves_pip_until_a_signal(
    wheels: Path, deltas: str, venv: Path, signum: int
) -> None:
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True)
    with serving(upstream) as url:
        command = [sys.executable, "-m", "pipdelta", "proxy", "--delta-index", deltas, "--python", str(venv)]
        proxy = subprocess.Popen(
            [*command, "--prefer", "bytes"],
            env={**os.environ, "PIP_INDEX_URL": url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proxy.stdout is not None
            assert f"serving {url}/ through the local index; use:" in proxy.stdout.readline()
            first = proxy.stdout.readline()
            assert first.startswith("export PIP_INDEX_URL='")
            local = first.split("'")[1]
            assert pip_through(venv, local, "alpha==1.1").returncode == 0
            proxy.send_signal(signum)
            err = proxy.communicate(timeout=60)[1]
        finally:
            proxy.kill()
    assert proxy.returncode == 0
    assert "alpha" in err and "delta" in err  # the savings table, on exit
    installed(venv, wheels, "alpha", "1.1")
    assert upstream.downloads == {}


class Paced(BaseHTTPRequestHandler):
    """512 KiB in 32 KiB chunks, ``pause`` seconds after each: a link of a known speed."""

    pause = 0.0

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(16 * 32768))
        self.end_headers()
        for _ in range(16):
            self.wfile.write(bytes(32768))
            time.sleep(self.pause)

    def log_message(self, format: str, *args: object) -> None:
        pass


def measured(pause: float) -> Meter:
    """A meter that has seen one real download through the local index's own code, at ``pause`` per chunk."""
    handler = type("Handler", (Paced,), {"pause": pause})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    meter = Meter(wait=30.0, cores=2)
    try:
        url = f"http://127.0.0.1:{server.server_port}/blob.whl"
        download = Download(Upstream.parse(url), Http(), Target(0, url, "blob.whl", None, None), None)
        assert meter.started(None)
        assert sum(map(len, download.chunks(download.open()))) == 16 * 32768
        meter.finished(download.received)
    finally:
        server.shutdown()
        server.server_close()
    return meter


def test_the_meter_takes_patches_on_a_slow_link_and_full_wheels_on_a_fast_one() -> None:
    slow, fast = measured(0.02), measured(0.0)  # about 1.5 MB/s; loopback at full speed
    assert slow.link is not None and fast.link is not None and slow.link < 2e6 < fast.link
    full, patch, cpu = 4_000_000, 200_000, 0.5
    assert slow.rebuild_first(cpu, patch, full) and not fast.rebuild_first(cpu, patch, full)
    assert Meter(BYTES).rebuild_first(cpu, patch, full) and Meter().rebuild_first(cpu, patch, full)  # unmeasured
    assert slow.deadline(full) == pytest.approx(2 * full / slow.link) and fast.deadline(full) == 1.0
    assert fast.rebuild_first(0.0001, patch, full * 1000)  # a rebuild of no cost pays even on loopback


def test_the_meter_downloads_what_the_booked_cores_would_rebuild_too_late() -> None:
    """Rebuilds book the cores, downloads the link: a wheel is downloaded when that ends the run sooner by more
    than half the time its extra bytes take on the link, so the two resources fill up side by side."""
    meter = measured(0.02)
    assert meter.link is not None
    full = 4_000_000
    download = full / meter.link
    cpu = 1.8 * download  # each rebuild books the 2 cores for 0.9 downloads' time, and alone takes 1.35
    choices = [meter.rebuild_first(cpu, 0, full) for _ in range(4)]
    assert choices == [True, False, True, False]


def test_a_rebuild_weighed_again_gives_its_booking_back_when_the_download_wins() -> None:
    meter = measured(0.02)
    assert meter.link is not None
    cpu = 1.8 * 4_000_000 / meter.link
    assert meter.rebuild_first(cpu, 0, 4_000_000)  # booked: the cores are busy for 0.9 downloads' time
    assert meter._cores_free > time.monotonic()
    assert not meter.rebuild_first(cpu, 0, 4_000, booked=cpu)  # the wheel turns out tiny: downloaded after all
    assert meter._cores_free <= time.monotonic()  # the cores are free again


def test_on_a_fast_link_the_local_index_streams_the_full_wheel(wheels: Path, deltas: str, venv: Path) -> None:
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True)
    with serving(upstream) as url, local_index([Upstream.parse(url)], load(deltas), Environment(str(venv))) as local:
        assert pip_through(venv, local.urls[0], "bulk==1.0").returncode == 0  # 512 kB: the link is measured
        assert (local.rebuilds.context.meter.link or 0) > 4e6
        assert pip_through(venv, local.urls[0], "alpha==1.1").returncode == 0
        rows = {o.name: o for o in local.ledger.outcomes()}
    installed(venv, wheels, "alpha", "1.1")
    assert rows["alpha"].method == "full" and rows["alpha"].reason == "a full download is faster on this link"
    assert upstream.downloads == {"bulk-1.0-py3-none-any.whl": 1, "alpha-1.1-py3-none-any.whl": 1}


PDM = shutil.which("pdm", path=str(Path(sys.executable).parent)) or shutil.which("pdm")


def demo_project(folder: Path, tool: str) -> Path:
    """A project that depends on alpha 1.1 and is not itself a package (``tool``: the installer's table)."""
    project = folder / "project"
    project.mkdir()
    head = '[project]\nname = "demo"\nversion = "0"\nrequires-python = ">=3.8"\ndependencies = ["alpha==1.1"]\n'
    (project / "pyproject.toml").write_text(head + tool)
    return project


def test_pdm_through_pipdelta_run_gets_the_rebuilt_wheel(
    wheels: Path, deltas: str, venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pdm reads PDM_PYPI_URL, which ``pipdelta run`` sets: nothing else to configure."""
    if PDM is None:
        pytest.skip("pdm is not installed (pip install pdm)")
    project = demo_project(tmp_path, "[tool.pdm]\ndistribution = false\n")
    monkeypatch.setenv("VIRTUAL_ENV", str(venv.parent.parent))  # the venv pdm installs into
    monkeypatch.setenv("PDM_CACHE_DIR", str(tmp_path / "pdmcache"))
    monkeypatch.setenv("PDM_HOME", str(tmp_path / "pdmhome"))
    monkeypatch.setenv("PDM_CHECK_UPDATE", "false")
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True)
    report = tmp_path / "report.json"
    with serving(upstream) as url:
        monkeypatch.setenv("PIP_INDEX_URL", url)
        argv = ["run", "--delta-index", deltas, "--python", str(venv), "--json", str(report), "-q", "--"]
        assert main([*argv, PDM, "install", "--no-self", "-p", str(project)]) == 0
    installed(venv, wheels, "alpha", "1.1")
    rows = {p["name"]: p for p in json.loads(report.read_text())["packages"]}
    assert rows["alpha"]["method"] == "delta"
    assert upstream.downloads == {}


POETRY = shutil.which("poetry", path=str(Path(sys.executable).parent)) or shutil.which("poetry")


def test_poetry_with_the_local_index_as_its_primary_source_gets_the_rebuilt_wheel(
    wheels: Path, deltas: str, venv: Path, tmp_path: Path
) -> None:
    """poetry's one line of configuration: the local index as the project's primary source."""
    if POETRY is None:
        pytest.skip("poetry is not installed (pip install poetry)")
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True)
    settings = load(deltas, prefer="bytes")
    project = demo_project(tmp_path, "[tool.poetry]\npackage-mode = false\n")
    env = {**isolated_env(), "VIRTUAL_ENV": str(venv.parent.parent), "POETRY_CACHE_DIR": str(tmp_path / "poetry")}
    env["POETRY_CONFIG_DIR"] = str(tmp_path / "poetry-config")
    with serving(upstream) as url, local_index([Upstream.parse(url)], settings, Environment(str(venv))) as local:
        source = [POETRY, "source", "add", "--priority=primary", "pipdelta", local.urls[0]]
        subprocess.run(source, cwd=project, env=env, check=True, capture_output=True)
        done = subprocess.run([POETRY, "install"], cwd=project, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        rows = {o.name: o for o in local.ledger.outcomes()}
    installed(venv, wheels, "alpha", "1.1")
    assert rows["alpha"].method == "delta"
    assert upstream.downloads == {}


def test_members_this_machine_cannot_remake_come_as_ranges_of_the_upstream_wheel(
    wheels: Path, deltas: str, venv: Path, tmp_path: Path
) -> None:
    """A zlib-ng client (Fedora, Windows 3.14) rebuilding from a cached old wheel: the members its zlib cannot
    re-create are byte ranges of the upstream file, counted in the report; pip gets the exact wheel."""
    old = next(wheels.glob("alpha-1.0-*.whl"))
    Cache(tmp_path / "pdcache").add(old.name, old.read_bytes(), hashlib.sha256(old.read_bytes()).hexdigest())
    upstream = SimpleIndex(wheels, json_pages=True, metadata=True)
    with serving(upstream) as url, zlibng_client():
        os.environ["PIP_INDEX_URL"] = url
        report = tmp_path / "report.json"
        argv = ["upgrade", "alpha==1.1", "--delta-index", deltas, "--python", str(venv), "--json", str(report)]
        assert main([*argv, "--prefer", "bytes"]) == 0
    installed(venv, wheels, "alpha", "1.1")
    alpha = json.loads(report.read_text())["packages"][0]
    assert alpha["method"] == "delta" and alpha["source"] == "cached wheel", alpha
    assert upstream.ranges > 0 and alpha["downloaded"] < alpha["full_size"] / 2
