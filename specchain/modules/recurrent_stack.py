"""Layers, directions and cells of every recurrent family, written once.

A family (LSTM, GRU, RNN, the LSTM variants) supplies a ``Direction``: its kernel for one layer
and one direction over a time-major sequence, addressed by a parameter suffix (``"_l1_reverse"``
in a stack, ``""`` in a cell). ``Stacked`` turns it into PyTorch's multi-layer, optionally
bidirectional module; ``Cell`` into its one-step cell.

Shapes (``L`` layers, ``D`` directions, ``P`` each direction's output size, ``S`` a state's size):

- ``Direction.forward(params, sfx, x [T, B, F], states ([B, S], ...), lengths [B] | None)`` ->
  ``(y [T, B, P], final states ([B, S], ...), cache)``; ``y`` zero past each length, finals at
  each example's last step;
- ``Direction.backward(params, sfx, cache, dy [T, B, P], d_finals ([B, S], ...))`` ->
  ``(dx [T, B, F], d_initial states, gradients by full parameter name)``.

A stack runs layer 0 on the input, every later layer on the concatenated ``[T, B, D*P]`` outputs
of the one below (with inverted dropout between layers in training, where PyTorch applies it);
the reverse direction reads each example's own first ``L_b`` steps backwards
(``reverse_within``). States are ``[L*D, B, S]`` (unbatched ``[L*D, S]``), indexed
``layer * D + direction``, as in PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import numpy as np

from specchain.modules.dropout import dropout_mask
from specchain.modules.lengths_kernel import reverse_within
from specchain.modules.recurrent_base import (
    Signature,
    StateSlot,
    check_one_step,
    check_state_type,
    checked_sequence,
    initial_states,
    read_padded,
    read_sequence,
    split_input,
    split_type,
    suffix,
)
from specchain.params import ParamDecl, uniform
from specchain.spec import Context, NNModuleSpec, Params
from specchain.types import Dim, DimEnv, ShapeError, TensorType, TupleType, Type

States = tuple[np.ndarray, ...]


class Direction(Protocol):
    """One layer, one direction of a family (see the module docstring for shapes)."""

    def forward(
        self, params: Params, sfx: str, x: np.ndarray, states: States, lengths: np.ndarray | None
    ) -> tuple[np.ndarray, States, Any]: ...

    def backward(
        self, params: Params, sfx: str, cache: Any, dy: np.ndarray, d_finals: States
    ) -> tuple[np.ndarray, States, Params]: ...


def stacked_param_decls(
    input_size: int,
    hidden: int,
    rows: int,
    layers: int = 1,
    directions: int = 1,
    bias: bool = True,
    out: int | None = None,
    extra: Callable[[str], dict[str, tuple[int, ...]]] | None = None,
) -> dict[str, ParamDecl]:
    """PyTorch's names, shapes and creation order, per layer and direction: ``weight_ih
    [rows, F]``, ``weight_hh [rows, P]``, ``bias_ih``, ``bias_hh [rows]``, then the family's
    ``extra(suffix)`` shapes (``weight_hr``, peepholes); every one ``U(-1/sqrt(H), 1/sqrt(H))``.
    ``P`` = ``out`` (a projection) or ``hidden``; ``F`` = ``input_size``, then ``D * P``. A cell
    is one layer and one direction with the suffix ``_l0`` removed."""
    init = uniform(1.0 / math.sqrt(hidden))
    out = out or hidden
    decls: dict[str, ParamDecl] = {}
    for layer in range(layers):
        layer_in = input_size if layer == 0 else out * directions
        for direction in range(directions):
            sfx = suffix(layer, direction)
            decls[f"weight_ih{sfx}"] = ParamDecl((rows, layer_in), init)
            decls[f"weight_hh{sfx}"] = ParamDecl((rows, out), init)
            if bias:
                decls[f"bias_ih{sfx}"] = ParamDecl((rows,), init)
                decls[f"bias_hh{sfx}"] = ParamDecl((rows,), init)
            for name, shape in (extra(sfx) if extra else {}).items():
                decls[name] = ParamDecl(shape, init)
    return decls


def cell_param_decls(decls: dict[str, ParamDecl]) -> dict[str, ParamDecl]:
    """A one-layer, one-direction stack's declarations as a cell's: no ``_l0`` suffix."""
    return {name.removesuffix("_l0"): decl for name, decl in decls.items()}


def final_name(slot: StateSlot) -> str:
    """The output name of an initial state: ``h0`` -> ``h_n``."""
    return slot.name.removesuffix("0") + "_n"


class Stacked:
    """The multi-layer module of a family: ``infer``, ``forward``, ``backward``, ``describe``
    and ``components`` over the family's ``Direction``.

    A family class mixes this in before ``NNModuleSpec``, declares PyTorch's fields (at least
    ``input_size``, ``hidden_size``, ``num_layers``, ``bias``, ``batch_first``, ``dropout``,
    ``bidirectional``, ``return_state``) and implements ``direction``, ``state_slots`` and
    ``lane`` (and ``options_description`` for options beyond those).
    """

    signature: ClassVar[Signature]
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    dropout: float
    bidirectional: bool
    return_state: bool

    def direction(self) -> Direction:
        raise NotImplementedError

    def state_slots(self) -> tuple[StateSlot, ...]:
        raise NotImplementedError

    def lane(self, input_size: int, name: str) -> NNModuleSpec:
        """One layer, one direction as its own spec (for diagrams)."""
        raise NotImplementedError

    def options_description(self) -> list[str]:
        """The family's own options for ``describe`` (after the layer options)."""
        return []

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def out_size(self) -> int:
        """P: the size of each direction's output."""
        return self.hidden_size

    def describe(self) -> str:
        parts = [f"{self.input_size} -> {self.hidden_size}"]
        if self.num_layers > 1:
            parts.append(f"layers={self.num_layers}")
        if self.bidirectional:
            parts.append("bidirectional")
        parts += self.options_description()
        if self.dropout:
            parts.append(f"dropout={self.dropout}")
        if self.batch_first:
            parts.append("batch_first")
        if not self.bias:
            parts.append("no bias")
        return ", ".join(parts)

    # --- shapes -------------------------------------------------------------------------------

    @property
    def in_type(self) -> Type:
        return self.sequence_type()

    def sequence_type(self) -> TensorType:
        lead = ("B", "T") if self.batch_first else ("T", "B")
        return TensorType((*lead, self.input_size))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        own = self.sequence_type()
        x_type, state = split_type(in_type, own, self.signature)
        x_type, batch = checked_sequence(x_type, own, self.batch_first, dims, self.signature.family)
        lead: tuple[Dim, ...] = (self.num_layers * self.directions,) + (
            () if batch is None else (batch,)
        )
        slots = self.state_slots()
        if state is not None:
            for slot, t in zip(slots, state):
                check_state_type(t, (*lead, slot.size), slot.name, dims)
        y = x_type.with_dims((*x_type.dims[:-1], self.directions * self.out_size))
        if not self.return_state:
            return y
        finals = tuple(TensorType((*lead, slot.size)) for slot in slots)
        if len(finals) == 1:
            return TupleType((y, finals[0]), ("output", final_name(slots[0])))
        names = tuple(final_name(slot) for slot in slots)
        return TupleType((y, TupleType(finals, names)), ("output", f"({', '.join(names)})"))

    # --- forward / backward ---------------------------------------------------------------

    def forward(self, params: Params, x: Any, ctx: Context) -> tuple[Any, Any]:
        x, padded = read_padded(x, self.signature, self.batch_first)
        seq, state, layout = read_sequence(x, self.signature, self.batch_first)
        lengths = None if padded is None else padded.lengths
        steps, batch = seq.shape[:2]
        count = self.num_layers * self.directions
        initial = initial_states(state, self.state_slots(), count, batch, seq.dtype, layout)
        finals = tuple(np.empty_like(s) for s in initial)
        masks = self._masks(ctx, (steps, batch, self.directions * self.out_size), seq.dtype)
        kernel = self.direction()
        layer_in, caches = seq, []
        for layer in range(self.num_layers):
            if layer > 0 and masks:
                layer_in = layer_in * masks[layer - 1]
            outputs = []
            for direction in range(self.directions):
                k = layer * self.directions + direction
                run_in = reverse_within(layer_in, lengths) if direction else layer_in
                starts = tuple(s[k] for s in initial)
                out, ends, cache = kernel.forward(
                    params, suffix(layer, direction), run_in, starts, lengths
                )
                for final, end in zip(finals, ends):
                    final[k] = end
                outputs.append(reverse_within(out, lengths) if direction else out)
                caches.append(cache)
            layer_in = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=2)
        y: Any = layout.from_time_major(layer_in)
        if padded is not None:
            y = padded.with_data(y)
        saved = (caches, masks, layout, state is not None, lengths)
        if not self.return_state:
            return y, saved
        out_states = tuple(layout.state_out(s) for s in finals)
        return (y, out_states[0] if len(out_states) == 1 else out_states), saved

    def backward(self, params: Params, saved: Any, dout: Any) -> tuple[Any, Params]:
        """``dout``: ``dy`` or ``(dy, d_finals)`` as plain arrays (``dy`` ignored on padding).
        ``dx`` is plain too, exactly zero on padding; ``(dx, d_initial)`` when a state was given."""
        caches, masks, layout, had_state, lengths = saved
        slots = self.state_slots()
        dy, d_state = dout if self.return_state else (dout, None)
        dy = layout.to_time_major(dy)
        lead = (self.num_layers * self.directions, dy.shape[1])
        parts = (d_state,) if len(slots) == 1 else (d_state or (None,) * len(slots))
        # explicit sizes: with B = 0 a -1 in reshape is ambiguous
        d_finals = tuple(
            np.zeros((*lead, slot.size), dy.dtype) if d is None else d.reshape(*lead, slot.size)
            for slot, d in zip(slots, parts)
        )
        d_initial = tuple(np.empty_like(d) for d in d_finals)
        kernel, grads, p = self.direction(), {}, self.out_size
        d_layer = dy
        for layer in range(self.num_layers - 1, -1, -1):
            d_in = None
            for direction in range(self.directions):
                k = layer * self.directions + direction
                d_out = d_layer[:, :, direction * p : (direction + 1) * p]
                if direction:
                    d_out = reverse_within(d_out, lengths)
                d_ends = tuple(d[k] for d in d_finals)
                dx, d_starts, layer_grads = kernel.backward(
                    params, suffix(layer, direction), caches[k], d_out, d_ends
                )
                for d, start in zip(d_initial, d_starts):
                    d[k] = start
                grads.update(layer_grads)
                dx = reverse_within(dx, lengths) if direction else dx
                d_in = dx if d_in is None else d_in + dx
            assert d_in is not None
            if layer > 0 and masks:
                d_in = d_in * masks[layer - 1]
            d_layer = d_in
        dx_out = layout.from_time_major(d_layer)
        if not had_state:
            return dx_out, grads
        d_user = tuple(layout.state_out(d) for d in d_initial)
        return (dx_out, d_user[0] if len(d_user) == 1 else d_user), grads

    def _masks(
        self, ctx: Context, shape: tuple[int, ...], dtype: np.dtype[Any]
    ) -> list[np.ndarray]:
        if not ctx.train or self.dropout == 0 or self.num_layers == 1:
            return []
        return [
            dropout_mask(ctx.rng, shape, self.dropout, dtype) for _ in range(self.num_layers - 1)
        ]

    # --- diagrams -------------------------------------------------------------------------

    def components(self) -> Any:
        """Layers and directions as a chain (forward/backward lanes), for diagrams."""
        if self.num_layers == 1 and not self.bidirectional:
            return None
        from specchain.chain import branch, serial
        from specchain.modules.dropout import Dropout
        from specchain.modules.sequence import Concat, Reverse

        parts: list[Any] = []
        size = self.input_size
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout:
                parts.append(Dropout(self.dropout, name=f"dropout_l{layer - 1}"))
            if self.bidirectional:
                flipped = Reverse(name=f"flip_l{layer}") >> self.lane(size, f"l{layer}_reverse")
                unflipped = flipped >> Reverse(name=f"unflip_l{layer}")
                parts.append(branch(self.lane(size, f"l{layer}"), unflipped))
                parts.append(Concat(name=f"concat_l{layer}"))
            else:
                parts.append(self.lane(size, f"l{layer}"))
            size = self.directions * self.out_size
        return serial(*parts)


