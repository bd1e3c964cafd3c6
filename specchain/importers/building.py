"""Graph building: a traced fx graph and its example values -> the nodes and edges of a
``SpecChain`` graph (schema in ``specchain.graph``).

Every ``call_module`` node becomes a node named by the module's path (``lstm``, ``encoder.0``),
so parameter names are the module's ``state_dict`` keys; other nodes take their spec's default
name (``concat``, ``last_step_1``). A value is referred to as ``(source node, index)``: indexing a
tuple (``out, (h, c) = self.lstm(x)``, ``h[-1]`` after it) adds to the index instead of adding a
node; a nested tuple fed to one port of a spec is grouped by a ``Pack`` node, as composition does.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
from torch import fx, nn

from specchain.chain import SpecChain
from specchain.graph import INPUT, OUTPUT, Index
from specchain.importers.registry import Call, Converted, TorchImportError, convert
from specchain.importers.tracing import is_getitem, is_read
from specchain.pack import Pack
from specchain.spec import NNModuleSpec
from specchain.types import Type

Ref = tuple[str, Index]  # a value: the node that computes it, and the path into its output


def placeholders(graph_module: fx.GraphModule) -> list[fx.Node]:
    """The graph's inputs: one per ``forward`` argument given an example."""
    return [n for n in graph_module.graph.nodes if n.op == "placeholder"]


