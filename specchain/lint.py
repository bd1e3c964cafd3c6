"""``lint``: every structural and type problem of a graph, reported at once.

A ``SpecChain`` is always well-formed when built; lint is for graphs assembled or edited by hand
(``lint_graph(graph, in_type)``) and for hyper-parameters edited behind a chain's back.
"""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx

from specchain import graph as g
from specchain.graph import INPUT, OUTPUT, PSEUDO
from specchain.inference import infer_types
from specchain.spec import NNModuleSpec
from specchain.types import ShapeError, SpecError, Type


class LintError(SpecError):
    """``lint`` found problems; the message lists all of them."""


def lint_graph(graph: nx.MultiDiGraph, in_type: Type) -> None:
    """Check acyclicity, ports, names and types; raise ``LintError`` listing every problem."""
    problems = list(lint_problems(graph, in_type))
    if problems:
        raise LintError("lint found problems:\n  " + "\n  ".join(problems))


def lint_problems(graph: nx.MultiDiGraph, in_type: Type) -> Iterator[str]:
    """Every problem of the graph; types are checked only when the structure allows inference."""
    checkable = True
    if not nx.is_directed_acyclic_graph(graph):
        yield f"the graph has a cycle: {nx.find_cycle(graph)}"
        checkable = False
    for pseudo in PSEUDO:
        if pseudo not in graph:
            yield f"the pseudo-node {pseudo!r} is missing"
            checkable = False
    wrong_way = INPUT in graph and graph.in_degree(INPUT)
    if wrong_way or (OUTPUT in graph and graph.out_degree(OUTPUT)):
        yield "the input has incoming edges or the output has outgoing edges"
    reaches_output = nx.ancestors(graph, OUTPUT) if OUTPUT in graph else set()
    for node in graph.nodes:
        if node in PSEUDO:
            continue
        spec = graph.nodes[node].get("spec")
        if not isinstance(spec, NNModuleSpec):
            yield f"node {node!r} has no spec (got {spec!r})"
            checkable = False
        if node not in reaches_output:
            yield f"node {node!r} does not contribute to the output"
    for node in graph.nodes:
        if node != INPUT:
            yield from g.port_problems(graph, node)
    if checkable:
        yield from _type_problems(graph, in_type)


def _type_problems(graph: nx.MultiDiGraph, in_type: Type) -> Iterator[str]:
    copy = graph.copy()
    try:
        infer_types(copy, in_type)
    except ShapeError as err:
        yield f"types do not check: {err}"
        return
    for node, before in graph.nodes(data=True):
        for key in ("in_type", "out_type"):
            if key in before and before[key] != copy.nodes[node].get(key):
                now = copy.nodes[node].get(key)
                yield f"node {node!r} stores {key} {before[key]}, inference gives {now}"
    edges = zip(graph.edges(data="type"), copy.edges(data="type"), strict=True)
    for (u, v, before), (_, _, now) in edges:
        if before is not None and before != now:
            yield f"edge {u!r} -> {v!r} stores type {before}, inference gives {now}"
