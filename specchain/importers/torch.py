"""Import from PyTorch: ``from_torch(module, example_inputs)`` -> a ``SpecChain`` with the
module's weights.

``torch.fx`` traces ``module.forward`` (``specchain.importers.tracing``); each node goes to the
converter registered for its module class, function or method (``registry``, ``modules``,
``functions``), and the graph is rebuilt with specchain's schema (``building``). Supported:
``nn.LSTM``/``GRU``/``RNN`` (every option) and their cells, ``nn.Linear``, ``nn.Embedding``,
``nn.Dropout``, ``nn.LayerNorm``, activations, ``torch.cat``, ``torch.flip``, the last step
(``x[-1]``, ``x[:, -1]``), ``+``, tuple unpacking of RNN outputs and ``nn.Sequential``. Anything
else raises ``TorchImportError`` naming the node and its op; map it with ``@converter``::

    from specchain.importers.torch import Call, converter

    @converter(Scale)                      # an nn.Module of yours
    def _scale(call: Call) -> NNModuleSpec:
        return MyScale(call.module.factor)  # a spec with Scale's state_dict names
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import fx, nn

from specchain.chain import SpecChain
from specchain.importers import functions, generated, modules  # noqa: F401  (registrations)
from specchain.importers.building import GraphBuilder, placeholders
from specchain.importers.registry import (
    Call,
    Converted,
    TorchImportError,
    converted_class,
    converter,
)
from specchain.importers.tracing import example_values, trace
from specchain.importers.weights import check_untied, load_weights, node_state
from specchain.inputs import _declared_type
from specchain.types import Dim, TensorType, TupleType, Type

__all__ = ["Call", "Converted", "TorchImportError", "converter", "from_torch", "input_type"]


def from_torch(
    module: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    input_types: Any = None,
) -> SpecChain:
    """The ``SpecChain`` equivalent to ``module``, holding copies of its weights.

    Args:
        module: the ``nn.Module`` (its ``forward`` must be traceable by ``torch.fx``).
        example_inputs: one tensor per ``forward`` argument (a tensor alone for one); they run
            once, in eval mode without gradients, to tell tuples from tensors. Arguments after
            them keep their defaults.
        input_types: the chain's input type per argument (a ``TensorType`` or dims such as
            ``("B", "T", 8)``); by default ``input_type(example, batch_first)`` guesses
            ``[T, B, F]`` (``[B, T, F]`` when a recurrent layer has ``batch_first=True``).

    Parameter names are the module's ``state_dict`` keys; the dtype is the module's.
    """
    single = isinstance(example_inputs, torch.Tensor)
    inputs = (example_inputs,) if single else tuple(example_inputs)
    graph_module = trace(module, inputs)
    root = graph_module if converted_class(module) is not None else module  # one layer: renamed
    in_type = _chain_input_type(module, placeholders(graph_module), inputs, input_types)
    builder = GraphBuilder(root, graph_module, example_values(graph_module, inputs), in_type)
    graph = builder.build()
    check_untied(builder.modules)
    state: dict[str, Any] = {}
    for name, sub in builder.modules.items():
        state.update(node_state(name, sub, graph.nodes[name]["spec"]))
    chain = SpecChain(graph, in_type)
    load_weights(chain, root, state)
    return chain


def input_type(example: torch.Tensor, batch_first: bool = False) -> TensorType:
    """A guess at the type of a forward argument: rank 3 ``[T, B, F]`` (``[B, T, F]``), integer
    rank 2 ``int[T, B]`` (``int[B, T]``), float rank 2 ``[B, F]``, rank 1 ``[B]``; other ranks
    keep their sizes."""
    kind = "float" if example.is_floating_point() else "int"
    shape = list(example.shape)
    time_batch: tuple[Dim, ...] = ("B", "T") if batch_first else ("T", "B")
    if example.dim() == 3:
        dims: tuple[Dim, ...] = (*time_batch, shape[2])
    elif example.dim() == 2:
        dims = time_batch if kind == "int" else ("B", shape[1])
    elif example.dim() == 1:
        dims = ("B",)
    else:
        dims = tuple(shape)
    return TensorType(dims, kind)


def _chain_input_type(
    module: nn.Module, arguments: list[fx.Node], inputs: tuple[torch.Tensor, ...], given: Any
) -> Type:
    batch_first = any(getattr(m, "batch_first", False) is True for m in module.modules())
    if given is None:
        types: list[Type] = [input_type(x, batch_first) for x in inputs]
    else:
        given_list = [given] if len(inputs) == 1 else list(given)
        if len(given_list) != len(inputs):
            raise TorchImportError(
                f"input_types has {len(given_list)} item(s) for {len(inputs)} example input(s); "
                "give one type per forward argument"
            )
        types = [_declared_type(t) for t in given_list]
    if len(types) == 1:
        return types[0]
    return TupleType(types, tuple(p.name for p in arguments))
