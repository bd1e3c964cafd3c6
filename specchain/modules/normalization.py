"""``LayerNorm``: normalise the last axis to zero mean and unit variance, then scale and shift,
like ``torch.nn.LayerNorm(normalized_shape)`` with an int."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from specchain.exporters import pytorch
from specchain.params import Initializer, ParamDecl
from specchain.spec import Context, NNModuleSpec, Params, flag, positive_int
from specchain.types import ELLIPSIS, DimEnv, ShapeError, TensorType, Type
from specchain.validate import attrs_validator, check_non_negative

_non_negative = attrs_validator(check_non_negative, "non_negative")  # eps: a finite number >= 0


def _constant(value: float) -> Initializer:
    """Every entry ``value``: PyTorch's ones for ``weight``, zeros for ``bias``."""

    def init(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return np.full(shape, value)

    return init


@attrs.define(eq=False)
class LayerNorm(NNModuleSpec, family="normalization"):
    """Normalise each vector along the last axis, then scale and shift it.

    Args:
        normalized_shape: size F of the last axis (an int; PyTorch's tuple form is not offered).
        eps: added to the variance inside the square root; 0 is allowed, as in PyTorch, and
            then a constant vector divides by zero (NaN, with numpy's warning).
        elementwise_affine: whether to learn ``weight`` (ones) and ``bias`` (zeros).
        bias: whether to learn ``bias`` (only with ``elementwise_affine``).

    Shapes: x ``[..., F]`` -> y ``[..., F]``; ``weight`` ``[F]``, ``bias`` ``[F]``.

    Per vector ``x`` of F entries, with the biased variance as PyTorch::

        mu = mean(x)    var = mean((x - mu)^2)    r = 1 / sqrt(var + eps)
        xhat = (x - mu) r    y = xhat * weight + bias

    and, with ``g = dy * weight`` (``dy`` without affine)::

        dx = r (g - mean(g) - xhat mean(g xhat))
        dweight = sum of dy xhat    dbias = sum of dy    (over every leading axis)
    """

    normalized_shape: int = attrs.field(validator=positive_int)
    eps: float = attrs.field(default=1e-5, validator=_non_negative)
    elementwise_affine: bool = attrs.field(default=True, validator=flag)
    bias: bool = attrs.field(default=True, validator=flag)

    def declare_params(self) -> dict[str, ParamDecl]:
        if not self.elementwise_affine:
            return {}
        shape = (self.normalized_shape,)
        decls = {"weight": ParamDecl(shape, _constant(1.0))}
        if self.bias:
            decls["bias"] = ParamDecl(shape, _constant(0.0))
        return decls

    def describe(self) -> str:
        text = str(self.normalized_shape)
        if self.eps != 1e-5:
            text += f", eps={self.eps!r}"
        if not self.elementwise_affine:
            return text + ", no affine"
        return text + ("" if self.bias else ", no bias")

    @property
    def in_type(self) -> Type:
        return TensorType((ELLIPSIS, self.normalized_shape))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        size = self.normalized_shape
        if not isinstance(in_type, TensorType) or in_type.dtype != "float":
            raise ShapeError(f"LayerNorm takes one float tensor [..., {size}], got {in_type}")
        if in_type.rank == 0:
            raise ShapeError("LayerNorm needs at least one axis, got a scalar")
        dims.equal(in_type.dims[-1], size, "feature size")
        return in_type.with_dims((*in_type.dims[:-1], size))

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        centred = x - x.mean(axis=-1, keepdims=True)
        with np.errstate(under="ignore"):  # tiny deviations flush to 0, harmlessly next to eps
            var = np.mean(centred * centred, axis=-1, keepdims=True)
            rstd = 1.0 / np.sqrt(var + float(self.eps))  # a Python float keeps float32 float32
            xhat = centred * rstd
        y = xhat * params["weight"] if self.elementwise_affine else xhat
        if self.elementwise_affine and self.bias:
            y += params["bias"]
        return y, (xhat, rstd)

    def backward(
        self, params: Params, saved: tuple[np.ndarray, np.ndarray], dy: np.ndarray
    ) -> tuple[np.ndarray, Params]:
        xhat, rstd = saved
        size = self.normalized_shape
        with np.errstate(under="ignore"):  # as in forward: products of tiny terms flush to 0
            g = dy * params["weight"] if self.elementwise_affine else dy
            g_xhat = np.mean(g * xhat, axis=-1, keepdims=True)
            dx = rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * g_xhat)
            grads: Params = {}
            if self.elementwise_affine:
                grads["weight"] = (dy * xhat).reshape(-1, size).sum(axis=0)
                if self.bias:
                    grads["bias"] = dy.reshape(-1, size).sum(axis=0)
        return dx, grads


# --- PyTorch export ----------------------------------------------------------------------------


@pytorch.emitter(LayerNorm, pointwise=True)
def _emit_layer_norm(spec: LayerNorm, in_type: Type) -> pytorch.Emitted:
    options = pytorch.non_default(spec, eps=1e-5, elementwise_affine=True, bias=True)
    return pytorch.Emitted(pytorch.call("nn.LayerNorm", spec.normalized_shape, **options))
