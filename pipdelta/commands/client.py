"""``pipdelta upgrade|install|run|proxy|cache|demo``: the client on the command line."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipdelta.errors import UsageError

WIDE = 200  # columns for the table when not on a terminal: wide enough for every column, never padded

if TYPE_CHECKING:
    from rich.console import Console

    from pipdelta.client.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    from pipdelta.client import config

    settings = config.load(args.delta_index, prefer=args.prefer)
    if settings.index_url is None:
        raise UsageError(
            "no delta index: pass --delta-index URL, set PIPDELTA_INDEX_URL, "
            f"or put index-url in {config.config_file()}"
        )
    return settings


def _run(args: argparse.Namespace, requirements: list[str], files: list[Path], upgrade: bool) -> int:
    from pipdelta.client.environment import Environment

    settings = _settings(args)
    for path in files:
        if not path.is_file():
            raise UsageError(f"requirements file {path} does not exist")
    environment = Environment.of(args.python).ask()  # it answers while the rest of pipdelta is imported
    from pipdelta.client import pipeline, report
    from pipdelta.client.install import Request

    consoles = Consoles(args)
    result = pipeline.run(
        environment,
        Request(tuple(requirements), tuple(files), upgrade, args.no_deps, tuple(args.pip_options)),
        settings,
        dry_run=args.dry_run,
        quiet=args.quiet or not consoles.err.is_terminal,
        warn=consoles.warn,
    )
    if not result.outcomes and result.error is None:
        consoles.out.print("Nothing to do: pip would install nothing.", highlight=False)
    elif not args.quiet:
        title = "pipdelta plan (dry run: nothing downloaded or installed)" if args.dry_run else "pipdelta"
        report.show(result, consoles.out, title=title)
    if args.json is not None:
        report.write_json(args.json, result)
    if result.error is not None:
        raise result.error  # after the report: it says what pip installed and what it did not
    return 0


class Consoles:
    """Where the table goes (stderr when ``--json -`` takes stdout) and where warnings go, made when first used
    (a quiet run never imports rich); never cut to 80 columns when not a terminal (a CI log keeps every column)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._table_on_stderr = str(args.json) == "-"

    @functools.cached_property
    def err(self) -> Console:
        return _console(stderr=True)

    @functools.cached_property
    def out(self) -> Console:
        return self.err if self._table_on_stderr else _console(stderr=False)

    def warn(self, line: str) -> None:
        self.err.print(f"[yellow]pipdelta: warning:[/] {line}", highlight=False, soft_wrap=True)


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    console = Console(stderr=stderr)
    if not console.is_terminal:
        console.width = WIDE
    return console


def _command(args: argparse.Namespace) -> int:
    import os
    import subprocess
    import time

    from pipdelta.client.environment import Environment

    command = args.command_line[1:] if args.command_line[:1] == ["--"] else args.command_line
    if not command:
        raise UsageError("nothing to run: pipdelta run [options] -- COMMAND...")
    began = time.perf_counter()
    settings = _settings(args)
    environment = Environment.of(args.python).ask()  # it answers while the rest of pipdelta is imported
    from pipdelta.client import indexes, report
    from pipdelta.proxy.local import local_index
    from pipdelta.proxy.upstreams import Upstream

    configured = indexes.with_uv(indexes.from_pip(environment), os.environ)
    consoles = Consoles(args)
    with local_index([Upstream.parse(u) for u in configured.upstream], settings, environment) as local:
        env = {**os.environ, **indexes.installer_environment(local.urls, configured.local)}
        try:
            status = subprocess.run(command, env=env, check=False).returncode
        except OSError as exc:
            raise UsageError(f"cannot run {command[0]}: {exc.strerror or exc}") from None
        result = local.report(report.INSTALLED if status == 0 else report.FAILED)
    for line in result.warnings:
        consoles.warn(line)
    result.timings = {"total": round(time.perf_counter() - began, 3)}
    if result.outcomes and not args.quiet:
        report.show(result, consoles.err)
    if args.json is not None:
        report.write_json(args.json, result)
    return status


