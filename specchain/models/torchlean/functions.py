"""TorchLean's forward and backward functions (``simpleLstmForward``, ...): each checks its inputs,
runs the record's chain (``cached_chain``, ``chain_with_initial_state`` or
``chain_with_final_state``: built once, reloaded with the record's arrays at every call) and
returns arrays and TorchLean's gradient records (``grads_by_field``). Every backward sits right
under its forward."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from specchain.chain import SpecChain
from specchain.losses import mse
from specchain.models.torchlean.attention import AttentionLSTMModel
from specchain.models.torchlean.grads import (
    AttentionLSTMModelGrads,
    BiLSTMModelGrads,
    LSTMLanguageModelGrads,
    MultiLayerLSTMModelGrads,
    SimpleLSTMModelGrads,
)
from specchain.models.torchlean.inputs import (
    State,
    batch_of,
    check_sequence,
    check_state,
    check_vocab_input,
    one_state,
    stacked_states,
    unstack,
)
from specchain.models.torchlean.language import (
    DropoutInference,
    LSTMGenerator,
    LSTMLanguageModel,
)
from specchain.models.torchlean.parts import shape_of
from specchain.models.torchlean.record import SequenceModel
from specchain.models.torchlean.sequence_models import (
    BiLSTMModel,
    LSTMClassifier,
    MultiLayerLSTMModel,
    SimpleLSTMModel,
)
from specchain.modules.gatewise import LinearGrads, LSTMGrads
from specchain.types import ShapeError


def _forward(chain: SpecChain, x: Any) -> np.ndarray:
    """``chain``'s output on ``x``, one array (the functions whose chain gives no state)."""
    y: np.ndarray = chain(x)
    return y


def _with_final_states(chain: SpecChain, x: Any) -> tuple[np.ndarray, list[State]]:
    """``chain``'s ``(outputs, (h_n, c_n))`` on ``x``, the final states ``[N, B, H]`` split into
    one ``(h, c)`` pair per layer (the functions whose chain gives the final state)."""
    ys, (h_n, c_n) = chain(x)
    return ys, unstack(h_n, c_n)


