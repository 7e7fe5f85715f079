"""``pipdelta outdated``: what the delta index's policy says of each installed project, as a table and as JSON."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from pipdelta.client.report import size_text
from pipdelta.client.targets import Row, Survey

ORDER = ("upgrade", "held", "refused", "up-to-date", "unknown")


STATIC_NOTE = "A static delta index: no server policy applied; the targets are the latest versions it has."


def title(survey: Survey, url: str) -> str:
    return f"Installed projects under the policy of {url}" if survey.server else f"Installed projects vs {url}"


def verdict(row: Row) -> str:
    """``upgrade to 2.0``, ``held``, ``refused: …``, ``up to date``, ``unknown to the index``."""
    status, reason = row.answer.status, row.answer.reason
    text = {
        "upgrade": f"upgrade to {row.target}",
        "up-to-date": "up to date",
        "unknown": "unknown to the index",
        "": "no answer from the index",
    }.get(status, status)
    return f"{text}: {reason}" if reason and status != "unknown" else text


def table(survey: Survey, url: str) -> Table:
    grid = Table(title=title(survey, url), title_justify="left")
    for column in ("package", "installed", "policy", "path", "download", "full"):
        grid.add_column(column, justify="right" if column in ("download", "full") else "left")
    for row in _sorted(survey):
        answer = row.answer
        upgrade = answer.status == "upgrade" and answer.target is not None
        full = answer.target.size if upgrade and answer.target else None
        share = f" ({100 * answer.bytes / full:.0f}%)" if full else ""
        grid.add_row(
            row.installed.name,
            str(row.installed.version),
            verdict(row),
            answer.path if upgrade else "",
            f"{size_text(answer.bytes)}{share}" if upgrade else "",
            size_text(full) if upgrade else "",
        )
    counts = {status: sum(r.answer.status == status for r in survey.rows.values()) for status in ORDER}
    grid.add_section()
    grid.add_row(f"{len(survey.rows)} projects", "", ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return grid


def to_json(survey: Survey, url: str) -> dict[str, Any]:
    projects = []
    for row in _sorted(survey):
        answer, target = row.answer, row.target
        projects.append(
            {
                "name": row.installed.name,
                "installed": str(row.installed.version),
                "status": answer.status,
                "target": None if target is None else str(target),
                "path": answer.path if target is not None else None,
                "bytes": answer.bytes if target is not None else None,
                "full_size": answer.target.size if target is not None and answer.target else None,
                "reason": answer.reason,
            }
        )
    return {"index": url, "server_policy": survey.server, "projects": projects}


def _sorted(survey: Survey) -> list[Row]:
    rank = {status: i for i, status in enumerate(ORDER)}
    return sorted(survey.rows.values(), key=lambda row: (rank.get(row.answer.status, len(ORDER)), row.installed.name))
