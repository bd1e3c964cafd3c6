"""The checks of the functions' inputs and states, the ``State`` pair, and what each record's
chain takes: its checked sequence (a ``Padded`` when the function is given ``lengths``) and its
initial states stacked like ``nn.LSTM``'s ``[N, B, H]``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from specchain.models.torchlean.attention import AttentionLSTMModel
from specchain.models.torchlean.language import LSTMLanguageModel
from specchain.models.torchlean.lengths import batch_of_one, sequence_input
from specchain.models.torchlean.parts import shape_of
from specchain.models.torchlean.record import SequenceModel
from specchain.models.torchlean.sequence_models import BiLSTMModel, MultiLayerLSTMModel
from specchain.padded import Padded
from specchain.types import ShapeError, SpecError

State = tuple[np.ndarray, np.ndarray]
"""An LSTM state ``(h, c)``, each ``[B, H]`` (or ``[H]`` for a single example)."""


def check_sequence(x: Any, features: int, dtype: np.dtype[Any], what: str) -> np.ndarray:
    """A float ``[T, B, F]`` or ``[T, F]`` array of the model's dtype."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what} must be a numpy array, got {type(x).__name__}")
    if x.dtype.kind != "f" or x.ndim not in (2, 3) or x.shape[-1] != features:
        raise ShapeError(
            f"{what} must be a float [T, B, {features}] or [T, {features}], "
            f"got {x.dtype}{shape_of(x)}"
        )
    if x.dtype != dtype:
        raise TypeError(
            f"{what} dtype {x.dtype} != the model's {dtype}; cast with .astype(np.{dtype})"
        )
    return x


def check_vocab_input(
    x: Any, vocab: int, dtype: np.dtype[Any], what: str
) -> tuple[np.ndarray, bool]:
    """Integer tokens ``[T, B]`` / ``[T]`` (True) or float vectors ``[T, B, V]`` (False)."""
    if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
        if x.ndim not in (1, 2):
            raise ShapeError(f"{what} tokens must be int [T, B] or [T], got {shape_of(x)}")
        return x, True
    return check_sequence(x, vocab, dtype, what), False


def batch_of(x: np.ndarray, tokens: bool = False) -> tuple[int, ...]:
    return tuple(int(n) for n in (x.shape[1:] if tokens else x.shape[1:-1]))


def check_state(
    state: Any, batch: tuple[int, ...], hidden: int, dtype: np.dtype[Any], what: str
) -> State:
    """``state`` checked against ``[B, H]`` (or ``[H]``); zeros for None."""
    expected = (*batch, hidden)
    if state is None:
        return np.zeros(expected, dtype), np.zeros(expected, dtype)
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise TypeError(f"{what} must be a pair (h, c), got {type(state).__name__}")
    for name, value in zip(("h", "c"), state):
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{what} {name} must be a numpy array, got {type(value).__name__}")
        if value.shape != expected:
            layout = "[B, H]" if batch else "[H] for a single example"
            raise ShapeError(
                f"{what} {name} has shape {shape_of(value)}, expected {list(expected)} ({layout})"
            )
        if value.dtype != dtype:
            raise TypeError(f"{what} {name} dtype {value.dtype} != the model's {dtype}")
    return state[0], state[1]


def stacked_states(
    states: Sequence[Any] | None,
    count: int,
    batch: tuple[int, ...],
    hidden: int,
    dtype: np.dtype[Any],
    model: str,
) -> State:
    """Per-layer states stacked like ``nn.LSTM``'s ``(h0 [L, B, H], c0 [L, B, H])``."""
    if states is None:
        states = [None] * count
    elif len(states) != count:
        raise SpecError(
            f"{model} has {count} LSTM layers but {len(states)} initial states were given; "
            "pass one (h, c) per layer"
        )
    pairs = [
        check_state(s, batch, hidden, dtype, f"initial_states[{k}]") for k, s in enumerate(states)
    ]
    return np.stack([h for h, _ in pairs]), np.stack([c for _, c in pairs])


def one_state(state: Any, batch: tuple[int, ...], hidden: int, dtype: np.dtype[Any]) -> State:
    h, c = check_state(state, batch, hidden, dtype, "initial_state")
    return h[None], c[None]


