"""Bytes on the wire per platform tag and client kind: patch plus the ranges a client cannot re-create, or the
full wheel where the client, weighing the index's member figures beforehand, finds that cheaper.

Usage: ``python benchmarks/platforms.py [--tags linux win-cp314 ...] [--json FILE] [--check]`` (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from engine import DEFAULT_PAIRS, Pair, find_pair, index_wheels, read_pairs, render

import pipdelta
from pipdelta.client.ranges import PER_REQUEST
from pipdelta.engines.zlibapi import CLASSIC, ZLIBNG22
from pipdelta.format.patchfile import read_patch
from pipdelta.index.members import Members

PLATFORM_PAIRS = DEFAULT_PAIRS.with_name("pairs-platforms.tsv")
KINDS = ("classic", "zlib-ng")  # and "zlib-ng-2.2" (--zlibng22, Windows 3.14), "zlib-ng+zlib" (--zlib, cmeel-zlib)
# The targets of the issue.
MAX_CP314_OVER_CP313 = 1.5  # win cp314's ratio / the same pairs' ratio where classic zlib made the wheels
MAX_ZLIBNG_OVER_CLASSIC = 2.0  # a zlib-ng client's aggregate / a classic client's, on the public corpus
# The recipes a client of the kind argv[1] re-creates exactly, asked in an interpreter set up as client.py sets it.
PROBE = """import json, sys
if sys.argv[1].startswith("zlib-ng"):
    from zlib_ng import zlib_ng
    sys.modules["zlib"] = zlib_ng
from pipdelta.engines import fingerprint, recipes
print(json.dumps([str(r) for r in recipes.CANDIDATES if fingerprint.reproduces(r)]))
"""


@dataclass
class Row:
    """One pair on one kind of client."""

    tag: str
    pair: str
    kind: str
    full: int
    patch: int
    ranges: int
    raw: int  # compressed bytes the maker carried as they are (no recipe re-creates them)
    exact: bool
    error: str | None
    expected: int = 0  # range bytes the client expects from the index's member figures, before downloading

    @property
    def wire(self) -> int:
        """Before the client weighed ranges: the patch and its ranges, or the full wheel when that is not exact."""
        return self.patch + min(self.ranges, self.full) if self.exact else self.full

    @property
    def takes_full(self) -> bool:
        """The client's choice: the full wheel, when the patch and the ranges it expects cost no less."""
        return self.patch + self.expected >= self.full

    @property
    def chosen(self) -> int:
        """What the client downloads now: the full wheel where it chose it, else as :attr:`wire`."""
        return self.full if self.takes_full else self.wire

    @property
    def best(self) -> int:
        """The least it could download, knowing the ranges exactly."""
        return min(self.wire, self.full)


def pairs(corpus: Path, tags: Sequence[str]) -> tuple[list[tuple[str, Pair]], list[str]]:
    """(tag, pair) for the public corpus ("linux") and each platform folder, and notes on the missing ones."""
    rows = [("linux", row) for row in read_pairs(DEFAULT_PAIRS)] if "linux" in tags else []
    if PLATFORM_PAIRS.exists():
        for line in PLATFORM_PAIRS.read_text(encoding="utf-8").splitlines():
            fields = line.split("\t")
            if not line.startswith("#") and len(fields) > 3 and fields[3] in tags:
                rows.append((fields[3], (fields[0], fields[1], fields[2])))
    found, notes, wheels = [], [], {}
    for tag, row in rows:
        if tag not in wheels:
            wheels[tag] = index_wheels(corpus if tag == "linux" else corpus / tag)
        pair = find_pair(wheels[tag], row)
        if isinstance(pair, Pair):
            found.append((tag, pair))
        else:
            notes.append(f"{tag} {row[0]} {row[1]} -> {row[2]}: {pair}")
    return found, notes


