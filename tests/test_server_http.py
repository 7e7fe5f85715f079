"""The server's HTTP surface: static files without traversal, size limits, 4xx answers, logs and counters."""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpclient import have, query, request
from mirrorfactory import release

from pipdelta.index.bounds import MAX_BODY
from pipdelta.index.builder import build_index
from pipdelta.server.app import IndexApp
from pipdelta.server.catalog import StaticCatalog
from pipdelta.server.logs import JsonLog
from pipdelta.server.run import running


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, io.StringIO]]:
    root = tmp_path_factory.mktemp("http")
    source = root / "mirror"
    source.mkdir()
    release(source, "demo", "1.0")
    release(source, "demo", "1.1")
    index = root / "index"
    build_index(source, index, jobs=1)
    (root / "secret.txt").write_text("outside the index")
    os.symlink(root / "secret.txt", index / "demo" / "escape.json")
    os.symlink(root, index / "demo" / "up")
    log = io.StringIO()
    with running(IndexApp(StaticCatalog(index), log=JsonLog(log))) as base:
        yield base, index, log


def _raw(
    base: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_health_static_files_and_conditional_requests(served: tuple[str, Path, io.StringIO]) -> None:
    base, index, _ = served
    assert request(f"{base}/health")[::2] == (200, b'{"status":"ok"}')
    status, headers, data = request(f"{base}/demo/deltas.json")
    assert status == 200 and data == (index / "demo" / "deltas.json").read_bytes()
    assert headers["content-type"] == "application/vnd.pipdelta.v1+json"
    assert request(f"{base}/demo/deltas.json", headers={"If-None-Match": headers["ETag"]})[0] == 304
    status, head_headers, body = request(f"{base}/index.json", method="HEAD")
    assert (status, body, head_headers["Content-Length"]) == (200, b"", str((index / "index.json").stat().st_size))


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/demo/%2e%2e/%2e%2e/secret.txt",
        "/demo/..%2f..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "//etc/passwd",
        "/%2Fetc%2Fpasswd",
        "/demo/escape.json",
        "/demo/up/secret.txt",
        "/.pipdelta/build-state.json",
        "/demo/..%5c..%5csecret.txt",
        "/demo/deltas.json%00.txt",
        "/demo",
        "/",
    ],
)
def test_nothing_outside_the_index_nor_its_private_files_is_served(
    served: tuple[str, Path, io.StringIO], path: str
) -> None:
    status, body = _raw(served[0], "GET", path)
    assert status in (400, 404)
    assert b"outside the index" not in body and b"root:" not in body and b"hashes" not in body


def test_patch_downloads_count_the_bytes_they_save(served: tuple[str, Path, io.StringIO]) -> None:
    base = served[0]
    before = json.loads(request(f"{base}/stats")[2])
    (patch,) = query(base, [have("demo", "1.0")])["demo"]["patches"]
    assert request(patch["url"])[0] == 200
    after = json.loads(request(f"{base}/stats")[2])
    assert after["patches_served"] - before["patches_served"] == 1
    assert after["patch_bytes_served"] - before["patch_bytes_served"] == patch["size"]
    assert after["full_bytes_replaced"] - before["full_bytes_replaced"] == patch["to"]["size"]
    assert after["bytes_saved"] == after["full_bytes_replaced"] - after["patch_bytes_served"] > 0


JSON = {"Content-Type": "application/json"}
GOOD = {"meta": {"api-version": "1.0"}, "installed": [have("demo", "1.0")]}


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "message"),
    [
        ("GET", "/query", None, {}, 405, "use POST"),
        ("PUT", "/demo/deltas.json", b"x", JSON, 405, "not allowed"),
        ("POST", "/query", json.dumps(GOOD).encode(), {"Content-Type": "text/plain"}, 415, "application/json"),
        ("POST", "/query", b"{not json", JSON, 400, "not JSON"),
        ("POST", "/query", b"[" * 100_000 + b"]" * 100_000, JSON, 400, "not JSON"),
        ("POST", "/query", b"[]", JSON, 400, "JSON object"),
        ("POST", "/query", b'{"meta": {"api-version": "2.0"}, "installed": []}', JSON, 400, "api-version"),
        ("POST", "/query", b'{"meta": {"api-version": "1.0"}}', JSON, 400, "'installed' must be a list"),
        (
            "POST",
            "/query",
            json.dumps({**GOOD, "installed": [{"name": "x", "version": "1"}]}).encode(),
            JSON,
            400,
            "'tags'",
        ),
        (
            "POST",
            "/query",
            json.dumps({**GOOD, "installed": [have("x", "not a version")]}).encode(),
            JSON,
            400,
            "PEP 440",
        ),
        (
            "POST",
            "/query",
            json.dumps({**GOOD, "installed": [have("x", "1", "nonsense")]}).encode(),
            JSON,
            400,
            "wheel tag",
        ),
        (
            "POST",
            "/query",
            json.dumps({**GOOD, "installed": [{"filename": "../../x.whl"}]}).encode(),
            JSON,
            400,
            "Invalid wheel filename",
        ),
        (
            "POST",
            "/query",
            json.dumps({**GOOD, "installed": [have("demo", "1.0"), have("Demo", "1.1")]}).encode(),
            JSON,
            400,
            "listed once",
        ),
        ("POST", "/query", json.dumps({**GOOD, "want": ["demo"]}).encode(), JSON, 400, "'want'"),
        ("POST", "/query", b" " * (MAX_BODY + 1), JSON, 413, "over"),
    ],
)
def test_bad_requests_get_a_clear_4xx(
    served: tuple[str, Path, io.StringIO],
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    got, data = _raw(served[0], method, path, body, headers)
    assert got == status, data
    assert message in json.loads(data)["error"]


def test_a_huge_declared_body_is_refused_before_it_is_sent(served: tuple[str, Path, io.StringIO]) -> None:
    host, port = served[0].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        head = f"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {1 << 40}\r\n\r\n"
        connection.sendall(head.encode() + b"{")
        assert connection.recv(100).startswith(b"HTTP/1.1 413")


def test_each_request_is_logged_as_one_json_line(served: tuple[str, Path, io.StringIO]) -> None:
    base, _, log = served
    request(f"{base}/health")
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert lines and all(line["event"] == "request" for line in lines)
    last = lines[-1]
    assert (last["method"], last["path"], last["status"]) == ("GET", "/health", 200)
    assert {"time", "bytes", "ms", "client"} <= set(last)
