"""The source blob: the old content a patch is diffed against, built the same way on both sides."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor

from pipdelta.format import gzmember
from pipdelta.format.patchfile import Source

# Installers rewrite RECORD (and its signatures), so they can never be a source read from installed files.
NOT_SOURCES = ("RECORD", "RECORD.jws", "RECORD.p7s")


def is_source_name(name: str) -> bool:
    """True for a wheel member both an old wheel and its installed files can supply (not bytecode: a wheel
    may ship a .pyc, as numpy does, but pip compiles over it when it installs)."""
    head, _, tail = name.rpartition("/")
    if tail.endswith(".pyc"):
        return False
    return not (head.endswith(".dist-info") and "/" not in head and tail in NOT_SOURCES)


def is_record_name(name: str) -> bool:
    """True for the dist-info's RECORD."""
    head, _, tail = name.rpartition("/")
    return head.endswith(".dist-info") and "/" not in head and tail == "RECORD"


def record_row(name: str, content: bytes) -> bytes:
    """The RECORD line a wheel builder writes for ``content``; new RECORDs repeat those of unchanged files."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
    return b"%s,sha256=%s,%d\n" % (name.encode(), digest, len(content))


def build(
    sources: Sequence[Source],
    contents: Mapping[int, bytes],
    rows: Mapping[str, bytes] | None = None,
    pool: Executor | None = None,
) -> bytes:
    """Each source's name and a newline, then its (expanded) content if ``in_blob``; then RECORD rows of all.

    ``rows`` are RECORD rows known without hashing a source (the old wheel's RECORD, or the installed one): a
    source there is not hashed again (the blob's sha256 checks the rows), and one missing from ``contents``
    must be there.
    """
    if pool is None:
        with ThreadPoolExecutor() as own:
            return build(sources, contents, rows, own)
    parts: list[bytes] = []
    for k, source in enumerate(sources):
        parts += (source.name.encode(), b"\n")
        if source.in_blob:
            content = contents[k]
            parts.append(content if source.gz_size is None else gzmember.gunzip(content, source.gz_size))
    known = rows or {}
    hashed = [k for k, source in enumerate(sources) if source.name not in known]
    # hashlib releases the GIL: hash the sources side by side
    names, hashed_contents = [sources[k].name for k in hashed], [contents[k] for k in hashed]
    computed = dict(zip(hashed, pool.map(record_row, names, hashed_contents), strict=True))
    parts += (computed[k] if k in computed else known[source.name] for k, source in enumerate(sources))
    return b"".join(parts)


def rows_of_record(record: bytes) -> dict[str, bytes]:
    """The rows a wheel's RECORD gives, rewritten as :func:`record_row` would write them (others are skipped)."""
    rows: dict[str, bytes] = {}
    for line in record.decode("utf-8", "replace").splitlines():
        name, _, rest = line.rpartition(",sha256=")
        digest, _, size = rest.partition(",")
        if name and not name.startswith('"') and len(digest) == 43 and size.isdigit():
            rows.setdefault(name, f"{name},sha256={digest},{int(size)}\n".encode())
    return rows
