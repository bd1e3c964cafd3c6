"""Elementwise activations: ``Tanh``, ``Sigmoid``, ``ReLU`` and ``Identity``.

Each maps any float array ``[...]`` to an array of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from specchain.exporters import pytorch
from specchain.numerics import sigmoid
from specchain.spec import Context, NNModuleSpec, Params
from specchain.types import ELLIPSIS, DimEnv, ShapeError, TensorType, Type


class Elementwise(NNModuleSpec, family="activation"):
    """Shared shape contract: one float tensor in, the same type out."""

    keeps_unknown = True

    @property
    def in_type(self) -> Type:
        return TensorType((ELLIPSIS,))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        if not isinstance(in_type, TensorType) or in_type.dtype != "float":
            raise ShapeError(f"{self.kind} takes one float tensor, got {in_type}")
        return in_type


@attrs.define(eq=False)
class Tanh(Elementwise):
    """y = tanh(x)."""

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        y = np.tanh(x)
        return y, y

    def backward(self, params: Params, y: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        return dy * (1.0 - y * y), {}


@attrs.define(eq=False)
class Sigmoid(Elementwise):
    """y = 1 / (1 + exp(-x)), without overflow for any finite x."""

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        y = sigmoid(x)
        return y, y

    def backward(self, params: Params, y: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        with np.errstate(under="ignore"):  # y near 0 (x << 0): a gradient that flushes to 0
            return dy * y * (1.0 - y), {}


@attrs.define(eq=False)
class ReLU(Elementwise):
    """y = max(x, 0); the gradient is 0 where x <= 0 and passes elsewhere (NaN too), as in
    PyTorch."""

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        return np.maximum(x, 0), ~(x <= 0)  # maximum keeps NaN, like torch.relu

    def backward(
        self, params: Params, positive: np.ndarray, dy: np.ndarray
    ) -> tuple[np.ndarray, Params]:
        return np.where(positive, dy, 0.0).astype(dy.dtype, copy=False), {}


@attrs.define(eq=False)
class Identity(NNModuleSpec, family="activation"):
    """y = x, for any value (arrays or tuples)."""

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return in_type

    def forward(self, params: Params, x: Any, ctx: Context) -> tuple[Any, None]:
        return x, None

    def backward(self, params: Params, saved: None, dy: Any) -> tuple[Any, Params]:
        return dy, {}


# --- PyTorch export: the native modules --------------------------------------------------------


def _native(module: str) -> Callable[[NNModuleSpec, Type], pytorch.Emitted]:
    """The emitter of a layer whose twin is ``module`` with no arguments."""
    return lambda spec, in_type: pytorch.Emitted(f"{module}()")


_NATIVE = {Tanh: "nn.Tanh", Sigmoid: "nn.Sigmoid", ReLU: "nn.ReLU", Identity: "nn.Identity"}
for _layer, _module in _NATIVE.items():
    pytorch.emitter(_layer, pointwise=True)(_native(_module))
