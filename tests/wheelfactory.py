"""Real wheel files for the tests: built with zipfile, or byte by byte for layouts zipfile never writes."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

Compressor = Callable[[bytes], bytes]


def record_line(name: str, content: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(content)}\n"


def wheel_members(
    name: str, version: str, files: Mapping[str, bytes], tag: str = "py3-none-any", requires: tuple[str, ...] = ()
) -> dict[str, bytes]:
    """``files`` plus the dist-info a wheel needs (METADATA, WHEEL, RECORD), as pip will install them."""
    dist_info = f"{name}-{version}.dist-info"
    members = dict(files)
    requires_dist = "".join(f"Requires-Dist: {line}\n" for line in requires)
    members[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requires_dist}".encode()
    )
    members[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: pipdelta-tests\nRoot-Is-Purelib: true\nTag: {tag}\n".encode()
    )
    record = "".join(record_line(n, c) for n, c in members.items()) + f"{dist_info}/RECORD,,\n"
    members[f"{dist_info}/RECORD"] = record.encode()
    return members


class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes data descriptors after each member."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.buffer += data
        return len(data)


def build_wheel(
    directory: Path,
    name: str,
    version: str,
    files: Mapping[str, bytes],
    *,
    level: int = 6,
    stored: tuple[str, ...] = (),
    directories: tuple[str, ...] = (),
    comment: bytes = b"",
    data_descriptors: bool = False,
    tag: str = "py3-none-any",
    requires: tuple[str, ...] = (),
) -> Path:
    """A wheel written by the standard library's zipfile, as setuptools, flit and hatchling do."""
    path = directory / f"{name}-{version}-{tag}.whl"
    stream: io.RawIOBase | io.BytesIO = _Unseekable() if data_descriptors else io.BytesIO()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for folder in directories:
            archive.writestr(zipfile.ZipInfo(folder.rstrip("/") + "/"), b"")
        for member, content in wheel_members(name, version, files, tag, requires).items():
            method = zipfile.ZIP_STORED if member in stored else zipfile.ZIP_DEFLATED
            archive.writestr(member, content, compress_type=method)
        archive.comment = comment
    data = stream.buffer if isinstance(stream, _Unseekable) else stream.getvalue()
    path.write_bytes(bytes(data))
    return path


@dataclass(frozen=True)
class Raw:
    """A member for :func:`build_raw_wheel`: content and the compressor that makes its data (None: stored)."""

    content: bytes
    compress: Compressor | None = None
    extra: bytes = b""


def build_raw_wheel(directory: Path, filename: str, members: Mapping[str, Raw], *, prefix: bytes = b"") -> Path:
    """A ZIP written field by field, so members can hold deflate streams from any engine."""
    out, central = bytearray(prefix), bytearray()
    for member, raw in members.items():
        encoded = member.encode()
        data = raw.content if raw.compress is None else raw.compress(raw.content)
        method = 0 if raw.compress is None else 8
        fields = (20, 0x800, method, 0, 0x21, zlib.crc32(raw.content), len(data), len(raw.content))
        offset = len(out)
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", *fields, len(encoded), len(raw.extra))
        out += encoded + raw.extra + data
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, *fields, len(encoded), 0, 0, 0, 0, 0, offset)
        central += encoded
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(out), 0)
    path = directory / filename
    path.write_bytes(bytes(out + central + end))
    return path
