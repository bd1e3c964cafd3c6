"""TorchLean's attention encoder/decoder record, ``AttentionLSTMModel``."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
from numpy.random import Generator

from specchain.chain import SpecChain
from specchain.models import zoo
from specchain.models.torchlean import parts
from specchain.models.torchlean.layout import Layout, LinearSlot, LSTMSlot
from specchain.models.torchlean.parts import LinearParams
from specchain.models.torchlean.record import SizedModel
from specchain.modules.gatewise import LSTMGateParams


@attrs.frozen(eq=False)
class AttentionLSTMModel(SizedModel):
    """TorchLean's attention encoder/decoder (equations in ``specchain.modules.attention``):
    ``encoder`` LSTM ``I`` -> ``H``, ``decoder`` LSTM cell ``I + H`` -> ``H``,
    ``attention_weights`` linear ``2H`` -> ``1``, ``output`` linear ``H`` -> ``O``.
    Chain: ``zoo.attention_seq2seq`` (one ``AttentionLSTM`` node, ``attention``)."""

    _first_field: ClassVar[str] = "encoder"
    encoder: LSTMGateParams = attrs.field(validator=parts.gate_params)
    decoder: LSTMGateParams = attrs.field(validator=parts.gate_params)
    attention_weights: LinearParams = attrs.field(validator=parts.linear_params)
    output: LinearParams = attrs.field(validator=parts.linear_params)

    def _check_sizes(self) -> None:
        name = "AttentionLSTMModel"
        i, h = parts.lstm_sizes(self.encoder, "encoder")
        dec_in, dec_h = parts.lstm_sizes(self.decoder, "decoder")
        parts.same(name, "decoder.hidden_size", dec_h, "encoder.hidden_size", h)
        parts.same(name, "decoder.input_size", dec_in, "encoder input_size + hidden_size", i + h)
        att_in, att_out = parts.linear_sizes(self.attention_weights, "attention_weights")
        parts.same(name, "attention_weights.in_features", att_in, "2 * encoder.hidden_size", 2 * h)
        parts.same(name, "attention_weights.out_features", att_out, "one score", 1)
        self._check_head("encoder.hidden_size", h)

    @property
    def output_size(self) -> int:
        return self.output.out_features

    @classmethod
    def _init_parts(cls, i: int, h: int, o: int, gen: Generator, dtype: Any) -> tuple[Any, ...]:
        encoder, decoder = parts.init_lstm(i, h, gen, dtype), parts.init_lstm(i + h, h, gen, dtype)
        scores = LinearParams.init(2 * h, 1, gen, dtype)
        return encoder, decoder, scores, LinearParams.init(h, o, gen, dtype)

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {
            "encoder": LSTMSlot("attention.encoder.", "_l0"),
            "decoder": LSTMSlot("attention.decoder.", ""),
            "attention_weights": LinearSlot("attention.attention_weights."),
            "output": LinearSlot("attention.output."),
        }

    def _build(self) -> SpecChain:
        return zoo.attention_seq2seq(self.input_size, self.hidden_size, self.output_size)
