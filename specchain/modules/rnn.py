"""``RNN`` and ``RNNCell`` (Elman networks) with PyTorch's options, parameter names, layouts and
numerics: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, ``act`` = ``tanh`` or ``relu``.

Inputs and outputs (``D`` = 2 if bidirectional else 1, ``L`` = num_layers, ``H`` = hidden_size):

- input ``x``: ``[T, B, I]`` (``[B, T, I]`` with ``batch_first``) or unbatched ``[T, I]``; or the
  tuple ``(x, h0)`` with ``h0 [L*D, B, H]`` (unbatched ``[L*D, H]``). Without ``h0``, zeros.
- output ``y``: ``[T, B, D*H]``; with ``return_state=True`` the tuple ``(y, h_n)``, ``h_n``
  shaped like ``h0``, exactly as ``nn.RNN`` returns.
- variable lengths: ``x`` may be a ``Padded`` (axes in the layer's layout) in either form; the
  output is then ``Padded(y, lengths)`` with exactly torch's packed results (``y`` zero past each
  length, ``h_n`` each example's state at its own last step, the reverse direction starting at
  each example's end).

Gradients flow to and from every part: ``dy`` and ``dh_n`` in; ``dx``, ``dh0`` and every weight
out. Between layers, training applies inverted dropout with masks drawn from the context's
generator (identity in inference), where ``nn.RNN`` applies it. ``T = 0`` is an error, as in
PyTorch; ``B = 0`` gives empty outputs.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs
import numpy as np

from specchain.exporters import pytorch
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
from specchain.modules.rnn_kernel import NONLINEARITIES, RNNWeights, rnn_backward, rnn_forward
from specchain.params import ParamDecl, uniform
from specchain.spec import Context, NNModuleSpec, Params, flag, positive_int, probability
from specchain.types import Dim, DimEnv, ShapeError, TensorType, TupleType, Type
from specchain.validate import choice

SIGNATURE = Signature("RNN", "an", ("h0",))
CELL_SIGNATURE = Signature("RNNCell", "an", ("h",))


def _rnn_param_decls(
    input_size: int, hidden: int, layers: int, directions: int, bias: bool
) -> dict[str, ParamDecl]:
    """PyTorch's names and creation order: per layer and direction w_ih, w_hh, b_ih, b_hh."""
    init = uniform(1.0 / math.sqrt(hidden))
    decls: dict[str, ParamDecl] = {}
    for layer in range(layers):
        layer_in = input_size if layer == 0 else hidden * directions
        for direction in range(directions):
            sfx = suffix(layer, direction)
            decls[f"weight_ih{sfx}"] = ParamDecl((hidden, layer_in), init)
            decls[f"weight_hh{sfx}"] = ParamDecl((hidden, hidden), init)
            if bias:
                decls[f"bias_ih{sfx}"] = ParamDecl((hidden,), init)
                decls[f"bias_hh{sfx}"] = ParamDecl((hidden,), init)
    return decls


def _weights(params: Params, sfx: str, nonlinearity: str) -> RNNWeights:
    bias = None
    if f"bias_ih{sfx}" in params:
        bias = params[f"bias_ih{sfx}"] + params[f"bias_hh{sfx}"]
    return RNNWeights(params[f"weight_ih{sfx}"], params[f"weight_hh{sfx}"], bias, nonlinearity)


def _describe(spec: RNN | RNNCell, parts: list[str]) -> str:
    if spec.nonlinearity != "tanh":
        parts.append(spec.nonlinearity)
    if not spec.bias:
        parts.append("no bias")
    return ", ".join([f"{spec.input_size} -> {spec.hidden_size}", *parts])


