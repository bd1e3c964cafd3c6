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

from typing import Any, ClassVar

import attrs
import numpy as np

from specchain.exporters import pytorch
from specchain.modules.recurrent_base import Signature, StateSlot
from specchain.modules.recurrent_stack import (
    Cell,
    Direction,
    Stacked,
    States,
    cell_param_decls,
    stacked_param_decls,
)
from specchain.modules.rnn_kernel import NONLINEARITIES, RNNWeights, rnn_backward, rnn_forward
from specchain.params import ParamDecl
from specchain.spec import NNModuleSpec, Params, flag, positive_int, probability
from specchain.types import Type
from specchain.validate import choice

SIGNATURE = Signature("RNN", "an", ("h0",))
CELL_SIGNATURE = Signature("RNNCell", "an", ("h",))


def _weights(params: Params, sfx: str, nonlinearity: str) -> RNNWeights:
    bias = None
    if f"bias_ih{sfx}" in params:
        bias = params[f"bias_ih{sfx}"] + params[f"bias_hh{sfx}"]
    return RNNWeights(params[f"weight_ih{sfx}"], params[f"weight_hh{sfx}"], bias, nonlinearity)


@attrs.frozen
class RNNDirection:
    """The Elman kernel (``rnn_kernel``) as a ``Direction``: state ``(h [B, H],)``."""

    nonlinearity: str

    def forward(
        self, params: Params, sfx: str, x: np.ndarray, states: States, lengths: np.ndarray | None
    ) -> tuple[np.ndarray, States, Any]:
        w = _weights(params, sfx, self.nonlinearity)
        y, h_n, cache = rnn_forward(x, states[0], w, lengths)
        return y, (h_n,), cache

    def backward(
        self, params: Params, sfx: str, cache: Any, dy: np.ndarray, d_finals: States
    ) -> tuple[np.ndarray, States, Params]:
        g = rnn_backward(_weights(params, sfx, self.nonlinearity), cache, dy, d_finals[0])
        grads: Params = {f"weight_ih{sfx}": g.w_ih, f"weight_hh{sfx}": g.w_hh}
        if g.bias is not None:
            grads[f"bias_ih{sfx}"], grads[f"bias_hh{sfx}"] = g.bias, g.bias.copy()
        return g.dx, (g.dh0,), grads


@attrs.define(eq=False)
class RNN(Stacked, NNModuleSpec, family="recurrent"):
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

    signature: ClassVar[Signature] = SIGNATURE
    takes_lengths: ClassVar[bool] = True  # forward reads Padded values: runs them packed

    def declare_params(self) -> dict[str, ParamDecl]:
        h = self.hidden_size
        return stacked_param_decls(
            self.input_size, h, h, self.num_layers, self.directions, self.bias
        )

    def options_description(self) -> list[str]:
        return [] if self.nonlinearity == "tanh" else [self.nonlinearity]

    def direction(self) -> Direction:
        return RNNDirection(self.nonlinearity)

    def state_slots(self) -> tuple[StateSlot, ...]:
        return (StateSlot("h0", self.hidden_size, "hidden_size"),)

    def lane(self, input_size: int, name: str) -> NNModuleSpec:
        return RNN(
            input_size,
            self.hidden_size,
            nonlinearity=self.nonlinearity,
            bias=self.bias,
            name=name,
            rng=0,
        )


@attrs.define(eq=False)
class RNNCell(Cell, NNModuleSpec, family="recurrent"):
    """One Elman RNN step, like ``torch.nn.RNNCell``: ``x [B, I]`` or ``(x, h)`` -> ``h' [B, H]``
    with ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``; unbatched ``[I]`` (and ``h [H]``) works
    too. Params ``weight_ih [H, I]``, ``weight_hh [H, H]``, ``bias_ih [H]``, ``bias_hh [H]``.
    """

    input_size: int = attrs.field(validator=positive_int)
    hidden_size: int = attrs.field(validator=positive_int)
    bias: bool = attrs.field(default=True, validator=flag)
    nonlinearity: str = attrs.field(default="tanh", validator=choice(*NONLINEARITIES))

    signature: ClassVar[Signature] = CELL_SIGNATURE

    def declare_params(self) -> dict[str, ParamDecl]:
        h = self.hidden_size
        return cell_param_decls(stacked_param_decls(self.input_size, h, h, bias=self.bias))

    def options_description(self) -> list[str]:
        return [] if self.nonlinearity == "tanh" else [self.nonlinearity]

    def direction(self) -> Direction:
        return RNNDirection(self.nonlinearity)

    def state_slots(self) -> tuple[StateSlot, ...]:
        return (StateSlot("h", self.hidden_size, "hidden_size"),)


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
