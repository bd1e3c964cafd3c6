"""The records over float sequences ``[T, B, I]`` with a linear head: ``SimpleLSTMModel``,
``LSTMClassifier``, ``MultiLayerLSTMModel`` and ``BiLSTMModel``.

Field names are those of ``LstmModels.lean`` (``output_layer``, ``first_layer`` /
``hidden_layers``); the names this package used before (``output``, ``layers``) stay as
read-only aliases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import numpy as np
from numpy.random import Generator

from specchain.chain import SpecChain
from specchain.models import zoo
from specchain.models.torchlean import parts
from specchain.models.torchlean.chains import stateful_per_step
from specchain.models.torchlean.layout import Layout, LinearSlot, LSTMSlot, lstm_stack
from specchain.models.torchlean.parts import LinearParams
from specchain.models.torchlean.record import OutputModel, SizedModel, StateModel
from specchain.modules.gatewise import LSTMGateParams
from specchain.params import RngLike, init_generator
from specchain.types import SpecError


@attrs.frozen(eq=False)
class _LSTMWithHead(StateModel, SizedModel):
    """One LSTM layer ``lstm`` and a linear head (the field ``_head_field``) reading its hidden
    state, at ``lstm.`` and ``head.`` of the chain."""

    lstm: LSTMGateParams = attrs.field(validator=parts.gate_params)

    def _check_sizes(self) -> None:
        _, hidden = parts.lstm_sizes(self.lstm, "lstm")
        self._check_head("lstm.hidden_size", hidden)

    @classmethod
    def _init_parts(cls, i: int, h: int, o: int, gen: Generator, dtype: Any) -> tuple[Any, ...]:
        return parts.init_lstm(i, h, gen, dtype), LinearParams.init(h, o, gen, dtype)

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {"lstm": LSTMSlot("lstm.", "_l0"), cls._head_field: LinearSlot("head.")}


@attrs.frozen(eq=False)
class SimpleLSTMModel(_LSTMWithHead, OutputModel):
    """TorchLean's ``SimpleLSTMModel``: one LSTM layer ``lstm`` (``[T, B, I]`` -> ``[T, B, H]``)
    and a per-timestep ``output_layer`` (``H`` -> ``O``). Chain: ``zoo.seq2seq`` (nodes
    ``lstm``, ``head``)."""

    output_layer: LinearParams = attrs.field(validator=parts.linear_params)

    def _build(self) -> SpecChain:
        return zoo.seq2seq(self.input_size, self.hidden_size, self.output_size)

    def chain_with_final_state(self) -> SpecChain:
        """``(x [T, B, I], (h0, c0) each [1, B, H])`` -> ``(outputs [T, B, O], (h_T, c_T))``,
        cached and reloaded like ``cached_chain()``."""
        i, h, o = self.input_size, self.hidden_size, self.output_size
        return self._cached("stateful", lambda: stateful_per_step(i, h, o, 1))


@attrs.frozen(eq=False)
class LSTMClassifier(_LSTMWithHead):
    """TorchLean's ``LSTMClassifier``: an ``lstm`` over ``[T, B, I]`` and a linear
    ``classifier`` (``H`` -> ``C``) on its final hidden state. Chain: ``zoo.classifier`` (nodes
    ``lstm``, ``last_step``, ``head``)."""

    _head_field: ClassVar[str] = "classifier"
    classifier: LinearParams = attrs.field(validator=parts.linear_params)

    @property
    def num_classes(self) -> int:
        return self.classifier.out_features

    @classmethod
    def init(
        cls,
        input_size: int,
        hidden_size: int,
        num_classes: int,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> LSTMClassifier:
        """PyTorch's default initialisation of every part, from ``rng``."""
        return super().init(input_size, hidden_size, num_classes, rng, dtype)

    def _build(self) -> SpecChain:
        return zoo.classifier(self.input_size, self.hidden_size, self.num_classes)