@attrs.define(eq=False)
class RNN(NNModuleSpec, family="recurrent"):
    """A multi-layer Elman RNN, option for option ``torch.nn.RNN`` (plus ``return_state``).

    Args:
        input_size: I, features of ``x``.
        hidden_size: H, features of the hidden state.
        num_layers: L stacked layers.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        bias: whether to use ``bias_ih`` / ``bias_hh``.
        batch_first: ``x`` and ``y`` are ``[B, T, F]`` (``h0``/``h_n`` stay ``[L*D, B, H]``).
        dropout: inverted dropout on the outputs of every layer but the last, in training.
        bidirectional: D = 2 directions, outputs concatenated forward-first.
        return_state: output ``(y, h_n)`` instead of ``y``.
    """

    input_size: int = attrs.field(validator=positive_int)
    hidden_size: int = attrs.field(validator=positive_int)
    num_layers: int = attrs.field(default=1, validator=positive_int)
    nonlinearity: str = attrs.field(default="tanh", validator=choice(*NONLINEARITIES))
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
        return _rnn_param_decls(
            self.input_size, self.hidden_size, self.num_layers, self.directions, self.bias
        )

    def describe(self) -> str:
        parts = []
        if self.num_layers > 1:
            parts.append(f"layers={self.num_layers}")
        if self.bidirectional:
            parts.append("bidirectional")
        if self.dropout:
            parts.append(f"dropout={self.dropout}")
        if self.batch_first:
            parts.append("batch_first")
        return _describe(self, parts)

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
            x_type, self._sequence_type(), self.batch_first, dims, "RNN"
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
                w = _weights(params, suffix(layer, direction), self.nonlinearity)
                run_in = reverse_within(layer_in, lengths) if direction else layer_in
                out, h_n[k], cache = rnn_forward(run_in, h0[k], w, lengths)
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
        ``dx`` is plain too, exactly zero on padding; ``(dx, dh0)`` when ``h0`` was given."""
        caches, masks, layout, had_state, lengths = saved
        dy, dh_n = dout if self.return_state else (dout, None)
        dy = layout.to_time_major(dy)
        hidden, batch = self.hidden_size, dy.shape[1]
        lead = (self.num_layers * self.directions, batch)
        # explicit feature sizes: with B = 0 a -1 in reshape is ambiguous
        dh_n = np.zeros((*lead, hidden), dy.dtype) if dh_n is None else dh_n.reshape(*lead, hidden)
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
                g = rnn_backward(
                    _weights(params, sfx, self.nonlinearity), caches[k], d_out, dh_n[k]
                )
                dh0[k] = g.dh0
                dx = reverse_within(g.dx, lengths) if direction else g.dx
                d_in = dx if d_in is None else d_in + dx
                grads[f"weight_ih{sfx}"] = g.w_ih
                grads[f"weight_hh{sfx}"] = g.w_hh
                if g.bias is not None:
                    grads[f"bias_ih{sfx}"] = g.bias
                    grads[f"bias_hh{sfx}"] = g.bias.copy()
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

            def cell(direction: int, layer: int = layer, size: int = size) -> RNN:
                return RNN(
                    size,
                    self.hidden_size,
                    nonlinearity=self.nonlinearity,
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
            size = self.directions * self.hidden_size
        return serial(*parts)


@attrs.define(eq=False)
class RNNCell(NNModuleSpec, family="recurrent"):
    """One Elman RNN step, like ``torch.nn.RNNCell``: ``x [B, I]`` or ``(x, h)`` -> ``h' [B, H]``
    with ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``; unbatched ``[I]`` (and ``h [H]``) works
    too. Params ``weight_ih [H, I]``, ``weight_hh [H, H]``, ``bias_ih [H]``, ``bias_hh [H]``.
    """

    input_size: int = attrs.field(validator=positive_int)
    hidden_size: int = attrs.field(validator=positive_int)
    bias: bool = attrs.field(default=True, validator=flag)
    nonlinearity: str = attrs.field(default="tanh", validator=choice(*NONLINEARITIES))

    def declare_params(self) -> dict[str, ParamDecl]:
        decls = _rnn_param_decls(self.input_size, self.hidden_size, 1, 1, self.bias)
        return {name.removesuffix("_l0"): decl for name, decl in decls.items()}

    def describe(self) -> str:
        return _describe(self, [])

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
            check_one_step(x_type, dims, "RNNCell")
        lead = x_type.dims[:-1]
        if state is not None:
            check_state_type(state[0], (*lead, self.hidden_size), "h", dims)
        return TensorType((*lead, self.hidden_size))

    def _weights(self, params: Params) -> RNNWeights:
        return _weights({k + "_l0": v for k, v in params.items()}, "_l0", self.nonlinearity)

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
        _, h1, cache = rnn_forward(batch[None], h, self._weights(params))
        return (h1[0] if unbatched else h1), (cache, unbatched, state is not None)

    def backward(self, params: Params, saved: Any, dout: Any) -> tuple[Any, Params]:
        cache, unbatched, had_state = saved
        dh = dout.reshape(cache.hs.shape[1:])
        g = rnn_backward(self._weights(params), cache, np.zeros((1, *dh.shape), dh.dtype), dh)
        dx, dh0 = g.dx[0], g.dh0
        if unbatched:
            dx, dh0 = dx[0], dh0[0]
        grads: Params = {"weight_ih": g.w_ih, "weight_hh": g.w_hh}
        if g.bias is not None:
            grads["bias_ih"], grads["bias_hh"] = g.bias, g.bias.copy()
        return ((dx, dh0) if had_state else dx), grads


# --- PyTorch export ----------------------------------------------------------------------------


@pytorch.emitter(RNN)
def _emit_rnn(spec: RNN, in_type: Type) -> pytorch.Emitted:
    options = pytorch.non_default(
        spec,
        num_layers=1,
        nonlinearity="tanh",
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
    )
    constructor = pytorch.call("nn.RNN", spec.input_size, spec.hidden_size, **options)
    drop_state = not spec.return_state  # lstm, _ = self.lstm(x)
    return pytorch.Emitted(constructor, splat=True, drop_state=drop_state, lengths="pack")


@pytorch.emitter(RNNCell)
def _emit_rnn_cell(spec: RNNCell, in_type: Type) -> pytorch.Emitted:
    options = pytorch.non_default(spec, bias=True, nonlinearity="tanh")
    constructor = pytorch.call("nn.RNNCell", spec.input_size, spec.hidden_size, **options)
    return pytorch.Emitted(constructor, splat=True)
