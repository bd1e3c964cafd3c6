"""Converters of ``torch.nn`` modules: recurrent layers and their cells, ``Linear``,
``Embedding``, ``LayerNorm``, ``Dropout`` and activations. Each builds the spec with the module's
hyper-parameters; the weights are copied afterwards by name (the spec's names are PyTorch's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from specchain.importers.registry import Call, Converted, converter
from specchain.importers.tracing import is_getitem, is_read
from specchain.modules.activation import Identity, ReLU, Sigmoid, Tanh
from specchain.modules.dropout import Dropout
from specchain.modules.embedding import Embedding
from specchain.modules.gru import GRU, GRUCell
from specchain.modules.linear import Linear
from specchain.modules.normalization import LayerNorm
from specchain.modules.recurrent import LSTM, LSTMCell
from specchain.modules.rnn import RNN, RNNCell
from specchain.spec import NNModuleSpec


def first_item_only(call: Call) -> bool:
    """Whether the graph uses only item 0 of the node's tuple output (``out, _ = lstm(x)``,
    ``lstm(x)[0]``); the unused ``_`` of an unpacking does not count."""
    users = [u for u in call.node.users if is_read(u)]
    return bool(users) and all(is_getitem(u) and u.args[1] == 0 for u in users)


def _recurrent(spec_class: Callable[..., NNModuleSpec], call: Call, **extra: Any) -> Converted:
    """``nn.LSTM``/``GRU``/``RNN`` -> the spec with every option; ``return_state`` unless the
    graph reads only ``output`` (then the spec returns ``output`` alone)."""
    m = call.module
    only_output = first_item_only(call)
    spec = spec_class(
        m.input_size,
        m.hidden_size,
        num_layers=m.num_layers,
        bias=m.bias,
        batch_first=m.batch_first,
        dropout=float(m.dropout),
        bidirectional=m.bidirectional,
        return_state=not only_output,
        **extra,
    )
    return Converted(spec, _tensor_args(call), only_item=0 if only_output else None)


def _tensor_args(call: Call) -> Any:
    """The node's positional arguments as the spec's input: one value, or ``(x, state)``
    (``lstm(x, None)`` is ``lstm(x)``)."""
    args = call.args[:1] if call.args[1:] == (None,) else call.args
    return args[0] if len(args) == 1 else tuple(args)


@converter(nn.LSTM)
def _lstm(call: Call) -> Converted:
    return _recurrent(LSTM, call, proj_size=call.module.proj_size)


@converter(nn.GRU)
def _gru(call: Call) -> Converted:
    return _recurrent(GRU, call)


@converter(nn.RNN)
def _rnn(call: Call) -> Converted:
    return _recurrent(RNN, call, nonlinearity=call.module.nonlinearity)


@converter(nn.LSTMCell)
def _lstm_cell(call: Call) -> NNModuleSpec:
    m = call.module
    return LSTMCell(m.input_size, m.hidden_size, bias=m.bias)


@converter(nn.GRUCell)
def _gru_cell(call: Call) -> NNModuleSpec:
    m = call.module
    return GRUCell(m.input_size, m.hidden_size, bias=m.bias)


@converter(nn.RNNCell)
def _rnn_cell(call: Call) -> NNModuleSpec:
    m = call.module
    return RNNCell(m.input_size, m.hidden_size, bias=m.bias, nonlinearity=m.nonlinearity)


@converter(nn.Linear)
def _linear(call: Call) -> NNModuleSpec:
    m = call.module
    return Linear(m.in_features, m.out_features, bias=m.bias is not None)


@converter(nn.Embedding)
def _embedding(call: Call) -> NNModuleSpec:
    m = call.module
    if m.max_norm is not None:
        raise call.fail(
            f"max_norm={m.max_norm} renormalises the weights during forward, which the Embedding "
            "spec does not",
            "build the nn.Embedding without max_norm (or register your own converter)",
        )
    return Embedding(m.num_embeddings, m.embedding_dim, padding_idx=m.padding_idx)


@converter(nn.LayerNorm)
def _layer_norm(call: Call) -> NNModuleSpec:
    m = call.module
    if len(m.normalized_shape) != 1:
        raise call.fail(
            f"normalized_shape={tuple(m.normalized_shape)} normalises over several axes; the "
            "LayerNorm spec normalises the last axis only",
            "normalise one axis (nn.LayerNorm(features))",
        )
    return LayerNorm(
        m.normalized_shape[0],
        eps=m.eps,
        elementwise_affine=m.elementwise_affine,
        bias=m.bias is not None,
    )


@converter(nn.Dropout)
def _dropout(call: Call) -> NNModuleSpec:
    return Dropout(float(call.module.p))


@converter(nn.ReLU)
def _relu(call: Call) -> NNModuleSpec:
    return ReLU()


@converter(nn.Tanh)
def _tanh(call: Call) -> NNModuleSpec:
    return Tanh()


@converter(nn.Sigmoid)
def _sigmoid(call: Call) -> NNModuleSpec:
    return Sigmoid()


@converter(nn.Identity)
def _identity(call: Call) -> NNModuleSpec:
    return Identity()
