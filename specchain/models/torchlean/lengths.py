"""Variable-length batches for the TorchLean functions: the ``lengths`` keyword checked into a
``Padded`` input, outputs zeroed past each length and cotangents ignored there (the mean squared
error over valid steps only is ``sc.losses.mse`` on a ``Padded`` output).

A function given ``lengths`` (int ``[B]``, each in ``1..T``; one length for an unbatched
``[T, F]`` sequence) runs its chain on ``Padded(inputs, lengths)``: the LSTM runs each sequence
packed, as ``torch.nn.utils.rnn.pack_padded_sequence`` does, so its final states are each
sequence's state at its own last step, and nothing past a length reaches a valid step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specchain.chain import SpecChain
from specchain.padded import Padded
from specchain.types import ShapeError
from specchain.validate import SpecTypeError


def sequence_input(
    xs: np.ndarray, lengths: Any, function: str, tokens: bool = False, what: str = "inputs"
) -> np.ndarray | Padded:
    """``xs`` (already checked: float ``[T, B, F]`` / ``[T, F]``, or int tokens ``[T, B]`` /
    ``[T]``) as it is when ``lengths`` is None, else ``Padded(xs, lengths)`` with the lengths
    checked: one integer per example, each in ``1..T``. Errors name ``function`` and ``what``."""
    if lengths is None:
        return xs
    batched = xs.ndim == (2 if tokens else 3)
    try:
        padded = Padded(xs, lengths, time_axis=0, batch_axis=1 if batched else None)
    except (ShapeError, SpecTypeError) as err:
        raise type(err)(f"{function} {what}: {err}") from None
    padded.check(f"{function} {what}")
    return padded


def unpadded(y: Any) -> Any:
    """A chain's output as plain arrays: a ``Padded`` becomes its data with zeros past each
    length (what ``pad_packed_sequence`` gives; a per-step head would give its bias there)."""
    if isinstance(y, Padded):
        return np.where(y.mask(), y.data, np.zeros((), y.data.dtype))
    if isinstance(y, tuple):
        return tuple(unpadded(item) for item in y)
    return y


def valid_only(dy: Any, y: Any) -> Any:
    """``dy`` (a cotangent of the chain's output ``y``) with zeros past each length where ``y``
    is ``Padded``: the outputs there are constant zeros, so their cotangents count for nothing.
    A ``dy`` of another shape goes on unchanged, for the chain's backward to name."""
    if isinstance(y, Padded):
        if isinstance(dy, np.ndarray) and dy.shape == y.data.shape:
            return np.where(y.mask(), dy, np.zeros((), dy.dtype))
        return dy
    if isinstance(y, tuple) and isinstance(dy, (tuple, list)) and len(dy) == len(y):
        return tuple(valid_only(d, item) for d, item in zip(dy, y, strict=True))
    return dy


def backward(chain: SpecChain, x: Any, dy: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """``chain``'s backward of ``dy`` after a forward pass on ``x``: ``(d x, parameter grads)``.
    Cotangents past each length are ignored (``valid_only``); input gradients there are zero."""
    y, tape = chain.forward(x)
    return chain.backward(tape, valid_only(dy, y))


def batch_of_one(x: np.ndarray | Padded) -> np.ndarray | Padded:
    """An unbatched ``[T, F]`` sequence (or a ``Padded`` one, with its one length) as a batch of
    one, ``[T, 1, F]``."""
    if isinstance(x, Padded):
        return Padded(x.data[:, None], x.lengths)
    return x[:, None]
