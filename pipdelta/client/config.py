"""Settings: command line, then ``PIPDELTA_*`` variables, then the TOML config file, then defaults."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from pipdelta.client.cache import default_dir
from pipdelta.errors import PipdeltaError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

KEYS = {
    "index-url": str,
    "cache-dir": str,
    "timeout": float,
    "retries": int,
    "jobs": int,
    "prefer": str,
    "deadline": float,
    "policy": str,
}
PREFER = ("time", "bytes")
# Whose versions ``pipdelta upgrade PKG`` installs: the newest pip finds, or the delta index server's targets.
POLICIES = ("pip", "server")


class ConfigError(PipdeltaError):
    """The config file cannot be read, or a setting has the wrong type."""


@dataclass(frozen=True)
class Settings:
    index_url: str | None
    cache_dir: Path
    timeout: float = 15.0
    retries: int = 2
    jobs: int = 4
    prefer: str = "time"  # "bytes": always the smallest path, for metered links
    deadline: float | None = None  # seconds a wheel request waits for its rebuild (default: as long as HTTP may take)
    policy: str = "pip"


def config_file(environ: Mapping[str, str] = os.environ) -> Path:
    """``PIPDELTA_CONFIG``, or ``config.toml`` in the platform's config folder for pipdelta."""
    override = environ.get("PIPDELTA_CONFIG")
    return Path(override) if override else Path(platformdirs.user_config_dir("pipdelta")) / "config.toml"


def load(
    index_url: str | None = None, environ: Mapping[str, str] = os.environ, *, prefer: str | None = None
) -> Settings:
    """The settings in force; ``index_url`` (``--delta-index``) and ``prefer`` win over everything else."""
    path = config_file(environ)
    values = _read(path)
    chosen = prefer or values.get("prefer", Settings.prefer)
    if chosen not in PREFER:
        raise ConfigError(f"{path}: 'prefer' must be one of {', '.join(PREFER)}")
    url = index_url or environ.get("PIPDELTA_INDEX_URL") or values.get("index-url")
    cache = environ.get("PIPDELTA_CACHE_DIR") or values.get("cache-dir")
    policy = environ.get("PIPDELTA_POLICY") or values.get("policy", Settings.policy)
    if policy not in POLICIES:
        raise ConfigError(f"'policy' must be one of {', '.join(POLICIES)} (PIPDELTA_POLICY or {path}), not {policy!r}")
    return Settings(
        index_url=url or None,
        cache_dir=Path(cache).expanduser() if cache else default_dir(environ),
        timeout=values.get("timeout", Settings.timeout),
        retries=values.get("retries", Settings.retries),
        jobs=max(1, values.get("jobs", Settings.jobs)),
        prefer=chosen,
        deadline=values.get("deadline"),
        policy=policy,
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            document = tomllib.load(stream)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None
    values = document.get("pipdelta", document)
    for key, value in values.items():
        kind = KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{path}: unknown setting {key!r} (known: {', '.join(KEYS)})")
        if not isinstance(value, kind) and not (kind is float and isinstance(value, int)):
            raise ConfigError(f"{path}: {key!r} must be a {kind.__name__}")
    return dict(values)
