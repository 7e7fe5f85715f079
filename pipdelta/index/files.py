"""The index folder on disk: where each file lives, and reading and writing its JSON atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName

from pipdelta.atomic import atomic_write
from pipdelta.index.model import API_VERSION, PROJECT_FILE, IndexFormatError, ProjectIndex, WheelKey

ROOT_FILE = "index.json"
PATCHES = "patches"
# The builder's private state; the server never serves a name that starts with a dot.
STATE_DIR = ".pipdelta"


def patch_name(old_filename: str, new: WheelKey) -> str:
    """``rich-13.7.1-py3-none-any--13.8.0.pdelta``: unique in a project's folder (a delta never crosses tag sets)."""
    build = f"-{new.build[0]}{new.build[1]}" if new.build else ""
    return f"{old_filename.removesuffix('.whl')}--{new.version}{build}.pdelta"


def project_file(index_dir: Path, project: NormalizedName) -> Path:
    return index_dir / project / PROJECT_FILE


def patch_path(index_dir: Path, project: NormalizedName, name: str) -> Path:
    return index_dir / project / PATCHES / name


def dump(obj: Any) -> bytes:
    """Stable JSON bytes: the same index writes the same files, so re-runs and ETags stay unchanged."""
    return json.dumps(obj, indent=1, sort_keys=False).encode() + b"\n"


def write_json(path: Path, obj: Any) -> bool:
    """Write ``obj`` unless the file already holds exactly it; True if the file changed."""
    data = dump(obj)
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, [data])
    return True


def read_project(path: Path) -> ProjectIndex:
    """A ``deltas.json``; IndexFormatError when it is unreadable or not of the documented shape."""
    try:
        return ProjectIndex.from_json(json.loads(path.read_bytes()))
    except OSError as exc:
        raise IndexFormatError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, IndexFormatError):
            raise
        raise IndexFormatError(f"{path} is not valid JSON ({exc})") from None


def root_json(projects: list[str]) -> dict[str, Any]:
    return {"meta": {"api-version": API_VERSION}, "projects": sorted(projects)}
