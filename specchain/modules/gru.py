"""``GRU`` and ``GRUCell`` with PyTorch's options, parameter names, layouts and numerics.

Equations (``torch.nn.GRU``'s, gate order r, z, n; the kernel is ``gru_kernel``)::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Inputs and outputs (``D`` = 2 if bidirectional else 1, ``L`` = num_layers, ``H`` = hidden_size):

- input ``x``: ``[T, B, I]`` (``[B, T, I]`` with ``batch_first``) or unbatched ``[T, I]``; or the
  pair ``(x, h0)`` with ``h0 [L*D, B, H]`` (unbatched ``[L*D, H]``); without it h0 is zero.
- output ``y``: ``[T, B, D*H]``; with ``return_state=True`` the pair ``(y, h_n)``, ``h_n``
  shaped like ``h0``, exactly as ``nn.GRU`` returns.
- variable lengths: ``x`` may be a ``Padded`` (axes in the layer's layout) in either form; ``y``
  is then ``Padded(y, lengths)`` with exactly torch's packed results (as ``LSTM``).

Gradients flow from ``dy`` and ``dh_n`` to ``dx``, ``dh0`` and every weight. Between layers,
training applies inverted dropout with masks from the context's generator, where ``nn.GRU``
applies it. ``T = 0`` is an error, as in PyTorch; ``B = 0`` gives empty outputs.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs
import numpy as np

from specchain.exporters import pytorch
from specchain.modules.dropout import dropout_mask
from specchain.modules.gru_kernel import GRUWeights, gru_backward, gru_forward
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
from specchain.spec import Context, NNModuleSpec, Params, flag, positive_int, probability
from specchain.types import Dim, DimEnv, ShapeError, TensorType, TupleType, Type

SIGNATURE = Signature("GRU", "a", ("h0",))
CELL_SIGNATURE = Signature("GRUCell", "a", ("h",))


def _gru_param_decls(
    input_size: int, hidden: int, layers: int, directions: int, bias: bool
) -> dict[str, ParamDecl]:
    """PyTorch's names and creation order: per layer and direction w_ih, w_hh, b_ih, b_hh."""
    init = uniform(1.0 / math.sqrt(hidden))
    decls: dict[str, ParamDecl] = {}
    for layer in range(layers):
        layer_in = input_size if layer == 0 else hidden * directions
        for direction in range(directions):
            sfx = suffix(layer, direction)
            decls[f"weight_ih{sfx}"] = ParamDecl((3 * hidden, layer_in), init)
            decls[f"weight_hh{sfx}"] = ParamDecl((3 * hidden, hidden), init)
            if bias:
                decls[f"bias_ih{sfx}"] = ParamDecl((3 * hidden,), init)
                decls[f"bias_hh{sfx}"] = ParamDecl((3 * hidden,), init)
    return decls


def _weights(params: Params, sfx: str) -> GRUWeights:
    return GRUWeights(
        params[f"weight_ih{sfx}"],
        params[f"weight_hh{sfx}"],
        params.get(f"bias_ih{sfx}"),
        params.get(f"bias_hh{sfx}"),
    )


