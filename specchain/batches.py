"""Mini-batches for ``specchain.train``: which axis of the inputs and of the targets holds the
examples, and inputs given as an array, as ``(x, lengths)`` or as a ``Padded`` (a padded batch of
variable-length sequences), sliced together with their lengths.

Conventions (time-major, like ``nn.LSTM(batch_first=False)``): the batch axis of the inputs is
where the model's input type puts ``B`` (axis 1 for ``[T, B, F]`` or ``int[T, B]``, axis 0 with
``batch_first=True``); that of the targets is where the model's *output* type puts ``B`` (axis 0
for ``[N]`` labels of a many-to-one classifier, axis 1 for ``[T, N, ...]`` per-step targets).
When a type does not name ``B``, inputs of rank >= 3 are batched on axis 1 and others on axis 0;
targets of rank 1 on axis 0, others on axis 1.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
import numpy as np

from specchain.chain import SpecChain
from specchain.padded import Padded, axes_for, is_lengths
from specchain.types import BATCH, ShapeError, TensorType, Type, role_axis
from specchain.validate import SpecTypeError

Inputs = np.ndarray | tuple[np.ndarray, np.ndarray] | Padded


class HasData(Protocol):
    inputs: Inputs
    targets: np.ndarray


Data = tuple[Inputs, np.ndarray] | HasData


@attrs.frozen
class Examples:
    """Inputs split into ``data`` (an array) and ``lengths`` (int64 ``[N]``, or None when the
    sequences all run to the end)."""

    data: np.ndarray
    lengths: np.ndarray | None

    def call_input(self) -> Any:
        """What the model is called with: ``data``, or ``(data, lengths)``."""
        return self.data if self.lengths is None else (self.data, self.lengths)

    def take(self, index: np.ndarray, axis: int) -> Any:
        """The model's input for the examples at ``index`` (on ``axis``), lengths included."""
        data = np.take(self.data, index, axis=axis)
        return data if self.lengths is None else (data, self.lengths[index])

    def check_lengths(self, model: SpecChain, axis: int, owner: str) -> None:
        """Refuse lengths that do not fit: one per example (on ``axis``), each in ``1..T``."""
        if self.lengths is None:
            return
        time_axis = axes_for(model.in_type, self.data.ndim)[0]
        if time_axis == axis:
            raise ShapeError(
                f"{owner}: inputs of shape {list(self.data.shape)} hold the examples on axis "
                f"{axis}, which is also the time axis of {model.in_type}; lengths need a "
                "sequence input [T, N, ...] (or [N, T, ...] for a batch-first model)"
            )
        Padded(self.data, self.lengths, time_axis, axis).check(f"{owner} inputs")


def examples(owner: str, inputs: object) -> Examples:
    """``inputs`` (an array, ``(x, lengths)`` or a ``Padded``) as ``Examples``."""
    data: object = inputs
    lengths: np.ndarray | None = None
    if isinstance(inputs, Padded):
        data, lengths = inputs.data, inputs.lengths
    elif isinstance(inputs, tuple) and len(inputs) == 2:
        data, second = inputs
        if not is_lengths(second):
            shown = np.asarray(second)
            several = shown.dtype.kind == "f" and shown.ndim > 1
            raise SpecTypeError(
                f"{owner}.inputs given as (x, lengths) need lengths as integers [N] (one per "
                f"example), got {shown.dtype}{list(shown.shape)}; pass "
                "np.asarray(lengths, dtype=np.int64)"
                + (
                    " (a tuple of several input arrays is not supported by fit yet: train "
                    "with model.value_and_grad and an optimizer step)"
                    if several
                    else ""
                )
            )
        lengths = np.asarray(second, dtype=np.int64)
    if not isinstance(data, np.ndarray):
        raise SpecTypeError(
            f"{owner}.inputs must be a numpy array, (x, lengths) or a Padded, got "
            f"{type(data).__name__}"
        )
    return Examples(data, lengths)


def unpack(owner: str, data: object) -> tuple[Examples, np.ndarray]:
    """``(inputs, targets)`` of a pair or a dataset (anything with ``.inputs`` and
    ``.targets``), checked."""
    if hasattr(data, "inputs") and hasattr(data, "targets"):
        inputs, targets = getattr(data, "inputs"), getattr(data, "targets")  # noqa: B009
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        inputs, targets = data
    else:
        raise SpecTypeError(
            f"{owner}.data must be a pair (inputs, targets) of numpy arrays (or a "
            f"specchain.data dataset), got {type(data).__name__}"
        )
    found = examples(owner, inputs)
    if not isinstance(targets, np.ndarray):
        raise SpecTypeError(f"{owner}.targets must be a numpy array, got {type(targets).__name__}")
    return found, targets


def _batch_position(t: Type) -> int | None:
    return role_axis(t.dims, BATCH) if isinstance(t, TensorType) else None


def batch_axes(model: SpecChain, inputs: Inputs, targets: np.ndarray) -> tuple[int, int]:
    """``(input axis, target axis)`` holding the examples, by the convention of this module;
    ``inputs`` may be an array, ``(x, lengths)`` or a ``Padded`` (the axes of ``x``)."""
    data = examples("batch_axes", inputs).data
    in_axis = _batch_position(model.in_type)
    if in_axis is None:
        in_axis = 1 if data.ndim >= 3 else 0
    out_axis = _batch_position(model.out_type)
    if out_axis is None or out_axis >= targets.ndim:
        out_axis = 0 if targets.ndim == 1 else 1
    for what, array, axis in (("inputs", data, in_axis), ("targets", targets, out_axis)):
        if array.ndim <= axis:
            raise ShapeError(
                f"{what} of shape {list(array.shape)} have no batch axis {axis}; the model "
                f"takes {model.in_type} and gives {model.out_type} (time-major: [T, N, ...])"
            )
    return in_axis, out_axis
