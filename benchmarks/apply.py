"""Apply speed on the corpus of real PyPI wheel pairs, beside the floor that no applier on this machine can beat.

Usage: ``python benchmarks/apply.py [--only NAME ...] [--patches DIR] [--repeat N] [--no-installed]``
(see benchmarks/README.md). Exit status 1 when a pair misses 50 MB/s from the old wheel or its installed files.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from engine import DEFAULT_PAIRS, FETCH_HINT, MIN_APPLY_MB_S, Pair, find_pair, index_wheels, read_pairs

import pipdelta
from pipdelta import InstalledDistribution, InstalledSource, OldContent, WheelSource, differs
from pipdelta.errors import PipdeltaError
from pipdelta.format import blob, gzmember
from pipdelta.format.codec import xz_decompress
from pipdelta.format.patchfile import Copy, Literal, Member, PatchHeader, Raw, read_patch
from pipdelta.format.ziplayout import STORED

# A pair whose apply is within this factor of its floor is "at the floor": the rest is noise and bookkeeping.
AT_FLOOR = 1.25


def best_of(repeat: int, job: Callable[[], object]) -> float:
    """The least CPU time (all threads) one call of ``job`` took over ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        job()
        best = min(best, time.process_time() - start)
    return best


def wall_of(repeat: int, job: Callable[[], object]) -> tuple[float, float]:
    """The least wall time and the least CPU time of ``repeat`` calls of ``job``."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        job()
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - start_cpu)
    return wall, cpu


@dataclass(frozen=True)
class Floor:
    """The single-core CPU seconds of the work the format demands, whichever applier does it."""

    header: float  # the header's xz and JSON, the payload's sha256
    source: float  # pinning the old content (sha256 of the wheel, or of each installed file) and inflating it
    differ: float  # the differ's own decompression and apply (bsdiff4, zstd, the ELF prediction)
    deflate: float  # every member whose compressed bytes are not at hand, with its recipe's own calls
    largest: float  # the largest of those
    largest_after: float  # the largest of those whose content the differ makes
    hashes: float  # the source blob's sha256, each member's check and the new wheel's sha256

    def seconds(self, cores: int) -> float:
        """The least wall time on ``cores`` cores: a member whose content the differ makes waits for it, no
        member can be split across cores, and no core can do more than its share."""
        every = self.header + self.source + self.differ + self.deflate + self.hashes
        return max(self.header + self.differ + self.largest_after, self.header + self.largest, every / cores)


def measure_floor(patch: bytes, source: OldContent, pin: Callable[[], object], repeat: int) -> Floor:
    """Time, one piece at a time on one core, the work the format asks of any applier of ``patch``; ``pin``
    is what pinning and inflating the old content costs from this kind of source."""
    header, payload = read_patch(patch)
    length = int.from_bytes(patch[10:14], "big")

    def decode_header() -> None:
        json.loads(xz_decompress(patch[14 : 14 + length], len(patch) * 64 + (16 << 20), "header", exact=False))
        hashlib.sha256(payload).digest()

    contents = {k: source.read(s) for k, s in enumerate(header.sources)}
    source_blob = blob.build(header.sources, contents)
    differ = differs.get(header.differ)
    target_blob = differ.patch(source_blob, bytes(payload), header.target_blob_size)
    jobs = _deflate_jobs(header, target_blob, contents, copies=not source.has_raw)
    times = [(best_of(repeat, job), after) for job, after in jobs]
    new_wheel = pipdelta.apply_patch(patch, source, Path(tempfile.mkdtemp()) / "new.whl").read_bytes()

    def hash_all() -> None:
        hashlib.sha256(source_blob).digest()
        hashlib.sha256(new_wheel).digest()  # the members' checks: each member's data once, about the wheel
        hashlib.sha256(new_wheel).digest()

    return Floor(
        header=best_of(repeat, decode_header),
        source=best_of(repeat, pin),
        differ=best_of(repeat, lambda: differ.patch(source_blob, bytes(payload), header.target_blob_size)),
        deflate=sum(t for t, _ in times),
        largest=max((t for t, _ in times), default=0.0),
        largest_after=max((t for t, after in times if after), default=0.0),
        hashes=best_of(repeat, hash_all),
    )


def needed(header: PatchHeader, has_raw: bool) -> list[int]:
    """The sources whose content the source blob or a member needs."""
    found = {k for k, s in enumerate(header.sources) if s.in_blob}
    found.update(op.source for op in header.ops if isinstance(op, Member) and op.source is not None)
    found.update(op.source for op in header.ops if isinstance(op, Copy) and not has_raw)
    return sorted(found)


def pin_wheel(source: WheelSource, header: PatchHeader) -> Callable[[], object]:
    """The old wheel's sha256 pins every member; inflating those the patch reads is what is left."""
    members = [source.wheel.members_by_name[header.sources[k].name] for k in needed(header, True)]

    def pin() -> None:
        hashlib.sha256(source.wheel.data).digest()
        for member in members:
            if member.method != STORED:
                zlib.decompressobj(-15).decompress(source.wheel.raw(member))

    return pin


