"""The records over a vocabulary, ``LSTMGenerator`` and ``LSTMLanguageModel``: a linear
``embedding`` ``V`` -> ``H``, LSTM layers ``H`` -> ``H`` and an ``output_projection``
``H`` -> ``V``; and the two meanings of TorchLean's inference dropout (``DropoutInference``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs
import numpy as np

from specchain.chain import Part, SpecChain, serial
from specchain.models.torchlean import parts
from specchain.models.torchlean.chains import embed, stateful
from specchain.models.torchlean.layout import Layout, LinearSlot, LSTMSlot, lstm_stack
from specchain.models.torchlean.parts import LinearParams
from specchain.models.torchlean.record import Model
from specchain.modules.dropout import Dropout, ScaledDropout
from specchain.modules.gatewise import LSTMGateParams
from specchain.modules.linear import Linear
from specchain.modules.recurrent import LSTM
from specchain.params import RngLike, init_generator
from specchain.types import SpecError

DropoutInference = Literal["seed", "identity"]
"""What ``LSTMLanguageModel``'s dropout computes at inference, after the two revisions of
TorchLean's ``dropoutInferenceSpec`` (``NN/Spec/Layers/Dropout.lean``), which ``lstmLmForward``
applies between the LSTM stack and the projection:

- ``"seed"`` (the default): ``y = (1 - p) * x``, the revision this port was made from. Its
  ``lstmLmForward`` "applies deterministic dropout scaling (``dropout_inference_spec``)", and its
  ``Dropout.lean`` reads: 'Deterministic "dropout-like" scaling: ``y = keep * x`` with
  ``keep = 1 - p``. This is *not* PyTorch's ``eval()`` behavior for ``nn.Dropout``'. Chains use
  ``ScaledDropout(p)``.
- ``"identity"``: ``y = x``, TorchLean's later revision ("Evaluation-mode dropout. The
  probability is retained in the signature because it belongs to the layer configuration, but
  evaluation itself is the identity"), which is PyTorch's ``nn.Dropout`` in ``eval()`` mode.
  Chains use ``Dropout(p)``, which is the identity at inference and draws masks in training.
"""


def check_dropout_inference(value: object) -> DropoutInference:
    """``value`` if it names one of the two revisions, else a ``ValueError`` naming both."""
    if value == "seed" or value == "identity":
        return value
    raise ValueError(
        f"dropout_inference must be 'seed' (y = (1 - p) * x, TorchLean's first revision) or "
        f"'identity' (y = x, its later evaluation-mode dropout), got {value!r}"
    )


@attrs.frozen(eq=False)
class _VocabModel(Model):
    """``embedding`` (``V`` -> ``H``), ``_num_lstm_layers`` LSTM layers ``H`` -> ``H`` and a head
    back to ``V``, per timestep. Chains read ``[T, B, V]`` vectors, as in TorchLean, or integer
    tokens ``[T, B]`` (one-hot encoded)."""

    embedding: LinearParams = attrs.field(validator=parts.linear_params)

    @property
    def vocab_size(self) -> int:
        return self.embedding.in_features

    @property
    def hidden_size(self) -> int:
        return self.embedding.out_features

    def _chain(self, head: Callable[[], Part], tokens: bool) -> SpecChain:
        """``[T, B, V]`` vectors (or ``int [T, B]`` tokens) -> ``head()`` after the LSTM, loaded
        (``head`` builds the part inside, so it draws no weights from the library generator)."""
        v, h, n = self.vocab_size, self.hidden_size, self._num_lstm_layers
        return self._loaded(lambda: serial(embed(v, h, tokens), LSTM(h, h, num_layers=n), head()))

    def _chain_with_final_state(
        self, head: Callable[[], Part], tokens: bool, key: Any
    ) -> SpecChain:
        """``_chain`` carrying the LSTM state through, cached under ``key``."""
        v, h, n = self.vocab_size, self.hidden_size, self._num_lstm_layers

        def build() -> SpecChain:
            lstm = LSTM(h, h, num_layers=n, return_state=True)
            return stateful(lstm, head(), embed(v, h, tokens))

        return self._cached(key, build)

    def _projection(self) -> Linear:
        return Linear(self.hidden_size, self.vocab_size, name="projection")


@attrs.frozen(eq=False)
class LSTMGenerator(_VocabModel):
    """TorchLean's ``LSTMGenerator``, many-to-many over a vocabulary: a linear ``embedding``
    (``V`` -> ``H``), an ``lstm`` ``H`` -> ``H`` and an ``output_projection`` ``H`` -> ``V`` per
    timestep.

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
        gen = init_generator(rng)
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

    def to_chain(self, tokens: bool = False) -> SpecChain:
        """``[T, B, V]`` vectors (or ``int [T, B]`` tokens) -> logits ``[T, B, V]`` (a new
        chain)."""
        return self._chain(self._projection, tokens)

    def chain_with_final_state(self, tokens: bool = False) -> SpecChain:
        """``(inputs, (h0, c0) each [1, B, H])`` -> ``(logits [T, B, V], (h_T, c_T))``, built
        once per record and ``tokens``, and reloaded with the record's arrays at every call."""
        return self._chain_with_final_state(self._projection, tokens, tokens)


