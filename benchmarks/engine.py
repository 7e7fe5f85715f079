"""Benchmark of the delta engine on the corpus of real PyPI wheel pairs, against format-blind anchors.

Usage: ``python benchmarks/engine.py [--only NAME ...] [--json FILE] [--check]`` (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import bsdiff4
from packaging.utils import InvalidWheelFilename, NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

import pipdelta
from pipdelta.differs.zstd import ZstdPrefix

DEFAULT_PAIRS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "pairs.tsv"
FETCH_HINT = "fetch them with ../shared/corpus/fetch.sh"

# The targets of the issue.
MAX_AGGREGATE_RATIO = 0.055  # pipdelta patch bytes / full wheel bytes, over the corpus
MIN_TRANSFORM_GAIN = 0.25  # a pair whose binary changed: the patch at least this much smaller than without it
MAX_OVER_BEST_ANCHOR = 1.05  # each pair's patch / the better of blob-bsdiff4 and blob-zstd
MIN_APPLY_MB_S = 50.0  # MB (10**6 bytes) of wheel output per second, each pair, from a wheel and installed files
MAX_MAKE_VS_BSDIFF = 2.0  # make's time and peak memory / those of blob-bsdiff4


# -- the corpus ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One upgrade of pairs.tsv, with the two wheels found for it."""

    name: str
    old_version: str
    new_version: str
    old: Path
    new: Path

    @property
    def label(self) -> str:
        return f"{self.name} {self.old_version} -> {self.new_version}"


def read_pairs(path: Path) -> list[tuple[str, str, str]]:
    """``(name, old version, new version)`` for each row of a pairs.tsv (``#`` lines are comments)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SystemExit(f"cannot read {path}: {exc.strerror}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise SystemExit(f"{path}:{number}: expected NAME<TAB>OLD<TAB>NEW, got {line!r}")
        rows.append((fields[0], fields[1], fields[2]))
    return rows


def index_wheels(folder: Path) -> dict[tuple[NormalizedName, Version], list[Path]]:
    """The wheel files of ``folder`` by normalized project name and version."""
    found: dict[tuple[NormalizedName, Version], list[Path]] = {}
    for path in sorted(folder.glob("*.whl")):
        try:
            name, version, _, _ = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        found.setdefault((name, version), []).append(path)
    return found


def find_pair(wheels: dict[tuple[NormalizedName, Version], list[Path]], row: tuple[str, str, str]) -> Pair | str:
    """The pair's two wheels, or why they cannot be used; with several builds, two with the same tags."""
    name, old_version, new_version = row
    candidates = []
    for version in (old_version, new_version):
        try:
            paths = wheels.get((canonicalize_name(name), Version(version)), [])
        except InvalidVersion:
            return f"{version!r} is not a version"
        if not paths:
            return f"no wheel of {name}=={version}"
        candidates.append(paths)
    olds, news = candidates
    same_tags = [(o, n) for o in olds for n in news if _tags(o) == _tags(n)]
    old, new = same_tags[0] if same_tags else (olds[0], news[0])
    return Pair(name, old_version, new_version, old, new)


def _tags(path: Path) -> frozenset[Any]:
    return parse_wheel_filename(path.name)[3]


def blob(path: Path) -> bytes:
    """Every member's uncompressed content in archive order: what a format-blind differ sees of a wheel."""
    with zipfile.ZipFile(path) as archive:
        return b"".join(archive.read(info) for info in archive.infolist())


# -- measured jobs, each run alone in a fresh interpreter ---------------------------------------------------


def _make(old: str, new: str, patch: str) -> dict[str, Any]:
    report = pipdelta.make_patch(Path(old), Path(new), Path(patch))
    payloads = report.payloads
    # Without the executable-aware transform: the same patch with the best other payload instead.
    others = [size for name, size in payloads.items() if name != "elf+bsdiff4"]
    plain = report.patch_size - payloads[report.differ] + min(others) if others else report.patch_size
    return {
        "patch_size": report.patch_size,
        "differ": report.differ,
        "raw_members": report.raw_members,
        "plain_size": plain,
    }


