"""Ask pip what it would install (``pip install --dry-run --report``): each wheel's URL and sha256."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version

from pipdelta.client.environment import Environment
from pipdelta.errors import PipdeltaError


class PlanError(PipdeltaError):
    """pip's installation report is not what its documented format promises."""


@dataclass(frozen=True)
class Planned:
    """One distribution pip would install, as its report describes it."""

    name: NormalizedName
    version: Version
    url: str
    sha256: str | None  # from the primary index; None when the index publishes no hash
    requested: bool

    @property
    def filename(self) -> str:
        return unquote(urlsplit(self.url).path.rsplit("/", 1)[-1])

    @property
    def is_wheel(self) -> bool:
        """A wheel from an index (not a local file, an sdist, a VCS checkout or a direct URL)."""
        if not self.filename.endswith(".whl") or urlsplit(self.url).scheme not in ("http", "https"):
            return False
        try:
            parse_wheel_filename(self.filename)
        except InvalidWheelFilename:
            return False
        return True


@dataclass(frozen=True)
class Request:
    """What the user asked pip for: requirement specifiers and files, whether to upgrade, whether with dependencies."""

    requirements: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    upgrade: bool = False
    no_deps: bool = False

    def pip_args(self) -> list[str]:
        args = ["--upgrade"] if self.upgrade else []
        if self.no_deps:
            args.append("--no-deps")
        for path in self.files:
            args += ["-r", str(path)]
        return [*args, *self.requirements]


def plan(environment: Environment, request: Request) -> list[Planned]:
    """Everything pip would install for ``request`` in ``environment``, in pip's order."""
    with tempfile.TemporaryDirectory(prefix="pipdelta-plan-") as tmp:
        report = Path(tmp) / "report.json"
        environment.pip(["install", "--dry-run", "--quiet", "--report", str(report), *request.pip_args()])
        try:
            document = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PlanError(f"pip wrote no readable installation report: {exc}") from None
    return parse_report(document)


def parse_report(document: Any) -> list[Planned]:
    """The ``install`` items of a pip installation report (format version 1)."""
    if not isinstance(document, dict) or str(document.get("version", "")).split(".")[0] != "1":
        raise PlanError("pip's installation report has an unknown version; upgrade pipdelta")
    out = []
    for item in document.get("install", []):
        try:
            info = item["download_info"]
            metadata = item["metadata"]
            archive = info.get("archive_info") or {}
            hashes = archive.get("hashes") or {}
            sha256 = hashes.get("sha256")
            if sha256 is None and str(archive.get("hash", "")).startswith("sha256="):
                sha256 = archive["hash"].split("=", 1)[1]
            out.append(
                Planned(
                    canonicalize_name(metadata["name"]),
                    Version(metadata["version"]),
                    str(info["url"]),
                    sha256.lower() if isinstance(sha256, str) else None,
                    bool(item.get("requested", False)),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"pip's installation report has an item pipdelta cannot read ({exc!r})") from None
    return out
