"""The index publishes each patch's member bytes by recipe; a client weighs patch + ranges before it downloads."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import module_text
from packaging.utils import canonicalize_name
from packaging.version import Version
from rangeserver import RangeServer
from rangeserver import serving as serving_ranges
from wheelfactory import build_wheel
from zlibng import zlibng_client

from pipdelta import WheelSource, apply_patch
from pipdelta.client.deltaindex import DeltaIndex, Goal, Offer, Start
from pipdelta.client.http import Http
from pipdelta.client.ranges import RangeClient
from pipdelta.demo.mirror import Served
from pipdelta.format.patchfile import read_patch
from pipdelta.index.builder import build_index
from pipdelta.index.members import OLD_WHEEL, Members
from pipdelta.index.model import DeltaEntry, WheelEntry, cheapest_path
from pipdelta.server.app import IndexApp
from pipdelta.server.catalog import StaticCatalog
from pipdelta.server.logs import JsonLog
from pipdelta.server.run import running
from pipdelta.server.stats import Stats

NAME = canonicalize_name("heavy")
# Large enough for zlib-ng's output to differ from classic zlib's. 1.1 changes one module of twelve; 1.2 changes
# a line in each: a small patch, but every member is deflated anew.
OLD = {f"heavy/mod{i}.py": module_text(i, 1500) for i in range(12)}
NEW = {**OLD, "heavy/mod3.py": module_text(103, 1500)}
TOUCHED = {name: text.replace(b"def function_7(", b"def function_7b(", 1) for name, text in NEW.items()}
INSTALLED = Start(NAME, Version("1.0"), ("py3-none-any",))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("wheels")
    made = [build_wheel(folder, "heavy", f"1.{n}", files) for n, files in enumerate((OLD, NEW, TOUCHED))]
    return made[0], made[1], made[2]


@pytest.fixture(scope="module")
def index(wheels: tuple[Path, Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deltas")
    build_index(wheels[0].parent, out)
    return out


@dataclass(frozen=True)
class Static:
    """A copy of the index folder, to edit, and its URL as static files (no query)."""

    folder: Path
    url: str


@pytest.fixture(scope="module")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Static]:
    """One static file server for the module's copies (each server takes half a second to stop)."""
    folder = tmp_path_factory.mktemp("served")
    with Served(folder) as files:
        yield Static(folder, files.url)


@pytest.fixture
def served(index: Path, file_server: Static) -> Static:
    name = f"copy{len(list(file_server.folder.iterdir()))}"
    shutil.copytree(index, file_server.folder / name)
    return Static(file_server.folder / name, f"{file_server.url}/{name}")


def cached(old: Path) -> Start:
    return Start(NAME, Version("1.0"), (), filename=old.name)


def goal(new: Path) -> Goal:
    return Goal(Version(new.name.split("-")[1]), hashlib.sha256(new.read_bytes()).hexdigest())


def offer(url: str, start: Start, new: Path) -> Offer:
    return DeltaIndex(url, Http()).offers({NAME: start}, {NAME: goal(new)})[NAME]


def published(index: Path) -> DeltaEntry:
    """The delta from 1.0 to 1.1."""
    document = json.loads((index / NAME / "deltas.json").read_text())
    return next(
        DeltaEntry.from_json(d) for d in document["deltas"] if d["url"].endswith("1.0-py3-none-any--1.1.pdelta")
    )


def test_the_builder_publishes_what_each_recipe_remakes_as_the_patch_header_says(index: Path) -> None:
    delta = published(index)
    header, _ = read_patch((index / NAME / delta.url).read_bytes())
    assert delta.members == Members.of(header)
    assert delta.members is not None
    (remade,) = delta.members.remade  # the changed module, METADATA and RECORD
    assert remade[0] == "zlib:6:8:0" and remade[2] == 3
    copied = {key: length for key, length, _ in delta.members.copied}
    assert copied.keys() == {"zlib:6:8:0"} and OLD_WHEEL not in copied
    assert remade[1] + copied["zlib:6:8:0"] < delta.new.size < 2 * (remade[1] + copied["zlib:6:8:0"])


