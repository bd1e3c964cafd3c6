"""The adding problem: remember two marked values of a long sequence and output their sum.

Two variants (``variant=``):

``"paper"`` (default) -- Hochreiter & Schmidhuber (1997), experiment 4. Each step is a pair
(value, marker): values uniform in [-1, 1]; markers 1.0 on exactly two pairs, -1.0 on the first
and the last pair (unless marked), 0.0 elsewhere. The first marked pair (value ``X1``) is one of
the first ten; the second (``X2``) one of the first ``length // 2 - 1`` still unmarked pairs.
Sequence lengths are uniform integers in ``[length, length + length // 10]``; shorter sequences
are padded with zero pairs *at the front*, so every sequence ends on the last step (a many-to-one
model reads ``LastStep``). If the first pair is marked its value is set to 0 (the paper's rule for
that rare case). Target: ``0.5 + (X1 + X2) / 4``, in [0, 1].

``"modern"`` -- the form used since Le et al. (2015) and Arjovsky et al. (2016): fixed length,
values uniform in [0, 1], one marker (1.0) uniformly in the first half and one in the second
half, markers 0.0 elsewhere. Target: ``X1 + X2``.

Returns ``SequenceData(inputs [T, N, 2], targets [N, 1], lengths int64[N])``: channel 0 is the
value, channel 1 the marker; targets are shaped like the output of ``... >> Linear(H, 1)``.
"""

from __future__ import annotations

import numpy as np

from specchain.data.dataset import SequenceData, float_dtype
from specchain.params import RngLike, runtime_generator
from specchain.validate import check_choice, check_int

VARIANTS = ("paper", "modern")


def adding_problem(
    n: int,
    length: int,
    rng: RngLike = 0,
    variant: str = "paper",
    dtype: object = np.float32,
) -> SequenceData:
    """``n`` adding-problem sequences of (minimal) length ``length``; see the module docstring.

    ``length`` must be >= 10 for ``"paper"`` (the first marker lies in the first ten pairs) and
    >= 2 for ``"modern"``.
    """
    n = check_int("adding_problem", "n", n, minimum=0)
    variant = check_choice("adding_problem", "variant", variant, VARIANTS)
    length = check_int("adding_problem", "length", length, minimum=10 if variant == "paper" else 2)
    resolved = float_dtype(dtype)
    generator = runtime_generator(rng)
    if variant == "paper":
        x, y, lengths = _paper(n, length, generator)
    else:
        x, y, lengths = _modern(n, length, generator)
    return SequenceData(x.astype(resolved), y.astype(resolved), lengths)


def _paper(
    n: int, length: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = rng.integers(length, length + length // 10, size=n, endpoint=True).astype(np.int64)
    steps = int(lengths.max(initial=length))
    x = np.zeros((steps, n, 2))
    y = np.zeros((n, 1))
    window = length // 2 - 1
    for j in range(n):
        size = int(lengths[j])
        values = rng.uniform(-1.0, 1.0, size=size)
        markers = np.zeros(size)
        markers[0] = markers[-1] = -1.0
        first = int(rng.integers(10))
        candidates = [k for k in range(window) if k != first]
        second = candidates[int(rng.integers(len(candidates)))]
        markers[[first, second]] = 1.0
        if markers[0] == 1.0:
            values[0] = 0.0
        x[steps - size :, j, 0] = values
        x[steps - size :, j, 1] = markers
        y[j, 0] = 0.5 + (values[first] + values[second]) / 4.0
    return x, y, lengths


def _modern(
    n: int, length: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    half = length // 2
    values = rng.uniform(0.0, 1.0, size=(length, n))
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers = np.zeros((length, n))
    columns = np.arange(n)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[first, columns] + values[second, columns])[:, None]
    return x, y, np.full(n, length, dtype=np.int64)
