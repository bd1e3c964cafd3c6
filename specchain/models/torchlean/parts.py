"""The parts of every record: TorchLean's ``LinearSpec`` (``LinearParams``) next to the gate-wise
``LSTMGateParams``, their default initialisation, and the checks of their shapes and kinds."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import numpy as np

from specchain.modules.gatewise import LSTMGateParams
from specchain.modules.linear import Linear
from specchain.modules.recurrent import LSTM
from specchain.params import RngLike, init_generator
from specchain.types import ShapeError, SpecError


@attrs.frozen(eq=False)
class LinearParams:
    """TorchLean's ``LinearSpec``: ``y = W x + b`` with ``weight [O, I]`` and ``bias [O]``.

    The field is ``weight`` as in ``nn.Linear``; ``weights``, ``LinearSpec``'s name for it, is a
    read-only alias."""

    weight: np.ndarray
    bias: np.ndarray

    @property
    def weights(self) -> np.ndarray:
        """TorchLean's name of ``weight`` (read-only alias)."""
        return self.weight

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    @classmethod
    def init(
        cls, in_features: int, out_features: int, rng: RngLike = None, dtype: Any = np.float32
    ) -> LinearParams:
        """PyTorch's default initialisation (that of ``Linear``), from ``rng``."""
        params = Linear(in_features, out_features, rng=init_generator(rng)).to(dtype).params
        return cls(params["weight"], params["bias"])


def init_lstm(
    input_size: int, hidden_size: int, rng: np.random.Generator, dtype: Any
) -> LSTMGateParams:
    """PyTorch's default LSTM initialisation, viewed gate-wise (the bias is ``b_ih + b_hh``)."""
    p = LSTM(input_size, hidden_size, rng=rng).to(dtype).params
    return LSTMGateParams.from_fused(
        p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"]
    )


# --- sizes -----------------------------------------------------------------------------------


def shape_of(a: np.ndarray) -> list[int]:
    return [int(n) for n in a.shape]


def lstm_sizes(p: LSTMGateParams, where: str) -> tuple[int, int]:
    """``(I, H)`` of a gate-wise LSTM layer, after checking every gate has the same shapes."""
    for a in attrs.fields(LSTMGateParams):
        value = getattr(p, a.name)
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{where}.{a.name} must be a numpy array, got {type(value).__name__}")
    first = p.forget_weights
    if first.ndim != 2 or first.shape[1] <= first.shape[0]:
        raise ShapeError(
            f"{where}.forget_weights must be [H, I + H] with I >= 1, got {shape_of(first)}"
        )
    hidden = int(first.shape[0])
    for a in attrs.fields(LSTMGateParams):
        value = getattr(p, a.name)
        expected = first.shape if a.name.endswith("_weights") else (hidden,)
        if value.shape != expected:
            raise ShapeError(
                f"{where}.{a.name} has shape {shape_of(value)}, expected {list(expected)} "
                f"(forget_weights is {shape_of(first)})"
            )
    return int(first.shape[1]) - hidden, hidden


def linear_sizes(p: LinearParams, where: str) -> tuple[int, int]:
    """``(in_features, out_features)`` of a linear layer, after checking its shapes."""
    for name in ("weight", "bias"):
        if not isinstance(getattr(p, name), np.ndarray):
            kind = type(getattr(p, name)).__name__
            raise TypeError(f"{where}.{name} must be a numpy array, got {kind}")
    if p.weight.ndim != 2:
        raise ShapeError(f"{where}.weight must be [O, I], got {shape_of(p.weight)}")
    if p.bias.shape != (p.weight.shape[0],):
        raise ShapeError(
            f"{where}.bias has shape {shape_of(p.bias)}, expected [{p.weight.shape[0]}] "
            f"(weight is {shape_of(p.weight)})"
        )
    return p.in_features, p.out_features


def same(model: str, a: str, a_size: int, b: str, b_size: int) -> None:
    if a_size != b_size:
        raise SpecError(f"{model}: {a} is {a_size} but {b} is {b_size}; they must be equal")


def check_stack(
    model: str, field: str, layers: tuple[LSTMGateParams, ...], input_size: int
) -> None:
    """Layer 0 reads ``input_size``; every later layer reads the hidden size."""
    if not layers:
        raise SpecError(f"{model}.{field} needs at least one LSTM layer")
    _, hidden = lstm_sizes(layers[0], f"{field}[0]")
    for k, layer in enumerate(layers):
        reads, size = lstm_sizes(layer, f"{field}[{k}]")
        same(model, f"{field}[{k}].hidden_size", size, f"{field}[0].hidden_size", hidden)
        if k > 0:
            same(model, f"{field}[{k}].input_size", reads, f"{field}[{k - 1}].hidden_size", hidden)
        else:
            same(model, f"{field}[0].input_size", reads, "the embedding size", input_size)


def check_vocab_model(model: str, embedding: LinearParams, projection: LinearParams) -> None:
    """``embedding`` ``V`` -> ``E`` and ``projection`` ``E`` -> ``V`` fit each other."""
    vocab, emb = linear_sizes(embedding, "embedding")
    reads, writes = linear_sizes(projection, "output_projection")
    same(model, "output_projection.in_features", reads, "embedding.out_features", emb)
    same(model, "output_projection.out_features", writes, "embedding.in_features", vocab)


# --- kinds: attrs converters and validators of the records' fields ----------------------------


def as_layers(layers: Iterable[LSTMGateParams]) -> tuple[LSTMGateParams, ...]:
    return tuple(layers)


def _check_kind(inst: object, where: str, value: object, kind: type) -> None:
    if not isinstance(value, kind):
        raise TypeError(
            f"{type(inst).__name__}.{where} must be {kind.__name__}, got {type(value).__name__}"
        )


def gate_params(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_kind(inst, attribute.name, value, LSTMGateParams)


def linear_params(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_kind(inst, attribute.name, value, LinearParams)


def gate_params_list(
    inst: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]
) -> None:
    for k, item in enumerate(value):
        _check_kind(inst, f"{attribute.name}[{k}]", item, LSTMGateParams)
