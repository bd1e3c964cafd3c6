"""TorchLean's gate-wise LSTM layout, as a view of PyTorch's fused layout (no second LSTM).

TorchLean keeps one weight ``[H, I + H]`` over the concatenation ``[x; h]`` and one bias ``[H]``
per gate, named forget, input, candidate and output. PyTorch fuses the gates in the order
i, f, g, o: ``weight_ih [4H, I]``, ``weight_hh [4H, H]``, ``bias_ih [4H]``, ``bias_hh [4H]``.

- fused -> gate-wise: ``W_gate = [weight_ih[k]; weight_hh[k]]`` side by side, and
  ``b_gate = bias_ih[k] + bias_hh[k]`` (TorchLean has one bias per gate).
- gate-wise -> fused: the split back, with the whole bias in ``bias_ih`` and ``bias_hh = 0``, which
  computes the same function.

For gradients the bias rule differs: ``d bias_ih == d bias_hh == d b_gate``, so ``LSTMGrads``
converts both ways without loss.
"""

from __future__ import annotations

import attrs
import numpy as np

# TorchLean's gate names, in PyTorch's fused order i, f, g, o.
GATES = ("input", "forget", "candidate", "output")


def _split(fused: np.ndarray, gate: int, hidden: int) -> np.ndarray:
    return fused[gate * hidden : (gate + 1) * hidden]


def _check_fused(weight_ih: np.ndarray, weight_hh: np.ndarray) -> int:
    four_h, hidden = weight_hh.shape
    if four_h != 4 * hidden or weight_ih.shape[0] != four_h:
        raise ValueError(
            f"fused LSTM weights need weight_ih [4H, I] and weight_hh [4H, H], got "
            f"{list(weight_ih.shape)} and {list(weight_hh.shape)}"
        )
    return hidden


@attrs.frozen(eq=False)
class LSTMGateParams:
    """One LSTM layer in TorchLean's layout: per gate a weight ``[H, I + H]`` and a bias ``[H]``."""

    forget_weights: np.ndarray
    forget_bias: np.ndarray
    input_weights: np.ndarray
    input_bias: np.ndarray
    candidate_weights: np.ndarray
    candidate_bias: np.ndarray
    output_weights: np.ndarray
    output_bias: np.ndarray

    @classmethod
    def from_fused(
        cls,
        weight_ih: np.ndarray,
        weight_hh: np.ndarray,
        bias_ih: np.ndarray | None = None,
        bias_hh: np.ndarray | None = None,
    ) -> LSTMGateParams:
        hidden = _check_fused(weight_ih, weight_hh)
        bias = np.zeros(4 * hidden, weight_ih.dtype)
        if bias_ih is not None:
            bias = bias + bias_ih
        if bias_hh is not None:
            bias = bias + bias_hh
        fields = {}
        for k, gate in enumerate(GATES):
            fields[f"{gate}_weights"] = np.concatenate(
                [_split(weight_ih, k, hidden), _split(weight_hh, k, hidden)], axis=1
            )
            fields[f"{gate}_bias"] = _split(bias, k, hidden).copy()
        return cls(**fields)

    def to_fused(self, input_size: int) -> dict[str, np.ndarray]:
        """``{"weight_ih", "weight_hh", "bias_ih", "bias_hh"}`` with ``bias_hh = 0``."""
        weights = [getattr(self, f"{gate}_weights") for gate in GATES]
        bias_ih = np.concatenate([getattr(self, f"{gate}_bias") for gate in GATES])
        return {
            "weight_ih": np.concatenate([w[:, :input_size] for w in weights]),
            "weight_hh": np.concatenate([w[:, input_size:] for w in weights]),
            "bias_ih": bias_ih,
            "bias_hh": np.zeros_like(bias_ih),
        }


@attrs.frozen(eq=False)
class LSTMGrads:
    """Gradients of one LSTM layer in TorchLean's layout (fields ``d_<gate>_weights/bias``)."""

    d_forget_weights: np.ndarray
    d_forget_bias: np.ndarray
    d_input_weights: np.ndarray
    d_input_bias: np.ndarray
    d_candidate_weights: np.ndarray
    d_candidate_bias: np.ndarray
    d_output_weights: np.ndarray
    d_output_bias: np.ndarray

    @classmethod
    def from_fused(
        cls, weight_ih: np.ndarray, weight_hh: np.ndarray, bias: np.ndarray | None = None
    ) -> LSTMGrads:
        """From PyTorch-layout gradients; ``bias`` is d bias_ih (equal to d bias_hh)."""
        params = LSTMGateParams.from_fused(weight_ih, weight_hh, bias)
        return cls(**{f"d_{a.name}": getattr(params, a.name) for a in attrs.fields(LSTMGateParams)})

    def to_fused(self, input_size: int) -> dict[str, np.ndarray]:
        """``{"weight_ih", "weight_hh", "bias_ih", "bias_hh"}`` gradients (both biases equal)."""
        params = LSTMGateParams(
            **{a.name: getattr(self, f"d_{a.name}") for a in attrs.fields(LSTMGateParams)}
        )
        fused = params.to_fused(input_size)
        fused["bias_hh"] = fused["bias_ih"].copy()
        return fused


@attrs.frozen(eq=False)
class LinearGrads:
    """TorchLean's gradient record of a linear layer: ``dW [O, I]`` and ``db [O]``."""

    dW: np.ndarray  # TorchLean's field name
    db: np.ndarray

    @classmethod
    def from_fused(cls, grads: dict[str, np.ndarray], prefix: str = "") -> LinearGrads:
        weight = grads[f"{prefix}weight"]
        bias = grads.get(f"{prefix}bias", np.zeros(weight.shape[0], weight.dtype))
        return cls(weight, bias)
