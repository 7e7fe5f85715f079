"""What each package cost and why: a rich table for people, the same as JSON for CI."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipdelta import __version__
from pipdelta.errors import PipdeltaError

if TYPE_CHECKING:  # rich is imported where a table is drawn: a quiet run never pays for it
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

DELTA, CHAIN, FULL = "delta", "chain", "full"
#: a run's status: pip installed every package, some not, pip failed, nothing was to do, or only planned
INSTALLED, INCOMPLETE, FAILED, NOTHING, DRY_RUN = "installed", "incomplete", "failed", "nothing to do", "dry run"


@dataclass
class Outcome:
    """One distribution pip installs: how its wheel arrived, and, for a full download, why."""

    name: str
    old: str | None  # the version patched from (or installed before), if any
    new: str
    method: str = FULL
    reason: str = ""
    full_size: int | None = None  # the wheel's size, when the delta index knows it
    downloaded: int | None = None  # bytes fetched for it (patches, and the wheel when pip fetched it)
    source: str | None = None  # where the old bytes came from
    installed: bool = False  # the environment has ``new`` now (checked after pip's run, never assumed)

    @property
    def saved(self) -> int | None:
        if self.full_size is None or self.downloaded is None:
            return None
        return self.full_size - self.downloaded

    def fall_back(self, reason: str, wasted: int = 0) -> None:
        """Mark a full download; bytes already spent on patches still count."""
        self.method, self.reason, self.source = FULL, reason, None
        self.downloaded = wasted + self.full_size if self.full_size is not None else None


@dataclass
class Report:
    """A run's outcomes, its status, and the error that made it fail (pip's, in one line), if any."""

    outcomes: list[Outcome]
    status: str
    error: PipdeltaError | None = None
    warnings: list[str] = field(default_factory=list)
    delta_index: str | None = None  # its base URL, never with credentials
    timings: dict[str, float] = field(default_factory=dict)  # seconds: pip's run, the whole command


@dataclass(frozen=True)
class Totals:
    packages: int
    installed: int
    patched: int
    full: int
    full_size: int
    downloaded: int

    @property
    def saved(self) -> int:
        return self.full_size - self.downloaded


def totals(outcomes: Sequence[Outcome]) -> Totals:
    """Sums over the packages whose sizes are known (a full download from an unknown wheel counts as no saving)."""
    known = [o for o in outcomes if o.full_size is not None and o.downloaded is not None]
    return Totals(
        packages=len(outcomes),
        installed=sum(o.installed for o in outcomes),
        patched=sum(o.method != FULL for o in outcomes),
        full=sum(o.method == FULL for o in outcomes),
        full_size=sum(o.full_size or 0 for o in known),
        downloaded=sum(o.downloaded or 0 for o in known),
    )


def table(outcomes: Sequence[Outcome], *, title: str = "pipdelta", planned_only: bool = False) -> Table:
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=title, title_justify="left")
    for column in ("package", "old → new", "full", "downloaded", "saved", "how"):
        grid.add_column(column, justify="right" if column in ("full", "downloaded", "saved") else "left")
    for o in outcomes:
        how: str | Text = o.method if o.method != FULL else f"full: {o.reason}" if o.reason else FULL
        if o.source:
            how += f" (from {o.source})"
        if not o.installed and not planned_only:
            how = Text.assemble(("NOT INSTALLED", "bold red"), f" ({how})")
        saved = o.saved
        grid.add_row(
            o.name,
            f"{o.old or '—'} → {o.new}",
            size_text(o.full_size),
            size_text(o.downloaded),
            "—"
            if saved is None or o.full_size is None
            else f"{size_text(saved)} ({100 * saved / (o.full_size or 1):.0f}%)",
            how,
        )
    t = totals(outcomes)
    share = f" ({100 * t.saved / t.full_size:.0f}%)" if t.full_size else ""
    grid.add_section()
    grid.add_row(
        f"{t.packages} packages",
        f"{t.patched} patched, {t.full} full"
        + ("" if planned_only or t.installed == t.packages else f", {t.packages - t.installed} not installed"),
        size_text(t.full_size),
        size_text(t.downloaded),
        f"{size_text(t.saved)}{share}",
        "",
    )
    return grid


def show(report: Report, console: Console, *, title: str = "pipdelta") -> None:
    console.print(table(report.outcomes, title=title, planned_only=report.status == DRY_RUN))


def to_json(report: Report) -> dict[str, Any]:
    t = totals(report.outcomes)
    return {
        "pipdelta": __version__,
        "delta_index": report.delta_index,
        "status": report.status,
        "error": None if report.error is None else str(report.error),
        "dry_run": report.status == DRY_RUN,
        "packages": [{**asdict(o), "saved": o.saved} for o in report.outcomes],
        "totals": {**asdict(t), "saved": t.saved},
        "timings": report.timings,
        "warnings": report.warnings,
    }


def write_json(path: Path, report: Report) -> None:
    write_document(path, to_json(report))


def write_document(path: Path, document: Any) -> None:
    """Write a JSON report for CI into ``path``; ``-`` is standard output. A PipdeltaError when it cannot."""
    text = json.dumps(document, indent=2) + "\n"
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PipdeltaError(f"cannot write the report to {path}: {exc.strerror}") from None


def size_text(n: int | None) -> str:
    """``n`` bytes in SI units, as they are named: 1 kB is 1,000 bytes, 1 MB 1,000,000; ``—`` when unknown."""
    if n is None:
        return "—"
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