def _apply(old: str, patch: str, out: str) -> str:
    return str(pipdelta.apply_patch(Path(patch).read_bytes(), pipdelta.WheelSource(Path(old)), Path(out)))


def _apply_installed(name: str, python: str, patch: str, out: str) -> str:
    source = pipdelta.InstalledSource(pipdelta.InstalledDistribution.find(name, python))
    return str(pipdelta.apply_patch(Path(patch).read_bytes(), source, Path(out)))


def _blob_bsdiff4(old: str, new: str) -> int:
    return len(bsdiff4.diff(blob(Path(old)), blob(Path(new))))


def _idle() -> None:
    return None


JOBS: dict[str, Callable[..., Any]] = {
    "make": _make,
    "apply": _apply,
    "apply-installed": _apply_installed,
    "blob-bsdiff4": _blob_bsdiff4,
    "idle": _idle,
}


_MAXRSS_SHIFT = 0 if sys.platform == "darwin" else 10  # ru_maxrss is in bytes on macOS, in KiB elsewhere


def _peak_rss() -> int:
    # Linux carries a process's pre-exec peak across exec, so the ru_maxrss of a spawned interpreter counts
    # the RSS its parent (this benchmark, holding big blobs) had when it forked: read the peak of this
    # address space alone (VmHWM) where the kernel gives it.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            own = next(int(line.split()[1]) << 10 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << _MAXRSS_SHIFT
    # make_patch runs bsdiff4 in a forked child while it waits; that child starts with all of its parent's
    # pages, so the higher of the two peaks is (to within copy-on-write noise) the peak of the whole job.
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss << _MAXRSS_SHIFT
    return max(own, children)


def _child(conn: Connection, job: str, args: tuple[str, ...]) -> None:
    start = time.perf_counter()
    try:
        value, error = JOBS[job](*args), None
    except Exception as exc:  # reported in the table: one failing pair must not hide the others
        value, error = None, f"{type(exc).__name__}: {exc}"
    conn.send((value, time.perf_counter() - start, _peak_rss(), error))
    conn.close()


@dataclass(frozen=True)
class Measured:
    """A job's result, its wall time and its peak memory above that of an idle interpreter."""

    value: Any
    seconds: float
    peak: int
    error: str | None


class Lab:
    """Runs each job in its own spawned interpreter, so that no job inherits another's memory or caches."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.context = multiprocessing.get_context("spawn")
        self.baseline = 0
        # Every child imports this module (pipdelta, bsdiff4, packaging) before its job: that is the floor.
        idle = [self.run("idle") for _ in range(3)]
        for measured in idle:
            if measured.error is not None:
                raise SystemExit(f"cannot measure: {measured.error}")
        self.baseline = min(measured.peak for measured in idle)

    def run(self, job: str, *args: str) -> Measured:
        receiver, sender = self.context.Pipe(duplex=False)
        child = self.context.Process(target=_child, args=(sender, job, args))
        child.start()
        sender.close()
        try:
            if not receiver.poll(self.timeout):
                child.kill()
                return Measured(None, self.timeout, 0, f"{job} ran out of time ({self.timeout:.0f} s)")
            value, seconds, peak, error = receiver.recv()
        except EOFError:
            child.join()
            return Measured(None, 0.0, 0, f"{job} died (exit code {child.exitcode})")
        finally:
            child.join()
            receiver.close()
        return Measured(value, seconds, max(0, peak - self.baseline), error)


# -- one pair -----------------------------------------------------------------------------------------------


@dataclass
class Row:
    """Everything measured for one pair; sizes in bytes, times in seconds, memory in bytes over idle."""

    pair: str
    full: int
    patch: int | None
    plain: int | None  # the patch without the executable-aware transform
    differ: str
    raw_members: int | None
    whl_bsdiff4: int
    blob_bsdiff4: int | None
    blob_zstd: int
    make_s: float
    apply_s: float | None  # None when there was no patch to apply
    installed_s: float | None  # applying from the old version's installed files
    bsdiff_s: float
    make_peak: int
    apply_peak: int
    bsdiff_peak: int
    exact: bool
    errors: list[str]

    @property
    def best_anchor(self) -> int:
        return self.blob_zstd if self.blob_bsdiff4 is None else min(self.blob_bsdiff4, self.blob_zstd)

    @property
    def download(self) -> int:
        """What a client downloads: the patch, or the full wheel when there is no exact patch."""
        return self.patch if self.patch is not None and self.exact else self.full


def install(python: Path, wheel: Path) -> None:
    """Install ``wheel`` alone with pip into the interpreter ``python``'s environment."""
    command = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index"]
    subprocess.run([*command, "--force-reinstall", str(wheel)], check=True, stdout=subprocess.DEVNULL)


