"""``LSTMVariant``: the LSTM variants of the literature as options of one spec.

With every option off it is exactly ``LSTM`` (the same parameters, the same kernel, the same
numbers). Each option changes one equation of the cell (kernel: ``lstm_variant_kernel``)::

    i = sigma(z_i + p_i * c_{t-1})   f = sigma(z_f + p_f * c_{t-1})   g = tanh(z_g)
    c_t = f * c_{t-1} + i * g        o = sigma(z_o + p_o * c_t)       h_t = o * tanh(c_t)

- ``peephole``: the gates see the cell through diagonal weights ``p_i, p_f, p_o``
  (``weight_ci``, ``weight_cf``, ``weight_co``, each ``[H]``); Gers & Schmidhuber 2000,
  "Recurrent nets that time and count".
- ``coupled_gates`` (CIFG): ``f = 1 - i``, no forget-gate weights; Greff et al. 2017 after
  Cho et al. 2014.
- ``no_forget_gate`` (NFG): ``f = 1``: the cell of Hochreiter & Schmidhuber 1997, "Long
  short-term memory", before Gers, Schmidhuber & Cummins 2000 added the forget gate.
- ``no_input_gate`` (NIG): ``i = 1``; ``no_output_gate`` (NOG): ``o = 1``.
- ``no_input_activation`` (NIAF): ``g = z_g``; ``no_output_activation`` (NOAF):
  ``h_t = o * c_t``.
- ``full_gate_recurrence`` (FGR): every sigmoid gate also sees all sigmoid gates' previous
  activations through ``weight_gg [S*H, S*H]`` (S = the number of sigmoid gates).

Greff, Srivastava, Koutnik, Steunebrink & Schmidhuber 2017, "LSTM: A Search Space Odyssey",
compare eight variants of a vanilla LSTM with peepholes: ``LSTMVariant.greff("NIG", 8, 16)``
builds each (``GREFF`` lists them; "NP" is the standard LSTM).

Parameters per layer and direction follow ``nn.LSTM``'s names: ``weight_ih [G*H, I]``,
``weight_hh [G*H, H]``, ``bias_ih``, ``bias_hh [G*H]`` hold the G gates that exist, in the order
i, f, g, o. Inputs, outputs, options (layers, directions, dropout, ``batch_first``, states,
lengths) and shapes are ``LSTM``'s (without ``proj_size``). No ``torch.nn`` module computes these
cells: the export writes a small step-by-step module (``lstm_variant_torch``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from specchain.exporters import pytorch
from specchain.modules.lstm_variant_kernel import (
    Variant,
    VariantWeights,
    variant_backward,
    variant_forward,
)
from specchain.modules.lstm_variant_torch import torch_class
from specchain.modules.recurrent import LSTM, LSTMDirection, lstm_param_decls
from specchain.modules.recurrent_base import Signature, StateSlot
from specchain.modules.recurrent_stack import Direction, Stacked, States, stacked_param_decls
from specchain.params import ParamDecl
from specchain.spec import NNModuleSpec, Params, flag, positive_int, probability
from specchain.types import SpecError, Type

SIGNATURE = Signature("LSTMVariant", "an", ("h0", "c0"))
GREFF: dict[str, dict[str, bool]] = {
    "V": {"peephole": True},
    "NIG": {"peephole": True, "no_input_gate": True},
    "NFG": {"peephole": True, "no_forget_gate": True},
    "NOG": {"peephole": True, "no_output_gate": True},
    "NIAF": {"peephole": True, "no_input_activation": True},
    "NOAF": {"peephole": True, "no_output_activation": True},
    "NP": {},
    "CIFG": {"peephole": True, "coupled_gates": True},
    "FGR": {"peephole": True, "full_gate_recurrence": True},
}
"""Greff et al. 2017's variants: V (vanilla, with peepholes) and its eight modifications."""


