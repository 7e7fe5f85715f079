"""pip's configuration read in-process: the same index URLs and cache folder as pip itself uses, file for file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from pipdelta.client import indexes, pipconfig
from pipdelta.client.environment import Environment
from pipdelta.client.pipconfig import PipConfigError

DOWN = "http://127.0.0.1:9"  # refused at once: pip gives up on each index without waiting


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A venv without pip (pipdelta's pip is aimed at it, as for a ``uv venv``), and config folders of its own."""
    for key in list(os.environ):
        if key.startswith(("PIP_", "XDG_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    venv.EnvBuilder(with_pip=False, symlinks=sys.platform != "win32").create(tmp_path / "venv")
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def python(world: Path) -> str:
    return str(world / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))


def pips_indexes(world: Path) -> list[str]:
    """The index URLs pip's install command uses, as it prints them."""
    pip = [sys.executable, "-m", "pip", "--python", python(world), "install", "--dry-run", "--no-deps"]
    options = ["--retries", "0", "--timeout", "1", "nothing-of-the-kind"]
    result = subprocess.run([*pip, *options], capture_output=True, text=True, check=False)
    found = re.search(r"^Looking in indexes: (.*)$", result.stdout, re.MULTILINE)
    assert found is not None, result.stdout + result.stderr
    return found[1].split(", ")


def pips_cache(world: Path) -> Path | None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python(world), "cache", "dir"], capture_output=True, text=True
    )
    if "cache is disabled" in result.stderr:
        return None
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def test_files_in_pips_order_with_the_venvs_own_and_install_over_global(world: Path) -> None:
    write(world / "xdg/pip/pip.conf", f"[global]\nindex-url = {DOWN}/global/simple\nextra-index-url = {DOWN}/g/\n")
    write(world / "config/pip/pip.conf", f"[install]\nIndex_URL = {DOWN}/user-install/simple\n")
    write(world / "home/.pip/pip.conf", f"[install]\nindex-url = {DOWN}/legacy/simple\n")
    write(world / "venv/pip.conf", f"[global]\nextra-index-url =\n    {DOWN}/site-a/\n    {DOWN}/site-b/\n")

    mine = indexes.from_pip(Environment(python(world)))

    assert list(mine.urls) == pips_indexes(world)
    assert mine.urls == (f"{DOWN}/user-install/simple", f"{DOWN}/site-a/", f"{DOWN}/site-b/")
    assert pipconfig.cache_dir(Environment(python(world)).prefix()[0]) == pips_cache(world) == world / "cache/pip"


def test_variables_and_pip_config_file_win_and_any_no_cache_dir_turns_the_cache_off(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(world / "config/pip/pip.conf", f"[install]\nindex-url = {DOWN}/user/simple\n")  # skipped: see below
    named = write(world / "named.conf", f"[global]\nindex-url = {DOWN}/named/simple\ncache-dir = ~/named-cache\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(named))
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", f"{DOWN}/var-a/ {DOWN}/var-b/")
    prefix = Environment(python(world)).prefix()[0]

    mine = indexes.from_pip(Environment(python(world)))

    assert list(mine.urls) == pips_indexes(world) == [f"{DOWN}/named/simple", f"{DOWN}/var-a/", f"{DOWN}/var-b/"]
    assert pipconfig.cache_dir(prefix) == pips_cache(world) == world / "home/named-cache"
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "false")  # pip: off, whatever the value says
    assert pipconfig.cache_dir(prefix) is pips_cache(world) is None


def test_pip_config_file_set_to_the_null_device_reads_no_file(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(world / "venv/pip.conf", f"[global]\nindex-url = {DOWN}/site/simple\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", f"{DOWN}/var/simple")

    mine = indexes.from_pip(Environment(python(world)))

    assert list(mine.urls) == pips_indexes(world) == [f"{DOWN}/var/simple"]


def test_credentials_in_a_configured_url_are_kept_for_the_upstream(world: Path) -> None:
    write(world / "venv/pip.conf", "[global]\nindex-url = https://user:s3cret%40x@mirror.example/simple\n")
    assert indexes.from_pip(Environment(python(world))).urls == ("https://user:s3cret%40x@mirror.example/simple",)


def test_a_configuration_file_pip_cannot_read_is_one_line(world: Path) -> None:
    bad = write(world / "venv/pip.conf", "[global]\nindex-url = a\nindex-url = b\n")  # a duplicate: pip refuses it
    with pytest.raises(PipConfigError, match=f"pip's configuration file {re.escape(str(bad))} cannot be read"):
        indexes.from_pip(Environment(python(world)))
