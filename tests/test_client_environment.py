"""The target environment answers one probe; its distributions are then read here, as its own interpreter sees them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from pipdelta.client.environment import Environment

# What the target interpreter itself says, through importlib.metadata (the first of a name on sys.path counts).
ORACLE = """
import json
from importlib import metadata
out = {}
for dist in metadata.distributions():
    if not any(f.name == "RECORD" and f.parent.name.endswith(".dist-info") for f in dist.files or ()):
        continue
    wheel = (dist.read_text("WHEEL") or "").splitlines()
    out.setdefault(dist.metadata["Name"].lower(), [
        dist.version,
        [line.split(":", 1)[1].strip() for line in wheel if line.startswith("Tag:")],
        ([line.split(":", 1)[1].strip() for line in wheel if line.startswith("Build:")] or [None])[0],
        dist.metadata.get_all("Requires-Dist") or [],
    ])
print(json.dumps(out))
"""


def dist_info(
    folder: Path, name: str, version: str, *, wheel: str = "", requires: str = "", record: bool = True
) -> Path:
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requires}\nA README.\n")
    (info / "WHEEL").write_text(f"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n{wheel}")
    if record:
        (info / "RECORD").write_text(f"{info.name}/METADATA,,\n{info.name}/WHEEL,,\n{info.name}/RECORD,,\n")
    return info


@pytest.fixture
def target(tmp_path: Path) -> tuple[Environment, Path]:
    venv.EnvBuilder(with_pip=False, symlinks=sys.platform != "win32").create(tmp_path / "venv")
    python = tmp_path / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip())
    return Environment(str(python)), site


def test_the_listing_is_what_the_interpreter_itself_finds(target: tuple[Environment, Path], tmp_path: Path) -> None:
    environment, site = target
    dist_info(site, "alpha", "1.0", wheel="Tag: py3-none-any\nBuild: 7\n", requires="Requires-Dist: beta>=2\n")
    dist_info(site, "Beta_Two", "2.0.post1", wheel="Tag: cp311-cp311-linux_x86_64\nTag: cp311-abi3-linux_x86_64\n")
    dist_info(site, "gamma", "3.0", record=False)  # not installed from a wheel: nothing to patch from
    dist_info(site, "delta", "1.0")
    later = tmp_path / "later"
    dist_info(later, "delta", "9.0")  # behind delta 1.0 on sys.path: never imported, never upgraded
    (site / "later.pth").write_text(f"{later}\n")

    mine = environment.installed()

    oracle = json.loads(subprocess.run([environment.python, "-c", ORACLE], capture_output=True, text=True).stdout)
    assert {str(name): [str(d.version), list(d.tags), d.build, list(d.requires)] for name, d in mine.items()} == {
        name.replace("_", "-"): row for name, row in oracle.items()
    }
    assert mine["beta-two"].tags == ("cp311-cp311-linux_x86_64", "cp311-abi3-linux_x86_64")
    assert str(mine["delta"].version) == "1.0" and "gamma" not in mine
    assert environment.prefix() == (Path(os.path.realpath(tmp_path / "venv")), True)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_or_a_device_for_metadata_never_blocks_the_listing(target: tuple[Environment, Path]) -> None:
    environment, site = target
    (dist_info(site, "fifo", "1.0") / "METADATA").unlink()
    os.mkfifo(site / "fifo-1.0.dist-info" / "METADATA")
    (dist_info(site, "zero", "1.0") / "METADATA").unlink()
    (site / "zero-1.0.dist-info" / "METADATA").symlink_to("/dev/zero")
    dist_info(site, "fine", "1.0")

    assert set(environment.installed()) == {"fine"}


def test_an_installed_distribution_is_found_as_its_interpreter_would_find_it(
    target: tuple[Environment, Path],
) -> None:
    """The same scheme (dist-info folder, scripts, data, headers) as the target interpreter's own probe gives,
    with no interpreter started for it."""
    from packaging.utils import canonicalize_name

    from pipdelta.apply.installed import InstalledDistribution

    environment, site = target
    dist_info(site, "alpha", "1.0", wheel="Tag: py3-none-any\n")
    mine = environment.distribution(environment.installed()[canonicalize_name("alpha")])
    theirs = InstalledDistribution.find("alpha", environment.python)
    assert mine == theirs
    assert mine.dist_info == site / "alpha-1.0.dist-info" and mine.path_of("alpha.data/scripts/x").name == "x"
