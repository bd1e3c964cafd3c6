"""How many threads numpy's BLAS (OpenBLAS, MKL, BLIS) uses: ``sc.set_num_threads(n)``.

A small recurrent model issues thousands of tiny matrix products per epoch. With several BLAS
threads, the workers spin between those products, and when another process keeps the cores busy
they and the busy process take turns: the small model's epoch gets several times slower than on
one thread. Large products, on the other hand, gain from every core. Hence the default:

- ``fit`` trains a model with fewer than ``SMALL_MODEL_PARAMS`` (100,000) parameters on one BLAS
  thread and restores the thread count afterwards; larger models use the BLAS default (all cores).
  Forward and backward calls outside ``fit`` always use the BLAS default.
- ``sc.set_num_threads(n)`` is the user's choice and wins everywhere in the process, ``fit``
  included; ``sc.set_num_threads(None)`` returns to the default above.
- So does an environment variable read by the BLAS library when numpy starts
  (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``BLIS_NUM_THREADS``):
  when one is set, ``fit`` leaves the thread count alone.

Figures (``python benchmarks/threads.py``, ``docs/benchmarks.md``): the demo's classifier
(1,634 parameters) trains an epoch 4 - 8 times faster on one thread than on two on a 2-core
machine, quiet or beside a CPU-burning process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from threadpoolctl import ThreadpoolController

from specchain.chain import SpecChain

SMALL_MODEL_PARAMS = 100_000  # fit trains smaller models on one BLAS thread
THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
)

_controller: ThreadpoolController | None = None
_choice: Any = None  # the threadpoolctl limit of sc.set_num_threads(n), undone by (None)


def set_num_threads(n: int | None) -> None:
    """Use ``n`` threads (an int >= 1) in numpy's BLAS from now on, in this process, ``fit``
    included; ``None`` restores the BLAS library's starting count and ``fit``'s default (one
    thread for models under ``SMALL_MODEL_PARAMS`` parameters).

    Raises:
        ValueError: ``n`` is not ``None`` or a positive int.
    """
    global _choice
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(
            f"set_num_threads expects a positive int (or None for the default), got {n!r}; "
            "for example sc.set_num_threads(1) for small models on a busy machine"
        )
    if _choice is not None:
        _choice.restore_original_limits()
        _choice = None
    if n is not None:
        _choice = _blas().limit(limits=n, user_api="blas")


def get_num_threads() -> int:
    """The number of threads numpy's BLAS uses now (the largest, if several BLAS libraries are
    loaded; 1 when threadpoolctl finds none)."""
    counts = [pool.num_threads for pool in _blas().select(user_api="blas").lib_controllers]
    return max(counts, default=1)


@contextmanager
def fit_threads(model: SpecChain) -> Iterator[None]:
    """The BLAS threads ``fit`` trains ``model`` with: one thread while the block runs for a model
    under ``SMALL_MODEL_PARAMS`` parameters, unless the user chose (``set_num_threads`` or an
    environment variable); the count in force before is restored on exit."""
    chosen = _choice is not None or any(os.environ.get(name) for name in THREAD_VARIABLES)
    if chosen or model.num_params >= SMALL_MODEL_PARAMS:
        yield
        return
    limit = _blas().limit(limits=1, user_api="blas")
    try:
        yield
    finally:
        limit.restore_original_limits()


def _blas() -> ThreadpoolController:
    """One controller per process (it inspects the loaded libraries once: about 1 ms)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller
