"""The records over a vocabulary, ``LSTMGenerator`` and ``LSTMLanguageModel``: a linear
``embedding`` ``V`` -> ``H``, LSTM layers ``H`` -> ``H`` and an ``output_projection``
``H`` -> ``V``."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from specchain.chain import Part, SpecChain, serial
from specchain.models.torchlean import parts
from specchain.models.torchlean.chains import embed, stateful
from specchain.models.torchlean.layout import Layout, LinearSlot, LSTMSlot, lstm_stack
from specchain.models.torchlean.parts import LinearParams
from specchain.models.torchlean.record import Model
from specchain.modules.dropout import ScaledDropout
from specchain.modules.gatewise import LSTMGateParams
from specchain.modules.linear import Linear
from specchain.modules.recurrent import LSTM
from specchain.params import RngLike, as_generator
from specchain.types import SpecError


@attrs.frozen(eq=False)
class _VocabModel(Model):
    """``embedding`` (``V`` -> ``H``), ``_num_lstm_layers`` LSTM layers ``H`` -> ``H`` and the
    head of ``_head()`` back to ``V``, per timestep. Chains read ``[T, B, V]`` vectors, as in
    TorchLean, or integer tokens ``[T, B]`` (one-hot encoded)."""

    embedding: LinearParams = attrs.field(validator=parts.linear_params)

    @property
    def vocab_size(self) -> int:
        return self.embedding.in_features

    @property
    def hidden_size(self) -> int:
        return self.embedding.out_features

    def _head(self) -> Part:
        """What follows the LSTM: ``[T, B, H]`` -> logits ``[T, B, V]``."""
        raise NotImplementedError

    def to_chain(self, tokens: bool = False) -> SpecChain:
        """``[T, B, V]`` vectors (or ``int [T, B]`` tokens) -> logits ``[T, B, V]``."""
        v, h, n = self.vocab_size, self.hidden_size, self._num_lstm_layers
        return self._loaded(
            lambda: serial(embed(v, h, tokens), LSTM(h, h, num_layers=n), self._head())
        )

    def _stateful_chain(self, tokens: bool) -> SpecChain:
        v, h, n = self.vocab_size, self.hidden_size, self._num_lstm_layers
        return self._cached(
            ("stateful", tokens),
            lambda: stateful(
                LSTM(h, h, num_layers=n, return_state=True), self._head(), embed(v, h, tokens)
            ),
        )


@attrs.frozen(eq=False)
class LSTMGenerator(_VocabModel):
    """Many-to-many over a vocabulary: a linear ``embedding`` (``V`` -> ``H``), an LSTM
    ``H`` -> ``H`` and an ``output_projection`` ``H`` -> ``V`` per timestep.

    Chain (``to_chain(tokens=False)``): ``embedding`` (``Linear``, after ``OneHot`` for integer
    tokens), ``lstm``, ``projection``. Inputs are ``[T, B, V]`` vectors, as in TorchLean, or
    integer tokens ``[T, B]`` (one-hot encoded).
    """

    lstm: LSTMGateParams = attrs.field(validator=parts.gate_params)
    output_projection: LinearParams = attrs.field(validator=parts.linear_params)

    def _check_sizes(self) -> None:
        parts.check_vocab_model("LSTMGenerator", self.embedding, self.output_projection)
        reads, hidden = parts.lstm_sizes(self.lstm, "lstm")
        emb = self.embedding.out_features
        parts.same("LSTMGenerator", "lstm.input_size", reads, "embedding.out_features", emb)
        parts.same("LSTMGenerator", "lstm.hidden_size", hidden, "embedding.out_features", emb)

    @classmethod
    def init(
        cls, vocab_size: int, hidden_size: int, rng: RngLike = None, dtype: Any = np.float32
    ) -> LSTMGenerator:
        """PyTorch's default initialisation of every part, from ``rng``."""
        gen = as_generator(rng)
        return cls(
            LinearParams.init(vocab_size, hidden_size, gen, dtype),
            parts.init_lstm(hidden_size, hidden_size, gen, dtype),
            LinearParams.init(hidden_size, vocab_size, gen, dtype),
        )

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {
            "embedding": LinearSlot("embedding."),
            "lstm": LSTMSlot("lstm.", "_l0"),
            "output_projection": LinearSlot("projection."),
        }

    def _head(self) -> Part:
        return Linear(self.hidden_size, self.vocab_size, name="projection")


@attrs.frozen(eq=False)
class LSTMLanguageModel(_VocabModel):
    """A linear ``embedding`` (``V`` -> ``H``), stacked LSTM layers ``H`` -> ``H``, TorchLean's
    deterministic dropout ``y = (1 - dropout_rate) * x`` (``ScaledDropout``) and an
    ``output_projection`` ``H`` -> ``V``.

    Chain (``to_chain(tokens=False)``): ``embedding`` (after ``OneHot`` for tokens), ``lstm`` (one
    ``nn.LSTM(num_layers=L)``), ``scaled_dropout``, ``projection``.
    """

    _stack: ClassVar[str | None] = "lstm_layers"
    lstm_layers: tuple[LSTMGateParams, ...] = attrs.field(
        converter=parts.as_layers, validator=parts.gate_params_list
    )
    output_projection: LinearParams = attrs.field(validator=parts.linear_params)
    dropout_rate: float = attrs.field(default=0.0, converter=float)

    def _check_sizes(self) -> None:
        name = "LSTMLanguageModel"
        if not 0.0 <= self.dropout_rate <= 1.0:
            raise SpecError(f"{name}.dropout_rate must be in [0, 1], got {self.dropout_rate}")
        parts.check_vocab_model(name, self.embedding, self.output_projection)
        emb = self.embedding.out_features
        parts.check_stack(name, "lstm_layers", self.lstm_layers, emb)
        _, hidden = parts.lstm_sizes(self.lstm_layers[0], "lstm_layers[0]")
        parts.same(name, "lstm_layers[0].hidden_size", hidden, "embedding.out_features", emb)

    @property
    def num_layers(self) -> int:
        """L, how many LSTM layers ``lstm_layers`` stacks."""
        return len(self.lstm_layers)

    @classmethod
    def init(
        cls,
        vocab_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout_rate: float = 0.0,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> LSTMLanguageModel:
        """PyTorch's default initialisation of every part, from ``rng``."""
        gen = as_generator(rng)
        embedding = LinearParams.init(vocab_size, hidden_size, gen, dtype)
        layers = [parts.init_lstm(hidden_size, hidden_size, gen, dtype) for _ in range(num_layers)]
        projection = LinearParams.init(hidden_size, vocab_size, gen, dtype)
        return cls(embedding, layers, projection, dropout_rate)

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {
            "embedding": LinearSlot("embedding."),
            "lstm_layers": lstm_stack("lstm.", layers),
            "output_projection": LinearSlot("projection."),
        }

    @classmethod
    def _options_from(cls, chain: SpecChain) -> dict[str, Any]:
        rates = [spec.p for spec in map(chain.spec, chain.nodes) if isinstance(spec, ScaledDropout)]
        if len(rates) > 1:
            raise SpecError(f"{cls.__name__}.from_chain: the chain has {len(rates)} ScaledDropout")
        return {"dropout_rate": rates[0] if rates else 0.0}

    def _head(self) -> Part:
        h, v = self.hidden_size, self.vocab_size
        return ScaledDropout(self.dropout_rate) >> Linear(h, v, name="projection")
