"""The ``pipdelta`` command line: commands are thin layers over the API; errors become one line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from pipdelta import __version__
from pipdelta.errors import PipdeltaError

Handler = Callable[[argparse.Namespace], int]

# Each module has ``register(subparsers)``; the order is the order of ``pipdelta --help``.
COMMAND_MODULES = ("pipdelta.commands.client", "pipdelta.commands.index", "pipdelta.commands.engine")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipdelta", description="Upgrade Python packages with wheel patches.")
    parser.add_argument("--version", action="version", version=f"pipdelta {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except PipdeltaError as exc:
        print(f"pipdelta: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:  # `pipdelta ... | head`: the reader left; not an error worth a traceback
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaced for the rest of the process
        return 141
    except KeyboardInterrupt:
        print("pipdelta: interrupted", file=sys.stderr)
        return 130
