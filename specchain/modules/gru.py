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

from typing import Any, ClassVar

import attrs
import numpy as np

from specchain.exporters import pytorch
from specchain.modules.gru_kernel import GRUWeights, gru_backward, gru_forward
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
from specchain.spec import NNModuleSpec, Params, flag, positive_int, probability
from specchain.types import Type

SIGNATURE = Signature("GRU", "a", ("h0",))
CELL_SIGNATURE = Signature("GRUCell", "a", ("h",))


def _weights(params: Params, sfx: str) -> GRUWeights:
    return GRUWeights(
        params[f"weight_ih{sfx}"],
        params[f"weight_hh{sfx}"],
        params.get(f"bias_ih{sfx}"),
        params.get(f"bias_hh{sfx}"),
    )


@attrs.frozen
class GRUDirection:
    """The GRU kernel (``gru_kernel``) as a ``Direction``: state ``(h [B, H],)``."""

    def forward(
        self, params: Params, sfx: str, x: np.ndarray, states: States, lengths: np.ndarray | None
    ) -> tuple[np.ndarray, States, Any]:
        y, h_n, cache = gru_forward(x, states[0], _weights(params, sfx), lengths)
        return y, (h_n,), cache

    def backward(
        self, params: Params, sfx: str, cache: Any, dy: np.ndarray, d_finals: States
    ) -> tuple[np.ndarray, States, Params]:
        g = gru_backward(_weights(params, sfx), cache, dy, d_finals[0])
        grads: Params = {f"weight_ih{sfx}": g.w_ih, f"weight_hh{sfx}": g.w_hh}
        if g.b_ih is not None and g.b_hh is not None:
            grads[f"bias_ih{sfx}"], grads[f"bias_hh{sfx}"] = g.b_ih, g.b_hh
        return g.dx, (g.dh0,), grads


@attrs.define(eq=False)
class GRU(Stacked, NNModuleSpec, family="recurrent"):
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

    signature: ClassVar[Signature] = SIGNATURE
    takes_lengths: ClassVar[bool] = True  # forward reads Padded values: runs them packed

    def declare_params(self) -> dict[str, ParamDecl]:
        h = self.hidden_size
        return stacked_param_decls(
            self.input_size, h, 3 * h, self.num_layers, self.directions, self.bias
        )

    def direction(self) -> Direction:
        return GRUDirection()

    def state_slots(self) -> tuple[StateSlot, ...]:
        return (StateSlot("h0", self.hidden_size, "hidden_size"),)

    def lane(self, input_size: int, name: str) -> NNModuleSpec:
        return GRU(input_size, self.hidden_size, bias=self.bias, name=name, rng=0)


@attrs.define(eq=False)
class GRUCell(Cell, NNModuleSpec, family="recurrent"):
    """One GRU step, like ``torch.nn.GRUCell``: ``x [B, I]`` or ``(x, h)`` -> ``h' [B, H]``;
    unbatched ``[I]`` (with ``h [H]``) -> ``[H]``. Params ``weight_ih [3H, I]``,
    ``weight_hh [3H, H]``, ``bias_ih [3H]``, ``bias_hh [3H]``; equations as ``GRU``'s.
    """

    input_size: int = attrs.field(validator=positive_int)
    hidden_size: int = attrs.field(validator=positive_int)
    bias: bool = attrs.field(default=True, validator=flag)

    signature: ClassVar[Signature] = CELL_SIGNATURE

    def declare_params(self) -> dict[str, ParamDecl]:
        h = self.hidden_size
        return cell_param_decls(stacked_param_decls(self.input_size, h, 3 * h, bias=self.bias))

    def direction(self) -> Direction:
        return GRUDirection()

    def state_slots(self) -> tuple[StateSlot, ...]:
        return (StateSlot("h", self.hidden_size, "hidden_size"),)


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
