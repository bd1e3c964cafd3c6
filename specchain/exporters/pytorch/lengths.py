"""Which values of a graph carry a padded batch's lengths, for the generated ``forward``.

The engine lets lengths ride along at run time (``specchain.engine._run``); the exporter needs
the same answer before any data exists. Starting from the graph inputs that take lengths, it
follows the engine's rules node by node: a per-step layer passes its input's lengths to every
output that still has a time axis, a layer that takes lengths gives them to each output whose time
axis is the time axis of an input (``T`` in, ``T`` out: an attention decoder's output follows its
decoder inputs, not its source), and any other layer cannot take them.

A ``Carried`` mirrors a type: for a tensor, the name of the lengths variable it carries (or None);
for a tuple, a tuple of those.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import attrs

from specchain import graph as g
from specchain.chain import SpecChain
from specchain.exporters.pytorch import layout
from specchain.exporters.pytorch.emitters import ExportError
from specchain.exporters.pytorch.namespace import Namespace
from specchain.exporters.pytorch.naming import Names
from specchain.graph import INPUT
from specchain.padded import axes_for
from specchain.types import TIME, TensorType, TupleType, Type, role_axis

Carried: TypeAlias = "str | tuple[Carried, ...] | None"


def carried_names(carried: Carried) -> list[str]:
    """Every lengths variable in ``carried``, depth first, without repeats."""
    if isinstance(carried, tuple):
        return list(dict.fromkeys(n for item in carried for n in carried_names(item)))
    return [] if carried is None else [carried]


def flow(model: SpecChain, inputs: Carried) -> dict[str, tuple[Carried, Carried]]:
    """``{node: (what its input carries, what its output carries)}`` for a graph whose input
    carries ``inputs``; raises ``ExportError`` at a node that cannot take lengths."""
    out: dict[str, Carried] = {INPUT: inputs}
    result: dict[str, tuple[Carried, Carried]] = {}
    graph = model.graph
    for node in model.nodes:
        edges = g.in_edges(graph, node)
        pieces = [_select(out[src], index) for src, _, index in edges]
        received: Carried = pieces[0] if len(edges) == 1 and edges[0][1] is None else tuple(pieces)
        data = graph.nodes[node]
        out[node] = _through(model, node, received, data["in_type"], data["out_type"])
        result[node] = (received, out[node])
    return result


def _select(carried: Carried, index: g.Index) -> Carried:
    for i in index:
        if not isinstance(carried, tuple):
            return carried  # a padded tensor's lengths reach all of it
        carried = carried[i]
    return carried


def _through(
    model: SpecChain, node: str, received: Carried, in_type: Type, out_type: Type
) -> Carried:
    names = carried_names(received)
    if not names:
        return None
    spec = model.spec(node)
    if spec.takes_lengths:
        by_time = _by_time_symbol(received, in_type)
        return _assign(out_type, lambda t: by_time.get(_time_symbol(t)) if _has_time(t) else None)
    if not spec.acts_per_step(in_type):
        raise ExportError(
            f"node {node!r}: {spec.kind} acts across time steps and cannot take a padded batch "
            "with lengths; export the model without lengths"
        )
    if len(names) > 1:
        raise ExportError(
            f"node {node!r}: {spec.kind} joins padded batches with different lengths "
            f"({', '.join(names)}); give every input the same lengths"
        )
    return _assign(out_type, lambda t: names[0] if _has_time(t) else None)


def _assign(t: Type, pick: Callable[[TensorType], str | None]) -> Carried:
    if isinstance(t, TupleType):
        return tuple(_assign(item, pick) for item in t.items)
    return pick(t) if isinstance(t, TensorType) else None


def _has_time(t: TensorType) -> bool:
    return t.variadic or role_axis(t.dims, TIME) is not None


def _time_symbol(t: TensorType) -> object:
    axis = None if t.variadic else role_axis(t.dims, TIME)
    return None if axis is None else t.dims[axis]


def _by_time_symbol(carried: Carried, t: Type) -> dict[object, str]:
    """Time symbol -> the lengths variable of the input whose time axis it is."""
    if isinstance(carried, tuple) and isinstance(t, TupleType):
        found: dict[object, str] = {}
        for item, item_type in zip(carried, t.items, strict=False):
            found |= _by_time_symbol(item, item_type)
        return found
    if isinstance(carried, str) and isinstance(t, TensorType) and _has_time(t):
        return {_time_symbol(t): carried}
    return {}


# --- the lines of a node that takes lengths ------------------------------------------------------


@attrs.frozen
class PackedCall:
    """``nn.LSTM`` (or GRU, RNN) on a padded batch: its first argument packed with
    ``pack_padded_sequence``, its output padded back (zeros past each length, ``total_length``
    T), each value under its own name so that ``torch.jit.script`` sees one type per name::

        x_packed = nn.utils.rnn.pack_padded_sequence(x, x_lengths.cpu(), enforce_sorted=False)
        lstm_packed, _ = self.lstm(x_packed)
        lstm, _ = nn.utils.rnn.pad_packed_sequence(lstm_packed, total_length=x.size(0))
    """

    variable: str
    callee: str
    arguments: list[str]
    lengths: str
    in_type: Type
    indent: str

    def lines(self, drop_state: bool, suffix: str, names: Namespace) -> list[str]:
        x_type = self.in_type.items[0] if isinstance(self.in_type, TupleType) else self.in_type
        rank = x_type.rank if isinstance(x_type, TensorType) else None
        time, batch = axes_for(x_type, 3 if rank is None else rank)
        first = self.arguments[0]
        batch_first = ["batch_first=True"] if batch == 0 else []
        packed_in = names.create(f"{first}_packed")
        packed_out = names.create(f"{self.variable}_packed")
        rnn = "nn.utils.rnn"
        pack = [first, f"{self.lengths}.cpu()", *batch_first, "enforce_sorted=False"]
        pad = [packed_out, *batch_first, f"total_length={first}.size({time})"]
        lines = layout.call(packed_in, f"{rnn}.pack_padded_sequence", pack, self.indent)
        if drop_state:
            lines += layout.call(
                f"{packed_out}, _", self.callee, [packed_in, *self.arguments[1:]], self.indent
            )
            lines += layout.call(
                f"{self.variable}, _", f"{rnn}.pad_packed_sequence", pad, self.indent
            )
            if suffix:
                lines.append(f"{self.indent}{self.variable} = {self.variable}{suffix}")
            return lines
        state, padded = names.create(f"{self.variable}_state"), names.create(self.variable)
        lines += layout.call(
            f"{packed_out}, {state}", self.callee, [packed_in, *self.arguments[1:]], self.indent
        )
        lines += layout.call(f"{padded}, _", f"{rnn}.pad_packed_sequence", pad, self.indent)
        return [*lines, f"{self.indent}{self.variable} = ({padded}, {state}){suffix}"]


def output_lengths_argument(chain: SpecChain, names: Names) -> int | None:
    """The argument index whose lengths the model's output carries (a padded output), or
    None (the output is not padded, or carries no lengths)."""
    if not names.lengths:
        return None
    arity = len(chain.in_type.items) if isinstance(chain.in_type, TupleType) else 1
    given = tuple(names.lengths.get(i) for i in range(arity))
    carried = flow(chain, given if arity > 1 else given[0])
    edges = g.in_edges(chain.graph, g.OUTPUT)
    if len(edges) != 1 or edges[0][2]:
        return None
    name = carried[edges[0][0]][1]
    if not isinstance(name, str):
        return None
    return next(i for i, var in names.lengths.items() if var == name)