def _proxy(args: argparse.Namespace) -> int:
    import os
    import signal
    import threading

    from pipdelta.client import indexes, report
    from pipdelta.client.environment import Environment
    from pipdelta.proxy.local import local_index
    from pipdelta.proxy.upstreams import Upstream
    from pipdelta.server.logs import JsonLog

    settings = _settings(args)
    environment = Environment.of(args.python)
    configured = indexes.with_uv(indexes.from_pip(environment), os.environ)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    upstreams = [Upstream.parse(u) for u in configured.upstream]
    with local_index(upstreams, settings, environment, port=args.port, log=JsonLog()) as local:
        print(f"pipdelta: serving {', '.join(u.url for u in upstreams)} through the local index; use:", flush=True)
        for name, value in indexes.installer_environment(local.urls, configured.local).items():
            print(f"export {name}='{value}'", flush=True)
        stop.wait()
        result = local.report(report.INSTALLED)
    consoles = Consoles(args)
    for line in result.warnings:
        consoles.warn(line)
    if result.outcomes:
        report.show(result, consoles.err)
    if args.json is not None:
        report.write_json(args.json, result)
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    if bool(args.packages) == args.all:
        raise UsageError("give the packages to upgrade, or --all (not both)")
    policy = args.policy or ("server" if args.all else _settings(args).policy)
    if policy == "pip":
        if args.all:
            raise UsageError("--all upgrades to the delta index's targets: it cannot be used with --policy pip")
        return _run(args, args.packages, [], True)
    return _upgrade_to_targets(args)


def _upgrade_to_targets(args: argparse.Namespace) -> int:
    """The server's targets, handed to the same run as ``pipdelta upgrade PKG...`` as ``name==version``."""
    from pipdelta.client import outdated, targets
    from pipdelta.client.environment import Environment

    survey = targets.survey(Environment.of(args.python), _settings(args))
    if not survey.server:
        print(outdated.STATIC_NOTE)
    names = None if args.all else survey.select(args.packages)
    for row in survey.left_alone(names):
        print(f"left alone: {row.installed.name} {row.installed.version} ({outdated.verdict(row)})")
    due = survey.due(names)
    if not due:
        print("Nothing to do: every project is at the delta index's target.")
        return 0
    return _run(args, survey.requirements(due), [], True)


