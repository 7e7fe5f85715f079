"""pip, uv, `pipdelta upgrade` and `pipdelta run -- uv pip install -U` side by side, through a throttled mirror.

For each pair of ../shared/corpus/pairs.tsv, and for one batch of every project upgraded together (the first
pair of each name), each installer upgrades its own copy of the same starting venv (the old versions
installed from their files) through a mirror on 127.0.0.1 behind one token-bucket link (benchmarks/mirror.py):
a PyPI-like mirror (sha256 on every link, PEP 658 metadata, PEP 691 JSON) at 20 and at 100 Mbit/s, and a
bare PEP 503 folder (no hashes, no metadata) at 20 Mbit/s. The delta index is a static one (`pipdelta index
build` of the corpus, kept in --index) served behind the same link. Every run starts cold: its own pip,
uv and pipdelta caches. Wall time is the installer's whole command; bytes are everything the link sent.
Exits 1 when a target is missed (which ones is printed).

    python benchmarks/upgrade.py [--pairs FILE] [--corpus DIR] [--index DIR] [--only NAME...]
                                 [--scenario pypi-20 pypi-100 bare-20] [--batch-only] [--repeat N]
                                 [--json FILE] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mirror import Link, Mirror, Served
from packaging.utils import parse_wheel_filename
from rich.console import Console
from rich.table import Table

from pipdelta.index.builder import build_index

UV = shutil.which("uv") or "uv"
INSTALLERS = ("pip", "uv", "pipdelta upgrade", "pipdelta run uv")
PLAIN = {"pipdelta upgrade": "pip", "pipdelta run uv": "uv"}
SCENARIOS = {"pypi-20": (False, 20), "pypi-100": (False, 100), "bare-20": (True, 20)}
BATCH_TIME, BATCH_BYTES, SLACK = 0.35, 0.10, 0.2  # the targets of issue 8


@dataclass(frozen=True)
class Case:
    """Upgrade ``old`` wheels to ``new`` versions: one pair, or the batch."""

    label: str
    old: dict[str, str]  # project -> version, in the starting venv
    new: dict[str, str]  # project -> version

    @property
    def old_requirements(self) -> list[str]:
        return [f"{name}=={version}" for name, version in self.old.items()]

    @property
    def requirements(self) -> list[str]:
        return [f"{name}=={version}" for name, version in self.new.items()]


@dataclass
class Run:
    seconds: float
    bytes: int
    how: str = ""


@dataclass
class Row:
    scenario: str
    case: str
    runs: dict[str, Run] = field(default_factory=dict)


class Bench:
    """The runs of one benchmark: a work folder, the link, the starting venvs (made once per case)."""

    def __init__(self, work: Path, link: Link, python: str, setup: str) -> None:
        self.work = work
        self.setup = setup  # the mirror, unthrottled and uncounted
        self.link = link
        self.python = python
        self._starts: dict[str, Path] = {}
        self.template = work / "template"
        subprocess.run([python, "-m", "venv", self.template], check=True)

    def start(self, case: Case) -> tuple[Path, Path]:
        """The case's starting venv and pip cache: the old wheels installed by pip from the mirror, unthrottled.

        As on a laptop where pip installed them from PyPI: its HTTP cache holds the old wheels (numpy's
        installed files cannot rebuild it: pip recompiled the ``.pyc`` its wheel ships).
        """
        if case.label not in self._starts:
            folder = self.work / f"start-{len(self._starts)}"
            shutil.copytree(self.template, folder / "venv", symlinks=True)
            env = {
                **self.env("setup", self.setup),
                "PIP_CACHE_DIR": str(folder / "pip"),
                "PIP_TRUSTED_HOST": "127.0.0.1",
            }
            pip = [str(folder / "venv/bin/python"), "-m", "pip", "install", "-q", "--no-deps"]
            subprocess.run([*pip, *case.old_requirements], check=True, env=env)
            self._starts[case.label] = folder
        folder = self._starts[case.label]
        return folder / "venv", folder / "pip"

    def env(self, run: str, mirror: str = "") -> dict[str, str]:
        """An environment that knows only ``mirror``, with caches of its own (cold) for ``run``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PIPDELTA_", "UV_"))}
        folder = self.work / "caches" / run
        env.update(
            PIP_CONFIG_FILE=os.devnull,
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PIP_CACHE_DIR=str(folder / "pip"),
            UV_CACHE_DIR=str(folder / "uv"),
            UV_NO_CONFIG="1",
            UV_PYTHON_DOWNLOADS="never",
            PIPDELTA_CACHE_DIR=str(folder / "pipdelta"),
            PIPDELTA_CONFIG=str(self.work / "absent.toml"),
        )
        if mirror:
            env.update(PIP_INDEX_URL=f"{mirror}/simple/", UV_DEFAULT_INDEX=f"{mirror}/simple/")
        return env

    def run(self, installer: str, case: Case, mirror: str, number: int) -> Run:
        venv = self.work / "venv"
        shutil.rmtree(venv, ignore_errors=True)
        start, pip_cache = self.start(case)
        shutil.copytree(start, venv, symlinks=True)
        shutil.copytree(pip_cache, self.work / "caches" / f"{number}" / "pip")
        python = str(venv / "bin/python")
        report = self.work / "report.json"
        report.unlink(missing_ok=True)
        pipdelta = [sys.executable, "-m", "pipdelta"]
        index = ["--python", python, "--delta-index", f"{mirror}/deltas/", "--json", str(report)]
        uv = [UV, "pip", "install", "-q", "--python", python, "-U", "--no-deps", *case.requirements]
        command = {
            "pip": [python, "-m", "pip", "install", "-q", "-U", "--no-deps", *case.requirements],
            "uv": uv,
            "pipdelta upgrade": [*pipdelta, "upgrade", *case.requirements, "--no-deps", "-q", *index],
            "pipdelta run uv": [*pipdelta, "run", *index, "-q", "--", *uv],
        }[installer]
        env = self.env(f"{number}", mirror)
        before, began = self.link.sent, time.monotonic()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        run = Run(time.monotonic() - began, self.link.sent - before)
        shutil.rmtree(self.work / "caches" / f"{number}", ignore_errors=True)
        _check_versions(python, case.new)
        if report.exists():
            run.how = _how(json.loads(report.read_text())["packages"])
        return run