def run_pair(lab: Lab, pair: Pair, work: Path, venv: Path | None) -> Row:
    """Make, apply (from the old wheel, then from its installed files) and anchor one pair; the timed jobs
    run back to back, so they share the noise."""
    patch, out, out2 = work / "patch.pdelta", work / "out", work / "out2"
    out.mkdir()
    out2.mkdir()
    made = lab.run("make", str(pair.old), str(pair.new), str(patch))
    applied = lab.run("apply", str(pair.old), str(patch), str(out)) if made.error is None else None
    from_installed = None
    if venv is not None and made.error is None:
        install(venv, pair.old)
        from_installed = lab.run("apply-installed", pair.name, str(venv), str(patch), str(out2))
        subprocess.run([sys.executable, "-m", "pip", "--python", str(venv), "uninstall", "-qy", pair.name], check=True)
    bsdiff = lab.run("blob-bsdiff4", str(pair.old), str(pair.new))
    old_data, new_data = pair.old.read_bytes(), pair.new.read_bytes()
    exact = applied is not None and applied.error is None and Path(applied.value).read_bytes() == new_data
    if from_installed is not None and from_installed.error is None:
        exact = exact and Path(from_installed.value).read_bytes() == new_data
    errors = [m.error for m in (made, applied, from_installed, bsdiff) if m is not None and m.error is not None]
    return Row(
        pair=pair.label,
        full=len(new_data),
        patch=made.value["patch_size"] if made.error is None else None,
        plain=made.value["plain_size"] if made.error is None else None,
        differ=made.value["differ"] if made.error is None else "-",
        raw_members=made.value["raw_members"] if made.error is None else None,
        whl_bsdiff4=len(bsdiff4.diff(old_data, new_data)),
        blob_bsdiff4=bsdiff.value if bsdiff.error is None else None,
        blob_zstd=len(ZstdPrefix().diff(blob(pair.old), blob(pair.new))),
        make_s=made.seconds,
        apply_s=None if applied is None else applied.seconds,
        installed_s=None if from_installed is None or from_installed.error else from_installed.seconds,
        bsdiff_s=bsdiff.seconds,
        make_peak=made.peak,
        apply_peak=0 if applied is None else applied.peak,
        bsdiff_peak=bsdiff.peak,
        exact=exact,
        errors=errors,
    )


# -- the report ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One target of the issue, what was measured for it and whether it was met."""

    name: str
    measured: str
    passed: bool


def _pct(part: float | None, whole: float) -> str:
    return "-" if part is None else f"{100 * part / whole:.2f}%"


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.0f}"


def _mb_s(size: int, seconds: float) -> float:
    return size / 1e6 / seconds if seconds > 0 else math.nan


HEADERS = (
    "pair",
    "full B",
    "pipdelta B",
    "ratio",
    "no transform",
    "differ",
    "whl-bsdiff4",
    "blob-bsdiff4",
    "blob-zstd",
    "vs best blob",
    "make s",
    "apply s",
    "apply MB/s",
    "inst. MB/s",
    "bsdiff s",
    "make MiB",
    "apply MiB",
    "bsdiff MiB",
    "exact",
    "raw",
)

