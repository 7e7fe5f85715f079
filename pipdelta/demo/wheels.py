"""The demo's two releases: real ones from the package registry when it answers, home-made ones otherwise."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipdelta.client.environment import pip_environment

# Two small consecutive releases of a pure-Python project, with their dependencies.
REAL = ("rich", "13.7.1", "13.8.0")
HOME_MADE = ("pipdelta-demo", "1.0", "1.1")


@dataclass(frozen=True)
class Releases:
    project: str
    old: str
    new: str
    real: bool


def fetch_real(folder: Path) -> Releases | None:
    """Download the real releases (and what they need) with pip, honouring the user's pip configuration."""
    project, old, new = REAL
    for version in (old, new):
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(folder)]
        try:
            result = subprocess.run(
                [*command, f"{project}=={version}"],
                capture_output=True,
                env=pip_environment({**os.environ, "PIP_DEFAULT_TIMEOUT": "15", "PIP_RETRIES": "1"}),
                timeout=180,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if result.returncode != 0:
            return None
    return Releases(project, old, new, real=True)


def build_home_made(folder: Path) -> Releases:
    """Two releases of a made-up package: 40 modules, three of which change between them."""
    project, old, new = HOME_MADE
    modules = {f"pipdelta_demo/module{i:02}.py": _module(i) for i in range(40)}
    _write_wheel(folder, project, old, modules)
    changed = {f"pipdelta_demo/module{i:02}.py": _module(1000 + i) for i in (3, 17, 29)}
    _write_wheel(folder, project, new, {**modules, **changed})
    return Releases(project, old, new, real=False)


def _module(seed: int) -> bytes:
    rng = random.Random(seed)
    names = ["value", "items", "config", "path", "result", "index", "name", "data", "limit", "scale"]
    lines = [f'"""Generated module {seed}."""\n']
    for i in range(300):
        a, b = rng.sample(names, 2)
        lines.append(f"\n\ndef step_{i}({a}, {b}=None):\n    return {a} * {rng.randint(1, 99)} + ({b} or 0)\n")
    return "".join(lines).encode()


def _write_wheel(folder: Path, project: str, version: str, files: dict[str, bytes]) -> Path:
    dist = project.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    members = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: pipdelta-demo\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    rows = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in members.items()]
    members[f"{info}/RECORD"] = ("\n".join([*rows, f"{info}/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    path.write_bytes(buffer.getvalue())
    return path


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
