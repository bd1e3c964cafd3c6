"""Losses with PyTorch's semantics and reductions: ``mse`` and ``cross_entropy``.

A loss is called as ``loss(y, target)`` for its value, or ``loss.value_and_grad(y, target)`` for
``(value, dL/dy)``, which is what ``SpecChain.value_and_grad`` and training use.

Padded batches: only some positions may count. ``y`` may be a ``specchain.padded.Padded`` (what a
chain called with ``(x, lengths)`` returns), whose ``mask()`` says which; or give ``mask=`` (bool,
True where a position counts) or ``lengths=`` (int ``[B]``, time-major ``[T, B, ...]`` unless
``time_axis=`` / ``batch_axis=`` say otherwise) with a plain ``y``. Positions left out count for
nothing, as with torch's ``ignore_index`` or ``(loss * mask).sum() / mask.sum()``: their targets
are never range-checked, their gradient is exactly 0, ``"mean"`` divides by the positions kept
and ``"none"`` gives 0 there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import numpy as np

from specchain.numerics import log_softmax
from specchain.padded import Padded
from specchain.types import ShapeError, SpecError
from specchain.validate import (
    SpecTypeError,
    check_float_array,
    check_int_array,
    check_non_negative_int,
    choice,
    integer,
)

REDUCTIONS = ("mean", "sum", "none")


@attrs.frozen
class Loss:
    """Base: ``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"`` (per element).

    A subclass names itself (``name``), says which shape its positions have for an input of a
    given shape (``positions``) and computes the loss over the kept positions (``compute``).
    """

    name: ClassVar[str] = "loss"
    mask_wording: ClassVar[str] = "the positions' shape"  # which shape a mask must have, in words
    reduction: str = attrs.field(default="mean", validator=choice(*REDUCTIONS))

    def __call__(
        self,
        y: np.ndarray | Padded,
        target: np.ndarray,
        *,
        mask: np.ndarray | None = None,
        lengths: np.ndarray | Sequence[int] | None = None,
        time_axis: int = 0,
        batch_axis: int | None = 1,
    ) -> Any:
        """The loss of ``y`` against ``target``, over the positions that count (module
        docstring); ``time_axis`` and ``batch_axis`` place ``lengths`` on a plain ``y`` (a
        ``Padded`` carries its own)."""
        data, keep = self.kept_positions(y, mask, lengths, time_axis, batch_axis)
        return self.compute(data, target, keep, need_grad=False)[0]

    def value_and_grad(
        self,
        y: np.ndarray | Padded,
        target: np.ndarray,
        *,
        mask: np.ndarray | None = None,
        lengths: np.ndarray | Sequence[int] | None = None,
        time_axis: int = 0,
        batch_axis: int | None = 1,
    ) -> tuple[float, np.ndarray]:
        """``(value, dL/dy)`` with the keywords of ``__call__``; the gradient is a plain array of
        ``y``'s shape (of ``y.data``'s for a ``Padded``), exactly 0 where positions do not count."""
        if self.reduction == "none":
            raise SpecError("value_and_grad needs a scalar loss; use reduction='mean' or 'sum'")
        data, keep = self.kept_positions(y, mask, lengths, time_axis, batch_axis)
        value, grad = self.compute(data, target, keep, need_grad=True)
        assert grad is not None
        return float(value), grad

    def positions(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of the positions of an input of ``shape`` (what a mask covers)."""
        raise NotImplementedError

    def compute(
        self, y: np.ndarray, target: np.ndarray, keep: np.ndarray | None, need_grad: bool
    ) -> tuple[Any, Any]:
        """``(value, gradient or None)`` over the positions where ``keep`` (bool, of
        ``positions(y.shape)``) is True; ``keep=None`` keeps them all."""
        raise NotImplementedError

    def kept_positions(
        self,
        y: np.ndarray | Padded,
        mask: np.ndarray | None,
        lengths: np.ndarray | Sequence[int] | None,
        time_axis: int,
        batch_axis: int | None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(y's data, bool mask of its positions or None)`` from a ``Padded`` y, ``lengths``
        and ``mask``, which must agree when more than one is given."""
        if isinstance(y, Padded):
            source: Padded | None = y
            if lengths is not None and not np.array_equal(np.asarray(lengths), y.lengths):
                raise SpecError(
                    f"{self.name}: lengths {np.asarray(lengths).tolist()} disagree with the "
                    f"lengths {y.lengths.tolist()} of the Padded input; a Padded input carries "
                    "its lengths, so pass lengths= only with a plain array"
                )
        elif lengths is not None:
            time_axis = check_non_negative_int(self.name, "time_axis", time_axis)
            if batch_axis is not None:
                batch_axis = check_non_negative_int(self.name, "batch_axis", batch_axis)
            source = Padded(
                check_float_array(self.name, "input", y), lengths, time_axis, batch_axis
            )
        else:
            source = None
        data = check_float_array(self.name, "input", y.data if isinstance(y, Padded) else y)
        shape = self.positions(data.shape)
        given = None if mask is None else self._given_mask(mask, data.shape, shape)
        if source is None:
            return data, given
        keep = self._lengths_mask(source, shape)
        if given is not None and not np.array_equal(given, keep):
            where = tuple(int(i) for i in np.argwhere(given != keep)[0])
            raise SpecError(
                f"{self.name}: mask disagrees with the lengths {source.lengths.tolist()} at "
                f"position {list(where)} (mask {bool(given[where])}, lengths say "
                f"{bool(keep[where])}); give the lengths or the mask, not both"
            )
        return data, keep

    def _lengths_mask(self, source: Padded, shape: tuple[int, ...]) -> np.ndarray:
        """The mask of ``source``'s lengths over positions of ``shape`` (checked lengths)."""
        axes = [source.time_axis] + ([] if source.batch_axis is None else [source.batch_axis])
        if len(shape) <= max(axes) < source.data.ndim:  # a class axis
            raise ShapeError(
                f"{self.name}: the lengths run along axes {axes} of input "
                f"{list(source.data.shape)}, but its positions are {list(shape)} (the last axis "
                "holds the classes); put time and batch before the class axis, or for one "
                "unbatched sequence pass batch_axis=None"
            )
        source.check(self.name)
        return attrs.evolve(source, data=np.broadcast_to(np.False_, shape)).mask()

    def _given_mask(
        self, mask: object, data_shape: tuple[int, ...], shape: tuple[int, ...]
    ) -> np.ndarray:
        """``mask`` checked (bool, of the positions' shape) and broadcast to ``shape``."""
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            got = f"{mask.dtype} array" if isinstance(mask, np.ndarray) else type(mask).__name__
            raise SpecTypeError(
                f"{self.name}.mask must be a bool numpy array (True where a position counts), "
                f"got {got}; pass np.asarray(mask, dtype=bool) or (mask != 0)"
            )
        forms = self.mask_shapes(data_shape)
        if mask.shape not in forms:
            raise ShapeError(
                f"{self.name}: mask of shape {list(mask.shape)} does not fit input "
                f"{list(data_shape)}; expected "
                + " or ".join(str(list(form)) for form in forms)
                + f" ({self.mask_wording})"
            )
        return np.broadcast_to(mask.reshape(mask.shape + (1,) * (len(shape) - mask.ndim)), shape)

    def mask_shapes(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
        """The shapes a ``mask=`` may have for an input of ``shape``."""
        return (self.positions(shape),)

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
    """Mean squared error: ``(y - target)^2`` reduced; shapes must match exactly. A mask covers
    ``y``'s shape, or ``y.shape[:-1]`` (broadcast over the features); ``"mean"`` divides by the
    elements kept, features included."""

    name: ClassVar[str] = "mse"
    mask_wording: ClassVar[str] = "the input's shape, or without the feature axis"

    def positions(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def mask_shapes(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
        return (shape, shape[:-1]) if shape else (shape,)

    def compute(
        self, y: np.ndarray, target: np.ndarray, keep: np.ndarray | None, need_grad: bool
    ) -> tuple[Any, Any]:
        y, target = check_float_array("mse", "input", y), check_float_array("mse", "target", target)
        if y.shape != target.shape:
            raise ShapeError(
                f"mse: input shape {list(y.shape)} != target shape {list(target.shape)}; "
                "reshape the target (no broadcasting)"
            )
        if y.dtype != target.dtype:
            raise TypeError(f"mse: input dtype {y.dtype} != target dtype {target.dtype}")
        if keep is None:
            diff, count = y - target, y.size
        else:  # targets left out are never read
            diff, count = np.zeros_like(y), int(keep.sum())
            np.subtract(y, target, out=diff, where=keep)
        value, scale = self._reduce(diff * diff, count)
        return value, (2.0 * scale) * diff if need_grad else None


@attrs.frozen
class CrossEntropyLoss(Loss):
    """Cross-entropy of logits ``[..., C]`` (classes on the last axis) and integer targets
    ``[...]``, with a stable log-softmax. Targets equal to ``ignore_index`` count for nothing,
    and ``"mean"`` divides by the number of the others, as in PyTorch. A mask covers the
    targets' shape ``[...]``.
    """

    name: ClassVar[str] = "cross_entropy"
    mask_wording: ClassVar[str] = "the targets' shape, logits.shape[:-1]"
    ignore_index: int = attrs.field(default=-100, validator=integer)

    def positions(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape[:-1]

    def compute(
        self, y: np.ndarray, target: np.ndarray, keep: np.ndarray | None, need_grad: bool
    ) -> tuple[Any, Any]:
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
        counts = target != self.ignore_index
        if keep is not None:
            counts &= keep
        bad = counts & ((target < 0) | (target >= classes))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise SpecError(
                f"cross_entropy: target {int(target[where])} at position {list(where)} is out of "
                f"range for {classes} classes (valid: 0..{classes - 1} or ignore_index "
                f"{self.ignore_index})"
            )
        safe = np.where(counts, target, 0)
        log_probs = log_softmax(logits)
        picked = np.take_along_axis(log_probs, safe[..., None], axis=-1)[..., 0]
        per_item = np.where(counts, -picked, 0.0).astype(logits.dtype)
        value, scale = self._reduce(per_item, int(counts.sum()))
        if not need_grad:
            return value, None
        with np.errstate(under="ignore"):  # tiny probabilities flush to 0, harmlessly
            grad = np.exp(log_probs)
            np.put_along_axis(
                grad, safe[..., None], np.take_along_axis(grad, safe[..., None], -1) - 1, -1
            )
            grad = np.where(counts[..., None], grad * scale, 0.0)  # exactly 0 where left out
        return value, grad.astype(logits.dtype, copy=False)


mse = MSELoss()
cross_entropy = CrossEntropyLoss()
