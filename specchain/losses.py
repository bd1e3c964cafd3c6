"""Losses with PyTorch's semantics and reductions: ``mse`` and ``cross_entropy``.

A loss is called as ``loss(y, target)`` for its value, or ``loss.value_and_grad(y, target)`` for
``(value, dL/dy)``, which is what ``SpecChain.value_and_grad`` and training use.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from specchain.numerics import log_softmax
from specchain.types import ShapeError, SpecError
from specchain.validate import check_float_array, check_int_array, choice, integer

REDUCTIONS = ("mean", "sum", "none")


@attrs.frozen
class Loss:
    """Base: ``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"`` (per element)."""

    reduction: str = attrs.field(default="mean", validator=choice(*REDUCTIONS))

    def __call__(self, y: np.ndarray, target: np.ndarray) -> Any:
        return self.compute(y, target, need_grad=False)[0]

    def value_and_grad(self, y: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        if self.reduction == "none":
            raise SpecError("value_and_grad needs a scalar loss; use reduction='mean' or 'sum'")
        value, grad = self.compute(y, target, need_grad=True)
        assert grad is not None
        return float(value), grad

    def compute(self, y: np.ndarray, target: np.ndarray, need_grad: bool) -> tuple[Any, Any]:
        raise NotImplementedError

    def _reduce(self, per_item: np.ndarray, count: int) -> tuple[Any, float]:
        """The reduced value and the scale of each item's gradient."""
        if self.reduction == "none":
            return per_item, 1.0
        total = per_item.sum()
        if self.reduction == "sum":
            return total, 1.0
        if count == 0:
            return np.float64(np.nan).astype(per_item.dtype), 0.0  # torch: mean of nothing is nan
        return total / count, 1.0 / count


@attrs.frozen
class MSELoss(Loss):
    """Mean squared error: ``(y - target)^2`` reduced; shapes must match exactly."""

    def compute(self, y: np.ndarray, target: np.ndarray, need_grad: bool) -> tuple[Any, Any]:
        y, target = check_float_array("mse", "input", y), check_float_array("mse", "target", target)
        if y.shape != target.shape:
            raise ShapeError(
                f"mse: input shape {list(y.shape)} != target shape {list(target.shape)}; "
                "reshape the target (no broadcasting)"
            )
        if y.dtype != target.dtype:
            raise TypeError(f"mse: input dtype {y.dtype} != target dtype {target.dtype}")
        diff = y - target
        value, scale = self._reduce(diff * diff, diff.size)
        return value, (2.0 * scale) * diff if need_grad else None


@attrs.frozen
class CrossEntropyLoss(Loss):
    """Cross-entropy of logits ``[..., C]`` (classes on the last axis) and integer targets
    ``[...]``, with a stable log-softmax. Targets equal to ``ignore_index`` count for nothing,
    and ``"mean"`` divides by the number of the others, as in PyTorch.
    """

    ignore_index: int = attrs.field(default=-100, validator=integer)

    def compute(self, y: np.ndarray, target: np.ndarray, need_grad: bool) -> tuple[Any, Any]:
        logits = check_float_array("cross_entropy", "input", y)
        target = check_int_array(
            "cross_entropy", "target", target, "an integer numpy array of class indices"
        )
        if logits.ndim < 1:
            raise ShapeError("cross_entropy: logits need a class axis (the last), got a scalar")
        if logits.shape[:-1] != target.shape:
            raise ShapeError(
                f"cross_entropy: logits {list(logits.shape)} need targets of shape "
                f"{list(logits.shape[:-1])}, got {list(target.shape)}"
            )
        classes = logits.shape[-1]
        keep = target != self.ignore_index
        bad = keep & ((target < 0) | (target >= classes))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise SpecError(
                f"cross_entropy: target {int(target[where])} at position {list(where)} is out of "
                f"range for {classes} classes (valid: 0..{classes - 1} or ignore_index "
                f"{self.ignore_index})"
            )
        safe = np.where(keep, target, 0)
        log_probs = log_softmax(logits)
        picked = np.take_along_axis(log_probs, safe[..., None], axis=-1)[..., 0]
        per_item = np.where(keep, -picked, 0.0).astype(logits.dtype)
        value, scale = self._reduce(per_item, int(keep.sum()))
        if not need_grad:
            return value, None
        with np.errstate(under="ignore"):  # tiny probabilities flush to 0, harmlessly
            grad = np.exp(log_probs)
            np.put_along_axis(
                grad, safe[..., None], np.take_along_axis(grad, safe[..., None], -1) - 1, -1
            )
            grad *= (keep * scale)[..., None]
        return value, grad.astype(logits.dtype, copy=False)


mse = MSELoss()
cross_entropy = CrossEntropyLoss()
