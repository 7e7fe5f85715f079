"""On-demand mode: deltas made on first request from a real upstream simple index, once under concurrency."""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpclient import have, query, request
from mirrorfactory import release
from simpleindex import SimpleIndex, serving

from pipdelta import WheelSource, apply_patch
from pipdelta.format.patchfile import read_patch
from pipdelta.index.members import Members
from pipdelta.index.policy import Policy
from pipdelta.server.app import IndexApp
from pipdelta.server.gate import Gate
from pipdelta.server.logs import JsonLog
from pipdelta.server.ondemand import OnDemandCatalog
from pipdelta.server.run import running
from pipdelta.server.stats import Stats


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("upstream")
    for version in ("1.0", "1.1", "1.2"):
        release(folder, "demo", version)
    release(folder, "other", "1.0")
    release(folder, "other", "2.0")
    return folder


@pytest.fixture
def on_demand(request: pytest.FixtureRequest, wheels: Path, tmp_path: Path) -> Iterator[tuple[str, SimpleIndex, Path]]:
    options = getattr(request, "param", {})
    upstream = SimpleIndex(wheels, json_pages=options.get("json", True), tamper=options.get("tamper", ()))
    stats = Stats()
    with serving(upstream) as url:
        catalog = OnDemandCatalog(url, tmp_path / "cache", wait=options.get("wait", 60), jobs=2, stats=stats)
        try:
            # Room for the 8 queries at once from one address of the job-sharing test.
            app = IndexApp(catalog, Policy(), stats=stats, log=JsonLog(io.StringIO()), gate=Gate(8, 8))
            with running(app) as base:
                yield base, upstream, tmp_path / "cache"
        finally:
            catalog.close()


def _stats(base: str) -> dict[str, int]:
    stats: dict[str, int] = json.loads(request(f"{base}/stats")[2])
    return stats


@pytest.mark.parametrize("on_demand", [{"json": True}, {"json": False}], indirect=True, ids=["pep691", "pep503"])
def test_first_request_makes_the_delta_and_later_ones_reuse_it(
    on_demand: tuple[str, SimpleIndex, Path], wheels: Path, tmp_path: Path
) -> None:
    base, upstream, cache = on_demand
    demo = query(base, [have("demo", "1.0")])["demo"]
    assert (demo["status"], demo["path"], demo["to"]["filename"]) == ("upgrade", "delta", "demo-1.2-py3-none-any.whl")
    assert demo["to"]["url"].endswith("/files/demo-1.2-py3-none-any.whl")
    assert demo["to"]["size"] == (wheels / "demo-1.2-py3-none-any.whl").stat().st_size
    (patch,) = demo["patches"]
    status, _, data = request(patch["url"])
    assert status == 200 and hashlib.sha256(data).hexdigest() == patch["sha256"]
    rebuilt = apply_patch(data, WheelSource(wheels / "demo-1.0-py3-none-any.whl"), tmp_path / "out.whl")
    assert hashlib.sha256(rebuilt.read_bytes()).hexdigest() == demo["to"]["sha256"]

    assert query(base, [have("demo", "1.0")])["demo"] == demo
    assert _stats(base)["deltas_made"] == 1
    assert upstream.downloads == {"demo-1.0-py3-none-any.whl": 1, "demo-1.2-py3-none-any.whl": 1}
    listed = json.loads((cache / "demo" / "deltas.json").read_text())
    assert [d["url"] for d in listed["deltas"]] == ["patches/demo-1.0-py3-none-any--1.2.pdelta"]
    assert json.loads((cache / "index.json").read_text())["projects"] == ["demo"]
    assert query(base, [have("missing", "1.0")])["missing"]["status"] == "unknown"


def test_answers_carry_the_member_figures_and_a_cache_made_without_them_gets_them_at_start(
    on_demand: tuple[str, SimpleIndex, Path],
) -> None:
    base, _, cache = on_demand
    (patch,) = query(base, [have("demo", "1.0")])["demo"]["patches"]
    header, _ = read_patch(request(patch["url"])[2])
    assert patch["members"] == Members.of(header).to_json() != {}
    listed = cache / "demo" / "deltas.json"
    document = json.loads(listed.read_text())
    del document["deltas"][0]["members"]  # as an older pipdelta wrote it
    listed.write_text(json.dumps(document))
    OnDemandCatalog("http://127.0.0.1:9/simple", cache).close()
    assert json.loads(listed.read_text())["deltas"][0]["members"] == patch["members"]


def test_concurrent_requests_for_one_delta_do_the_work_once(on_demand: tuple[str, SimpleIndex, Path]) -> None:
    base, upstream, _ = on_demand
    installed = [have("demo", "1.1"), have("other", "1.0")]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: query(base, installed), range(16)))
    assert all(a == answers[0] for a in answers)
    assert answers[0]["demo"]["path"] == answers[0]["other"]["path"] == "delta"
    assert _stats(base)["deltas_made"] == 2
    assert all(count == 1 for count in upstream.downloads.values()) and len(upstream.downloads) == 4


@pytest.mark.parametrize("on_demand", [{"tamper": ("demo-1.2-py3-none-any.whl",)}], indirect=True)
def test_an_upstream_wheel_with_the_wrong_hash_means_a_full_download(on_demand: tuple[str, SimpleIndex, Path]) -> None:
    base, _, cache = on_demand
    demo = query(base, [have("demo", "1.1")])["demo"]
    assert (demo["status"], demo["path"]) == ("upgrade", "full")
    assert _stats(base)["deltas_made"] == 0
    assert not list(cache.rglob("*.pdelta")) and not list(cache.rglob("demo-1.2-py3-none-any.whl"))


@pytest.mark.parametrize("on_demand", [{"json": False, "wait": 0}], indirect=True)
def test_a_slow_delta_is_answered_full_now_and_served_when_ready(
    on_demand: tuple[str, SimpleIndex, Path], wheels: Path
) -> None:
    base, _, _ = on_demand
    first = query(base, [have("other", "1.0")])["other"]
    assert first["path"] == "full"
    assert first["to"]["size"] == first["bytes"] == (wheels / "other-2.0-py3-none-any.whl").stat().st_size
    for _ in range(600):
        if _stats(base)["deltas_made"]:
            break
        time.sleep(0.05)
    assert query(base, [have("other", "1.0")])["other"]["path"] == "delta"


def test_an_unreachable_upstream_is_a_502_with_a_message(tmp_path: Path) -> None:
    catalog = OnDemandCatalog("http://127.0.0.1:9/simple", tmp_path / "cache", jobs=1)
    try:
        with running(IndexApp(catalog, log=JsonLog(io.StringIO()))) as base:
            body = json.dumps({"meta": {"api-version": "1.0"}, "installed": [have("demo", "1.0")]}).encode()
            status, _, data = request(f"{base}/query", body, {"Content-Type": "application/json"})
    finally:
        catalog.close()
    assert status == 502 and "cannot reach upstream" in json.loads(data)["error"]
