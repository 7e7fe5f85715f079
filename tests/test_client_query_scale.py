"""The upgrade query at fleet scale: thousands of installed distributions, the server's limits, a busy server."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version
from wheelfactory import record_line

from pipdelta.client import batches
from pipdelta.client.deltaindex import DeltaIndex, Start
from pipdelta.client.environment import Environment
from pipdelta.client.http import FetchError, Http
from pipdelta.demo.mirror import QuietHandler, Served
from pipdelta.format.patchfile import VERSION
from pipdelta.index.bounds import MAX_BODY, MAX_INSTALLED, MAX_QUERY_TAGS
from pipdelta.index.model import DeltaEntry, ProjectIndex, WheelEntry
from pipdelta.index.policy import Policy
from pipdelta.server.app import IndexApp
from pipdelta.server.catalog import StaticCatalog
from pipdelta.server.gate import Full, Gate
from pipdelta.server.logs import JsonLog
from pipdelta.server.run import running
from pipdelta.server.stats import Stats

MANY = 2_000
LINUX = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"


def fake_install(site: Path, name: str, version: str, tag: str) -> None:
    """The dist-info folder pip would leave behind (METADATA, WHEEL, RECORD), without the package itself."""
    folder = site / f"{name}-{version}.dist-info"
    folder.mkdir()
    files = {
        "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        "WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        + "".join(f"Tag: {t}\n" for t in _expand(tag)),
    }
    for member, text in files.items():
        (folder / member).write_text(text)
    record = "".join(record_line(f"{folder.name}/{m}", t.encode()) for m, t in files.items())
    (folder / "RECORD").write_text(record + f"{folder.name}/RECORD,,\n")


def fake_project(index: Path, name: str, tag: str) -> None:
    """A ``deltas.json`` with three releases and the deltas between them (the files themselves are not needed)."""
    wheels = [
        WheelEntry(f"{name}-{v}-{tag}.whl", f"{i:064x}", 100_000 + i) for i, v in enumerate(("1.0", "1.1", "2.0"))
    ]
    deltas = [
        DeltaEntry(old, new, f"patches/{old.filename}--{i}.pdelta", 5_000 + i, f"{i:064x}", VERSION, ())
        for i, (old, new) in enumerate([(wheels[0], wheels[1]), (wheels[1], wheels[2]), (wheels[0], wheels[2])])
    ]
    (index / name).mkdir()
    (index / name / "deltas.json").write_text(json.dumps(ProjectIndex(name, tuple(wheels), tuple(deltas)).to_json()))  # type: ignore[arg-type]


def _expand(tag: str) -> list[str]:
    python, abi, platforms = tag.split("-")
    return [f"{python}-{abi}-{platform}" for platform in platforms.split(".")]


@contextlib.contextmanager
def serve(index: Path, policy: str = "", gate: Gate | None = None) -> Iterator[tuple[str, Stats]]:
    stats = Stats()
    app = IndexApp(StaticCatalog(index), Policy.parse(policy), stats=stats, log=JsonLog(io.StringIO()), gate=gate)
    with running(app) as url:
        yield url, stats


def test_two_thousand_installed_distributions_are_answered_in_one_request_under_a_second(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    index = tmp_path / "index"
    index.mkdir()
    for i in range(MANY):
        tag = LINUX if i % 2 else "py3-none-any"
        fake_install(site, f"proj{i}", "1.0", tag)
        if i % 10:  # one in ten is unknown to the index
            fake_project(index, f"proj{i}", tag)
    (index / "index.json").write_text(json.dumps({"meta": {"api-version": "1.0"}, "projects": []}))
    installed = Environment(str(venv / "bin/python")).installed()
    assert len(installed) == MANY
    starts = [Start(d.name, d.version, d.tags, d.build) for d in installed.values()]
    policy = "".join(f"[projects.proj{i}]\nmax = '1.1'\n" for i in range(0, MANY, 7))
    with serve(index, policy) as (url, stats):
        started, cpu = time.perf_counter(), time.process_time()
        answers, server = DeltaIndex(url, Http()).survey(starts)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"{MANY} installed distributions: {stats.snapshot()['queries']} request(s), {elapsed:.3f} s, {cpu:.3f} s CPU")
    assert server and len(answers) == MANY
    assert stats.snapshot()["queries"] == 1
    # Client and server (a cold one: every deltas.json read for the first time) together, in this process.
    # CPU time, not wall time: other work on a shared machine stretches the latter, not the former.
    assert cpu < 1.0
    statuses = {name: (a.status, a.target.key.version if a.target else None) for name, a in answers.items()}
    assert statuses[canonicalize_name("proj1")] == ("upgrade", Version("2.0"))
    assert statuses[canonicalize_name("proj7")] == ("upgrade", Version("1.1"))  # max = 1.1
    assert statuses[canonicalize_name("proj10")] == ("unknown", None)
    assert answers[canonicalize_name("proj3")].path == "delta"


@pytest.mark.parametrize(
    ("count", "tag", "requests"),
    [
        (MAX_INSTALLED + 10, "py3-none-any", 2),  # the count (and the body's size)
        (3_000, ".".join(f"py3{k}" for k in range(20)) + "-none-any", 2),  # 60,000 tags: over MAX_QUERY_TAGS
    ],
)
def test_a_bigger_environment_is_split_within_the_servers_limits(
    tmp_path: Path, count: int, tag: str, requests: int
) -> None:
    starts = [Start(canonicalize_name(f"p{i}"), Version("1.0"), (tag,)) for i in range(count)]
    split = batches.split([batches.Item(s.name, s.to_json(), len(s.key.tags)) for s in starts])
    assert len(split.bodies) == requests and not split.refused
    for body in split.bodies:
        assert len(json.dumps(body).encode()) <= MAX_BODY and len(body["installed"]) <= MAX_INSTALLED
        assert sum(len(_expand_all(item["tags"])) for item in body["installed"]) <= MAX_QUERY_TAGS
    with serve(tmp_path) as (url, stats):
        answers = DeltaIndex(url, Http()).answers(starts, {})
    assert stats.snapshot()["queries"] == requests
    assert answers is not None and len(answers) == count
    assert {a.status for a in answers.values()} == {"unknown"}


def _expand_all(tags: list[str]) -> set[str]:
    out = set()
    for tag in tags:
        python, abi, platform = tag.split("-")
        out |= {f"{p}-{a}-{x}" for p in python.split(".") for a in abi.split(".") for x in platform.split(".")}
    return out


class BusyFor(Gate):
    """A gate that refuses the first ``times`` queries, as a server busy with other clients does."""

    def __init__(self, times: int) -> None:
        super().__init__(6, 4)
        self.times = times
        self.refused = 0

    @contextlib.contextmanager
    def enter(self, client: str) -> Iterator[None]:
        if self.refused < self.times:
            self.refused += 1
            raise Full("the server is busy with other queries")
        with super().enter(client):
            yield


def test_a_busy_server_is_asked_again_after_its_retry_after(tmp_path: Path) -> None:
    start = Start(canonicalize_name("rich"), Version("1.0"), ("py3-none-any",))
    gate = BusyFor(1)
    with serve(tmp_path, gate=gate) as (url, _):
        started = time.perf_counter()
        answers = DeltaIndex(url, Http(retries=2)).answers([start], {})
        waited = time.perf_counter() - started
    assert answers is not None and answers["rich"].status == "unknown"
    assert gate.refused == 1 and 1.0 <= waited < 3.0  # Retry-After: 1, spread by at most half


def test_a_server_that_stays_busy_is_an_error_after_bounded_tries(tmp_path: Path) -> None:
    start = Start(canonicalize_name("rich"), Version("1.0"), ("py3-none-any",))
    gate = BusyFor(100)
    with serve(tmp_path, gate=gate) as (url, _), pytest.raises(FetchError, match="answered 503"):
        DeltaIndex(url, Http(retries=1)).answers([start], {})
    assert gate.refused == 2


class Guarded(QuietHandler):
    """A proxy in front of the index that forbids the query."""

    def do_POST(self) -> None:
        self.send_error(403)


def test_a_forbidden_query_is_an_error_not_a_static_index(tmp_path: Path) -> None:
    """Only "no such endpoint" answers (404, 405, 501) mean a static index: the policy is never replaced silently."""
    start = Start(canonicalize_name("rich"), Version("1.0"), ("py3-none-any",))
    with Served(tmp_path, Guarded) as guarded, pytest.raises(FetchError, match="answered 403"):
        DeltaIndex(guarded.url, Http()).survey([start])
    with Served(tmp_path, QuietHandler) as static:  # http.server answers a POST with 501
        answers, server = DeltaIndex(static.url, Http()).survey([start])
    assert not server and answers["rich"].status == "unknown"
