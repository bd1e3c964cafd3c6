"""Type inference over a graph of specs: every node's input and output type, with one ``DimEnv``.

Nodes are inferred in *inference order*: topological, ties broken by insertion order. Composition
inserts a part's nodes after everything it extends, so inferring ``a >> b`` performs exactly the
steps of inferring ``a`` and then those of ``b``: ``specchain.compose`` relies on it to extend a
chain without re-inferring what it extends.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

import attrs
import networkx as nx

from specchain import graph as g
from specchain.graph import INPUT, OUTPUT
from specchain.spec import NNModuleSpec
from specchain.types import DimEnv, ShapeError, Type


@attrs.frozen
class Inference:
    """The result of inferring a graph: its unified input type, the substitution that did it, and
    each node's output type before the substitution was applied (what a later extension of the
    graph unifies against)."""

    in_type: Type
    dims: DimEnv
    raw_out: dict[str, Type]


def inference_order(graph: nx.MultiDiGraph) -> list[str]:
    """Topological order, ties broken by insertion order (Kahn's algorithm with a heap)."""
    position = {node: i for i, node in enumerate(graph)}
    waiting = {node: len(graph.pred[node]) for node in graph}
    ready = [(position[node], node) for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for successor in graph.succ[node]:
            waiting[successor] -= 1
            if waiting[successor] == 0:
                heapq.heappush(ready, (position[successor], successor))
    if len(order) != len(graph):
        raise nx.NetworkXUnfeasible("the graph has a cycle")
    return order


def infer_types(graph: nx.MultiDiGraph, in_type: Type, at_call: bool = False) -> Inference:
    """Infer and store every node's ``in_type``/``out_type`` and every edge's ``type``."""
    dims = DimEnv(at_call=at_call)
    graph.nodes[INPUT]["out_type"] = in_type
    nodes = [n for n in inference_order(graph) if n != INPUT]
    raw_out = infer_nodes(graph, nodes, dims) | {INPUT: in_type}
    apply_types(graph, graph.nodes, dims)
    return Inference(graph.nodes[INPUT]["out_type"], dims, raw_out)


def infer_nodes(graph: nx.MultiDiGraph, nodes: Iterable[str], dims: DimEnv) -> dict[str, Type]:
    """Infer ``nodes`` in the given order (their sources already typed); returns the raw (not yet
    substituted) output types, which are also stored on the nodes."""
    raw_out: dict[str, Type] = {}
    for node in nodes:
        received = g.input_type(graph, node)
        graph.nodes[node]["in_type"] = received
        if node == OUTPUT:
            continue
        spec: NNModuleSpec = graph.nodes[node]["spec"]
        try:
            raw_out[node] = spec.infer_type(received, dims)
        except ShapeError as err:
            shown = dims.apply(received)  # sizes already known, not the symbols bound to them
            raise ShapeError(connect_message(graph, node, shown, err, dims.at_call)) from None
        graph.nodes[node]["out_type"] = raw_out[node]
    return raw_out


def apply_types(graph: nx.MultiDiGraph, nodes: Iterable[str], dims: DimEnv) -> None:
    """Replace bound symbols in the stored types of ``nodes`` and of the edges out of them."""
    for node in nodes:
        data = graph.nodes[node]
        for key in ("in_type", "out_type"):
            if key in data:
                data[key] = dims.apply(data[key])
    for u, _, d in graph.edges(data=True):
        d["type"] = g.select_type(graph.nodes[u]["out_type"], d["index"])


def connect_message(
    graph: nx.MultiDiGraph, node: str, received: Type, err: ShapeError, at_call: bool
) -> str:
    """``cannot connect 'a' (out [T, B, 16]) to 'b' (expects [..., 32]): feature size 16 != 32``."""
    spec: NNModuleSpec = graph.nodes[node]["spec"]
    sources = [u for u, _, _ in g.in_edges(graph, node)]
    expects = spec.in_type
    if all(u == INPUT for u in sources):
        if at_call:
            return f"input to {node!r} ({spec.kind}, expects {expects}): got {received}: {err}"
        return f"{node!r} ({spec.kind}, expects {expects}) cannot take input {received}: {err}"
    names = ", ".join(repr(u) for u in dict.fromkeys(sources))
    return f"cannot connect {names} (out {received}) to {node!r} (expects {expects}): {err}"
