"""The model zoo (``specchain.models.zoo``) and TorchLean's model API."""

from specchain.models import torchlean
from specchain.models.torchlean import (
    AttentionLSTMModel,
    BiLSTMModel,
    LinearParams,
    LSTMClassifier,
    LSTMGenerator,
    LSTMLanguageModel,
    MultiLayerLSTMModel,
    SimpleLSTMModel,
)
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
    "AttentionLSTMModel",
    "BiLSTMModel",
    "LSTMClassifier",
    "LSTMGenerator",
    "LSTMLanguageModel",
    "LinearParams",
    "MultiLayerLSTMModel",
    "SimpleLSTMModel",
    "ZooEntry",
    "attention_seq2seq",
    "bilstm",
    "classifier",
    "language_model",
    "seq2seq",
    "stacked",
    "torchlean",
    "two_layer",
]
