"""What pipdelta reads of a request before pip does: the projects it names, for the local index to start early."""

from __future__ import annotations

from pathlib import Path

from pipdelta.client.install import Request


def test_the_projects_named_on_the_command_line_and_in_requirements_files(tmp_path: Path) -> None:
    pinned = tmp_path / "requirements.txt"
    pinned.write_text(
        "# uv export\n"
        "--index-url https://mirror.example/simple\n"
        "rich==13.8.0 \\\n"
        "    --hash=sha256:aaaa \\\n"
        "    --hash=sha256:bbbb\n"
        "numpy>=2 ; python_version >= '3.9'  # the arrays\n"
        "-e ./local-project\n"
        "demo @ https://example.invalid/demo-1.0-py3-none-any.whl\n"
        "not a requirement ===\n"
        "-r other.txt\n"
    )
    request = Request(("urllib3==2.2.3", "click"), (pinned, tmp_path / "absent.txt"))
    named = [(r.name, str(r.specifier)) for r in request.named()]
    assert named == [("urllib3", "==2.2.3"), ("click", ""), ("rich", "==13.8.0"), ("numpy", ">=2")]