def pin_installed(source: InstalledSource, header: PatchHeader) -> Callable[[], object]:
    """Each installed file the patch reads is read and checked against the sha256 in its RECORD."""
    paths = [source.distribution.path_of(header.sources[k].name) for k in needed(header, False)]
    return lambda: [hashlib.sha256(path.read_bytes()).digest() for path in paths]


Job = tuple[Callable[[], object], bool]  # a member's deflate, and whether its content comes from the differ


def _deflate_jobs(header: PatchHeader, target_blob: bytes, contents: dict[int, bytes], copies: bool) -> list[Job]:
    """One call per member whose compressed bytes must be made: its recipe's compress() of its content."""
    jobs: list[Job] = []
    position = 0
    for op in header.ops:
        if isinstance(op, Literal | Raw):
            position += op.size
        elif isinstance(op, Copy) and copies and op.recipe is not None:
            jobs.append((partial(op.recipe.compress, contents[op.source]), False))
        elif isinstance(op, Member):
            content = target_blob[position : position + op.size]
            position += op.size
            if op.gz is not None and op.source is not None:  # the old gzip file's stream after a new header
                content += gzmember.stream(contents[op.source])
            elif op.gz is not None:  # the gzip file's own deflate, then the member's
                start, inner = op.gz
                jobs.append((partial(inner.compress, content[start:]), True))
                packed = inner.compress(content[start:])
                content = content[:start] + packed + gzmember.trailer(content[start:])
            elif op.source is not None:
                content = contents[op.source]
            if op.recipe is not None:
                jobs.append((partial(op.recipe.compress, content), op.source is None or op.gz is not None))
    return jobs


@dataclass(frozen=True)
class Row:
    """One pair from one kind of source: today's apply beside its floor."""

    pair: str
    kind: str
    size: int
    wall: float
    cpu: float
    floor: Floor

    def rate(self, seconds: float) -> float:
        return self.size / 1e6 / seconds

    @property
    def floor_wall(self) -> float:
        return self.floor.seconds(CORES)

    @property
    def verdict(self) -> str:
        if self.rate(self.wall) >= MIN_APPLY_MB_S:
            return "PASS"
        if self.rate(self.floor_wall) < MIN_APPLY_MB_S:
            return "miss: floor below target"
        return "miss: at floor" if self.wall <= AT_FLOOR * self.floor_wall else "miss: above floor"


CORES = os.cpu_count() or 1


def install(python: Path, wheel: Path) -> None:
    """Install ``wheel`` alone into ``python``'s environment, without compiling bytecode: where pip compiles,
    it overwrites the bytecode some wheels ship (numpy), and those files can no longer rebuild the wheel."""
    command = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index"]
    subprocess.run([*command, "--no-compile", "--force-reinstall", str(wheel)], check=True, stdout=subprocess.DEVNULL)


def measure(pair: Pair, patch: bytes, python: Path | None, repeat: int) -> Row:
    """Apply ``patch`` ``repeat`` times from the old wheel (or, with ``python``, from its installed files)."""
    header, _ = read_patch(patch)
    source: OldContent
    if python is None:
        source = wheel = WheelSource(pair.old)
        pin = pin_wheel(wheel, header)
    else:
        install(python, pair.old)
        source = installed = InstalledSource(InstalledDistribution.find(pair.name, str(python)))
        pin = pin_installed(installed, header)
    with tempfile.TemporaryDirectory() as tmp:
        runs = itertools.count()  # a new file each run, as a client writes one (replacing one costs more)
        wall, cpu = wall_of(repeat, lambda: pipdelta.apply_patch(patch, source, Path(tmp, f"{next(runs)}.whl")))
        if Path(tmp, "0.whl").read_bytes() != pair.new.read_bytes():
            raise SystemExit(f"{pair.label}: the rebuilt wheel is not the new wheel")
    floor = measure_floor(patch, source, pin, repeat)
    return Row(pair.label, "wheel" if python is None else "installed", pair.new.stat().st_size, wall, cpu, floor)


