"""How a measuring process times the call it measures: wall and CPU seconds, the garbage
collector's CPU seconds, and the process's peak memory."""

from __future__ import annotations

import gc
import resource
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
Observer = Callable[[Callable[[], T]], tuple[T, dict[str, Any]]]
"""Runs the measured call and returns its result and what was observed (`timed`, or a profiler)."""


class GcClock:
    """CPU seconds spent in the cyclic garbage collector, from gc.callbacks. CPU time of the thread
    that collects, not wall time: on a shared machine a collection can wait for a core, and that
    wait is not the collector's cost."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._started

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(run: Callable[[], T]) -> tuple[T, dict[str, float]]:
    with GcClock() as clock:
        cpu, wall = time.process_time(), time.perf_counter()
        result = run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return result, {"wall_s": wall, "cpu_s": cpu, "gc_s": clock.seconds}
