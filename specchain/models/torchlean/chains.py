"""The chains the records build: loading them without touching the library generator, typing
them to take an LSTM state, and carrying that state through (inputs ``x`` and ``state``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from specchain.chain import Part, SpecChain, parallel, serial
from specchain.inputs import Input
from specchain.modules.activation import Identity
from specchain.modules.embedding import OneHot
from specchain.modules.linear import Linear
from specchain.modules.recurrent import LSTM
from specchain.params import init_generator
from specchain.types import TensorType, TupleType, Type


@contextmanager
def library_generator_untouched() -> Iterator[None]:
    """Specs draw initial weights from the library-wide generator; the chains built here
    overwrite them at once, so put the generator back where the user left it."""
    generator = init_generator(None)
    saved = generator.bit_generator.state
    try:
        yield
    finally:
        generator.bit_generator.state = saved


def build_loaded(
    build: Callable[[], SpecChain], dtype: np.dtype[Any], state: dict[str, np.ndarray]
) -> SpecChain:
    """``build()`` (without touching the library generator), cast to ``dtype`` and loaded with
    ``state``."""
    with library_generator_untouched():
        chain = build()
    chain.to(dtype)
    chain.load_state_dict(state)
    return chain


def embed(vocab_size: int, hidden_size: int, tokens: bool) -> Part:
    """TorchLean's embedding: a linear layer on ``[T, B, V]`` vectors (one-hot for tokens)."""
    linear = Linear(vocab_size, hidden_size, name="embedding")
    return OneHot(vocab_size) >> linear if tokens else linear


def state_typed(chain: SpecChain, x_type: Type, count: int, hidden: int) -> SpecChain:
    """``chain`` (its graph) typed to take ``(x, (h0 [count, B, H], c0 [count, B, H]))``, so calls
    with a state check their input by unification instead of re-inferring the whole graph."""
    state = TensorType((count, "B", hidden))
    return SpecChain(chain.graph, TupleType((x_type, TupleType((state, state)))))


def stateful(lstm: LSTM, head: Part, embed: Part | None = None) -> SpecChain:
    """``[embed >>] lstm >> head`` carrying the LSTM's state through:
    ``(x, (h0, c0))`` -> ``(head(y), (h_n, c_n))`` (``lstm`` has ``return_state=True``), with
    ``h0`` and ``c0`` each ``[count, B, H]``. Its inputs are ``Input``s named ``x`` and
    ``state``."""
    state = TensorType((lstm.num_layers * lstm.directions, "B", lstm.hidden_size))
    initial = Input(TupleType((state, state), ("h0", "c0")), name="state")
    x = Input(lstm.in_type if embed is None else SpecChain.of(embed).in_type, name="x")
    carried = parallel(x if embed is None else x >> embed, initial)
    return serial(carried, lstm, parallel(head, Identity(name="final_state")))


def stateful_per_step(
    input_size: int, hidden_size: int, output_size: int, num_layers: int
) -> SpecChain:
    """An ``L``-layer LSTM and a per-timestep ``head``, carrying the state through:
    ``([T, B, I], (h0, c0) each [L, B, H])`` -> ``([T, B, O], (h_n, c_n))``."""
    lstm = LSTM(input_size, hidden_size, num_layers=num_layers, return_state=True)
    return stateful(lstm, Linear(hidden_size, output_size, name="head"))