def _check_versions(python: str, wanted: dict[str, str]) -> None:
    code = "import json, sys, importlib.metadata as m; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    out = subprocess.run([python, "-c", code, *wanted], capture_output=True, text=True, check=True).stdout
    found = json.loads(out)
    if found != wanted:
        raise SystemExit(f"the installer left {found}, not {wanted}")


def _how(packages: list[dict[str, object]]) -> str:
    """``delta``, or a count per method; a single full download says why."""
    methods = [str(p["method"]) for p in packages]
    if len(packages) == 1:
        return methods[0] if methods[0] != "full" else f"full: {packages[0]['reason']}"
    return ", ".join(f"{methods.count(m)} {m}" for m in sorted(set(methods)))


def cases(pairs: Path, corpus: Path, only: Sequence[str] | None, batch_only: bool) -> list[Case]:
    """One case per pair whose wheels are in ``corpus``, then the batch."""
    wheels: dict[tuple[str, str], Path] = {}
    for wheel in corpus.glob("*.whl"):
        project, version = parse_wheel_filename(wheel.name)[:2]
        wheels[str(project), str(version)] = wheel
    out = []
    for line in pairs.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, old, new = line.split("\t")[:3]
        if (only is None or name in only) and (name, old) in wheels and (name, new) in wheels:
            out.append(Case(f"{name} {old} → {new}", {name: old}, {name: new}))
    firsts = {next(iter(c.new)): c for c in reversed(out)}  # the first pair of each project
    batch = Case(
        f"batch of {len(firsts)}",
        {n: c.old[n] for n, c in sorted(firsts.items())},
        {n: c.new[n] for n, c in sorted(firsts.items())},
    )
    return [batch] if batch_only else [*out, batch]


def measure(bench: Bench, scenario: str, case: Case, mirror: str, repeat: int, say: Callable[[str], None]) -> Row:
    """Each installer on ``case``, ``repeat`` times in turn; the fastest run of each counts."""
    row = Row(scenario, case.label)
    for number in range(repeat):
        for installer in INSTALLERS:
            run = bench.run(installer, case, mirror, number)
            best = row.runs.get(installer)
            if best is None or run.seconds < best.seconds:
                row.runs[installer] = run
    say(f"{scenario} {case.label}: " + ", ".join(f"{i} {r.seconds:.2f} s" for i, r in row.runs.items()))
    return row


def missed(rows: Sequence[Row]) -> list[str]:
    """Each target of issue 8 that ``rows`` miss, as one line."""
    out = []
    for row in rows:
        for mine, plain in PLAIN.items():
            a, b = row.runs[mine], row.runs[plain]
            where = f"{row.scenario} {row.case}: {mine}"
            if row.case.startswith("batch") and row.scenario == "pypi-20":
                if a.seconds > BATCH_TIME * b.seconds:
                    out.append(f"{where} took {a.seconds / b.seconds:.2f}x {plain}'s time (target ≤ {BATCH_TIME}x)")
                if mine == "pipdelta upgrade" and a.bytes > BATCH_BYTES * b.bytes:
                    out.append(f"{where} sent {a.bytes / b.bytes:.1%} of {plain}'s bytes (target ≤ {BATCH_BYTES:.0%})")
            elif row.case.startswith("batch") and a.seconds > b.seconds:
                out.append(f"{where} {a.seconds:.2f} s, slower than {plain} ({b.seconds:.2f} s)")
            elif a.seconds > b.seconds + SLACK:
                out.append(f"{where} {a.seconds - b.seconds:.2f} s slower than {plain} (at most {SLACK} s)")
            if row.scenario.startswith("bare") and a.bytes > b.bytes:
                out.append(f"{where} sent {a.bytes:,} bytes, more than {plain}'s {b.bytes:,}")
    return out


