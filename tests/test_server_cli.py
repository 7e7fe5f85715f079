"""``pipdelta serve`` as a user runs it: a subprocess on an ephemeral port, stopped by a signal."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from httpclient import have, query, request
from mirrorfactory import release

from pipdelta.index.builder import build_index


def test_serve_command_answers_and_logs_json_lines(tmp_path: Path) -> None:
    source = tmp_path / "mirror"
    source.mkdir()
    release(source, "demo", "1.0")
    release(source, "demo", "1.1")
    build_index(source, tmp_path / "index", jobs=1)
    targets = tmp_path / "targets.toml"
    targets.write_text("[projects.demo]\nhold = true\n")
    command = [
        sys.executable,
        "-m",
        "pipdelta",
        "serve",
        str(tmp_path / "index"),
        "--port",
        "0",
        "--targets",
        str(targets),
    ]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        started = json.loads(server.stderr.readline())
        assert started["event"] == "listening"
        base = started["url"].rstrip("/")
        assert request(f"{base}/health")[0] == 200
        assert query(base, [have("demo", "1.0")])["demo"]["status"] == "held"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)  # even when this test runs with SIGINT ignored (started in the background)
    assert server.returncode in (0, 130)
    logged = [json.loads(line) for line in server.stderr.read().splitlines() if line.startswith("{")]
    assert [(e["path"], e["status"]) for e in logged] == [("/health", 200), ("/query", 200)]


def test_serve_command_refuses_bad_setups_in_one_line(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pipdelta", "serve", *args], capture_output=True, text=True)

    missing = run(str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "INDEX_DIR" in missing.stderr
    (tmp_path / "bad.toml").write_text("[projects.x]\nmax = 'banana'\n")
    bad = run(str(tmp_path), "--targets", str(tmp_path / "bad.toml"))
    assert bad.returncode == 1 and "banana" in bad.stderr and "Traceback" not in bad.stderr
    mixed = run(str(tmp_path), "--upstream", "http://127.0.0.1:9/simple")
    assert mixed.returncode == 1 and "--cache" in mixed.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = run(str(tmp_path), "--port", str(taken.getsockname()[1]))
    assert busy.returncode == 1 and "cannot listen on 127.0.0.1" in busy.stderr and "Traceback" not in busy.stderr


def test_serve_command_takes_its_limits_from_the_command_line(tmp_path: Path) -> None:
    """``--client-connections 1``: a second connection from one address is refused while the first is open."""
    build_index(tmp_path, tmp_path / "index", jobs=1)
    command = [sys.executable, "-m", "pipdelta", "serve", str(tmp_path / "index"), "--port", "0"]
    server = subprocess.Popen(
        [*command, "--client-connections", "1", "--timeout", "5"], stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stderr is not None
        base = json.loads(server.stderr.readline())["url"].rstrip("/")
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))):
            assert request(f"{base}/health")[0] == 503
        deadline = time.monotonic() + 10  # the server notices the close on its next turn of the loop
        while (status := request(f"{base}/health")[0]) == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status == 200
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
