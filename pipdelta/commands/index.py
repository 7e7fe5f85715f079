"""``pipdelta index build`` and ``pipdelta serve``: the delta index beside a mirror, on the command line."""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import importlib
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipdelta.errors import PipdeltaError
from pipdelta.make.limits import DEFAULT_LIMITS, SizeLimits

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def size(text: str) -> int:
    """``512M``, ``8G`` or a number of bytes."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not found:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 8G or 512M)")
    return int(float(found[1]) * _UNITS[found[2].upper()])


def _limits(args: argparse.Namespace) -> SizeLimits:
    return SizeLimits(member=args.max_member_size, total=args.max_total_size)


def _add_limits(parser: argparse.ArgumentParser) -> None:
    """``--max-member-size`` and ``--max-total-size``: what one delta job may inflate (docs/INDEX.md)."""
    parser.add_argument(
        "--max-member-size",
        type=size,
        default=DEFAULT_LIMITS.member,
        metavar="SIZE",
        help=f"skip a delta whose wheels hold a larger member, uncompressed (default {DEFAULT_LIMITS.member >> 30}G)",
    )
    parser.add_argument(
        "--max-total-size",
        type=size,
        default=DEFAULT_LIMITS.total,
        metavar="SIZE",
        help=f"skip a delta whose two wheels hold more, uncompressed (default {DEFAULT_LIMITS.total >> 30}G)",
    )


def _primary_url(template: str | None) -> Callable[[str], str | None] | None:
    if template is None:
        return None
    from packaging.utils import parse_wheel_filename

    try:
        template.format(filename="f", project="p")
    except (KeyError, IndexError, ValueError) as exc:
        raise PipdeltaError(f"--primary-url {template!r}: use only {{filename}} and {{project}} ({exc!r})") from None

    def url(filename: str) -> str:
        return template.format(filename=filename, project=parse_wheel_filename(filename)[0])

    return url


def _load_executor(spec: str) -> concurrent.futures.Executor:
    """``module:factory``: a callable returning the Executor to run the jobs on (e.g. Dask's)."""
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
        executor = factory()
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        raise PipdeltaError(f"cannot load executor {spec!r}: {exc}") from None
    if not isinstance(executor, concurrent.futures.Executor):
        raise PipdeltaError(f"{spec!r} returned {type(executor).__name__}, not a concurrent.futures.Executor")
    return executor


def _warnings_to_stderr() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="pipdelta: warning: %(message)s")


def _build(args: argparse.Namespace) -> int:
    from pipdelta.index.builder import build_index

    _warnings_to_stderr()
    executor = _load_executor(args.executor) if args.executor else None
    try:
        summary = build_index(
            args.source,
            args.output,
            keep=args.keep,
            max_ratio=args.max_ratio,
            jobs=args.jobs,
            executor=executor,
            progress=not args.quiet and sys.stderr.isatty(),
            primary_url=_primary_url(args.primary_url),
            memory=args.memory,
            limits=_limits(args),
        )
    finally:
        if executor is not None:
            executor.shutdown()
    print(summary)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from pipdelta.index.policy import Policy, PolicyFile
    from pipdelta.server import run
    from pipdelta.server.app import WORK, WORK_PER_CLIENT, IndexApp
    from pipdelta.server.catalog import Catalog, StaticCatalog
    from pipdelta.server.gate import Gate
    from pipdelta.server.stats import Stats

    _warnings_to_stderr()
    stats = Stats()
    policy = PolicyFile(args.targets) if args.targets else Policy()
    catalog: Catalog
    if args.upstream:
        from pipdelta.server.ondemand import OnDemandCatalog

        if args.cache is None or args.index_dir is not None:
            raise PipdeltaError("with --upstream, give --cache DIR (and no INDEX_DIR): deltas are made there")
        catalog = OnDemandCatalog(
            args.upstream, args.cache, wait=args.build_wait, jobs=args.jobs, stats=stats, limits=_limits(args)
        )
    else:
        if args.index_dir is None or not args.index_dir.is_dir():
            raise PipdeltaError("give the INDEX_DIR that `pipdelta index build` made (or --upstream and --cache)")
        catalog = StaticCatalog(args.index_dir)
    try:
        gate = Gate(args.max_queries or WORK, args.client_queries or WORK_PER_CLIENT)
        connections = dataclasses.replace(
            run.DEFAULT_LIMITS,
            per_client=args.client_connections or run.DEFAULT_LIMITS.per_client,
            timeout=args.timeout or run.DEFAULT_LIMITS.timeout,
        )
        app = IndexApp(catalog, policy, base_url=args.base_url, stats=stats, gate=gate)
        run.serve(app, args.host, args.port, args.threads, connections)
    finally:
        catalog.close()
    return 0


def register(commands: Any) -> None:
    """Add ``index build`` and ``serve`` to the ``pipdelta`` parser."""
    index = commands.add_parser("index", help="build the delta index beside a mirror")
    actions = index.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="make or update the delta index for a folder of wheels")
    build.add_argument("source", type=Path, metavar="WHEEL_DIR", help="flat folder of wheels or a bandersnatch tree")
    build.add_argument("-o", "--output", type=Path, required=True, metavar="INDEX_DIR", help="made or updated")
    build.add_argument("--keep", type=int, default=3, metavar="K", help="deltas from the K versions before each")
    build.add_argument("--max-ratio", type=float, default=0.5, help="keep a delta only up to this share of its target")
    build.add_argument("-j", "--jobs", type=int, default=None, help="jobs at once (default: CPU count)")
    build.add_argument("--memory", type=size, default=None, help="memory the jobs may take together (default 3/4 RAM)")
    build.add_argument("--primary-url", metavar="TEMPLATE", help="wheel URL on the primary index, with {filename}")
    build.add_argument("--executor", metavar="MODULE:FACTORY", help="run jobs on the Executor this callable returns")
    _add_limits(build)
    build.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    build.set_defaults(handler=_build)

    serve = commands.add_parser("serve", help="serve a delta index with the upgrade query")
    serve.add_argument("index_dir", type=Path, nargs="?", metavar="INDEX_DIR", help="made by `pipdelta index build`")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0: any free one)")
    serve.add_argument(
        "--targets",
        type=Path,
        metavar="FILE",
        help="target-version policy (TOML, docs/INDEX.md), read again when it changes",
    )
    serve.add_argument("--base-url", metavar="URL", help="public URL of the index, when behind a proxy")
    serve.add_argument("--threads", type=int, default=8, help="requests served at once")
    serve.add_argument("--max-queries", type=int, metavar="N", help="queries at once (default 6)")
    serve.add_argument("--client-queries", type=int, metavar="N", help="queries at once per client address (default 4)")
    serve.add_argument(
        "--client-connections",
        type=int,
        metavar="N",
        help="connections per client address (default 64; raise it behind a reverse proxy, whose address all share)",
    )
    serve.add_argument("--timeout", type=float, metavar="S", help="seconds a request may take to arrive (default 15)")
    serve.add_argument("--upstream", metavar="SIMPLE_INDEX_URL", help="make missing deltas from this index's wheels")
    serve.add_argument("--cache", type=Path, metavar="DIR", help="where on-demand wheels and deltas are kept")
    serve.add_argument(
        "--build-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a query waits for an on-demand delta before answering 'full'",
    )
    serve.add_argument("-j", "--jobs", type=int, default=None, help="on-demand deltas made at once")
    _add_limits(serve)
    serve.set_defaults(handler=_serve)