@attrs.frozen
class VariantDirection:
    """The variant kernel as a ``Direction``: states ``(h [B, H], c [B, H])``."""

    variant: Variant

    def weights(self, params: Params, sfx: str) -> VariantWeights:
        bias = None
        if f"bias_ih{sfx}" in params:
            bias = params[f"bias_ih{sfx}"] + params[f"bias_hh{sfx}"]
        peep = {gate: params[f"weight_c{gate}{sfx}"] for gate in self.variant.peepholes}
        return VariantWeights(
            params[f"weight_ih{sfx}"],
            params[f"weight_hh{sfx}"],
            bias,
            peep,
            params.get(f"weight_gg{sfx}"),
        )

    def forward(
        self, params: Params, sfx: str, x: np.ndarray, states: States, lengths: np.ndarray | None
    ) -> tuple[np.ndarray, States, Any]:
        h0, c0 = states
        w = self.weights(params, sfx)
        y, (h_n, c_n), cache = variant_forward(x, h0, c0, w, self.variant, lengths)
        return y, (h_n, c_n), cache

    def backward(
        self, params: Params, sfx: str, cache: Any, dy: np.ndarray, d_finals: States
    ) -> tuple[np.ndarray, States, Params]:
        dh_n, dc_n = d_finals
        g = variant_backward(self.weights(params, sfx), self.variant, cache, dy, dh_n, dc_n)
        grads: Params = {f"weight_ih{sfx}": g.w_ih, f"weight_hh{sfx}": g.w_hh}
        if g.bias is not None:
            grads[f"bias_ih{sfx}"], grads[f"bias_hh{sfx}"] = g.bias, g.bias.copy()
        for gate, d in g.peep.items():
            grads[f"weight_c{gate}{sfx}"] = d
        if g.w_gg is not None:
            grads[f"weight_gg{sfx}"] = g.w_gg
        return g.dx, (g.dh0, g.dc0), grads


