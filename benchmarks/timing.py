"""The one timing helper the benchmark scripts share (run them as ``python benchmarks/x.py``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(run: Callable[[], object], repeats: int, warm_up: float = 0.0) -> float:
    """Median wall time of ``repeats`` calls of ``run``. With ``warm_up`` > 0, ``run`` first runs
    until that many seconds have passed (at least once): thread pools started, pages faulted in."""
    if warm_up > 0:
        warm_until = time.perf_counter() + warm_up
        run()
        while time.perf_counter() < warm_until:
            run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
