"""Install with pip, in one run: the rebuilt wheels from a local folder, everything else as pip would."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from pipdelta.client.environment import Environment
from pipdelta.client.plan import PlanError, Planned, Request, parse_report
from pipdelta.client.wheelhouse import write_simple_index


def install(environment: Environment, request: Request, wheelhouse: Path | None, *, quiet: bool) -> list[Planned]:
    """Run ``pip install`` for ``request``; the wheels in ``wheelhouse/files`` are offered too.

    pip resolves exactly as it would have: same requirements, same configuration, plus the rebuilt wheels
    as one more index, *last*, so that where its file equals the primary index's (same name, version,
    tags and sha256) pip takes the local copy. Returns what pip installed, from its report.
    """
    with tempfile.TemporaryDirectory(prefix="pipdelta-install-") as tmp:
        report = Path(tmp) / "report.json"
        args = ["install", "--report", str(report)]
        if wheelhouse is not None:
            write_simple_index(sorted(wheelhouse.glob("files/*.whl")), wheelhouse)
            args += ["--extra-index-url", (wheelhouse / "simple").as_uri()]
        if quiet:
            args.append("--quiet")
        environment.pip([*args, *request.pip_args()], capture=quiet)
        try:
            return parse_report(json.loads(report.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise PlanError(f"pip installed but wrote no readable report: {exc}") from None
