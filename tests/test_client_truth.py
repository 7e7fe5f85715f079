"""Wrong success (issue 7, item 6): concurrent runs on one venv, and a mirror that is gone."""

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
from pipdelta.client import locks
from pipdelta.client.cache import Cache
from pipdelta.client.environment import Environment
from pipdelta.demo.mirror import Served
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


def test_a_dead_mirror_is_reported_as_pip_failing_and_nothing_is_claimed(
    world: World, venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """pip's one run finds no index: pip's error as the one line, exit 1, and a report that claims nothing."""
    mirror = Served(world.template.parent / "mirror")
    mirror.close()
    monkeypatch.setenv("PIP_INDEX_URL", f"{mirror.url}/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")  # a dead mirror is dead: no 15 s of pip's back-off
    out = tmp_path / "report.json"
    args = ["upgrade", "alpha==1.1", "--python", str(venv), "--json", str(out), "-q"]
    assert main([*args, "--delta-index", world.deltas.url]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("pipdelta: error: pip install failed:")
    report = json.loads(out.read_text())
    assert report["status"] == "failed" and report["packages"] == []
    assert installed_version(venv, "alpha") == "1.0"
