"""Sequence plumbing: ``Reverse``, ``LastStep``, ``Concat``, ``Add``, ``Select`` and
``TimeDistributed``.

Time-major like ``nn.LSTM(batch_first=False)``: the time axis is 0 unless ``axis=`` says otherwise.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from specchain.exporters import pytorch
from specchain.spec import Context, NNModuleSpec, Params, non_negative_int
from specchain.types import (
    ANY,
    ELLIPSIS,
    AnyType,
    DimEnv,
    ShapeError,
    TensorType,
    TupleType,
    Type,
)

SEQUENCE = TensorType(("T", "B", "F"))


def _tensor(spec: NNModuleSpec, in_type: Type, min_rank: int) -> TensorType:
    if not isinstance(in_type, TensorType) or in_type.dtype != "float":
        raise ShapeError(f"{spec.kind} takes one float tensor, got {in_type}")
    if in_type.rank is not None and in_type.rank < min_rank:
        raise ShapeError(f"{spec.kind} needs rank >= {min_rank}, got {in_type}")
    return in_type


def _unknown(in_type: Type) -> bool:
    """True while an item of a tuple input is only known at call time (a whole input known only
    then never gets here: ``NNModuleSpec.infer_type``)."""
    return isinstance(in_type, TupleType) and any(isinstance(i, AnyType) for i in in_type.items)


def _tensors(spec: NNModuleSpec, in_type: Type, min_items: int) -> list[TensorType]:
    if not isinstance(in_type, TupleType) or len(in_type.items) < min_items:
        raise ShapeError(f"{spec.kind} takes a tuple of >= {min_items} tensors, got {in_type}")
    items = [i for i in in_type.items if isinstance(i, TensorType) and i.dtype == "float"]
    if len(items) != len(in_type.items):
        raise ShapeError(f"{spec.kind} takes float tensors only, got {in_type}")
    return items


def _same_shapes(spec: NNModuleSpec, x: tuple[np.ndarray, ...], axis: int | None) -> None:
    """Leading dims that types leave open (the ``...`` of a tuple input) are checked with data:
    every item has item 0's shape, except along ``axis``. Nothing broadcasts."""
    first = x[0].shape
    skip = axis % len(first) if axis is not None and first else None
    for i, item in enumerate(x[1:], start=1):
        if item.ndim != len(first) or any(
            a != b for k, (a, b) in enumerate(zip(item.shape, first, strict=True)) if k != skip
        ):
            rule = "it does not broadcast" if axis is None else f"only axis {axis} may differ"
            raise ShapeError(
                f"{spec.kind}: item {i} has shape {list(item.shape)} but item 0 has "
                f"{list(first)} ({rule})"
            )


