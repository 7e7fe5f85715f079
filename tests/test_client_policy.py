"""The server's policy on a real environment: ``pipdelta outdated`` and ``pipdelta upgrade --all`` end to end."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import module_text
from test_client_e2e import MirrorHandler, assert_installed, installed_version, machine_copy, pip_env
from wheelfactory import build_wheel

from pipdelta.cli import main
from pipdelta.demo.mirror import QuietHandler, Served, write_simple_index
from pipdelta.index.builder import build_index
from pipdelta.index.policy import Policy, PolicyFile
from pipdelta.server.app import IndexApp
from pipdelta.server.catalog import StaticCatalog
from pipdelta.server.logs import JsonLog
from pipdelta.server.run import running
from pipdelta.server.stats import Stats

# beta 1.0 needs alpha below 1.2: a policy that moves alpha to 1.2 while beta stays must be refused by pip.
RELEASES = {
    "alpha": ("1.0", "1.1", "1.2"),
    "beta": ("1.0", "1.1"),
    "gamma": ("1.0", "1.1", "1.2"),
    "omega": ("1.0", "1.1"),
    "zeta": ("1.0",),
}
REQUIRES = {("beta", "1.0"): ("alpha<1.2",)}
INSTALLED = {name: "1.0" for name in RELEASES}

# One project per kind of rule: a maximum, a hold, a pin, and the default (latest) for omega and zeta.
POLICY = """
[default]
policy = "latest"

[projects.alpha]
max = "1.1.*"

[projects.beta]
hold = true

[projects.gamma]
pin = "1.1"
"""


@dataclass
class Fleet:
    wheels: dict[str, Path]
    index: Path
    simple: Served
    template: Path

    @contextmanager
    def server(self, policy: str | Path) -> Iterator[tuple[str, Stats]]:
        """``pipdelta serve`` with the policy in ``policy`` (a ``--targets`` file when a Path)."""
        stats = Stats()
        rules = PolicyFile(policy) if isinstance(policy, Path) else Policy.parse(policy)
        app = IndexApp(StaticCatalog(self.index), rules, stats=stats, log=JsonLog(io.StringIO()))
        with running(app) as url:
            yield url, stats


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("fleet")
    built = base / "wheels"
    built.mkdir()
    wheels = {}
    for seed, (name, versions) in enumerate(RELEASES.items()):
        for step, version in enumerate(versions):
            files = {f"{name}/mod{i}.py": module_text(100 * seed + i) for i in range(8)}
            files[f"{name}/mod1.py"] = module_text(1000 * seed + step)
            requires = REQUIRES.get((name, version), ())
            wheels[f"{name}-{version}"] = build_wheel(built, name, version, files, requires=requires)
    # On the primary index but not in the delta index.
    outsider = build_wheel(base, "outsider", "1.0", {"outsider/__init__.py": b"X = 1\n"})
    write_simple_index([*wheels.values(), outsider], base / "mirror")
    build_index(built, base / "deltas", keep=3, jobs=1)
    simple = Served(base / "mirror", MirrorHandler)
    simple.server.wheel_requests = 0  # type: ignore[attr-defined]
    template = base / "template"
    subprocess.run([sys.executable, "-m", "venv", str(template)], check=True)
    pins = [f"{name}=={version}" for name, version in {**INSTALLED, "outsider": "1.0"}.items()]
    pip = [template / "bin/python", "-m", "pip", "install", "-q", "--no-cache-dir"]
    subprocess.run(
        [*pip, "--index-url", f"{simple.url}/simple", *pins],
        check=True,
        env=pip_env(),
    )
    yield Fleet(wheels, base / "deltas", simple, template)
    simple.close()


@pytest.fixture
def machine(fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the fleet's environment (every project at 1.0), pip and pipdelta isolated."""
    fleet.simple.server.wheel_requests = 0  # type: ignore[attr-defined]
    python = machine_copy(fleet.template, fleet.simple.url, tmp_path, monkeypatch)
    monkeypatch.setenv("COLUMNS", "160")  # the table's rows unwrapped
    return python


def outdated(python: Path, url: str) -> dict[str, dict[str, object]]:
    out = python.parent.parent.parent / "outdated.json"
    assert main(["outdated", "--delta-index", url, "--python", str(python), "--json", str(out)]) == 0
    return {p["name"]: p for p in json.loads(out.read_text())["projects"]}


def versions(python: Path) -> dict[str, str]:
    return {name: installed_version(python, name) for name in RELEASES}


