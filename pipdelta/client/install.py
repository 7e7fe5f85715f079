"""Run the installer once (``pip install --report``) and read what it installed from its report."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from pipdelta.client.environment import Environment
from pipdelta.errors import PipdeltaError


class ReportError(PipdeltaError):
    """pip's installation report is not what its documented format promises."""


@dataclass(frozen=True)
class Installed:
    """One distribution pip installed (or would install), as its report describes it."""

    name: NormalizedName
    version: Version
    url: str

    @property
    def filename(self) -> str:
        return unquote(urlsplit(self.url).path.rsplit("/", 1)[-1])


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


def install(
    environment: Environment, request: Request, env: Mapping[str, str], *, dry_run: bool, quiet: bool
) -> list[Installed]:
    """Run ``pip install`` for ``request`` with ``env`` (the local index's URLs); what pip installed, in its order."""
    with tempfile.TemporaryDirectory(prefix="pipdelta-install-") as tmp:
        report = Path(tmp) / "report.json"
        args = [
            "install",
            "--report",
            str(report),
            *(["--dry-run"] if dry_run else []),
            *(["--quiet"] if quiet else []),
        ]
        environment.pip([*args, *request.pip_args()], capture=quiet, env=env)
        try:
            return parse_report(json.loads(report.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ReportError(f"pip ran but wrote no readable installation report: {exc}") from None


def parse_report(document: Any) -> list[Installed]:
    """The ``install`` items of a pip installation report (format version 1)."""
    if not isinstance(document, dict) or str(document.get("version", "")).split(".")[0] != "1":
        raise ReportError("pip's installation report has an unknown version; upgrade pipdelta")
    out = []
    for item in document.get("install", []):
        try:
            metadata = item["metadata"]
            out.append(
                Installed(
                    canonicalize_name(metadata["name"]), Version(metadata["version"]), item["download_info"]["url"]
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportError(f"pip's installation report has an item pipdelta cannot read ({exc!r})") from None
    return out
