"""What the builder remembers between runs: wheel hashes by file, and deltas not worth retrying."""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass, field
from pathlib import Path

from pipdelta.index.files import STATE_DIR, write_json

STATE_FILE = "build-state.json"
STATE_VERSION = 2  # 2: uncompressed sizes count gzip members expanded


@dataclass(frozen=True)
class Fingerprint:
    """A wheel file's size, mtime, sha256 and uncompressed size; trusted again only while size and mtime hold."""

    size: int
    mtime_ns: int
    sha256: str
    content: int


@dataclass
class HashCache:
    """sha256 of each mirror file by path, so an incremental run does not re-read a whole mirror."""

    entries: dict[str, Fingerprint] = field(default_factory=dict)

    def get(self, path: Path) -> Fingerprint | None:
        known = self.entries.get(str(path))
        if known is None:
            return None
        stat = path.stat()
        return known if (known.size, known.mtime_ns) == (stat.st_size, stat.st_mtime_ns) else None

    def put(self, path: Path, fingerprint: Fingerprint) -> None:
        self.entries[str(path)] = fingerprint

    def keep(self, paths: list[Path]) -> None:
        """Forget files that are gone from the mirror."""
        wanted = {str(path) for path in paths}
        self.entries = {path: f for path, f in self.entries.items() if path in wanted}


@dataclass
class BuildState:
    """The state file in ``INDEX_DIR/.pipdelta/``; losing it costs only time, never correctness."""

    hashes: HashCache = field(default_factory=HashCache)
    # "old sha256:new sha256" -> why no delta is made (too large, or the job failed on these exact files)
    skipped: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def pair(old_sha256: str, new_sha256: str) -> str:
        return f"{old_sha256}:{new_sha256}"

    @classmethod
    def load(cls, index_dir: Path) -> BuildState:
        try:
            obj = json.loads((index_dir / STATE_DIR / STATE_FILE).read_bytes())
            if obj.get("version") != STATE_VERSION:
                return cls()
            hashes = {path: Fingerprint(*values) for path, values in obj["hashes"].items()}
            return cls(HashCache(hashes), {str(k): str(v) for k, v in obj["skipped"].items()})
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return cls()  # a missing or damaged state file only means redoing work

    def save(self, index_dir: Path) -> None:
        hashes = {path: list(astuple(f)) for path, f in sorted(self.hashes.entries.items())}
        write_json(
            index_dir / STATE_DIR / STATE_FILE, {"version": STATE_VERSION, "hashes": hashes, "skipped": self.skipped}
        )