@attrs.frozen(eq=False)
class MultiLayerLSTMModel(StateModel, OutputModel):
    """TorchLean's ``MultiLayerLSTMModel``: ``first_layer`` (an LSTM ``I`` -> ``H``),
    ``hidden_layers`` (``L - 1`` LSTMs ``H`` -> ``H``, possibly none) and a per-timestep
    ``output_layer`` ``H`` -> ``O``. Chain: ``zoo.stacked(num_layers=L)``, one
    ``nn.LSTM(num_layers=L)`` (nodes ``lstm``, ``head``).

    ``from_layers(layers, output_layer)`` builds one from a list of all ``L`` layers."""

    _first_field: ClassVar[str] = "first_layer"
    first_layer: LSTMGateParams = attrs.field(validator=parts.gate_params)
    hidden_layers: tuple[LSTMGateParams, ...] = attrs.field(
        converter=parts.as_layers, validator=parts.gate_params_list
    )
    output_layer: LinearParams = attrs.field(validator=parts.linear_params)

    def _check_sizes(self) -> None:
        name = "MultiLayerLSTMModel"
        _, hidden = parts.lstm_sizes(self.first_layer, "first_layer")
        first = "first_layer.hidden_size"
        for k, layer in enumerate(self.hidden_layers):
            reads, size = parts.lstm_sizes(layer, f"hidden_layers[{k}]")
            parts.same(name, f"hidden_layers[{k}].input_size", reads, first, hidden)
            parts.same(name, f"hidden_layers[{k}].hidden_size", size, first, hidden)
        self._check_head("the hidden size", hidden)

    @classmethod
    def from_layers(
        cls, layers: Sequence[LSTMGateParams], output_layer: LinearParams
    ) -> MultiLayerLSTMModel:
        """The model of ``layers`` (input to output, at least one) and ``output_layer``."""
        if not layers:
            raise SpecError(
                "MultiLayerLSTMModel.from_layers needs at least one LSTM layer (the first_layer)"
            )
        return cls(layers[0], layers[1:], output_layer)

    @property
    def layers(self) -> tuple[LSTMGateParams, ...]:
        """Every LSTM layer, input to output: ``(first_layer, *hidden_layers)`` (the earlier
        field, now a read-only view)."""
        return (self.first_layer, *self.hidden_layers)

    @property
    def num_layers(self) -> int:
        """L, how many LSTM layers the model stacks (``1 + len(hidden_layers)``)."""
        return 1 + len(self.hidden_layers)

    @property
    def _num_lstm_layers(self) -> int:
        return self.num_layers

    @classmethod
    def init(
        cls,
        input_size: int,
        hidden_size: int,
        output_size: int,
        num_layers: int,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> MultiLayerLSTMModel:
        """PyTorch's default initialisation of every part, from ``rng``."""
        gen = init_generator(rng)
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        layers = [parts.init_lstm(size, hidden_size, gen, dtype) for size in sizes]
        return cls.from_layers(layers, LinearParams.init(hidden_size, output_size, gen, dtype))

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {
            "first_layer": LSTMSlot("lstm.", "_l0"),
            "hidden_layers": lstm_stack("lstm.", layers)[1:],
            "output_layer": LinearSlot("head."),
        }

    def _build(self) -> SpecChain:
        i, h, o = self.input_size, self.hidden_size, self.output_size
        return zoo.stacked(i, h, o, num_layers=self.num_layers)

    def chain_with_final_state(self) -> SpecChain:
        """``(x [T, B, I], (h0, c0) each [L, B, H])`` -> ``(outputs [T, B, O], (h_n, c_n))``,
        cached and reloaded like ``cached_chain()``."""
        i, h, o, n = self.input_size, self.hidden_size, self.output_size, self.num_layers
        return self._cached("stateful", lambda: stateful_per_step(i, h, o, n))


@attrs.frozen(eq=False)
class BiLSTMModel(StateModel, SizedModel, OutputModel):
    """TorchLean's ``BiLSTMModel``: a ``forward_lstm`` over ``[T, B, I]``, a ``backward_lstm``
    over the reversed sequence, and an ``output_layer`` ``2H`` -> ``O`` on their per-timestep
    concatenation (forward first). Chain: ``zoo.bilstm``, one ``nn.LSTM(bidirectional=True)``
    (nodes ``lstm``, ``head``)."""

    _first_field: ClassVar[str] = "forward_lstm"
    forward_lstm: LSTMGateParams = attrs.field(validator=parts.gate_params)
    backward_lstm: LSTMGateParams = attrs.field(validator=parts.gate_params)
    output_layer: LinearParams = attrs.field(validator=parts.linear_params)

    def _check_sizes(self) -> None:
        fwd_in, fwd_h = parts.lstm_sizes(self.forward_lstm, "forward_lstm")
        bwd_in, bwd_h = parts.lstm_sizes(self.backward_lstm, "backward_lstm")
        name = "BiLSTMModel"
        parts.same(name, "backward_lstm.input_size", bwd_in, "forward_lstm.input_size", fwd_in)
        parts.same(name, "backward_lstm.hidden_size", bwd_h, "forward_lstm.hidden_size", fwd_h)
        self._check_head("2 * forward_lstm.hidden_size", 2 * fwd_h)

    @classmethod
    def _init_parts(cls, i: int, h: int, o: int, gen: Generator, dtype: Any) -> tuple[Any, ...]:
        lstms = parts.init_lstm(i, h, gen, dtype), parts.init_lstm(i, h, gen, dtype)
        return (*lstms, LinearParams.init(2 * h, o, gen, dtype))

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {
            "forward_lstm": LSTMSlot("lstm.", "_l0"),
            "backward_lstm": LSTMSlot("lstm.", "_l0_reverse"),
            "output_layer": LinearSlot("head."),
        }

    @property
    def _state_count(self) -> int:
        return 2  # nn.LSTM's h0 [2, B, H]: forward, then backward

    def _build(self) -> SpecChain:
        return zoo.bilstm(self.input_size, self.hidden_size, self.output_size)
