"""Timing helper shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_rate(count: int, run: Callable[[], object], repeats: int = 5) -> float:
    """Items per second of the fastest of `repeats` runs (the one least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best
