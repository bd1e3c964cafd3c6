"""``Dropout`` (inverted, seeded, or with an explicit mask) and ``ScaledDropout``.

``Dropout(p)``: in training ``y = x * keep / (1 - p)`` with ``keep ~ Bernoulli(1 - p)`` drawn from
the context's generator (``p = 1`` gives zeros, as in PyTorch); in inference ``y = x``. Given the
tuple ``(x, keep)`` it uses that 0/1 mask instead of drawing one (TorchLean's masked dropout); the
mask has the shape of ``x`` and may be bool, integer or float, but must hold only 0 and 1.

``ScaledDropout(p)``: TorchLean's deterministic ``y = (1 - p) * x``, in both modes.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from specchain.exporters import pytorch
from specchain.spec import Context, NNModuleSpec, Params, probability
from specchain.types import (
    ELLIPSIS,
    AnyType,
    DimEnv,
    ShapeError,
    SpecError,
    TensorType,
    TupleType,
    Type,
)


def dropout_mask(
    rng: np.random.Generator, shape: tuple[int, ...], p: float, dtype: np.dtype[Any]
) -> np.ndarray:
    """An inverted-dropout multiplier: 0 with probability p, else 1 / (1 - p)."""
    if p >= 1.0:
        return np.zeros(shape, dtype)
    keep = rng.random(shape) >= p
    return keep.astype(dtype) / np.asarray(1.0 - p, dtype)


def _float_tensor(spec: NNModuleSpec, t: Type) -> Type:
    if isinstance(t, AnyType):
        return t
    if not isinstance(t, TensorType) or t.dtype != "float":
        raise ShapeError(f"{spec.kind} takes a float tensor (or (x, mask)), got {t}")
    return t


def _check_keep_mask(keep: np.ndarray) -> None:
    """Refuse a mask with a value other than 0 and 1, naming the first one and where it is."""
    bad = (keep != 0) & (keep != 1)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise SpecError(
            f"Dropout mask must hold only 0 and 1 (1 keeps), got {keep[where].item()!r} at "
            f"position {list(where)}; pass a bool array such as rng.random(x.shape) >= p"
        )


@attrs.define(eq=False)
class Dropout(NNModuleSpec, family="dropout"):
    """Inverted dropout with probability ``p``; shapes ``[...]`` -> ``[...]``."""

    keeps_unknown = True

    p: float = attrs.field(default=0.5, validator=probability)

    def describe(self) -> str:
        return f"p={self.p}"

    @property
    def in_type(self) -> Type:
        return TensorType((ELLIPSIS,))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        if isinstance(in_type, TupleType):
            if len(in_type.items) != 2:
                raise ShapeError(f"Dropout takes x or (x, mask), got {in_type}")
            x_type, mask_type = _float_tensor(self, in_type.items[0]), in_type.items[1]
            if isinstance(mask_type, TupleType):
                raise ShapeError(f"Dropout mask must be one array, got {mask_type}")
            if isinstance(x_type, TensorType) and isinstance(mask_type, TensorType):
                dims.unify_dims(mask_type.dims, x_type.dims, "mask")
            return x_type
        return _float_tensor(self, in_type)

    def forward(self, params: Params, x: Any, ctx: Context) -> tuple[Any, Any]:
        explicit = isinstance(x, tuple)
        value = x[0] if explicit else x
        if not ctx.train or self.p == 0.0:
            return value, (None, explicit)
        if explicit:
            keep = x[1]
            if keep.shape != value.shape:
                raise ShapeError(
                    f"mask shape {list(keep.shape)} != input shape {list(value.shape)}"
                )
            _check_keep_mask(keep)
            scale = 0.0 if self.p >= 1.0 else 1.0 / (1.0 - self.p)
            mask = keep.astype(value.dtype) * value.dtype.type(scale)
        else:
            mask = dropout_mask(ctx.rng, value.shape, self.p, value.dtype)
        return value * mask, (mask, explicit)

    def backward(self, params: Params, saved: Any, dy: Any) -> tuple[Any, Params]:
        mask, explicit = saved
        dx = dy if mask is None else dy * mask
        return ((dx, None) if explicit else dx), {}


@attrs.define(eq=False)
class ScaledDropout(NNModuleSpec, family="dropout"):
    """TorchLean's deterministic dropout: ``y = (1 - p) * x`` in training and inference."""

    keeps_unknown = True

    p: float = attrs.field(default=0.5, validator=probability)

    def describe(self) -> str:
        return f"p={self.p}, y = {1 - self.p:g} * x"

    @property
    def in_type(self) -> Type:
        return TensorType((ELLIPSIS,))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return _float_tensor(self, in_type)

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, None]:
        return x * x.dtype.type(1.0 - self.p), None

    def backward(self, params: Params, saved: None, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        return dy * dy.dtype.type(1.0 - self.p), {}


# --- PyTorch export ----------------------------------------------------------------------------


@pytorch.emitter(Dropout)
def _emit_dropout(spec: Dropout, in_type: Type) -> pytorch.Emitted:
    if isinstance(in_type, TupleType):  # (x, keep): the helper that takes the mask
        return pytorch.helper("MaskedDropout", spec.p)
    return pytorch.Emitted(pytorch.call("nn.Dropout", spec.p))


@pytorch.emitter(ScaledDropout, pointwise=True)
def _emit_scaled_dropout(spec: ScaledDropout, in_type: Type) -> pytorch.Emitted:
    return pytorch.helper("ScaledDropout", spec.p)
