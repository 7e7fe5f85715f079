"""Benchmark the delta index: the builder over the corpus, then the query endpoint under a bounded local load.

    python benchmarks/index.py [--jobs N] [--queries 1000] [--clients 4] [--check]

Builder: wheels in, deltas out, MB of input per second and peak memory per job (each job in a fresh
worker process, so the figure is that job's own). Query: latency and throughput of POST /query against
`pipdelta serve` on 127.0.0.1, never anywhere else. With --check, exits 1 if a target below is missed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from packaging.utils import parse_wheel_filename

from pipdelta.index.builder import build_index
from pipdelta.server.app import IndexApp
from pipdelta.server.catalog import StaticCatalog
from pipdelta.server.logs import JsonLog
from pipdelta.server.run import running

QUERY_P95_MS = 50.0  # per query of the whole corpus's projects, under 4 concurrent clients
QUERY_RATE = 100.0  # queries per second, at least


def corpus() -> Path:
    path = Path(os.environ.get("PIPDELTA_CORPUS", Path.home() / ".cache" / "pipdelta-corpus"))
    if not any(path.glob("*.whl")):
        sys.exit(f"no wheels in {path}: fetch the corpus first (../shared/corpus/fetch.sh)")
    return path


def executor(jobs: int) -> concurrent.futures.Executor:
    if sys.version_info >= (3, 11):
        return concurrent.futures.ProcessPoolExecutor(jobs, max_tasks_per_child=1)
    return concurrent.futures.ProcessPoolExecutor(jobs)  # peaks are then an upper bound per worker


def bench_build(source: Path, out: Path, jobs: int) -> None:
    wheels = sorted(source.glob("*.whl"))
    size = sum(p.stat().st_size for p in wheels)
    with executor(jobs) as pool:
        summary = build_index(source, out, keep=3, jobs=jobs, executor=pool)
    print(f"\nBuilder: {len(wheels)} wheels ({size / 1e6:.1f} MB) in, {jobs} jobs at once")
    print(f"{'delta':56} {'seconds':>8} {'peak MiB':>9} {'estimate':>9} {'patch':>12}")
    for name, estimate, result in sorted(summary.jobs, key=lambda item: -item[2].peak_memory):
        patch = f"{result.facts.size:,}" if result.facts else (result.reason or "")[:12]
        mib = result.peak_memory / 2**20
        print(f"{name[:56]:56} {result.seconds:8.1f} {mib:9.0f} {estimate / 2**20:9.0f} {patch:>12}")
    print(summary)
    again = build_index(source, out, keep=3, jobs=jobs)
    print(f"re-run (incremental): {again.made} made, {again.reused} reused in {again.seconds:.2f} s")


def installed_of(index: Path) -> list[dict[str, Any]]:
    """Every project at its oldest version in the index, as a client would report it."""
    out = []
    for project in json.loads((index / "index.json").read_text())["projects"]:
        wheels = json.loads((index / project / "deltas.json").read_text())["wheels"]
        oldest = min(wheels, key=lambda w: parse_wheel_filename(w["filename"])[1])
        out.append({"filename": oldest["filename"]})
    return out


def bench_query(index: Path, count: int, clients: int) -> tuple[float, float]:
    body = json.dumps({"meta": {"api-version": "1.0"}, "installed": installed_of(index)}).encode()

    def one(url: str) -> float:
        started = time.perf_counter()
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as response:
            response.read()
        return 1000 * (time.perf_counter() - started)

    app = IndexApp(StaticCatalog(index), log=JsonLog(io.StringIO()))
    with running(app, threads=clients) as base:
        one(f"{base}/query")  # warm the catalog's cache
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            latencies = sorted(pool.map(one, [f"{base}/query"] * count))
        elapsed = time.perf_counter() - started
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    rate = count / elapsed
    print(
        f"\nQuery: {count} queries of {len(json.loads(body)['installed'])} projects each, {clients} clients, 127.0.0.1"
    )
    print(f"{'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries/s':>10}")
    print(f"{statistics.median(latencies):8.2f} {p95:8.2f} {latencies[-1]:8.2f} {rate:10.0f}")
    return p95, rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pipdelta-bench-") as tmp:
        index = Path(tmp) / "index"
        bench_build(corpus(), index, args.jobs)
        p95, rate = bench_query(index, min(args.queries, 10_000), args.clients)
    missed = [f"p95 {p95:.1f} ms > {QUERY_P95_MS} ms"] * (p95 > QUERY_P95_MS) + [
        f"{rate:.0f} queries/s < {QUERY_RATE}"
    ] * (rate < QUERY_RATE)
    for miss in missed:
        print(f"target missed: {miss}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