@attrs.frozen(eq=False)
class LSTMLanguageModel(_VocabModel):
    """TorchLean's ``LSTMLanguageModel``: a linear ``embedding`` (``V`` -> ``H``), stacked
    ``lstm_layers`` ``H`` -> ``H``, dropout with ``dropout_rate`` and an ``output_projection``
    ``H`` -> ``V``.

    The dropout at inference is TorchLean's ``dropoutInferenceSpec`` in either of its revisions
    (``DropoutInference``): ``y = (1 - dropout_rate) * x`` by default (``"seed"``), or the
    identity (``"identity"``, PyTorch's ``eval()``).

    Chain (``to_chain(tokens=False)``): ``embedding`` (after ``OneHot`` for tokens), ``lstm`` (one
    ``nn.LSTM(num_layers=L)``), ``scaled_dropout`` (``dropout`` for ``"identity"``),
    ``projection``.
    """

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

    @property
    def _num_lstm_layers(self) -> int:
        return self.num_layers

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
        gen = init_generator(rng)
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
        kinds = (ScaledDropout, Dropout)
        rates = [spec.p for spec in map(chain.spec, chain.nodes) if isinstance(spec, kinds)]
        if len(rates) > 1:
            raise SpecError(
                f"{cls.__name__}.from_chain: the chain has {len(rates)} dropout layers, "
                "expected at most one"
            )
        return {"dropout_rate": rates[0] if rates else 0.0}

    def to_chain(
        self, tokens: bool = False, dropout_inference: DropoutInference = "seed"
    ) -> SpecChain:
        """``[T, B, V]`` vectors (or ``int [T, B]`` tokens) -> logits ``[T, B, V]`` (a new
        chain), with the dropout of ``dropout_inference``."""
        mode = check_dropout_inference(dropout_inference)
        return self._chain(lambda: self._head(mode), tokens)

    def chain_with_final_state(
        self, tokens: bool = False, dropout_inference: DropoutInference = "seed"
    ) -> SpecChain:
        """``(inputs, (h0, c0) each [L, B, H])`` -> ``(logits [T, B, V], (h_n, c_n))``, built
        once per record, ``tokens`` and ``dropout_inference``, and reloaded with the record's
        arrays at every call."""
        mode = check_dropout_inference(dropout_inference)
        return self._chain_with_final_state(lambda: self._head(mode), tokens, (tokens, mode))

    def _head(self, mode: DropoutInference) -> Part:
        p = self.dropout_rate
        dropout = ScaledDropout(p) if mode == "seed" else Dropout(p)
        return dropout >> self._projection()
