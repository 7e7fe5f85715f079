"""The upgrade query over HTTP: targets under each policy, and delta, chain or full by bytes."""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpclient import have, query, request
from mirrorfactory import mirror, unrelated

from pipdelta import WheelSource, apply_patch
from pipdelta.index.builder import build_index
from pipdelta.index.policy import Policy
from pipdelta.server.app import IndexApp
from pipdelta.server.catalog import StaticCatalog
from pipdelta.server.gate import Gate
from pipdelta.server.logs import JsonLog
from pipdelta.server.run import running

POLICY = """
[default]
policy = "latest"

[projects.demo]
max = "1.1.*"

[projects.solo]
hold = true

[projects.noise]
pin = "1.0"
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("index")
    source = mirror(root / "mirror")
    unrelated(source, "noise", "1.0")
    unrelated(source, "noise", "2.0")
    build_index(source, root / "keep1", keep=1, jobs=2, primary_url=lambda f: f"https://primary.invalid/{f}")
    build_index(source, root / "keep3", keep=3, jobs=2)
    return source, root


def _serve(index: Path, policy: str = "") -> Iterator[str]:
    # Room for the 8 queries at once from one address of the concurrency test.
    app = IndexApp(StaticCatalog(index), Policy.parse(policy), log=JsonLog(io.StringIO()), gate=Gate(8, 8))
    with running(app) as base:
        yield base


@pytest.fixture(scope="module")
def latest(built: tuple[Path, Path]) -> Iterator[str]:
    yield from _serve(built[1] / "keep3")


@pytest.fixture(scope="module")
def chains(built: tuple[Path, Path]) -> Iterator[str]:
    yield from _serve(built[1] / "keep1")


@pytest.fixture(scope="module")
def policed(built: tuple[Path, Path]) -> Iterator[str]:
    yield from _serve(built[1] / "keep3", POLICY)


def test_latest_policy_offers_the_newest_release_by_the_cheapest_delta(
    built: tuple[Path, Path], latest: str, tmp_path: Path
) -> None:
    answers = query(latest, [have("demo", "1.0"), have("Solo", "0.1"), have("demo-other", "1.0")])
    demo = answers["demo"]
    assert (demo["status"], demo["path"], demo["to"]["version"]) == ("upgrade", "delta", "2.0")
    assert demo["to"]["filename"] == "demo-2.0-py3-none-any.whl" and "url" not in demo["to"]
    assert answers["solo"] == {"status": "up-to-date", "version": "0.1"}
    assert answers["demo-other"]["status"] == "unknown"
    (patch,) = demo["patches"]
    assert demo["bytes"] == patch["size"] < demo["to"]["size"] / 2
    status, _, data = request(patch["url"])
    assert status == 200 and hashlib.sha256(data).hexdigest() == patch["sha256"]
    rebuilt = apply_patch(data, WheelSource(built[0] / "demo-1.0-py3-none-any.whl"), tmp_path)
    assert hashlib.sha256(rebuilt.read_bytes()).hexdigest() == demo["to"]["sha256"]


def test_tags_select_the_group_and_a_filename_works_instead(latest: str) -> None:
    answers = query(latest, [have("demo", "1.0", "cp311-cp311-linux_x86_64")])
    assert answers["demo"]["to"]["filename"] == "demo-1.1-cp311-cp311-linux_x86_64.whl"
    answers = query(latest, [{"filename": "demo-1.2-py3-none-any.whl"}])
    assert answers["demo"]["to"]["version"] == "2.0"
    assert query(latest, [have("demo", "2.0")])["demo"] == {"status": "up-to-date", "version": "2.0"}


def test_a_chain_when_only_neighbours_have_deltas(chains: str) -> None:
    demo = query(chains, [have("demo", "1.0")])["demo"]
    assert demo["path"] == "chain" and len(demo["patches"]) == 3
    steps = [(p["from"]["filename"], p["to"]["filename"]) for p in demo["patches"]]
    assert [s[1].split("-")[1] for s in steps] == ["1.1", "1.2", "2.0"]
    assert demo["bytes"] == sum(p["size"] for p in demo["patches"])
    assert demo["to"]["url"] == "https://primary.invalid/demo-2.0-py3-none-any.whl"


def test_direct_delta_chosen_over_a_costlier_chain(built: tuple[Path, Path], latest: str) -> None:
    deltas = json.loads((built[1] / "keep3" / "demo" / "deltas.json").read_text())["deltas"]
    by_pair = {(d["from"]["filename"][5:8], d["to"]["filename"][5:8]): d["size"] for d in deltas}
    demo = query(latest, [have("demo", "1.1")])["demo"]
    chain = by_pair[("1.1", "1.2")] + by_pair[("1.2", "2.0")]
    assert demo["bytes"] == min(by_pair[("1.1", "2.0")], chain)
    assert demo["path"] == ("delta" if by_pair[("1.1", "2.0")] <= chain else "chain")


def test_full_download_when_no_delta_is_worth_it(latest: str) -> None:
    noise = query(latest, [have("noise", "1.0")])["noise"]
    assert (noise["status"], noise["path"], noise["patches"]) == ("upgrade", "full", [])
    assert noise["bytes"] == noise["to"]["size"]


@pytest.mark.parametrize(
    ("installed", "want", "expected"),
    [
        (have("demo", "1.0"), None, {"status": "upgrade", "to": "1.1"}),  # max 1.1.*: never 1.2 or 2.0
        (have("demo", "1.1"), None, {"status": "up-to-date"}),
        (have("demo", "1.0"), "1.1", {"status": "upgrade", "to": "1.1"}),
        (have("demo", "1.0"), "2.0", {"status": "refused", "reason": "2.0 is above the server's maximum (<1.2)"}),
        (have("solo", "0.1"), None, {"status": "held"}),
        (have("solo", "0.1"), "0.2", {"status": "refused", "reason": "0.2 is held by the server's policy"}),
        (have("noise", "2.0"), None, {"status": "upgrade", "to": "1.0"}),  # a pin is always the target
        (have("noise", "1.0"), None, {"status": "up-to-date"}),
        (have("noise", "1.0"), "2.0", {"status": "refused", "reason": "2.0 is pinned to 1.0 by the server's policy"}),
    ],
)
def test_policy_decides_and_is_never_passed(
    policed: str, installed: dict[str, object], want: str | None, expected: dict[str, str]
) -> None:
    name = str(installed["name"])
    answer = query(policed, [installed], {name: want} if want else None)[name]
    assert answer["status"] == expected["status"]
    if "to" in expected:
        assert answer["to"]["version"] == expected["to"]
    if "reason" in expected:
        assert answer["reason"] == expected["reason"]


def test_concurrent_queries_get_the_same_answers(latest: str) -> None:
    installed = [have("demo", "1.0"), have("demo-x", "1.0"), have("noise", "1.0")]
    expected = query(latest, installed)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: query(latest, installed), range(64)))
    assert all(answer == expected for answer in answers)
    status, _, data = request(f"{latest}/stats")
    stats = json.loads(data)
    assert status == 200 and stats["queries"] >= 65 and stats["answers_upgrade_full"] >= 65
