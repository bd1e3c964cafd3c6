"""What every recurrent family (LSTM, GRU, RNN) shares: input and state, layouts, names.

Shapes (``F`` features, ``L`` layers, ``D`` directions, ``S`` a state's feature size):

- a sequence arrives time-major ``[T, B, F]``, batch-first ``[B, T, F]`` or unbatched ``[T, F]``;
  the kernels work on time-major ``[T, B, F]`` and ``Layout`` converts both ways;
- a multi-layer family's states are ``[L*D, B, S]`` (unbatched ``[L*D, S]``), whatever
  ``batch_first`` says, as in PyTorch; a cell's are ``[B, S]`` (unbatched ``[S]``);
- the input is ``x`` or ``(x, state)``, where ``state`` is one array (``h0`` of a GRU or RNN) or
  a tuple of them (``(h0, c0)`` of an LSTM): ``Signature`` says which.

A forward takes a ``Padded`` value apart with ``x, padded = read_padded(x, signature,
batch_first)`` (variable lengths: ``specchain.modules.lengths_kernel``), then reads
``x_tbf, state, layout = read_sequence(x, signature, batch_first)``, builds its
zero or checked initial states with ``initial_states(...)`` (each ``[L*D, B, S]``), runs, and
gives back ``layout.from_time_major(y_tbf)`` and ``layout.state_out(h_n)``; its backward does
the same with the gradients. ``infer`` uses ``split_type``, ``sequence_dims``, ``check_steps``
and ``check_state_type``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from specchain.padded import Padded
from specchain.types import (
    BATCH,
    TIME,
    AnyType,
    Dim,
    DimEnv,
    ShapeError,
    TensorType,
    TupleType,
    Type,
)


def suffix(layer: int, direction: int) -> str:
    """PyTorch's parameter suffix: ``_l0``, ``_l1``, ``_l0_reverse`` (``weight_ih_l1_reverse``)."""
    return f"_l{layer}" + ("_reverse" if direction else "")


@attrs.frozen
class Signature:
    """How a family's input with a state looks.

    ``family`` names it in messages (``"LSTM"``), ``article`` is its indefinite article
    (``"an"``) and ``states`` the names of the initial states: ``("h0", "c0")`` for a tuple state,
    ``("h0",)`` for a single array.
    """

    family: str
    article: str
    states: tuple[str, ...]

    @property
    def state_form(self) -> str:
        """``"(h0, c0)"`` or ``"h0"``: the state as the user writes it."""
        return self.states[0] if len(self.states) == 1 else "(" + ", ".join(self.states) + ")"

    @property
    def usage(self) -> str:
        """``"x or (x, (h0, c0))"``."""
        return f"x or (x, {self.state_form})"


# --- values -----------------------------------------------------------------------------------


def split_input(x: Any, signature: Signature) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
    """``x`` or ``(x, state)`` -> ``(x, state parts or None)``; a single-array state comes back
    as a 1-tuple, so callers treat every family alike."""
    if not isinstance(x, tuple):
        return x, None
    single = len(signature.states) == 1
    if len(x) == 2 and single and isinstance(x[1], np.ndarray):
        return x[0], (x[1],)
    if len(x) != 2 or single or not isinstance(x[1], tuple) or len(x[1]) != len(signature.states):
        raise ShapeError(f"{signature.article} {signature.family} takes {signature.usage}")
    return x[0], tuple(x[1])


def check_steps(steps: Dim, family: str) -> None:
    """``T = 0`` is an error, as in PyTorch (there is no last state to return)."""
    if steps == 0:
        raise ShapeError(f"{family} needs at least one time step, got T = 0")


@attrs.frozen
class Layout:
    """Where the batch and time axes of a user's sequence are.

    ``batch_first``: ``[B, T, F]``; ``unbatched``: ``[T, F]`` with states ``[L*D, S]``.
    Otherwise ``[T, B, F]``. (A cell has no time axis; it reshapes ``[F]`` to ``[1, F]`` itself.)
    """

    batch_first: bool
    unbatched: bool

    def to_time_major(self, seq: np.ndarray) -> np.ndarray:
        """The user's sequence (or its gradient) as ``[T, B, F]`` (a view)."""
        if self.unbatched:
            return seq[:, None, :]
        return seq.transpose(1, 0, 2) if self.batch_first else seq

    def from_time_major(self, seq: np.ndarray) -> np.ndarray:
        """``[T, B, F]`` back in the user's layout (a view)."""
        if self.unbatched:
            return seq[:, 0, :]
        return seq.transpose(1, 0, 2) if self.batch_first else seq

    def state_in(self, state: np.ndarray) -> np.ndarray:
        """A user's state ``[N, B, S]`` (unbatched ``[N, S]``) as ``[N, B, S]`` (a view)."""
        return state[:, None, :] if self.unbatched else state

    def state_out(self, state: np.ndarray) -> np.ndarray:
        """``[N, B, S]`` back as the user's ``[N, B, S]`` (unbatched ``[N, S]``) (a view)."""
        return state[:, 0] if self.unbatched else state


