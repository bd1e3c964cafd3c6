"""``SpecChain``: an immutable, typed DAG of module specs, composed with ``>>``, ``branch`` and
``parallel`` (``specchain.compose``).

Every composition checks every shape with symbolic dims (``T``, ``B``) through one ``DimEnv``, so a
mismatch is reported when the graph is built, naming both nodes, both types and the dim.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import networkx as nx
import numpy as np

from specchain import compose
from specchain.compose import Frontier, Part, branch, parallel, serial
from specchain.graph import INPUT, OUTPUT, PSEUDO
from specchain.inference import infer_types
from specchain.lint import LintError, lint_graph
from specchain.spec import NNModuleSpec, Value
from specchain.types import SpecError, Type

if TYPE_CHECKING:
    from specchain.engine import Plan, Tape
    from specchain.losses import Loss

__all__ = ["LintError", "Part", "SpecChain", "branch", "infer_types", "parallel", "serial"]


class SpecChain:
    """A typed DAG of specs over a frozen ``networkx.MultiDiGraph`` (``self.graph``).

    Graph schema:

    - nodes: keyed by unique, deterministic names (``lstm``, ``lstm_1`` or the ``name=`` given),
      plus the pseudo-nodes ``"<input>"`` and ``"<output>"``. Attributes: ``spec`` (the
      ``NNModuleSpec``; absent on pseudo-nodes), ``in_type`` and ``out_type`` (``Type``).
    - edges: ``port`` (None: the edge is the destination's whole input; ``k``: item ``k`` of its
      input tuple), ``index`` (a path into the source's tuple output, ``()`` for all of it) and
      ``type`` (the ``Type`` carried).

    A chain is a value: the constructor copies the graph it is given, infers every type and
    freezes the copy (editing ``chain.graph`` raises; edit ``chain.graph.copy()`` and build a new
    chain from it). The execution plan and the input types already checked are cached on the
    chain. ``retyped(in_type)`` gives the same graph for another input type.

    Build it with ``spec >> spec``, ``branch(...)``, ``parallel(...)`` or ``serial(...)``; all
    shapes are inferred and checked at build time. ``in_type`` / ``out_type`` give the types of the
    whole graph; node names prefix the parameter names (``lstm.weight_ih_l0``). ``order`` is
    ``nx.lexicographical_topological_sort``: runs are deterministic.
    """

    def __init__(self, graph: nx.MultiDiGraph, in_type: Type) -> None:
        owned = graph.copy()
        inference = infer_types(owned, in_type)
        if inference.in_type != in_type:  # what composing this chain starts from: the unified type
            in_type = inference.in_type
            inference = infer_types(owned, in_type)
        self._graph: nx.MultiDiGraph | None = _freeze(owned)
        self._recipe: Any = None
        self._frontier = Frontier.of(owned, inference, in_type)
        self._in_type: Type = inference.in_type
        self._out_type: Type = owned.nodes[OUTPUT]["in_type"]
        self._checked_inputs: set[Type] = set()

    @property
    def in_type(self) -> Type:
        """The type of the input the whole graph takes (symbols unified across the graph)."""
        return self._in_type

    @property
    def out_type(self) -> Type:
        """The type of the value the graph returns."""
        return self._out_type

    def __getstate__(self) -> dict[str, Any]:
        """Copy and pickle support (``copy.deepcopy(model)``): the graph and the declared input
        type; the frozen graph and the caches are rebuilt from them."""
        return {"graph": self.graph.copy(), "in_type": self._frontier.raw_in}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["graph"], state["in_type"])  # type: ignore[misc]

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def of(cls, part: Part) -> SpecChain:
        """A chain from a chain (itself) or a spec (a one-node chain)."""
        if isinstance(part, SpecChain):
            return part
        compose._check_parts([part], "SpecChain.of")
        graph = nx.MultiDiGraph()
        name = part.default_name
        graph.add_node(INPUT)
        graph.add_node(name, spec=part)
        graph.add_node(OUTPUT)
        graph.add_edge(INPUT, name, port=None, index=())
        graph.add_edge(name, OUTPUT, port=None, index=())
        return cls(graph, part.in_type)

    def then(self, part: Part) -> SpecChain:
        """``self >> part``: checked now, in time proportional to ``part``; the graph is built when
        first needed (see ``specchain.compose``)."""
        part = compose._check_parts([part], "serial")[0]
        if _passes_input_through(self) or _passes_input_through(part):
            return SpecChain(*compose.build_serial([self, part]))
        frontier, in_type, out_type = compose.extend(self._frontier, part)
        if in_type != frontier.raw_in:  # ``part`` refined the input type: later parts start there
            return SpecChain(*compose.build_serial([self, part]))
        chain = object.__new__(SpecChain)
        chain._graph = None
        chain._recipe = (self._recipe if self._graph is None else (None, self), part)
        chain._frontier = frontier
        chain._in_type, chain._out_type = in_type, out_type
        chain._checked_inputs = set()
        return chain

    def __rshift__(self, other: Part) -> SpecChain:
        return self.then(other)

    def __rrshift__(self, other: Part) -> SpecChain:
        return SpecChain.of(other).then(self)

    def retyped(self, in_type: Type) -> SpecChain:
        """The same nodes for another input type (e.g. one that adds an initial state)."""
        return SpecChain(self.graph, in_type)

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The frozen graph (built on first access for a chain made by ``>>``)."""
        if self._graph is None:
            graph, in_type = compose.build_serial(compose.flatten(self._recipe))
            inference = infer_types(graph, in_type)
            if (inference.in_type, graph.nodes[OUTPUT]["in_type"]) != (self.in_type, self.out_type):
                raise AssertionError(  # compose.extend and the full build must agree
                    f"specchain bug: built {inference.in_type} -> {graph.nodes[OUTPUT]['in_type']},"
                    f" composed {self.in_type} -> {self.out_type}; please report it"
                )
            self._graph = _freeze(graph)
            self._recipe = None
        return self._graph

    @functools.cached_property
    def order(self) -> tuple[str, ...]:
        """Execution order of every node (pseudo-nodes included): deterministic."""
        return tuple(nx.lexicographical_topological_sort(self.graph))

    @functools.cached_property
    def plan(self) -> Plan:
        """The execution plan (``specchain.engine``), derived once from the graph."""
        from specchain.engine import build_plan

        return build_plan(self)

    def check_input_type(self, concrete: Type) -> None:
        """Check a call's input type (symbols bind to sizes); each distinct type once."""
        if concrete in self._checked_inputs:
            return
        from specchain.engine import check_input_type

        check_input_type(self, concrete)
        self._checked_inputs.add(concrete)

    # --- structure ------------------------------------------------------------------------

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

    def summary(self, input_shape: Any = None) -> str:
        """The table of nodes (``specchain.summary``); ``input_shape=(20, 4, 8)`` shows the
        concrete shapes of a call with those sizes and its parameter and activation memory."""
        from specchain.summary import summary

        return summary(self, input_shape)

    def _repr_html_(self) -> str:
        """Jupyter's display: the diagram (inline SVG) above the summary table."""
        from specchain.notebook import chain_html

        return chain_html(self)

    def lint(self) -> None:
        """Check acyclicity, ports, names and types (hyper-parameters may have been edited behind
        the chain's back); raise ``LintError`` listing every problem."""
        lint_graph(self.graph, self.in_type)

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


def _passes_input_through(part: Part) -> bool:
    """A hand-built graph whose input goes straight to its output (composition takes the slow,
    full path for those)."""
    return isinstance(part, SpecChain) and any(u == INPUT for u, _, _ in part._frontier.feeders)


def _immutable(*args: Any, **kwargs: Any) -> NoReturn:
    raise SpecError(
        "a SpecChain's graph cannot be edited: compose a new chain (>>, branch, parallel), or edit "
        "a copy and build from it: SpecChain(chain.graph.copy(), chain.in_type)"
    )


class FrozenDict(dict[str, Any]):
    """A node, edge or graph attribute dict of a chain's graph: reading works as for a dict,
    writing raises. Copies (``dict(d)``, ``d.copy()``, ``copy.deepcopy``, pickle) are plain
    dicts."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        _immutable()

    __setitem__ = __delitem__ = __ior__ = _refuse
    update = pop = popitem = clear = setdefault = _refuse

    def copy(self) -> dict[str, Any]:
        return dict(self)

    def __reduce__(self) -> tuple[type, tuple[dict[str, Any]]]:
        return dict, (dict(self),)


class FrozenGraph(nx.MultiDiGraph):  # type: ignore[misc]
    """A chain's graph: every mutating method raises, attribute dicts are ``FrozenDict``.
    ``copy()``, ``reverse()``, ``to_undirected()``, ``copy.deepcopy`` and pickle give ordinary,
    editable graphs."""

    frozen = True  # what networkx.is_frozen reads

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        _immutable()

    add_node = add_nodes_from = remove_node = remove_nodes_from = _refuse
    add_edge = add_edges_from = add_weighted_edges_from = new_edge_key = _refuse
    remove_edge = remove_edges_from = update = clear = clear_edges = _refuse

    def copy(self, as_view: bool = False) -> nx.MultiDiGraph:
        if as_view:
            return super().copy(as_view=True)
        plain = nx.MultiDiGraph()
        plain.graph.update(self.graph)
        plain.add_nodes_from((n, dict(d)) for n, d in self.nodes(data=True))
        plain.add_edges_from((u, v, k, dict(d)) for u, v, k, d in self.edges(keys=True, data=True))
        return plain

    def reverse(self, copy: bool = True) -> nx.MultiDiGraph:
        return self.copy().reverse(copy=True) if copy else super().reverse(copy=False)

    def to_directed_class(self) -> type[nx.MultiDiGraph]:
        return nx.MultiDiGraph

    def __reduce__(self) -> tuple[type, tuple[nx.MultiDiGraph]]:
        return nx.MultiDiGraph, (self.copy(),)


def _freeze(graph: nx.MultiDiGraph) -> FrozenGraph:
    """Make ``graph`` (built here, owned by the chain) a ``FrozenGraph``."""
    nodes = graph._node
    for node in nodes:
        nodes[node] = FrozenDict(nodes[node])
    for neighbours in graph._adj.values():
        for keyed in neighbours.values():
            for key in keyed:
                keyed[key] = FrozenDict(keyed[key])
    graph.graph = FrozenDict(graph.graph)
    graph.__class__ = FrozenGraph
    return graph
