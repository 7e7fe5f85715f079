"""Install with pip, in one run: the rebuilt wheels from a local folder, everything else as pip would."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from pipdelta.client.environment import Environment, PipFailed
from pipdelta.client.plan import PlanError, Planned, Request, parse_report
from pipdelta.client.report import FAILED, INCOMPLETE, INSTALLED, Outcome, Report
from pipdelta.client.wheelhouse import write_simple_index
from pipdelta.errors import PipdeltaError


class InstallIncomplete(PipdeltaError):
    """pip's install run succeeded, yet the environment lacks versions pip had planned (e.g. its index went away)."""


@dataclass(frozen=True)
class PipRun:
    """What pip's install run chose (from its report; none when it failed), and how it failed."""

    chosen: list[Planned]
    error: PipFailed | None


def install(environment: Environment, request: Request, wheelhouse: Path | None, *, quiet: bool) -> PipRun:
    """Run ``pip install`` for ``request``; the wheels in ``wheelhouse/files`` are offered too.

    pip resolves exactly as it would have: same requirements, same configuration, plus the rebuilt wheels
    as one more index, *last*, so that where its file equals the primary index's (same name, version,
    tags and sha256) pip takes the local copy. A failed run is returned, not raised: what it changed is
    for :func:`confirm` to find out.
    """
    with tempfile.TemporaryDirectory(prefix="pipdelta-install-") as tmp:
        report = Path(tmp) / "report.json"
        args = ["install", "--report", str(report)]
        if wheelhouse is not None:
            write_simple_index(sorted(wheelhouse.glob("files/*.whl")), wheelhouse)
            args += ["--extra-index-url", (wheelhouse / "simple").as_uri()]
        if quiet:
            args.append("--quiet")
        try:
            environment.pip([*args, *request.pip_args()], capture=quiet)
        except PipFailed as exc:
            return PipRun([], exc)
        try:
            return PipRun(parse_report(json.loads(report.read_text(encoding="utf-8"))), None)
        except (OSError, ValueError) as exc:
            raise PlanError(f"pip installed but wrote no readable report: {exc}") from None


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
