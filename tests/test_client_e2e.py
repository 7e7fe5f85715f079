"""The client end to end: a real venv, real pip, a PEP 503 index and a delta index on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hostile
import pytest
from conftest import module_text
from wheelfactory import build_wheel

from pipdelta.cli import main
from pipdelta.demo.mirror import QuietHandler, Served, write_simple_index
from pipdelta.format.patchfile import VERSION
from pipdelta.index.model import DeltaEntry, ProjectIndex, WheelEntry
from pipdelta.make.maker import make_patch
from pipdelta.server.app import IndexApp
from pipdelta.server.catalog import StaticCatalog
from pipdelta.server.run import running
from pipdelta.server.stats import Stats

ALPHA_10 = {f"alpha/mod{i}.py": module_text(i) for i in range(16)}
ALPHA_11 = {**ALPHA_10, "alpha/mod3.py": module_text(103), "alpha/new.py": b"NEW = 1\n"}
ALPHA_12 = {**ALPHA_11, "alpha/mod7.py": module_text(107)}
BETA_10 = {f"beta/part{i}.py": module_text(50 + i) for i in range(6)}
BETA_11 = {**BETA_10, "beta/part2.py": module_text(150)}


class MirrorHandler(QuietHandler):
    """The primary index; it counts the wheels it sends."""

    def do_GET(self) -> None:
        if self.path.endswith(".whl"):
            self.server.wheel_requests += 1  # type: ignore[attr-defined]
        super().do_GET()


class DeltaHandler(QuietHandler):
    """The static delta index, with the faults a real network and a bad index bring on demand."""

    def do_GET(self) -> None:
        mode = self.server.mode  # type: ignore[attr-defined]
        if mode == "lie" or (mode or "").startswith("hostile"):
            self.path = f"/{mode}{self.path}"
        if mode == "nested" and self.path.endswith("deltas.json"):
            body = b"[" * 100_000  # once a RecursionError traceback
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.endswith(".pdelta"):
            self.server.patch_requests += 1  # type: ignore[attr-defined]
            if mode == "500":
                self.send_error(500)
                return
            if mode == "slow":
                time.sleep(2)  # past the client's timeout (set to 0.5 s by the test)
            if mode in ("truncate", "corrupt"):
                data = Path(self.translate_path(self.path)).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if mode == "truncate":  # the connection drops mid-body
                    self.wfile.write(data[: len(data) // 2])
                    self.close_connection = True
                else:
                    self.wfile.write(data[:-64] + bytes(64))
                return
        super().do_GET()


@dataclass
class World:
    wheels: dict[str, Path]
    simple: Served
    deltas: Served
    template: Path
    index: Path

    def reset(self) -> None:
        self.simple.server.wheel_requests = 0  # type: ignore[attr-defined]
        self.deltas.server.mode = None  # type: ignore[attr-defined]
        self.deltas.server.patch_requests = 0  # type: ignore[attr-defined]


def _index(root: Path, name: str, wheels: list[Path], pairs: list[tuple[Path, Path]]) -> None:
    """A static delta index folder for ``name``, as docs/INDEX.md lays it out."""
    folder = root / name
    (folder / "patches").mkdir(parents=True)
    entries = []
    for old, new in pairs:
        patch = folder / "patches" / f"{old.stem}--{new.stem.split('-')[1]}.pdelta"
        report = make_patch(old, new, patch)
        entries.append(
            DeltaEntry(_entry(old), _entry(new), f"patches/{patch.name}", report.patch_size, _sha(patch), VERSION, ())
        )
    document = ProjectIndex(name, tuple(_entry(w) for w in wheels), tuple(entries)).to_json()  # type: ignore[arg-type]
    (folder / "deltas.json").write_text(json.dumps(document))


def _entry(path: Path) -> WheelEntry:
    return WheelEntry(path.name, _sha(path), path.stat().st_size)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pip_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the machine's pip configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PIPDELTA_"))}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **(extra or {})}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("world")
    built = base / "built"
    built.mkdir()
    wheels = {
        "alpha-1.0": build_wheel(built, "alpha", "1.0", ALPHA_10),
        "alpha-1.1": build_wheel(built, "alpha", "1.1", ALPHA_11),
        "alpha-1.2": build_wheel(built, "alpha", "1.2", ALPHA_12),
        "beta-1.0": build_wheel(built, "beta", "1.0", BETA_10),
        "beta-1.1": build_wheel(built, "beta", "1.1", BETA_11),
        "gamma-1.0": build_wheel(built, "gamma", "1.0", {"gamma/__init__.py": b"G = 1\n"}),
    }
    write_simple_index(wheels.values(), base / "mirror")
    index = base / "deltas"
    alpha = [wheels["alpha-1.0"], wheels["alpha-1.1"], wheels["alpha-1.2"]]
    _index(index, "alpha", alpha, [(alpha[0], alpha[1]), (alpha[1], alpha[2])])
    _index(index, "beta", [wheels["beta-1.0"], wheels["beta-1.1"]], [(wheels["beta-1.0"], wheels["beta-1.1"])])
    # A lying index: its alpha 1.1 is another build than the mirror's, but it claims the mirror's hash.
    impostor = build_wheel(base, "alpha", "1.1", {**ALPHA_11, "alpha/new.py": b"NEW = 2\n"})
    _index(index / "lie", "alpha", alpha, [(alpha[0], impostor)])
    lie = json.loads((index / "lie/alpha/deltas.json").read_text())
    lie["deltas"][0]["to"] = _entry(wheels["alpha-1.1"]).to_json()
    (index / "lie/alpha/deltas.json").write_text(json.dumps(lie))

    _hostile_indexes(index, base)
    simple = Served(base / "mirror", MirrorHandler)
    deltas = Served(index, DeltaHandler)
    w = World(wheels, simple, deltas, base / "template", index)
    w.reset()
    template = w.template
    subprocess.run([sys.executable, "-m", "venv", str(template)], check=True)
    subprocess.run(
        [
            template / "bin/python",
            "-m",
            "pip",
            "install",
            "-q",
            "--no-cache-dir",
            "--index-url",
            f"{simple.url}/simple",
            "alpha==1.0",
            "beta==1.0",
        ],
        check=True,
        env=pip_env(),
    )
    yield w
    simple.close()
    deltas.close()


HOSTILE = {
    # The chain's first step writes its wheel outside any folder of pipdelta's, with valid bytes and hashes.
    "hostile-absolute": lambda patch, base: hostile.named(patch, str(base / "ESCAPED-abs.sh")),
    "hostile-relative": lambda patch, base: hostile.named(patch, "../../../ESCAPED-rel.sh"),
    # 33 KB that once took 4.2 GB.
    "hostile-bomb": lambda patch, base: hostile.zstd_bomb(patch),
}


def _hostile_indexes(index: Path, base: Path) -> None:
    """Copies of the delta index whose patches (the first of each path) an attacker rewrote, pins updated."""
    for mode, craft in HOSTILE.items():
        shutil.copytree(index, index / mode, ignore=shutil.ignore_patterns("lie", "hostile*"))
        for document in (index / mode).glob("*/deltas.json"):
            project = json.loads(document.read_text())
            first = project["deltas"][0]
            patch = document.parent / first["url"]
            patch.write_bytes(craft(patch.read_bytes(), base))
            first.update(size=patch.stat().st_size, sha256=_sha(patch))
            first["to"]["filename"] = hostile.split(patch.read_bytes())[0]["new"]["filename"]
            document.write_text(json.dumps(project))


@pytest.fixture
def venv(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the template venv (alpha 1.0, beta 1.0) and an environment pip cannot escape from."""
    world.reset()
    return machine_copy(world.template, world.simple.url, tmp_path, monkeypatch)


