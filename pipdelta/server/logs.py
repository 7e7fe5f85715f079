"""Structured logs: one JSON object per line on stderr, for each request and each notable event."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Any


class JsonLog:
    """``log.event("request", method="GET", status=200, ...)`` writes one line of JSON."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def event(self, event: str, **fields: Any) -> None:
        stream = self._stream or sys.stderr
        line = json.dumps({"time": round(time.time(), 3), "event": event, **fields}, default=str)
        with self._lock:
            stream.write(line + "\n")
            stream.flush()
