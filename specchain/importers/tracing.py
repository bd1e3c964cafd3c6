"""Tracing: a PyTorch module -> a ``torch.fx`` graph whose leaves have converters, and the value
every node held when the example inputs ran.

``torch.fx`` records ``nn.LSTM`` and every module with a converter as one ``call_module`` node
(``Tracer.is_leaf_module``), traces into everything else (``nn.Sequential``, the user's own
modules), and turns tuple unpacking (``out, (h, c) = self.lstm(x)``) into ``getitem`` nodes.
Forward arguments past the example inputs keep their defaults (``lengths=None``).
"""

from __future__ import annotations

import inspect
import operator
from typing import Any

import torch
from torch import fx, nn

from specchain.importers.registry import TorchImportError, converted_class, module_converter
from specchain.spec import snake_case


class LeafTracer(fx.Tracer):
    """fx's tracer, with every module that has a converter kept whole."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if module_converter(m) is not None:
            return True
        return bool(super().is_leaf_module(m, module_qualified_name))


def trace(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> fx.GraphModule:
    """The fx graph of ``module.forward`` called with ``len(inputs)`` arguments. A module that
    has a converter itself (a bare ``nn.LSTM``, an exported composite model) is one node, named
    after the class the converter is for (``lstm``, ``attention_lstm``): ``as_one_layer``."""
    concrete = _defaults_past(module, len(inputs))
    if converted_class(module) is not None:
        return as_one_layer(module, len(inputs))
    try:
        graph = LeafTracer().trace(module, concrete_args=concrete or None)
    except TorchImportError:
        raise
    except Exception as err:  # fx's own errors: data-dependent control flow, iteration, ...
        raise TorchImportError(
            f"torch.fx cannot trace {type(module).__name__}.forward: {type(err).__name__}: {err}; "
            "keep Python control flow on tensors out of forward (or inside a module with a "
            "registered converter, which is not traced into)"
        ) from err
    _drop_specialized(graph, len(inputs))
    return fx.GraphModule(module, graph)


def as_one_layer(module: nn.Module, count: int) -> fx.GraphModule:
    """A graph whose only node calls ``module`` with the first ``count`` arguments of its
    ``forward``; the graph module holds ``module`` under the node's name, so the parameter names
    gain that prefix (``lstm.weight_ih_l0``)."""
    cls = converted_class(module)
    assert cls is not None
    name = snake_case(cls.__name__)
    root = nn.Module()
    root.add_module(name, module)
    graph = fx.Graph()
    names = list(inspect.signature(module.forward).parameters)[:count]
    arguments = [graph.placeholder(argument) for argument in names]
    graph.output(graph.call_module(name, tuple(arguments)))
    return fx.GraphModule(root, graph)


def _drop_specialized(graph: fx.Graph, count: int) -> None:
    """Remove the placeholders of the arguments past ``count`` (fx specialised them to their
    defaults) and the checks fx computes from them alone (``_assert_is_none``)."""
    arguments = [n for n in graph.nodes if n.op == "placeholder"]
    fixed = set(arguments[count:])
    for node in graph.nodes:
        inputs = node.all_input_nodes
        if node.op != "output" and inputs and all(i in fixed for i in inputs):
            fixed.add(node)
    for node in reversed(list(graph.nodes)):
        if node in fixed and not node.users:
            graph.erase_node(node)


def _defaults_past(module: nn.Module, count: int) -> dict[str, Any]:
    """The defaults of ``forward``'s parameters after the first ``count``; an error when one of
    them has no default."""
    parameters = list(inspect.signature(module.forward).parameters.values())
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if count > len(positional):
        raise TorchImportError(
            f"{type(module).__name__}.forward takes {len(positional)} argument(s) "
            f"({', '.join(p.name for p in positional)}), got {count} example input(s); pass one "
            "example tensor per argument"
        )
    missing = [p.name for p in positional[count:] if p.default is inspect.Parameter.empty]
    if missing:
        raise TorchImportError(
            f"{type(module).__name__}.forward needs {', '.join(missing)} too: pass an example "
            f"for every argument without a default ({len(positional)} in all)"
        )
    return {p.name: p.default for p in positional[count:]}


def is_getitem(node: fx.Node) -> bool:
    """Whether ``node`` is ``value[index]`` (an item of a tuple, or tensor indexing)."""
    return bool(node.op == "call_function" and node.target is operator.getitem)


def is_read(node: fx.Node) -> bool:
    """Whether anything reads ``node``'s value: ``_`` and ``(_h, _c)`` of an unpacking
    (``getitem`` nodes nobody uses) do not."""
    return any(not is_getitem(user) or is_read(user) for user in node.users)


class Recorder(fx.Interpreter):
    """Runs the graph once and keeps every node's value (``values[node]``)."""

    def __init__(self, graph_module: fx.GraphModule) -> None:
        super().__init__(graph_module)
        self.values: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        self.values[n] = value
        return value


def example_values(
    graph_module: fx.GraphModule, inputs: tuple[torch.Tensor, ...]
) -> dict[fx.Node, Any]:
    """Every node's value on ``inputs``, computed in eval mode without gradients (the module's
    mode is restored)."""
    training = graph_module.training
    recorder = Recorder(graph_module)
    shapes = ", ".join(f"{list(x.shape)} {x.dtype}" for x in inputs)
    try:
        graph_module.eval()
        with torch.no_grad():
            recorder.run(*inputs)
    except Exception as err:  # the user's module refused the example
        raise TorchImportError(
            f"running the example input(s) ({shapes}) through the traced module failed: "
            f"{type(err).__name__}: {str(err).splitlines()[0]}; give examples of the shapes and "
            "dtypes forward expects (integer tokens for nn.Embedding)"
        ) from err
    finally:
        graph_module.train(training)
    return recorder.values