def unstack(h: np.ndarray, c: np.ndarray) -> list[State]:
    return [(h[k], c[k]) for k in range(h.shape[0])]


# --- what each record's chain takes ----------------------------------------------------------


def one_layer_inputs(
    model: SequenceModel,
    inputs: np.ndarray,
    initial_state: State | None,
    lengths: np.ndarray | None,
    function: str,
) -> tuple[np.ndarray | Padded, State]:
    """``inputs [T, B, I]`` checked (a ``Padded`` with ``lengths``), and ``(h0, c0)`` (zeros if
    None) stacked to ``[1, B, H]``."""
    xs = check_sequence(inputs, model.input_size, model.dtype, "inputs")
    state = one_state(initial_state, batch_of(xs), model.hidden_size, model.dtype)
    return sequence_input(xs, lengths, function), state


def bi_inputs(
    model: BiLSTMModel,
    inputs: np.ndarray,
    forward_state: Any,
    backward_state: Any,
    lengths: np.ndarray | None,
    function: str,
) -> tuple[np.ndarray | Padded, State]:
    """``inputs [T, B, I]`` checked (a ``Padded`` with ``lengths``), and the two directions'
    states stacked like ``nn.LSTM``'s ``[2, B, H]``, forward first."""
    xs = check_sequence(inputs, model.input_size, model.dtype, "inputs")
    batch, h = batch_of(xs), model.hidden_size
    pairs = [
        check_state(s, batch, h, model.dtype, what)
        for s, what in ((forward_state, "forward_state"), (backward_state, "backward_state"))
    ]
    states = (np.stack([h for h, _ in pairs]), np.stack([c for _, c in pairs]))
    return sequence_input(xs, lengths, function), states


def stack_inputs(
    model: MultiLayerLSTMModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None,
    lengths: np.ndarray | None,
    function: str,
) -> tuple[np.ndarray | Padded, State]:
    """``inputs [T, B, I]`` checked (a ``Padded`` with ``lengths``), and one ``(h0, c0)`` per
    layer stacked to ``[L, B, H]``."""
    xs = check_sequence(inputs, model.input_size, model.dtype, "inputs")
    name, n, h = "MultiLayerLSTMModel", model.num_layers, model.hidden_size
    states = stacked_states(initial_states, n, batch_of(xs), h, model.dtype, name)
    return sequence_input(xs, lengths, function), states


def lm_inputs(
    model: LSTMLanguageModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None,
    lengths: np.ndarray | None,
    function: str,
) -> tuple[tuple[np.ndarray | Padded, State], bool]:
    """``(inputs, (h0, c0) each [L, B, H])`` checked (the inputs a ``Padded`` with ``lengths``),
    and True if the inputs are int tokens ``[T, B]`` rather than vectors ``[T, B, V]``."""
    xs, tokens = check_vocab_input(inputs, model.vocab_size, model.dtype, "inputs")
    batch, name = batch_of(xs, tokens), "LSTMLanguageModel"
    states = stacked_states(
        initial_states, model.num_layers, batch, model.hidden_size, model.dtype, name
    )
    return (sequence_input(xs, lengths, function, tokens), states), tokens


def attention_inputs(
    model: AttentionLSTMModel,
    source: np.ndarray,
    decoder_inputs: np.ndarray,
    lengths: tuple[np.ndarray | None, np.ndarray | None],
    function: str,
) -> tuple[tuple[np.ndarray | Padded, np.ndarray | Padded], bool]:
    """Both sequences checked (each a ``Padded`` with its lengths: source, then decoder) and
    batched (``[S, I]`` / ``[T, I]`` get a batch of one); True if unbatched."""
    i, dtype = model.input_size, model.dtype
    src = check_sequence(source, i, dtype, "source")
    dec = check_sequence(decoder_inputs, i, dtype, "decoder_inputs")
    if src.ndim != dec.ndim:
        raise ShapeError(
            f"source {shape_of(src)} and decoder_inputs {shape_of(dec)} must both be batched "
            "[len, B, I] or both single examples [len, I]"
        )
    pair = (
        sequence_input(src, lengths[0], function, what="source"),
        sequence_input(dec, lengths[1], function, what="decoder_inputs"),
    )
    if src.ndim == 2:
        return (batch_of_one(pair[0]), batch_of_one(pair[1])), True
    return pair, False
