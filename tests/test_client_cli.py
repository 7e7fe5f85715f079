"""The client's command line: exit codes and one-line messages on bad arguments, settings, the cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from wheelfactory import build_wheel

from pipdelta.cli import main
from pipdelta.client import config
from pipdelta.client.cache import Cache, sha256_of


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith(("PIP_", "PIPDELTA_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIPDELTA_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("PIPDELTA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["upgrade"], "give the packages to upgrade, or --all"),
        (["upgrade", "--all", "rich"], "give the packages to upgrade, or --all (not both)"),
        (["upgrade", "--all", "--policy", "pip", "--delta-index", "http://127.0.0.1:9"], "with --policy pip"),
        (["outdated"], "no delta index: pass --delta-index URL"),
        (["upgrade", "rich"], "no delta index: pass --delta-index URL"),
        (["install", "--delta-index", "http://127.0.0.1:9"], "nothing to install"),
        (["install", "-r", "missing.txt", "--delta-index", "http://127.0.0.1:9"], "missing.txt does not exist"),
        (["cache"], "the following arguments are required: ACTION"),
        (["cache", "prune", "--keep", "-1"], "--keep must be 0 or more"),
        (["cache", "prune", "--keep", "many"], "invalid int value"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err and err.strip().splitlines()[-1].startswith(("pipdelta", "usage"))
    assert "Traceback" not in err


def test_outdated_with_the_index_down_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "outdated", "--delta-index", "http://127.0.0.1:9")
    assert code == 1 and err.startswith("pipdelta: error: cannot download http://127.0.0.1:9/query")
    assert err.count("\n") == 1


def test_a_missing_interpreter_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "upgrade", "rich", "--delta-index", "http://127.0.0.1:9", "--python", "/no/python")
    assert code == 1 and err.startswith("pipdelta: error: cannot run /no/python") and err.count("\n") == 1


def test_pips_own_errors_reach_the_user_whole_then_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    code, _, err = run(capsys, "upgrade", "no-such-project-anywhere", "--delta-index", "http://127.0.0.1:9")
    lines = err.strip().splitlines()
    assert code == 1
    # pip's own lines, every one of them, as pip wrote them; then pipdelta's one line.
    assert lines[:-1] == [
        "ERROR: Could not find a version that satisfies the requirement no-such-project-anywhere (from versions: none)",
        "ERROR: No matching distribution found for no-such-project-anywhere",
    ]
    assert lines[-1] == f"pipdelta: error: pip install failed: {lines[0]}"  # pip's first ERROR: says what is wrong


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("index-url = ", "cannot read the config file"),
        ("index_url = 'http://x'", "unknown setting 'index_url'"),
        ("timeout = 'soon'", "'timeout' must be a float"),
    ],
)
def test_a_bad_config_file_is_one_line(
    capsys: pytest.CaptureFixture[str], isolated: Path, text: str, message: str
) -> None:
    (isolated / "config.toml").write_text(text)
    code, _, err = run(capsys, "upgrade", "rich")
    assert code == 1 and message in err and err.count("\n") == 1


def test_settings_precedence(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated / "config.toml").write_text("index-url = 'http://file'\ntimeout = 3\njobs = 0\n")
    assert config.load().index_url == "http://file"
    assert config.load().timeout == 3.0 and config.load().jobs == 1
    monkeypatch.setenv("PIPDELTA_INDEX_URL", "http://env")
    assert config.load().index_url == "http://env"
    assert config.load("http://flag").index_url == "http://flag"
    assert config.load().cache_dir == isolated / "cache"


def test_cache_info_and_prune(capsys: pytest.CaptureFixture[str], isolated: Path) -> None:
    cache = Cache(isolated / "cache")
    for version in ("1.0", "1.1", "1.2"):
        wheel = build_wheel(isolated, "alpha", version, {"alpha/__init__.py": version.encode()})
        cache.add(wheel.name, wheel.read_bytes(), sha256_of(wheel))
    code, out, _ = run(capsys, "cache", "info")
    assert code == 0 and "3 (" in out and "alpha-1.2-py3-none-any.whl" in out
    code, out, _ = run(capsys, "cache", "prune", "--keep", "2")
    assert code == 0 and out.startswith("removed 1 wheels")
    assert sorted(w.path.name for w in cache) == ["alpha-1.1-py3-none-any.whl", "alpha-1.2-py3-none-any.whl"]
    code, out, _ = run(capsys, "cache", "prune", "--keep", "2")
    assert out.strip() == "nothing to prune"


def test_a_damaged_cached_wheel_is_dropped(isolated: Path) -> None:
    cache = Cache(isolated / "cache")
    wheel = build_wheel(isolated, "alpha", "1.0", {"alpha/__init__.py": b""})
    stored = cache.add(wheel.name, wheel.read_bytes(), sha256_of(wheel))
    assert cache.find(sha256_of(wheel)) == stored
    stored.write_bytes(b"not the wheel")
    assert cache.find(sha256_of(wheel)) is None and not stored.exists()


def test_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "upgrade", "--help")
    assert code == 0 and "--delta-index URL" in out and "--python PYTHON" in out
