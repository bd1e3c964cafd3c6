"""TorchLean's gradient records, one per model with the model's field names: LSTM layers as
``LSTMGrads`` (gate-wise), linear layers as ``LinearGrads`` (``dW``, ``db``)."""

from __future__ import annotations

import attrs

from specchain.modules.gatewise import LinearGrads, LSTMGrads


@attrs.frozen(eq=False)
class AttentionLSTMModelGrads:
    """Gradients of an ``AttentionLSTMModel``, field for field."""

    encoder: LSTMGrads
    decoder: LSTMGrads
    attention_weights: LinearGrads
    output: LinearGrads


@attrs.frozen(eq=False)
class BiLSTMModelGrads:
    """Gradients of a ``BiLSTMModel``, field for field."""

    forward_lstm: LSTMGrads
    backward_lstm: LSTMGrads
    output: LinearGrads


@attrs.frozen(eq=False)
class LSTMLanguageModelGrads:
    """Gradients of an ``LSTMLanguageModel``, field for field (one ``LSTMGrads`` per layer)."""

    embedding: LinearGrads
    lstm_layers: tuple[LSTMGrads, ...]
    output_projection: LinearGrads


@attrs.frozen(eq=False)
class MultiLayerLSTMModelGrads:
    """Gradients of a ``MultiLayerLSTMModel``: one ``LSTMGrads`` per layer, and the output's."""

    layers: tuple[LSTMGrads, ...]
    output: LinearGrads


@attrs.frozen(eq=False)
class SimpleLSTMModelGrads:
    """Gradients of a ``SimpleLSTMModel``: ``lstm`` gate-wise, ``output`` as ``LinearGrads``."""

    lstm: LSTMGrads
    output: LinearGrads