def test_the_content_a_rebuild_deflates_is_published_beside_the_compressed_bytes(
    wheels: tuple[Path, Path, Path], index: Path
) -> None:
    """What a client orders rebuilds and weighs their CPU time by: the remade members' content (here the changed
    module, METADATA and RECORD), and from installed files the copies' too."""
    import zipfile

    delta = published(index)
    assert delta.members is not None and delta.members.content is not None
    remade, copied = delta.members.content
    with zipfile.ZipFile(wheels[1]) as new:
        sizes = {info.filename: info.file_size for info in new.infolist()}
    changed = [n for n in sizes if n == "heavy/mod3.py" or n.endswith(("/METADATA", "/RECORD"))]
    assert remade == sum(sizes[n] for n in changed)
    assert copied == sum(sizes.values()) - remade  # every other member is deflated with zlib
    assert delta.members.work(installed=False) == remade and delta.members.work(installed=True) == remade + copied


@pytest.mark.parametrize("content", [[-1, 5], [1, "2"], [1, 2, 3], "many", [10**12, 0]])
def test_unsound_content_figures_are_ignored_and_the_compressed_bytes_stand_in(content: Any) -> None:
    figures = {"remade": {"zlib:6:8:0": [9000, 3]}, "copied": {"zlib:6:8:0": [1000, 2]}, "content": content}
    members = Members.from_json(figures, 20_000)
    assert members is not None and members.content is None
    assert members.work(installed=False) == 3 * 9000 and members.work(installed=True) == 3 * 10000
    assert Members.from_json({**figures, "content": [30_000, 4_000]}, 20_000) == Members(
        (("zlib:6:8:0", 9000, 3),), (("zlib:6:8:0", 1000, 2),), (0, 0), (30_000, 4_000)
    )


@pytest.mark.parametrize("older", ["no members", "no content"])
def test_a_rebuild_fills_the_figures_of_patches_an_older_builder_published(
    wheels: tuple[Path, Path, Path], index: Path, tmp_path: Path, older: str
) -> None:
    copy = tmp_path / "deltas"
    shutil.copytree(index, copy)
    project = copy / NAME / "deltas.json"
    document = json.loads(project.read_text())
    for delta in document["deltas"]:
        if older == "no members":
            del delta["members"]
        else:
            del delta["members"]["content"]
    project.write_text(json.dumps(document))
    summary = build_index(wheels[0].parent, copy)
    assert (summary.reused, summary.made) == (3, 0)
    assert project.read_bytes() == (index / NAME / "deltas.json").read_bytes()


@pytest.mark.parametrize("query", [True, False], ids=["pipdelta serve", "static"])
@pytest.mark.parametrize("start", ["installed", "cached"])
def test_a_zlibng_client_takes_the_full_wheel_when_patch_and_ranges_cost_more(
    wheels: tuple[Path, Path, Path], served: Static, query: bool, start: str
) -> None:
    """To 1.2 every member is a range here: the wheel is cheaper, and no patch is fetched. To 1.1, the patch."""
    old, new, touched = wheels
    begin = INSTALLED if start == "installed" else cached(old)
    stats = Stats()
    with running(IndexApp(StaticCatalog(served.folder), log=JsonLog(io.StringIO()), stats=stats)) as server:
        url = server if query else served.url
        with zlibng_client():
            full, patch = offer(url, begin, touched), offer(url, begin, new)
            wire = patch.wire() or 0
        classic = offer(url, begin, touched)
    assert full.patches == () and full.full_size == touched.stat().st_size
    assert "cost more than the wheel" in full.reason
    assert len(patch.patches) == 1 and patch.bytes < wire < new.stat().st_size
    assert len(classic.patches) == 1 and classic.wire() == classic.bytes < touched.stat().st_size / 10
    assert stats.snapshot()["patches_served"] == 0


def test_from_installed_files_copied_members_count_too(wheels: tuple[Path, Path, Path], served: Static) -> None:
    url, new = served.url, wheels[1]
    with zlibng_client():
        zlibng = offer(url, INSTALLED, new)
        wires = zlibng.wire(installed=True) or 0, zlibng.wire() or 0
    classic = offer(url, INSTALLED, new)
    assert wires[0] > new.stat().st_size > wires[1]
    assert classic.wire(installed=True) == classic.wire() == classic.bytes


