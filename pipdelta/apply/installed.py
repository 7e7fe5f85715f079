"""An installed distribution in some interpreter's environment: where its files are, and their RECORD."""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from pipdelta.errors import DistributionNotFound, SourceMismatch
from pipdelta.format.blob import is_source_name

#: the most a RECORD may hold (RECORD gives no size of its own); the largest on PyPI are a few MB
RECORD_LIMIT = 64 << 20
# Never block on a FIFO, never follow a final symlink (``_inside`` resolved them all), binary on Windows.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)

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
class Row:
    """One RECORD row: the file's hash (empty for files the installer wrote) and size (None when absent)."""

    hash: str
    size: int | None

    @classmethod
    def parse(cls, row: list[str]) -> Row:
        return cls(row[1], int(row[2]) if len(row) > 2 and row[2].isdigit() else None)


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
        paths = found["paths"]
        return cls.at(
            name, found["version"], Path(found["dist_info"]), paths["scripts"], paths["data"], found["python"]
        )

    @classmethod
    def at(
        cls, name: str, version: str, dist_info: Path, scripts: str, data: str, python: str
    ) -> InstalledDistribution:
        """The distribution in ``dist_info``, in an environment with these ``scripts`` and ``data`` folders
        (``sysconfig.get_paths()``) and Python ``python`` (X.Y)."""
        scheme = {
            "purelib": dist_info.parent,
            "platlib": dist_info.parent,
            "scripts": Path(scripts),
            "data": Path(data),
            # pip puts a wheel's headers in include/site/pythonX.Y/<project>/; the spelling of <project>
            # differs between pip versions, so path_of finds it in RECORD.
            "headers": Path(data) / "include" / "site" / f"python{python}",
        }
        return cls(name, version, dist_info, scheme)

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

    def _key(self, member: str) -> str:
        """The row of RECORD that lists ``member``: where the installer put it, relative to site-packages."""
        if ".data/" not in member:  # the member's own path: no need to resolve it through the scheme
            return os.path.normpath(member)
        return os.path.normpath(os.path.relpath(self.path_of(member), self.dist_info.parent))

    def _header_path(self, rest: tuple[str, ...]) -> Path:
        folder = Path(os.path.relpath(self.scheme["headers"], self.dist_info.parent))
        for key in self._record:
            path = Path(key)
            if path.is_relative_to(folder) and path.relative_to(folder).parts[1:] == rest:
                return self.dist_info.parent / path
        return self.scheme["headers"].joinpath(*rest)

    def read_verified(self, member: str, most: int | None = None) -> bytes:
        """The installed file of ``member``, refused unless its size and sha256 are the ones in RECORD.

        With ``most``, a file RECORD says is larger is refused before anything is opened: a patch's budget
        covers the sizes it declares, not whatever else an environment holds.
        """
        key = self._key(member)
        row = self._record.get(key)
        if row is None or not row.hash:
            raise SourceMismatch(f"{member} is not hashed in the RECORD of installed {self.name}")
        if most is not None and (row.size is None or row.size > most):
            raise SourceMismatch(f"installed {key} is larger than the file the patch was made from")
        return self._verified(key, row, self._inside(key))

    def record_row(self, member: str) -> bytes | None:
        """The RECORD row a wheel builder wrote for ``member``, as installed files' RECORD gives it (None: it gives
        no sha256 and size). Nothing is read: it is what the file holds when :meth:`read_verified` accepts it."""
        row = self._record.get(self._key(member))
        if row is None or row.size is None or not row.hash.startswith("sha256=") or len(row.hash) != 50:
            return None
        return f"{member},{row.hash},{row.size}\n".encode()

    def check_files(self) -> None:
        """Raise :class:`SourceMismatch` unless every file RECORD hashes is as installed.

        A client checks this before it downloads a patch, so a modified file costs no wasted download.
        Bytecode is never a source (:func:`~pipdelta.format.blob.is_source_name`): the installer may have
        compiled over a .pyc the wheel ships, and that changes nothing. A row that leaves the environment
        makes the whole source unusable, hashed or not.
        """
        where = {key: self._inside(key) for key in self._record}  # all rows, before any file is opened
        for key, row in self._record.items():
            if row.hash and is_source_name(key):
                self._verified(key, row, where[key])

    def _verified(self, key: str, row: Row, real: Path) -> bytes:
        if row.size is None:
            raise SourceMismatch(f"the RECORD of installed {self.name} gives no size for {key}")
        content = self._read(real, row.size)
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        if row.hash != f"sha256={digest}":
            raise SourceMismatch(f"installed {key} was modified since {self.name} {self.version} was installed")
        return content

    def _inside(self, key: str) -> Path:
        """Where RECORD's ``key`` really is, refused unless inside a folder of this environment's scheme.

        Symlinks are resolved first (also in parent folders, and before ``..``, as the kernel would), so
        neither a link out of the environment nor ``../..`` rows reach anything the installer did not own.
        """
        folder, name = os.path.split(os.path.join(self.dist_info.parent, key))
        try:
            if name in ("", os.curdir, os.pardir):
                real = os.path.realpath(os.path.join(folder, name))
            else:  # each folder resolved once: RECORDs list many files per folder
                if folder not in self._folders:
                    self._folders[folder] = os.path.realpath(folder)
                real = os.path.join(self._folders[folder], name)
                real = os.path.realpath(real) if os.path.islink(real) else real
        except ValueError:  # a NUL in the row
            raise SourceMismatch(f"the RECORD of installed {self.name} has an unreadable row {key!r}") from None
        if not any(os.path.join(real, "").startswith(root) for root in self._roots):
            raise SourceMismatch(f"{key} in the RECORD of installed {self.name} lies outside its environment")
        return Path(real)

    @functools.cached_property
    def _roots(self) -> frozenset[str]:
        """The scheme's folders, resolved, each ending with a separator."""
        return frozenset(os.path.join(os.path.realpath(folder), "") for folder in self.scheme.values())

    @functools.cached_property
    def _folders(self) -> dict[str, str]:
        """Folders already resolved, by their path before resolution."""
        return {}

    def _read(self, real: Path, size: int | None = None) -> bytes:
        """The bytes of the regular file ``real``: exactly ``size`` of them, or at most ``RECORD_LIMIT``.

        The type and size are checked on the open descriptor before anything is read: a device, a FIFO
        (opened without blocking), a symlink swapped in after ``_inside`` or a file of another size is
        refused without reading it.
        """
        try:
            fd = os.open(real, _READ_FLAGS)
        except OSError as exc:
            raise SourceMismatch(f"cannot read installed {real}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as stream:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SourceMismatch(f"installed {real} is not a regular file")
            if size is None and info.st_size > RECORD_LIMIT:
                raise SourceMismatch(f"installed {real} has {info.st_size:,} bytes, more than {RECORD_LIMIT:,}")
            if size is not None and info.st_size != size:
                raise SourceMismatch(
                    f"installed {real} was modified since {self.name} {self.version} was installed "
                    f"({info.st_size:,} bytes; RECORD says {size:,})"
                )
            content = stream.read(info.st_size + 1)
        if len(content) != info.st_size:
            raise SourceMismatch(f"installed {real} changed size while it was read")
        return content

    @functools.cached_property
    def _record(self) -> dict[str, Row]:
        try:
            text = self._read(self._inside(os.path.join(self.dist_info.name, "RECORD")))
            rows = list(csv.reader(io.StringIO(text.decode("utf-8"))))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise SourceMismatch(f"cannot read the RECORD of installed {self.name}: {exc}") from None
        return {os.path.normpath(row[0]): Row.parse(row) for row in rows if len(row) >= 2}
