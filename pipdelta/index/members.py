"""A patch's target bytes by what re-creates them: what a client weighs before it downloads the patch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipdelta.errors import PatchFormatError
from pipdelta.format import wire
from pipdelta.format.limits import Budget
from pipdelta.format.patchfile import Copy, FromTarget, Member, PatchHeader

OLD_WHEEL = "old-wheel"  # copied members no recipe re-creates: only the old wheel holds their bytes
JOIN = "+"  # a member that needs several recipes (a gzip file deflated inside a deflated member)
MAX_NAMES = 64  # keys in one group: the maker knows 26 recipes
MAX_NAME = 128  # characters of one key: two recipe ids are under 40
LOCAL_HEADER = 30  # bytes every member has before its data in the wheel, besides its name

#: (recipe key, compressed bytes of the new wheel, members)
Share = tuple[str, int, int]
#: Whether this machine re-creates a recipe (given as written, e.g. ``zlib:6:8:0``) byte for byte.
Exact = Callable[[str], bool]


@dataclass(frozen=True)
class Members:
    """The new wheel's compressed member bytes: ``remade`` by recipe from any old version; ``copied`` from the
    old wheel as they are (from installed files, by recipe; ``old-wheel``: not at all); ``fetched`` always as
    byte ranges of the new wheel (the patch leaves them out). Stored and raw members need nothing and are not
    counted. ``content``: the uncompressed bytes the remade members and the copied ones a recipe re-creates
    hold (what deflating them costs); None where an index did not publish it."""

    remade: tuple[Share, ...] = ()
    copied: tuple[Share, ...] = ()
    fetched: tuple[int, int] = (0, 0)
    content: tuple[int, int] | None = None

    @classmethod
    def of(cls, header: PatchHeader) -> Members:
        """The figures of a patch, from its header."""
        remade: dict[str, list[int]] = {}
        copied: dict[str, list[int]] = {}
        fetched, content = [0, 0], [0, 0]
        for op in header.ops:
            if isinstance(op, FromTarget):
                fetched[0] += op.check.size
                fetched[1] += 1
                continue
            if isinstance(op, Member):
                # a gzip file whose stream is an old one's (source set) needs only its outer recipe
                inner = op.gz[1] if op.gz is not None and op.source is None else None
                needs = sorted({str(r) for r in (op.recipe, inner) if r is not None})
                key, group = JOIN.join(needs), remade
                held = op.size if op.source is None else header.sources[op.source].size
            elif isinstance(op, Copy):
                stored = op.recipe is None and op.check.size == header.sources[op.source].size
                key, group = (OLD_WHEEL if op.recipe is None else str(op.recipe)), copied
                needs = [] if stored else [key]
                held = 0 if op.recipe is None else header.sources[op.source].size
            else:
                continue
            if needs:
                share = group.setdefault(key, [0, 0])
                share[0] += op.check.size
                share[1] += 1
                content[group is copied] += held
        return cls(_shares(remade), _shares(copied), (fetched[0], fetched[1]), (content[0], content[1]))

    def missing(self, exact: Exact, *, installed: bool) -> tuple[int, int]:
        """(bytes, members) of the new wheel a machine must fetch as ranges: those of the recipes it does not
        re-create exactly, and the members left out; ``installed``: from installed files, not the old wheel.

        An upper bound: a member whose engine differs here sometimes comes out the same (its check tells).
        """
        size, count = self.fetched
        shares = [*self.remade, *(self.copied if installed else ())]
        for key, length, members in shares:
            if key == OLD_WHEEL or not all(exact(part) for part in key.split(JOIN)):
                size, count = size + length, count + members
        return size, count

    def deflated(self, *, installed: bool) -> int:
        """Compressed bytes of the new wheel a rebuild deflates again (``installed``: from installed files, where
        copied members are deflated too): most of a rebuild's work, so what rebuilds are ordered by."""
        shares = [*self.remade, *(self.copied if installed else ())]
        return sum(length for key, length, _ in shares if key != OLD_WHEEL)

    def work(self, *, installed: bool) -> int:
        """Content bytes a rebuild deflates (``installed``: from installed files, the copies too): what its CPU time
        goes by. Estimated from the compressed bytes (3x) where the index did not publish the content."""
        if self.content is None:
            return 3 * self.deflated(installed=installed)
        return self.content[0] + (self.content[1] if installed else 0)

    def ranges_cost(self, exact: Exact, *, installed: bool, per_request: int) -> int:
        """Bytes on the wire for what :meth:`missing` gives: each member a part, ``per_request`` parts a request."""
        size, parts = self.missing(exact, installed=installed)
        return wire.parts_cost(size, parts, -(-parts // per_request)) if parts else 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, group in (("remade", self.remade), ("copied", self.copied)):
            if group:
                out[name] = {key: [length, members] for key, length, members in group}
        if self.fetched != (0, 0):
            out["fetched"] = list(self.fetched)
        if self.content is not None:
            out["content"] = list(self.content)
        return out

    @classmethod
    def from_json(cls, value: Any, target_size: int) -> Members | None:
        """The figures as a delta index publishes them; None (the field ignored) unless every value is sound:
        at most 64 keys a group, whole numbers, and no more bytes than a wheel of ``target_size`` holds."""
        if not isinstance(value, Mapping):
            return None
        remade, copied = _group(value.get("remade", {})), _group(value.get("copied", {}))
        fetched = _pair(value.get("fetched", [0, 0]))
        if remade is None or copied is None or fetched is None:
            return None
        content = _content(value.get("content"), target_size)
        found = cls(remade, copied, fetched, content)
        everything = [*remade, *copied, ("", *fetched)]
        if sum(length + LOCAL_HEADER * members for _, length, members in everything) > target_size:
            return None
        return found


def _content(value: Any, target_size: int) -> tuple[int, int] | None:
    """``[remade, copied]`` content bytes, each whole and within what a rebuild of the target may expand to;
    None when absent or unsound (the compressed figures then stand in)."""
    if not isinstance(value, list) or len(value) != 2 or not all(type(v) is int for v in value):
        return None
    try:
        most = Budget.for_wheel(target_size).expanded
    except PatchFormatError:
        return None
    return (value[0], value[1]) if all(0 <= v <= most for v in value) else None


def _shares(group: Mapping[str, list[int]]) -> tuple[Share, ...]:
    return tuple((key, length, members) for key, (length, members) in sorted(group.items()))


def _group(value: Any) -> tuple[Share, ...] | None:
    if not isinstance(value, Mapping) or len(value) > MAX_NAMES:
        return None
    shares = []
    for key, figures in value.items():
        pair = _pair(figures)
        if not isinstance(key, str) or not 0 < len(key) <= MAX_NAME or pair is None:
            return None
        shares.append((key, *pair))
    return tuple(sorted(shares))


def _pair(value: Any) -> tuple[int, int] | None:
    """``[bytes, members]``: whole numbers, each member at least a byte."""
    if not isinstance(value, list) or len(value) != 2 or not all(type(v) is int for v in value):
        return None
    length, members = value
    return (length, members) if 0 <= members <= length else None
