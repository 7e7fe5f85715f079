"""Which deltas an index holds: to each wheel from each of the ``keep`` wheels before it in its group."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import NormalizedName

from pipdelta.index.files import patch_name
from pipdelta.index.mirror import Group, MirrorWheel

# bsdiff4's suffix sort takes about 17 bytes per byte of the old wheel's content, and make_patch holds
# both wheels, their contents and the target blob besides, in a worker that starts at about 50 MiB;
# checked against the measured peaks of the corpus's jobs (benchmarks/index.py).
BASE = 64 << 20
BSDIFF_FACTOR = 17
BSDIFF_LIMIT = 8 << 30  # make_patch does not try bsdiff4 above this (pipdelta.make.maker.BSDIFF_MEMORY)


@dataclass(frozen=True)
class Job:
    """One delta to make: from ``old`` to ``new`` of the same project and tag set."""

    project: NormalizedName
    old: MirrorWheel
    new: MirrorWheel

    @property
    def patch_name(self) -> str:
        return patch_name(self.old.entry.filename, self.new.key)

    @property
    def memory(self) -> int:
        """A generous estimate of the peak memory making this patch takes, in bytes."""
        old, new = self.old, self.new
        suffix_sort = min(BSDIFF_FACTOR * old.content_size, BSDIFF_LIMIT)
        return BASE + suffix_sort + 2 * (old.content_size + new.content_size) + old.entry.size + new.entry.size

    @property
    def input_bytes(self) -> int:
        return self.old.entry.size + self.new.entry.size


def plan(groups: dict[Group, list[MirrorWheel]], keep: int) -> list[Job]:
    """Deltas from each of the ``keep`` versions before a wheel to it; chains of them reach further back.

    ``groups`` must be sorted oldest first (as :func:`pipdelta.index.mirror.groups` returns them).
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    jobs = []
    for (project, _), wheels in sorted(groups.items(), key=lambda item: (item[0][0], sorted(map(str, item[0][1])))):
        for position, new in enumerate(wheels):
            jobs += [Job(project, old, new) for old in wheels[max(0, position - keep) : position]]
    return jobs
