"""An installed distribution in some interpreter's environment: where its files are, and their RECORD."""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from pipdelta.errors import DistributionNotFound, SourceMismatch

# Run in the target interpreter: locate the distribution and that environment's install scheme.
_PROBE = """
import json, sys, sysconfig
from importlib import metadata
import re
want = re.sub(r"[-_.]+", "-", sys.argv[1]).lower()
for dist in metadata.distributions():
    if re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower() != want:
        continue
    record = [f for f in dist.files or () if f.name == "RECORD" and f.parent.name.endswith(".dist-info")]
    if record:
        print(json.dumps({
            "version": dist.version,
            "dist_info": str(dist.locate_file(record[0]).parent),
            "paths": sysconfig.get_paths(),
            "python": "%d.%d" % sys.version_info[:2],
        }))
        break
"""


@dataclass(frozen=True)
class InstalledDistribution:
    """One installed distribution: its version, its dist-info folder and the scheme it was installed with."""

    name: str
    version: str
    dist_info: Path
    scheme: dict[str, Path]

    @classmethod
    def find(cls, name: str, python: str | None = None) -> InstalledDistribution:
        """Ask ``python`` (default: this interpreter) where ``name`` is installed."""
        interpreter = python or sys.executable
        try:
            result = subprocess.run(
                [interpreter, "-c", _PROBE, name], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DistributionNotFound(f"cannot run {interpreter}: {exc}") from None
        if result.returncode != 0 or not result.stdout.strip():
            raise DistributionNotFound(f"{name} is not installed in the environment of {interpreter}")
        found = json.loads(result.stdout)
        paths = {key: Path(value) for key, value in found["paths"].items()}
        dist_info = Path(found["dist_info"])
        scheme = {
            "purelib": dist_info.parent,
            "platlib": dist_info.parent,
            "scripts": paths["scripts"],
            "data": paths["data"],
            # pip puts a wheel's headers in include/site/pythonX.Y/<project>/; the spelling of <project>
            # differs between pip versions, so path_of finds it in RECORD.
            "headers": paths["data"] / "include" / "site" / f"python{found['python']}",
        }
        return cls(name, found["version"], dist_info, scheme)

    def check_version(self, old_filename: str) -> None:
        name, version, _, _ = parse_wheel_filename(old_filename)
        if canonicalize_name(self.name) != name or Version(self.version) != version:
            raise SourceMismatch(f"{self.name} {self.version} is installed; the patch starts from {name} {version}")

    def path_of(self, member: str) -> Path:
        """Where the installer put the wheel member ``member``."""
        parts = PurePosixPath(member).parts
        if len(parts) > 2 and parts[0].endswith(".data") and parts[1] == "headers":
            return self._header_path(parts[2:])
        if len(parts) > 2 and parts[0].endswith(".data") and parts[1] in self.scheme:
            return self.scheme[parts[1]].joinpath(*parts[2:])
        return self.dist_info.parent.joinpath(*parts)

    def _header_path(self, rest: tuple[str, ...]) -> Path:
        folder = Path(os.path.relpath(self.scheme["headers"], self.dist_info.parent))
        for key in self._record:
            path = Path(key)
            if path.is_relative_to(folder) and path.relative_to(folder).parts[1:] == rest:
                return self.dist_info.parent / path
        return self.scheme["headers"].joinpath(*rest)

    def read_verified(self, member: str) -> bytes:
        """The installed file of ``member``, refused unless its sha256 is the one in RECORD."""
        path = self.path_of(member)
        key = os.path.normpath(os.path.relpath(path, self.dist_info.parent))
        expected = self._record.get(key)
        if expected is None:
            raise SourceMismatch(f"{member} is not in the RECORD of installed {self.name}")
        return self._verified(path, expected)

    def check_files(self) -> None:
        """Raise :class:`SourceMismatch` unless every file RECORD hashes is as installed.

        A client checks this before it downloads a patch, so a modified file costs no wasted download.
        Bytecode the installer wrote has no hash in RECORD; bytecode the wheel ships has one, and when
        the installer recompiled over it, the installed files can no longer rebuild that wheel.
        """
        for key, expected in self._record.items():
            if expected:
                self._verified(self.dist_info.parent / key, expected)

    def _verified(self, path: Path, expected: str) -> bytes:
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise SourceMismatch(f"cannot read installed {path}: {exc.strerror}") from None
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        if expected != f"sha256={digest}":
            raise SourceMismatch(f"installed {path} was modified since {self.name} {self.version} was installed")
        return content

    @functools.cached_property
    def _record(self) -> dict[str, str]:
        try:
            text = (self.dist_info / "RECORD").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceMismatch(f"cannot read the RECORD of installed {self.name}: {exc}") from None
        return {os.path.normpath(row[0]): row[1] for row in csv.reader(io.StringIO(text)) if len(row) >= 2}
