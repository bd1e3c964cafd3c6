"""Sequence plumbing: ``Reverse``, ``LastStep``, ``Concat``, ``Add``, ``Select`` and
``TimeDistributed``.

Layers that act on time find the time axis by its role (``T`` in ``[B, T, F]`` is axis 1), or take
``axis=``, which is checked against the roles; an input that states no roles is time-major, like
``nn.LSTM(batch_first=False)``. Given a ``Padded`` batch, ``LastStep`` takes each sequence's last
valid step and ``Reverse`` reverses each sequence within its length.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from specchain.exporters import pytorch
from specchain.padded import Padded, axes_for
from specchain.spec import Context, NNModuleSpec, Params, non_negative_int
from specchain.types import (
    ANY,
    ELLIPSIS,
    TIME,
    AnyType,
    DimEnv,
    ShapeError,
    TensorType,
    TupleType,
    Type,
    role_of,
    time_axis_of,
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


def _optional_axis(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        non_negative_int(inst, attribute, value)


@attrs.define(eq=False)
class AlongTime(NNModuleSpec, family="sequence"):
    """Shared base of the layers that act on the time axis: the axis whose role is time (``T``)
    in the input type, or ``axis`` when given."""

    keeps_unknown = True
    takes_lengths = True

    axis: int | None = attrs.field(default=None, validator=_optional_axis)

    @property
    def in_type(self) -> Type:
        """``[T, B, F]``; ``[B, T, F]`` with ``axis=1``."""
        return TensorType(("B", "T", "F")) if self.axis == 1 else SEQUENCE

    def time_axis(self, t: Type) -> int:
        return time_axis_of(t, self.axis, self.kind)

    def acts_per_step(self, in_type: Type) -> bool:
        return False  # it reads across time: a padded batch's lengths, too

    def describe(self) -> str:
        return "" if self.axis is None else f"axis={self.axis}"

    def _sequence(self, in_type: Type, dims: DimEnv) -> tuple[TensorType, int]:
        """The input, with a leading ``...`` read as ``[T, B, F]``, and its time axis."""
        t = _tensor(self, in_type, (self.axis or 0) + 1)
        if t.variadic:  # [..., *stated] read as [T, B, *stated] (as far as rank 3 needs)
            stated = t.dims[1:] or ("F",)
            t = dims.fix_rank(t, (*("T", "B")[: max(0, 3 - len(stated))], *stated), "input")
        axis = self.time_axis(t)
        if t.rank is not None and axis >= t.rank:
            raise ShapeError(f"{self.kind} needs rank >= {axis + 1}, got {t}")
        return t, axis


@attrs.define(eq=False)
class Reverse(AlongTime):
    """Flip the time axis: y[t] = x[T - 1 - t]; a ``Padded`` batch is reversed within each
    sequence's length (its padding stays where it is). Shapes: ``[T, ...]`` -> ``[T, ...]``.

    ``Reverse()`` takes its neighbours' layout (``[..., F]`` first in a graph); ``axis=0`` or
    ``axis=1`` states one (``[T, B, F]``, ``[B, T, F]``)."""

    @property
    def in_type(self) -> Type:
        return super().in_type if self.axis in (0, 1) else TensorType((ELLIPSIS, "F"))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        t = _tensor(self, in_type, (self.axis or 0) + 1)
        if not t.variadic:
            self.time_axis(t)
        return t

    def forward(self, params: Params, x: Any, ctx: Context) -> tuple[Any, Any]:
        if isinstance(x, Padded):
            order = x.reversal_order()
            return x.with_data(np.take_along_axis(x.data, order, x.time_axis)), (order, x.time_axis)
        axis = self.time_axis(ctx.in_type)
        return np.flip(x, axis=axis), (None, axis)

    def backward(self, params: Params, saved: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        order, axis = saved
        if order is not None:
            return np.take_along_axis(dy, order, axis), {}
        return np.flip(dy, axis=axis), {}


@attrs.define(eq=False)
class LastStep(AlongTime):
    """The last time step (many-to-one): ``[T, B, F]`` -> ``[B, F]`` (``[B, T, F]`` too: the
    time axis is found by its role); needs T >= 1. Of a ``Padded`` batch, each sequence's last
    valid step."""

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        t, axis = self._sequence(in_type, dims)
        if t.dims[axis] == 0:
            raise ShapeError(f"LastStep needs at least one time step, got {t}")
        return t.with_dims(t.dims[:axis] + t.dims[axis + 1 :])

    def forward(self, params: Params, x: Any, ctx: Context) -> tuple[np.ndarray, Any]:
        if isinstance(x, Padded):
            data, axis = x.data, x.time_axis
            index = x.last_index()
            y = np.take_along_axis(data, index, axis).squeeze(axis)
            return y, (data.shape, data.dtype, axis, index)
        axis = self.time_axis(ctx.in_type)
        if x.shape[axis] == 0:
            raise ShapeError(
                f"LastStep needs at least one time step, got T = 0 in shape {list(x.shape)}"
            )
        return np.take(x, -1, axis=axis), (x.shape, x.dtype, axis, None)

    def backward(self, params: Params, saved: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        shape, dtype, axis, index = saved
        dx = np.zeros(shape, dtype=dtype)
        if index is not None:
            np.put_along_axis(dx, index, np.expand_dims(dy, axis), axis)
            return dx, {}
        where: list[Any] = [slice(None)] * len(shape)
        where[axis] = -1
        dx[tuple(where)] = dy
        return dx, {}


@attrs.define(eq=False)
class Concat(NNModuleSpec, family="sequence"):
    """Concatenate a tuple of tensors along ``axis`` (default: features, the last axis).

    Items of one known rank, or all ``[..., *dims]`` with as many stated dims and a negative
    ``axis`` among them (``[..., 4]`` and ``[..., 5]`` give ``[..., 9]``). An item that states
    nothing (``[...]``) makes the result ``[...]`` until the chain is connected to an input.
    """

    axis: int = attrs.field(default=-1, validator=_int)

    def acts_per_step(self, in_type: Type) -> bool:
        """Unless it joins sequences along their time axis (which lengths cannot follow)."""
        items = in_type.items if isinstance(in_type, TupleType) else ()
        first = items[0] if items else None
        if not isinstance(first, TensorType) or first.variadic or not first.dims:
            return True
        return role_of(first.dims[self.axis % len(first.dims)]) != TIME

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

    def acts_per_step(self, in_type: Type) -> bool:
        return True

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
    """Item ``index`` of a tuple, e.g. ``h_n`` of ``(h_n, c_n)`` (a ``Padded`` item as it is)."""

    takes_lengths = True

    def acts_per_step(self, in_type: Type) -> bool:
        return True  # it passes values on, lengths and all

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

    def acts_per_step(self, in_type: Type) -> bool:
        return True

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        t = _tensor(self, in_type, 1)
        if t.variadic:  # the leading "..." holds the time axis too
            return self.spec.infer(t, dims)
        axis = time_axis_of(t, None, self.kind)
        step = self.spec.infer(t.with_dims(t.dims[:axis] + t.dims[axis + 1 :]), dims)
        if not isinstance(step, TensorType):
            raise ShapeError(f"TimeDistributed needs a spec with one tensor output, got {step}")
        return step.with_dims((*step.dims[:axis], t.dims[axis], *step.dims[axis:]))

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        axis = time_axis_of(ctx.in_type, None, self.kind)
        steps = [self.spec.forward(params, np.take(x, t, axis), ctx) for t in range(x.shape[axis])]
        if not steps:
            step_shape = x.shape[:axis] + x.shape[axis + 1 :]
            step_type = self.spec.infer(TensorType.of(x).with_dims(step_shape), DimEnv())
            if not isinstance(step_type, TensorType):
                raise ShapeError(f"TimeDistributed needs one tensor output, got {step_type}")
            out = [int(d) for d in step_type.dims]  # a concrete type: every dim is a size
            out.insert(axis, 0)
            empty = np.zeros(out, dtype=x.dtype)
            return empty, (x.shape, axis, [])
        return np.stack([y for y, _ in steps], axis), (x.shape, axis, [s for _, s in steps])

    def backward(self, params: Params, saved: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        shape, axis, step_saved = saved
        dxs, total = [], {k: np.zeros_like(v) for k, v in params.items()}
        for t, kept in enumerate(step_saved):
            dx, dparams = self.spec.backward(params, kept, np.take(dy, t, axis))
            dxs.append(dx)
            for k, d in dparams.items():
                total[k] += d
        dx_all = np.stack(dxs, axis) if dxs else np.zeros(shape, dtype=dy.dtype)
        return dx_all, total


# --- PyTorch export: helper classes, and TimeDistributed as the layer it wraps -----------------


@pytorch.emitter(Reverse)
def _emit_reverse(spec: Reverse, in_type: Type) -> pytorch.Emitted:
    return _along_time("Reverse", spec, in_type)


@pytorch.emitter(LastStep)
def _emit_last_step(spec: LastStep, in_type: Type) -> pytorch.Emitted:
    return _along_time("LastStep", spec, in_type)


def _along_time(helper: str, spec: AlongTime, in_type: Type) -> pytorch.Emitted:
    """Inline without lengths (``torch.flip(x, dims=(0,))``, ``x[-1]``); with a padded
    batch's lengths, ``Helper(time axis[, batch axis])`` taking them as an argument."""
    rank = in_type.rank if isinstance(in_type, TensorType) else None
    _, batch = axes_for(in_type, 3 if rank is None else rank)
    extra = () if batch in (1, None) else (batch,)
    axis = spec.time_axis(in_type)
    emitted = pytorch.helper(helper, axis, *extra)
    if helper == "Reverse":
        inline = f"torch.flip({{x}}, dims=({axis},))"
    else:
        inline = f"{{x}}[{':, ' * axis}-1]" if axis >= 0 else f"{{x}}.select({axis}, -1)"
    return attrs.evolve(emitted, lengths="argument", inline=inline)


@pytorch.emitter(Concat)
def _emit_concat(spec: Concat, in_type: Type) -> pytorch.Emitted:
    return pytorch.inline(f"torch.cat({{items}}, dim={spec.axis})")


@pytorch.emitter(Add)
def _emit_add(spec: Add, in_type: Type) -> pytorch.Emitted:
    count = len(in_type.items) if isinstance(in_type, TupleType) else 1
    return pytorch.inline(" + ".join(f"{{{i}}}" for i in range(count)))


@pytorch.emitter(Select)
def _emit_select(spec: Select, in_type: Type) -> pytorch.Emitted:
    return pytorch.inline(f"{{{spec.index}}}")


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
