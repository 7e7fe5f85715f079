"""Mirrors of real wheels for the index tests: a few versions of a project that change a little each time."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import module_text
from wheelfactory import build_wheel


def release(folder: Path, name: str, version: str, *, tag: str = "py3-none-any", seed: int | None = None) -> Path:
    """A wheel of ``name`` whose modules drift a little from one version to the next."""
    step = seed if seed is not None else sum(int(part) * 10**i for i, part in enumerate(reversed(version.split("."))))
    package = name.replace("-", "_")
    files = {
        f"{package}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{package}/core.py": module_text(1, 600) + module_text(step, 20),
        f"{package}/util.py": module_text(2, 300),
    }
    return build_wheel(folder, package, version, files, tag=tag)


def unrelated(folder: Path, name: str, version: str) -> Path:
    """A wheel that shares nothing with its other versions: no delta to it is worth it."""
    return build_wheel(folder, name, version, {f"{name}/blob.bin": os.urandom(64 << 10)}, stored=(f"{name}/blob.bin",))


def mirror(folder: Path) -> Path:
    """``demo`` 1.0, 1.1, 1.2 and 2.0 (py3) plus 1.0 and 1.1 of another tag set, and ``solo`` 0.1."""
    folder.mkdir(parents=True, exist_ok=True)
    for version in ("1.0", "1.1", "1.2", "2.0"):
        release(folder, "demo", version)
    for version in ("1.0", "1.1"):
        release(folder, "demo", version, tag="cp311-cp311-linux_x86_64")
    release(folder, "solo", "0.1")
    return folder
