"""TorchLean's forward and backward functions (``simpleLstmForward``, ...): each checks its inputs,
runs the record's chain (``cached_chain``, ``chain_with_initial_state`` or
``chain_with_final_state``: built once, reloaded with the record's arrays at every call) and
returns arrays and TorchLean's gradient records (``grads_by_field``). Every backward sits right
under its forward.

Every function over a sequence (all but the one-step ``simple_lstm_forward``) takes the keyword
``lengths`` (int ``[B]``, each in ``1..T``; one length for an unbatched ``[T, I]``; the attention
functions take ``source_lengths`` and ``decoder_lengths``), as ``pack_padded_sequence`` does:
outputs past each length are 0, final states are each sequence's own last step's, a backward
ignores ``grad_outputs`` past each length and gives zero input gradients there, and the mse
averages over valid steps only (``lengths``)."""

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
    attention_inputs,
    batch_of,
    bi_inputs,
    check_vocab_input,
    lm_inputs,
    one_layer_inputs,
    one_state,
    stack_inputs,
    unstack,
)
from specchain.models.torchlean.language import (
    DropoutInference,
    LSTMGenerator,
    LSTMLanguageModel,
)
from specchain.models.torchlean.lengths import (
    backward,
    sequence_input,
    unpadded,
)
from specchain.models.torchlean.sequence_models import (
    BiLSTMModel,
    LSTMClassifier,
    MultiLayerLSTMModel,
    SimpleLSTMModel,
)
from specchain.modules.gatewise import LinearGrads, LSTMGrads


def _forward(chain: SpecChain, x: Any) -> np.ndarray:
    """``chain``'s output on ``x``, one plain array (zeros past each length of a padded batch)."""
    y: np.ndarray = unpadded(chain(x))
    return y


def _with_final_states(chain: SpecChain, x: Any) -> tuple[np.ndarray, list[State]]:
    """``chain``'s ``(outputs, (h_n, c_n))`` on ``x``, the outputs plain (zeros past each length)
    and the final states ``[N, B, H]`` split into one ``(h, c)`` pair per layer."""
    ys, (h_n, c_n) = unpadded(chain(x))
    return ys, unstack(h_n, c_n)


# --- SimpleLSTMModel -------------------------------------------------------------------------


def simple_lstm_sequence_forward(
    model: SimpleLSTMModel,
    inputs: np.ndarray,
    initial_state: State | None = None,
    *,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, State]:
    """TorchLean's ``simpleLstmSequenceForward``: ``inputs [T, B, I]`` and ``(h0, c0)`` (each
    ``[B, H]``, zeros if None) -> ``(outputs [T, B, O], (h_T, c_T))``. With ``lengths`` (int
    ``[B]``, each in ``1..T``) outputs past each length are 0 and ``(h_T, c_T)`` is each
    sequence's state at its own last step."""
    x = one_layer_inputs(model, inputs, initial_state, lengths, "simple_lstm_sequence_forward")
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
    *,
    lengths: np.ndarray | None = None,
) -> tuple[SimpleLSTMModelGrads, np.ndarray, State]:
    """TorchLean's ``simpleLstmBackward`` (BPTT): ``grad_outputs [T, B, O]`` is dL/d outputs of
    ``simple_lstm_sequence_forward``. Returns ``(grads, d inputs [T, B, I], (dh0, dc0))``. With
    ``lengths``, ``grad_outputs`` past each length is ignored and ``d inputs`` is 0 there."""
    x = one_layer_inputs(model, inputs, initial_state, lengths, "simple_lstm_backward")
    (dxs, (dh0, dc0)), grads = backward(model.chain_with_initial_state(), x, grad_outputs)
    return SimpleLSTMModelGrads(**model.grads_by_field(grads)), dxs, (dh0[0], dc0[0])


def simple_lstm_mse_loss(
    model: SimpleLSTMModel,
    inputs: np.ndarray,
    targets: np.ndarray,
    initial_state: State | None = None,
    *,
    lengths: np.ndarray | None = None,
) -> float:
    """TorchLean's ``simpleLstmMseLoss``: the mean squared error of the outputs
    ``[T, B, O]`` against ``targets [T, B, O]``. With ``lengths`` the mean runs over valid steps
    only: targets past each length count for nothing, and the sum of squared errors divides by
    the number of valid elements (``sum(lengths) * O``), as ``sc.losses.mse`` does for a padded
    output."""
    x = one_layer_inputs(model, inputs, initial_state, lengths, "simple_lstm_mse_loss")
    return float(mse(model.chain_with_initial_state()(x), targets))


def simple_lstm_mse_grad(
    model: SimpleLSTMModel,
    inputs: np.ndarray,
    targets: np.ndarray,
    initial_state: State | None = None,
    *,
    lengths: np.ndarray | None = None,
) -> tuple[float, SimpleLSTMModelGrads]:
    """TorchLean's ``simpleLstmMseGrad``: ``(loss, grads)`` of ``simple_lstm_mse_loss`` (with
    ``lengths``, of its mean over valid steps only)."""
    x = one_layer_inputs(model, inputs, initial_state, lengths, "simple_lstm_mse_grad")
    loss, grads = model.chain_with_initial_state().value_and_grad(x, targets, loss=mse, train=False)
    return loss, SimpleLSTMModelGrads(**model.grads_by_field(grads))