class GraphBuilder:
    """Builds the graph of ``module`` node by node, from its trace ``graph_module`` in the fx
    graph's order (already topological).

    ``modules`` maps every node that calls a module to that module, for copying weights; a
    module called twice gives two nodes that share one parameter dict (weight sharing).
    """

    def __init__(
        self,
        module: nn.Module,
        graph_module: fx.GraphModule,
        values: dict[fx.Node, Any],
        in_type: Type,
    ) -> None:
        self.module = module
        self.root = graph_module
        self.values = values
        self.in_type = in_type
        self.graph = nx.MultiDiGraph()
        self.graph.add_node(INPUT)
        self.graph.add_node(OUTPUT)
        self.refs: dict[fx.Node, Ref] = {}
        self.only_item: dict[str, int] = {}
        self.modules: dict[str, nn.Module] = {}
        self.first_call: dict[int, str] = {}
        nodes = graph_module.graph.nodes
        self.reserved = {str(n.target) for n in nodes if n.op == "call_module"}
        self.names: set[str] = set()
        self.placeholders = placeholders(graph_module)

    def build(self) -> nx.MultiDiGraph:
        for node in self.root.graph.nodes:
            self.add(node)
        return self.graph

    def add(self, node: fx.Node) -> None:
        if node.op == "placeholder":
            many = len(self.placeholders) > 1
            self.refs[node] = (INPUT, (self.placeholders.index(node),) if many else ())
        elif node.op == "output":
            self.connect(node.args[0], OUTPUT, None, "the output of forward")
        elif node.op == "get_attr":
            raise self._attribute_error(node)
        elif self._indexes_tuple(node):
            if is_read(node):  # not the ``_`` of ``out, _ = self.lstm(x)``
                self.refs[node] = self._item(node)
        else:
            self._add_call(node)

    def _attribute_error(self, node: fx.Node) -> TorchImportError:
        """A forward that reads a tensor attribute (a weight used by hand, a constant)."""
        target = str(node.target)
        owner_path = target.rpartition(".")[0]
        if target.startswith("_tensor_constant"):
            what, owner = "makes a constant tensor", "MyModule"
        else:
            what = f"reads self.{target} directly"
            owner = (
                type(self.module.get_submodule(owner_path)).__name__ if owner_path else "MyModule"
            )
        return TorchImportError(
            f"cannot import node {node.name!r} (get_attr {target}): forward {what}; "
            "specchain's graph holds only layers and their inputs: register a converter for the "
            f"module that computes with it (@specchain.importers.torch.converter({owner})), so "
            "it is imported whole"
        )

    # --- tuples -------------------------------------------------------------------------

    def _indexes_tuple(self, node: fx.Node) -> bool:
        if not is_getitem(node):
            return False
        source = node.args[0]
        return isinstance(source, fx.Node) and isinstance(self.values.get(source), (tuple, list))

    def _item(self, node: fx.Node) -> Ref:
        source, index = node.args
        assert isinstance(source, fx.Node)
        items = self.values[source]
        if not isinstance(index, int) or not -len(items) <= index < len(items):
            raise TorchImportError(
                f"cannot import node {node.name!r}: it indexes the {len(items)}-tuple "
                f"{source.name!r} with {index!r}; index it with an int (out, _ = ...)"
            )
        index %= len(items)
        name, path = self.refs[source]
        only = self.only_item.get(name)
        if only is not None and not path:  # the spec returns that item alone
            if index != only:
                raise TorchImportError(
                    f"specchain bug: node {name!r} returns item {only} alone, but "
                    f"{node.name!r} reads item {index}; please report it"
                )
            return name, ()
        return name, (*path, index)

    # --- calls --------------------------------------------------------------------------

    def _add_call(self, node: fx.Node) -> None:
        module = self.module.get_submodule(str(node.target)) if node.op == "call_module" else None
        call = Call(node, module, tuple(node.args), dict(node.kwargs), self.value_type)
        result = convert(call)
        if isinstance(result, NNModuleSpec):
            args = call.args
            result = Converted(result, args[0] if len(args) == 1 else args)
        if not isinstance(result, Converted):
            raise TorchImportError(
                f"the converter for {call.where} returned {type(result).__name__}; a converter "
                "returns an NNModuleSpec or specchain.importers.torch.Converted(spec, inputs)"
            )
        name = self._claim(str(node.target) if module is not None else result.spec.default_name)
        self.graph.add_node(name, spec=result.spec)
        if module is not None:
            self._share_weights(name, module, result.spec)
        self.connect(result.inputs, name, None, call.where)
        for spec in result.then:
            previous, name = name, self._claim(spec.default_name)
            self.graph.add_node(name, spec=spec)
            self.graph.add_edge(previous, name, port=None, index=())
        self.refs[node] = (name, ())
        if result.only_item is not None:
            self.only_item[name] = result.only_item

    def value_type(self, value: Any) -> Type:
        """The spec-side type of a value the graph has computed so far (inferred on a copy of
        the graph that outputs it)."""
        if not isinstance(value, fx.Node):
            raise TorchImportError(f"{value!r} is a constant, not a value of the graph")
        graph = self.graph.copy()
        src, index = self.refs[value]
        graph.add_edge(src, OUTPUT, port=None, index=index)
        return SpecChain(graph, self.in_type).out_type

    def _share_weights(self, name: str, module: nn.Module, spec: NNModuleSpec) -> None:
        first = self.first_call.setdefault(id(module), name)
        if first == name:
            self.modules[name] = module
        else:  # the same module again: the same parameters (the chain lists them once)
            spec.params = self.graph.nodes[first]["spec"].params

    def _claim(self, base: str) -> str:
        name, k = base, 0
        taken = self.names | (self.reserved - {base})
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def connect(self, value: Any, dst: str, port: int | None, where: str) -> None:
        """Edges that deliver ``value`` (a node, or a nested tuple of them) to ``dst``; ``where``
        names the fx node in messages."""
        if isinstance(value, fx.Node):
            src, index = self.refs[value]
            self.graph.add_edge(src, dst, port=port, index=index)
        elif isinstance(value, (tuple, list)) and port is None:
            for i, item in enumerate(value):
                self.connect(item, dst, i, where)
        elif isinstance(value, (tuple, list)):
            pack = self._claim("pack")
            self.graph.add_node(pack, spec=Pack())
            self.connect(value, pack, None, where)
            self.graph.add_edge(pack, dst, port=port, index=())
        else:
            raise TorchImportError(
                f"cannot import {where}: it passes the constant {value!r} where specchain "
                "needs a tensor computed by the graph; "
                "register a converter that turns the constant into a hyper-parameter"
            )