@attrs.define(eq=False)
class GRU(NNModuleSpec, family="recurrent"):
    """A multi-layer GRU, option for option ``torch.nn.GRU`` (plus ``return_state``).

    Args:
        input_size: I, features of ``x``.
        hidden_size: H, features of the hidden state.
        num_layers: L stacked layers.
        bias: whether to use ``bias_ih`` / ``bias_hh``.
        batch_first: ``x`` and ``y`` are ``[B, T, F]`` (``h0``/``h_n`` stay ``[L*D, B, H]``).
        dropout: inverted dropout on the outputs of every layer but the last, in training.
        bidirectional: D = 2 directions, outputs concatenated forward-first.
        return_state: output ``(y, h_n)`` instead of ``y``.
    """

    input_size: int = attrs.field(validator=positive_int)
    hidden_size: int = attrs.field(validator=positive_int)
    num_layers: int = attrs.field(default=1, validator=positive_int)
    bias: bool = attrs.field(default=True, validator=flag)
    batch_first: bool = attrs.field(default=False, validator=flag)
    dropout: float = attrs.field(default=0.0, validator=probability)
    bidirectional: bool = attrs.field(default=False, validator=flag)
    return_state: bool = attrs.field(default=False, kw_only=True, validator=flag)

    takes_lengths: ClassVar[bool] = True  # forward reads Padded values: runs them packed

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def declare_params(self) -> dict[str, ParamDecl]:
        return _gru_param_decls(
            self.input_size, self.hidden_size, self.num_layers, self.directions, self.bias
        )

    def describe(self) -> str:
        parts = [f"{self.input_size} -> {self.hidden_size}"]
        if self.num_layers > 1:
            parts.append(f"layers={self.num_layers}")
        if self.bidirectional:
            parts.append("bidirectional")
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
        return self._sequence_type()

    def _sequence_type(self) -> TensorType:
        lead = ("B", "T") if self.batch_first else ("T", "B")
        return TensorType((*lead, self.input_size))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        x_type, state = split_type(in_type, self._sequence_type(), SIGNATURE)
        x_type, batch = checked_sequence(
            x_type, self._sequence_type(), self.batch_first, dims, "GRU"
        )
        lead: tuple[Dim, ...] = (self.num_layers * self.directions,) + (
            () if batch is None else (batch,)
        )
        if state is not None:
            check_state_type(state[0], (*lead, self.hidden_size), "h0", dims)
        y = x_type.with_dims((*x_type.dims[:-1], self.directions * self.hidden_size))
        if not self.return_state:
            return y
        return TupleType((y, TensorType((*lead, self.hidden_size))), ("output", "h_n"))

    # --- forward / backward ---------------------------------------------------------------

    def forward(self, params: Params, x: Any, ctx: Context) -> tuple[Any, Any]:
        x, padded = read_padded(x, SIGNATURE, self.batch_first)
        seq, state, layout = read_sequence(x, SIGNATURE, self.batch_first)
        lengths = None if padded is None else padded.lengths
        steps, batch = seq.shape[:2]
        count = self.num_layers * self.directions
        slot = StateSlot("h0", self.hidden_size, "hidden_size")
        (h0,) = initial_states(state, (slot,), count, batch, seq.dtype, layout)
        masks = self._masks(ctx, (steps, batch, self.directions * self.hidden_size), seq.dtype)
        layer_in = seq
        caches = []
        h_n = np.empty_like(h0)
        for layer in range(self.num_layers):
            if layer > 0 and masks:
                layer_in = layer_in * masks[layer - 1]
            outputs = []
            for direction in range(self.directions):
                k = layer * self.directions + direction
                w = _weights(params, suffix(layer, direction))
                run_in = reverse_within(layer_in, lengths) if direction else layer_in
                out, h_n[k], cache = gru_forward(run_in, h0[k], w, lengths)
                outputs.append(reverse_within(out, lengths) if direction else out)
                caches.append(cache)
            layer_in = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=2)
        y: Any = layout.from_time_major(layer_in)
        if padded is not None:
            y = padded.with_data(y)
        saved = (caches, masks, layout, state is not None, lengths)
        if self.return_state:
            return (y, layout.state_out(h_n)), saved
        return y, saved

    def backward(self, params: Params, saved: Any, dout: Any) -> tuple[Any, Params]:
        """``dout``: ``dy`` or ``(dy, dh_n)`` as plain arrays (``dy`` ignored on padding).
        ``dx`` is plain too, exactly zero on padding; ``(dx, dh0)`` when h0 was given."""
        caches, masks, layout, had_state, lengths = saved
        dy, dh_n = dout if self.return_state else (dout, None)
        dy = layout.to_time_major(dy)
        hidden = self.hidden_size
        shape = (self.num_layers * self.directions, dy.shape[1], hidden)
        # explicit sizes: with B = 0 a -1 in reshape is ambiguous
        dh_n = np.zeros(shape, dy.dtype) if dh_n is None else dh_n.reshape(shape)
        grads: Params = {}
        dh0 = np.empty_like(dh_n)
        d_layer = dy
        for layer in range(self.num_layers - 1, -1, -1):
            d_in = None
            for direction in range(self.directions):
                k = layer * self.directions + direction
                sfx = suffix(layer, direction)
                d_out = d_layer[:, :, direction * hidden : (direction + 1) * hidden]
                if direction:
                    d_out = reverse_within(d_out, lengths)
                lg = gru_backward(_weights(params, sfx), caches[k], d_out, dh_n[k])
                dh0[k] = lg.dh0
                dx = reverse_within(lg.dx, lengths) if direction else lg.dx
                d_in = dx if d_in is None else d_in + dx
                grads[f"weight_ih{sfx}"] = lg.w_ih
                grads[f"weight_hh{sfx}"] = lg.w_hh
                if lg.b_ih is not None and lg.b_hh is not None:
                    grads[f"bias_ih{sfx}"] = lg.b_ih
                    grads[f"bias_hh{sfx}"] = lg.b_hh
            assert d_in is not None
            if layer > 0 and masks:
                d_in = d_in * masks[layer - 1]
            d_layer = d_in
        dx_out = layout.from_time_major(d_layer)
        if not had_state:
            return dx_out, grads
        return (dx_out, layout.state_out(dh0)), grads

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

            def cell(direction: int, layer: int = layer, size: int = size) -> GRU:
                name = f"l{layer}" + ("_reverse" if direction else "")
                return GRU(size, self.hidden_size, bias=self.bias, name=name, rng=0)

            if self.bidirectional:
                flipped = Reverse(name=f"flip_l{layer}") >> cell(1)
                parts.append(branch(cell(0), flipped >> Reverse(name=f"unflip_l{layer}")))
                parts.append(Concat(name=f"concat_l{layer}"))
            else:
                parts.append(cell(0))
            size = self.directions * self.hidden_size
        return serial(*parts)