# --- LSTMClassifier ---------------------------------------------------------------------------


def lstm_classifier_forward(
    model: LSTMClassifier,
    inputs: np.ndarray,
    initial_state: State | None = None,
    *,
    lengths: np.ndarray | None = None,
) -> np.ndarray:
    """TorchLean's ``lstmClassifierForward``: ``inputs [T, B, I]`` -> logits ``[B, C]`` from the
    final hidden state (``[T, I]`` -> ``[C]``); with ``lengths``, each sequence's state at its
    own last step."""
    x = one_layer_inputs(model, inputs, initial_state, lengths, "lstm_classifier_forward")
    return _forward(model.chain_with_initial_state(), x)


def lstm_classifier_backward(
    model: LSTMClassifier,
    inputs: np.ndarray,
    initial_state: State | None,
    grad_logits: np.ndarray,
    *,
    lengths: np.ndarray | None = None,
) -> tuple[LinearGrads, LSTMGrads, np.ndarray]:
    """TorchLean's ``lstmClassifierBackward``: ``grad_logits [B, C]`` -> ``(classifier grads,
    LSTM grads, d inputs [T, B, I])`` (TorchLean's order; it drops the state's gradient). With
    ``lengths``, ``d inputs`` is 0 past each length."""
    x = one_layer_inputs(model, inputs, initial_state, lengths, "lstm_classifier_backward")
    (dxs, _), grads = backward(model.chain_with_initial_state(), x, grad_logits)
    parts = model.grads_by_field(grads)
    return parts["classifier"], parts["lstm"], dxs


# --- LSTMGenerator ---------------------------------------------------------------------------


def lstm_generator_forward(
    model: LSTMGenerator,
    inputs: np.ndarray,
    initial_state: State | None = None,
    *,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, State]:
    """TorchLean's ``lstmGeneratorForward``: ``inputs`` (``[T, B, V]`` vectors or int tokens
    ``[T, B]``) and ``(h0, c0)`` -> ``(logits [T, B, V], (h_T, c_T))``. With ``lengths``, logits
    past each length are 0 and ``(h_T, c_T)`` is each sequence's state at its own last step."""
    xs, tokens = check_vocab_input(inputs, model.vocab_size, model.dtype, "inputs")
    state = one_state(initial_state, batch_of(xs, tokens), model.hidden_size, model.dtype)
    x = sequence_input(xs, lengths, "lstm_generator_forward", tokens)
    logits, (final,) = _with_final_states(model.chain_with_final_state(tokens), (x, state))
    return logits, final


# --- BiLSTMModel -----------------------------------------------------------------------------


def bilstm_forward(
    model: BiLSTMModel,
    inputs: np.ndarray,
    forward_state: State | None = None,
    backward_state: State | None = None,
    *,
    lengths: np.ndarray | None = None,
) -> np.ndarray:
    """TorchLean's ``bilstmForward``: ``inputs [T, B, I]`` -> ``outputs [T, B, O]``; the backward
    LSTM starts from ``backward_state`` at the last timestep (with ``lengths``: at each
    sequence's own last step; outputs past each length are 0)."""
    x = bi_inputs(model, inputs, forward_state, backward_state, lengths, "bilstm_forward")
    return _forward(model.chain_with_initial_state(), x)


def bilstm_backward(
    model: BiLSTMModel,
    inputs: np.ndarray,
    forward_state: State | None,
    backward_state: State | None,
    grad_outputs: np.ndarray,
    *,
    lengths: np.ndarray | None = None,
) -> tuple[BiLSTMModelGrads, np.ndarray, tuple[State, State]]:
    """Backward of ``bilstm_forward`` (TorchLean has none): ``grad_outputs [T, B, O]`` ->
    ``(grads, d inputs [T, B, I], (d forward_state, d backward_state))``. With ``lengths``,
    ``grad_outputs`` past each length is ignored and ``d inputs`` is 0 there."""
    x = bi_inputs(model, inputs, forward_state, backward_state, lengths, "bilstm_backward")
    (dxs, (dh0, dc0)), grads = backward(model.chain_with_initial_state(), x, grad_outputs)
    d_forward, d_backward = unstack(dh0, dc0)
    return BiLSTMModelGrads(**model.grads_by_field(grads)), dxs, (d_forward, d_backward)


# --- MultiLayerLSTMModel ---------------------------------------------------------------------


def multilayer_lstm_forward(
    model: MultiLayerLSTMModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None = None,
    *,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, list[State]]:
    """TorchLean's ``multilayerLstmForward``: ``inputs [T, B, I]`` and one ``(h0, c0)`` per layer
    -> ``(outputs [T, B, O], final state per layer)``. With ``lengths``, outputs past each length
    are 0 and the final states are each sequence's states at its own last step."""
    x = stack_inputs(model, inputs, initial_states, lengths, "multilayer_lstm_forward")
    return _with_final_states(model.chain_with_final_state(), x)


