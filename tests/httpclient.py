"""Plain urllib requests to the servers the tests run on 127.0.0.1, returning status, headers and body."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from email.message import Message
from typing import Any

from pipdelta.index.model import API_VERSION


def request(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None, method: str | None = None
) -> tuple[int, Message, bytes]:
    """Status, headers (case-insensitive) and body; HTTP errors are answers too."""
    req = urllib.request.Request(url, data, headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def query(base: str, installed: list[dict[str, Any]], want: dict[str, str] | None = None) -> dict[str, Any]:
    """POST /query and return the answers by project (the request must succeed)."""
    body: dict[str, Any] = {"meta": {"api-version": API_VERSION}, "installed": installed}
    if want is not None:
        body["want"] = want
    status, _, data = request(f"{base}/query", json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert status == 200, data
    answers: dict[str, Any] = json.loads(data)["projects"]
    return answers


def have(name: str, version: str, tag: str = "py3-none-any") -> dict[str, Any]:
    return {"name": name, "version": version, "tags": [tag]}
