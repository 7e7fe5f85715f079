"""How much uncompressed content one delta job may hold: whoever uploads a wheel must not choose its memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipdelta.errors import PatchFormatError, PipdeltaError
from pipdelta.format import limits as applier

if TYPE_CHECKING:  # every command reads the defaults above: no wheel reader for them
    from pipdelta.format.wheelfile import WheelFile

# The largest members of real wheels (CUDA libraries in torch, tensorflow, nvidia-*) are 1-2 GB uncompressed,
# and a pair of the largest wheels holds about 3.5 GB. A job takes up to about 4x its content (the contents,
# both blobs, the differ's window, the rebuild that checks the patch): 4 GiB of content is a 16 GiB job.
MEMBER = 2 << 30
TOTAL = 4 << 30
# A gzip file inside a wheel expands at most this much (botocore's .json.gz models: about 10x), and never
# past the job's limits.
GZIP_EXPANSION = 64


class TooLarge(PipdeltaError):
    """The two wheels of a job hold (or expand to) more content than its size limits allow."""


@dataclass(frozen=True)
class SizeLimits:
    """Uncompressed bytes one job may hold: in one member, and in all members of both wheels together."""

    member: int = MEMBER
    total: int = TOTAL


class Budget:
    """What is left of a job's :class:`SizeLimits` while its wheels are read; over a limit is :class:`TooLarge`.

    Each wheel must also expand no further than clients rebuild a wheel of ``target_size`` from
    (:mod:`pipdelta.format.limits`): they would refuse a patch past that, so it is not worth making.
    """

    def __init__(self, limits: SizeLimits, target_size: int) -> None:
        self.limits = limits
        self.left = limits.total
        try:
            self.ceiling = applier.Budget.for_wheel(target_size).expanded
        except PatchFormatError as exc:
            raise TooLarge(str(exc)) from None

    def declared(self, wheel: WheelFile) -> None:
        """Take the sizes every member of ``wheel`` declares (its central directory), before any is inflated.

        Inflating never goes past a declared size (``WheelFile.content``), so a size that lies only fails."""
        for member in wheel.layout.members:
            if member.size > self.limits.member:
                raise TooLarge(
                    f"{wheel.filename}: {member.name!r} is {member.size:,} bytes uncompressed, over the limit "
                    f"of {self.limits.member:,} per member"
                )
        content = sum(member.size for member in wheel.layout.members)
        if content > self.ceiling:
            raise TooLarge(
                f"{wheel.filename} holds {content:,} bytes uncompressed, more than the {self.ceiling:,} clients "
                "rebuild the target from"
            )
        self.take(content, wheel.filename)

    def gzip_limit(self, content: bytes) -> int:
        """How far a gzip file in a wheel may expand: what it plausibly holds, within the limits left."""
        return max(0, min(GZIP_EXPANSION * len(content) + (1 << 20), self.limits.member, self.left))

    def take(self, size: int, what: str) -> None:
        """Count ``size`` more bytes of content (of ``what``) against the job's total."""
        self.left -= size
        if self.left < 0:
            raise TooLarge(
                f"{what}: the two wheels hold over {self.limits.total:,} bytes uncompressed, the limit per delta"
            )


#: the limits of ``pipdelta index build`` and ``pipdelta serve --upstream`` unless told otherwise
DEFAULT_LIMITS = SizeLimits()