def read_sequence(
    x: Any, signature: Signature, batch_first: bool
) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None, Layout]:
    """A forward's input in any accepted layout -> ``(x [T, B, F], state parts or None,
    layout)``; refuses ``T = 0``. The state parts are as the user gave them (see
    ``initial_states``)."""
    seq, state = split_input(x, signature)
    layout = Layout(batch_first, unbatched=seq.ndim == 2)
    x_tbf = layout.to_time_major(seq)
    check_steps(x_tbf.shape[0], signature.family)
    return x_tbf, state, layout


def read_padded(x: Any, signature: Signature, batch_first: bool) -> tuple[Any, Padded | None]:
    """``Padded`` or ``(Padded, state)`` -> ``(the same input holding the plain data, the
    Padded)``; anything else comes back as it is with None. Refuses a ``Padded`` whose axes are
    not the layer's layout (time-major ``time_axis=0, batch_axis=1``, batch-first ``1, 0``,
    unbatched ``0, None``) or whose lengths do not fit its data."""
    padded = x[0] if isinstance(x, tuple) and len(x) == 2 else x
    if not isinstance(padded, Padded):
        return x, None
    data = padded.data
    unbatched = getattr(data, "ndim", 0) == 2
    axes: tuple[int, int | None] = (0, None) if unbatched else ((1, 0) if batch_first else (0, 1))
    if (padded.time_axis, padded.batch_axis) != axes:
        layout = "[T, F]" if unbatched else ("[B, T, F]" if batch_first else "[T, B, F]")
        raise ShapeError(
            f"{signature.family} (batch_first={batch_first}) reads {layout} data, but the Padded "
            f"input says time_axis={padded.time_axis}, batch_axis={padded.batch_axis}; build it "
            f"as Padded(x, lengths, time_axis={axes[0]}, batch_axis={axes[1]})"
        )
    padded.check(f"{signature.family} input")
    return ((data, x[1]) if x is not padded else data), padded


@attrs.frozen
class StateSlot:
    """One initial state: its name (``"h0"``), feature size S, and the hyper-parameter that sets
    S (``"hidden_size"``, ``"proj_size"``), named when a shape is wrong."""

    name: str
    size: int
    feature: str


def initial_states(
    given: tuple[np.ndarray, ...] | None,
    slots: Sequence[StateSlot],
    count: int,
    batch: int,
    dtype: np.dtype[Any],
    layout: Layout,
) -> tuple[np.ndarray, ...]:
    """The initial states as ``[count, B, S]`` arrays (``count`` = L*D): zeros when ``given`` is
    None, else the user's arrays checked for shape (``[count, B, S]``, unbatched ``[count, S]``)
    and dtype (the input's)."""
    if given is None:
        return tuple(np.zeros((count, batch, slot.size), dtype) for slot in slots)
    out = []
    for slot, value in zip(slots, given):
        expected = (count, slot.size) if layout.unbatched else (count, batch, slot.size)
        if value.shape != expected:
            axes = "num_layers * num_directions" + ("" if layout.unbatched else ", batch")
            raise ShapeError(
                f"{slot.name} must have shape {list(expected)} ({axes}, {slot.feature}), "
                f"got {list(value.shape)}"
            )
        if value.dtype != dtype:
            raise TypeError(f"{slot.name} dtype {value.dtype} != input dtype {dtype}")
        out.append(layout.state_in(value))
    return tuple(out)


# --- types ------------------------------------------------------------------------------------