@attrs.define(eq=False)
class GRUCell(NNModuleSpec, family="recurrent"):
    """One GRU step, like ``torch.nn.GRUCell``: ``x [B, I]`` or ``(x, h)`` -> ``h' [B, H]``;
    unbatched ``[I]`` (with ``h [H]``) -> ``[H]``. Params ``weight_ih [3H, I]``,
    ``weight_hh [3H, H]``, ``bias_ih [3H]``, ``bias_hh [3H]``; equations as ``GRU``'s.
    """

    input_size: int = attrs.field(validator=positive_int)
    hidden_size: int = attrs.field(validator=positive_int)
    bias: bool = attrs.field(default=True, validator=flag)

    def declare_params(self) -> dict[str, ParamDecl]:
        decls = _gru_param_decls(self.input_size, self.hidden_size, 1, 1, self.bias)
        return {name.removesuffix("_l0"): decl for name, decl in decls.items()}

    def describe(self) -> str:
        return f"{self.input_size} -> {self.hidden_size}" + ("" if self.bias else ", no bias")

    @property
    def in_type(self) -> Type:
        return TensorType(("B", self.input_size))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        x_type, state = split_type(in_type, TensorType(("B", self.input_size)), CELL_SIGNATURE)
        if x_type.variadic:
            x_type = x_type.with_dims(("B", x_type.dims[-1]))
        if x_type.rank not in (1, 2):
            raise ShapeError(
                f"rank: expected [B, {self.input_size}] or [{self.input_size}], got {x_type}"
            )
        dims.equal(x_type.dims[-1], self.input_size, "feature size")
        if x_type.rank == 2:
            check_one_step(x_type, dims, "GRUCell")
        lead = x_type.dims[:-1]
        if state is not None:
            check_state_type(state[0], (*lead, self.hidden_size), "h", dims)
        return TensorType((*lead, self.hidden_size))

    def forward(self, params: Params, x: Any, ctx: Context) -> tuple[Any, Any]:
        inp, state = split_input(x, CELL_SIGNATURE)
        unbatched = inp.ndim == 1
        batch = inp.reshape(1, -1) if unbatched else inp
        shape = (batch.shape[0], self.hidden_size)
        if state is None:
            h = np.zeros(shape, batch.dtype)
        else:
            expected = (self.hidden_size,) if unbatched else shape
            if state[0].shape != expected:
                raise ShapeError(f"h must have shape {list(expected)}, got {list(state[0].shape)}")
            h = state[0].reshape(shape)
        w = _weights({k + "_l0": v for k, v in params.items()}, "_l0")
        _, h1, cache = gru_forward(batch[None], h, w)
        return (h1[0] if unbatched else h1), (cache, unbatched, state is not None)

    def backward(self, params: Params, saved: Any, dout: Any) -> tuple[Any, Params]:
        cache, unbatched, had_state = saved
        dh = dout.reshape(cache.hs.shape[1:])
        w = _weights({k + "_l0": v for k, v in params.items()}, "_l0")
        lg = gru_backward(w, cache, np.zeros((1, *dh.shape), dh.dtype), dh)
        dx, dh0 = lg.dx[0], lg.dh0
        if unbatched:
            dx, dh0 = dx[0], dh0[0]
        grads: Params = {"weight_ih": lg.w_ih, "weight_hh": lg.w_hh}
        if lg.b_ih is not None and lg.b_hh is not None:
            grads["bias_ih"], grads["bias_hh"] = lg.b_ih, lg.b_hh
        return ((dx, dh0) if had_state else dx), grads


# --- PyTorch export ----------------------------------------------------------------------------


@pytorch.emitter(GRU)
def _emit_gru(spec: GRU, in_type: Type) -> pytorch.Emitted:
    options = pytorch.non_default(
        spec, num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False
    )
    constructor = pytorch.call("nn.GRU", spec.input_size, spec.hidden_size, **options)
    drop_state = not spec.return_state  # lstm, _ = self.lstm(x)
    return pytorch.Emitted(constructor, splat=True, drop_state=drop_state, lengths="pack")


@pytorch.emitter(GRUCell)
def _emit_gru_cell(spec: GRUCell, in_type: Type) -> pytorch.Emitted:
    options = pytorch.non_default(spec, bias=True)
    constructor = pytorch.call("nn.GRUCell", spec.input_size, spec.hidden_size, **options)
    return pytorch.Emitted(constructor, splat=True)
