"""The demo, step by step: releases, a local mirror and delta index, a venv with the old one, the upgrade."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console

from pipdelta.demo.mirror import Served, write_simple_index
from pipdelta.demo.wheels import build_home_made, fetch_real
from pipdelta.errors import PipdeltaError
from pipdelta.index.builder import build_index
from pipdelta.server.app import IndexApp
from pipdelta.server.catalog import StaticCatalog
from pipdelta.server.logs import JsonLog
from pipdelta.server.run import running


class DemoFailed(PipdeltaError):
    """A step of the demo failed; the message names it."""


def run_demo(*, offline: bool = False, keep: bool = False) -> int:
    """Run the whole demo in a fresh temporary folder; returns the upgrade's exit status."""
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="pipdelta-demo-"))
    try:
        return _run(work, offline, console)
    finally:
        if keep:
            console.print(f"The demo's files are in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, offline: bool, console: Console) -> int:
    wheels = work / "wheels"
    wheels.mkdir()
    releases = None
    if not offline:
        with console.status("Downloading two releases from the package registry…"):
            releases = fetch_real(wheels)
        if releases is None:
            console.print("The package registry did not answer; the demo builds its own releases.")
    if releases is None:
        releases = build_home_made(wheels)
    project, old, new = releases.project, releases.old, releases.new
    console.print(f"[bold]1.[/] Releases: {project} {old} and {new} ({'real' if releases.real else 'home-made'}).")

    mirror = work / "mirror"
    write_simple_index(sorted(wheels.glob("*.whl")), mirror)
    with console.status("Building the delta index…"):
        summary = build_index(mirror / "files", work / "deltas")
    console.print(f"[bold]2.[/] Delta index: {summary}")

    with Served(mirror) as simple, running(_quiet_app(work / "deltas")) as deltas:
        console.print(f"[bold]3.[/] Mirror at {simple.url}/simple/, pipdelta serve at {deltas}/ (both 127.0.0.1).")
        env = _isolated(os.environ, simple.url, work)
        venv = work / "venv"
        python = str(venv / "bin" / "python") if os.name != "nt" else str(venv / "Scripts" / "python.exe")
        with console.status(f"Creating a venv with {project} {old}…"):
            _step("create the venv", [sys.executable, "-m", "venv", str(venv)], env)
            _step(f"install {project} {old}", [python, "-m", "pip", "install", "-q", f"{project}=={old}"], env)
        console.print(f"[bold]4.[/] venv {venv} has {project} {old}. Now: pipdelta upgrade {project}=={new}")
        upgrade = [sys.executable, "-m", "pipdelta", "upgrade", f"{project}=={new}"]
        status = subprocess.run([*upgrade, "--python", python, "--delta-index", deltas], env=env, check=False)
        if status.returncode != 0:
            return status.returncode
        _step("check the venv", [python, "-m", "pip", "check"], env)
    console.print(f"[bold]5.[/] {project} {new} is installed, rebuilt byte for byte and verified; pip check is clean.")
    return 0


def _quiet_app(index: Path) -> IndexApp:
    """``pipdelta serve``'s application, its request log kept out of the demo's output."""
    return IndexApp(StaticCatalog(index), log=JsonLog(io.StringIO()))


def _isolated(environ: Mapping[str, str], mirror: str, work: Path) -> dict[str, str]:
    """The user's environment, but pip sees only the demo's mirror and pipdelta only the demo's cache."""
    env = {k: v for k, v in environ.items() if not k.startswith(("PIP_", "PIPDELTA_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_INDEX_URL=f"{mirror}/simple",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_CACHE_DIR="1",
        PIPDELTA_CACHE_DIR=str(work / "cache"),
        PIPDELTA_CONFIG=str(work / "config.toml"),
    )
    return env


def _step(what: str, command: Sequence[str], env: Mapping[str, str]) -> None:
    try:
        result = subprocess.run(list(command), capture_output=True, text=True, env=dict(env), timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DemoFailed(f"demo: cannot {what}: {exc}") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise DemoFailed(f"demo: cannot {what}: {last}")
