"""The local index's lanes of work: the costliest item waiting goes first, and a closed lane takes no more."""

from __future__ import annotations

import threading

from pipdelta.index.members import OLD_WHEEL, Members
from pipdelta.proxy.lanes import Lane


def test_the_costliest_item_waiting_is_taken_first() -> None:
    started, busy, done, order = threading.Event(), threading.Event(), threading.Event(), []

    def handle(item: str) -> None:
        if item == "first":
            started.set()
            busy.wait(10)  # the one thread is busy while the others arrive
        order.append(item)
        if len(order) == 4:
            done.set()

    lane: Lane[str] = Lane("test", 1, handle)
    lane.put(0, "first", "first")
    assert started.wait(10)
    for cost, item in ((1, "small"), (30, "large"), (5, "middle")):
        lane.put(cost, item, item)
    busy.set()
    assert done.wait(10)
    assert order == ["first", "large", "middle", "small"]
    lane.close()


def test_a_closed_lane_takes_nothing_more() -> None:
    seen: list[int] = []
    lane: Lane[int] = Lane("test", 2, seen.append)
    lane.close()
    lane.put(1, 1, 1)
    threading.Event().wait(0.2)
    assert seen == []


def test_what_a_rebuild_deflates_from_the_figures_an_index_publishes() -> None:
    members = Members(remade=(("zlib:6:8:0", 900, 3),), copied=(("zlib:6:8:0", 50, 2), (OLD_WHEEL, 7, 1)))
    assert members.deflated(installed=False) == 900  # copies come from the old wheel as they are
    assert members.deflated(installed=True) == 950  # from installed files they are deflated too, but not OLD_WHEEL's


def test_an_item_someone_waits_for_runs_at_once_beside_the_others() -> None:
    started, busy, hurried = threading.Event(), threading.Event(), threading.Event()

    def handle(item: str) -> None:
        if item == "long":
            started.set()
            busy.wait(10)
        elif item == "small":
            hurried.set()

    lane: Lane[str] = Lane("test", 1, handle)
    lane.put(9, "long", "long")
    assert started.wait(10)
    lane.put(5, "large", "large")
    lane.put(1, "small", "small")
    lane.hurry("small")  # the one thread is busy: it runs on its own
    assert hurried.wait(10)
    lane.hurry("absent")  # nothing waits under that key: nothing happens
    busy.set()
    lane.close()
