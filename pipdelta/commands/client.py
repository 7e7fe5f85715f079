"""``pipdelta upgrade|install|cache|demo``: the client on the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipdelta.errors import UsageError


def _run(args: argparse.Namespace, requirements: list[str], files: list[Path], upgrade: bool) -> int:
    from rich.console import Console

    from pipdelta.client import config, pipeline, report
    from pipdelta.client.environment import Environment
    from pipdelta.client.plan import Request

    settings = config.load(args.delta_index)
    if settings.index_url is None:
        raise UsageError(
            "no delta index: pass --delta-index URL, set PIPDELTA_INDEX_URL, "
            f"or put index-url in {config.config_file()}"
        )
    for path in files:
        if not path.is_file():
            raise UsageError(f"requirements file {path} does not exist")
    console = Console(stderr=True)
    result = pipeline.run(
        Environment.of(args.python),
        Request(tuple(requirements), tuple(files), upgrade, args.no_deps),
        settings,
        dry_run=args.dry_run,
        console=console,
    )
    if not result.outcomes:
        print("Nothing to do: pip would install nothing.")
    elif not args.quiet:
        title = "pipdelta plan (dry run: nothing downloaded or installed)" if args.dry_run else "pipdelta"
        report.show(result, Console(), title=title)
    if args.json is not None:
        report.write_json(args.json, result)
    if result.error is not None:
        raise result.error  # after the report: it says what pip installed and what it did not
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    return _run(args, args.packages, [], True)


def _install(args: argparse.Namespace) -> int:
    if not args.packages and not args.requirement:
        raise UsageError("nothing to install: give requirements or -r FILE")
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


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--delta-index", metavar="URL", help="delta index base URL (default: $PIPDELTA_INDEX_URL)")
    parser.add_argument("--python", metavar="PYTHON", help="act on this interpreter's environment")
    parser.add_argument("--no-deps", action="store_true", help="as pip's --no-deps: leave dependencies alone")
    parser.add_argument("--dry-run", action="store_true", help="show the plan; download and install nothing")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no table (warnings still go to stderr)")


def register(commands: Any) -> None:
    """Add the client's commands to the ``pipdelta`` parser."""
    upgrade = commands.add_parser("upgrade", help="upgrade packages, downloading patches instead of wheels")
    upgrade.add_argument("packages", nargs="+", metavar="PKG", help="requirement specifiers, as for pip")
    _common(upgrade)
    upgrade.set_defaults(handler=_upgrade)

    install = commands.add_parser("install", help="pip install, downloading patches instead of wheels")
    install.add_argument("packages", nargs="*", metavar="PKG", help="requirement specifiers, as for pip")
    install.add_argument("-r", "--requirement", action="append", type=Path, default=[], metavar="FILE")
    install.add_argument("-U", "--upgrade", action="store_true", help="upgrade what is already installed")
    _common(install)
    install.set_defaults(handler=_install)

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
