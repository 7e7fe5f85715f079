"""What a new user meets: which environment is acted on, whose pip runs, pip's options, the delta index's URL,
the report (real pip and uv, real venvs, real servers on 127.0.0.1)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import site
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ciworld import (
    UV,
    delta_folder,
    deltas,
    empty_venv,
    fresh_venv,
    needs_uv,
    old_venv,
    runner,
    upstream,
    version_of,
    wheels,
)
from simpleindex import SimpleIndex, serving
from venvs import isolated_env
from wheelfactory import build_wheel

import pipdelta
from pipdelta.cli import main
from pipdelta.client.config import load
from pipdelta.client.environment import Environment
from pipdelta.proxy.local import local_index
from pipdelta.proxy.upstreams import Upstream
from pipdelta.server.app import IndexApp
from pipdelta.server.catalog import StaticCatalog
from pipdelta.server.logs import JsonLog
from pipdelta.server.run import running

__all__ = ["delta_folder", "deltas", "empty_venv", "old_venv", "runner", "upstream", "wheels"]  # fixtures
SECRET = "d3lta-pw"


def upgraded(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    """``pipdelta ARGS --json -``: the JSON report from stdout, and stderr."""
    assert main([*args, "--json", "-", "-q"]) == 0
    out, err = capsys.readouterr()
    return json.loads(out), err


def test_a_tool_install_acts_on_the_activated_venv(
    deltas: str, old_venv: Path, runner: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pipdelta in its own venv (as pipx or ``uv tool`` install it), run from a shell where a venv is activated."""
    tool = runner / "tool"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tool)], check=True)
    # pipdelta and what it needs, as a tool install has them: this test run's own (a tox venv, or the checkout).
    here = [str(Path(pipdelta.__file__).parent.parent), *site.getsitepackages()]
    (next(tool.glob("lib/python*/site-packages")) / "pipdelta-tool.pth").write_text("\n".join(here) + "\n")
    target = fresh_venv(old_venv, runner / "project-venv")
    env = {**os.environ, "VIRTUAL_ENV": str(target.parent.parent), "PATH": f"{target.parent}:{os.environ['PATH']}"}
    command = [tool / "bin/python", "-m", "pipdelta", "upgrade", "alpha==1.1", "--delta-index", deltas, "-q"]
    subprocess.run(command, check=True, env=env, cwd=runner)
    assert version_of(target, "alpha") == "1.1"
    assert subprocess.run([tool / "bin/python", "-c", "import alpha"], capture_output=True).returncode != 0