def _backward(chain: SpecChain, x: Any, dy: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """``chain``'s backward of ``dy`` after a forward pass on ``x``: ``(d x, parameter grads)``."""
    _, tape = chain.forward(x)
    return chain.backward(tape, dy)


def _one_layer_inputs(
    model: SequenceModel, inputs: np.ndarray, initial_state: State | None
) -> tuple[np.ndarray, State]:
    """``inputs [T, B, I]`` checked, and ``(h0, c0)`` (zeros if None) stacked to ``[1, B, H]``."""
    xs = check_sequence(inputs, model.input_size, model.dtype, "inputs")
    return xs, one_state(initial_state, batch_of(xs), model.hidden_size, model.dtype)


# --- SimpleLSTMModel -------------------------------------------------------------------------


def simple_lstm_sequence_forward(
    model: SimpleLSTMModel, inputs: np.ndarray, initial_state: State | None = None
) -> tuple[np.ndarray, State]:
    """TorchLean's ``simpleLstmSequenceForward``: ``inputs [T, B, I]`` and ``(h0, c0)`` (each
    ``[B, H]``, zeros if None) -> ``(outputs [T, B, O], (h_T, c_T))``."""
    x = _one_layer_inputs(model, inputs, initial_state)
    ys, (final,) = _with_final_states(model.chain_with_final_state(), x)
    return ys, final


def simple_lstm_forward(
    model: SimpleLSTMModel, x: np.ndarray, state: State | None = None
) -> tuple[np.ndarray, State]:
    """TorchLean's ``simpleLstmForward``, one step: ``x [B, I]`` and ``(h, c)`` (each ``[B, H]``)
    -> ``(y [B, O], (h', c'))``; unbatched ``[I]`` and ``[H]`` work too."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
    ys, final = simple_lstm_sequence_forward(model, x[None], state)
    return ys[0], final


def simple_lstm_backward(
    model: SimpleLSTMModel,
    inputs: np.ndarray,
    initial_state: State | None,
    grad_outputs: np.ndarray,
) -> tuple[SimpleLSTMModelGrads, np.ndarray, State]:
    """TorchLean's ``simpleLstmBackward`` (BPTT): ``grad_outputs [T, B, O]`` is dL/d outputs of
    ``simple_lstm_sequence_forward``. Returns ``(grads, d inputs [T, B, I], (dh0, dc0))``."""
    x = _one_layer_inputs(model, inputs, initial_state)
    (dxs, (dh0, dc0)), grads = _backward(model.chain_with_initial_state(), x, grad_outputs)
    return SimpleLSTMModelGrads(**model.grads_by_field(grads)), dxs, (dh0[0], dc0[0])


def simple_lstm_mse_loss(
    model: SimpleLSTMModel,
    inputs: np.ndarray,
    targets: np.ndarray,
    initial_state: State | None = None,
) -> float:
    """TorchLean's ``simpleLstmMseLoss``: the mean squared error of the outputs
    ``[T, B, O]`` against ``targets [T, B, O]``."""
    outputs, _ = simple_lstm_sequence_forward(model, inputs, initial_state)
    return float(mse(outputs, targets))


def simple_lstm_mse_grad(
    model: SimpleLSTMModel,
    inputs: np.ndarray,
    targets: np.ndarray,
    initial_state: State | None = None,
) -> tuple[float, SimpleLSTMModelGrads]:
    """TorchLean's ``simpleLstmMseGrad``: ``(loss, grads)`` of ``simple_lstm_mse_loss``."""
    x = _one_layer_inputs(model, inputs, initial_state)
    loss, grads = model.chain_with_initial_state().value_and_grad(x, targets, loss=mse, train=False)
    return loss, SimpleLSTMModelGrads(**model.grads_by_field(grads))


# --- LSTMClassifier ---------------------------------------------------------------------------


def lstm_classifier_forward(
    model: LSTMClassifier, inputs: np.ndarray, initial_state: State | None = None
) -> np.ndarray:
    """TorchLean's ``lstmClassifierForward``: ``inputs [T, B, I]`` -> logits ``[B, C]`` from the
    final hidden state (``[T, I]`` -> ``[C]``)."""
    x = _one_layer_inputs(model, inputs, initial_state)
    return _forward(model.chain_with_initial_state(), x)


def lstm_classifier_backward(
    model: LSTMClassifier,
    inputs: np.ndarray,
    initial_state: State | None,
    grad_logits: np.ndarray,
) -> tuple[LinearGrads, LSTMGrads, np.ndarray]:
    """TorchLean's ``lstmClassifierBackward``: ``grad_logits [B, C]`` -> ``(classifier grads,
    LSTM grads, d inputs [T, B, I])`` (TorchLean's order; it drops the state's gradient)."""
    x = _one_layer_inputs(model, inputs, initial_state)
    (dxs, _), grads = _backward(model.chain_with_initial_state(), x, grad_logits)
    parts = model.grads_by_field(grads)
    return parts["classifier"], parts["lstm"], dxs


# --- LSTMGenerator ---------------------------------------------------------------------------


def lstm_generator_forward(
    model: LSTMGenerator, inputs: np.ndarray, initial_state: State | None = None
) -> tuple[np.ndarray, State]:
    """TorchLean's ``lstmGeneratorForward``: ``inputs`` (``[T, B, V]`` vectors or int tokens
    ``[T, B]``) and ``(h0, c0)`` -> ``(logits [T, B, V], (h_T, c_T))``."""
    xs, tokens = check_vocab_input(inputs, model.vocab_size, model.dtype, "inputs")
    state = one_state(initial_state, batch_of(xs, tokens), model.hidden_size, model.dtype)
    logits, (final,) = _with_final_states(model.chain_with_final_state(tokens), (xs, state))
    return logits, final


# --- BiLSTMModel -----------------------------------------------------------------------------


def _bi_inputs(
    model: BiLSTMModel, inputs: np.ndarray, forward_state: Any, backward_state: Any
) -> tuple[np.ndarray, State]:
    """``inputs [T, B, I]`` checked, and the two directions' states stacked like ``nn.LSTM``'s
    ``[2, B, H]``, forward first."""
    xs = check_sequence(inputs, model.input_size, model.dtype, "inputs")
    batch, h = batch_of(xs), model.hidden_size
    pairs = [
        check_state(s, batch, h, model.dtype, what)
        for s, what in ((forward_state, "forward_state"), (backward_state, "backward_state"))
    ]
    return xs, (np.stack([h for h, _ in pairs]), np.stack([c for _, c in pairs]))


def bilstm_forward(
    model: BiLSTMModel,
    inputs: np.ndarray,
    forward_state: State | None = None,
    backward_state: State | None = None,
) -> np.ndarray:
    """TorchLean's ``bilstmForward``: ``inputs [T, B, I]`` -> ``outputs [T, B, O]``; the backward
    LSTM starts from ``backward_state`` at the last timestep."""
    x = _bi_inputs(model, inputs, forward_state, backward_state)
    return _forward(model.chain_with_initial_state(), x)


def bilstm_backward(
    model: BiLSTMModel,
    inputs: np.ndarray,
    forward_state: State | None,
    backward_state: State | None,
    grad_outputs: np.ndarray,
) -> tuple[BiLSTMModelGrads, np.ndarray, tuple[State, State]]:
    """Backward of ``bilstm_forward`` (TorchLean has none): ``grad_outputs [T, B, O]`` ->
    ``(grads, d inputs [T, B, I], (d forward_state, d backward_state))``."""
    x = _bi_inputs(model, inputs, forward_state, backward_state)
    (dxs, (dh0, dc0)), grads = _backward(model.chain_with_initial_state(), x, grad_outputs)
    d_forward, d_backward = unstack(dh0, dc0)
    return BiLSTMModelGrads(**model.grads_by_field(grads)), dxs, (d_forward, d_backward)


# --- MultiLayerLSTMModel ---------------------------------------------------------------------


def _stack_inputs(
    model: MultiLayerLSTMModel, inputs: np.ndarray, initial_states: Sequence[State] | None
) -> tuple[np.ndarray, State]:
    """``inputs [T, B, I]`` checked, and one ``(h0, c0)`` per layer stacked to ``[L, B, H]``."""
    xs = check_sequence(inputs, model.input_size, model.dtype, "inputs")
    name, n, h = "MultiLayerLSTMModel", model.num_layers, model.hidden_size
    return xs, stacked_states(initial_states, n, batch_of(xs), h, model.dtype, name)


def multilayer_lstm_forward(
    model: MultiLayerLSTMModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None = None,
) -> tuple[np.ndarray, list[State]]:
    """TorchLean's ``multilayerLstmForward``: ``inputs [T, B, I]`` and one ``(h0, c0)`` per layer
    -> ``(outputs [T, B, O], final state per layer)``."""
    x = _stack_inputs(model, inputs, initial_states)
    return _with_final_states(model.chain_with_final_state(), x)


def multilayer_lstm_backward(
    model: MultiLayerLSTMModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None,
    grad_outputs: np.ndarray,
) -> tuple[MultiLayerLSTMModelGrads, np.ndarray, list[State]]:
    """Backward of ``multilayer_lstm_forward`` (TorchLean has none): ``grad_outputs [T, B, O]`` ->
    ``(grads, d inputs [T, B, I], d initial state per layer)``."""
    x = _stack_inputs(model, inputs, initial_states)
    (dxs, (dh0, dc0)), grads = _backward(model.chain_with_initial_state(), x, grad_outputs)
    return MultiLayerLSTMModelGrads(**model.grads_by_field(grads)), dxs, unstack(dh0, dc0)


# --- LSTMLanguageModel -----------------------------------------------------------------------


def _lm_inputs(
    model: LSTMLanguageModel, inputs: np.ndarray, initial_states: Sequence[State] | None
) -> tuple[tuple[np.ndarray, State], bool]:
    xs, tokens = check_vocab_input(inputs, model.vocab_size, model.dtype, "inputs")
    batch, name = batch_of(xs, tokens), "LSTMLanguageModel"
    states = stacked_states(
        initial_states, model.num_layers, batch, model.hidden_size, model.dtype, name
    )
    return (xs, states), tokens


def lstm_lm_forward(
    model: LSTMLanguageModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None = None,
    dropout_inference: DropoutInference = "seed",
) -> tuple[np.ndarray, list[State]]:
    """TorchLean's ``lstmLmForward`` (teacher forcing): ``inputs`` (``[T, B, V]`` vectors or int
    tokens ``[T, B]``) and one ``(h0, c0)`` per layer -> ``(logits [T, B, V], final states)``.

    Between the LSTM stack and the projection it applies ``dropoutInferenceSpec`` as of the
    revision ``dropout_inference`` names (see ``DropoutInference``): ``"seed"`` (default, the
    revision this port follows) scales by ``1 - dropout_rate``; ``"identity"`` (TorchLean's later
    evaluation-mode dropout, PyTorch's ``eval()``) passes the hidden states through unchanged.

    A layer/state list mismatch: TorchLean's seed does not check the two lengths. It runs layer
    ``k`` from state ``k`` while both lists have an item (the matched prefix) and stops there:
    layers without a state are skipped, the dropout and projection read the hidden stream of the
    last layer run (the embedding if none ran), and states without a layer come back unchanged
    after the new ones; with fewer states than layers the logits are a shallower model's. Its
    later revision returns ``none`` instead. This raises a ``SpecError`` naming both lengths,
    refusing the call as that revision does."""
    x, tokens = _lm_inputs(model, inputs, initial_states)
    return _with_final_states(model.chain_with_final_state(tokens, dropout_inference), x)


def lstm_lm_backward(
    model: LSTMLanguageModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None,
    grad_logits: np.ndarray,
    dropout_inference: DropoutInference = "seed",
) -> tuple[LSTMLanguageModelGrads, np.ndarray | None, list[State]]:
    """Backward of ``lstm_lm_forward`` with the same ``dropout_inference`` (TorchLean has none):
    ``grad_logits [T, B, V]`` -> ``(grads, d inputs [T, B, V] or None for tokens, d initial
    state per layer)``."""
    x, tokens = _lm_inputs(model, inputs, initial_states)
    dy = (grad_logits, (None, None))
    chain = model.chain_with_final_state(tokens, dropout_inference)
    (d_inputs, (dh0, dc0)), grads = _backward(chain, x, dy)
    return LSTMLanguageModelGrads(**model.grads_by_field(grads)), d_inputs, unstack(dh0, dc0)


# --- AttentionLSTMModel ----------------------------------------------------------------------


def _attention_inputs(
    model: AttentionLSTMModel, source: np.ndarray, decoder_inputs: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], bool]:
    """Both sequences batched (``[S, I]`` / ``[T, I]`` get a batch of one); True if unbatched."""
    i, dtype = model.input_size, model.dtype
    src = check_sequence(source, i, dtype, "source")
    dec = check_sequence(decoder_inputs, i, dtype, "decoder_inputs")
    if src.ndim != dec.ndim:
        raise ShapeError(
            f"source {shape_of(src)} and decoder_inputs {shape_of(dec)} must both be batched "
            "[len, B, I] or both single examples [len, I]"
        )
    if src.ndim == 2:
        return (src[:, None], dec[:, None]), True
    return (src, dec), False


