"""The command line: exact spellings, one-line errors, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import module_text
from wheelfactory import build_wheel

from pipdelta.cli import main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipdelta", *args], capture_output=True, text=True)


def test_diff_apply_info(tmp_path: Path) -> None:
    old = build_wheel(tmp_path, "pkg", "1.0", {"pkg/a.py": module_text(1)})
    new = build_wheel(tmp_path, "pkg", "1.1", {"pkg/a.py": module_text(2)})
    patch, out = tmp_path / "p.pdelta", tmp_path / "out.whl"
    made = run("diff", str(old), str(new), "-o", str(patch))
    assert made.returncode == 0 and "% of pkg-1.1" in made.stdout
    applied = run("apply", str(patch), "--old", str(old), "-o", str(out))
    assert applied.returncode == 0, applied.stderr
    assert out.read_bytes() == new.read_bytes()
    info = run("info", str(patch))
    assert info.returncode == 0 and "pkg-1.0-py3-none-any.whl" in info.stdout and "zlib:6:8:0" in info.stdout
    assert "ok here" in info.stdout


def test_errors_are_one_line_with_exit_code_1(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pdelta"
    junk.write_bytes(b"garbage")
    old = build_wheel(tmp_path, "pkg", "1.0", {"pkg/a.py": b"a"})
    for args in (
        ("apply", str(junk), "--old", str(old), "-o", str(tmp_path / "o.whl")),
        ("apply", str(tmp_path / "missing"), "--old", str(old), "-o", str(tmp_path / "o.whl")),
        ("diff", str(old), str(tmp_path / "missing-2.0-py3-none-any.whl"), "-o", str(tmp_path / "p")),
        ("diff", str(junk), str(old), "-o", str(tmp_path / "p")),
        ("info", str(junk)),
    ):
        result = run(*args)
        assert result.returncode == 1, args
        assert result.stderr.startswith("pipdelta: error: ") and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "o.whl").exists()


def test_usage_errors_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    for args in ([], ["apply", "p"], ["apply", "p", "--old", "a", "--installed", "b", "-o", "x"], ["nope"]):
        try:
            main(args)
        except SystemExit as exit:
            assert exit.code == 2
        else:
            raise AssertionError(f"{args} did not exit")
    assert "usage: pipdelta" in capsys.readouterr().err


def test_engines_self_test_passes_here() -> None:
    result = run("engines")
    assert result.returncode == 0 and "zlib:6:8:0" in result.stdout and "DIFFERS" not in result.stdout


def test_the_command_line_starts_without_the_applier_and_the_maker() -> None:
    """Every command, `--help` too, imports the package: its public names wait until they are used."""
    heavy = "('pipdelta.apply', 'pipdelta.make')"
    code = f"import sys, pipdelta.cli; print([m for m in sys.modules if m.startswith({heavy})])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_every_public_name_resolves() -> None:
    import pipdelta

    assert all(callable(getattr(pipdelta, name)) for name in pipdelta.__all__ if name != "__version__")
