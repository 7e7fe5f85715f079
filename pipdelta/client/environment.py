"""The environment pipdelta acts on: its interpreter, its pip, and the distributions installed in it."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from pipdelta.errors import PipdeltaError

# Run in the target interpreter: every distribution with a RECORD, its version, its WHEEL's tags, its requirements.
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
    meta = dist.metadata  # parsed once for all three fields
    out.append({"name": meta["Name"] or "", "version": meta["Version"] or "", "tags": tags,
                "build": build[0] if build else None, "requires": meta.get_all("Requires-Dist") or []})
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
    requires: tuple[str, ...] = ()  # its Requires-Dist lines


@dataclass(frozen=True)
class Environment:
    """A Python environment, reached through its interpreter (pip has no API; its command line is the contract)."""

    python: str

    @classmethod
    def of(cls, python: str | None, environ: Mapping[str, str] = os.environ) -> Environment:
        """``python`` (an interpreter, a command on PATH or a venv folder); by default the one uv would choose.

        That is the active ``VIRTUAL_ENV``, else ``.venv`` in the current folder, else the interpreter
        pipdelta runs in (so pipdelta installed as a tool acts on the venv the user activated, not its own).
        """
        if python is None:
            active = environ.get("VIRTUAL_ENV")
            if active:
                return cls(_in_venv(Path(active), "VIRTUAL_ENV names"))
            local = Path.cwd() / ".venv"
            return cls(_in_venv(local, "found")) if (local / "pyvenv.cfg").is_file() else cls(sys.executable)
        if os.path.isdir(python):
            return cls(_in_venv(Path(python), "--python names"))
        found = shutil.which(python)
        if found is None:
            raise PipFailed(f"cannot run {python}: no such interpreter")
        return cls(found)

    @functools.cached_property
    def own_pip(self) -> Version | None:
        """The version of the pip installed in this environment, if any (a ``uv venv`` has none)."""
        here = self.installed().get(canonicalize_name("pip"))
        return None if here is None else here.version

    def pip(
        self,
        args: Sequence[str],
        *,
        capture: bool = True,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        echo: bool = False,
        ours: bool = False,
    ) -> str:
        """Run pip on this environment with the user's own configuration (index, proxies, certificates).

        The pip is the environment's own when it has one (the user's choice of version, and Pythons older
        than pipdelta's pip supports), else (or with ``ours``) the one pipdelta depends on, aimed at it with
        ``pip --python``. ``env`` adds to (or overrides) the user's variables. With ``echo``, pip's stderr
        (its warnings and errors) reaches the user whole, as it comes.
        """
        mine = ours or self.own_pip is None
        command = [sys.executable, "-m", "pip"] if mine else [self.python, "-m", "pip"]
        if command[0] == sys.executable and os.path.abspath(self.python) != os.path.abspath(sys.executable):
            command += ["--python", self.python]
        command += args
        try:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE if capture else None,
                stderr=subprocess.PIPE,
                text=True,
                env=pip_environment({**os.environ, **(env or {})}),
            )
        except OSError as exc:
            raise PipFailed(f"cannot run pip for {self.python}: {exc}") from None
        errors = Errors(process, echo)
        expired = threading.Event()

        def stop() -> None:
            expired.set()
            process.kill()

        timer = threading.Timer(timeout or 0, stop)
        if timeout is not None:
            timer.start()
        out = process.stdout.read() if process.stdout is not None else ""
        process.wait()
        timer.cancel()
        errors.join()
        if expired.is_set():
            raise PipFailed(f"pip {args[0] if args else ''} for {self.python} took over {timeout} s")
        if process.returncode != 0:
            message = errors.reason or f"exit status {process.returncode}"
            raise PipFailed(f"pip {args[0] if args else ''} failed: {message}")
        return out or ""

    def prefix(self) -> tuple[Path, bool]:
        """This environment's folder (``sys.prefix``, symlinks resolved) and whether it is a virtual environment."""
        prefix, is_venv = self._probe(_PREFIX_PROBE, "ask {} where it is", timeout=60)
        return Path(os.path.realpath(prefix)), bool(is_venv)

    def _probe(self, code: str, what: str, *, timeout: float) -> Any:
        """What ``code`` run in this interpreter prints, as JSON; PipFailed saying it could not ``what``."""
        try:
            result = subprocess.run([self.python, "-c", code], capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PipFailed(f"cannot run {self.python}: {exc}") from None
        if result.returncode != 0:
            raise PipFailed(f"cannot {what.format(self.python)}: {result.stderr.strip()[-300:]}")
        return json.loads(result.stdout)

    def installed(self) -> dict[NormalizedName, Installed]:
        """Every distribution with a RECORD in this environment, by normalized name."""
        out: dict[NormalizedName, Installed] = {}
        for row in self._probe(_PROBE, "list the distributions of {}", timeout=120):
            try:
                version = Version(row["version"])
            except InvalidVersion:
                continue  # pip cannot upgrade from a version it cannot parse either
            name = canonicalize_name(row["name"])
            out[name] = Installed(name, version, tuple(row["tags"]), row["build"], tuple(row["requires"]))
        return out


def pip_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The user's environment for pip, minus what would make its output unreadable to pipdelta."""
    env = dict(environ)
    env["PIP_NO_INPUT"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PIP_REPORT", None)
    return env


class Errors:
    """pip's stderr, read as it comes (passed on to the user with ``echo``), and the line that says why pip failed."""

    def __init__(self, process: subprocess.Popen[str], echo: bool) -> None:
        self.last = ""
        self.first_error = ""
        self._echo = echo
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True, name="pipdelta-pip-stderr")
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if self._echo:
                sys.stderr.write(line)
                sys.stderr.flush()
            if line.strip():
                self.last = line.strip()
                if not self.first_error and self.last.startswith("ERROR:"):
                    self.first_error = self.last

    @property
    def reason(self) -> str:
        """pip's first ``ERROR:`` line says what is wrong ("Cannot install a==2 and b==1 because ..."); its
        last line, often only where to read about it."""
        return self.first_error or self.last

    def join(self) -> None:
        self._thread.join()


def _in_venv(folder: Path, how: str) -> str:
    """The interpreter of the venv ``folder``; PipFailed (saying ``how`` the folder was chosen) when it has none."""
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        raise PipFailed(f"{how} {folder}, which has no {python.relative_to(folder)}: not a virtual environment")
    return str(python)
