"""The environment pipdelta acts on: its interpreter, its pip, and the distributions installed in it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from pipdelta.errors import PipdeltaError

# Run in the target interpreter: every distribution with a RECORD, its version and its WHEEL's tags.
_PROBE = """
import json, sys
from importlib import metadata
out = []
for dist in metadata.distributions():
    files = dist.files or ()
    record = [f for f in files if f.name == "RECORD" and f.parent.name.endswith(".dist-info")]
    if not record:
        continue
    try:
        wheel = (dist.locate_file(record[0]).parent / "WHEEL").read_text(encoding="utf-8")
    except OSError:
        wheel = ""
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    build = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Build:")]
    out.append({"name": dist.metadata["Name"] or "", "version": dist.version, "tags": tags,
                "build": build[0] if build else None})
json.dump(out, sys.stdout)
"""

_PREFIX_PROBE = "import json, sys; print(json.dumps([sys.prefix, sys.prefix != sys.base_prefix]))"


class PipFailed(PipdeltaError):
    """pip (or the target interpreter) exited with an error; its own message says why."""


@dataclass(frozen=True)
class Installed:
    """One distribution installed from a wheel: what the delta index needs to know about it."""

    name: NormalizedName
    version: Version
    tags: tuple[str, ...]
    build: str | None


@dataclass(frozen=True)
class Environment:
    """A Python environment, reached through its interpreter (pip has no API; its command line is the contract)."""

    python: str

    @classmethod
    def of(cls, python: str | None) -> Environment:
        """``python`` (a path or a command on PATH), or the interpreter pipdelta runs in."""
        if python is None:
            return cls(sys.executable)
        found = shutil.which(python)
        if found is None:
            raise PipFailed(f"cannot run {python}: no such interpreter")
        return cls(found)

    def pip(
        self,
        args: Sequence[str],
        *,
        capture: bool = True,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Run pip on this environment with the user's own configuration (index, proxies, certificates).

        The pip is the one pipdelta depends on, aimed at the environment with ``pip --python``: a pip
        recent enough to resolve from PEP 658 metadata alone (older ones download every wheel during
        ``--dry-run``). ``env`` adds to (or overrides) the user's variables.
        """
        command = [sys.executable, "-m", "pip"]
        if os.path.abspath(self.python) != os.path.abspath(sys.executable):
            command += ["--python", self.python]
        command += args
        try:
            result = subprocess.run(
                command,
                stdout=subprocess.PIPE if capture else None,
                stderr=subprocess.PIPE,
                text=True,
                env=pip_environment({**os.environ, **(env or {})}),
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PipFailed(f"cannot run pip for {self.python}: {exc}") from None
        if result.returncode != 0:
            last = [line for line in (result.stderr or "").splitlines() if line.strip()]
            message = last[-1].strip() if last else f"exit status {result.returncode}"
            raise PipFailed(f"pip {args[0] if args else ''} failed: {message}")
        return result.stdout or ""

    def prefix(self) -> tuple[Path, bool]:
        """This environment's folder (``sys.prefix``, symlinks resolved) and whether it is a virtual environment."""
        try:
            result = subprocess.run(
                [self.python, "-c", _PREFIX_PROBE], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PipFailed(f"cannot run {self.python}: {exc}") from None
        if result.returncode != 0:
            raise PipFailed(f"cannot ask {self.python} where it is: {result.stderr.strip()[-300:]}")
        prefix, is_venv = json.loads(result.stdout)
        return Path(os.path.realpath(prefix)), bool(is_venv)

    def installed(self) -> dict[NormalizedName, Installed]:
        """Every distribution with a RECORD in this environment, by normalized name."""
        try:
            result = subprocess.run(
                [self.python, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PipFailed(f"cannot run {self.python}: {exc}") from None
        if result.returncode != 0:
            raise PipFailed(f"cannot list the distributions of {self.python}: {result.stderr.strip()[-300:]}")
        out: dict[NormalizedName, Installed] = {}
        for row in json.loads(result.stdout):
            try:
                version = Version(row["version"])
            except InvalidVersion:
                continue  # pip cannot upgrade from a version it cannot parse either
            name = canonicalize_name(row["name"])
            out[name] = Installed(name, version, tuple(row["tags"]), row["build"])
        return out


def pip_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The user's environment for pip, minus what would make its output unreadable to pipdelta."""
    env = dict(environ)
    env["PIP_NO_INPUT"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PIP_REPORT", None)
    return env
