"""Run the installer once (``pip install --report``) and read what it installed from its report."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from pipdelta.client.environment import Environment, PipFailed
from pipdelta.client.environment import Installed as Here
from pipdelta.client.report import FAILED, INCOMPLETE, INSTALLED, Outcome, Report
from pipdelta.errors import PipdeltaError

REPORT_PIP = Version("22.2")  # the first pip with ``install --report`` (and ``--dry-run``)


class ReportError(PipdeltaError):
    """pip's installation report is not what its documented format promises."""


class InstallIncomplete(PipdeltaError):
    """pip's install run succeeded, yet the environment lacks versions pip had chosen (e.g. its index went away)."""


@dataclass(frozen=True)
class Installed:
    """One distribution pip installed (or would install), as its report describes it."""

    name: NormalizedName
    version: Version
    url: str

    @property
    def filename(self) -> str:
        """The wheel's filename (empty when pip gave no report, so no URL, for it)."""
        return unquote(urlsplit(self.url).path.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class Request:
    """What the user asked pip for: requirement specifiers and files, whether to upgrade, whether with dependencies."""

    requirements: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    upgrade: bool = False
    no_deps: bool = False
    options: tuple[str, ...] = ()  # pip's own options, passed on as given (``--pre``, ``-c FILE``, ``-e DIR``, ...)

    def named(self) -> list[Requirement]:
        """The projects named on the command line and in the requirements files, as far as they read without pip
        (a ``name[extras] specifier ; marker`` line, hashes and comments aside): what pip will look for first."""
        lines = list(self.requirements)
        for path in self.files:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue  # pip says why
            lines += text.replace("\\\n", " ").splitlines()
        out = []
        for line in lines:
            text = line.split(" #", 1)[0].split(" --", 1)[0].strip()
            if not text or text.startswith(("-", "#")):
                continue
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if requirement.url is None:
                out.append(requirement)
        return out

    def pip_args(self) -> list[str]:
        args = ["--upgrade"] if self.upgrade else []
        if self.no_deps:
            args.append("--no-deps")
        for path in self.files:
            args += ["-r", str(path)]
        return [*args, *self.options, *self.requirements]


@dataclass(frozen=True)
class PipRun:
    """What pip's install run chose (from its report; none when it failed), and how it failed."""

    chosen: list[Installed]
    error: PipFailed | None


def install(
    environment: Environment,
    request: Request,
    env: Mapping[str, str],
    before: Mapping[NormalizedName, Here],
    *,
    dry_run: bool,
    quiet: bool,
) -> PipRun:
    """Run ``pip install`` for ``request`` with ``env`` (the local index's URLs); what pip chose, in its order.

    pip's report (pip 22.2 and newer) says what it chose; an older pip's choice is what changed in the
    environment since ``before``. A failed run is returned, not raised: what it changed is for
    :func:`confirm` to find out. pip's warnings and errors reach the user as pip writes them.
    """
    # A dry run changes nothing: pipdelta's own pip plans it, reading PEP 658 metadata where older pips would
    # download every wheel.
    reports = dry_run or environment.own_pip is None or environment.own_pip >= REPORT_PIP
    with tempfile.TemporaryDirectory(prefix="pipdelta-install-") as tmp:
        report = Path(tmp) / "report.json"
        args = [
            "install",
            *(["--report", str(report)] if reports else []),
            *(["--dry-run"] if dry_run else []),
            *(["--quiet"] if quiet else []),
        ]
        try:
            environment.pip([*args, *request.pip_args()], env=env, quiet=quiet, ours=dry_run)
        except PipFailed as exc:
            return PipRun([], exc)
        if not reports:
            return PipRun(changed(before, environment.installed()), None)
        try:
            return PipRun(parse_report(json.loads(report.read_text(encoding="utf-8"))), None)
        except (OSError, ValueError) as exc:
            raise ReportError(f"pip ran but wrote no readable installation report: {exc}") from None


def changed(before: Mapping[NormalizedName, Here], after: Mapping[NormalizedName, Here]) -> list[Installed]:
    """What an install run without a report installed: every distribution new or of another version since ``before``."""
    return [
        Installed(name, here.version, "")
        for name, here in after.items()
        if name not in before or before[name].version != here.version
    ]


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


def confirm(environment: Environment, outcomes: Sequence[Outcome], error: PipFailed | None) -> Report:
    """Mark installed only the outcomes whose version the environment now has; the run's status follows.

    Nothing is taken from pip's word: after a failure pip may have installed some packages and not
    others, and after a success it may have found no index and left everything as it was.
    """
    try:
        now = environment.installed()
    except PipFailed as exc:
        now, error = {}, error or exc
    for outcome in outcomes:
        here = now.get(canonicalize_name(outcome.name))
        outcome.installed = here is not None and here.version == Version(outcome.new)
    missing = [f"{o.name} {o.new}" for o in outcomes if not o.installed]
    if error is not None:
        return Report(list(outcomes), FAILED, error)
    if missing:
        count = f"pip installed {len(outcomes) - len(missing)} of the {len(outcomes)} packages it planned"
        return Report(list(outcomes), INCOMPLETE, InstallIncomplete(f"{count}; not installed: {', '.join(missing)}"))
    return Report(list(outcomes), INSTALLED)
