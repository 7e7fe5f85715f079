"""What a patch may make the applier allocate, derived from the size of the wheel it builds."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipdelta.errors import PatchFormatError

# No wheel pipdelta patches may be larger than this; PIPDELTA_MAX_SIZE raises (or lowers) it.
MAX_WHEEL = int(os.environ.get("PIPDELTA_MAX_SIZE", 4 << 30))
# Expanded content per byte of wheel. Real wheels expand 0.3x to 4.4x (the 54 wheels of the corpus); a
# wheel that expands more falls back to a full download, which is never worse than pip.
EXPANSION = 16
SLACK = 16 << 20
# A member costs a 30-byte local header and a 46-byte central directory entry, and two ops at most (its
# header literal and its data): one op per 32 bytes of wheel is more than any wheel can use.
BYTES_PER_OP = 32
# The header's JSON: about 60 bytes per op and source in real patches, far below one byte of JSON per byte
# of wheel.
HEADER_SLACK = 1 << 20


@dataclass(frozen=True)
class Budget:
    """The limits for rebuilding one wheel of ``wheel_size`` bytes; every declared size is checked against
    them before anything is allocated (docs/FORMAT.md, "Limits")."""

    wheel_size: int

    @classmethod
    def for_wheel(cls, size: int) -> Budget:
        if not 0 < size <= MAX_WHEEL:
            raise PatchFormatError(f"a wheel of {size:,} bytes is outside what pipdelta patches (1 to {MAX_WHEEL:,})")
        return cls(size)

    @property
    def expanded(self) -> int:
        """Bytes of uncompressed content on either side: the source blob, the target blob, the members."""
        return min(EXPANSION * self.wheel_size + SLACK, EXPANSION * MAX_WHEEL)

    @property
    def ops(self) -> int:
        """Operations (and sources) a patch may list."""
        return self.wheel_size // BYTES_PER_OP + 16

    @property
    def header(self) -> int:
        """Bytes of header JSON."""
        return self.wheel_size + HEADER_SLACK

    def check(self, value: int, limit: int, what: str) -> None:
        """Refuse ``value`` of ``what`` above ``limit``, naming both."""
        if value > limit:
            raise PatchFormatError(
                f"patch declares {value:,} {what}, more than the {limit:,} a {self.wheel_size:,}-byte wheel allows"
            )
