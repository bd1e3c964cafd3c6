"""The copy task (Hochreiter & Schmidhuber 1997; in this form Arjovsky et al. 2016).

Token ids: 0 is the blank, ``1..K`` the symbols (``K = num_symbols``), ``K + 1`` the delimiter
("recall now"); ``V = K + 2`` classes in all. Each example has ``T = length + delay + length``
steps::

    input : s_1 .. s_length | blank x (delay - 1) | delimiter | blank x length
    target: blank x (length + delay)                          | s_1 .. s_length

The model reads ``length`` random symbols, waits ``delay`` steps, and after the delimiter must
output the symbols in order. With ``mask_blanks=True`` the targets of the first ``length + delay``
steps are ``IGNORE_INDEX`` (only the recall is scored); otherwise every step is, and a model that
outputs blanks and then guesses uniformly scores ``memoryless_baseline(...)``.

Returns ``SequenceData(inputs, targets int64[T, N], lengths int64[N])`` with one-hot inputs
``[T, N, V]`` (or ids ``int64[T, N]`` with ``one_hot=False``, for an ``Embedding``).
"""

from __future__ import annotations

import math

import numpy as np

from specchain.data.dataset import IGNORE_INDEX, SequenceData, float_dtype
from specchain.params import RngLike, runtime_generator
from specchain.validate import check_int

BLANK = 0


def delimiter(num_symbols: int) -> int:
    """The id of the "recall now" marker: ``num_symbols + 1``."""
    return num_symbols + 1


def copy_task(
    n: int,
    length: int = 10,
    delay: int = 20,
    num_symbols: int = 8,
    rng: RngLike = 0,
    one_hot: bool = True,
    mask_blanks: bool = False,
    dtype: object = np.float32,
) -> SequenceData:
    """``n`` copy-task examples; see the module docstring for the layout.

    Args:
        n: examples.
        length: symbols to remember, >= 1.
        delay: steps from the last symbol to the delimiter (inclusive), >= 1.
        num_symbols: K, the alphabet size, >= 1.
        rng: seed or generator; the same seed gives the same data.
        one_hot: one-hot float inputs ``[T, N, K + 2]``; else ids ``int64[T, N]``.
        mask_blanks: score only the recall steps (others get ``IGNORE_INDEX``).
        dtype: float dtype of one-hot inputs.
    """
    n = check_int("copy_task", "n", n, minimum=0)
    length = check_int("copy_task", "length", length, minimum=1)
    delay = check_int("copy_task", "delay", delay, minimum=1)
    num_symbols = check_int("copy_task", "num_symbols", num_symbols, minimum=1)
    resolved = float_dtype(dtype)
    generator = runtime_generator(rng)
    steps = 2 * length + delay
    symbols = generator.integers(1, num_symbols + 1, size=(length, n), dtype=np.int64)
    ids = np.full((steps, n), BLANK, dtype=np.int64)
    ids[:length] = symbols
    ids[length + delay - 1] = delimiter(num_symbols)
    targets = np.full((steps, n), IGNORE_INDEX if mask_blanks else BLANK, dtype=np.int64)
    targets[length + delay :] = symbols
    inputs = np.eye(num_symbols + 2, dtype=resolved)[ids] if one_hot else ids
    return SequenceData(inputs, targets, np.full(n, steps, dtype=np.int64))


def memoryless_baseline(length: int = 10, delay: int = 20, num_symbols: int = 8) -> float:
    """Mean cross-entropy over all ``T`` steps of predicting blanks, then uniform symbols during
    the recall: ``length * log(K) / T`` (Arjovsky et al. 2016)."""
    length = check_int("memoryless_baseline", "length", length, minimum=1)
    delay = check_int("memoryless_baseline", "delay", delay, minimum=1)
    num_symbols = check_int("memoryless_baseline", "num_symbols", num_symbols, minimum=1)
    return length * math.log(num_symbols) / (2 * length + delay)