def test_without_an_active_venv_the_dot_venv_here_is_the_target_and_python_takes_a_folder(
    deltas: str, old_venv: Path, runner: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = runner / "project"
    python = fresh_venv(old_venv, project / ".venv")
    monkeypatch.chdir(project)
    report, _ = upgraded(["upgrade", "alpha==1.1", "--delta-index", deltas], capsys)
    assert version_of(python, "alpha") == "1.1" and report["packages"][0]["method"] == "delta"
    other = fresh_venv(old_venv, runner / "other")
    report, _ = upgraded(
        ["upgrade", "alpha==1.2", "--delta-index", deltas, "--python", str(other.parent.parent)], capsys
    )
    assert version_of(other, "alpha") == "1.2" and version_of(python, "alpha") == "1.1"


def test_python_naming_a_folder_that_is_no_venv_is_one_line(
    deltas: str, runner: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["upgrade", "alpha", "--delta-index", deltas, "--python", str(runner)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a virtual environment" in err and str(runner) in err


@needs_uv
def test_a_uv_venv_without_pip_gets_pipdeltas_pip(
    upstream: tuple[SimpleIndex, str], deltas: str, runner: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert UV is not None
    venv = runner / "uvvenv"
    subprocess.run([UV, "venv", "-q", str(venv)], check=True)
    old = upstream[0].folder / "alpha-1.0-py3-none-any.whl"
    subprocess.run([UV, "pip", "install", "-q", "--no-cache", "--python", str(venv), str(old)], check=True)
    report, _ = upgraded(["upgrade", "alpha==1.1", "--delta-index", deltas, "--python", str(venv)], capsys)
    assert version_of(venv / "bin/python", "alpha") == "1.1"
    assert report["packages"][0]["method"] == "delta" and report["packages"][0]["source"] == "installed files"
    assert not list(venv.glob("lib/python*/site-packages/pip"))  # pipdelta installed no pip there


def _old_pip() -> Path | None:
    """A pip older than 22.2 (no ``--report``) that installs without the network: Python's own bundled copies."""
    pythons = [Path(sys.base_prefix), *(Path.home() / ".pyenv/versions").glob("*")]
    found = [p for r in pythons for p in r.glob("lib/python3*/ensurepip/_bundled/pip-2[012].*-py3-none-any.whl")]
    old = [p for p in found if tuple(map(int, p.name.split("-")[1].split(".")[:2])) < (22, 2)]
    return max(old, default=None)


def test_the_targets_own_old_pip_runs_and_the_report_comes_from_the_environment(
    upstream: tuple[SimpleIndex, str], deltas: str, old_venv: Path, runner: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pip 22.0 has no ``--report``: what it installed is read from the environment, before and after."""
    wheel = _old_pip()
    if wheel is None:
        pytest.skip("no pip older than 22.2 on this machine")
    python = fresh_venv(old_venv, runner / "venv")
    subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], check=True, env=isolated_env())
    pip_version = wheel.name.split("-")[1]
    report, _ = upgraded(["upgrade", "alpha==1.1", "gamma", "--delta-index", deltas, "--python", str(python)], capsys)
    assert version_of(python, "alpha") == "1.1" and version_of(python, "pip") == pip_version
    found = {p["name"]: p for p in report["packages"]}
    assert found["alpha"]["method"] == "delta" and found["alpha"]["old"] == "1.0" and found["alpha"]["installed"]
    assert found["gamma"]["method"] == "full" and found["gamma"]["downloaded"] == found["gamma"]["full_size"]
    assert report["status"] == "installed"
    # A dry run is pipdelta's own pip's (it changes nothing): pip 22.0 would download every wheel to plan.
    assert main(["upgrade", "alpha==1.2", "--delta-index", deltas, "--python", str(python), "--dry-run", "-q"]) == 0
    assert version_of(python, "alpha") == "1.1" and upstream[0].downloads == {"gamma-1.0-py3-none-any.whl": 1}


def _python38() -> Path | None:
    found = [*(Path.home() / ".pyenv/versions").glob("3.8.*/bin/python3.8")]
    return found[0] if found else None


def test_a_python_38_venv_is_upgraded_by_its_own_pip(
    upstream: tuple[SimpleIndex, str],
    deltas: str,
    runner: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """pipdelta's pip does not run on Python 3.8; the environment's own pip does, and the patch applies.

    The index serves HTML: Python 3.8's bundled pip 23.0.1 fails on PEP 691 metadata pins, with or without
    pipdelta."""
    python38 = _python38()
    if python38 is None:
        pytest.skip("no Python 3.8 on this machine")
    venv = runner / "venv38"
    subprocess.run([python38, "-m", "venv", str(venv)], check=True)
    old = upstream[0].folder / "alpha-1.0-py3-none-any.whl"
    subprocess.run([venv / "bin/python", "-m", "pip", "install", "-q", str(old)], check=True, env=isolated_env())
    with serving(SimpleIndex(upstream[0].folder, json_pages=False)) as url:
        monkeypatch.setenv("PIP_INDEX_URL", url)
        report, _ = upgraded(["upgrade", "alpha==1.1", "--delta-index", deltas, "--python", str(venv)], capsys)
    assert version_of(venv / "bin/python", "alpha") == "1.1"
    assert report["packages"][0]["method"] == "delta" and report["status"] == "installed"


def test_pips_options_pass_through_and_its_index_option_becomes_an_upstream(
    upstream: tuple[SimpleIndex, str],
    deltas: str,
    old_venv: Path,
    runner: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``-- -c constraints.txt -i URL``: pip honours the constraint; the index pip is told of sits behind the
    local index (the configured one is dead), so the wheel is still patched."""
    python = fresh_venv(old_venv, runner / "venv")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    constraints = runner / "constraints.txt"
    constraints.write_text("alpha<1.2\n")
    argv = ["upgrade", "alpha", "--delta-index", deltas, "--python", str(python), "--json", "-", "-q", "--"]
    assert main([*argv, "-c", str(constraints), "-i", upstream[1]]) == 0
    report = json.loads(capsys.readouterr().out)
    assert version_of(python, "alpha") == "1.1"
    assert report["packages"][0]["method"] == "delta"
    assert upstream[0].downloads == {}


BACKEND = """
import base64, hashlib, os, zipfile

def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    info = "mine-0.1.dist-info/"
    files = {
        "mine.pth": (os.path.dirname(os.path.abspath(__file__)) + "\\n").encode(),
        info + "METADATA": b"Metadata-Version: 2.1\\nName: mine\\nVersion: 0.1\\n",
        info + "WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    digest = lambda data: base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record = "".join(f"{n},sha256={digest(d)},{len(d)}\\n" for n, d in files.items()) + info + "RECORD,,\\n"
    with zipfile.ZipFile(os.path.join(wheel_directory, "mine-0.1-py3-none-any.whl"), "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(info + "RECORD", record)
    return "mine-0.1-py3-none-any.whl"
"""


def test_an_editable_install_passes_through_and_counts_no_bytes(
    deltas: str, old_venv: Path, runner: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-- -e DIR``: pip builds the project itself (an in-tree PEP 660 backend: nothing to download); the
    report says nothing of it came through the local index."""
    python = fresh_venv(old_venv, runner / "venv")
    project = runner / "project"
    (project / "mine").mkdir(parents=True)
    (project / "mine/__init__.py").write_text("MINE = 1\n")
    (project / "backend.py").write_text(BACKEND)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
    )
    argv = ["install", "alpha==1.1", "--delta-index", deltas, "--python", str(python), "--json", "-", "-q"]
    assert main([*argv, "--", "-e", str(project)]) == 0
    report = {p["name"]: p for p in json.loads(capsys.readouterr().out)["packages"]}
    assert report["alpha"]["method"] == "delta" and report["mine"]["installed"]
    assert report["mine"]["downloaded"] == 0 and report["mine"]["saved"] is None
    assert subprocess.run([python, "-c", "import mine"], cwd=runner).returncode == 0


def test_pips_refusal_of_user_in_a_venv_reaches_the_user_whole(
    deltas: str, old_venv: Path, runner: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    python = fresh_venv(old_venv, runner / "venv")
    argv = ["upgrade", "alpha==1.1", "--delta-index", deltas, "--python", str(python), "--", "--user"]
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-2].startswith("ERROR: Can not perform a '--user' install.")  # pip's own line, whole
    assert lines[-1] == f"pipdelta: error: pip install failed: {lines[-2]}"
    assert version_of(python, "alpha") == "1.0"


def _guarded(app: Callable[..., Iterable[bytes]], secret: str) -> Callable[..., Iterable[bytes]]:
    """``app`` behind HTTP basic authentication; the Authorization headers it was sent are kept."""
    expected = "Basic " + base64.b64encode(f"user:{secret}".encode()).decode()
    seen: list[str] = []

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen.append(environ.get("HTTP_AUTHORIZATION", ""))
        if seen[-1] != expected:
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"who are you?"]
        return app(environ, start_response)

    guarded.seen = seen  # type: ignore[attr-defined]
    return guarded


@pytest.fixture
def guarded_deltas(delta_folder: Path) -> Iterator[tuple[str, list[str]]]:
    app = _guarded(IndexApp(StaticCatalog(delta_folder), log=JsonLog(io.StringIO())), SECRET)
    with running(app) as url:
        yield url, app.seen  # type: ignore[attr-defined]


def test_delta_index_credentials_are_sent_and_never_printed(
    guarded_deltas: tuple[str, list[str]], old_venv: Path, runner: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    url, seen = guarded_deltas
    python = fresh_venv(old_venv, runner / "venv")
    given = url.replace("http://", f"http://user:{SECRET}@")
    assert main(["upgrade", "alpha==1.1", "--delta-index", given, "--python", str(python), "--json", "-"]) == 0
    out, err = capfd.readouterr()
    report = json.loads(out)
    assert report["packages"][0]["method"] == "delta"
    assert seen and all(header.startswith("Basic ") for header in seen)  # the query and the patch
    assert report["delta_index"] == url + "/" and SECRET not in out + err


def test_a_delta_index_url_without_a_scheme_or_with_a_wrong_path_is_a_one_line_warning(
    deltas: str, old_venv: Path, runner: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    python = fresh_venv(old_venv, runner / "venv")
    bare = deltas.removeprefix("http://")
    report, err = upgraded(["upgrade", "alpha==1.1", "--delta-index", bare, "--python", str(python)], capsys)
    assert report["packages"][0]["method"] == "delta"
    assert [line for line in err.splitlines() if "warning" in line] == [
        f"pipdelta: warning: the delta index URL has no scheme (http:// or https://); tried {deltas}/"
    ]
    assert report["warnings"] == [f"the delta index URL has no scheme (http:// or https://); tried {deltas}/"]

    python = fresh_venv(old_venv, runner / "venv2")
    report, err = upgraded(
        ["upgrade", "alpha==1.1", "--delta-index", f"{deltas}/wrong", "--python", str(python)], capsys
    )
    assert version_of(python, "alpha") == "1.1" and report["packages"][0]["method"] == "full"
    (warning,) = report["warnings"]
    assert f"{deltas}/wrong/query" in warning and f"{deltas}/wrong/index.json" in warning and "404" in warning


def test_the_report_on_stdout_has_numbers_versions_timings_and_a_wide_table(
    upstream: tuple[SimpleIndex, str], deltas: str, old_venv: Path, runner: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    python = fresh_venv(old_venv, runner / "venv")
    argv = ["upgrade", "alpha==1.1", "gamma", "--delta-index", deltas, "--python", str(python), "--json", "-"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)  # stdout is the JSON alone; the table went to stderr
    assert report["pipdelta"] and report["delta_index"] == deltas + "/" and report["warnings"] == []
    assert set(report["timings"]) == {"pip", "total"} and 0 < report["timings"]["pip"] <= report["timings"]["total"]
    for row in report["packages"]:
        assert isinstance(row["full_size"], int) and isinstance(row["downloaded"], int), row
    # Not a terminal: the table keeps every column whole (rich would cut it to 80 columns).
    assert max(len(line) for line in err.splitlines()) > 80 and "full: no older version here" in err
    size = (upstream[0].folder / "alpha-1.1-py3-none-any.whl").stat().st_size
    assert f"{size / 1000:.1f} kB" in err  # kB are 1,000 bytes


@needs_uv
def test_uv_installs_many_packages_at_once_through_the_local_index(
    deltas: str, runner: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """uv opens dozens of connections to the one address 127.0.0.1; the local index takes them all."""
    assert UV is not None
    folder = tmp_path_factory.mktemp("many")
    names = [f"pkg{n:03d}" for n in range(120)]
    for name in names:
        build_wheel(folder, name, "1.0", {f"{name}/__init__.py": f"N = {name!r}\n".encode()})
    with serving(SimpleIndex(folder, json_pages=True, metadata=True)) as url:
        os.environ["PIP_INDEX_URL"] = url
        subprocess.run([UV, "venv", "-q", str(runner / "venv")], check=True)
        command = [UV, "pip", "install", "--python", str(runner / "venv"), *names]
        assert main(["run", "--delta-index", deltas, "--json", "-", "-q", "--", *command]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(p["name"] for p in report["packages"]) == names
    assert re.fullmatch(r"pkg\d{3}", report["packages"][0]["name"])
    assert shutil.which("uv") is not None or UV is not None


def test_the_local_index_answers_a_hundred_connections_from_one_address_at_once(
    deltas: str, runner: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every client of the local index is 127.0.0.1: ``pipdelta serve``'s 64 per address would refuse uv."""
    folder = tmp_path_factory.mktemp("one")
    build_wheel(folder, "pkg", "1.0", {"pkg/__init__.py": b"N = 1\n"})
    with (
        serving(SimpleIndex(folder, json_pages=True)) as url,
        local_index([Upstream.parse(url)], load(deltas), Environment(sys.executable)) as local,
    ):
        host, port = local.base.split("//", 1)[1].split("/", 1)[0].split(":")
        path = local.urls[0].split(port, 1)[1] + "pkg/"
        sockets = [socket.create_connection((host, int(port)), timeout=30) for _ in range(100)]
        try:
            for sock in sockets:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n\r\n".encode())
            answers = [sock.recv(12) for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()
    assert answers == [b"HTTP/1.1 200"] * 100
