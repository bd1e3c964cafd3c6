"""``LSTM`` and ``LSTMCell`` with PyTorch's options, parameter names, layouts and numerics.

Inputs and outputs (``D`` = 2 if bidirectional else 1, ``L`` = num_layers, ``P`` = proj_size or
hidden_size):

- input ``x``: ``[T, B, I]`` (``[B, T, I]`` with ``batch_first``) or unbatched ``[T, I]``; or the
  tuple ``(x, (h0, c0))`` with ``h0 [L*D, B, P]`` and ``c0 [L*D, B, H]`` (unbatched:
  ``[L*D, P]``, ``[L*D, H]``). Without a state, both start at zero.
- output ``y``: ``[T, B, D*P]``; with ``return_state=True`` the tuple
  ``(y, (h_n, c_n))`` shaped like ``(h0, c0)``, exactly as ``nn.LSTM`` returns.
- variable lengths: ``x`` may be a ``Padded`` (axes in the layer's layout) in either form; the
  output ``y`` is then ``Padded(y, lengths)`` with the same axes and exactly torch's packed
  results: ``y`` zero past each length, ``h_n``/``c_n`` each example's state at its own last
  step, the reverse direction starting at each example's end, nothing flowing from padding.

Gradients flow to and from every part: ``dy``, ``dh_n`` and ``dc_n`` in; ``dx``, ``dh0``, ``dc0``
and every weight out. Between layers, training applies inverted dropout with masks drawn from the
context's generator (identity in inference), exactly where ``nn.LSTM`` applies it. ``T = 0`` is an
error, as in PyTorch; ``B = 0`` gives empty outputs.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs
import numpy as np

from specchain.exporters import pytorch
from specchain.modules.dropout import dropout_mask
from specchain.modules.lengths_kernel import reverse_within
from specchain.modules.lstm_kernel import LayerWeights, layer_backward, layer_forward
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
from specchain.spec import (
    Context,
    NNModuleSpec,
    Params,
    flag,
    non_negative_int,
    positive_int,
    probability,
)
from specchain.types import Dim, DimEnv, ShapeError, SpecError, TensorType, TupleType, Type

STATE_NAMES = ("h_n", "c_n")
SIGNATURE = Signature("LSTM", "an", ("h0", "c0"))


def _lstm_param_decls(
    input_size: int, hidden: int, layers: int, directions: int, bias: bool, proj: int
) -> dict[str, ParamDecl]:
    """PyTorch's names and creation order: per layer and direction w_ih, w_hh, b_ih, b_hh, w_hr."""
    init = uniform(1.0 / math.sqrt(hidden))
    out = proj or hidden
    decls: dict[str, ParamDecl] = {}
    for layer in range(layers):
        layer_in = input_size if layer == 0 else out * directions
        for direction in range(directions):
            sfx = suffix(layer, direction)
            decls[f"weight_ih{sfx}"] = ParamDecl((4 * hidden, layer_in), init)
            decls[f"weight_hh{sfx}"] = ParamDecl((4 * hidden, out), init)
            if bias:
                decls[f"bias_ih{sfx}"] = ParamDecl((4 * hidden,), init)
                decls[f"bias_hh{sfx}"] = ParamDecl((4 * hidden,), init)
            if proj:
                decls[f"weight_hr{sfx}"] = ParamDecl((proj, hidden), init)
    return decls


def _weights(params: Params, sfx: str) -> LayerWeights:
    bias = None
    if f"bias_ih{sfx}" in params:
        bias = params[f"bias_ih{sfx}"] + params[f"bias_hh{sfx}"]
    return LayerWeights(
        params[f"weight_ih{sfx}"], params[f"weight_hh{sfx}"], bias, params.get(f"weight_hr{sfx}")
    )


