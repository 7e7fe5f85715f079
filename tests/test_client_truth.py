"""Wrong success (issue 7, item 6): concurrent runs on one venv, and a mirror that dies after planning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import test_client_e2e
from test_client_e2e import World, installed_version

from pipdelta.apply.installed import InstalledDistribution
from pipdelta.cli import main
from pipdelta.client import locks, pipeline
from pipdelta.client.cache import Cache
from pipdelta.client.environment import Environment
from pipdelta.client.plan import Planned, Request, plan
from pipdelta.demo.mirror import QuietHandler, Served
from pipdelta.locking import Busy

world, venv = test_client_e2e.world, test_client_e2e.venv  # the same fixtures: a mirror, a delta index, a venv


def dist_infos(python: Path) -> list[str]:
    site = next(python.parent.parent.glob("lib/python*/site-packages"))
    return sorted(p.name for p in site.glob("*.dist-info") if p.name.startswith(("alpha", "beta")))


def test_two_upgrades_at_once_take_turns(world: World, venv: Path, tmp_path: Path) -> None:
    """The second run waits for the first, then finds nothing left to do: never two versions installed."""
    command = [sys.executable, "-m", "pipdelta", "upgrade", "alpha", "beta", "--delta-index", world.deltas.url]
    runs = [
        subprocess.Popen(
            [*command, "--python", str(venv), "--json", str(tmp_path / f"{n}.json"), "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    results = [(run.wait(60), *run.communicate()) for run in runs]
    assert [code for code, _, _ in results] == [0, 0], results
    assert dist_infos(venv) == ["alpha-1.2.dist-info", "beta-1.1.dist-info"]
    for name in ("alpha", "beta"):
        InstalledDistribution.find(name, str(venv)).check_files()  # RECORD matches every file
    reports = sorted(len(json.loads((tmp_path / f"{n}.json").read_text())["packages"]) for n in range(2))
    assert reports == [0, 2]  # one upgraded both, the other found nothing to do
    assert (venv.parent.parent / ".lock").is_file()  # the venv's own lock file, as uv's


def test_a_run_that_cannot_get_the_lock_says_why_and_changes_nothing(
    world: World, venv: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(locks, "ENVIRONMENT_WAIT", 0.3)
    with locks.environment(Environment(str(venv)), Path(os.environ["PIPDELTA_CACHE_DIR"])):
        code = main(["upgrade", "alpha", "--delta-index", world.deltas.url, "--python", str(venv), "-q"])
    assert code == 75  # EX_TEMPFAIL: try again later
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"(pid {os.getpid()}) is using the environment {venv.parent.parent}" in lines[0]
    assert dist_infos(venv) == ["alpha-1.0.dist-info", "beta-1.0.dist-info"]


def test_cache_writes_take_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write to the cache while another run writes to it waits, then says why it cannot proceed."""
    monkeypatch.setattr(locks, "CACHE_WAIT", 0.2)
    cache = Cache(tmp_path)
    assert cache.add("x-1.0-py3-none-any.whl", b"one", "ab" * 32).read_bytes() == b"one"
    with locks.cache(tmp_path):
        with pytest.raises(Busy, match=f"is using the pipdelta cache {tmp_path}"):
            cache.add("x-1.1-py3-none-any.whl", b"two", "cd" * 32)
        with pytest.raises(Busy):
            cache.prune(0)
    assert [wheel.path.name for wheel in cache.prune(0)] == ["x-1.0-py3-none-any.whl"]


def mirror_dying_after_planning(world: World, monkeypatch: pytest.MonkeyPatch, *also: Served) -> None:
    """pip's index is a mirror of its own that stops, with ``also``, as soon as pip has planned."""
    mirror = Served(world.template.parent / "mirror")
    monkeypatch.setenv("PIP_INDEX_URL", f"{mirror.url}/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")  # a dead mirror is dead: no 15 s of pip's back-off

    def plan_then_die(environment: Environment, request: Request) -> list[Planned]:
        planned = plan(environment, request)
        for server in (mirror, *also):
            server.close()
        return planned

    monkeypatch.setattr(pipeline, "plan", plan_then_die)


def test_mirror_dying_after_planning_is_not_a_success(
    world: World, venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """pip, finding no index, leaves alpha and beta as they are: exit 1, and a report that says so."""
    deltas = Served(world.index, QuietHandler)
    mirror_dying_after_planning(world, monkeypatch, deltas)
    monkeypatch.setenv("COLUMNS", "200")  # the table on one line per package
    out = tmp_path / "report.json"
    code = main(["upgrade", "alpha", "beta", "--delta-index", deltas.url, "--python", str(venv), "--json", str(out)])
    assert code == 1
    printed = capsys.readouterr()
    error = printed.err.strip().splitlines()[-1]
    assert error == "pipdelta: error: pip installed 0 of the 2 packages it planned; not installed: alpha 1.2, beta 1.1"
    assert printed.out.count("NOT INSTALLED") == 2 and "2 not installed" in printed.out
    report = json.loads(out.read_text())
    assert report["status"] == "incomplete" and report["error"] == error.removeprefix("pipdelta: error: ")
    assert [(p["name"], p["installed"]) for p in report["packages"]] == [("alpha", False), ("beta", False)]
    assert installed_version(venv, "alpha") == "1.0" and installed_version(venv, "beta") == "1.0"


def test_pip_failing_to_install_is_reported_with_pips_reason(
    world: World, venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A requirement pip cannot satisfy once the mirror is gone: pip's error as the one line, nothing claimed."""
    mirror_dying_after_planning(world, monkeypatch)
    out = tmp_path / "report.json"
    args = ["install", "alpha==1.1", "gamma", "--python", str(venv), "--json", str(out), "-q"]
    code = main([*args, "--delta-index", world.deltas.url])
    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("pipdelta: error: pip install failed:") and "gamma" in error
    report = json.loads(out.read_text())
    assert report["status"] == "failed"
    packages = {p["name"]: p for p in report["packages"]}
    assert packages["alpha"]["method"] == "delta"  # rebuilt, but pip never installed it: not claimed
    assert not any(p["installed"] for p in packages.values())
    assert installed_version(venv, "alpha") == "1.0"
