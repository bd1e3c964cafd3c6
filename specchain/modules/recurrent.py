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

from typing import Any, ClassVar

import attrs
import numpy as np

from specchain.exporters import pytorch
from specchain.modules.lstm_kernel import LayerWeights, layer_backward, layer_forward
from specchain.modules.recurrent_base import Signature, StateSlot
from specchain.modules.recurrent_stack import (
    Cell,
    Direction,
    Stacked,
    States,
    cell_param_decls,
    stacked_param_decls,
)
from specchain.params import ParamDecl
from specchain.spec import (
    NNModuleSpec,
    Params,
    flag,
    non_negative_int,
    positive_int,
    probability,
)
from specchain.types import SpecError, Type

STATE_NAMES = ("h_n", "c_n")
SIGNATURE = Signature("LSTM", "an", ("h0", "c0"))
CELL_SIGNATURE = Signature("LSTMCell", "an", ("h", "c"))


def lstm_param_decls(
    input_size: int, hidden: int, layers: int, directions: int, bias: bool, proj: int
) -> dict[str, ParamDecl]:
    """``nn.LSTM``'s parameters: per layer and direction w_ih, w_hh, b_ih, b_hh, w_hr."""

    def projection(sfx: str) -> dict[str, tuple[int, ...]]:
        return {f"weight_hr{sfx}": (proj, hidden)} if proj else {}

    return stacked_param_decls(
        input_size, hidden, 4 * hidden, layers, directions, bias, proj or None, projection
    )


def _weights(params: Params, sfx: str) -> LayerWeights:
    bias = None
    if f"bias_ih{sfx}" in params:
        bias = params[f"bias_ih{sfx}"] + params[f"bias_hh{sfx}"]
    return LayerWeights(
        params[f"weight_ih{sfx}"], params[f"weight_hh{sfx}"], bias, params.get(f"weight_hr{sfx}")
    )


@attrs.frozen
class LSTMDirection:
    """The LSTM kernel (``lstm_kernel``) as a ``Direction``: states ``(h [B, P], c [B, H])``."""

    def forward(
        self, params: Params, sfx: str, x: np.ndarray, states: States, lengths: np.ndarray | None
    ) -> tuple[np.ndarray, States, Any]:
        h0, c0 = states
        y, (h_n, c_n), cache = layer_forward(x, h0, c0, _weights(params, sfx), lengths)
        return y, (h_n, c_n), cache

    def backward(
        self, params: Params, sfx: str, cache: Any, dy: np.ndarray, d_finals: States
    ) -> tuple[np.ndarray, States, Params]:
        dh_n, dc_n = d_finals
        g = layer_backward(_weights(params, sfx), cache, dy, dh_n, dc_n)
        grads: Params = {f"weight_ih{sfx}": g.w_ih, f"weight_hh{sfx}": g.w_hh}
        if g.bias is not None:
            grads[f"bias_ih{sfx}"], grads[f"bias_hh{sfx}"] = g.bias, g.bias.copy()
        if g.w_hr is not None:
            grads[f"weight_hr{sfx}"] = g.w_hr
        return g.dx, (g.dh0, g.dc0), grads


@attrs.define(eq=False)
class LSTM(Stacked, NNModuleSpec, family="recurrent"):
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

    signature: ClassVar[Signature] = SIGNATURE
    takes_lengths: ClassVar[bool] = True  # forward reads Padded values: runs them packed

    def __attrs_post_init__(self) -> None:
        if self.proj_size >= self.hidden_size:
            raise SpecError(
                f"LSTM.proj_size must be smaller than hidden_size ({self.hidden_size}), "
                f"got {self.proj_size}; use 0 for no projection"
            )
        super().__attrs_post_init__()

    @property
    def out_size(self) -> int:
        """P: the size of each direction's hidden output."""
        return self.proj_size or self.hidden_size

    def declare_params(self) -> dict[str, ParamDecl]:
        return lstm_param_decls(
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.directions,
            self.bias,
            self.proj_size,
        )

    def options_description(self) -> list[str]:
        return [f"proj={self.proj_size}"] if self.proj_size else []

    def direction(self) -> Direction:
        return LSTMDirection()

    def state_slots(self) -> tuple[StateSlot, ...]:
        h_feature = "proj_size" if self.proj_size else "hidden_size"
        return (
            StateSlot("h0", self.out_size, h_feature),
            StateSlot("c0", self.hidden_size, "hidden_size"),
        )

    def lane(self, input_size: int, name: str) -> NNModuleSpec:
        return LSTM(
            input_size,
            self.hidden_size,
            proj_size=self.proj_size,
            bias=self.bias,
            name=name,
            rng=0,
        )


@attrs.define(eq=False)
class LSTMCell(Cell, NNModuleSpec, family="recurrent"):
    """One LSTM step, like ``torch.nn.LSTMCell``: ``x [B, I]`` or ``(x, (h, c))`` ->
    ``(h' [B, H], c' [B, H])``; unbatched ``[I]`` works too. Params ``weight_ih [4H, I]``,
    ``weight_hh [4H, H]``, ``bias_ih [4H]``, ``bias_hh [4H]``.
    """

    input_size: int = attrs.field(validator=positive_int)
    hidden_size: int = attrs.field(validator=positive_int)
    bias: bool = attrs.field(default=True, validator=flag)

    signature: ClassVar[Signature] = CELL_SIGNATURE

    def declare_params(self) -> dict[str, ParamDecl]:
        h = self.hidden_size
        return cell_param_decls(stacked_param_decls(self.input_size, h, 4 * h, bias=self.bias))

    def direction(self) -> Direction:
        return LSTMDirection()

    def state_slots(self) -> tuple[StateSlot, ...]:
        return (
            StateSlot("h", self.hidden_size, "hidden_size"),
            StateSlot("c", self.hidden_size, "hidden_size"),
        )


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