def test_outdated_shows_each_rule_of_the_servers_policy(
    fleet: Fleet, machine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fleet.server(POLICY) as (url, stats):
        answers = outdated(machine, url)
    assert stats.snapshot()["queries"] == 1
    summary = {name: (a["status"], a["target"]) for name, a in answers.items() if name in RELEASES}
    assert summary == {
        "alpha": ("upgrade", "1.1"),  # max 1.1.*: not 1.2
        "beta": ("held", None),
        "gamma": ("upgrade", "1.1"),  # pinned
        "omega": ("upgrade", "1.1"),  # latest
        "zeta": ("up-to-date", None),
    }
    alpha = answers["alpha"]
    assert alpha["path"] == "delta" and 0 < alpha["bytes"] < alpha["full_size"] / 2  # type: ignore[operator]
    assert answers["outsider"]["status"] == "unknown"
    out = capsys.readouterr().out
    for words in ("upgrade to 1.1", "held", "up to date", "unknown to the index", "under the policy of"):
        assert words in out, out


def test_upgrade_all_installs_exactly_the_policys_targets_with_patches(
    fleet: Fleet, machine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = machine.parent.parent.parent / "report.json"
    with fleet.server(POLICY) as (url, stats):
        code = main(["upgrade", "--all", "--delta-index", url, "--python", str(machine), "--json", str(report)])
    assert code == 0
    assert versions(machine) == {"alpha": "1.1", "beta": "1.0", "gamma": "1.1", "omega": "1.1", "zeta": "1.0"}
    for wheel in ("alpha-1.1", "gamma-1.1", "omega-1.1", "beta-1.0", "zeta-1.0"):
        assert_installed(machine, fleet.wheels[wheel])
    packages = {p["name"]: p for p in json.loads(report.read_text())["packages"]}
    assert {name: p["method"] for name, p in packages.items()} == {"alpha": "delta", "gamma": "delta", "omega": "delta"}
    assert fleet.simple.server.wheel_requests == 0  # type: ignore[attr-defined]
    assert stats.snapshot()["queries"] == 1 + 3  # the policy's targets, then the patches of each wheel pip asks for
    assert "left alone: beta 1.0 (held)" in capsys.readouterr().out


def test_upgrade_named_projects_to_the_servers_targets(fleet: Fleet, machine: Path) -> None:
    Path(os.environ["PIPDELTA_CONFIG"]).write_text('policy = "server"\n')  # instead of --policy server
    with fleet.server(POLICY) as (url, _):
        assert main(["upgrade", "alpha", "beta", "--delta-index", url, "--python", str(machine), "-q"]) == 0
    assert versions(machine) == {**INSTALLED, "alpha": "1.1"}  # not 1.2, as plain pip would; beta held


def test_a_static_index_answers_with_the_latest_versions(
    fleet: Fleet, machine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Served(fleet.index, QuietHandler) as static:
        answers = outdated(machine, static.url)
        assert "no server policy applied" in capsys.readouterr().out
        targets = {name: answers[name]["target"] for name in RELEASES}
        assert targets == {"alpha": "1.2", "beta": "1.1", "gamma": "1.2", "omega": "1.1", "zeta": None}
        assert answers["alpha"]["path"] in ("delta", "chain")
        assert main(["upgrade", "--all", "--delta-index", static.url, "--python", str(machine), "-q"]) == 0
    assert versions(machine) == {"alpha": "1.2", "beta": "1.1", "gamma": "1.2", "omega": "1.1", "zeta": "1.0"}


def test_a_policy_change_is_followed_and_a_broken_dependency_installs_nothing(
    fleet: Fleet, machine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text(POLICY)
    with fleet.server(targets) as (url, _):

        def upgrade_all(policy: str) -> int:
            targets.write_text(policy)  # edited while the server runs: read again at the next query
            return main(["upgrade", "--all", "--delta-index", url, "--python", str(machine), "-q"])

        assert upgrade_all(POLICY) == 0
        after_first = {"alpha": "1.1", "beta": "1.0", "gamma": "1.1", "omega": "1.1", "zeta": "1.0"}
        assert versions(machine) == after_first
        # alpha may now go to 1.2, but held beta 1.0 needs alpha < 1.2: pip refuses, nothing is installed.
        assert upgrade_all(POLICY.replace('"1.1.*"', '"1.2"').replace('pin = "1.1"', 'pin = "1.2"')) == 1
        assert "conflicting dependencies" in capsys.readouterr().err
        assert versions(machine) == after_first
        # The hold is lifted: beta 1.1 comes with alpha 1.2, and the pin takes gamma back to 1.0.
        lifted = POLICY.replace("hold = true", 'max = "1.1"').replace('pin = "1.1"', 'pin = "1.0"')
        assert upgrade_all(lifted.replace('"1.1.*"', '"1.2"')) == 0
    assert versions(machine) == {"alpha": "1.2", "beta": "1.1", "gamma": "1.0", "omega": "1.1", "zeta": "1.0"}
