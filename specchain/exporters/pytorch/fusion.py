"""Structural fusion before emission: a graph rewrite that is exact or not applied.

A PyTorch engineer writes one ``nn.LSTM(bidirectional=True)`` where a spec has two lanes, and one
``nn.LSTM(num_layers=2)`` where a spec has two layers. ``fuse(model)`` finds those shapes in the
graph and replaces them by the one spec that computes exactly the same function, so the export's
``state_dict`` is the hand-written model's:

- **bidirectional**: ``branch(R, Reverse() >> R' >> Reverse()) >> Concat()`` where ``R`` and ``R'``
  are one-layer, one-direction recurrent layers of one family (``LSTM``, ``GRU``, ``RNN``) with
  the same options, both lanes read the same value, both ``Reverse`` flip the time axis and
  ``Concat`` joins the features forward-first -> ``R(bidirectional=True)``; ``R'``'s
  ``weight_ih_l0`` becomes ``weight_ih_l0_reverse``.
- **stack**: ``R1 >> R2 >> ...`` (each optionally followed by one ``Dropout(p)``) with the same
  hidden size and options, and one dropout ``p`` between every pair of layers (a layer's own
  ``dropout`` between its layers included; no ``Dropout`` node counts as ``p = 0``) ->
  ``R(num_layers=k, dropout=p)``; layer ``j`` of ``R2`` is layer ``L1 + j`` of the fused layer
  (``lstm2.weight_ih_l0`` -> ``lstm.weight_ih_l1``). Bidirectional layers stack the same way.

Never fused: a node whose output is also used elsewhere, a layer that takes or returns a state
(``(x, (h0, c0))``, ``return_state``), different sizes or options, a different dropout between two
pairs, any other node in between, a spec shared by several nodes. Padded inputs need nothing: the
fused layer runs packed over the same lengths, and ``Reverse`` of a padded batch flips each
sequence within its length, as the reverse direction of a packed ``nn.LSTM`` does.

The fused node takes the first layer's name without its layer number (``lstm1`` -> ``lstm``,
``encoder_2`` -> ``encoder``; the family's name ``lstm`` when less than two characters are left,
as from ``l0``). Its parameters are the model's own arrays (no copy): ``Fusion.chain`` is an
equivalent model, and ``Fusion.keys`` maps each of the model's parameter names to the fused
chain's.

Also here: ``base_node``, the one node of a model that is a single composite module (an
attention encoder/decoder). The exported class then *is* that module (subclasses its helper class
and calls its ``_forward_impl``), so its parameters have no extra prefix (``encoder.weight_ih_l0``,
not ``attention.encoder.weight_ih_l0``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Any, Protocol, cast

import attrs
import networkx as nx

from specchain import graph as g
from specchain.chain import SpecChain
from specchain.exporters.pytorch.emitters import ExportError, emitter_for, helper_classes
from specchain.graph import INPUT, OUTPUT
from specchain.inputs import Input
from specchain.params import without_init
from specchain.spec import NNModuleSpec
from specchain.types import ShapeError, TensorType

BASE_METHOD = "_forward_impl"  # what a helper class that can be the whole model defines
_VARYING = ("input_size", "num_layers", "dropout")  # options a stack's layers may differ in
_LAYER = re.compile(r"^(?P<name>\w+?)_l(?P<layer>\d+)(?P<reverse>_reverse)?$")


class _Recurrent(Protocol):
    """What fusion reads of an ``LSTM``, ``GRU`` or ``RNN`` spec."""

    num_layers: int
    dropout: float
    bidirectional: bool
    batch_first: bool
    params: dict[str, Any]
    kind: str

    def config(self) -> dict[str, Any]: ...


@attrs.frozen
class Fused:
    """One fused node: its name in the rewritten chain, the model's nodes it replaces (in graph
    order) and what it became (``"nn.LSTM(num_layers=2)"``)."""

    node: str
    sources: tuple[str, ...]
    became: str

    def comment(self) -> str:
        """A comment line for the generated file (node names appear only ``repr``'d)."""
        return f"# exact fusion of nodes {', '.join(map(repr, self.sources))}: {self.became}"


@attrs.frozen
class Fusion:
    """``chain``: the model with every exact fusion applied (the model itself when none
    applies); ``keys``: each of the model's parameter names -> the chain's
    (``"lstm2.weight_ih_l0"`` -> ``"lstm.weight_ih_l1"``); ``fused``: what was fused."""

    chain: SpecChain
    keys: dict[str, str]
    fused: tuple[Fused, ...]

    def comments(self, node: str) -> list[str]:
        """The comment lines for ``node`` of ``chain``: one if it was fused, else none."""
        return [f.comment() for f in self.fused if f.node == node]

    def origin(self, node: str) -> str | tuple[str, ...]:
        """The model's node that ``node`` of ``chain`` is, or the nodes it fuses."""
        found = [f.sources for f in self.fused if f.node == node]
        return found[0] if found else node


@attrs.frozen
class _Rewrite:
    """Replace ``removed`` by one node running ``spec``: it takes ``first``'s input and feeds
    ``last``'s consumers. ``renamed``: ``(old node, local name)`` -> the new local name."""

    removed: tuple[str, ...]
    first: str
    last: str
    spec: NNModuleSpec
    renamed: dict[tuple[str, str], str]
    became: str


def fuse(model: SpecChain) -> Fusion:
    """Every exact fusion of ``model``, applied until none is left (see the module docstring)."""
    chain = model
    keys = {key: key for key in model.parameter_owners()}
    origins: dict[str, tuple[str, ...]] = {node: (node,) for node in model.nodes}
    fused: dict[str, Fused] = {}
    while (rewrite := _next_rewrite(chain)) is not None:
        chain, name = _apply(chain, rewrite)
        renamed = {f"{n}.{local}": f"{name}.{new}" for (n, local), new in rewrite.renamed.items()}
        keys = {ours: renamed.get(key, key) for ours, key in keys.items()}
        sources = tuple(s for n in rewrite.removed for s in origins.pop(n))
        origins[name] = sources
        for node in rewrite.removed:
            fused.pop(node, None)
        fused[name] = Fused(name, sources, rewrite.became)
    return Fusion(chain, keys, tuple(fused[n] for n in chain.nodes if n in fused))


def base_node(chain: SpecChain) -> str | None:
    """The node whose module the exported class can be: the model's only node besides its
    ``Input`` nodes, with parameters, emitted as a helper class that defines ``_forward_impl``."""
    nodes = [n for n in chain.nodes if not isinstance(chain.spec(n), Input)]
    if len(nodes) != 1 or not chain.spec(nodes[0]).params:
        return None
    node, spec = nodes[0], chain.spec(nodes[0])
    try:
        emitted = emitter_for(spec, node).emit(spec, chain.graph.nodes[node]["in_type"])
    except ExportError:
        return None  # the exporter reports it, naming the node
    if emitted.helper is None:
        return None
    source = emitted.helper_source or helper_classes().get(emitted.helper, "")
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.ClassDef) and statement.name == emitted.helper:
            methods = {f.name for f in statement.body if isinstance(f, ast.FunctionDef)}
            return node if BASE_METHOD in methods else None
    return None