def multilayer_lstm_backward(
    model: MultiLayerLSTMModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None,
    grad_outputs: np.ndarray,
    *,
    lengths: np.ndarray | None = None,
) -> tuple[MultiLayerLSTMModelGrads, np.ndarray, list[State]]:
    """Backward of ``multilayer_lstm_forward`` (TorchLean has none): ``grad_outputs [T, B, O]`` ->
    ``(grads, d inputs [T, B, I], d initial state per layer)``. With ``lengths``,
    ``grad_outputs`` past each length is ignored and ``d inputs`` is 0 there."""
    x = stack_inputs(model, inputs, initial_states, lengths, "multilayer_lstm_backward")
    (dxs, (dh0, dc0)), grads = backward(model.chain_with_initial_state(), x, grad_outputs)
    return MultiLayerLSTMModelGrads(**model.grads_by_field(grads)), dxs, unstack(dh0, dc0)


# --- LSTMLanguageModel -----------------------------------------------------------------------


def lstm_lm_forward(
    model: LSTMLanguageModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None = None,
    dropout_inference: DropoutInference = "seed",
    *,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, list[State]]:
    """TorchLean's ``lstmLmForward`` (teacher forcing): ``inputs`` (``[T, B, V]`` vectors or int
    tokens ``[T, B]``) and one ``(h0, c0)`` per layer -> ``(logits [T, B, V], final states)``.
    With ``lengths``, logits past each length are 0 and the final states are each sequence's
    states at its own last step.

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
    x, tokens = lm_inputs(model, inputs, initial_states, lengths, "lstm_lm_forward")
    return _with_final_states(model.chain_with_final_state(tokens, dropout_inference), x)


def lstm_lm_backward(
    model: LSTMLanguageModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None,
    grad_logits: np.ndarray,
    dropout_inference: DropoutInference = "seed",
    *,
    lengths: np.ndarray | None = None,
) -> tuple[LSTMLanguageModelGrads, np.ndarray | None, list[State]]:
    """Backward of ``lstm_lm_forward`` with the same ``dropout_inference`` (TorchLean has none):
    ``grad_logits [T, B, V]`` -> ``(grads, d inputs [T, B, V] or None for tokens, d initial
    state per layer)``. With ``lengths``, ``grad_logits`` past each length is ignored and
    ``d inputs`` is 0 there."""
    x, tokens = lm_inputs(model, inputs, initial_states, lengths, "lstm_lm_backward")
    dy = (grad_logits, (None, None))
    chain = model.chain_with_final_state(tokens, dropout_inference)
    (d_inputs, (dh0, dc0)), grads = backward(chain, x, dy)
    return LSTMLanguageModelGrads(**model.grads_by_field(grads)), d_inputs, unstack(dh0, dc0)


# --- AttentionLSTMModel ----------------------------------------------------------------------


def attention_lstm_forward(
    model: AttentionLSTMModel,
    source: np.ndarray,
    decoder_inputs: np.ndarray,
    *,
    source_lengths: np.ndarray | None = None,
    decoder_lengths: np.ndarray | None = None,
) -> np.ndarray:
    """The attention encoder/decoder (TorchLean defines only the record): ``source [S, B, I]`` and
    teacher-forced ``decoder_inputs [T, B, I]`` -> ``outputs [T, B, O]``. With
    ``source_lengths`` (int ``[B]``, each in ``1..S``) the encoder runs each source over its own
    steps and attends to them only; with ``decoder_lengths`` (each in ``1..T``) outputs past each
    length are 0."""
    lengths = source_lengths, decoder_lengths
    x, unbatched = attention_inputs(
        model, source, decoder_inputs, lengths, "attention_lstm_forward"
    )
    ys = _forward(model.cached_chain(), x)
    return ys[:, 0] if unbatched else ys


def attention_lstm_backward(
    model: AttentionLSTMModel,
    source: np.ndarray,
    decoder_inputs: np.ndarray,
    grad_outputs: np.ndarray,
    *,
    source_lengths: np.ndarray | None = None,
    decoder_lengths: np.ndarray | None = None,
) -> tuple[AttentionLSTMModelGrads, np.ndarray, np.ndarray]:
    """Backward of ``attention_lstm_forward``: ``grad_outputs [T, B, O]`` ->
    ``(grads, d source [S, B, I], d decoder_inputs [T, B, I])``. With lengths, ``grad_outputs``
    past each decoder length is ignored, and each input's gradient is 0 past its lengths."""
    lengths = source_lengths, decoder_lengths
    x, unbatched = attention_inputs(
        model, source, decoder_inputs, lengths, "attention_lstm_backward"
    )
    dy = grad_outputs
    if unbatched and isinstance(dy, np.ndarray):
        dy = dy[:, None]
    (d_source, d_decoder), grads = backward(model.cached_chain(), x, dy)
    if unbatched:
        d_source, d_decoder = d_source[:, 0], d_decoder[:, 0]
    return AttentionLSTMModelGrads(**model.grads_by_field(grads)), d_source, d_decoder