@attrs.define(eq=False)
class LSTMVariant(Stacked, NNModuleSpec, family="recurrent"):
    """A multi-layer LSTM variant (see the module docstring for each option's equation and paper).

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
        return_state: as ``LSTM``'s.
        peephole, coupled_gates, no_forget_gate, no_input_gate, no_output_gate,
        no_input_activation, no_output_activation, full_gate_recurrence: the variant; all off
        is the standard LSTM.
    """

    input_size: int = attrs.field(validator=positive_int)
    hidden_size: int = attrs.field(validator=positive_int)
    num_layers: int = attrs.field(default=1, validator=positive_int)
    bias: bool = attrs.field(default=True, validator=flag)
    batch_first: bool = attrs.field(default=False, validator=flag)
    dropout: float = attrs.field(default=0.0, validator=probability)
    bidirectional: bool = attrs.field(default=False, validator=flag)
    peephole: bool = attrs.field(default=False, kw_only=True, validator=flag)
    coupled_gates: bool = attrs.field(default=False, kw_only=True, validator=flag)
    no_forget_gate: bool = attrs.field(default=False, kw_only=True, validator=flag)
    no_input_gate: bool = attrs.field(default=False, kw_only=True, validator=flag)
    no_output_gate: bool = attrs.field(default=False, kw_only=True, validator=flag)
    no_input_activation: bool = attrs.field(default=False, kw_only=True, validator=flag)
    no_output_activation: bool = attrs.field(default=False, kw_only=True, validator=flag)
    full_gate_recurrence: bool = attrs.field(default=False, kw_only=True, validator=flag)
    return_state: bool = attrs.field(default=False, kw_only=True, validator=flag)

    signature: ClassVar[Signature] = SIGNATURE
    takes_lengths: ClassVar[bool] = True  # forward reads Padded values: runs them packed

    def __attrs_post_init__(self) -> None:
        if self.coupled_gates and (self.no_input_gate or self.no_forget_gate):
            raise SpecError(
                "LSTMVariant.coupled_gates sets f = 1 - i, so it needs both gates: got "
                f"no_input_gate={self.no_input_gate}, no_forget_gate={self.no_forget_gate}; "
                "drop coupled_gates or the other option"
            )
        if self.full_gate_recurrence and not self.variant.sigmoid_gates:
            raise SpecError(
                "LSTMVariant.full_gate_recurrence connects the sigmoid gates, but this variant "
                "has none (no input, forget or output gate); drop full_gate_recurrence"
            )
        super().__attrs_post_init__()

    @classmethod
    def greff(
        cls, paper_name: str, /, input_size: int, hidden_size: int, **options: Any
    ) -> LSTMVariant:
        """One of Greff et al. 2017's variants by its name in the paper (``GREFF``)."""
        if paper_name not in GREFF:
            raise SpecError(
                f"unknown Greff et al. variant {paper_name!r}; choose one of {list(GREFF)}"
            )
        chosen: dict[str, Any] = {**GREFF[paper_name], **options}
        return cls(input_size, hidden_size, **chosen)

    @property
    def variant(self) -> Variant:
        return Variant(
            peephole=self.peephole,
            coupled_gates=self.coupled_gates,
            no_forget_gate=self.no_forget_gate,
            no_input_gate=self.no_input_gate,
            no_output_gate=self.no_output_gate,
            no_input_activation=self.no_input_activation,
            no_output_activation=self.no_output_activation,
            full_gate_recurrence=self.full_gate_recurrence,
        )

    def declare_params(self) -> dict[str, ParamDecl]:
        variant, hidden = self.variant, self.hidden_size
        if variant.standard:
            return lstm_param_decls(
                self.input_size, hidden, self.num_layers, self.directions, self.bias, 0
            )
        sigmoid = len(variant.sigmoid_gates) * hidden

        def extra(sfx: str) -> dict[str, tuple[int, ...]]:
            shapes: dict[str, tuple[int, ...]] = {
                f"weight_c{gate}{sfx}": (hidden,) for gate in variant.peepholes
            }
            if self.full_gate_recurrence:
                shapes[f"weight_gg{sfx}"] = (sigmoid, sigmoid)
            return shapes

        rows = len(variant.gates) * hidden
        return stacked_param_decls(
            self.input_size, hidden, rows, self.num_layers, self.directions, self.bias, None, extra
        )

    def options_description(self) -> list[str]:
        names = [name for name, options in GREFF.items() if options == self._options()]
        if names and names[0] not in ("V", "NP"):
            return [f"{names[0]} variant"]
        return [option.replace("_", " ") for option in self._options()]

    def _options(self) -> dict[str, bool]:
        return {k: v for k, v in attrs.asdict(self.variant).items() if v}

    def direction(self) -> Direction:
        variant = self.variant
        return LSTMDirection() if variant.standard else VariantDirection(variant)

    def state_slots(self) -> tuple[StateSlot, ...]:
        return (
            StateSlot("h0", self.hidden_size, "hidden_size"),
            StateSlot("c0", self.hidden_size, "hidden_size"),
        )

    def lane(self, input_size: int, name: str) -> NNModuleSpec:
        return LSTMVariant(
            input_size, self.hidden_size, bias=self.bias, name=name, rng=0, **self._options()
        )


# --- PyTorch export ----------------------------------------------------------------------------


@pytorch.emitter(LSTMVariant)
def _emit_lstm_variant(spec: LSTMVariant, in_type: Type) -> pytorch.Emitted:
    if spec.variant.standard:  # every option off: it is nn.LSTM
        options = {k: getattr(spec, k) for k in ("num_layers", "bias", "batch_first", "dropout")}
        twin = LSTM(
            spec.input_size,
            spec.hidden_size,
            **options,
            bidirectional=spec.bidirectional,
            return_state=spec.return_state,
            rng=0,
        )
        return pytorch.emitter_for(twin, "lstm").emit(twin, in_type)
    name, source, args = torch_class(spec, in_type)
    return pytorch.Emitted(
        pytorch.call(name, *args), helper=name, helper_source=source, splat=True, lengths="argument"
    )
