"""pip's configuration for ``pip install``, read as pip reads it: its files in order, then ``PIP_*`` variables.

Read in-process rather than asking ``pip config list`` (a pip start-up, a quarter of a second): the files
and their order are pip's documented ones, the site file is the target environment's own, and the
variables are this process's (pip runs with them).
"""

from __future__ import annotations

import configparser
import locale
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from pipdelta.errors import PipdeltaError

BASENAME = "pip.ini" if os.name == "nt" else "pip.conf"
SECTIONS = ("global", "install")  # pip: the command's own section over [global], variables over both


class PipConfigError(PipdeltaError):
    """A pip configuration file pip itself could not load either."""


def files(prefix: Path) -> list[Path]:
    """pip's configuration files for the environment at ``prefix``, the later ones overriding the earlier ones.

    Global, then the user's (the legacy one first; none when ``PIP_CONFIG_FILE`` names an existing file),
    then the environment's own, then ``PIP_CONFIG_FILE``; none at all when that is the null device.
    """
    named = os.environ.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []
    import platformdirs

    if sys.platform == "darwin":
        system = [platformdirs.site_data_dir("pip", appauthor=False)]
    elif os.name == "nt":
        system = [platformdirs.site_config_dir("pip", appauthor=False)]
    else:
        xdg = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
        system = [*(os.path.join(d, "pip") for d in xdg.split(os.pathsep) if d), "/etc"]
    out = [Path(folder, BASENAME) for folder in system]
    if not (named and os.path.exists(named)):
        legacy = Path("~", "pip" if os.name == "nt" else ".pip", BASENAME).expanduser()
        out += [legacy, Path(platformdirs.user_config_dir("pip", appauthor=False, roaming=True), BASENAME)]
    out.append(prefix / BASENAME)
    if named:
        out.append(Path(named))
    return out


def options(prefix: Path) -> dict[str, str]:
    """The value ``pip install`` takes for each option set in configuration (``index-url``, ``cache-dir``, ...).

    A file's ``[install]`` section wins over ``[global]`` in any file, and ``PIP_*`` variables over both.
    """
    found: dict[str, dict[str, str]] = {section: {} for section in SECTIONS}
    for path in files(prefix):
        for section, name, value in _read(path):
            if section in found:
                found[section][name] = value
    variables = {_normalize(key[4:]): value for key, value in os.environ.items() if key.startswith("PIP_")}
    return {**found["global"], **found["install"], **variables}


def cache_dir(prefix: Path) -> Path | None:
    """The HTTP cache folder of ``pip install`` (``cache-dir``, else the platform's), None with ``no-cache-dir``."""
    chosen = options(prefix)
    if "no-cache-dir" in chosen:  # pip disables its cache for any value given, "false" included
        return None
    if chosen.get("cache-dir"):
        return Path(chosen["cache-dir"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("pip", appauthor=False))


def _read(path: Path) -> Iterator[tuple[str, str, str]]:
    """(section, option, value) of one file, options spelled as pip normalizes them; nothing if it is absent."""
    if not path.is_file():
        return
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding=locale.getpreferredencoding(False))
    except (configparser.Error, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PipConfigError(f"pip's configuration file {path} cannot be read (pip cannot either): {reason}") from None
    for section in parser.sections():
        for name, value in parser.items(section):
            yield section, _normalize(name), value


def _normalize(name: str) -> str:
    """As pip spells an option whether it came from a file or a variable: ``Index_URL`` is ``index-url``."""
    return name.lower().replace("_", "-").removeprefix("--")