@attrs.define(eq=False)
class LSTM(NNModuleSpec, family="recurrent"):
    """A multi-layer LSTM, option for option ``torch.nn.LSTM`` (plus ``return_state``).

    Args:
        input_size: I, features of ``x``.
        hidden_size: H, features of the cell state.
        num_layers: L stacked layers.
        bias: whether to use ``bias_ih`` / ``bias_hh``.
        batch_first: ``x`` and ``y`` are ``[B, T, F]`` (states stay ``[L*D, B, F]``).
        dropout: inverted dropout on the outputs of every layer but the last, in training.
        bidirectional: D = 2 directions, outputs concatenated forward-first.
        proj_size: P < H, project each hidden state with ``weight_hr`` (0 = no projection).
        return_state: output ``(y, (h_n, c_n))`` instead of ``y``.
    """

    input_size: int = attrs.field(validator=positive_int)
    hidden_size: int = attrs.field(validator=positive_int)
    num_layers: int = attrs.field(default=1, validator=positive_int)
    bias: bool = attrs.field(default=True, validator=flag)
    batch_first: bool = attrs.field(default=False, validator=flag)
    dropout: float = attrs.field(default=0.0, validator=probability)
    bidirectional: bool = attrs.field(default=False, validator=flag)
    proj_size: int = attrs.field(default=0, validator=non_negative_int)
    return_state: bool = attrs.field(default=False, kw_only=True, validator=flag)

    takes_lengths: ClassVar[bool] = True  # forward reads Padded values: runs them packed

    def __attrs_post_init__(self) -> None:
        if self.proj_size >= self.hidden_size:
            raise SpecError(
                f"LSTM.proj_size must be smaller than hidden_size ({self.hidden_size}), "
                f"got {self.proj_size}; use 0 for no projection"
            )
        super().__attrs_post_init__()

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def out_size(self) -> int:
        """P: the size of each direction's hidden output."""
        return self.proj_size or self.hidden_size

    def declare_params(self) -> dict[str, ParamDecl]:
        return _lstm_param_decls(
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.directions,
            self.bias,
            self.proj_size,
        )

    def describe(self) -> str:
        parts = [f"{self.input_size} -> {self.hidden_size}"]
        if self.num_layers > 1:
            parts.append(f"layers={self.num_layers}")
        if self.bidirectional:
            parts.append("bidirectional")
        if self.proj_size:
            parts.append(f"proj={self.proj_size}")
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
            x_type, self._sequence_type(), self.batch_first, dims, "LSTM"
        )
        lead: tuple[Dim, ...] = (self.num_layers * self.directions,) + (
            () if batch is None else (batch,)
        )
        if state is not None:
            check_state_type(state[0], (*lead, self.out_size), "h0", dims)
            check_state_type(state[1], (*lead, self.hidden_size), "c0", dims)
        y = x_type.with_dims((*x_type.dims[:-1], self.directions * self.out_size))
        if not self.return_state:
            return y
        states = TupleType(
            (TensorType((*lead, self.out_size)), TensorType((*lead, self.hidden_size))), STATE_NAMES
        )
        return TupleType((y, states), ("output", "(h_n, c_n)"))

    # --- forward / backward ---------------------------------------------------------------

    def forward(self, params: Params, x: Any, ctx: Context) -> tuple[Any, Any]:
        x, padded = read_padded(x, SIGNATURE, self.batch_first)
        seq, state, layout = read_sequence(x, SIGNATURE, self.batch_first)
        lengths = None if padded is None else padded.lengths
        steps, batch = seq.shape[:2]
        count = self.num_layers * self.directions
        h0, c0 = initial_states(state, self._state_slots(), count, batch, seq.dtype, layout)
        masks = self._masks(ctx, (steps, batch, self.directions * self.out_size), seq.dtype)
        layer_in = seq
        caches = []
        h_n, c_n = np.empty_like(h0), np.empty_like(c0)
        for layer in range(self.num_layers):
            if layer > 0 and masks:
                layer_in = layer_in * masks[layer - 1]
            outputs = []
            for direction in range(self.directions):
                k = layer * self.directions + direction
                w = _weights(params, suffix(layer, direction))
                run_in = reverse_within(layer_in, lengths) if direction else layer_in
                out, (h_n[k], c_n[k]), cache = layer_forward(run_in, h0[k], c0[k], w, lengths)
                outputs.append(reverse_within(out, lengths) if direction else out)
                caches.append(cache)
            layer_in = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=2)
        y: Any = layout.from_time_major(layer_in)
        if padded is not None:
            y = padded.with_data(y)
        saved = (caches, masks, layout, state is not None, lengths)
        h_n, c_n = layout.state_out(h_n), layout.state_out(c_n)
        if self.return_state:
            return (y, (h_n, c_n)), saved
        return y, saved

    def backward(self, params: Params, saved: Any, dout: Any) -> tuple[Any, Params]:
        """``dout``: the cotangent of the output as plain arrays (``dy`` without its lengths,
        ignored on padding). ``dx`` is plain too, exactly zero on padding."""
        caches, masks, layout, had_state, lengths = saved
        if self.return_state:
            dy, (dh_n, dc_n) = dout
        else:
            dy, dh_n, dc_n = dout, None, None
        dy = layout.to_time_major(dy)
        batch = dy.shape[1]
        lead = (self.num_layers * self.directions, batch)
        # explicit feature sizes: with B = 0 a -1 in reshape is ambiguous
        dh_n = (
            np.zeros((*lead, self.out_size), dy.dtype)
            if dh_n is None
            else dh_n.reshape(*lead, self.out_size)
        )
        dc_n = (
            np.zeros((*lead, self.hidden_size), dy.dtype)
            if dc_n is None
            else dc_n.reshape(*lead, self.hidden_size)
        )
        grads: Params = {}
        dh0, dc0 = np.empty_like(dh_n), np.empty_like(dc_n)
        d_layer = dy
        p = self.out_size
        for layer in range(self.num_layers - 1, -1, -1):
            d_in = None
            for direction in range(self.directions):
                k = layer * self.directions + direction
                sfx = suffix(layer, direction)
                d_out = d_layer[:, :, direction * p : (direction + 1) * p]
                if direction:
                    d_out = reverse_within(d_out, lengths)
                lg = layer_backward(_weights(params, sfx), caches[k], d_out, dh_n[k], dc_n[k])
                dh0[k], dc0[k] = lg.dh0, lg.dc0
                dx = reverse_within(lg.dx, lengths) if direction else lg.dx
                d_in = dx if d_in is None else d_in + dx
                grads[f"weight_ih{sfx}"] = lg.w_ih
                grads[f"weight_hh{sfx}"] = lg.w_hh
                if lg.bias is not None:
                    grads[f"bias_ih{sfx}"] = lg.bias
                    grads[f"bias_hh{sfx}"] = lg.bias.copy()
                if lg.w_hr is not None:
                    grads[f"weight_hr{sfx}"] = lg.w_hr
            assert d_in is not None
            if layer > 0 and masks:
                d_in = d_in * masks[layer - 1]
            d_layer = d_in
        dx_out = layout.from_time_major(d_layer)
        if not had_state:
            return dx_out, grads
        return (dx_out, (layout.state_out(dh0), layout.state_out(dc0))), grads

    # --- states ---------------------------------------------------------------------------

    def _state_slots(self) -> tuple[StateSlot, StateSlot]:
        h_feature = "proj_size" if self.proj_size else "hidden_size"
        return (
            StateSlot("h0", self.out_size, h_feature),
            StateSlot("c0", self.hidden_size, "hidden_size"),
        )

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

            def cell(direction: int, layer: int = layer, size: int = size) -> LSTM:
                return LSTM(
                    size,
                    self.hidden_size,
                    proj_size=self.proj_size,
                    bias=self.bias,
                    name=f"l{layer}" + ("_reverse" if direction else ""),
                    rng=0,
                )

            if self.bidirectional:
                parts.append(
                    branch(
                        cell(0),
                        Reverse(name=f"flip_l{layer}")
                        >> cell(1)
                        >> Reverse(name=f"unflip_l{layer}"),
                    )
                )
                parts.append(Concat(name=f"concat_l{layer}"))
            else:
                parts.append(cell(0))
            size = self.directions * self.out_size
        return serial(*parts)


