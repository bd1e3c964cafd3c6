"""Graph building: a traced fx graph and its example values -> the nodes and edges of a
``SpecChain`` graph (schema in ``specchain.graph``).

Every ``call_module`` node becomes a node named by the module's path (``lstm``, ``encoder.0``),
so parameter names are the module's ``state_dict`` keys; other nodes take their spec's default
name (``concat``, ``last_step_1``). A value is referred to as ``(source node, index)``: indexing a
tuple (``out, (h, c) = self.lstm(x)``, ``h[-1]`` after it) adds to the index instead of adding a
node; a nested tuple fed to one port of a spec is grouped by a ``Pack`` node, as composition does.
"""

from __future__ import annotations

import operator
from typing import Any

import networkx as nx
from torch import fx, nn

from specchain.graph import INPUT, OUTPUT, Index
from specchain.importers.registry import Call, Converted, TorchImportError, converter_for
from specchain.pack import Pack
from specchain.spec import NNModuleSpec

Ref = tuple[str, Index]  # a value: the node that computes it, and the path into its output


class GraphBuilder:
    """Builds the graph node by node, in the fx graph's order (already topological).

    ``modules`` maps every node that calls a module to that module, for copying weights; a
    module called twice gives two nodes that share one parameter dict (weight sharing).
    """

    def __init__(self, graph_module: fx.GraphModule, values: dict[fx.Node, Any]) -> None:
        self.root = graph_module
        self.values = values
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
        self.placeholders = [n for n in nodes if n.op == "placeholder"]

    def build(self) -> nx.MultiDiGraph:
        for node in self.root.graph.nodes:
            self.add(node)
        return self.graph

    def add(self, node: fx.Node) -> None:
        if node.op == "placeholder":
            many = len(self.placeholders) > 1
            self.refs[node] = (INPUT, (self.placeholders.index(node),) if many else ())
        elif node.op == "output":
            self.connect(node.args[0], OUTPUT, None, node)
        elif node.op == "get_attr":
            raise TorchImportError(
                f"cannot import node {node.name!r} (get_attr {node.target}): forward reads the "
                "tensor self." + str(node.target) + " directly; wrap the computation that uses it "
                "in an nn.Module and register a converter for that module "
                "(@specchain.importers.torch.converter(MyModule))"
            )
        elif self._indexes_tuple(node):
            self.refs[node] = self._item(node)
        else:
            self._add_call(node)

    # --- tuples -------------------------------------------------------------------------

    def _indexes_tuple(self, node: fx.Node) -> bool:
        if node.op != "call_function" or node.target is not operator.getitem:
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
        module = self.root.get_submodule(str(node.target)) if node.op == "call_module" else None
        first = node.args[0] if node.args else None
        example = self.values.get(first) if isinstance(first, fx.Node) else None
        call = Call(node, module, tuple(node.args), dict(node.kwargs), example)
        result = converter_for(call)(call)
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
        self.connect(result.inputs, name, None, node)
        self.refs[node] = (name, ())
        if result.only_item is not None:
            self.only_item[name] = result.only_item

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

    def connect(self, value: Any, dst: str, port: int | None, node: fx.Node) -> None:
        """Edges that deliver ``value`` (a node, or a nested tuple of them) to ``dst``."""
        if isinstance(value, fx.Node):
            src, index = self.refs[value]
            self.graph.add_edge(src, dst, port=port, index=index)
        elif isinstance(value, (tuple, list)) and port is None:
            for i, item in enumerate(value):
                self.connect(item, dst, i, node)
        elif isinstance(value, (tuple, list)):
            pack = self._claim("pack")
            self.graph.add_node(pack, spec=Pack())
            self.connect(value, pack, None, node)
            self.graph.add_edge(pack, dst, port=port, index=())
        else:
            raise TorchImportError(
                f"cannot import node {node.name!r} ({node.op} {node.target}): it passes the "
                f"constant {value!r} where specchain needs a tensor computed by the graph; "
                "register a converter that turns the constant into a hyper-parameter"
            )
