"""TorchLean's attention encoder/decoder record, ``AttentionLSTMModel``."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
from numpy.random import Generator

from specchain.chain import SpecChain
from specchain.models import zoo
from specchain.models.torchlean import parts
from specchain.models.torchlean.alias import Alias
from specchain.models.torchlean.layout import Layout, LinearSlot, LSTMSlot
from specchain.models.torchlean.parts import LinearParams
from specchain.models.torchlean.record import OutputModel, SizedModel
from specchain.modules.gatewise import LSTMGateParams


@attrs.frozen(eq=False)
class AttentionLSTMModel(SizedModel, OutputModel):
    """TorchLean's ``AttentionLSTMModel`` record: ``encoder_lstm`` LSTM ``I`` -> ``H``,
    ``decoder_lstm`` LSTM cell ``I + H`` -> ``H`` (input and context), ``attention_weights``
    linear ``2H`` -> ``1`` (one score) and ``output_layer`` linear ``H`` -> ``O``.

    TorchLean defines these parameters only, no forward pass ("Forward passes can choose
    additive, dot-product, or domain-specific attention semantics while sharing this typed
    parameter bundle"). The forward run here is ours, ``specchain.modules.attention``'s
    ``AttentionLSTM``. Chain: ``zoo.attention_seq2seq`` (one ``AttentionLSTM`` node,
    ``attention``). The record's ``attention_weights`` (``2H`` -> ``1``) are the parameters of
    the concat score (``score="concat"``, the default); the other scores of ``AttentionLSTM``
    (``"dot"``, ``"general"``, ``"additive"``) need other shapes, so they are built with
    ``zoo.attention_seq2seq(..., score=...)`` rather than from this record. The names this
    package used before (``encoder``, ``decoder``, ``output``) stay as read-only aliases."""

    _first_field: ClassVar[str] = "encoder_lstm"
    encoder_lstm: LSTMGateParams = attrs.field(validator=parts.gate_params)
    decoder_lstm: LSTMGateParams = attrs.field(validator=parts.gate_params)
    attention_weights: LinearParams = attrs.field(validator=parts.linear_params)
    output_layer: LinearParams = attrs.field(validator=parts.linear_params)

    def _check_sizes(self) -> None:
        name = "AttentionLSTMModel"
        i, h = parts.lstm_sizes(self.encoder_lstm, "encoder_lstm")
        dec_in, dec_h = parts.lstm_sizes(self.decoder_lstm, "decoder_lstm")
        parts.same(name, "decoder_lstm.hidden_size", dec_h, "encoder_lstm.hidden_size", h)
        parts.same(
            name, "decoder_lstm.input_size", dec_in, "encoder_lstm input_size + hidden_size", i + h
        )
        att_in, att_out = parts.linear_sizes(self.attention_weights, "attention_weights")
        parts.same(
            name, "attention_weights.in_features", att_in, "2 * encoder_lstm.hidden_size", 2 * h
        )
        parts.same(name, "attention_weights.out_features", att_out, "one score", 1)
        self._check_head("encoder_lstm.hidden_size", h)

    encoder = Alias[LSTMGateParams]("encoder_lstm")
    decoder = Alias[LSTMGateParams]("decoder_lstm")

    @classmethod
    def _init_parts(cls, i: int, h: int, o: int, gen: Generator, dtype: Any) -> tuple[Any, ...]:
        encoder, decoder = parts.init_lstm(i, h, gen, dtype), parts.init_lstm(i + h, h, gen, dtype)
        scores = LinearParams.init(2 * h, 1, gen, dtype)
        return encoder, decoder, scores, LinearParams.init(h, o, gen, dtype)

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {
            "encoder_lstm": LSTMSlot("attention.encoder.", "_l0"),
            "decoder_lstm": LSTMSlot("attention.decoder.", ""),
            "attention_weights": LinearSlot("attention.attention_weights."),
            "output_layer": LinearSlot("attention.output."),
        }

    def _build(self) -> SpecChain:
        return zoo.attention_seq2seq(self.input_size, self.hidden_size, self.output_size)
