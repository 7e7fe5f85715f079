"""Run jobs on any Executor with a bounded number in flight and their memory estimates under a budget."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
# What to submit for a job: the function and its arguments (picklable, for process and remote executors).
Call = tuple[Callable[..., R], tuple[object, ...]]


class Scheduler(Generic[T, R]):
    """Submit the largest jobs first while they fit; a job larger than the budget runs alone."""

    def __init__(self, executor: concurrent.futures.Executor, slots: int, budget: int | None) -> None:
        self.executor = executor
        self.slots = max(1, slots)
        self.budget = budget

    def run(
        self,
        jobs: list[T],
        work: Callable[[T], tuple[Callable[..., R], tuple[object, ...]]],
        memory: Callable[[T], int],
    ) -> Iterator[tuple[T, concurrent.futures.Future[R]]]:
        """Yield each job with its finished future, in the order they finish."""
        pending = sorted(jobs, key=memory, reverse=True)
        running: dict[concurrent.futures.Future[R], T] = {}
        in_use = 0
        while pending or running:
            while pending and len(running) < self.slots:
                fits = next((i for i, job in enumerate(pending) if self._fits(in_use, memory(job))), None)
                if fits is None:
                    if running:
                        break
                    fits = 0  # nothing runs: even an over-budget job may, alone
                job = pending.pop(fits)
                function, args = work(job)
                running[self.executor.submit(function, *args)] = job
                in_use += memory(job)
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                in_use -= memory(job)
                yield job, future

    def _fits(self, in_use: int, need: int) -> bool:
        return self.budget is None or in_use + need <= self.budget