def table(rows: Sequence[Row], scenario: str) -> Table:
    bare, mbit = SCENARIOS[scenario]
    kind = "bare PEP 503 mirror (no hashes, no metadata)" if bare else "PyPI-like mirror (hashes, PEP 658, JSON)"
    out = Table(title=f"{kind} at {mbit} Mbit/s: seconds and MB over the link")
    out.add_column("case")
    for installer in INSTALLERS:
        out.add_column(f"{installer} s", justify="right")
        out.add_column("MB", justify="right")
    out.add_column("upgrade/pip", justify="right")
    out.add_column("run uv/uv", justify="right")
    out.add_column("how (pipdelta upgrade)")
    for row in rows:
        if row.scenario != scenario:
            continue
        runs = row.runs
        cells = [c for i in INSTALLERS for c in (f"{runs[i].seconds:.2f}", f"{runs[i].bytes / 1e6:.2f}")]
        ratios = [f"{runs[m].seconds / runs[p].seconds:.2f}x" for m, p in PLAIN.items()]
        out.add_row(row.case, *cells, *ratios, runs["pipdelta upgrade"].how)
    return out


def markdown(rows: Sequence[Row], scenario: str) -> str:
    """The scenario's rows as a Markdown table (seconds, then MB over the link), for the README."""
    lines = [
        "| case | "
        + " | ".join(f"{i} s" for i in INSTALLERS)
        + " | "
        + " | ".join(f"{i} MB" for i in INSTALLERS)
        + " |",
        "|---|" + "---:|" * 2 * len(INSTALLERS),
    ]
    for row in rows:
        if row.scenario == scenario:
            seconds = [f"{row.runs[i].seconds:.2f}" for i in INSTALLERS]
            megabytes = [f"{row.runs[i].bytes / 1e6:.2f}" for i in INSTALLERS]
            lines.append(f"| {row.case} | " + " | ".join(seconds + megabytes) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=Path, default=Path(__file__).parents[2] / "shared/corpus/pairs.tsv")
    default_corpus = Path(os.environ.get("PIPDELTA_CORPUS", Path.home() / ".cache/pipdelta-corpus"))
    parser.add_argument("--corpus", type=Path, default=default_corpus)
    parser.add_argument("--index", type=Path, default=Path.home() / ".cache/pipdelta-bench/index")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME")
    parser.add_argument("--scenario", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--batch-only", action="store_true", help="only the batch, not each pair")
    parser.add_argument("--repeat", type=int, default=1, help="runs per installer and case; the fastest counts")
    parser.add_argument("--python", default=shutil.which("python3.11") or sys.executable, help="the venvs' Python")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--markdown", action="store_true", help="also print each table as Markdown")
    args = parser.parse_args()

    todo = cases(args.pairs, args.corpus, args.only, args.batch_only)
    if not todo[-1].new:
        print(f"no corpus pairs in {args.corpus} (run ../shared/corpus/fetch.sh)", file=sys.stderr)
        return 2
    console = Console(width=200)
    console.print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared with other work)")
    names = {name for case in todo for name in case.new}
    wheels = sorted(w for w in args.corpus.glob("*.whl") if parse_wheel_filename(w.name)[0] in names)
    source = Path(tempfile.mkdtemp(prefix="pipdelta-bench-wheels-"))
    for wheel in wheels:
        (source / wheel.name).symlink_to(wheel.resolve())
    with console.status("Building (or updating) the delta index…"):
        console.print(f"delta index: {build_index(source, args.index)}")
    shutil.rmtree(source)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pipdelta-bench-") as tmp:
        link = Link(1.0)
        with Served(Mirror(wheels, args.index, bare=False), Link(1e12)) as setup:
            bench = Bench(Path(tmp), link, args.python, setup.url)
            for scenario in args.scenario:
                bare, mbit = SCENARIOS[scenario]
                link.rate = mbit * 1e6 / 8
                with Served(Mirror(wheels, args.index, bare=bare), link) as served:
                    rows += [measure(bench, scenario, c, served.url, args.repeat, console.print) for c in todo]
    for scenario in args.scenario:
        console.print(table(rows, scenario))
        if args.markdown:
            print(markdown(rows, scenario), end="\n\n")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    problems = missed(rows)
    for line in problems:
        console.print(f"[red]target missed:[/] {line}", highlight=False)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