def machine_copy(template: Path, simple: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of ``template`` in ``tmp_path``; pip and pipdelta see only ``simple`` and folders of ``tmp_path``."""
    target = tmp_path / "venv"
    shutil.copytree(template, target, symlinks=True)
    for key in list(os.environ):
        if key.startswith(("PIP_", "PIPDELTA_")):
            monkeypatch.delenv(key)
    for key, value in pip_env(
        {
            "PIP_INDEX_URL": f"{simple}/simple",
            "PIP_NO_CACHE_DIR": "1",
            "PIPDELTA_CACHE_DIR": str(tmp_path / "pdcache"),
            "PIPDELTA_CONFIG": str(tmp_path / "absent.toml"),
        }
    ).items():
        monkeypatch.setenv(key, value)
    return target / "bin" / "python"


def upgrade(python: Path, url: str, *args: str, command: str = "upgrade") -> dict:
    out = python.parent.parent.parent / "report.json"
    code = main([command, *args, "--delta-index", url, "--python", str(python), "--json", str(out), "-q"])
    assert code == 0
    return {p["name"]: p for p in json.loads(out.read_text())["packages"]}


def installed_version(python: Path, name: str) -> str:
    code = f"from importlib.metadata import version; print(version({name!r}))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def assert_installed(python: Path, wheel: Path) -> None:
    """Installed exactly from ``wheel``: every file it holds is on disk with its content, and pip is happy."""
    name, version = wheel.name.split("-")[:2]
    assert installed_version(python, name) == version
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if not member.endswith("RECORD"):
                assert (site / member).read_bytes() == archive.read(member), member
    subprocess.run([python, "-m", "pip", "check"], check=True, capture_output=True, env=pip_env())


def test_upgrade_downloads_a_patch_instead_of_the_wheel(world: World, venv: Path) -> None:
    report = upgrade(venv, world.deltas.url, "alpha==1.1")
    assert_installed(venv, world.wheels["alpha-1.1"])
    alpha = report["alpha"]
    assert alpha["method"] == "delta" and alpha["source"] == "installed files" and alpha["old"] == "1.0"
    assert alpha["full_size"] == world.wheels["alpha-1.1"].stat().st_size
    assert 0 < alpha["downloaded"] < alpha["full_size"] / 10
    assert world.deltas.server.patch_requests == 1  # type: ignore[attr-defined]
    assert world.simple.server.wheel_requests == 0  # type: ignore[attr-defined]  # pip read METADATA only
    # The rebuilt wheel is kept: the next patch can start from it, with no engine involved.
    cached = list(Path(os.environ["PIPDELTA_CACHE_DIR"]).glob("wheels/*/alpha-1.1-*.whl"))
    assert [p.read_bytes() for p in cached] == [world.wheels["alpha-1.1"].read_bytes()]


@pytest.mark.parametrize(
    ("mode", "reason", "fetched"),
    [
        ("down", "delta index unusable", 0),
        ("nested", "not a valid delta file", 0),
        ("500", "patch download failed", 3),  # the first try and two retries
        ("truncate", "patch download failed", 3),
        ("slow", "timed out", 3),
        ("corrupt", "does not have the sha256 the delta index pins", 1),
        ("lie", "with another sha256 than expected", 1),
        ("edited", "was modified since alpha 1.0 was installed", 0),
        ("deadline", "past the deadline", None),
    ],
)
def test_every_failure_falls_back_to_the_verified_full_wheel(
    world: World, venv: Path, capsys: pytest.CaptureFixture[str], mode: str, reason: str, fetched: int | None
) -> None:
    url = world.deltas.url
    if mode == "down":
        url = world.deltas.url.rsplit(":", 1)[0] + ":9"  # discard port: nothing listens there
    elif mode == "edited":
        site = next(venv.parent.parent.glob("lib/python*/site-packages"))
        (site / "alpha/mod5.py").write_text("# edited by hand\n")
    else:
        world.deltas.server.mode = mode  # type: ignore[attr-defined]
    config = "timeout = 0.5\n"
    if mode == "deadline":  # the patch comes slowly but in time for HTTP: the wheel request does not wait for it
        world.deltas.server.mode, config = "slow", "timeout = 5.0\ndeadline = 0.3\n"  # type: ignore[attr-defined]
    Path(os.environ["PIPDELTA_CONFIG"]).write_text(config)
    alpha = upgrade(venv, url, "alpha==1.1")["alpha"]
    assert_installed(venv, world.wheels["alpha-1.1"])
    assert alpha["method"] == "full" and reason in alpha["reason"]
    assert alpha["full_size"] is None or alpha["downloaded"] >= alpha["full_size"]
    if fetched is not None:
        assert world.deltas.server.patch_requests == fetched  # type: ignore[attr-defined]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and reason in warnings[0]
    assert world.simple.server.wheel_requests == 1  # type: ignore[attr-defined]  # streamed through, once
    # The upstream's file is kept, verified: the old version of the next upgrade.
    kept = list(Path(os.environ["PIPDELTA_CACHE_DIR"]).glob("wheels/*/alpha-1.1-*.whl"))
    assert [p.read_bytes() for p in kept] == [world.wheels["alpha-1.1"].read_bytes()]


@pytest.mark.parametrize("mode", sorted(HOSTILE))
def test_a_hostile_delta_index_writes_nothing_and_installs_the_right_wheels(
    world: World, venv: Path, tmp_path: Path, mode: str
) -> None:
    """Crafted patches in a chain (alpha) and a single delta (beta): pip still gets exactly the mirror's wheels,
    and nothing is written outside pipdelta's own temporary and cache folders."""
    base = world.template.parent
    outside = {p for p in (*base.rglob("*"), *tmp_path.rglob("*")) if "venv" not in p.parts}
    world.deltas.server.mode = mode  # type: ignore[attr-defined]
    code = main(["upgrade", "alpha==1.2", "beta==1.1", "--delta-index", world.deltas.url, "--python", str(venv), "-q"])
    assert code == 0
    for wheel in ("alpha-1.2", "beta-1.1"):
        assert_installed(venv, world.wheels[wheel])
    cache = Path(os.environ["PIPDELTA_CACHE_DIR"])
    added = {p for p in (*base.rglob("*"), *tmp_path.rglob("*")) if "venv" not in p.parts} - outside
    assert {p for p in added if not p.is_relative_to(cache)} == set()
    assert not list(base.parent.rglob("ESCAPED*"))
    for folder in {Path("/"), Path(tempfile.gettempdir()), Path.cwd(), Path.cwd().parent}:
        assert not list(folder.glob("ESCAPED*")), folder


def test_requirements_file_with_a_chain_a_delta_and_a_new_package(world: World, venv: Path) -> None:
    requirements = venv.parent.parent.parent / "requirements.txt"
    requirements.write_text("alpha==1.2\nbeta==1.1\ngamma==1.0\n")
    report = upgrade(venv, world.deltas.url, "-r", str(requirements), command="install")
    for wheel in ("alpha-1.2", "beta-1.1", "gamma-1.0"):
        assert_installed(venv, world.wheels[wheel])
    assert report["alpha"]["method"] == "chain" and report["alpha"]["old"] == "1.0"
    assert report["beta"]["method"] == "delta"
    assert report["gamma"] == {**report["gamma"], "method": "full", "reason": "no older version here"}
    assert world.deltas.server.patch_requests == 3  # type: ignore[attr-defined]
    assert world.simple.server.wheel_requests == 1  # type: ignore[attr-defined]  # gamma


def test_a_cached_old_wheel_serves_a_fresh_environment(world: World, venv: Path) -> None:
    """CI with a restored cache: nothing installed, but the old wheel is in pipdelta's cache."""
    old = world.wheels["alpha-1.0"]
    target = Path(os.environ["PIPDELTA_CACHE_DIR"]) / "wheels" / _sha(old) / old.name
    target.parent.mkdir(parents=True)
    shutil.copy(old, target)

    subprocess.run([venv, "-m", "pip", "uninstall", "-q", "-y", "alpha"], check=True, env=pip_env())
    alpha = upgrade(venv, world.deltas.url, "alpha==1.1", command="install")["alpha"]
    assert_installed(venv, world.wheels["alpha-1.1"])
    assert alpha["method"] == "delta" and alpha["source"] == "cached wheel" and alpha["old"] == "1.0"


@pytest.mark.parametrize("pip", ["venv", "pipdelta"], ids=["http-cache", "http-v2-cache"])
def test_pips_http_cache_is_a_source_when_installed_files_were_edited(
    world: World, venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pip: str
) -> None:
    """Both of pip's cache formats: the venv's pip 23 writes ``http/``, pipdelta's pip >= 25.3 ``http-v2/``."""
    monkeypatch.delenv("PIP_NO_CACHE_DIR")
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pipcache"))
    monkeypatch.setenv("PIP_TRUSTED_HOST", "127.0.0.1")  # pip caches plain-HTTP answers of trusted hosts only
    # pip downloads (and caches) alpha 1.0, as it did when it first installed it.
    runner = [venv, "-m", "pip"] if pip == "venv" else [sys.executable, "-m", "pip", "--python", venv]
    subprocess.run([*runner, "download", "-q", "--no-deps", "-d", str(tmp_path / "dl"), "alpha==1.0"], check=True)
    assert any((tmp_path / "pipcache").glob("http-v2" if pip == "pipdelta" else "http"))
    site = next(venv.parent.parent.glob("lib/python*/site-packages"))
    (site / "alpha/mod5.py").write_text("# edited by hand\n")
    alpha = upgrade(venv, world.deltas.url, "alpha==1.1")["alpha"]
    assert_installed(venv, world.wheels["alpha-1.1"])
    assert alpha["method"] == "delta" and alpha["source"] == "pip's cache"


def test_dry_run_downloads_and_installs_nothing(world: World, venv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["upgrade", "alpha==1.2", "--delta-index", world.deltas.url, "--python", str(venv), "--dry-run"])
    assert code == 0
    assert installed_version(venv, "alpha") == "1.0"
    assert world.deltas.server.patch_requests == 0  # type: ignore[attr-defined]
    out = capsys.readouterr().out
    assert "dry run" in out and "alpha" in out and "chain" in out


def test_the_upgrade_query_of_pipdelta_serve(world: World, venv: Path) -> None:
    """Against the real server: its query answers the path (a chain here), the patches come from it too."""
    stats = Stats()
    app = IndexApp(StaticCatalog(world.index), stats=stats)
    with running(app) as url:
        report = upgrade(venv, url, "alpha==1.2", "beta==1.1")
    for wheel in ("alpha-1.2", "beta-1.1"):
        assert_installed(venv, world.wheels[wheel])
    assert report["alpha"]["method"] == "chain" and report["beta"]["method"] == "delta"
    counters = stats.snapshot()
    assert counters["queries"] == 2 and counters["patches_served"] == 3  # one query per project, at once
    assert world.simple.server.wheel_requests == 0  # type: ignore[attr-defined]


def test_nothing_to_upgrade_runs_pip_once(world: World, venv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["upgrade", "alpha==1.0", "--delta-index", world.deltas.url, "--python", str(venv)]) == 0
    assert capsys.readouterr().out.strip() == "Nothing to do: pip would install nothing."
    assert installed_version(venv, "alpha") == "1.0"
