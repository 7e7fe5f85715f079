"""The environment pipdelta acts on: its interpreter, its pip, and the distributions installed in it."""

from __future__ import annotations

import email.message
import email.parser
import functools
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from pipdelta.errors import PipdeltaError

if TYPE_CHECKING:
    from pipdelta.apply.installed import InstalledDistribution

# Run in the target interpreter, once: where it is, whether a venv, where it imports from, where its scripts
# and data go, and its X.Y (the install scheme of the files a wheel put there).
_PROBE = (
    "import json, sys, sysconfig; paths = sysconfig.get_paths(); print(json.dumps([sys.prefix,"
    " sys.prefix != sys.base_prefix, sys.path, paths['scripts'], paths['data'], '%d.%d' % sys.version_info[:2]]))"
)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)  # a FIFO never blocks
METADATA_LIMIT = 16 << 20  # a METADATA file holds the project's long description; the largest on PyPI are a few MB
WHEEL_LIMIT = 64 << 10  # a WHEEL file is a few lines


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
    dist_info: str = ""  # its .dist-info folder


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

    def pip(self, args: Sequence[str], *, env: Mapping[str, str], quiet: bool, ours: bool = False) -> None:
        """Run pip on this environment with the user's own configuration (index, proxies, certificates).

        The pip is the environment's own when it has one (the user's choice of version, and Pythons older
        than pipdelta's pip supports), else (or with ``ours``) the one pipdelta depends on, aimed at it with
        ``pip --python``. ``env`` adds to (or overrides) the user's variables. pip's stderr (its warnings
        and errors) reaches the user whole, as it comes; its output too, unless ``quiet``.
        """
        mine = ours or self.own_pip is None
        command = [sys.executable, "-m", "pip"] if mine else [self.python, "-m", "pip"]
        if command[0] == sys.executable and os.path.abspath(self.python) != os.path.abspath(sys.executable):
            command += ["--python", self.python]
        command += args
        try:
            process = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL if quiet else None,
                stderr=subprocess.PIPE,
                text=True,
                env=pip_environment({**os.environ, **env}),
            )
        except OSError as exc:
            raise PipFailed(f"cannot run pip for {self.python}: {exc}") from None
        with process:
            assert process.stderr is not None
            reason = _pass_on(process.stderr)
        if process.returncode != 0:
            raise PipFailed(f"pip {args[0] if args else ''} failed: {reason or f'exit status {process.returncode}'}")

    def prefix(self) -> tuple[Path, bool]:
        """This environment's folder (``sys.prefix``, symlinks resolved) and whether it is a virtual environment."""
        return self._where[0], self._where[1]

    def ask(self) -> Environment:
        """Start the interpreter on its one question now: it answers while pipdelta goes on (importing, say)."""
        self._asked.poll()  # started by this first use, answered later
        return self

    @functools.cached_property
    def _asked(self) -> subprocess.Popen[str]:
        try:
            return subprocess.Popen(
                [self.python, "-c", _PROBE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        except OSError as exc:
            raise PipFailed(f"cannot run {self.python}: {exc}") from None

    def distribution(self, here: Installed) -> InstalledDistribution:
        """Where the files of ``here`` (one of :meth:`installed`) are, with this environment's install scheme."""
        from pipdelta.apply.installed import InstalledDistribution  # the engine's side: imported when a rebuild is

        scripts, data, python = self._where[3:]
        return InstalledDistribution.at(here.name, str(here.version), Path(here.dist_info), scripts, data, python)

    @functools.cached_property
    def _where(self) -> tuple[Path, bool, tuple[str, ...], str, str, str]:
        """The interpreter's answer to the one question pipdelta asks it: prefix, venv or not, ``sys.path``, its
        scripts and data folders and its X.Y."""
        try:
            out, err = self._asked.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self._asked.kill()
            self._asked.communicate()
            raise PipFailed(f"cannot ask {self.python} where it is: no answer in 60 s") from None
        if self._asked.returncode != 0:
            raise PipFailed(f"cannot ask {self.python} where it is: {err.strip()[-300:]}")
        try:
            prefix, is_venv, path, scripts, data, python = json.loads(out)
            texts = [prefix, scripts, data, python, *path] if isinstance(path, list) else [path]
            if not all(isinstance(text, str) for text in texts):
                raise TypeError("not a prefix and a path")
        except (ValueError, TypeError):
            raise PipFailed(f"cannot ask {self.python} where it is: it answered {out[:100]!r}") from None
        return Path(os.path.realpath(prefix)), bool(is_venv), tuple(path), scripts, data, python

    def installed(self) -> dict[NormalizedName, Installed]:
        """Every distribution with a RECORD on this interpreter's ``sys.path``, by normalized name.

        Read here from the ``.dist-info`` folders (no interpreter start-up each time); where a project is
        found twice, the first on ``sys.path`` counts, as for imports and for pip.
        """
        out: dict[NormalizedName, Installed] = {}
        for entry in self._where[2]:
            for dist_info in _dist_infos(entry or os.curdir):
                found = _distribution(dist_info)
                if found is not None and found.name not in out:
                    out[found.name] = found
        return out


def pip_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The user's environment for pip, minus what would make its output unreadable to pipdelta."""
    env = dict(environ)
    env["PIP_NO_INPUT"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PIP_REPORT", None)
    return env


def _pass_on(stderr: Iterable[str]) -> str:
    """Pass pip's stderr on to the user as it comes; the line that says why pip failed, if it did.

    That is pip's first ``ERROR:`` line ("Cannot install a==2 and b==1 because ..."), else its last line
    (often only where to read about it).
    """
    last = first_error = ""
    for line in stderr:
        sys.stderr.write(line)
        sys.stderr.flush()
        if line.strip():
            last = line.strip()
            if not first_error and last.startswith("ERROR:"):
                first_error = last
    return first_error or last


def _dist_infos(folder: str) -> list[str]:
    """The ``.dist-info`` folders directly in ``folder`` (a ``sys.path`` entry), in name order."""
    try:
        entries = list(os.scandir(folder))
    except OSError:  # a zip file, a folder gone or unreadable: no wheel-installed distribution there
        return []
    wanted = (e.path for e in entries if e.name.lower().endswith(".dist-info") and e.is_dir())
    return sorted(wanted)


def _distribution(dist_info: str) -> Installed | None:
    """The distribution installed from a wheel with this ``.dist-info`` folder; None if not one pip can upgrade."""
    if not os.path.isfile(os.path.join(dist_info, "RECORD")):
        return None
    metadata = _headers(os.path.join(dist_info, "METADATA"), METADATA_LIMIT)
    if metadata is None or not metadata.get("Name"):
        return None
    try:
        version = Version(str(metadata.get("Version", "")))
    except InvalidVersion:
        return None  # pip cannot upgrade from a version it cannot parse either
    wheel = _headers(os.path.join(dist_info, "WHEEL"), WHEEL_LIMIT)
    tags = tuple(map(str, wheel.get_all("Tag") or ())) if wheel is not None else ()
    build = str(wheel["Build"]) if wheel is not None and wheel["Build"] is not None else None
    requires = tuple(map(str, metadata.get_all("Requires-Dist") or ()))
    return Installed(canonicalize_name(str(metadata["Name"])), version, tags, build, requires, dist_info)


def _headers(path: str, limit: int) -> email.message.Message | None:
    """The header fields of a METADATA or WHEEL file; None when it is not a regular file of at most ``limit`` bytes."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        text = stream.read(limit + 1).decode("utf-8", "replace")
    return email.parser.HeaderParser().parsestr(text)


def _in_venv(folder: Path, how: str) -> str:
    """The interpreter of the venv ``folder``; PipFailed (saying ``how`` the folder was chosen) when it has none."""
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        raise PipFailed(f"{how} {folder}, which has no {python.relative_to(folder)}: not a virtual environment")
    return str(python)
