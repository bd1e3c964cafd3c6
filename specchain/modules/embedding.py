"""``Embedding``: integer indices ``[...]`` -> vectors ``[..., E]``, like ``torch.nn.Embedding``."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from specchain.exporters import pytorch
from specchain.params import ParamDecl, normal
from specchain.spec import Context, NNModuleSpec, Params, positive_int
from specchain.types import DimEnv, ShapeError, SpecError, TensorType, Type

INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


def _check_indices(x: np.ndarray, count: int, kind: str) -> None:
    """Refuse non-integer or out-of-range indices, naming the first bad value and its position.
    Like ``torch.nn.Embedding``, only int32 and int64 indices are taken (the export must agree)."""
    if x.dtype not in INDEX_DTYPES:
        raise TypeError(
            f"{kind} takes int32 or int64 indices (as torch does), got dtype {x.dtype}; "
            "cast them with .astype(np.int64)"
        )
    bad = (x < 0) | (x >= count)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise SpecError(
            f"{kind} index {int(x[where])} at position {list(where)} is out of range [0, {count})"
        )


class IndexLookup(NNModuleSpec, family="embedding"):
    """Shape contract of layers that read integer indices ``[...]`` and add a feature axis of
    size ``width``: ``int[T, B]`` -> ``[T, B, width]``."""

    @property
    def width(self) -> int:
        raise NotImplementedError

    @property
    def in_type(self) -> Type:
        return TensorType(("T", "B"), "int")

    def acts_per_step(self, in_type: Type) -> bool:
        return True

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        if not isinstance(in_type, TensorType) or in_type.dtype != "int":
            raise ShapeError(f"{self.kind} takes integer indices, got {in_type}")
        return TensorType((*in_type.dims, self.width))


def _padding_index(inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"Embedding.padding_idx must be an int or None, got {value!r}")
    n = inst.num_embeddings
    if not -n <= value < n:
        raise SpecError(f"Embedding.padding_idx must be within [-{n}, {n - 1}], got {value}")


@attrs.define(eq=False)
class Embedding(IndexLookup):
    """A lookup table ``weight [N, E]`` initialised N(0, 1).

    Args:
        num_embeddings: N, the vocabulary size; indices must lie in ``[0, N)``.
        embedding_dim: E.
        padding_idx: a row kept at zero that receives no gradient (negative counts from the end).
    """

    num_embeddings: int = attrs.field(validator=positive_int)
    embedding_dim: int = attrs.field(validator=positive_int)
    padding_idx: int | None = attrs.field(default=None, validator=_padding_index)

    def __attrs_post_init__(self) -> None:
        if self.padding_idx is not None and self.padding_idx < 0:
            self.padding_idx += self.num_embeddings
        super().__attrs_post_init__()
        if self.padding_idx is not None:
            self.params["weight"][self.padding_idx] = 0.0

    def declare_params(self) -> dict[str, ParamDecl]:
        return {"weight": ParamDecl((self.num_embeddings, self.embedding_dim), normal(1.0))}

    def describe(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings} x {self.embedding_dim}{pad}"

    @property
    def width(self) -> int:
        return self.embedding_dim

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        _check_indices(x, self.num_embeddings, "Embedding")
        return params["weight"][x], x

    def backward(self, params: Params, x: np.ndarray, dy: np.ndarray) -> tuple[None, Params]:
        grad = np.zeros_like(params["weight"])
        np.add.at(grad, x.reshape(-1), dy.reshape(-1, self.embedding_dim))
        if self.padding_idx is not None:
            grad[self.padding_idx] = 0.0
        return None, {"weight": grad}


@attrs.define(eq=False)
class OneHot(IndexLookup):
    """Integer indices ``[...]`` -> one-hot float vectors ``[..., N]`` (no parameters).

    With ``Linear(N, E, bias=False)`` after it, this is TorchLean's linear-on-one-hot embedding.
    The output has the model's float dtype (``Context.dtype``).
    """

    num_classes: int = attrs.field(validator=positive_int)

    def describe(self) -> str:
        return f"{self.num_classes} classes"

    @property
    def width(self) -> int:
        return self.num_classes

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, None]:
        _check_indices(x, self.num_classes, "OneHot")
        return np.eye(self.num_classes, dtype=ctx.dtype)[x], None

    def backward(self, params: Params, saved: None, dy: np.ndarray) -> tuple[None, Params]:
        return None, {}


# --- PyTorch export ----------------------------------------------------------------------------


@pytorch.emitter(Embedding)
def _emit_embedding(spec: Embedding, in_type: Type) -> pytorch.Emitted:
    options = pytorch.non_default(spec, padding_idx=None)
    return pytorch.Emitted(
        pytorch.call("nn.Embedding", spec.num_embeddings, spec.embedding_dim, **options)
    )


@pytorch.emitter(OneHot)
def _emit_one_hot(spec: OneHot, in_type: Type) -> pytorch.Emitted:
    return pytorch.helper("OneHot", spec.num_classes)