def environment(kind: str, libraries: dict[str, str]) -> dict[str, str]:
    """The environment of a client of ``kind``: the zlib library its kind names, if any."""
    env = {k: v for k, v in os.environ.items() if k not in (ZLIBNG22, CLASSIC)}
    env.update({k: v for k, v in libraries.items() if k == ZLIBNG22 and kind == "zlib-ng-2.2"})
    env.update({k: v for k, v in libraries.items() if k == CLASSIC and kind == "zlib-ng+zlib"})
    return env


def exact_recipes(kind: str, libraries: dict[str, str]) -> frozenset[str]:
    """The recipes a client of ``kind`` re-creates exactly (its fingerprint self-test)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, kind],
        capture_output=True,
        text=True,
        check=True,
        env=environment(kind, libraries),
    )
    return frozenset(json.loads(done.stdout))


def measure(tag: str, pair: Pair, work: Path, kinds: dict[str, frozenset[str]], libraries: dict[str, str]) -> list[Row]:
    """Make the patch once, then apply it on each kind of client in its own interpreter."""
    patch = work / f"{pair.name}-{tag}.pdelta"
    full = pair.new.stat().st_size
    try:
        report = pipdelta.make_patch(pair.old, pair.new, patch)
    except pipdelta.errors.PipdeltaError as exc:
        return [Row(tag, pair.label, kind, full, 0, 0, 0, False, f"make: {exc}") for kind in kinds]
    members = Members.of(read_patch(patch.read_bytes())[0])
    rows = []
    for kind, exact in kinds.items():
        script = Path(__file__).with_name("client.py")
        done = subprocess.run(
            [sys.executable, str(script), kind, str(pair.old), str(patch), str(pair.new)],
            capture_output=True,
            text=True,
            check=False,
            env=environment(kind, libraries),
        )
        try:
            result = json.loads(done.stdout)
        except ValueError:
            result = {"exact": False, "ranges": 0, "error": done.stderr.strip().splitlines()[-1:]}
        rows.append(
            Row(
                tag,
                pair.label,
                kind,
                full,
                report.patch_size,
                result["ranges"],
                report.raw_bytes,
                result["exact"],
                result["error"],
                members.ranges_cost(exact.__contains__, installed=False, per_request=PER_REQUEST),
            )
        )
    return rows


def table(rows: Sequence[Row]) -> tuple[list[str], list[list[str]], list[str]]:
    """Per platform tag and client kind: pairs, exact, wire ÷ new wheel bytes (before and since the client weighs
    the ranges, and the least possible), full wheels chosen, raw and range shares."""
    headers = [
        "tag / client",
        "pairs",
        "exact",
        "wire/new",
        "chosen/new",
        "best/new",
        "full",
        "patch/new",
        "ranges/new",
        "raw share",
    ]
    body = []
    for tag in dict.fromkeys(r.tag for r in rows):
        for kind in dict.fromkeys(r.kind for r in rows):
            group = [r for r in rows if r.tag == tag and r.kind == kind]
            body.append(_cells(f"{tag} / {kind}", group))
    return headers, body, _cells("all", rows)


def _cells(label: str, group: Sequence[Row]) -> list[str]:
    full = sum(r.full for r in group) or 1
    return [
        label,
        str(len(group)),
        str(sum(r.exact for r in group)),
        f"{sum(r.wire for r in group) / full:.3f}",
        f"{sum(r.chosen for r in group) / full:.3f}",
        f"{sum(r.best for r in group) / full:.3f}",
        str(sum(r.takes_full for r in group)),
        f"{sum(r.patch for r in group) / full:.3f}",
        f"{sum(r.ranges for r in group if r.exact) / full:.3f}",
        f"{sum(r.raw for r in group) / full:.3f}",
    ]


def ratio(rows: Sequence[Row], tag: str, kind: str, names: set[str] | None = None) -> float | None:
    group = [r for r in rows if r.tag == tag and r.kind == kind and (names is None or r.pair in names)]
    return sum(r.chosen for r in group) / sum(r.full for r in group) if group else None


def targets(rows: Sequence[Row]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target of the issue that this run can measure."""
    out = []
    missed = [f"{r.tag} {r.pair} ({r.kind})" for r in rows if not r.exact]
    out.append(("every pair exact on both client kinds", "; ".join(missed) or "all exact", not missed))
    both = {r.pair for r in rows if r.tag == "win-cp314"} & {r.pair for r in rows if r.tag == "win-cp313"}
    own = "zlib-ng-2.2" if any(r.kind == "zlib-ng-2.2" for r in rows) else "zlib-ng"  # what Windows 3.14 runs
    new, old = ratio(rows, "win-cp314", own, both), ratio(rows, "win-cp313", "classic", both)
    if new is not None and old is not None:
        measured = f"{new:.3f} ({own} client) vs {old:.3f} (classic client) on the {len(both)} pairs of both"
        out.append(
            (f"win cp314 within {MAX_CP314_OVER_CP313}x of win cp313", measured, new <= MAX_CP314_OVER_CP313 * old)
        )
    ng, classic = ratio(rows, "linux", "zlib-ng"), ratio(rows, "linux", "classic")
    if ng is not None and classic is not None:
        out.append(
            (
                f"zlib-ng client within {MAX_ZLIBNG_OVER_CLASSIC}x of classic (public corpus)",
                f"{ng:.3f} vs {classic:.3f} ({ng / classic:.2f}x)",
                ng <= MAX_ZLIBNG_OVER_CLASSIC * classic,
            )
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(os.environ.get("PIPDELTA_CORPUS", Path.home() / ".cache" / "pipdelta-corpus")),
    )
    parser.add_argument("--tags", nargs="+", default=["linux", "win-cp313", "win-cp314", "mac-cp313"])
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="only the pairs of these projects")
    parser.add_argument("--json", type=Path, metavar="FILE")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target is missed")
    parser.add_argument("--zlibng22", type=Path, metavar="LIB", help="a zlib-ng 2.2 build for the maker and a client")
    parser.add_argument("--zlib", type=Path, metavar="LIB", help="a classic zlib library for a zlib-ng client")
    args = parser.parse_args(argv)
    kinds: tuple[str, ...] = KINDS
    libraries: dict[str, str] = {}
    if args.zlibng22 is not None:
        os.environ[ZLIBNG22] = libraries[ZLIBNG22] = str(args.zlibng22)
        kinds = (*kinds, "zlib-ng-2.2")
    if args.zlib is not None:
        libraries[CLASSIC] = str(args.zlib)
        kinds = (*kinds, "zlib-ng+zlib")
    found, notes = pairs(args.corpus, args.tags)
    found = [(tag, pair) for tag, pair in found if not args.only or pair.name in args.only]
    if not found:
        print(f"no pair has both wheels in {args.corpus}; fetch them with ../shared/corpus/fetch.sh", file=sys.stderr)
        return 2
    rows: list[Row] = []
    exact = {kind: exact_recipes(kind, libraries) for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="pipdelta-platforms-") as tmp:
        for number, (tag, pair) in enumerate(found, 1):
            print(f"[{number}/{len(found)}] {tag} {pair.label}", file=sys.stderr, flush=True)
            rows += measure(tag, pair, Path(tmp), exact, libraries)
    print(render(*table(rows)))
    for note in notes:
        print(f"skipped {note}")
    for row in rows:
        if row.error:
            print(f"error {row.tag} {row.pair} ({row.kind}): {row.error}")
    print("\ntargets")
    results = targets(rows)
    for name, measured, met in results:
        print(f"  {'PASS' if met else 'FAIL'}  {name}: {measured}")
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": [asdict(r) for r in rows], "targets": results}, indent=2) + "\n")
    return 1 if args.check and not all(met for _, _, met in results) else 0


if __name__ == "__main__":
    sys.exit(main())
