"""Low-level graph plumbing shared by the chain, the engine and the exporters.

The graph is a ``networkx.MultiDiGraph`` (several edges may join the same two nodes: ``Add`` of a
value with itself). Schema:

- nodes are keyed by their unique name; the pseudo-nodes ``INPUT`` and ``OUTPUT`` stand for the
  graph's input and output. Node attributes: ``spec`` (``NNModuleSpec``, None on pseudo-nodes),
  ``in_type`` and ``out_type`` (``Type``; ``INPUT`` has only ``out_type``, ``OUTPUT`` only
  ``in_type``).
- edge attributes: ``port`` (``None`` when the edge delivers the destination's whole input, else
  the item of the destination's input tuple it delivers, ports ``0..k-1``), ``index`` (a path into
  the source's tuple output, ``()`` for all of it) and ``type`` (the ``Type`` it carries).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import networkx as nx

from specchain.types import ShapeError, TupleType, Type

INPUT = "<input>"
OUTPUT = "<output>"
PSEUDO = (INPUT, OUTPUT)
Index = tuple[int, ...]


def select_type(t: Type, index: Index) -> Type:
    for i in index:
        if not isinstance(t, TupleType) or not 0 <= i < len(t.items):
            raise ShapeError(f"cannot take item {i} of {t}")
        t = t.items[i]
    return t


def select_value(value: Any, index: Index) -> Any:
    for i in index:
        value = value[i]
    return value


def in_edges(graph: nx.MultiDiGraph, node: str) -> list[tuple[str, int | None, Index]]:
    """``(source, port, index)`` of every edge into ``node``, ordered by port."""
    edges = [
        (u, d["port"], d["index"]) for u, keyed in graph.pred[node].items() for d in keyed.values()
    ]
    edges.sort(key=lambda e: -1 if e[1] is None else e[1])
    return edges


def input_type(graph: nx.MultiDiGraph, node: str) -> Type:
    """The type a node receives: one whole edge, or the tuple of its ported edges."""
    edges = in_edges(graph, node)
    types = [select_type(graph.nodes[u]["out_type"], index) for u, _, index in edges]
    if len(edges) == 1 and edges[0][1] is None:
        return types[0]
    return TupleType(types)


def port_problems(graph: nx.MultiDiGraph, node: str) -> Iterator[str]:
    ports = [p for _, p, _ in in_edges(graph, node)]
    numbered = sorted(p for p in ports if p is not None)
    if not ports and node != INPUT:
        yield f"node {node!r} has no input"
    elif None in ports and len(ports) > 1:
        if set(ports) == {None}:
            yield f"node {node!r} has {len(ports)} whole-input edges, expected one or ports 0..k-1"
        else:
            yield f"node {node!r} mixes a whole-input edge with ported edges: {ports}"
    elif numbered and numbered != list(range(len(numbered))):
        yield f"node {node!r} has ports {numbered}, expected 0..{len(numbered) - 1}"