# --- finding fusions ---------------------------------------------------------------------------


def _families() -> tuple[type[NNModuleSpec], ...]:
    """The recurrent layers whose twins are ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` (imported
    when used: the layer files import the exporter)."""
    from specchain.modules.gru import GRU
    from specchain.modules.recurrent import LSTM
    from specchain.modules.rnn import RNN

    return (LSTM, GRU, RNN)


def _next_rewrite(chain: SpecChain) -> _Rewrite | None:
    """The first fusion in graph order: bidirectional lanes first, then stacks."""
    for node in chain.nodes:
        found = _bidirectional(chain, node)
        if found is not None:
            return found
    for node in chain.nodes:
        found = _stack(chain, node)
        if found is not None:
            return found
    return None


def _options(spec: _Recurrent) -> dict[str, Any]:
    """The options two fusable layers must share."""
    return {k: v for k, v in spec.config().items() if k not in _VARYING}


def _layer(chain: SpecChain, node: str) -> _Recurrent | None:
    """``node``'s spec if it is a recurrent layer that may take part in a fusion: a family with
    a ``nn.*`` twin, on a plain sequence (no state in or out), not shared with another node."""
    spec = chain.spec(node)
    if type(spec) not in _families() or getattr(spec, "return_state", True):
        return None
    if not isinstance(chain.graph.nodes[node]["in_type"], TensorType):
        return None
    shared = sum(chain.spec(n).params is spec.params for n in chain.nodes)
    return cast(_Recurrent, spec) if shared == 1 else None


def _only_edge(edges: list[tuple[str, int | None, g.Index]]) -> str | None:
    """The source of ``edges`` if they are one edge carrying a whole value, else None."""
    if len(edges) != 1 or edges[0][1] is not None or edges[0][2] != ():
        return None
    return edges[0][0]


