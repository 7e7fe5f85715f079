"""``elf+bsdiff4``: bsdiff4 against the old blob with its ELF images' references moved as the new code moved."""

from __future__ import annotations

import struct

import bsdiff4.core

from pipdelta.differs.bsdiff import Bsdiff
from pipdelta.errors import PatchFormatError
from pipdelta.format import codec
from pipdelta.native import addrmap, elf
from pipdelta.native.predict import predict

_SIZES = struct.Struct("<QQ")  # the address map's size, then its size compressed


def map_limit(old_size: int) -> int:
    """The most bytes of address map a patch may declare: a 16-byte breakpoint per 32 bytes of old blob."""
    return old_size // 2 + 64


class ElfBsdiff:
    """The payload is the address map (xz) and bsdiff4's payload from the predicted old blob to the new one."""

    name = "elf+bsdiff4"

    def diff(self, old: bytes, new: bytes) -> bytes:
        images = elf.images(old)
        return self._payload(old, new, images, self.maps(old, new, images, bsdiff4.core.diff(old, new)[0]))

    def diff_from(self, old: bytes, new: bytes, control: bytes) -> bytes | None:
        """The payload, with the map derived from a first bsdiff4 control stream; None when no image moved."""
        images = elf.images(old)
        maps = self.maps(old, new, images, control)
        return self._payload(old, new, images, maps) if maps else None

    @staticmethod
    def maps(old: bytes, new: bytes, images: list[elf.Image], control: bytes) -> list[addrmap.Pieces]:
        if not images:
            return []
        return addrmap.derive(addrmap.control_triples(control), images, elf.images(new))

    @staticmethod
    def _payload(old: bytes, new: bytes, images: list[elf.Image], maps: list[addrmap.Pieces]) -> bytes:
        raw_map = addrmap.encode(maps)
        packed = codec.xz_compress(raw_map)
        inner = Bsdiff().diff(bytes(predict(old, maps, images)) if maps else old, new)
        return _SIZES.pack(len(raw_map), len(packed)) + packed + inner

    def patch(self, old: bytes, payload: bytes, size: int) -> bytes:
        if len(payload) < _SIZES.size:
            raise PatchFormatError("elf+bsdiff4 payload is truncated")
        raw_size, packed_size = _SIZES.unpack_from(payload)
        if raw_size > map_limit(len(old)) or _SIZES.size + packed_size > len(payload):
            raise PatchFormatError("elf+bsdiff4 payload declares an impossible address map size")
        images = elf.images(old)
        start = _SIZES.size + packed_size
        maps = addrmap.decode(codec.xz_decompress(payload[_SIZES.size : start], raw_size, "address map"), len(images))
        predicted = bytes(predict(old, maps, images)) if maps else old
        return Bsdiff().patch(predicted, payload[start:], size)
