"""The client's locks: one per target environment, one for pipdelta's cache; a second run waits, then says why not."""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager
from pathlib import Path

from pipdelta.client.environment import Environment
from pipdelta.locking import exclusive

#: how long a run waits for another pipdelta (or uv) on the same environment: about one small upgrade
ENVIRONMENT_WAIT = 30.0
#: how long a cache write waits for another one (each lasts as long as writing one wheel or one prune)
CACHE_WAIT = 30.0


def environment(env: Environment, cache_dir: Path) -> AbstractContextManager[None]:
    """Hold the lock of ``env`` while pipdelta plans and installs into it.

    A virtual environment is locked by its own ``.lock`` file, the one uv locks too: pipdelta, uv and other
    pipdelta runs (whatever their cache folder) then never change one venv at once. Anything else (a
    system or user installation, a conda base) is locked by a file in pipdelta's cache folder named by its
    resolved prefix, since such folders are often not writable and are shared.
    """
    prefix, is_venv = env.prefix()
    digest = hashlib.sha256(str(prefix).encode()).hexdigest()[:16]
    path = prefix / ".lock" if is_venv else cache_dir / "locks" / f"environment-{digest}.lock"
    return exclusive(path, wait=ENVIRONMENT_WAIT, what=f"the environment {prefix}")


def cache(directory: Path) -> AbstractContextManager[None]:
    """Hold the lock of pipdelta's cache in ``directory`` while one run writes to it (reads need none)."""
    return exclusive(directory / "locks" / "cache.lock", wait=CACHE_WAIT, what=f"the pipdelta cache {directory}")
