"""Layouts: where each part of a record lives in its chain's ``state_dict``.

A ``Layout`` maps a record's field to one slot (or a tuple of slots for a tuple of layers); a
slot converts its part between TorchLean's gate-wise arrays and PyTorch's fused names, both ways.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import numpy as np

from specchain.models.torchlean.parts import LinearParams
from specchain.modules.gatewise import LinearGrads, LSTMGateParams, LSTMGrads


@attrs.frozen
class LSTMSlot:
    """One gate-wise LSTM layer at ``{prefix}weight_ih{suffix}`` etc. of a chain."""

    prefix: str
    suffix: str

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}{self.suffix}"

    def names(self) -> list[str]:
        return [self.key(n) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def state(self, part: LSTMGateParams) -> dict[str, np.ndarray]:
        input_size = part.forget_weights.shape[1] - part.forget_weights.shape[0]
        return {self.key(k): v for k, v in part.to_fused(input_size).items()}

    def params(self, state: dict[str, np.ndarray]) -> LSTMGateParams:
        return LSTMGateParams.from_fused(*(state[k] for k in self.names()))

    def grads(self, grads: dict[str, np.ndarray]) -> LSTMGrads:
        keys = self.names()  # d bias_ih == d bias_hh == d of TorchLean's single bias
        return LSTMGrads.from_fused(grads[keys[0]], grads[keys[1]], grads[keys[2]])


@attrs.frozen
class LinearSlot:
    """One linear layer at ``{prefix}weight`` and ``{prefix}bias``."""

    prefix: str

    def names(self) -> list[str]:
        return [f"{self.prefix}weight", f"{self.prefix}bias"]

    def state(self, part: LinearParams) -> dict[str, np.ndarray]:
        return dict(zip(self.names(), (part.weight, part.bias)))

    def params(self, state: dict[str, np.ndarray]) -> LinearParams:
        return LinearParams(*(state[k] for k in self.names()))

    def grads(self, grads: dict[str, np.ndarray]) -> LinearGrads:
        return LinearGrads.from_fused(grads, self.prefix)


Slot = LSTMSlot | LinearSlot
Layout = dict[str, Slot | tuple[Slot, ...]]


def slots_of(entry: Slot | tuple[Slot, ...]) -> tuple[Slot, ...]:
    return entry if isinstance(entry, tuple) else (entry,)


def lstm_stack(prefix: str, count: int) -> tuple[Slot, ...]:
    """The layers of one ``nn.LSTM(num_layers=count)`` at ``{prefix}weight_ih_l{k}`` etc."""
    return tuple(LSTMSlot(prefix, f"_l{k}") for k in range(count))


def state_of(layout: Layout, parts: dict[str, Any]) -> dict[str, np.ndarray]:
    """Chain-named arrays of the parts (by field)."""
    state: dict[str, np.ndarray] = {}
    for field, entry in layout.items():
        values = parts[field] if isinstance(entry, tuple) else (parts[field],)
        for slot, value in zip(slots_of(entry), values, strict=True):
            state.update(slot.state(value))
    return state


def read_parts(layout: Layout, arrays: dict[str, np.ndarray], grads: bool) -> dict[str, Any]:
    """Parts (or their gradient records) by field, read from chain-named arrays."""
    out: dict[str, Any] = {}
    for field, entry in layout.items():
        read = [slot.grads(arrays) if grads else slot.params(arrays) for slot in slots_of(entry)]
        out[field] = tuple(read) if isinstance(entry, tuple) else read[0]
    return out


def count_layers(state: dict[str, np.ndarray], prefix: str = "lstm.") -> int:
    pattern = re.compile(rf"^{re.escape(prefix)}weight_ih_l(\d+)$")
    return sum(1 for key in state if pattern.match(key))
