"""Composition: ``serial`` (``>>``), ``branch`` and ``parallel`` build new chains from parts.

``a >> b`` extends ``a`` in time proportional to ``b`` alone: it names and type-checks only ``b``'s
nodes, continuing ``a``'s substitution from ``a``'s *frontier* (its node names, its ``DimEnv`` and
the raw types of the values that deliver its output). The new chain remembers its parts and builds
its graph the first time something asks for it, with the same algorithm as ``serial(*parts)``, so a
``>>`` in a loop stays linear. Inference order (``specchain.inference``) makes the two agree: the
types a frontier extension computes are exactly those the full build stores.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Union

import attrs
import networkx as nx

from specchain import graph as g
from specchain.graph import INPUT, OUTPUT
from specchain.inference import Inference, infer_nodes, inference_order
from specchain.pack import Pack
from specchain.spec import NNModuleSpec
from specchain.types import ANY, DimEnv, ShapeError, SpecError, TupleType, Type

if TYPE_CHECKING:
    from specchain.chain import SpecChain

Part = Union[NNModuleSpec, "SpecChain"]
Feeder = tuple[str, int | None, g.Index]  # (source node, port, index into its output)


@attrs.frozen
class Frontier:
    """What extending a chain needs, without its graph: every node name with its spec, the next
    free suffix per base name, the substitution after inference, the graph input's raw type, the
    feeders of the output and the raw output types of their sources.

    ``owner`` is shared with the frontier that extends this one (its first ``size`` entries are
    this chain's names): the first extension appends in place, any later one copies that prefix,
    so a ``>>`` loop never copies the names it has.
    """

    owner: dict[str, NNModuleSpec]
    next_suffix: dict[str, int]
    dims: DimEnv
    raw_in: Type
    feeders: tuple[Feeder, ...]
    feeder_types: dict[str, Type]
    size: int

    def builder(self) -> _Builder:
        """A builder that names new nodes after this chain's."""
        if len(self.owner) == self.size:
            return _Builder(self.owner, self.next_suffix)
        return _Builder(dict(itertools.islice(self.owner.items(), self.size)), {})

    def extended(
        self, builder: _Builder, dims: DimEnv, feeders: tuple[Feeder, ...], types: dict[str, Type]
    ) -> Frontier:
        owner, suffix = builder.owner, builder.next_suffix
        return Frontier(owner, suffix, dims, self.raw_in, feeders, types, len(owner))

    @classmethod
    def of(cls, graph: nx.MultiDiGraph, inference: Inference, raw_in: Type) -> Frontier:
        owner = {n: d["spec"] for n, d in graph.nodes(data=True) if "spec" in d}
        feeders = tuple(g.in_edges(graph, OUTPUT))
        types = {u: inference.raw_out[u] for u, _, _ in feeders}
        return cls(owner, {}, inference.dims, raw_in, feeders, types, len(owner))


class _Builder:
    """Copies parts into one graph, giving every node a unique deterministic name.

    A copied chain keeps its node names unless they are already taken (so the parameter names of
    ``enc`` stay valid in ``enc >> head``); a clash gets the next free ``base_k``.
    """

    def __init__(
        self,
        owner: dict[str, NNModuleSpec] | None = None,
        next_suffix: dict[str, int] | None = None,
    ) -> None:
        self.graph = nx.MultiDiGraph()
        self.owner: dict[str, NNModuleSpec] = {} if owner is None else owner
        self.next_suffix = {} if next_suffix is None else next_suffix  # base_k below it: taken

    def _name_for(self, spec: NNModuleSpec, current: str | None = None) -> str:
        if current is not None and current not in self.owner:
            return current
        base = spec.default_name
        if base not in self.owner:
            return base
        if spec.name is not None and self.owner[base] is not spec:
            raise SpecError(
                f"two different specs are both named {base!r}; give one of them another name="
            )
        k = self.next_suffix.get(base, 1)
        while f"{base}_{k}" in self.owner:
            k += 1
        self.next_suffix[base] = k + 1
        return f"{base}_{k}"

    def _claim(self, spec: NNModuleSpec, current: str | None = None) -> str:
        name = self._name_for(spec, current)
        self.owner[name] = spec
        return name

    def _add_node(self, spec: NNModuleSpec, current: str | None = None) -> str:
        name = self._claim(spec, current)
        self.graph.add_node(name, spec=spec)
        return name

    def add(self, part: Part) -> tuple[list[Feeder], list[Feeder]]:
        """Copy ``part``'s nodes; returns its input consumers and its output feeders. Clashing
        names are renumbered in execution order; nodes are inserted in ``part``'s insertion
        order, which inference follows (``specchain.inference``)."""
        if isinstance(part, NNModuleSpec):  # a one-node chain, without building one
            name = self._add_node(part)
            return [(name, None, ())], [(name, None, ())]
        graph = part.graph
        rename = {node: self._claim(part.spec(node), node) for node in part.nodes}
        for node in graph:
            if node in rename:
                self.graph.add_node(rename[node], spec=part.spec(node))
        consumers: list[Feeder] = []
        feeders: list[Feeder] = []
        for u, v, d in graph.edges(data=True):
            if u == INPUT and v == OUTPUT:
                feeders.append((INPUT, d["port"], d["index"]))
            elif u == INPUT:
                consumers.append((rename[v], d["port"], d["index"]))
            elif v == OUTPUT:
                feeders.append((rename[u], d["port"], d["index"]))
            else:
                self.graph.add_edge(rename[u], rename[v], port=d["port"], index=d["index"])
        feeders.sort(key=lambda e: -1 if e[1] is None else e[1])
        return consumers, feeders

    def connect(self, feeders: list[Feeder], consumers: list[Feeder]) -> None:
        """Wire a value delivered by ``feeders`` into ``consumers`` (edges from the value)."""
        whole = len(feeders) == 1 and feeders[0][1] is None
        for v, port, index in consumers:
            if whole:
                src, _, src_index = feeders[0]
                self._edge(src, v, port, src_index + index)
            elif index:
                src, _, src_index = feeders[index[0]]
                self._edge(src, v, port, src_index + index[1:])
            elif port is None:
                for src, p, src_index in feeders:
                    self._edge(src, v, p, src_index)
            else:
                packed = self._add_node(Pack())
                for src, p, src_index in feeders:
                    self._edge(src, packed, p, src_index)
                self._edge(packed, v, port, ())

    def _edge(self, src: str, dst: str, port: int | None, index: g.Index) -> None:
        self.graph.add_edge(src, dst, port=port, index=index)


def _check_parts(parts: Iterable[object], what: str) -> list[Part]:
    from specchain.chain import SpecChain

    checked: list[Part] = []
    for part in parts:
        if not isinstance(part, (NNModuleSpec, SpecChain)):
            raise TypeError(
                f"expected an NNModuleSpec or a SpecChain, got {type(part).__name__}; "
                "compose layers such as Linear(8, 4) or chains built from them"
            )
        checked.append(part)
    if not checked:
        raise SpecError(f"{what}() needs at least one spec or chain")
    return checked


def build_serial(parts: list[Part]) -> tuple[nx.MultiDiGraph, Type]:
    """The graph of ``parts[0] >> parts[1] >> ...`` (untyped) and its declared input type."""
    builder = _Builder()
    builder.graph.add_node(INPUT)
    consumers, feeders = builder.add(parts[0])
    builder.connect([(INPUT, None, ())], consumers)
    for part in parts[1:]:
        consumers, next_feeders = builder.add(part)
        builder.connect(feeders, consumers)
        feeders = next_feeders
    builder.graph.add_node(OUTPUT)
    builder.connect(feeders, [(OUTPUT, None, ())])
    return builder.graph, parts[0].in_type


def extend(frontier: Frontier, part: Part) -> tuple[Frontier, Type, Type]:
    """Name and type-check ``part`` after a chain with ``frontier``: the new frontier and the
    input and output types of the extended chain. Raises ``ShapeError`` as the full build would."""
    if isinstance(part, NNModuleSpec):
        try:
            return _extend_by_spec(frontier, part)
        except ShapeError:
            pass  # the general path below raises it again, with the nodes named
    builder = frontier.builder()
    sources = dict.fromkeys(u for u, _, _ in frontier.feeders)
    for src in sources:
        builder.graph.add_node(src, out_type=frontier.feeder_types[src])
    consumers, feeders = builder.add(part)
    builder.connect(list(frontier.feeders), consumers)
    builder.graph.add_node(OUTPUT)
    builder.connect(feeders, [(OUTPUT, None, ())])
    dims = frontier.dims.copy()
    new_nodes = [n for n in inference_order(builder.graph) if n not in sources]
    raw_out = infer_nodes(builder.graph, new_nodes, dims)
    out_feeders = tuple(g.in_edges(builder.graph, OUTPUT))
    known = frontier.feeder_types | raw_out
    types = {u: known[u] for u, _, _ in out_feeders}
    extended = frontier.extended(builder, dims, out_feeders, types)
    out_type = dims.apply(builder.graph.nodes[OUTPUT]["in_type"])
    return extended, dims.apply(frontier.raw_in), out_type


def _extend_by_spec(frontier: Frontier, spec: NNModuleSpec) -> tuple[Frontier, Type, Type]:
    """``extend`` for one spec (what a ``>>`` loop does): the same steps without a graph."""
    builder = frontier.builder()
    name = builder._name_for(spec)
    builder.owner[name] = spec
    received = [g.select_type(frontier.feeder_types[u], index) for u, _, index in frontier.feeders]
    whole = len(frontier.feeders) == 1 and frontier.feeders[0][1] is None
    dims = frontier.dims.copy()
    raw_out = spec.infer_type(received[0] if whole else TupleType(received), dims)
    extended = frontier.extended(builder, dims, ((name, None, ()),), {name: raw_out})
    return extended, dims.apply(frontier.raw_in), dims.apply(raw_out)


def serial(*parts: Part) -> SpecChain:
    """``serial(a, b, c)`` == ``a >> b >> c``, built in one pass (linear time in the size)."""
    from specchain.chain import SpecChain

    return SpecChain(*build_serial(_check_parts(parts, "serial")))


def branch(*parts: Part) -> SpecChain:
    """Feed one input to every part; the output is the tuple of their outputs."""
    from specchain.chain import SpecChain

    chains = [SpecChain.of(p) for p in _check_parts(parts, "branch")]
    builder = _Builder()
    builder.graph.add_node(INPUT)
    builder.graph.add_node(OUTPUT)
    dims = DimEnv()
    in_type: Type = ANY
    for i, chain in enumerate(chains):
        try:
            in_type = dims.unify(in_type, chain.in_type, "input")
        except ShapeError as err:
            raise ShapeError(
                f"branch part {i} expects input {chain.in_type}, but earlier parts expect "
                f"{in_type}: {err}"
            ) from None
        consumers, feeders = builder.add(chain)
        builder.connect([(INPUT, None, ())], consumers)
        builder.connect(feeders, [(OUTPUT, i, ())])
    return SpecChain(builder.graph, dims.apply(in_type))


def parallel(*parts: Part) -> SpecChain:
    """Map item ``i`` of a tuple input through part ``i``; the output is the tuple of results."""
    from specchain.chain import SpecChain

    chains = [SpecChain.of(p) for p in _check_parts(parts, "parallel")]
    builder = _Builder()
    builder.graph.add_node(INPUT)
    builder.graph.add_node(OUTPUT)
    for i, chain in enumerate(chains):
        consumers, feeders = builder.add(chain)
        builder.connect([(INPUT, None, (i,))], consumers)
        builder.connect(feeders, [(OUTPUT, i, ())])
    return SpecChain(builder.graph, TupleType((c.in_type for c in chains), _input_names(chains)))


def _input_names(chains: list[SpecChain]) -> tuple[str, ...] | None:
    """The item names of ``parallel``'s input: each part's ``Input`` name (``x{i}`` for a part
    without one); None when no part starts with an ``Input``."""
    from specchain.inputs import input_name

    names = [input_name(chain) for chain in chains]
    if all(name is None for name in names):
        return None
    return tuple(f"x{i}" if name is None else name for i, name in enumerate(names))


def flatten(recipe: Any) -> list[Part]:
    """The parts of a lazy serial chain, first to last (``recipe`` is ``(previous, part)``)."""
    parts: list[Part] = []
    while recipe is not None:
        recipe, part = recipe
        parts.append(part)
    parts.reverse()
    return parts
