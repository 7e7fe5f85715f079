"""The range client against a real server on 127.0.0.1: multipart, one range at a time, refusals and lies."""

from __future__ import annotations

import os

import pytest
from rangeserver import RangeServer, serving

from pipdelta.client.ranges import RangeClient, RangesRefused, coalesce, cost, worth_it
from pipdelta.errors import RangeError

DATA = os.urandom(200_000)
RANGES = [(150_000, 3_000), (10, 90), (60_000, 20_000), (120, 50), (199_990, 10)]


def expected(ranges: list[tuple[int, int]]) -> list[bytes]:
    return [DATA[start : start + length] for start, length in ranges]


def test_several_ranges_in_one_multipart_request() -> None:
    server = RangeServer(DATA)
    with serving(server) as url:
        client = RangeClient(url, size=len(DATA))
        assert client(RANGES) == expected(RANGES)
    assert server.requests == 1 == client.requests
    assert client.received < sum(n for _, n in RANGES) + 600


def test_a_server_answering_only_the_first_range_is_asked_range_by_range() -> None:
    server = RangeServer(DATA, "first-only")
    with serving(server) as url:
        client = RangeClient(url)
        assert client(RANGES) == expected(RANGES)
        assert not client.multipart
    assert server.requests == len(coalesce(RANGES))


def test_a_server_ignoring_range_is_refused_in_one_line() -> None:
    with serving(RangeServer(DATA, "refuse")) as url, pytest.raises(RangesRefused, match="full wheel"):
        RangeClient(url)(RANGES)


@pytest.mark.parametrize("mode", ["short", "wrong"])
def test_a_lying_server_is_caught(mode: str) -> None:
    with serving(RangeServer(DATA, mode)) as url:
        if mode == "short":  # wrong length: the client sees it in the answer itself
            with pytest.raises(RangeError, match="length is not its Content-Range"):
                RangeClient(url)(RANGES)
        else:  # wrong bytes pass the client; the applier's per-member checks catch them (test_member_checks)
            assert RangeClient(url)(RANGES) != expected(RANGES)


def test_a_file_of_another_size_is_caught() -> None:
    claimed = 10 * len(DATA)
    with serving(RangeServer(DATA)) as url, pytest.raises(RangeError, match=f"not the {claimed:,}"):
        RangeClient(url, size=claimed)(RANGES)


def test_ranges_that_cost_more_than_the_wheel_are_not_fetched() -> None:
    server = RangeServer(DATA)
    with serving(server) as url, pytest.raises(RangesRefused, match="cost more than the wheel"):
        RangeClient(url, size=5)(RANGES)


def test_ranges_close_together_are_merged_and_costed() -> None:
    assert coalesce([(1000, 10), (0, 50), (1020, 5), (40, 20)]) == [(0, 60), (1000, 25)]
    assert cost([(0, 1000)]) < cost([(0, 1000), (50_000, 1000)])
    assert worth_it([(0, 1000)], 100_000)
    assert not worth_it([(0, 99_000), (100_000, 5_000)], 100_000)