LEGEND = """\
full B: new wheel; pipdelta B: patch file, ratio = pipdelta / full. Anchors, as % of full: whl-bsdiff4 = bsdiff4 of
the two .whl files; blob-bsdiff4 = bsdiff4, blob-zstd = zstd -19 --long --patch-from, both over the concatenated
uncompressed members. vs best blob: pipdelta against the smaller blob anchor. Times are wall seconds of one job in
a fresh interpreter (make includes its verifying apply; bsdiff = reading both wheels, inflating, blob-bsdiff4);
MiB = that job's peak RSS above an idle interpreter. exact: rebuilt wheel == new wheel. raw: members carried
compressed (no engine re-creates them)."""


def cells(row: Row) -> list[str]:
    over = None if row.patch is None else row.patch / row.best_anchor - 1
    return [
        row.pair,
        f"{row.full:,}",
        "-" if row.patch is None else f"{row.patch:,}",
        _pct(row.patch, row.full),
        _pct(row.plain, row.full),
        row.differ,
        _pct(row.whl_bsdiff4, row.full),
        _pct(row.blob_bsdiff4, row.full),
        _pct(row.blob_zstd, row.full),
        "-" if over is None else f"{100 * over:+.1f}%",
        f"{row.make_s:.2f}",
        "-" if row.apply_s is None else f"{row.apply_s:.2f}",
        "-" if row.apply_s is None else f"{_mb_s(row.full, row.apply_s):.0f}",
        "-" if row.installed_s is None else f"{_mb_s(row.full, row.installed_s):.0f}",
        f"{row.bsdiff_s:.2f}",
        _mib(row.make_peak),
        _mib(row.apply_peak),
        _mib(row.bsdiff_peak),
        "yes" if row.exact else "NO",
        "-" if row.raw_members is None else str(row.raw_members),
    ]


def aggregate(rows: Sequence[Row]) -> dict[str, Any]:
    """Sums over the pairs (a pair without an exact patch counts at full size); memory is the corpus peak."""
    full = sum(r.full for r in rows)
    applied = [r for r in rows if r.apply_s is not None]
    return {
        "pairs": len(rows),
        "full": full,
        "download": sum(r.download for r in rows),
        "plain": sum(r.full if r.plain is None else r.plain for r in rows),
        "whl_bsdiff4": sum(r.whl_bsdiff4 for r in rows),
        "blob_bsdiff4": sum(r.full if r.blob_bsdiff4 is None else r.blob_bsdiff4 for r in rows),
        "blob_zstd": sum(r.blob_zstd for r in rows),
        "best_anchor": sum(r.best_anchor for r in rows),
        "make_s": sum(r.make_s for r in rows),
        "apply_s": sum(r.apply_s or 0.0 for r in applied),
        "applied_full": sum(r.full for r in applied),
        "bsdiff_s": sum(r.bsdiff_s for r in rows),
        "make_peak": max(r.make_peak for r in rows),
        "apply_peak": max(r.apply_peak for r in rows),
        "bsdiff_peak": max(r.bsdiff_peak for r in rows),
        "exact": sum(r.exact for r in rows),
        "raw_members": sum(r.raw_members or 0 for r in rows),
    }


def aggregate_cells(total: dict[str, Any]) -> list[str]:
    full = total["full"]
    return [
        f"all {total['pairs']} pairs",
        f"{full:,}",
        f"{total['download']:,}",
        _pct(total["download"], full),
        _pct(total["plain"], full),
        "",
        _pct(total["whl_bsdiff4"], full),
        _pct(total["blob_bsdiff4"], full),
        _pct(total["blob_zstd"], full),
        f"{100 * (total['download'] / total['best_anchor'] - 1):+.1f}%",
        f"{total['make_s']:.2f}",
        f"{total['apply_s']:.2f}",
        f"{_mb_s(total['applied_full'], total['apply_s']):.0f}",
        "",
        f"{total['bsdiff_s']:.2f}",
        _mib(total["make_peak"]),
        _mib(total["apply_peak"]),
        _mib(total["bsdiff_peak"]),
        f"{total['exact']}/{total['pairs']}",
        str(total["raw_members"]),
    ]


