"""The timing helpers the benchmark scripts share (run them as ``python benchmarks/x.py``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from threadpoolctl import threadpool_info


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


def blas_kernels() -> str:
    """numpy's BLAS and the kernels it chose for this CPU, e.g. ``openblas 0.3.31 (Haswell
    kernels)``: OpenBLAS picks them at load time, and ``OPENBLAS_CORETYPE`` overrides the choice
    (see docs/benchmarks.md: on some AVX-512 machines the default is the slower AVX2 set)."""
    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl reports)

    found = [i for i in threadpool_info() if i["user_api"] == "blas"]
    return (
        ", ".join(
            f"{i['internal_api']} {i['version']} ({i.get('architecture') or 'unknown'} kernels)"
            for i in found
        )
        or "no BLAS found"
    )
