"""Apply one patch as a client would, counting range bytes; ``zlib-ng``: with Python's zlib replaced by zlib-ng.

Usage: ``python benchmarks/client.py classic|zlib-ng|zlib-ng-2.2|zlib-ng+zlib OLD.whl PATCH NEW.whl``; prints one JSON
object (with ``PIPDELTA_ZLIBNG22`` or ``PIPDELTA_ZLIB`` in the environment for the last two). The new
wheel stands for the primary index: ranges are sliced from it and counted as multipart requests would cost.
"""

from __future__ import annotations

import sys


def main(kind: str, old: str, patch: str, new: str) -> dict[str, object]:
    if kind.startswith("zlib-ng"):  # what a Fedora 40+ or Windows CPython 3.14 interpreter is: zlib is zlib-ng
        from zlib_ng import zlib_ng

        sys.modules["zlib"] = zlib_ng
    import tempfile
    import time
    from collections.abc import Sequence
    from pathlib import Path

    from pipdelta import WheelSource, apply_patch
    from pipdelta.client.ranges import cost
    from pipdelta.errors import PipdeltaError

    new_data = Path(new).read_bytes()
    asked: list[tuple[int, int]] = []

    def fetch(ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        asked.extend(ranges)
        return [new_data[start : start + length] for start, length in ranges]

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            out = apply_patch(Path(patch).read_bytes(), WheelSource(Path(old)), Path(tmp, "out.whl"), fetch=fetch)
            exact, error = out.read_bytes() == new_data, None
        except PipdeltaError as exc:
            exact, error = False, str(exc)
    return {
        "exact": exact,
        "ranges": cost(asked) if asked else 0,
        "members": len(asked),
        "seconds": time.perf_counter() - start,
        "error": error,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(main(*sys.argv[1:5])))