def render(headers: Sequence[str], body: Sequence[Sequence[str]], footer: Sequence[str]) -> str:
    """A plain table: the first column left-aligned, numbers right-aligned, the aggregate under a rule."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *body, footer, strict=True)]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *map(line, body), rule, line(footer)])


def targets(rows: Sequence[Row], total: dict[str, Any]) -> list[Target]:
    full = total["full"]
    ratio = total["download"] / full
    over = [r for r in rows if r.patch is None or r.patch > MAX_OVER_BEST_ANCHOR * r.best_anchor]
    worst = max(rows, key=lambda r: math.inf if r.patch is None else r.patch / r.best_anchor)
    worst_text = "no patch" if worst.patch is None else f"{100 * (worst.patch / worst.best_anchor - 1):+.1f}%"
    apply_rate = _mb_s(total["applied_full"], total["apply_s"])
    rates = {f"{r.pair} (wheel)": _mb_s(r.full, r.apply_s) for r in rows if r.apply_s is not None}
    rates.update({f"{r.pair} (installed)": _mb_s(r.full, r.installed_s) for r in rows if r.installed_s is not None})
    slow = sorted(name for name, rate in rates.items() if not rate >= MIN_APPLY_MB_S)
    slowest = min(rates, key=rates.__getitem__, default=None)
    slowest_text = "" if slowest is None else f" (slowest {slowest}: {rates[slowest]:.0f} MB/s)"
    native = [r for r in rows if r.differ == "elf+bsdiff4" and r.plain]
    weak = [
        r.pair for r in native if r.patch is None or r.plain is None or r.patch > (1 - MIN_TRANSFORM_GAIN) * r.plain
    ]
    gains = ", ".join(f"{r.pair} {100 * (1 - (r.patch or 0) / (r.plain or 1)):.0f}%" for r in native)
    make_time = total["make_s"] / total["bsdiff_s"]
    make_memory = total["make_peak"] / max(total["bsdiff_peak"], 1)
    inexact = [r.pair for r in rows if not r.exact]
    return [
        Target(
            "every pair rebuilt byte-exact",
            f"{total['exact']}/{total['pairs']}" + (f" (not: {', '.join(inexact)})" if inexact else ""),
            not inexact,
        ),
        Target(
            f"aggregate patch bytes <= {100 * MAX_AGGREGATE_RATIO:.1f}% of full wheel bytes",
            f"{100 * ratio:.2f}% (blob-bsdiff4 {_pct(total['blob_bsdiff4'], full)}, "
            f"blob-zstd {_pct(total['blob_zstd'], full)})",
            ratio <= MAX_AGGREGATE_RATIO,
        ),
        Target(
            f"no pair more than {100 * (MAX_OVER_BEST_ANCHOR - 1):.0f}% larger than the better blob anchor",
            f"worst {worst.pair} {worst_text}" + (f"; over: {', '.join(r.pair for r in over)}" if over else ""),
            not over,
        ),
        Target(
            f"apply >= {MIN_APPLY_MB_S:.0f} MB/s of wheel output, every pair, from the wheel and installed files",
            f"all pairs from wheels {apply_rate:.0f} MB/s{slowest_text}"
            + (f"; below: {', '.join(slow)}" if slow else ""),
            bool(rates) and not slow,
        ),
        Target(
            f"each pair whose binary moved >= {100 * MIN_TRANSFORM_GAIN:.0f}% smaller with the transform",
            (gains or "no pair took elf+bsdiff4") + (f"; under: {', '.join(weak)}" if weak else ""),
            not weak,
        ),
        Target(
            f"make time <= {MAX_MAKE_VS_BSDIFF:.0f}x blob-bsdiff4 time (all pairs together)",
            f"{make_time:.2f}x ({total['make_s']:.1f} s vs {total['bsdiff_s']:.1f} s)",
            make_time <= MAX_MAKE_VS_BSDIFF,
        ),
        Target(
            f"make peak memory <= {MAX_MAKE_VS_BSDIFF:.0f}x blob-bsdiff4 peak memory (corpus peak)",
            f"{make_memory:.2f}x ({_mib(total['make_peak'])} MiB vs {_mib(total['bsdiff_peak'])} MiB)",
            make_memory <= MAX_MAKE_VS_BSDIFF,
        ),
    ]


# -- the command --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS, metavar="FILE", help="default: %(default)s")
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(os.environ.get("PIPDELTA_CORPUS", Path.home() / ".cache" / "pipdelta-corpus")),
        metavar="DIR",
        help="folder of the wheels (default: $PIPDELTA_CORPUS or ~/.cache/pipdelta-corpus)",
    )
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="run only the pairs of these projects")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target is missed")
    parser.add_argument("--no-installed", action="store_true", help="skip applying from installed files (pip)")
    parser.add_argument("--timeout", type=float, default=1800, metavar="S", help="limit of each job (%(default)s s)")
    return parser.parse_args(argv)


def select(args: argparse.Namespace) -> tuple[list[Pair], list[str]]:
    """The pairs to run, and a note for each one whose wheels are missing."""
    rows = read_pairs(args.pairs)
    wanted = {canonicalize_name(name) for name in args.only}
    unknown = wanted - {canonicalize_name(row[0]) for row in rows}
    if unknown:
        raise SystemExit(f"--only: no pair of {', '.join(sorted(unknown))} in {args.pairs}")
    wheels = index_wheels(args.corpus)
    pairs, skipped = [], []
    for row in rows:
        if wanted and canonicalize_name(row[0]) not in wanted:
            continue
        found = find_pair(wheels, row)
        if isinstance(found, Pair):
            pairs.append(found)
        else:
            skipped.append(f"{row[0]} {row[1]} -> {row[2]}: {found} in {args.corpus}")
    return pairs, skipped


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pairs, skipped = select(args)
    for note in skipped:
        print(f"skipped {note}", file=sys.stderr)
    if not pairs:
        print(f"no pair has both wheels in {args.corpus}; {FETCH_HINT}", file=sys.stderr)
        return 2
    lab = Lab(args.timeout)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pipdelta-bench-") as tmp:
        venv = None
        if not args.no_installed:  # one environment for every pair, each old wheel installed then removed
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(Path(tmp, "venv"))], check=True)
            venv = Path(tmp, "venv", "Scripts" if os.name == "nt" else "bin", "python")
        for number, pair in enumerate(pairs):
            print(f"[{number + 1}/{len(pairs)}] {pair.label}", file=sys.stderr, flush=True)
            work = Path(tmp, str(number))
            work.mkdir()
            rows.append(run_pair(lab, pair, work, venv))
    total = aggregate(rows)
    results = targets(rows, total)

    print(
        f"pipdelta {pipdelta.__version__}, Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs; wheels from {args.corpus}"
    )
    print()
    print(render(HEADERS, [cells(r) for r in rows], aggregate_cells(total)))
    print()
    print(LEGEND)
    for note in skipped:
        print(f"skipped {note}")
    for row in rows:
        for error in row.errors:
            print(f"error {row.pair}: {error}")
    print()
    print("targets")
    for target in results:
        print(f"  {'PASS' if target.passed else 'FAIL'}  {target.name}: {target.measured}")

    if args.json is not None:
        document = {
            "python": platform.python_version(),
            "pipdelta": pipdelta.__version__,
            "pairs": [{**asdict(r), "best_anchor": r.best_anchor} for r in rows],
            "aggregate": total,
            "targets": [asdict(t) for t in results],
            "skipped": skipped,
        }
        args.json.write_text(json.dumps(document, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")
    missed = [t.name for t in results if not t.passed]
    if args.check and missed:
        print(f"missed {len(missed)} target(s): {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
