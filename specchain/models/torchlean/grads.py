"""TorchLean's gradient records, one per model with the model's field names: LSTM layers as
``LSTMGrads`` (gate-wise), linear layers as ``LinearGrads`` (``dW``, ``db``).

``SimpleLSTMModelGrads`` is TorchLean's own (``lstm``, ``output_layer``); TorchLean has no
gradient record for the other models, so theirs repeat their model's field names. The names this
package used before (``output``, ``layers``, ``encoder``, ``decoder``) stay as read-only aliases.
"""

from __future__ import annotations

import attrs

from specchain.models.torchlean.alias import Alias
from specchain.modules.gatewise import LinearGrads, LSTMGrads


@attrs.frozen(eq=False)
class AttentionLSTMModelGrads:
    """Gradients of an ``AttentionLSTMModel``, field for field."""

    encoder_lstm: LSTMGrads
    decoder_lstm: LSTMGrads
    attention_weights: LinearGrads
    output_layer: LinearGrads

    encoder = Alias[LSTMGrads]("encoder_lstm")
    decoder = Alias[LSTMGrads]("decoder_lstm")
    output = Alias[LinearGrads]("output_layer")


@attrs.frozen(eq=False)
class BiLSTMModelGrads:
    """Gradients of a ``BiLSTMModel``, field for field."""

    forward_lstm: LSTMGrads
    backward_lstm: LSTMGrads
    output_layer: LinearGrads

    output = Alias[LinearGrads]("output_layer")


@attrs.frozen(eq=False)
class LSTMLanguageModelGrads:
    """Gradients of an ``LSTMLanguageModel``, field for field (one ``LSTMGrads`` per layer)."""

    embedding: LinearGrads
    lstm_layers: tuple[LSTMGrads, ...]
    output_projection: LinearGrads


@attrs.frozen(eq=False)
class MultiLayerLSTMModelGrads:
    """Gradients of a ``MultiLayerLSTMModel``, field for field."""

    first_layer: LSTMGrads
    hidden_layers: tuple[LSTMGrads, ...]
    output_layer: LinearGrads

    output = Alias[LinearGrads]("output_layer")

    @property
    def layers(self) -> tuple[LSTMGrads, ...]:
        """Every layer's gradients, input to output: ``(first_layer, *hidden_layers)`` (the
        earlier field, now a read-only view)."""
        return (self.first_layer, *self.hidden_layers)


@attrs.frozen(eq=False)
class SimpleLSTMModelGrads:
    """TorchLean's ``SimpleLSTMModelGrads``: ``lstm`` gate-wise, ``output_layer`` as
    ``LinearGrads``."""

    lstm: LSTMGrads
    output_layer: LinearGrads

    output = Alias[LinearGrads]("output_layer")
