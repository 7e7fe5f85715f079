"""The optional C scan (``_scan.c``); ``pipdelta.native.scan.rel32`` is its pure-Python twin."""

def rel32(
    code: bytearray, start: int, end: int, vaddr: int, low: int, high: int, starts: bytes, deltas: bytes, /
) -> int: ...
