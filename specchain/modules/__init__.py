"""The layers: one file per family."""

from specchain.modules.activation import Identity, ReLU, Sigmoid, Tanh
from specchain.modules.attention import AttentionLSTM
from specchain.modules.dropout import Dropout, ScaledDropout
from specchain.modules.embedding import Embedding, OneHot
from specchain.modules.gatewise import LinearGrads, LSTMGateParams, LSTMGrads
from specchain.modules.gru import GRU, GRUCell
from specchain.modules.linear import Linear
from specchain.modules.lstm_variants import LSTMVariant
from specchain.modules.normalization import LayerNorm
from specchain.modules.recurrent import LSTM, LSTMCell
from specchain.modules.rnn import RNN, RNNCell
from specchain.modules.sequence import Add, Concat, LastStep, Reverse, Select, TimeDistributed
from specchain.pack import Pack

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Add",
    "AttentionLSTM",
    "Concat",
    "Dropout",
    "Embedding",
    "GRUCell",
    "Identity",
    "LSTMCell",
    "LSTMGateParams",
    "LSTMGrads",
    "LSTMVariant",
    "LastStep",
    "LayerNorm",
    "Linear",
    "LinearGrads",
    "OneHot",
    "Pack",
    "RNNCell",
    "ReLU",
    "Reverse",
    "ScaledDropout",
    "Select",
    "Sigmoid",
    "Tanh",
    "TimeDistributed",
]
