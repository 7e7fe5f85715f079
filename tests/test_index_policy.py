"""The target policy file: what each rule allows, and a clear error for every mistake in the TOML."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from pipdelta.index.policy import Policy, PolicyError, PolicyFile, maximum


@pytest.mark.parametrize(
    ("text", "allowed", "refused"),
    [
        ("2.0.*", ["1.9", "2.0", "2.0.5"], ["2.1", "2.1rc1", "3"]),
        ("2.1", ["2.0", "2.1"], ["2.1.1", "2.2"]),
        ("<2.1", ["2.0.9"], ["2.1", "2.1rc1"]),
        (">=1,<2", ["1.5"], ["0.9", "2.0"]),
    ],
)
def test_max_forms(text: str, allowed: list[str], refused: list[str]) -> None:
    spec = maximum(text)
    assert all(spec.contains(Version(v), prereleases=True) for v in allowed)
    assert not any(spec.contains(Version(v), prereleases=True) for v in refused)


def test_rules_by_normalized_name(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text('[default]\npolicy = "latest"\n[projects.Foo_Bar]\npin = "1.2"\n[projects.b]\nhold = true\n')
    policy = Policy.load(path)
    pinned = policy.rule(canonicalize_name("foo-bar"))
    assert pinned.allows(Version("1.2")) and not pinned.allows(Version("1.3"))
    assert not policy.rule(canonicalize_name("b")).allows(Version("1"))
    assert policy.rule(canonicalize_name("other")).allows(Version("99"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[default", "not valid TOML"),
        ('[default]\npolicy = "oldest"\n', 'must be "latest"'),
        ("[projects.x]\npin = 1\nhold = true\n", "exactly one of"),
        ("[projects.x]\nmaximum = '2'\n", "unknown key(s) maximum"),
        ("[projects.x]\nhold = false\n", "hold must be true"),
        ("[projects.x]\npin = 'one'\n", "not a version"),
        ("[projects.x]\nmax = 'banana'\n", "neither a version"),
        ("projects = 3\n", "must be a table"),
        ("[extra]\n", "unknown key(s) extra"),
    ],
)
def test_mistakes_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Policy.parse(text)


def test_a_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read target policy"):
        Policy.load(tmp_path / "missing.toml")


def test_a_targets_file_is_read_again_when_it_changes_and_a_bad_edit_keeps_the_last_policy(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text("[projects.numpy]\nhold = true\n")
    targets, warnings = PolicyFile(path), []
    numpy = canonicalize_name("numpy")
    assert targets.current(warnings.append).rule(numpy).hold
    path.write_text("[projects.numpy]\npin = '2.0.2'\n")
    assert targets.current(warnings.append).rule(numpy).pin == Version("2.0.2")
    path.write_text("[projects.numpy]\npin = '2.0.2'\nhold = true\n")  # a typo: not a policy
    assert targets.current(warnings.append).rule(numpy).pin == Version("2.0.2")
    assert targets.current(warnings.append).rule(numpy).pin == Version("2.0.2")
    path.unlink()
    assert targets.current(warnings.append).rule(numpy).pin == Version("2.0.2")
    assert len(warnings) == 2 and "exactly one of" in warnings[0] and "previous policy stays" in warnings[0]
    assert "cannot read target policy" in warnings[1]
