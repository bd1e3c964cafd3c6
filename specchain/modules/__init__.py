"""The layers: one file per family."""

from specchain.modules.activation import Identity, ReLU, Sigmoid, Tanh
from specchain.modules.linear import Linear
from specchain.modules.sequence import Add, Concat, LastStep, Pack, Reverse, Select, TimeDistributed

__all__ = [
    "Add",
    "Concat",
    "Identity",
    "LastStep",
    "Linear",
    "Pack",
    "ReLU",
    "Reverse",
    "Select",
    "Sigmoid",
    "Tanh",
    "TimeDistributed",
]
