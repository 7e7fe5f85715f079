"""Rewrite a patch's header as an attacker (or a bug) would, keeping the rest of the container valid."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from typing import Any

from pipdelta.format import codec

_PREAMBLE = struct.Struct(">8sHI")


def split(patch: bytes) -> tuple[dict[str, Any], bytes]:
    _, _, length = _PREAMBLE.unpack_from(patch)
    header = json.loads(
        codec.xz_decompress(patch[_PREAMBLE.size : _PREAMBLE.size + length], 1 << 26, "header", exact=False)
    )
    return header, patch[_PREAMBLE.size + length :]


def join(header: dict[str, Any], payload: bytes) -> bytes:
    body = codec.xz_compress(json.dumps(header).encode())
    return _PREAMBLE.pack(b"PIPDELTA", 2, len(body)) + body + payload


def rewrite(patch: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    header, payload = split(patch)
    change(header)
    return join(header, payload)


def with_payload(patch: bytes, payload: bytes) -> bytes:
    """The same header over another payload, its size and sha256 updated so only the differ can object."""
    header, _ = split(patch)
    header["payload_size"] = len(payload)
    header["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    return join(header, payload)
