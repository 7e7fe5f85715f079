"""Real virtual environments for the tests, with pip isolated from this machine's pip configuration."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path


def isolated_env() -> dict[str, str]:
    """This process's environment without PIP_* settings, and no pip configuration files at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def create(path: Path) -> Path:
    """A new venv with pip (from ensurepip: no network); returns its interpreter."""
    venv.EnvBuilder(with_pip=True, symlinks=sys.platform != "win32").create(path)
    return path / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", *args], env=isolated_env(), capture_output=True, text=True, check=True
    )
