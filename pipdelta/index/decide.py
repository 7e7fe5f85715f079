"""The server's answer for one installed distribution: target by policy, then the cheapest path by bytes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from packaging.version import Version

from pipdelta.index.model import DeltaEntry, ProjectIndex, WheelEntry, cheapest_path
from pipdelta.index.policy import Rule
from pipdelta.index.query import Installed


@dataclass(frozen=True)
class Decision:
    """``status`` as in docs/INDEX.md; for an upgrade the target wheel and the patches (empty: full download)."""

    status: str
    version: Version
    target: WheelEntry | None = None
    patches: tuple[DeltaEntry, ...] = ()
    reason: str | None = None
    start: WheelEntry | None = field(default=None, compare=False)  # the mirror's wheel of the installed version

    @property
    def path(self) -> str:
        return "full" if not self.patches else "delta" if len(self.patches) == 1 else "chain"

    @property
    def bytes(self) -> int:
        if self.target is None:
            return 0
        return sum(p.size for p in self.patches) if self.patches else self.target.size

    def to_json(self, patch_url: Callable[[DeltaEntry], str]) -> dict[str, Any]:
        """The response entry; ``patch_url(delta)`` turns a delta's relative URL into an absolute one."""
        if self.status != "upgrade" or self.target is None:
            out: dict[str, Any] = {"status": self.status, "version": str(self.version)}
            if self.reason:
                out["reason"] = self.reason
            return out
        return {
            "status": "upgrade",
            "from": {"version": str(self.version)},
            "to": {"version": str(self.target.key.version), **self.target.to_json()},
            "path": self.path,
            "patches": [{**p.to_json(), "url": patch_url(p)} for p in self.patches],
            "bytes": self.bytes,
        }


def decide(installed: Installed, want: Version | None, rule: Rule, project: ProjectIndex | None) -> Decision:
    """What the server offers ``installed``; never a version past ``rule``."""
    have = installed.key
    same_tags = [w for w in project.wheels if w.key.same_tags(have)] if project else []
    if not same_tags:
        return Decision("unknown", have.version, reason="the index has no wheels of it with these tags")
    if want is not None and want != have.version and not rule.allows(want):
        return Decision("refused", have.version, reason=f"{want} is {rule.refusal(want)}")
    if rule.hold:
        return Decision("held", have.version)
    goal = want if want is not None else rule.pin if rule.pin is not None else _latest(same_tags, rule)
    if goal is None or goal == have.version or (want is None and rule.pin is None and goal < have.version):
        return Decision("up-to-date", have.version)
    targets = [w for w in same_tags if w.key.version == goal]
    if not targets:
        return Decision("unknown", have.version, reason=f"the index has no {goal} wheel with these tags")
    target = max(targets, key=lambda w: w.key)
    start = next((w for w in same_tags if w.key == have), None)
    assert project is not None
    chain = cheapest_path(project.deltas, have, target.sha256, target.size)
    return Decision("upgrade", have.version, target, tuple(chain or ()), start=start)


def _latest(wheels: list[WheelEntry], rule: Rule) -> Version | None:
    finals = [w.key.version for w in wheels if not w.key.version.is_prerelease and rule.allows(w.key.version)]
    return max(finals, default=None)