def test_the_estimate_bounds_the_ranges_a_zlibng_client_then_fetches(
    wheels: tuple[Path, Path, Path], served: Static
) -> None:
    old, new, _ = wheels
    with zlibng_client():
        weighed = offer(served.url, cached(old), new)
        server = RangeServer(new.read_bytes())
        with serving_ranges(server) as url:
            fetch = RangeClient(url, size=new.stat().st_size)
            patch = served.folder / NAME / "patches" / weighed.patches[0].url.rsplit("/", 1)[-1]
            rebuilt = apply_patch(patch.read_bytes(), WheelSource(old), served.folder / "out.whl", fetch=fetch)
        ranges = (weighed.wire() or 0) - weighed.bytes
    assert rebuilt.read_bytes() == new.read_bytes()
    assert 0 < fetch.received <= ranges < new.stat().st_size - weighed.bytes


HOSTILE: list[Any] = [
    "zlib:6:8:0",
    [],
    {"remade": []},
    {"remade": {"zlib:6:8:0": [-1, 0]}},
    {"remade": {"zlib:6:8:0": [10, 11]}},  # more members than bytes
    {"remade": {"zlib:6:8:0": [True, 1]}},
    {"remade": {"zlib:6:8:0": [1.5, 1]}},
    {"remade": {"zlib:6:8:0": ["1", 1]}},
    {"remade": {"zlib:6:8:0": [1, 1, 1]}},
    {"remade": {"zlib:6:8:0": [10**400, 1]}},  # past any wheel
    {"remade": {f"zlib:{i}:8:0": [1, 1] for i in range(65)}},  # more names than recipes
    {"remade": {"x" * 129: [1, 1]}},
    {"remade": {"": [1, 1]}},
    {"copied": {"zlib:6:8:0": [1 << 40, 1]}},
    {"fetched": [90000, 1000]},  # 1,000 members do not fit the wheel with their headers
    {"fetched": None},
]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_unsound_figures_are_ignored_as_an_old_client_ignores_them(
    wheels: tuple[Path, Path, Path], served: Static, value: Any
) -> None:
    project = served.folder / NAME / "deltas.json"
    document = json.loads(project.read_text())
    for delta in document["deltas"]:
        delta["members"] = value
    project.write_text(json.dumps(document))
    with zlibng_client():
        taken = offer(served.url, INSTALLED, wheels[2])
    assert len(taken.patches) == 1 and taken.patches[0].members is None and taken.wire() == taken.bytes


def test_recipes_of_a_newer_pipdelta_count_as_ranges_and_unknown_groups_are_left_alone(
    wheels: tuple[Path, Path, Path],
) -> None:
    size = wheels[1].stat().st_size
    members = Members.from_json({"remade": {"zstd:3": [1000, 2]}, "later": {"x": 1}}, size)
    assert members is not None
    assert members.missing(lambda recipe: recipe.startswith("zlib"), installed=False) == (1000, 2)
    both = Members.from_json({"remade": {"zlib:6:8:0+zlib:9:8:0": [500, 1]}}, size)
    assert both is not None
    assert both.missing(lambda recipe: recipe == "zlib:6:8:0", installed=True) == (500, 1)
    assert both.missing(lambda recipe: True, installed=True) == (0, 0)


def test_the_path_choice_counts_ranges_and_needs_none_before_the_last_step() -> None:
    ends = [WheelEntry(f"heavy-1.{n}-py3-none-any.whl", str(n) * 64, 20_000) for n in range(3)]
    heavy, light = Members(remade=(("zlib:6:8:0", 6000, 10),)), Members()

    def delta(old: int, new: int, size: int, members: Members) -> DeltaEntry:
        return DeltaEntry(ends[old], ends[new], f"{old}-{new}-{size}", size, "p" * 64, 2, (), members)

    direct, short, long, last = (
        delta(0, 2, 1000, heavy),
        delta(0, 1, 300, heavy),
        delta(0, 1, 2500, light),
        delta(1, 2, 300, light),
    )

    def extra(patch: DeltaEntry) -> int:  # a machine that re-creates no recipe
        assert patch.members is not None
        return patch.members.ranges_cost(lambda recipe: False, installed=False, per_request=64)

    deltas = [direct, short, long, last]
    assert cheapest_path(deltas, ends[0].key, ends[2].sha256, 20_000) == [short, last]
    assert cheapest_path(deltas, ends[0].key, ends[2].sha256, 20_000, extra=extra) == [long, last]
    assert cheapest_path([direct, short, last], ends[0].key, ends[2].sha256, 20_000, extra=extra) == [direct]
    assert cheapest_path([direct, short, last], ends[0].key, ends[2].sha256, 8_000, extra=extra) is None