def _outdated(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pipdelta.client import outdated, report, targets
    from pipdelta.client.environment import Environment

    settings = _settings(args)
    assert settings.index_url is not None
    survey = targets.survey(Environment.of(args.python), settings)
    if not survey.server:
        print(outdated.STATIC_NOTE)
    Console().print(outdated.table(survey, settings.index_url))
    if args.json is not None:
        report.write_document(args.json, outdated.to_json(survey, settings.index_url))
    return 0


def _install(args: argparse.Namespace) -> int:
    if not args.packages and not args.requirement and not args.pip_options:
        raise UsageError("nothing to install: give requirements, -r FILE or pip's options after --")
    return _run(args, args.packages, args.requirement, args.upgrade)


def _cache_info(args: argparse.Namespace) -> int:
    from pipdelta.client import config
    from pipdelta.client.cache import Cache

    cache = Cache(config.load().cache_dir)
    wheels = list(cache)
    print(f"cache    {cache.directory}")
    print(f"wheels   {len(wheels)} ({sum(w.size for w in wheels):,} bytes)")
    for wheel in wheels:
        print(f"  {wheel.path.name}  {wheel.size:,} bytes")
    return 0


def _cache_prune(args: argparse.Namespace) -> int:
    from pipdelta.client import config
    from pipdelta.client.cache import Cache

    if args.keep < 0:
        raise UsageError("--keep must be 0 or more")
    removed = Cache(config.load().cache_dir).prune(args.keep)
    print(f"removed {len(removed)} wheels ({sum(w.size for w in removed):,} bytes)" if removed else "nothing to prune")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pipdelta.demo.runner import run_demo

    return run_demo(offline=args.offline, keep=args.keep)


def _index_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--delta-index", metavar="URL", help="delta index base URL (default: $PIPDELTA_INDEX_URL)")
    parser.add_argument(
        "--python",
        metavar="PYTHON",
        help="act on this environment: an interpreter or a venv folder (default: the active venv, "
        "else ./.venv, else pipdelta's own)",
    )
    parser.add_argument(
        "--prefer", choices=("time", "bytes"), help="bytes: always the smallest download (metered links)"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON (- for stdout)")


def _common(parser: argparse.ArgumentParser) -> None:
    _index_options(parser)
    parser.add_argument("--no-deps", action="store_true", help="as pip's --no-deps: leave dependencies alone")
    parser.add_argument("--dry-run", action="store_true", help="show the plan; download and install nothing")
    parser.add_argument("-q", "--quiet", action="store_true", help="no table (warnings still go to stderr)")


class PipOptions(argparse.ArgumentParser):
    """A command whose arguments after ``--`` are pip's own (``-- --pre -c FILE -e DIR``), passed on untouched."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        given = list(sys.argv[1:] if args is None else args)
        cut = given.index("--") if "--" in given else len(given)
        parsed, extras = super().parse_known_args(given[:cut], namespace)
        parsed.pip_options = given[cut + 1 :]
        return parsed, extras


def register(commands: Any) -> None:
    """Add the client's commands to the ``pipdelta`` parser."""
    upgrade = commands.add_parser("upgrade", help="upgrade packages, downloading patches instead of wheels")
    upgrade.__class__ = PipOptions  # the subparsers action makes plain parsers
    upgrade.add_argument(
        "packages",
        nargs="*",
        metavar="PKG",
        help="requirement specifiers, as for pip (then, after --, pip's own options)",
    )
    upgrade.add_argument("--all", action="store_true", help="every project the delta index's policy says is due")
    upgrade.add_argument(
        "--policy",
        choices=("pip", "server"),
        help="whose versions: the newest pip finds, or the delta index server's targets (default: config, pip)",
    )
    _common(upgrade)
    upgrade.set_defaults(handler=_upgrade)

    outdated = commands.add_parser("outdated", help="what the delta index's policy says of each installed project")
    _index_options(outdated)
    outdated.set_defaults(handler=_outdated)

    install = commands.add_parser("install", help="pip install, downloading patches instead of wheels")
    install.__class__ = PipOptions
    install.add_argument(
        "packages",
        nargs="*",
        metavar="PKG",
        help="requirement specifiers, as for pip (then, after --, pip's own options)",
    )
    install.add_argument("-r", "--requirement", action="append", type=Path, default=[], metavar="FILE")
    install.add_argument("-U", "--upgrade", action="store_true", help="upgrade what is already installed")
    _common(install)
    install.set_defaults(handler=_install)

    run = commands.add_parser("run", help="run an installer (pip, uv, pdm, ...) with the local index as its index")
    run.add_argument("command_line", nargs=argparse.REMAINDER, metavar="-- COMMAND...")
    _index_options(run)
    run.add_argument("-q", "--quiet", action="store_true", help="no table at the end")
    run.set_defaults(handler=_command)

    proxy = commands.add_parser("proxy", help="serve the local index in the foreground until Ctrl-C")
    proxy.add_argument("--port", type=int, metavar="N", help="listen on this port (default: a stable free one)")
    _index_options(proxy)
    proxy.set_defaults(handler=_proxy)

    cache = commands.add_parser("cache", help="pipdelta's wheel cache")
    actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("info", help="where the cache is and what it holds").set_defaults(handler=_cache_info)
    prune = actions.add_parser("prune", help="keep only the newest wheels of each project")
    prune.add_argument("--keep", type=int, default=1, metavar="N", help="versions to keep per project (default 1)")
    prune.set_defaults(handler=_cache_prune)

    demo = commands.add_parser("demo", help="upgrade a package in a throwaway venv through a local mirror")
    demo.add_argument("--offline", action="store_true", help="use wheels built on the spot, not the registry's")
    demo.add_argument("--keep", action="store_true", help="keep the demo's folder (its path is printed)")
    demo.set_defaults(handler=_demo)
