"""`pip install --upgrade` against `pipdelta upgrade`, side by side, through a mirror throttled to 20 Mbit/s.

For each pair of ../shared/corpus/pairs.tsv: a venv with the old wheel, then the upgrade by pip and by
pipdelta (each in its own copy of that venv), both through the same local mirror on 127.0.0.1 whose
server sends at most 20 Mbit/s in total. Bytes are counted by the servers. The old version is installed
beforehand by pip from an unthrottled copy of the mirror with pip's HTTP cache on, as on a laptop where
pip installed it from PyPI; both upgrades share that cache. Exits 1 when the aggregate misses the
targets: pipdelta at most 0.3x pip's wall time and 10 % of its bytes.

    python benchmarks/upgrade.py [--pairs FILE] [--corpus DIR] [--index DIR] [--only NAME...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rich.console import Console
from rich.table import Table

from pipdelta.demo.mirror import QuietHandler, Served, write_simple_index
from pipdelta.index.builder import build_index

RATE = 20e6 / 8  # bytes per second
TIME_TARGET, BYTES_TARGET = 0.3, 0.10


class Link:
    """One shared 20 Mbit/s link: every byte any connection sends waits for its slot."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.sent = 0
        self._free_at = 0.0
        self._lock = threading.Lock()

    def send(self, out: BinaryIO, data: bytes) -> None:
        with self._lock:
            now = time.monotonic()
            self._free_at = max(self._free_at, now) + len(data) / self.rate
            wait = self._free_at - now
            self.sent += len(data)
        time.sleep(wait)
        out.write(data)


LINK = Link(RATE)


class ThrottledHandler(QuietHandler):
    def copyfile(self, source: BinaryIO, outputfile: BinaryIO) -> None:  # type: ignore[override]
        for chunk in iter(lambda: source.read(16384), b""):
            LINK.send(outputfile, chunk)


@dataclass
class Run:
    seconds: float
    bytes: int
    how: str = ""


def isolated_env(mirror: str, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PIPDELTA_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_INDEX_URL=f"{mirror}/simple",
        PIP_CACHE_DIR=str(work / "pipcache"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIPDELTA_CACHE_DIR=str(work / "pdcache"),
        PIPDELTA_CONFIG=str(work / "absent.toml"),
    )
    return env


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    before, start = LINK.sent, time.monotonic()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start, LINK.sent - before


def installed_version(python: Path, name: str) -> str:
    code = f"from importlib.metadata import version; print(version({name!r}))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def fresh_venv(template: Path, target: Path, requirement: str, env: dict[str, str]) -> Path:
    """A venv with the old version, installed by pip from the unthrottled mirror (``env``), cache on."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(template, target, symlinks=True)
    python = target / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", requirement], env=env, check=True)
    return python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=Path, default=Path(__file__).parents[2] / "shared/corpus/pairs.tsv")
    default_corpus = Path(os.environ.get("PIPDELTA_CORPUS", Path.home() / ".cache/pipdelta-corpus"))
    parser.add_argument("--corpus", type=Path, default=default_corpus)
    parser.add_argument("--index", type=Path, default=Path.home() / ".cache/pipdelta-bench/index")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME")
    args = parser.parse_args()

    pairs = []
    for line in args.pairs.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, old, new = line.split("\t")[:3]
            if args.only is None or name in args.only:
                pairs.append((name, old, new))
    wheels = sorted(args.corpus.glob("*.whl"))
    if not wheels:
        print(f"no corpus in {args.corpus} (run ../shared/corpus/fetch.sh)", file=sys.stderr)
        return 2

    console = Console(width=170)
    with tempfile.TemporaryDirectory(prefix="pipdelta-bench-") as tmp:
        work = Path(tmp)
        write_simple_index(wheels, work / "mirror")
        with console.status("Building (or updating) the delta index…"):
            console.print(f"delta index: {build_index(work / 'mirror' / 'files', args.index)}")
        template = work / "template"
        subprocess.run([sys.executable, "-m", "venv", template], check=True)
        with (
            Served(work / "mirror", ThrottledHandler) as mirror,
            Served(args.index, ThrottledHandler) as deltas,
            Served(work / "mirror") as setup,
        ):
            env = isolated_env(mirror.url, work)
            # pip caches plain-HTTP downloads only from trusted hosts; PyPI's HTTPS ones always.
            setup_env = {**isolated_env(setup.url, work), "PIP_TRUSTED_HOST": "127.0.0.1"}
            results = []
            for name, old, new in pairs:
                size = next(w for w in wheels if _is(w, name, new)).stat().st_size
                python = fresh_venv(template, work / "venv", f"{name}=={old}", setup_env)
                pip = Run(
                    *timed([python, "-m", "pip", "install", "-q", "--upgrade", "--no-deps", f"{name}=={new}"], env)
                )
                assert installed_version(python, name) == new
                python = fresh_venv(template, work / "venv", f"{name}=={old}", setup_env)
                shutil.rmtree(work / "pdcache", ignore_errors=True)
                report = work / "report.json"
                command = [sys.executable, "-m", "pipdelta", "upgrade", f"{name}=={new}", "--no-deps", "-q"]
                command += ["--python", str(python), "--delta-index", deltas.url, "--json", str(report)]
                delta = Run(*timed(command, env))
                assert installed_version(python, name) == new
                outcome = json.loads(report.read_text())["packages"][0]
                delta.how = outcome["method"] if outcome["method"] != "full" else f"full: {outcome['reason']}"
                results.append((f"{name} {old} → {new}", size, pip, delta))
                console.print(f"{name} {old} → {new}: pip {pip.seconds:.1f} s, pipdelta {delta.seconds:.1f} s")

    table = Table(title="pip install --upgrade vs pipdelta upgrade, mirror at 20 Mbit/s")
    for column in ("pair", "wheel", "pip bytes", "pip s", "pipdelta bytes", "pipdelta s", "bytes", "time", "how"):
        table.add_column(column, justify="left" if column in ("pair", "how") else "right")
    for label, size, pip, delta in results:
        table.add_row(
            label,
            f"{size:,}",
            f"{pip.bytes:,}",
            f"{pip.seconds:.2f}",
            f"{delta.bytes:,}",
            f"{delta.seconds:.2f}",
            f"{delta.bytes / pip.bytes:.3f}",
            f"{delta.seconds / pip.seconds:.2f}",
            delta.how,
        )
    pip_bytes = sum(r[2].bytes for r in results)
    pip_time = sum(r[2].seconds for r in results)
    delta_bytes = sum(r[3].bytes for r in results)
    delta_time = sum(r[3].seconds for r in results)
    table.add_section()
    table.add_row(
        "total",
        f"{sum(r[1] for r in results):,}",
        f"{pip_bytes:,}",
        f"{pip_time:.1f}",
        f"{delta_bytes:,}",
        f"{delta_time:.1f}",
        f"{delta_bytes / pip_bytes:.3f}",
        f"{delta_time / pip_time:.2f}",
        f"targets: bytes ≤ {BYTES_TARGET}, time ≤ {TIME_TARGET}",
    )
    console.print(table)
    missed = delta_bytes / pip_bytes > BYTES_TARGET or delta_time / pip_time > TIME_TARGET
    if missed:
        console.print("[red]target missed[/]")
    return 1 if missed else 0


def _is(wheel: Path, name: str, version: str) -> bool:
    parts = wheel.name.split("-")
    return parts[0].lower().replace("_", "-") == name and parts[1] == version


if __name__ == "__main__":
    sys.exit(main())
