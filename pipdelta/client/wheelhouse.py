"""A folder of wheels as a PEP 503 simple index: how rebuilt wheels are handed to pip."""

from __future__ import annotations

import hashlib
import html
import shutil
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import parse_wheel_filename


def write_simple_index(wheels: Iterable[Path], root: Path) -> None:
    """``root/simple/<project>/index.html`` linking to ``root/files/<wheel>#sha256=…``, as PyPI's pages do."""
    projects: dict[str, list[Path]] = defaultdict(list)
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        if wheel.parent != files:
            shutil.copy2(wheel, files / wheel.name)
        projects[parse_wheel_filename(wheel.name)[0]].append(files / wheel.name)
    for project, paths in projects.items():
        folder = root / "simple" / project
        folder.mkdir(parents=True, exist_ok=True)
        links = "".join(
            f'<a href="../../files/{html.escape(p.name)}#sha256={hashlib.sha256(p.read_bytes()).hexdigest()}">'
            f"{html.escape(p.name)}</a><br>\n"
            for p in sorted(paths)
        )
        folder.joinpath("index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
    names = "".join(f'<a href="{p}/">{p}</a><br>\n' for p in sorted(projects))
    (root / "simple" / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{names}</body></html>\n")
