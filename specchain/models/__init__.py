"""The model zoo: builders returning ``SpecChain``s with symbolic ``T`` and ``B``."""

from __future__ import annotations

from collections.abc import Callable

from specchain.chain import SpecChain, branch
from specchain.modules import Concat, Linear, Reverse, Tanh, TimeDistributed


def mlp_head(input_size: int = 8, hidden_size: int = 16, output_size: int = 4) -> SpecChain:
    """A per-timestep two-layer head: ``[T, B, I]`` -> ``[T, B, O]``."""
    return (
        TimeDistributed(Linear(input_size, hidden_size))
        >> Tanh()
        >> Linear(hidden_size, output_size)
    )


def two_way(input_size: int = 8, hidden_size: int = 16, output_size: int = 4) -> SpecChain:
    """Forward and time-reversed projections, concatenated: the shape of a bidirectional layer."""
    backward = Reverse() >> Linear(input_size, hidden_size) >> Reverse()
    return (
        branch(Linear(input_size, hidden_size), backward)
        >> Concat()
        >> Linear(2 * hidden_size, output_size)
    )


def builtin_models() -> dict[str, Callable[[], SpecChain]]:
    return {"mlp_head": mlp_head, "two_way": two_way}
