"""``Linear``: y = x W^T + b over the last axis, like ``torch.nn.Linear``."""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from specchain.exporters import pytorch
from specchain.params import ParamDecl, uniform
from specchain.spec import Context, NNModuleSpec, Params, flag, positive_int
from specchain.types import ELLIPSIS, DimEnv, ShapeError, TensorType, Type


@attrs.define(eq=False)
class Linear(NNModuleSpec, family="linear"):
    """Affine map of the last axis.

    Args:
        in_features: size I of the last input axis.
        out_features: size O of the last output axis.
        bias: whether to add ``bias``.

    Shapes: x ``[..., I]`` -> y ``[..., O]``; ``weight`` ``[O, I]``, ``bias`` ``[O]``.
    Initialisation as PyTorch: U(-1/sqrt(I), 1/sqrt(I)) for both.
    """

    in_features: int = attrs.field(validator=positive_int)
    out_features: int = attrs.field(validator=positive_int)
    bias: bool = attrs.field(default=True, kw_only=True, validator=flag)

    def declare_params(self) -> dict[str, ParamDecl]:
        init = uniform(1.0 / math.sqrt(self.in_features))
        decls = {"weight": ParamDecl((self.out_features, self.in_features), init)}
        if self.bias:
            decls["bias"] = ParamDecl((self.out_features,), init)
        return decls

    def describe(self) -> str:
        return f"{self.in_features} -> {self.out_features}" + ("" if self.bias else ", no bias")

    @property
    def in_type(self) -> Type:
        return TensorType((ELLIPSIS, self.in_features))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        if not isinstance(in_type, TensorType) or in_type.dtype != "float":
            raise ShapeError(
                f"Linear takes one float tensor [..., {self.in_features}], got {in_type}"
            )
        if in_type.rank == 0:
            raise ShapeError("Linear needs at least one axis, got a scalar")
        dims.equal(in_type.dims[-1], self.in_features, "feature size")
        return in_type.with_dims((*in_type.dims[:-1], self.out_features))

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        y = x @ params["weight"].T
        if self.bias:
            y += params["bias"]
        return y, x

    def backward(self, params: Params, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        x2 = x.reshape(-1, self.in_features)
        dy2 = dy.reshape(-1, self.out_features)
        grads = {"weight": dy2.T @ x2}
        if self.bias:
            grads["bias"] = dy2.sum(axis=0)
        return dy @ params["weight"], grads


# --- PyTorch export ----------------------------------------------------------------------------


@pytorch.emitter(Linear, pointwise=True)
def _emit_linear(spec: Linear, in_type: Type) -> pytorch.Emitted:
    options = pytorch.non_default(spec, bias=True)
    return pytorch.Emitted(
        pytorch.call("nn.Linear", spec.in_features, spec.out_features, **options)
    )
