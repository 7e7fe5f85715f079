"""The server under attack: tag-set bombs, floods of heavy queries, slow connections and ambiguous framing."""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpclient import request
from mirrorfactory import release
from packaging.tags import sys_tags

from pipdelta.index.bounds import MAX_QUERY_TAGS, MAX_TAGS
from pipdelta.index.builder import build_index
from pipdelta.index.model import IndexFormatError
from pipdelta.index.query import Query
from pipdelta.server.app import IndexApp
from pipdelta.server.catalog import StaticCatalog
from pipdelta.server.connections import Limits
from pipdelta.server.logs import JsonLog
from pipdelta.server.run import running

JSON = {"Content-Type": "application/json"}
SHORT = Limits(connections=1_000, per_client=64, timeout=1.0)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("limits")
    (root / "mirror").mkdir()
    release(root / "mirror", "demo", "1.0")
    release(root / "mirror", "demo", "1.1")
    build_index(root / "mirror", root / "index", jobs=1)
    return root / "index"


@pytest.fixture(scope="module")
def served(index: Path) -> Iterator[str]:
    with running(IndexApp(StaticCatalog(index), log=JsonLog(io.StringIO())), limits=SHORT) as base:
        yield base


def _body(installed: list[dict[str, object]]) -> bytes:
    return json.dumps({"meta": {"api-version": "1.0"}, "installed": installed}).encode()


def _bomb() -> tuple[str, str, str]:
    """The three parts of the 4.3 KB query's tag set: 140 x 140 x 140 = 2,744,000 tags (1 GB, 10 s on 0.1.0)."""
    return (
        ".".join(f"cp3{i}" for i in range(140)),
        ".".join(f"cp3{i}m" for i in range(140)),
        ".".join(f"linux_{i}_armv7l" for i in range(140)),
    )


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


@pytest.mark.parametrize(
    "item",
    [
        {"name": "x", "version": "1", "tags": ["-".join(_bomb())]},
        {"filename": "x-1-{}-{}-{}.whl".format(*_bomb())},
    ],
    ids=["tags", "filename"],
)
def test_a_tag_set_bomb_is_refused_before_it_is_expanded(served: str, item: dict[str, object]) -> None:
    body = _body([item])
    assert 4_200 < len(body) < 4_500
    started = time.perf_counter()
    status, _, data = request(f"{served}/query", body, JSON)
    assert (status, time.perf_counter() - started < 1) == (400, True)
    assert "expand to 2,744,000 wheel tags" in json.loads(data)["error"]


def test_real_tag_lists_fit_and_the_query_total_is_bounded() -> None:
    assert len(list(sys_tags())) < MAX_TAGS  # an interpreter's whole list of supported tags
    Query.parse(_body([{"name": "here", "version": "1", "tags": [str(tag) for tag in sys_tags()]}]))
    wide = "-".join(".".join(f"{part}{i}" for i in range(n)) for part, n in (("py", 32), ("abi", 8), ("any", 8)))
    items = [{"name": f"p{i}", "version": "1", "tags": [wide]} for i in range(MAX_QUERY_TAGS // MAX_TAGS + 1)]
    with pytest.raises(IndexFormatError, match="wheel tags in all per query"):
        Query.parse(_body(items))


def _heavy() -> bytes:
    """A legal query near the 1 MiB limit: 9,000 installed distributions with a manylinux tag pair each."""
    tags = ["cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"]
    return _body([{"name": f"p{i}", "version": "1.0", "tags": tags} for i in range(9_000)])


def test_health_answers_while_heavy_queries_hammer_the_server(served: str) -> None:
    body, deadline, statuses = _heavy(), time.monotonic() + 3, []

    def hammer() -> None:
        while time.monotonic() < deadline:
            status, headers, _ = request(f"{served}/query", body, JSON)
            statuses.append((status, headers.get("Retry-After")))

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        for _ in range(12):
            pool.submit(hammer)
        time.sleep(0.5)
        slowest = 0.0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            assert request(f"{served}/health")[0] == 200
            slowest = max(slowest, time.perf_counter() - started)
            time.sleep(0.05)
    assert slowest < 1.5
    assert {status for status, _ in statuses} == {200, 503}
    assert all(retry == "1" for status, retry in statuses if status == 503)


def _answer(raw: bytes, port: int, wait: float = 3.0) -> bytes:
    """Send raw bytes, then read until the server closes the connection (or ``wait`` runs out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as connection:
        connection.sendall(raw)
        data = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := connection.recv(4096):
                data += chunk
        return data


QUERY = b'{"meta": {"api-version": "1.0"}, "installed": []}'
HEAD = b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (HEAD + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(QUERY) + QUERY, 400),
        (
            HEAD
            + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n%x\r\n" % len(QUERY)
            + QUERY
            + b"\r\n0\r\n\r\n",
            400,
        ),
        (HEAD + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(QUERY), len(QUERY) + 5) + QUERY, 400),
        (HEAD + b"Content-Length: %d, %d\r\n\r\n" % (len(QUERY), len(QUERY)) + QUERY, 400),
        (
            HEAD.replace(b"1.1", b"1.0")
            + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(QUERY)
            + QUERY
            + b"\r\n0\r\n\r\n",
            400,
        ),
        (HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    ],
    ids=["length-then-chunked", "chunked-then-length", "two-lengths", "length-list", "chunked-in-http-1.0", "gzip"],
)
def test_ambiguous_framing_is_refused_at_once(served: str, raw: bytes, status: int) -> None:
    started = time.perf_counter()
    head, _, body = _answer(raw, _port(served)).partition(b"\r\n\r\n")
    assert time.perf_counter() - started < 1
    assert head.split(b" ")[1] == b"%d" % status, head
    assert json.loads(body)["error"]


def _trickle(port: int, count: int, stop: threading.Event) -> list[socket.socket]:
    """``count`` connections that start a request and send one more header byte every 0.2 s until ``stop``."""
    connections = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]

    def drip() -> None:
        while not stop.wait(0.2):
            for connection in connections:
                with contextlib.suppress(OSError):
                    connection.send(b"X")

    for connection in connections:
        with contextlib.suppress(OSError):
            connection.send(HEAD + b"X-Slow: ")
    threading.Thread(target=drip, daemon=True).start()
    return connections


def test_slow_connections_are_dropped_and_lock_no_one_out(served: str) -> None:
    stop = threading.Event()
    connections = _trickle(_port(served), 300, stop)
    try:
        # Past the 64 per address, connections are answered 503 at once, and others are still served.
        assert _answer(b"", _port(served)).startswith(b"HTTP/1.1 503 ")
        with socket.create_connection(("127.0.0.1", _port(served)), 5, source_address=("127.0.0.2", 0)) as other:
            other.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert other.recv(100).startswith(b"HTTP/1.1 200 ")
        # Trickling a byte at a time does not keep a request alive past its deadline (1 s here).
        time.sleep(SHORT.timeout * 2)
        assert request(f"{served}/health")[0] == 200
        for connection in connections[: SHORT.per_client]:
            with contextlib.suppress(ConnectionResetError):
                assert connection.recv(100) == b""  # closed without an answer
    finally:
        stop.set()
        for connection in connections:
            connection.close()
