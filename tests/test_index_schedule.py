"""The job scheduler keeps the jobs in flight within their slots and memory budget (``--jobs``, ``--memory``)."""

from __future__ import annotations

import argparse
import concurrent.futures
import threading
import time

import pytest

from pipdelta.commands.index import size
from pipdelta.index.schedule import Scheduler


def test_memory_budget_and_slots_bound_what_runs_at_once() -> None:
    lock = threading.Lock()
    running: list[int] = []
    peaks: list[tuple[int, int]] = []

    def job(size: int) -> int:
        with lock:
            running.append(size)
            peaks.append((len(running), sum(running)))
        time.sleep(0.02)
        with lock:
            running.remove(size)
        return size

    sizes = [9, 5, 4, 3, 3, 2, 1, 1]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        scheduler: Scheduler[int, int] = Scheduler(pool, slots=3, budget=10)
        done = [future.result() for _, future in scheduler.run(sizes, lambda s: (job, (s,)), lambda s: s)]
    assert sorted(done) == sorted(sizes)
    assert max(count for count, _ in peaks) <= 3
    assert max(total for _, total in peaks) <= 10


def test_a_job_over_the_budget_still_runs_alone() -> None:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        scheduler: Scheduler[int, int] = Scheduler(pool, slots=2, budget=4)
        done = [f.result() for _, f in scheduler.run([10, 3], lambda s: (abs, (s,)), lambda s: s)]
    assert sorted(done) == [3, 10]


def test_memory_option_sizes() -> None:
    assert (size("8G"), size("512M"), size("1.5GiB"), size("4096")) == (8 << 30, 512 << 20, 3 << 29, 4096)
    with pytest.raises(argparse.ArgumentTypeError, match="not a size"):
        size("lots")
