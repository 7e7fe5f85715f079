"""The client's whole job in one place: start the local index, run pip once through it, read the ledger."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from packaging.utils import NormalizedName, canonicalize_name

from pipdelta.client import indexes, locks
from pipdelta.client.config import Settings
from pipdelta.client.environment import Environment
from pipdelta.client.environment import Installed as Here
from pipdelta.client.install import Installed, Request, confirm, install
from pipdelta.client.report import DRY_RUN, NOTHING, Outcome, Report
from pipdelta.proxy.local import LocalIndex, local_index
from pipdelta.proxy.upstreams import Upstream, untoken


def run(
    environment: Environment,
    request: Request,
    settings: Settings,
    *,
    dry_run: bool = False,
    quiet: bool = True,
    warn: Callable[[str], None] = print,
) -> Report:
    """Do what ``pip install`` would for ``request``, its wheels served by the local index; one row per install.

    The environment stays locked from before it is listed to the end of the pip run (a dry run changes
    nothing and takes no lock), so two runs never interleave on it.
    """
    began = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if not dry_run:
            stack.enter_context(locks.environment(environment, settings.cache_dir))
        before = environment.installed()
        configured, options = indexes.with_options(indexes.from_pip(environment), request.options)
        request = replace(request, options=tuple(options))
        upstreams = [Upstream.parse(url) for url in configured.upstream]
        with local_index(upstreams, settings, environment, plan_only=dry_run) as local:
            local.app.start_early(request.named())
            env = indexes.installer_environment(local.urls, configured.local)
            pip_began = time.perf_counter()
            pip_run = install(environment, request, env, before, dry_run=dry_run, quiet=quiet)
            pip_seconds = time.perf_counter() - pip_began
            for line in local.warnings:
                warn(line)
            outcomes = [_outcome(item, local, before, dry_run=dry_run) for item in pip_run.chosen]
            found, warnings = local.delta_index, local.warnings
            base = found.base if found is not None else None
        if pip_run.error is None and not outcomes:
            report = Report([], NOTHING)
        elif dry_run and pip_run.error is None:
            report = Report(outcomes, DRY_RUN)
        else:
            report = confirm(environment, outcomes, pip_run.error)
    report.delta_index, report.warnings = base, warnings
    report.timings = {"pip": round(pip_seconds, 3), "total": round(time.perf_counter() - began, 3)}
    return report


def _outcome(item: Installed, local: LocalIndex, before: Mapping[NormalizedName, Here], *, dry_run: bool) -> Outcome:
    """The ledger's row for ``item`` (the plan's, in a dry run), or why the local index did not serve it."""
    row = local.ledger.get(item.filename) if item.url else _served(local, item)
    rebuilds = local.rebuilds if dry_run and row is None else None
    if rebuilds is not None:
        job = rebuilds.get(untoken(item.url.rsplit("/", 2)[-2]) or "")
        if job is not None and job.done.wait(rebuilds.context.meter.wait):
            row = replace(job.outcome)
            if row.downloaded is None:  # planned in full: the whole wheel would come down
                row.downloaded = row.full_size
    here = before.get(item.name)
    if row is None:  # pip's own cache, a local file, find-links: nothing came through the local index
        row = Outcome(item.name, None, str(item.version), downloaded=0, reason="not downloaded through the local index")
    if row.old is None and here is not None:
        row.old = str(here.version)
    return row


def _served(local: LocalIndex, item: Installed) -> Outcome | None:
    """The ledger's row for ``item`` found by name and version (an old pip's run gives no filename)."""
    for row in local.ledger.outcomes():
        if canonicalize_name(row.name) == item.name and row.new == str(item.version):
            return row
    return None
