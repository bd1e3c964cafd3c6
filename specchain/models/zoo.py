"""The model zoo: the TorchLean LSTM models as ``SpecChain`` builders with symbolic ``T`` and ``B``.

Node names are chosen to read well as attributes of the exported PyTorch module, and every builder
takes them as keyword arguments so an export's ``state_dict`` keys can match a hand-written
model's: ``recurrent_name`` (default: the cell, ``"lstm"``), ``head_name`` (default ``"head"``;
``"projection"`` for the language model) and ``embedding_name`` (``seq2seq(8, 32, 4,
head_name="fc")`` exports ``self.lstm`` and ``self.fc``). The two-layer model's layers are
``{recurrent_name}1`` and ``{recurrent_name}2``, exported as one ``nn.LSTM(num_layers=2)`` named
``recurrent_name``. Every model takes
a padded batch as ``(x, lengths)`` where a sequence goes in; ``lengths=True`` also declares it
(an ``Input(..., lengths=True)`` first): the diagram shows the lengths input and the exported
``forward`` takes them (``forward(self, x, x_lengths)``) and packs the sequence for ``nn.LSTM``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from specchain.chain import Part, SpecChain, parallel, serial
from specchain.inputs import Input
from specchain.modules.attention import AttentionLSTM
from specchain.modules.dropout import Dropout
from specchain.modules.embedding import Embedding, OneHot
from specchain.modules.gru import GRU
from specchain.modules.linear import Linear
from specchain.modules.recurrent import LSTM
from specchain.modules.rnn import RNN
from specchain.modules.sequence import LastStep
from specchain.spec import NNModuleSpec
from specchain.types import SpecError, TensorType

CELLS: dict[str, Callable[..., NNModuleSpec]] = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def recurrent(cell: str, input_size: int, hidden_size: int, **options: Any) -> NNModuleSpec:
    """The recurrent layer ``cell`` names (``"lstm"``, ...), with ``nn.LSTM``-style options."""
    if cell not in CELLS:
        raise SpecError(f"cell must be one of {', '.join(repr(c) for c in CELLS)}, got {cell!r}")
    return CELLS[cell](input_size, hidden_size, **options)


def sequence_input(features: int | None, lengths: bool, name: str = "x") -> list[Part]:
    """``[Input([T, B, features], lengths=True)]`` (``int[T, B]`` tokens for ``None``) when the
    model declares lengths; nothing otherwise."""
    if not lengths:
        return []
    t = TensorType(("T", "B"), "int") if features is None else TensorType(("T", "B", features))
    return [Input(t, name=name, lengths=True)]


def seq2seq(
    input_size: int,
    hidden_size: int,
    output_size: int,
    lengths: bool = False,
    cell: str = "lstm",
    *,
    recurrent_name: str | None = None,
    head_name: str = "head",
) -> SpecChain:
    """A recurrent layer with a per-timestep head: ``[T, B, I]`` -> ``[T, B, O]``."""
    return serial(
        *sequence_input(input_size, lengths),
        recurrent(cell, input_size, hidden_size, name=recurrent_name),
        Linear(hidden_size, output_size, name=head_name),
    )


def classifier(
    input_size: int,
    hidden_size: int,
    num_classes: int,
    lengths: bool = False,
    cell: str = "lstm",
    *,
    recurrent_name: str | None = None,
    head_name: str = "head",
) -> SpecChain:
    """Many-to-one: the last hidden state to class logits, ``[T, B, I]`` -> ``[B, C]``."""
    return serial(
        *sequence_input(input_size, lengths),
        recurrent(cell, input_size, hidden_size, name=recurrent_name),
        LastStep(),
        Linear(hidden_size, num_classes, name=head_name),
    )


def two_layer(
    input_size: int,
    hidden_size: int,
    output_size: int,
    lengths: bool = False,
    cell: str = "lstm",
    *,
    recurrent_name: str | None = None,
    head_name: str = "head",
) -> SpecChain:
    """Two recurrent layers as two specs (TorchLean's two-layer model, nodes ``lstm1`` and
    ``lstm2``) and a per-timestep head; exported as one ``nn.LSTM(num_layers=2)``."""
    name = cell if recurrent_name is None else recurrent_name
    return serial(
        *sequence_input(input_size, lengths),
        recurrent(cell, input_size, hidden_size, name=f"{name}1"),
        recurrent(cell, hidden_size, hidden_size, name=f"{name}2"),
        Linear(hidden_size, output_size, name=head_name),
    )


def stacked(
    input_size: int,
    hidden_size: int,
    output_size: int,
    num_layers: int = 3,
    dropout: float = 0.0,
    lengths: bool = False,
    cell: str = "lstm",
    *,
    recurrent_name: str | None = None,
    head_name: str = "head",
) -> SpecChain:
    """An N-layer recurrent layer (one ``nn.LSTM(num_layers=N)``) and a per-timestep head."""
    layer = recurrent(
        cell, input_size, hidden_size, num_layers=num_layers, dropout=dropout, name=recurrent_name
    )
    head = Linear(hidden_size, output_size, name=head_name)
    return serial(*sequence_input(input_size, lengths), layer, head)


def language_model(
    vocab_size: int,
    hidden_size: int,
    num_layers: int = 1,
    dropout: float = 0.0,
    one_hot: bool = False,
    lengths: bool = False,
    cell: str = "lstm",
    *,
    embedding_name: str = "embedding",
    recurrent_name: str | None = None,
    head_name: str = "projection",
) -> SpecChain:
    """Embedding -> recurrent stack -> Dropout -> projection to the vocabulary (PyTorch
    semantics).

    Tokens ``int[T, B]`` -> logits ``[T, B, V]``. ``one_hot=True`` embeds with TorchLean's
    linear layer on one-hot vectors (``OneHot`` + ``Linear(V, H, bias=False)``).
    """
    embed: Any = (
        OneHot(vocab_size) >> Linear(vocab_size, hidden_size, bias=False, name=embedding_name)
        if one_hot
        else Embedding(vocab_size, hidden_size, name=embedding_name)
    )
    layers = dict(num_layers=num_layers, dropout=dropout, name=recurrent_name)
    return serial(
        *sequence_input(None, lengths, name="tokens"),
        embed,
        recurrent(cell, hidden_size, hidden_size, **layers),
        Dropout(dropout),
        Linear(hidden_size, vocab_size, name=head_name),
    )


def bilstm(
    input_size: int,
    hidden_size: int,
    output_size: int,
    lengths: bool = False,
    cell: str = "lstm",
    *,
    recurrent_name: str | None = None,
    head_name: str = "head",
) -> SpecChain:
    """A bidirectional recurrent layer and a per-timestep head on both directions:
    ``[T, B, 2H]`` -> O."""
    layer = recurrent(cell, input_size, hidden_size, bidirectional=True, name=recurrent_name)
    head = Linear(2 * hidden_size, output_size, name=head_name)
    return serial(*sequence_input(input_size, lengths), layer, head)


def attention_seq2seq(
    input_size: int,
    hidden_size: int,
    output_size: int,
    lengths: bool = False,
    score: str = "concat",
) -> SpecChain:
    """TorchLean's attention encoder/decoder: ``(source, decoder_inputs)`` -> ``[T, B, O]``.
    ``score`` is ``"concat"`` (default), ``"dot"``, ``"general"`` or ``"additive"`` (see
    ``AttentionLSTM``)."""
    attention = AttentionLSTM(input_size, hidden_size, output_size, score=score, name="attention")
    if not lengths:
        return attention.as_chain()
    source = Input(TensorType(("S", "B", input_size)), name="source", lengths=True)
    targets = Input(TensorType(("T", "B", input_size)), name="decoder_inputs", lengths=True)
    return parallel(source, targets) >> attention


# --- the built-in models, with example inputs, for the demo, the CLI and the tests -----------


@attrs.frozen
class ZooEntry:
    """A zoo model with default sizes and a maker of example inputs."""

    name: str
    build: Callable[..., SpecChain]  # build(lengths=False): lengths=True declares them
    example: Callable[[np.random.Generator, int, int, Any], Any]

    def example_input(
        self,
        rng: np.random.Generator,
        steps: int = 5,
        batch: int = 3,
        dtype: Any = np.float32,
        lengths: bool = False,
    ) -> Any:
        """An example input; with ``lengths=True`` every sequence comes as ``(x, lengths)`` with
        lengths drawn in ``1..T`` (the first example is full, the batch unsorted), as a padded
        text batch is."""
        x = self.example(rng, steps, batch, np.dtype(dtype))
        if not lengths:
            return x
        if isinstance(x, tuple):
            return tuple((item, example_lengths(rng, item.shape[0], batch)) for item in x)
        return x, example_lengths(rng, steps, batch)


def example_lengths(rng: np.random.Generator, steps: int, batch: int) -> np.ndarray:
    """``batch`` lengths in ``1..steps``, the first equal to ``steps``, in random order."""
    lengths = rng.integers(1, steps + 1, size=batch)
    if batch:
        lengths[0] = steps
    return lengths


def _floats(size: int) -> Callable[[np.random.Generator, int, int, Any], Any]:
    def make(rng: np.random.Generator, steps: int, batch: int, dtype: Any) -> Any:
        return rng.standard_normal((steps, batch, size)).astype(dtype)

    return make


def _tokens(vocab: int) -> Callable[[np.random.Generator, int, int, Any], Any]:
    def make(rng: np.random.Generator, steps: int, batch: int, dtype: Any) -> Any:
        return rng.integers(0, vocab, size=(steps, batch))

    return make


def _source_and_target(size: int) -> Callable[[np.random.Generator, int, int, Any], Any]:
    def make(rng: np.random.Generator, steps: int, batch: int, dtype: Any) -> Any:
        source = rng.standard_normal((steps + 1, batch, size)).astype(dtype)
        return source, rng.standard_normal((steps, batch, size)).astype(dtype)

    return make


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        ZooEntry("seq2seq", lambda lengths=False: seq2seq(8, 32, 4, lengths=lengths), _floats(8)),
        ZooEntry(
            "classifier", lambda lengths=False: classifier(8, 32, 3, lengths=lengths), _floats(8)
        ),
        ZooEntry(
            "two_layer", lambda lengths=False: two_layer(8, 32, 4, lengths=lengths), _floats(8)
        ),
        ZooEntry(
            "stacked",
            lambda lengths=False: stacked(8, 32, 4, num_layers=3, dropout=0.1, lengths=lengths),
            _floats(8),
        ),
        ZooEntry(
            "language_model",
            lambda lengths=False: language_model(
                50, 64, num_layers=2, dropout=0.2, lengths=lengths
            ),
            _tokens(50),
        ),
        ZooEntry("bilstm", lambda lengths=False: bilstm(8, 16, 4, lengths=lengths), _floats(8)),
        ZooEntry(
            "attention_seq2seq",
            lambda lengths=False: attention_seq2seq(8, 16, 4, lengths=lengths),
            _source_and_target(8),
        ),
    )
}
