"""``pipdelta diff|apply|info|engines``: the delta engine on the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipdelta.errors import PipdeltaError

if TYPE_CHECKING:  # every command registers these subcommands: the engine is imported when one runs
    from pipdelta.format.patchfile import PatchHeader


def _diff(args: argparse.Namespace) -> int:
    from pipdelta.make.maker import make_patch

    report = make_patch(args.old, args.new, args.output, differ=args.differ)
    print(
        f"{args.output}: {report.patch_size:,} bytes, {100 * report.ratio:.2f}% of {report.new} "
        f"({report.new_size:,} bytes); differ {report.differ}, {report.copied_members} members copied, "
        f"{report.raw_members} carried compressed"
    )
    return 0


def _apply(args: argparse.Namespace) -> int:
    from pipdelta.apply.applier import apply_patch
    from pipdelta.apply.installed import InstalledDistribution
    from pipdelta.apply.sources import InstalledSource, OldContent, WheelSource
    from pipdelta.client.ranges import RangeClient
    from pipdelta.format.patchfile import Target

    source: OldContent
    if args.old is not None:
        source = WheelSource(args.old)
    else:
        source = InstalledSource(InstalledDistribution.find(args.installed, args.python))
    patch = _read(args.patch)
    fetch = None if args.url is None else RangeClient(args.url)
    path = apply_patch(patch, source, args.output, target=Target(sha256=args.sha256), fetch=fetch)
    print(f"{path}: rebuilt and verified")
    return 0


def _info(args: argparse.Namespace) -> int:
    from pipdelta.format.patchfile import read_patch

    header, _ = read_patch(_read(args.patch))
    print(f"from     {header.old.filename}  sha256={header.old.sha256}")
    print(f"to       {header.new.filename}  sha256={header.new.sha256}  ({header.new.size:,} bytes)")
    print(f"differ   {header.differ}, payload {header.payload_size:,} bytes")
    print(f"sources  {len(header.sources)} members of the old wheel ({header.source_size:,} bytes)")
    for line in _members(header):
        print(f"members  {line}")
    return 0


def _members(header: PatchHeader) -> list[str]:
    """Per recipe: how many members and bytes of the new wheel it makes, and whether this machine can."""
    from pipdelta.engines import fingerprint
    from pipdelta.engines.recipes import Recipe
    from pipdelta.format.patchfile import Copy, FromTarget, Member, wheel_size

    made: dict[str, list[int]] = {}
    for op in header.ops:
        if isinstance(op, Member | Copy) and (op.recipe is not None or isinstance(op, Copy)):
            key = "no recipe (old wheel, else by range)" if op.recipe is None else str(op.recipe)
        elif isinstance(op, FromTarget):
            key = "left out (by range)"
        else:
            continue
        count = made.setdefault(key, [0, 0])
        count[0] += 1
        count[1] += wheel_size(op)
    lines = []
    for key, (members, size) in sorted(made.items(), key=lambda item: -item[1][1]):
        recipe = None if "(" in key else Recipe.parse(key)
        here = "" if recipe is None else ": ok here" if fingerprint.reproduces(recipe) else ": by range here"
        lines.append(f"{key} {members} ({size:,} bytes){here}")
    return lines


def _engines(args: argparse.Namespace) -> int:
    import zlib

    from pipdelta.engines import fingerprint, zlibapi
    from pipdelta.engines.recipes import CANDIDATES, Recipe

    print(f"this interpreter's zlib: {zlib.ZLIB_RUNTIME_VERSION}")
    if zlibapi.is_zlib_ng(zlib) and not fingerprint.reproduces(Recipe("zlib", 6)):
        print("classic zlib, which made most wheels, is not here: pip install 'pipdelta[zlib-ng]' adds it")
    failing = 0
    for recipe in CANDIDATES:
        if fingerprint.reproduces(recipe):
            what = "ok"
        elif recipe.engine == "zlibng22":  # optional: only CPython 3.14 on Windows and index builders have it
            what = "not here: members CPython 3.14 on Windows zipped come by range (PIPDELTA_ZLIBNG22 names one)"
        else:
            failing += 1
            what = "DIFFERS: its members come from the old wheel, or by range from the new one"
        print(f"{recipe!s:16} {what}")
    return 1 if failing else 0


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PipdeltaError(f"cannot read {path}: {exc.strerror}") from None


def register(commands: Any) -> None:
    """Add the engine's commands to the ``pipdelta`` parser."""
    diff = commands.add_parser("diff", help="make a patch from an old wheel to a new one")
    diff.add_argument("old", type=Path, metavar="OLD.whl")
    diff.add_argument("new", type=Path, metavar="NEW.whl")
    diff.add_argument("-o", "--output", type=Path, required=True, metavar="PATCH")
    diff.add_argument("--differ", choices=("auto", "bsdiff4", "zstd"), default="auto")
    diff.set_defaults(handler=_diff)

    apply = commands.add_parser("apply", help="rebuild the new wheel from a patch and the old content")
    apply.add_argument("patch", type=Path, metavar="PATCH")
    old = apply.add_mutually_exclusive_group(required=True)
    old.add_argument("--old", type=Path, metavar="OLD.whl", help="the old wheel")
    old.add_argument("--installed", metavar="NAME", help="the old version's installed files")
    apply.add_argument("--python", metavar="PYTHON", help="interpreter whose environment --installed reads")
    apply.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.whl", help="file or folder")
    apply.add_argument("--sha256", help="refuse unless the result has this sha256 (from the primary index)")
    apply.add_argument(
        "--url", help="the new wheel's URL on the primary index: members this machine cannot re-create are fetched"
    )
    apply.set_defaults(handler=_apply)

    info = commands.add_parser("info", help="show what a patch turns into what, and what it needs")
    info.add_argument("patch", type=Path, metavar="PATCH")
    info.set_defaults(handler=_info)

    engines = commands.add_parser("engines", help="self-test this machine's deflate engines")
    engines.set_defaults(handler=_engines)
