"""The wheels of a mirror folder (flat or a bandersnatch tree): project, tag set, sha256, size."""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import NormalizedName

from pipdelta.index.model import IndexFormatError, WheelEntry, WheelKey
from pipdelta.index.state import Fingerprint, HashCache

log = logging.getLogger(__name__)

Group = tuple[NormalizedName, frozenset[Tag]]
GZIP_EXPANSION = 4  # calibrated on botocore's .json.gz models against the measured peak (benchmarks/index.py)


@dataclass(frozen=True)
class MirrorWheel:
    """One wheel file of the mirror, as the index lists it, with its uncompressed size (for memory estimates)."""

    path: Path
    entry: WheelEntry
    content_size: int

    @property
    def key(self) -> WheelKey:
        return self.entry.key

    @property
    def group(self) -> Group:
        key = self.key
        return key.name, key.tags


def _files(source: Path) -> Iterator[Path]:
    # Hidden folders hold temporary files (ours and bandersnatch's); a bandersnatch tree keeps wheels
    # under web/packages/, and its web/simple/ pages hold no wheels, so one walk fits both layouts.
    for path in sorted(source.rglob("*.whl")):
        relative = path.relative_to(source).parts
        if not any(part.startswith(".") for part in relative) and path.is_file():
            yield path


def _measure(path: Path) -> Fingerprint:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    with zipfile.ZipFile(path) as archive:
        # Gzip members (botocore's .json.gz models) are diffed uncompressed: count what they expand to.
        content = sum(
            info.file_size * (GZIP_EXPANSION if info.filename.endswith(".gz") else 1) for info in archive.infolist()
        )
    stat = path.stat()
    return Fingerprint(stat.st_size, stat.st_mtime_ns, digest.hexdigest(), content)


def scan(
    source: Path, cache: HashCache, primary_url: Callable[[str], str | None] | None = None
) -> tuple[list[MirrorWheel], list[str]]:
    """Every readable wheel under ``source``, and a warning for each file left out."""
    wheels: dict[tuple[WheelKey, frozenset[Tag]], MirrorWheel] = {}
    warnings: list[str] = []
    for path in _files(source):
        try:
            key = WheelKey.from_filename(path.name)
            fingerprint = cache.get(path) or _measure(path)
        except (IndexFormatError, OSError, zipfile.BadZipFile, ValueError) as exc:
            warnings.append(f"skipped {path}: not a readable wheel ({exc})")
            continue
        cache.put(path, fingerprint)
        url = primary_url(path.name) if primary_url else None
        wheel = MirrorWheel(path, WheelEntry(path.name, fingerprint.sha256, fingerprint.size, url), fingerprint.content)
        seen = wheels.setdefault((key, key.tags), wheel)  # WheelKey's equality leaves the tags out
        if seen is not wheel and seen.entry.sha256 != wheel.entry.sha256:
            warnings.append(f"skipped {path}: another file of the same wheel differs ({seen.path})")
    for warning in warnings:
        log.warning(warning)
    return list(wheels.values()), warnings


def groups(wheels: list[MirrorWheel]) -> dict[Group, list[MirrorWheel]]:
    """Wheels by project and identical tag set, oldest first: a delta never crosses tag sets."""
    out: dict[Group, list[MirrorWheel]] = {}
    for wheel in wheels:
        out.setdefault(wheel.group, []).append(wheel)
    for members in out.values():
        members.sort(key=lambda w: w.key)
    return out