def _sole_consumer(chain: SpecChain, node: str) -> str | None:
    """The one node that reads ``node``'s whole output (and nothing else reads it), else None."""
    out = [(v, d) for _, v, d in chain.graph.out_edges(node, data=True)]
    if len(out) != 1 or out[0][1]["index"] != () or out[0][0] == OUTPUT:
        return None
    return str(out[0][0])


def _time_axis(chain: SpecChain, node: str, spec: _Recurrent) -> int:
    """The time axis of the sequence a recurrent layer reads: 1 for batch-first ``[B, T, F]``."""
    rank = chain.graph.nodes[node]["in_type"].rank
    return 1 if spec.batch_first and rank == 3 else 0


def _flips(chain: SpecChain, node: str, axis: int) -> bool:
    """True if ``node`` is a ``Reverse`` that flips ``axis``, its time axis."""
    from specchain.modules.sequence import Reverse

    spec = chain.spec(node)
    if type(spec) is not Reverse:
        return False
    try:
        return spec.time_axis(chain.graph.nodes[node]["in_type"]) == axis
    except ShapeError:  # a type whose time axis cannot be found: not this pattern
        return False


def _bidirectional(chain: SpecChain, concat: str) -> _Rewrite | None:
    """``branch(fwd, Reverse >> bwd >> Reverse) >> Concat`` ending at ``concat``, or None."""
    from specchain.modules.sequence import Concat

    spec = chain.spec(concat)
    edges = g.in_edges(chain.graph, concat)
    in_type = chain.graph.nodes[concat]["in_type"]
    if type(spec) is not Concat or len(edges) != 2 or any(e[2] != () for e in edges):
        return None
    first = in_type.items[0]
    rank = first.rank if isinstance(first, TensorType) and not first.variadic else None
    if rank is None or spec.axis % rank != rank - 1:  # features, the last axis, only
        return None
    forward, unflip = edges[0][0], edges[1][0]
    backward = _only_edge(g.in_edges(chain.graph, unflip)) if unflip != INPUT else None
    flip = _only_edge(g.in_edges(chain.graph, backward)) if backward not in (None, INPUT) else None
    if flip in (None, INPUT) or forward == INPUT:
        return None
    assert backward is not None and flip is not None
    fwd, bwd = _layer(chain, forward), _layer(chain, backward)
    if fwd is None or bwd is None or type(fwd) is not type(bwd):
        return None
    if fwd.config() != bwd.config() or fwd.num_layers != 1 or fwd.bidirectional:
        return None
    source = g.in_edges(chain.graph, forward)
    if len(source) != 1 or source[0][1] is not None or source != g.in_edges(chain.graph, flip):
        return None
    axis = _time_axis(chain, forward, fwd)
    if not (_flips(chain, flip, axis) and _flips(chain, unflip, axis)):
        return None
    if any(
        _sole_consumer(chain, a) != b for a, b in _pairs(forward, flip, backward, unflip, concat)
    ):
        return None
    spec_out = _build(fwd, bidirectional=True)
    renamed = {(forward, local): local for local in fwd.params}
    renamed |= {(backward, local): _shift(local, 0, reverse=True) for local in bwd.params}
    removed = tuple(n for n in chain.nodes if n in {forward, flip, backward, unflip, concat})
    return _Rewrite(removed, forward, concat, spec_out, renamed, _twin(spec_out))


def _pairs(
    forward: str, flip: str, backward: str, unflip: str, concat: str
) -> Iterator[tuple[str, str]]:
    """Each lane node with the one node that must read it."""
    yield forward, concat
    yield flip, backward
    yield backward, unflip
    yield unflip, concat


def _stack(chain: SpecChain, start: str) -> _Rewrite | None:
    """The longest exact stack starting at ``start`` (two layers or more), or None."""
    first = _layer(chain, start)
    if first is None:
        return None
    layers, between, gaps = [start], [], []  # gaps: the dropout p between each pair
    if first.num_layers > 1:
        gaps.append(first.dropout)
    while (step := _next_layer(chain, layers[-1], first)) is not None:
        dropout, node, p = step
        spec = cast(_Recurrent, chain.spec(node))
        own = [spec.dropout] if spec.num_layers > 1 else []
        if len(set([*gaps, p, *own])) != 1:
            break
        layers.append(node)
        between += [dropout] if dropout is not None else []
        gaps += [p, *own]
    if len(layers) < 2:
        return None
    specs = [cast(_Recurrent, chain.spec(n)) for n in layers]
    total = sum(s.num_layers for s in specs)
    fused = _build(first, num_layers=total, dropout=gaps[0])
    renamed: dict[tuple[str, str], str] = {}
    offset = 0
    for node, spec in zip(layers, specs):
        renamed |= {(node, local): _shift(local, offset) for local in spec.params}
        offset += spec.num_layers
    removed = tuple(n for n in chain.nodes if n in {*layers, *between})
    return _Rewrite(removed, start, layers[-1], fused, renamed, _twin(fused))


