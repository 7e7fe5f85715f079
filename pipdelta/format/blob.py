"""The source blob: the old content a patch is diffed against, built the same way on both sides."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pipdelta.format import gzmember
from pipdelta.format.patchfile import Source

# Installers rewrite RECORD (and its signatures), so they can never be a source read from installed files.
NOT_SOURCES = ("RECORD", "RECORD.jws", "RECORD.p7s")


def is_source_name(name: str) -> bool:
    """True for a wheel member both an old wheel and its installed files can supply."""
    head, _, tail = name.rpartition("/")
    return not (head.endswith(".dist-info") and "/" not in head and tail in NOT_SOURCES)


def record_row(name: str, content: bytes) -> bytes:
    """The RECORD line a wheel builder writes for ``content``; new RECORDs repeat those of unchanged files."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
    return b"%s,sha256=%s,%d\n" % (name.encode(), digest, len(content))


def build(sources: Sequence[Source], contents: Sequence[bytes]) -> bytes:
    """Each source's name and a newline, then its (expanded) content if ``in_blob``; then RECORD rows of all."""
    parts: list[bytes] = []
    for source, content in zip(sources, contents, strict=True):
        parts += (source.name.encode(), b"\n")
        if source.in_blob:
            parts.append(content if source.gz_size is None else gzmember.gunzip(content, source.gz_size))
    with ThreadPoolExecutor() as pool:  # hashlib releases the GIL: hash the sources side by side
        parts += pool.map(record_row, [source.name for source in sources], contents)
    return b"".join(parts)