def attention_lstm_forward(
    model: AttentionLSTMModel, source: np.ndarray, decoder_inputs: np.ndarray
) -> np.ndarray:
    """The attention encoder/decoder (TorchLean defines only the record): ``source [S, B, I]`` and
    teacher-forced ``decoder_inputs [T, B, I]`` -> ``outputs [T, B, O]``."""
    x, unbatched = _attention_inputs(model, source, decoder_inputs)
    ys = _forward(model.cached_chain(), x)
    return ys[:, 0] if unbatched else ys


def attention_lstm_backward(
    model: AttentionLSTMModel,
    source: np.ndarray,
    decoder_inputs: np.ndarray,
    grad_outputs: np.ndarray,
) -> tuple[AttentionLSTMModelGrads, np.ndarray, np.ndarray]:
    """Backward of ``attention_lstm_forward``: ``grad_outputs [T, B, O]`` ->
    ``(grads, d source [S, B, I], d decoder_inputs [T, B, I])``."""
    x, unbatched = _attention_inputs(model, source, decoder_inputs)
    dy = grad_outputs
    if unbatched and isinstance(dy, np.ndarray):
        dy = dy[:, None]
    (d_source, d_decoder), grads = _backward(model.cached_chain(), x, dy)
    if unbatched:
        d_source, d_decoder = d_source[:, 0], d_decoder[:, 0]
    return AttentionLSTMModelGrads(**model.grads_by_field(grads)), d_source, d_decoder
