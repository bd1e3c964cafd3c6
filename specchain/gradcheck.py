"""Finite-difference gradient check of any chain, in float64 with central differences.

The scalar checked is ``sum(y * w)``: ``w`` is ``dL/dy`` of ``loss(model(x), target)`` at the
current point when a loss is given (so the check is that of the loss's gradient, to first order),
else a fixed random cotangent. Each parameter (and the float input) gets its worst relative error

    max_i |analytic_i - numeric_i| / max(max_i |analytic_i|, max_i |numeric_i|, floor)

so entries that are tiny next to the tensor's scale do not blow the ratio up. ``floor`` is 1e-6
times the largest gradient entry of the whole check (and at least 1e-12): a tensor whose true
gradient is exactly zero (rounding noise on both sides) passes, while a wrong gradient of any
tensor within six orders of magnitude of the largest one fails.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from specchain import padded
from specchain.tree import leaves, tree_map
from specchain.types import SpecError
from specchain.validate import check_flag, check_positive

if TYPE_CHECKING:
    from specchain.chain import SpecChain
    from specchain.losses import Loss


@attrs.frozen
class GradcheckReport:
    """Worst relative error per parameter name and for ``"input"`` (float inputs only)."""

    errors: dict[str, float]

    @property
    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)

    def passed(self, tolerance: float = 1e-7) -> bool:
        return self.worst <= tolerance

    def __str__(self) -> str:
        rows = [f"{name}: {err:.3e}" for name, err in self.errors.items()]
        return "gradcheck worst relative error per tensor:\n  " + "\n  ".join(rows)


def relative_error(analytic: np.ndarray, numeric: np.ndarray, floor: float = 1e-12) -> float:
    if analytic.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(analytic))), float(np.max(np.abs(numeric))), floor)
    return float(np.max(np.abs(analytic - numeric))) / scale


def gradcheck(
    model: SpecChain,
    x: Any,
    target: Any = None,
    loss: Loss | None = None,
    eps: float = 1e-6,
    train: bool = False,
    rng: int = 0,
) -> GradcheckReport:
    """Compare ``model.backward`` with central differences. The model must be float64
    (``model.to(np.float64)``); dropout-like randomness is fixed by reseeding with ``rng``.
    ``x`` may hold ``(x, lengths)`` pairs: the data are checked, the lengths stay fixed."""
    eps = check_positive("gradcheck", "eps", eps)
    train = check_flag("gradcheck", "train", train)
    if model.dtype not in (None, np.dtype(np.float64)):
        raise SpecError(f"gradcheck needs float64; call model.to(np.float64) (it is {model.dtype})")
    x = padded.attach(x, model.in_type)  # (x, lengths) -> Padded, holding the same array
    y, tape = model.forward(x, train=train, rng=rng)
    if loss is None:
        dy = _random_like(padded.strip(y), np.random.default_rng(12345))
    else:
        _, dy = loss.value_and_grad(y, target)

    def change(plus: Any, minus: Any) -> float:
        # Outputs are differenced before the dot product with dy = dL/dy: differencing two
        # whole losses (or sums) would cancel large, nearly equal numbers and leave rounding
        # noise far above 1e-7. The loss's own gradient is checked in the loss tests.
        return _dot(tree_map(operator.sub, plus, minus), dy)

    dx, grads = model.backward(tape, dy)

    def f() -> Any:
        y = model.forward(x, train=train, rng=rng)[0]
        return tree_map(np.copy, padded.strip(y))  # an output may view the input

    pairs = {
        name: (grads[name], _numeric(f, change, p, eps))
        for name, p in model.named_parameters().items()
    }
    for i, (leaf, d) in enumerate(zip(leaves(padded.strip(x)), leaves(dx), strict=False)):
        if d is not None and leaf.dtype.kind == "f":
            pairs["input" if i == 0 else f"input[{i}]"] = (d, _numeric(f, change, leaf, eps))
    largest = max((float(np.max(np.abs(a), initial=0.0)) for a, _ in pairs.values()), default=0.0)
    floor = max(1e-12, 1e-6 * largest)
    return GradcheckReport({name: relative_error(a, n, floor) for name, (a, n) in pairs.items()})


def _numeric(
    f: Callable[[], Any], change: Callable[[Any, Any], float], array: np.ndarray, eps: float
) -> np.ndarray:
    """Central differences ``change(f(+eps), f(-eps)) / 2 eps`` for every entry of ``array``
    (perturbed in place)."""
    grad = np.zeros(array.shape, dtype=np.float64)
    flat, out = array.reshape(-1), grad.reshape(-1)
    if flat.size and not np.shares_memory(flat, array):
        raise SpecError("gradcheck needs contiguous arrays")
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        plus = f()
        flat[i] = orig - eps
        minus = f()
        flat[i] = orig
        out[i] = change(plus, minus) / (2 * eps)
    return grad


def _random_like(value: Any, rng: np.random.Generator) -> Any:
    """A float64 normal cotangent for every float leaf, None for integer leaves."""

    def draw(leaf: np.ndarray) -> np.ndarray | None:
        return rng.standard_normal(leaf.shape) if leaf.dtype.kind == "f" else None

    return tree_map(draw, value)


def _dot(value: Any, weights: Any) -> float:
    """``sum(value * weights)`` over matching leaves; a None weight counts as zero."""
    pairs = zip(leaves(value), leaves(weights), strict=True)
    return sum(0.0 if w is None else float(np.sum(v * w)) for v, w in pairs)
