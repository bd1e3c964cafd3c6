"""The model zoo (``specchain.models.zoo``) and TorchLean's model API."""

from specchain.models.zoo import (
    ZOO,
    ZooEntry,
    attention_seq2seq,
    bilstm,
    classifier,
    language_model,
    seq2seq,
    stacked,
    two_layer,
)

__all__ = [
    "ZOO",
    "ZooEntry",
    "attention_seq2seq",
    "bilstm",
    "classifier",
    "language_model",
    "seq2seq",
    "stacked",
    "two_layer",
]
