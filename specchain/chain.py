"""``SpecChain``: a typed DAG of module specs, composed with ``>>``, ``branch`` and ``parallel``.

Every composition re-checks every shape with symbolic dims (``T``, ``B``) through one ``DimEnv``,
so a mismatch is reported when the graph is built, naming both nodes, both types and the dim.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import networkx as nx
import numpy as np

from specchain import graph as g
from specchain.graph import INPUT, OUTPUT, PSEUDO
from specchain.spec import NNModuleSpec, Value
from specchain.types import ANY, DimEnv, ShapeError, SpecError, TupleType, Type

if TYPE_CHECKING:
    from specchain.engine import Tape
    from specchain.losses import Loss


class LintError(SpecError):
    """``SpecChain.lint`` found problems; the message lists all of them."""


Part = Union[NNModuleSpec, "SpecChain"]


class SpecChain:
    """A typed DAG of specs over a ``networkx.MultiDiGraph`` (``self.graph``).

    Graph schema:

    - nodes: keyed by unique, deterministic names (``lstm``, ``lstm_1`` or the ``name=`` given),
      plus the pseudo-nodes ``"<input>"`` and ``"<output>"``. Attributes: ``spec`` (the
      ``NNModuleSpec``; absent on pseudo-nodes), ``in_type`` and ``out_type`` (``Type``).
    - edges: ``port`` (None: the edge is the destination's whole input; ``k``: item ``k`` of its
      input tuple), ``index`` (a path into the source's tuple output, ``()`` for all of it) and
      ``type`` (the ``Type`` carried).

    Build it with ``spec >> spec``, ``branch(...)``, ``parallel(...)`` or ``serial(...)``; all
    shapes are inferred and checked at build time. ``in_type`` / ``out_type`` give the types of the
    whole graph; node names prefix the parameter names (``lstm.weight_ih_l0``). ``order`` is
    ``nx.lexicographical_topological_sort``: runs are deterministic.
    """

    def __init__(self, graph: nx.MultiDiGraph, in_type: Type) -> None:
        self.graph = graph
        self.in_type = infer_types(graph, in_type)
        self.order: list[str] = list(nx.lexicographical_topological_sort(graph))

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def of(cls, part: Part) -> SpecChain:
        """A chain from a chain (itself) or a spec (a one-node chain)."""
        if isinstance(part, SpecChain):
            return part
        if not isinstance(part, NNModuleSpec):
            raise TypeError(
                f"expected an NNModuleSpec or a SpecChain, got {type(part).__name__}; "
                "compose layers such as Linear(8, 4) or chains built from them"
            )
        graph = nx.MultiDiGraph()
        name = part.default_name
        graph.add_node(INPUT)
        graph.add_node(name, spec=part)
        graph.add_node(OUTPUT)
        graph.add_edge(INPUT, name, port=None, index=())
        graph.add_edge(name, OUTPUT, port=None, index=())
        return cls(graph, part.in_type)

    def __rshift__(self, other: Part) -> SpecChain:
        return serial(self, other)

    def __rrshift__(self, other: Part) -> SpecChain:
        return serial(other, self)

    # --- structure ------------------------------------------------------------------------

    @property
    def out_type(self) -> Type:
        out: Type = self.graph.nodes[OUTPUT]["in_type"]
        return out

    @property
    def nodes(self) -> list[str]:
        """Node names in execution order (without the input/output pseudo-nodes)."""
        return [n for n in self.order if n not in PSEUDO]

    def spec(self, node: str) -> NNModuleSpec:
        try:
            spec: NNModuleSpec = self.graph.nodes[node]["spec"]
        except KeyError:
            raise KeyError(f"no node named {node!r}; nodes are {self.nodes}") from None
        return spec

    def parameter_owners(self) -> dict[str, tuple[str, str]]:
        """Full parameter name -> (node, local name); a shared spec appears once, first use."""
        owners: dict[str, tuple[str, str]] = {}
        seen: set[tuple[int, str]] = set()
        for node in self.nodes:
            spec_params = self.spec(node).params
            for local in spec_params:
                if (id(spec_params), local) not in seen:
                    seen.add((id(spec_params), local))
                    owners[f"{node}.{local}"] = (node, local)
        return owners

    def named_parameters(self) -> dict[str, np.ndarray]:
        """``{"lstm.weight_ih_l0": array, ...}``: the live arrays, shared ones once."""
        return {
            full: self.spec(node).params[local]
            for full, (node, local) in self.parameter_owners().items()
        }

    @property
    def num_params(self) -> int:
        return sum(int(p.size) for p in self.named_parameters().values())

    @property
    def dtype(self) -> np.dtype[Any] | None:
        """The float dtype of the parameters (None for a graph without parameters)."""
        dtypes = {p.dtype for p in self.named_parameters().values()}
        if len(dtypes) > 1:
            raise SpecError(f"parameters mix dtypes {sorted(map(str, dtypes))}; call model.to(...)")
        return dtypes.pop() if dtypes else None

    def to(self, dtype: object) -> SpecChain:
        """Cast every parameter in place, like ``module.double()``; returns the chain."""
        done: set[int] = set()
        for node in self.nodes:
            spec = self.spec(node)
            if id(spec.params) not in done:
                done.add(id(spec.params))
                spec.to(dtype)
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters under PyTorch's key names and layouts."""
        return {name: p.copy() for name, p in self.named_parameters().items()}

    def load_state_dict(self, state_dict: dict[str, np.ndarray], strict: bool = True) -> None:
        from specchain.state import load_state_dict

        load_state_dict(self, state_dict, strict=strict)

    def summary(self) -> str:
        from specchain.summary import summary

        return summary(self)

    def lint(self) -> None:
        """Check acyclicity, ports, names and types; raise ``LintError`` listing every problem."""
        problems = list(lint_problems(self))
        if problems:
            raise LintError("lint found problems:\n  " + "\n  ".join(problems))

    def save(self, path: str | Path) -> None:
        from specchain.saving import save

        save(self, path)

    def __repr__(self) -> str:
        return f"SpecChain({self.in_type} -> {self.out_type}, nodes={self.nodes})"

    # --- execution (specchain.engine) ---------------------------------------------------

    def __call__(self, x: Value) -> Value:
        """Inference forward: numpy in, numpy out."""
        from specchain.engine import forward

        return forward(self, x, train=False, rng=None, keep=False)[0]

    def forward(self, x: Value, train: bool = False, rng: Any = None) -> tuple[Value, Tape]:
        """``(y, tape)``: the output and what ``backward`` needs."""
        from specchain.engine import forward

        return forward(self, x, train=train, rng=rng, keep=True)

    def backward(self, tape: Tape, dy: Value) -> tuple[Value, dict[str, np.ndarray]]:
        """``(dx, grads)`` with ``grads`` keyed like ``named_parameters``."""
        from specchain.engine import backward

        return backward(self, tape, dy)

    def value_and_grad(
        self, x: Value, target: Value, loss: Loss, train: bool = True, rng: Any = None
    ) -> tuple[float, dict[str, np.ndarray]]:
        """``(loss, grads)`` of ``loss(self(x), target)``."""
        from specchain.engine import value_and_grad

        return value_and_grad(self, x, target, loss, train=train, rng=rng)


# --- type inference -------------------------------------------------------------------------


def infer_types(graph: nx.MultiDiGraph, in_type: Type, at_call: bool = False) -> Type:
    """Infer every node's types in topological order; returns the unified graph input type."""
    dims = DimEnv(at_call=at_call)
    graph.nodes[INPUT]["out_type"] = in_type
    for node in nx.topological_sort(graph):
        if node == INPUT:
            continue
        received = g.input_type(graph, node)
        graph.nodes[node]["in_type"] = received
        if node == OUTPUT:
            continue
        spec: NNModuleSpec = graph.nodes[node]["spec"]
        try:
            graph.nodes[node]["out_type"] = spec.infer(received, dims)
        except ShapeError as err:
            raise ShapeError(_connect_message(graph, node, received, err, at_call)) from None
    for _, attrs_ in graph.nodes(data=True):
        for key in ("in_type", "out_type"):
            if key in attrs_:
                attrs_[key] = dims.apply(attrs_[key])
    for u, _, d in graph.edges(data=True):
        d["type"] = g.select_type(graph.nodes[u]["out_type"], d["index"])
    return graph.nodes[INPUT]["out_type"]


def _connect_message(
    graph: nx.MultiDiGraph, node: str, received: Type, err: ShapeError, at_call: bool
) -> str:
    spec: NNModuleSpec = graph.nodes[node]["spec"]
    sources = [u for u, _, _ in g.in_edges(graph, node)]
    expects = spec.in_type
    if all(u == INPUT for u in sources):
        if at_call:
            return f"input to {node!r} ({spec.kind}, expects {expects}): got {received}: {err}"
        return f"{node!r} ({spec.kind}, expects {expects}) cannot take input {received}: {err}"
    names = ", ".join(repr(u) for u in dict.fromkeys(sources))
    return f"cannot connect {names} (out {received}) to {node!r} (expects {expects}): {err}"


# --- composition ----------------------------------------------------------------------------


class _Builder:
    """Copies parts into one graph, giving every node a unique deterministic name.

    A copied chain keeps its node names unless they are already taken (so the parameter names of
    ``enc`` stay valid in ``enc >> head``); a clash gets the next free ``base_k``.
    """

    def __init__(self) -> None:
        self.graph = nx.MultiDiGraph()
        self.owner: dict[str, NNModuleSpec] = {}
        self.next_suffix: dict[str, int] = {}  # every base_k below it is taken: linear time

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

    def _add_node(self, spec: NNModuleSpec, current: str | None = None) -> str:
        name = self._name_for(spec, current)
        self.owner[name] = spec
        self.graph.add_node(name, spec=spec)
        return name

    def add(self, part: Part) -> tuple[list[tuple[str, int | None, g.Index]], list[Any]]:
        """Copy ``part``'s nodes; returns its input consumers and its output feeders."""
        if isinstance(part, NNModuleSpec):  # a one-node chain, without building one
            name = self._add_node(part)
            return [(name, None, ())], [(name, None, ())]
        rename: dict[str, str] = {}
        for node in part.nodes:
            rename[node] = self._add_node(part.spec(node), node)
        consumers: list[tuple[str, int | None, g.Index]] = []
        feeders: list[tuple[str, int | None, g.Index]] = []
        for u, v, d in part.graph.edges(data=True):
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

    def connect(self, feeders: list[Any], consumers: list[tuple[str, int | None, g.Index]]) -> None:
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
                packed = self._pack(feeders)
                self._edge(packed, v, port, ())

    def _edge(self, src: str, dst: str, port: int | None, index: g.Index) -> None:
        self.graph.add_edge(src, dst, port=port, index=index)

    def _pack(self, feeders: list[Any]) -> str:
        from specchain.modules.sequence import Pack

        name = self._add_node(Pack())
        for src, port, index in feeders:
            self._edge(src, name, port, index)
        return name


def _as_chains(parts: Iterable[Part], what: str) -> list[SpecChain]:
    chains = [SpecChain.of(p) for p in parts]
    if not chains:
        raise SpecError(f"{what}() needs at least one spec or chain")
    return chains


def serial(*parts: Part) -> SpecChain:
    """``serial(a, b, c)`` == ``a >> b >> c``, built in one pass (linear time in the size)."""
    for part in parts:
        if not isinstance(part, (NNModuleSpec, SpecChain)):
            SpecChain.of(part)  # raises the TypeError that names what was given
    if not parts:
        raise SpecError("serial() needs at least one spec or chain")
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
    return SpecChain(builder.graph, parts[0].in_type)


def branch(*parts: Part) -> SpecChain:
    """Feed one input to every part; the output is the tuple of their outputs."""
    chains = _as_chains(parts, "branch")
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
    chains = _as_chains(parts, "parallel")
    builder = _Builder()
    builder.graph.add_node(INPUT)
    builder.graph.add_node(OUTPUT)
    for i, chain in enumerate(chains):
        consumers, feeders = builder.add(chain)
        builder.connect([(INPUT, None, (i,))], consumers)
        builder.connect(feeders, [(OUTPUT, i, ())])
    return SpecChain(builder.graph, TupleType(c.in_type for c in chains))


# --- lint -------------------------------------------------------------------------------------


def lint_problems(chain: SpecChain) -> Iterator[str]:
    """Every problem of the graph; types are checked only when the structure allows inference."""
    graph = chain.graph
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
    for node in graph.nodes:  # not ``chain.nodes``: a node added by hand is not in the order
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
        yield from _type_problems(chain)


def _type_problems(chain: SpecChain) -> Iterator[str]:
    stored = {n: dict(d) for n, d in chain.graph.nodes(data=True)}
    copy = chain.graph.copy()
    try:
        infer_types(copy, chain.in_type)
    except ShapeError as err:
        yield f"types do not check: {err}"
        return
    for node, before in stored.items():
        for key in ("in_type", "out_type"):
            if key in before and before[key] != copy.nodes[node].get(key):
                now = copy.nodes[node].get(key)
                yield f"node {node!r} stores {key} {before[key]}, inference gives {now}"
    edges = zip(chain.graph.edges(data="type"), copy.edges(data="type"), strict=True)
    for (u, v, before), (_, _, now) in edges:
        if before is not None and before != now:
            yield f"edge {u!r} -> {v!r} stores type {before}, inference gives {now}"