def _int(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{type(inst).__name__}.{attribute.name} must be an int, got {value!r}")


@attrs.define(eq=False)
class Reverse(NNModuleSpec, family="sequence"):
    """Flip the time axis: y[t] = x[T - 1 - t]. Shapes: ``[T, ...]`` -> ``[T, ...]``."""

    keeps_unknown = True

    axis: int = attrs.field(default=0, validator=non_negative_int)

    @property
    def in_type(self) -> Type:
        return SEQUENCE

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return _tensor(self, in_type, self.axis + 1)

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, None]:
        return np.flip(x, axis=self.axis), None

    def backward(self, params: Params, saved: None, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        return np.flip(dy, axis=self.axis), {}


@attrs.define(eq=False)
class LastStep(NNModuleSpec, family="sequence"):
    """The last time step (many-to-one): ``[T, B, F]`` -> ``[B, F]``; needs T >= 1."""

    keeps_unknown = True

    axis: int = attrs.field(default=0, validator=non_negative_int)

    @property
    def in_type(self) -> Type:
        return SEQUENCE

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        t = _tensor(self, in_type, self.axis + 1)
        if t.variadic:
            t = dims.fix_rank(t, SEQUENCE.dims, "input")
        if t.dims[self.axis] == 0:
            raise ShapeError(f"LastStep needs at least one time step, got {t}")
        return t.with_dims(t.dims[: self.axis] + t.dims[self.axis + 1 :])

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        if x.shape[self.axis] == 0:
            raise ShapeError(
                f"LastStep needs at least one time step, got T = 0 in shape {list(x.shape)}"
            )
        return np.take(x, -1, axis=self.axis), (x.shape, x.dtype)

    def backward(self, params: Params, saved: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        shape, dtype = saved
        dx = np.zeros(shape, dtype=dtype)
        index = [slice(None)] * len(shape)
        index[self.axis] = -1  # type: ignore[call-overload]
        dx[tuple(index)] = dy
        return dx, {}


@attrs.define(eq=False)
class Concat(NNModuleSpec, family="sequence"):
    """Concatenate a tuple of tensors along ``axis`` (default: features, the last axis).

    Items of one known rank, or all ``[..., *dims]`` with as many stated dims and a negative
    ``axis`` among them (``[..., 4]`` and ``[..., 5]`` give ``[..., 9]``). An item that states
    nothing (``[...]``) makes the result ``[...]`` until the chain is connected to an input.
    """

    axis: int = attrs.field(default=-1, validator=_int)

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        if _unknown(in_type):
            return ANY
        items = _tensors(self, in_type, 1)
        if any(t.dims == (ELLIPSIS,) for t in items):  # nothing stated yet (branch(Tanh(), ...)
            return TensorType((ELLIPSIS,))  # alone): the graph it joins re-infers this
        ranks = {len(t.dims) for t in items}
        variadic = {t.variadic for t in items}
        rank = min(ranks)
        suffix_axis = -rank < self.axis < 0  # with '...' first, the axis counts from the end
        if len(ranks) != 1 or len(variadic) != 1 or (True in variadic and not suffix_axis):
            raise ShapeError(
                f"Concat needs tensors of one known rank (or all [..., *dims] with a negative "
                f"axis among the stated dims), got {in_type}"
            )
        lead = 1 if True in variadic else 0
        axis = self.axis % rank
        out = list(items[0].dims)
        for t in items[1:]:
            for k in range(lead, rank):
                if k != axis:
                    out[k] = dims.equal(t.dims[k], out[k], f"dim {k - rank if lead else k}")
        sizes = [dims.resolve(t.dims[axis]) for t in items]
        ints = [s for s in sizes if isinstance(s, int)]
        symbols = [str(s) for s in sizes if not isinstance(s, int)]
        out[axis] = (
            sum(ints) if not symbols else "+".join(symbols + ([str(sum(ints))] if ints else []))
        )
        return items[0].with_dims(out)

    def forward(
        self, params: Params, x: tuple[np.ndarray, ...], ctx: Context
    ) -> tuple[np.ndarray, Any]:
        _same_shapes(self, x, self.axis)
        return np.concatenate(x, axis=self.axis), [a.shape[self.axis] for a in x]

    def backward(self, params: Params, sizes: list[int], dy: np.ndarray) -> tuple[Any, Params]:
        cuts = np.cumsum(sizes)[:-1]
        return tuple(np.split(dy, cuts, axis=self.axis)), {}


@attrs.define(eq=False)
class Add(NNModuleSpec, family="sequence"):
    """Sum a tuple of tensors of one type (a residual connection)."""

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        if _unknown(in_type):
            return ANY
        items = _tensors(self, in_type, 2)
        out: Type = items[0]
        for i, t in enumerate(items[1:], start=1):
            out = dims.unify(t, out, f"Add item {i}")
        return out

    def forward(
        self, params: Params, x: tuple[np.ndarray, ...], ctx: Context
    ) -> tuple[np.ndarray, int]:
        _same_shapes(self, x, None)
        total = x[0] + x[1]
        for item in x[2:]:
            total += item
        return total, len(x)

    def backward(self, params: Params, count: int, dy: np.ndarray) -> tuple[Any, Params]:
        return (dy,) * count, {}


@attrs.define(eq=False)
class Select(NNModuleSpec, family="sequence"):
    """Item ``index`` of a tuple, e.g. ``h_n`` of ``(h_n, c_n)``."""

    index: int = attrs.field(validator=non_negative_int)

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        if not isinstance(in_type, TupleType) or self.index >= len(in_type.items):
            raise ShapeError(
                f"Select({self.index}) needs a tuple of > {self.index} items, got {in_type}"
            )
        return in_type.items[self.index]

    def forward(self, params: Params, x: tuple[Any, ...], ctx: Context) -> tuple[Any, int]:
        return x[self.index], len(x)

    def backward(self, params: Params, count: int, dy: Any) -> tuple[Any, Params]:
        return tuple(dy if i == self.index else None for i in range(count)), {}


def _is_spec(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, NNModuleSpec):
        raise TypeError(f"TimeDistributed wraps an NNModuleSpec, got {type(value).__name__}")


@attrs.define(eq=False)
class TimeDistributed(NNModuleSpec, family="sequence"):
    """Apply ``spec`` to every time step: ``[T, *in]`` -> ``[T, *out]``.

    The wrapped spec's parameters are shared (the same arrays), and its gradients are summed over
    the steps.
    """

    keeps_unknown = True

    spec: NNModuleSpec = attrs.field(validator=_is_spec)

    def __attrs_post_init__(self) -> None:
        self.params = self.spec.params
        self.rng = None

    def describe(self) -> str:
        return f"{self.spec.kind}({self.spec.describe()})"

    @property
    def in_type(self) -> Type:
        inner = self.spec.in_type
        if not isinstance(inner, TensorType):
            return ANY
        if inner.variadic:  # [..., I] per step: [T, B, I] over time
            return inner.with_dims(("T", "B", *inner.dims[1:]))
        return inner.with_dims(("T", *inner.dims))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        t = _tensor(self, in_type, 1)
        if t.variadic:  # the leading "..." holds the time axis too
            return self.spec.infer(t, dims)
        step = self.spec.infer(t.with_dims(t.dims[1:]), dims)
        if not isinstance(step, TensorType):
            raise ShapeError(f"TimeDistributed needs a spec with one tensor output, got {step}")
        return step.with_dims((t.dims[0], *step.dims))

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        steps = [self.spec.forward(params, x[t], ctx) for t in range(x.shape[0])]
        if not steps:
            step_type = self.spec.infer(TensorType.of(x[0:1]).with_dims(x.shape[1:]), DimEnv())
            if not isinstance(step_type, TensorType):
                raise ShapeError(f"TimeDistributed needs one tensor output, got {step_type}")
            empty = np.zeros((0, *step_type.dims), dtype=x.dtype)  # type: ignore[type-var]
            return empty, (x.shape, [])
        return np.stack([y for y, _ in steps]), (x.shape, [s for _, s in steps])

    def backward(self, params: Params, saved: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        shape, step_saved = saved
        dxs, total = [], {k: np.zeros_like(v) for k, v in params.items()}
        for t, kept in enumerate(step_saved):
            dx, dparams = self.spec.backward(params, kept, dy[t])
            dxs.append(dx)
            for k, d in dparams.items():
                total[k] += d
        dx_all = np.stack(dxs) if dxs else np.zeros(shape, dtype=dy.dtype)
        return dx_all, total


# --- PyTorch export: helper classes, and TimeDistributed as the layer it wraps -----------------


@pytorch.emitter(Reverse)
def _emit_reverse(spec: Reverse, in_type: Type) -> pytorch.Emitted:
    return pytorch.helper("Reverse", spec.axis)


@pytorch.emitter(LastStep)
def _emit_last_step(spec: LastStep, in_type: Type) -> pytorch.Emitted:
    return pytorch.helper("LastStep", spec.axis)


@pytorch.emitter(Concat)
def _emit_concat(spec: Concat, in_type: Type) -> pytorch.Emitted:
    return pytorch.helper("Concat", spec.axis)


@pytorch.emitter(Add)
def _emit_add(spec: Add, in_type: Type) -> pytorch.Emitted:
    return pytorch.helper("Add")


@pytorch.emitter(Select)
def _emit_select(spec: Select, in_type: Type) -> pytorch.Emitted:
    return pytorch.helper("Select", spec.index)


@pytorch.emitter(TimeDistributed)
def _emit_time_distributed(spec: TimeDistributed, in_type: Type) -> pytorch.Emitted:
    """A layer that acts on the last axis maps over time as it is: emit it unwrapped."""
    inner = spec.spec
    found = pytorch.EMITTERS.get(type(inner))
    if not isinstance(found, pytorch.Emitter) or not found.pointwise:
        hint = ""
        if not type(inner).__module__.startswith("specchain."):  # a user's layer: say how
            hint = (
                f"; if {inner.kind} acts on the last axis only, register its emitter with "
                f"@pytorch.emitter({inner.kind}, pointwise=True)"
            )
        raise pytorch.ExportError(
            f"TimeDistributed({inner.kind}) has no PyTorch emitter: only layers that act on the "
            f"last axis ({', '.join(pytorch.pointwise_kinds())}) map over time natively{hint}"
        )
    return found.emit(inner, in_type)