class Cell:
    """The one-step cell of a family: ``x [B, I]`` or ``(x, state)`` -> the next state, each
    part ``[B, S]`` (unbatched: ``[I]`` and ``[S]``); one part comes back bare, several as a
    tuple (``(h', c')``). The family implements ``direction`` and ``state_slots`` (named
    ``h``, ``c``); its parameters carry no suffix."""

    signature: ClassVar[Signature]
    input_size: int
    hidden_size: int
    bias: bool

    def direction(self) -> Direction:
        raise NotImplementedError

    def state_slots(self) -> tuple[StateSlot, ...]:
        raise NotImplementedError

    def options_description(self) -> list[str]:
        """The family's own options for ``describe``."""
        return []

    def describe(self) -> str:
        parts = [f"{self.input_size} -> {self.hidden_size}", *self.options_description()]
        return ", ".join(parts + ([] if self.bias else ["no bias"]))

    @property
    def in_type(self) -> Type:
        return TensorType(("B", self.input_size))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        x_type, state = split_type(in_type, TensorType(("B", self.input_size)), self.signature)
        if x_type.variadic:
            x_type = x_type.with_dims(("B", x_type.dims[-1]))
        if x_type.rank not in (1, 2):
            raise ShapeError(
                f"rank: expected [B, {self.input_size}] or [{self.input_size}], got {x_type}"
            )
        dims.equal(x_type.dims[-1], self.input_size, "feature size")
        if x_type.rank == 2:
            check_one_step(x_type, dims, self.signature.family)
        lead = x_type.dims[:-1]
        slots = self.state_slots()
        if state is not None:
            for slot, t in zip(slots, state):
                check_state_type(t, (*lead, slot.size), slot.name, dims)
        outs = tuple(TensorType((*lead, slot.size)) for slot in slots)
        return outs[0] if len(outs) == 1 else TupleType(outs, tuple(s.name for s in slots))

    def forward(self, params: Params, x: Any, ctx: Context) -> tuple[Any, Any]:
        inp, state = split_input(x, self.signature)
        unbatched = inp.ndim == 1
        batch = inp.reshape(1, -1) if unbatched else inp
        slots = self.state_slots()
        if state is None:
            starts = tuple(np.zeros((batch.shape[0], s.size), batch.dtype) for s in slots)
        else:
            checked = []
            for slot, value in zip(slots, state):
                expected = (slot.size,) if unbatched else (batch.shape[0], slot.size)
                if value.shape != expected:
                    raise ShapeError(
                        f"{slot.name} must have shape {list(expected)}, got {list(value.shape)}"
                    )
                checked.append(value.reshape(batch.shape[0], slot.size))
            starts = tuple(checked)
        _, ends, cache = self.direction().forward(params, "", batch[None], starts, None)
        if unbatched:
            ends = tuple(e[0] for e in ends)
        saved = (cache, unbatched, state is not None, batch.shape[0])
        return (ends[0] if len(ends) == 1 else ends), saved

    def backward(self, params: Params, saved: Any, dout: Any) -> tuple[Any, Params]:
        cache, unbatched, had_state, batch = saved
        slots = self.state_slots()
        parts = (dout,) if len(slots) == 1 else tuple(dout)
        d_ends = tuple(d.reshape(batch, s.size) for d, s in zip(parts, slots))
        zeros = np.zeros((1, batch, slots[0].size), d_ends[0].dtype)
        dx, d_starts, grads = self.direction().backward(params, "", cache, zeros, d_ends)
        dx = dx[0]
        if unbatched:
            dx, d_starts = dx[0], tuple(d[0] for d in d_starts)
        if not had_state:
            return dx, grads
        return (dx, d_starts[0] if len(d_starts) == 1 else d_starts), grads