def split_type(
    t: Type, sequence: TensorType, signature: Signature
) -> tuple[TensorType, tuple[Type, ...] | None]:
    """``(x type, state part types or None)``; an ``x`` known only at call time (``ANY``)
    reads as ``sequence``, the spec's own input type, and an ``ANY`` state as one ``ANY`` per
    part."""
    parts = len(signature.states)
    state_types: tuple[Type, ...] | None = None
    if isinstance(t, TupleType):
        state = t.items[1] if len(t.items) == 2 else None
        if isinstance(state, AnyType):
            state_types = (state,) * parts
        elif parts == 1 and isinstance(state, TensorType):
            state_types = (state,)
        elif parts > 1 and isinstance(state, TupleType) and len(state.items) == parts:
            state_types = state.items
        else:
            raise ShapeError(f"takes {signature.usage}, got {t}")
        x_type = t.items[0]
    else:
        x_type = t
    if isinstance(x_type, AnyType):
        x_type = sequence
    if not isinstance(x_type, TensorType) or x_type.dtype != "float":
        raise ShapeError(f"takes a float sequence, got {x_type}")
    return x_type, state_types


def sequence_dims(x_type: TensorType, batch_first: bool) -> tuple[Dim, Dim | None]:
    """``(T, B)`` of a ``[T, B, F]`` / ``[B, T, F]`` type, ``(T, None)`` of an unbatched
    ``[T, F]``."""
    if x_type.rank == 2:
        return x_type.dims[0], None
    first, second = x_type.dims[:2]
    return (second, first) if batch_first else (first, second)


def checked_sequence(
    x_type: TensorType, own: TensorType, batch_first: bool, dims: DimEnv, family: str
) -> tuple[TensorType, Dim | None]:
    """A multi-layer family's ``x`` type checked against its own ``[T, B, I]`` / ``[B, T, I]``
    (``own``): a leading ``...`` takes its rank; rank 3 or unbatched ``[T, I]``; the feature size;
    the axis roles; ``T >= 1``. Returns the type and its batch dim (None when unbatched)."""
    size = own.dims[-1]
    if x_type.variadic:
        x_type = dims.fix_rank(x_type, own.dims, "input")
    if x_type.rank not in (2, 3):
        raise ShapeError(f"rank: expected [T, B, {size}] or [T, {size}], got {x_type}")
    dims.equal(x_type.dims[-1], size, "feature size")
    check_layout(x_type, batch_first, dims, family)
    time, batch = sequence_dims(x_type, batch_first)
    check_steps(time, family)
    return x_type, batch


def check_layout(x_type: TensorType, batch_first: bool, dims: DimEnv, family: str) -> None:
    """Refuse a sequence whose axis roles do not fit the layer's layout: ``[B, T, F]`` into a
    time-major layer (or the reverse), or ``[B, F]`` (no time axis) read as an unbatched
    ``[T, F]``; the message says which layout the input has and the fix."""
    expected: tuple[tuple[str, str], ...] = (("T", TIME),)
    if x_type.rank == 3:
        expected = (("B", BATCH), ("T", TIME)) if batch_first else (("T", TIME), ("B", BATCH))
    try:
        for k, (symbol, role) in enumerate(expected):
            dims.expect_role(x_type.dims[k], role, symbol, f"dim {k}")
    except ShapeError as err:
        if x_type.rank == 3:
            layout = "time-major [T, B, F]" if batch_first else "batch-first [B, T, F]"
            fix = f"the input is {layout}: set batch_first={not batch_first} to match it"
        else:
            fix = (
                f"{x_type} has no time axis (a layer before, such as LastStep, removed it): "
                f"{family} reads sequences; use a cell for one step, or move that layer after it"
            )
        raise ShapeError(f"{err}; {fix}") from None


def check_one_step(x_type: TensorType, dims: DimEnv, family: str) -> None:
    """A cell's ``[B, F]`` input must not be a sequence ``[T, F]``."""
    try:
        dims.expect_role(x_type.dims[0], BATCH, "B", "dim 0")
    except ShapeError as err:
        raise ShapeError(
            f"{err}; {family} takes one step [B, F]: run it over a sequence with the layer "
            "that takes sequences, or take one step first (LastStep)"
        ) from None


def check_state_type(t: Type, expected: tuple[Dim, ...], what: str, dims: DimEnv) -> None:
    """A state type must be a float ``expected`` (sizes unified through ``dims``); the message
    names the whole expected and actual shapes, like PyTorch's."""
    if isinstance(t, AnyType):  # known only when data arrives: forward checks it then
        return
    shown = "[" + ", ".join(map(str, (dims.resolve(d) for d in expected))) + "]"
    if not isinstance(t, TensorType) or t.dtype != "float" or t.rank != len(expected):
        raise ShapeError(f"{what} must be {shown}, got {t}")
    for k, (actual, want) in enumerate(zip(t.dims, expected)):
        try:
            dims.equal(actual, want, f"dim {k}")
        except ShapeError as err:
            raise ShapeError(f"{what} must be {shown}, got {t}: {err}") from None