@attrs.define(eq=False)
class LSTMCell(NNModuleSpec, family="recurrent"):
    """One LSTM step, like ``torch.nn.LSTMCell``: ``x [B, I]`` or ``(x, (h, c))`` ->
    ``(h' [B, H], c' [B, H])``; unbatched ``[I]`` works too. Params ``weight_ih [4H, I]``,
    ``weight_hh [4H, H]``, ``bias_ih [4H]``, ``bias_hh [4H]``.
    """

    input_size: int = attrs.field(validator=positive_int)
    hidden_size: int = attrs.field(validator=positive_int)
    bias: bool = attrs.field(default=True, validator=flag)

    def declare_params(self) -> dict[str, ParamDecl]:
        decls = _lstm_param_decls(self.input_size, self.hidden_size, 1, 1, self.bias, 0)
        return {name.removesuffix("_l0"): decl for name, decl in decls.items()}

    def describe(self) -> str:
        return f"{self.input_size} -> {self.hidden_size}" + ("" if self.bias else ", no bias")

    @property
    def in_type(self) -> Type:
        return TensorType(("B", self.input_size))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        x_type, state = split_type(in_type, TensorType(("B", self.input_size)), SIGNATURE)
        if x_type.variadic:
            x_type = x_type.with_dims(("B", x_type.dims[-1]))
        if x_type.rank not in (1, 2):
            raise ShapeError(
                f"rank: expected [B, {self.input_size}] or [{self.input_size}], got {x_type}"
            )
        dims.equal(x_type.dims[-1], self.input_size, "feature size")
        if x_type.rank == 2:
            check_one_step(x_type, dims, "LSTMCell")
        lead = x_type.dims[:-1]
        if state is not None:
            check_state_type(state[0], (*lead, self.hidden_size), "h", dims)
            check_state_type(state[1], (*lead, self.hidden_size), "c", dims)
        out = TensorType((*lead, self.hidden_size))
        return TupleType((out, out), ("h", "c"))

    def forward(self, params: Params, x: Any, ctx: Context) -> tuple[Any, Any]:
        inp, state = split_input(x, SIGNATURE)
        unbatched = inp.ndim == 1
        batch = inp.reshape(1, -1) if unbatched else inp
        shape = (batch.shape[0], self.hidden_size)
        if state is None:
            h, c = np.zeros(shape, batch.dtype), np.zeros(shape, batch.dtype)
        else:
            expected = (self.hidden_size,) if unbatched else shape
            for what, value in zip(("h", "c"), state):
                if value.shape != expected:
                    raise ShapeError(
                        f"{what} must have shape {list(expected)}, got {list(value.shape)}"
                    )
            h, c = (s.reshape(shape) for s in state)
        w = _weights({k + "_l0": v for k, v in params.items()}, "_l0")
        _, (h1, c1), cache = layer_forward(batch[None], h, c, w)
        if unbatched:
            h1, c1 = h1[0], c1[0]
        return (h1, c1), (cache, unbatched, state is not None)

    def backward(self, params: Params, saved: Any, dout: Any) -> tuple[Any, Params]:
        cache, unbatched, had_state = saved
        dh, dc = (d.reshape(cache.hs.shape[1:]) for d in dout)
        w = _weights({k + "_l0": v for k, v in params.items()}, "_l0")
        zeros = np.zeros((1, *dh.shape), dh.dtype)
        lg = layer_backward(w, cache, zeros, dh, dc)
        dx = lg.dx[0]
        dh0, dc0 = lg.dh0, lg.dc0
        if unbatched:
            dx, dh0, dc0 = dx[0], dh0[0], dc0[0]
        grads: Params = {"weight_ih": lg.w_ih, "weight_hh": lg.w_hh}
        if lg.bias is not None:
            grads["bias_ih"], grads["bias_hh"] = lg.bias, lg.bias.copy()
        return ((dx, (dh0, dc0)) if had_state else dx), grads


# --- PyTorch export ----------------------------------------------------------------------------


@pytorch.emitter(LSTM)
def _emit_lstm(spec: LSTM, in_type: Type) -> pytorch.Emitted:
    options = pytorch.non_default(
        spec,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
    )
    constructor = pytorch.call("nn.LSTM", spec.input_size, spec.hidden_size, **options)
    drop_state = not spec.return_state  # lstm, _ = self.lstm(x)
    return pytorch.Emitted(constructor, splat=True, drop_state=drop_state, lengths="pack")


@pytorch.emitter(LSTMCell)
def _emit_lstm_cell(spec: LSTMCell, in_type: Type) -> pytorch.Emitted:
    options = pytorch.non_default(spec, bias=True)
    constructor = pytorch.call("nn.LSTMCell", spec.input_size, spec.hidden_size, **options)
    return pytorch.Emitted(constructor, splat=True)