def table(rows: Sequence[Row]) -> str:
    headers = (
        "pair",
        "from",
        "MB",
        "apply s",
        "cpu s",
        "MB/s",
        "hdr",
        "source",
        "differ",
        "deflate",
        "largest",
        "after differ",
        "sha256",
        "floor s",
        "floor MB/s",
        "x floor",
        "verdict",
    )
    body = [
        (
            r.pair,
            r.kind,
            f"{r.size / 1e6:.1f}",
            f"{r.wall:.3f}",
            f"{r.cpu:.3f}",
            f"{r.rate(r.wall):.0f}",
            *(f"{s:.3f}" for s in (r.floor.header, r.floor.source, r.floor.differ, r.floor.deflate)),
            *(f"{s:.3f}" for s in (r.floor.largest, r.floor.largest_after, r.floor.hashes, r.floor_wall)),
            f"{r.rate(r.floor_wall):.0f}",
            f"{r.wall / r.floor_wall:.1f}",
            r.verdict,
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in (headers, *body)) for i in range(len(headers))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)) for line in body]
    head = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    return "\n".join([head, "-" * len(head), *lines])


LEGEND = f"""\
apply s / cpu s: the least wall and CPU time (all threads) of the repeats of pipdelta.apply_patch, in this process.
The floor columns are single-core CPU seconds of the work the format demands, each the least of the repeats:
hdr (the header's xz and JSON, the payload's sha256), source (the old wheel's sha256 and inflating the members
the patch reads; from installed files: reading and hashing each), differ (its decompression and apply),
deflate (every member whose compressed bytes are not at hand, with its recipe's own calls; largest: the
largest one; after differ: the largest whose content the differ makes), sha256 (the source blob, the members'
checks, the new wheel). floor s = the least wall time on {CORES} cores: max(hdr + differ + after differ,
hdr + largest, all / {CORES}). verdict: PASS at
>= {MIN_APPLY_MB_S:.0f} MB/s; else whether the floor itself is below the target, or today's apply is within
{AT_FLOOR}x of the floor, or above it."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS, help="a pairs.tsv")
    parser.add_argument(
        "--corpus", type=Path, default=Path(os.environ.get("PIPDELTA_CORPUS", "~/.cache/pipdelta-corpus"))
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only the pairs of these projects")
    parser.add_argument("--patches", type=Path, help="keep the patches in DIR and reuse those already there")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the least is kept")
    parser.add_argument("--no-installed", action="store_true", help="skip applying from installed files")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    corpus = args.corpus.expanduser()
    wheels = index_wheels(corpus)
    pairs = []
    for row in read_pairs(args.pairs):
        found = find_pair(wheels, row)
        if args.only and row[0] not in args.only:
            continue
        if isinstance(found, str):
            print(f"skipped {' '.join(row)}: {found}; {FETCH_HINT}", file=sys.stderr)
        else:
            pairs.append(found)
    rows: list[Row] = []
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pipdelta-apply-") as tmp:
        folder = args.patches or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        python = None
        if not args.no_installed:
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(Path(tmp, "venv"))], check=True)
            python = Path(tmp, "venv", "Scripts" if os.name == "nt" else "bin", "python")
        for number, pair in enumerate(pairs, 1):
            print(f"[{number}/{len(pairs)}] {pair.label}", file=sys.stderr, flush=True)
            path = folder / f"{pair.name}-{pair.old_version}-{pair.new_version}.pd"
            if not path.exists():
                pipdelta.make_patch(pair.old, pair.new, path)
            patch = path.read_bytes()
            for kind in (None, python) if python is not None else (None,):
                try:
                    rows.append(measure(pair, patch, kind, args.repeat))
                except PipdeltaError as exc:  # one pair's failure must not hide the others
                    errors.append(f"{pair.label} ({'wheel' if kind is None else 'installed'}): {exc}")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"pipdelta {pipdelta.__version__}, {CORES} cores, load average {load}; wheels from {corpus}\n")
    print(table(rows))
    print()
    print(LEGEND)
    for error in errors:
        print(f"error {error}")
    missed = [f"{r.pair} ({r.kind})" for r in rows if r.verdict != "PASS"] + errors
    if missed:
        print(f"\n{len(missed)} of {len(rows)} miss {MIN_APPLY_MB_S:.0f} MB/s: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