def _next_layer(
    chain: SpecChain, node: str, first: _Recurrent
) -> tuple[str | None, str, float] | None:
    """``(dropout node or None, next layer, dropout p)`` if ``node``'s output goes only to a
    layer that stacks on ``first`` (directly or through one ``Dropout``), else None."""
    from specchain.modules.dropout import Dropout

    after = _sole_consumer(chain, node)
    dropout, p = None, 0.0
    if after is not None and type(between := chain.spec(after)) is Dropout:
        if not isinstance(chain.graph.nodes[after]["in_type"], TensorType):
            return None  # Dropout of (x, mask): a mask of the user's, not nn.LSTM's
        dropout, p = after, float(between.p)
        after = _sole_consumer(chain, after)
    if after is None or _only_edge(g.in_edges(chain.graph, after)) is None:
        return None
    spec = _layer(chain, after)
    if spec is None or type(spec) is not type(first) or _options(spec) != _options(first):
        return None
    return dropout, after, p


# --- building the fused chain ------------------------------------------------------------------


def _shift(local: str, offset: int, reverse: bool = False) -> str:
    """``weight_ih_l0`` -> ``weight_ih_l{0 + offset}`` (``_reverse`` kept, or added)."""
    match = _LAYER.match(local)
    if match is None:
        raise AssertionError(f"specchain bug: {local!r} is not a recurrent parameter name")
    tail = "_reverse" if reverse or match["reverse"] else ""
    return f"{match['name']}_l{int(match['layer']) + offset}{tail}"


def _build(template: _Recurrent, **changes: Any) -> NNModuleSpec:
    """``template``'s class with ``changes``, its parameters left for ``_apply`` to fill (zeros
    here: the initialisation stream does not move)."""
    config = template.config() | changes
    with without_init(2**62):
        return cast(NNModuleSpec, type(template)(**config))


def _twin(spec: NNModuleSpec) -> str:
    """``nn.LSTM(num_layers=2, bidirectional=True)``: what the fused node became."""
    defaults = {"num_layers": 1, "bidirectional": False, "dropout": 0.0}
    options = [f"{k}={getattr(spec, k)!r}" for k, d in defaults.items() if getattr(spec, k) != d]
    return f"nn.{spec.kind}({', '.join(options)})"


def _apply(chain: SpecChain, rewrite: _Rewrite) -> tuple[SpecChain, str]:
    """The chain with ``rewrite`` done, and the name of the new node."""
    graph = chain.graph.copy()
    incoming = [(u, dict(d)) for u, _, d in graph.in_edges(rewrite.first, data=True)]
    outgoing = [(v, dict(d)) for _, v, d in graph.out_edges(rewrite.last, data=True)]
    graph.remove_nodes_from(rewrite.removed)
    name = _name(rewrite.first, rewrite.spec, graph)
    params = {}
    for (node, local), new in rewrite.renamed.items():
        params[new] = chain.spec(node).params[local]
    if set(params) != set(rewrite.spec.params):
        raise AssertionError(
            f"specchain bug: fusion gave {sorted(params)}, {rewrite.spec.kind} declares "
            f"{sorted(rewrite.spec.params)}"
        )
    spec = rewrite.spec
    spec.params = {key: params[key] for key in spec.params}  # the declared order
    graph.add_node(name, spec=spec)
    for u, data in incoming:
        graph.add_edge(u, name, **data)
    for v, data in outgoing:
        graph.add_edge(name, v, **data)
    return SpecChain(graph, chain.in_type), name


def _name(first: str, spec: NNModuleSpec, graph: nx.MultiDiGraph) -> str:
    """The first layer's name without its layer number, unique in ``graph``."""
    base = re.sub(r"_?\d+$", "", first)
    if len(base) < 2:
        base = spec.default_name
    name, k = base, 1
    while name in graph:
        name, k = f"{base}_{k}", k + 1
    return name
