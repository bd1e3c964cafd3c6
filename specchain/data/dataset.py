"""``SequenceData``: what every generator returns, and the dtype check they share."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from specchain.params import check_float_dtype

IGNORE_INDEX = -100
"""Target value of positions that count for nothing (``sc.losses.cross_entropy``'s default)."""


class SequenceData(NamedTuple):
    """A time-major dataset of N examples.

    Attributes:
        inputs: ``[T, N, F]`` floats (or ``int[T, N]`` token ids).
        targets: per example (``[N]`` labels, ``[N, 1]`` values) or per step (``[T, N]``).
        lengths: ``int64[N]``, the number of real (unpadded) steps of each example.

    ``sc.train.fit(model, data, ...)`` takes it as it is; ``x, y, lengths = data`` unpacks it.
    """

    inputs: np.ndarray
    targets: np.ndarray
    lengths: np.ndarray


def float_dtype(dtype: object) -> np.dtype[np.floating]:
    return check_float_dtype(dtype)
