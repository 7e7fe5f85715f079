"""The savings ledger: per wheel served, what it was, how it arrived and what it cost."""

from __future__ import annotations

import threading
from dataclasses import replace

from pipdelta.client.report import Outcome


class Ledger:
    """One row per wheel filename, the first time it is served; thread-safe."""

    def __init__(self) -> None:
        self._rows: dict[str, Outcome] = {}
        self._lock = threading.Lock()
        self.warnings: list[str] = []  # one line per wheel whose rebuild failed and was downloaded in full

    def record(self, filename: str, outcome: Outcome) -> None:
        with self._lock:
            self._rows.setdefault(filename, replace(outcome))

    def warn(self, line: str) -> None:
        with self._lock:
            self.warnings.append(line)

    def get(self, filename: str) -> Outcome | None:
        with self._lock:
            row = self._rows.get(filename)
            return None if row is None else replace(row)

    def outcomes(self) -> list[Outcome]:
        with self._lock:
            return [replace(o) for o in self._rows.values()]
