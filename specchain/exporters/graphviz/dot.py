"""The DOT of a ``SpecChain``: one small function per job (graph, node, cluster, edge), and
``to_dot`` walking the chain, recursively into expanded composite specs.

Node ids come from graph names only through ``node_id`` (a sanitised name plus a hash of the
path: stable across runs, always a plain DOT id), never from object identity.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

import attrs
import graphviz

from specchain import graph as g
from specchain.chain import SpecChain
from specchain.exporters.graphviz.colors import EDGE, FONT, IO_COLORS, MUTED, TEXT, spec_palette
from specchain.exporters.graphviz.flow import DataFlow, HasDataFlow
from specchain.exporters.graphviz.labels import (
    Row,
    edge_label,
    edge_rows,
    node_label,
    short_title,
    spec_rows,
)
from specchain.exporters.graphviz.options import Options, make_options
from specchain.exporters.graphviz.repeats import Run, find_runs
from specchain.graph import INPUT, OUTPUT, PSEUDO
from specchain.inputs import Input, argument_inputs
from specchain.spec import NNModuleSpec
from specchain.types import Type

# --- public API -------------------------------------------------------------------------------


def to_dot(
    model: SpecChain | NNModuleSpec,
    show_shapes: bool = True,
    show_params: bool = True,
    show_dtype: bool = False,
    rankdir: str = "TB",
    expand: bool | int = False,
    *,
    collapse_repeats: bool = False,
    html: bool = True,
) -> graphviz.Digraph:
    """The diagram of ``model`` as a ``graphviz.Digraph`` (``.source`` is the DOT text).

    Args:
        model: a ``SpecChain`` or a single spec.
        show_shapes: label edges with their types, e.g. ``[T, B, 32]``.
        show_params: show each spec's parameter count.
        show_dtype: add the dtype to edge types (``[T, B, 32] float32``).
        rankdir: ``"TB"`` (top to bottom), ``"LR"``, ``"BT"`` or ``"RL"``.
        expand: draw composite specs (a 2-layer bidirectional LSTM) as clusters of their
            components: ``False`` never, ``True`` at every depth, an int ``n`` for ``n`` levels.
        collapse_repeats: draw a run of identical consecutive blocks once, marked ``×N``.
        html: HTML-like labels (bold names, small print); ``False`` gives plain labels for
            Graphviz builds without HTML support.
    """
    chain = SpecChain.of(model)
    options = make_options(
        chain, show_shapes, show_params, show_dtype, rankdir, expand, collapse_repeats, html
    )
    dot = _graph(options)
    _add_chain(dot, chain, (), options, level=0)
    return dot


def node_id(path: Sequence[str]) -> str:
    """The DOT id of the node at ``path`` (graph names from the top chain down, e.g.
    ``("lstm", "l0_reverse")``): ``n_`` + the sanitised names + a hash of the exact path.

    A plain identifier (letters, digits, ``_``), the same in every run, different for different
    paths, and never derived from object identity.
    """
    key = "\x1f".join(path).encode("utf-8", "surrogatepass")
    digest = hashlib.sha1(key, usedforsecurity=False).hexdigest()[:12]
    readable = "_".join(re.sub(r"[^A-Za-z0-9]+", "_", part).strip("_") for part in path)
    readable = re.sub(r"_+", "_", readable).strip("_")[:40]
    return f"n_{readable}_{digest}" if readable else f"n_{digest}"


def cluster_id(path: Sequence[str]) -> str:
    """The DOT id of the cluster drawn for the composite spec at ``path``."""
    return "cluster_" + node_id(path)


# --- graph, nodes, clusters, edges ------------------------------------------------------------


def _graph(options: Options) -> graphviz.Digraph:
    return graphviz.Digraph(
        name="specchain",
        graph_attr={
            "rankdir": options.rankdir,
            "fontname": FONT,
            "fontsize": "11",
            "nodesep": "0.3",
            "ranksep": "0.35",
            "pad": "0.25",
            "bgcolor": "white",
            "newrank": "true",
            "compound": "true",
        },
        node_attr={
            "shape": "box",
            "style": "rounded,filled",
            "fontname": FONT,
            "fontsize": "10",
            "fontcolor": TEXT,
            "margin": "0.14,0.06",
            "penwidth": "1.2",
        },
        edge_attr={
            "fontname": FONT,
            "fontsize": "9",
            "fontcolor": "#475569",
            "color": EDGE,
            "arrowsize": "0.7",
            "penwidth": "1.1",
        },
    )


def _add_io_node(dot: graphviz.Digraph, path: tuple[str, ...], options: Options, top: bool) -> None:
    """The model's input or output: an ellipse at the top level, a small dot in a cluster."""
    which = "input" if path[-1] == INPUT else "output"
    if top:
        fill, border = IO_COLORS
        text = node_label([("io", which)], options)
        dot.node(node_id(path), text, shape="ellipse", fillcolor=fill, color=border)
    else:
        dot.node(node_id(path), "", shape="point", width="0.07", color=MUTED)


def _add_input_node(
    dot: graphviz.Digraph, path: tuple[str, ...], spec: Input, title: str, options: Options
) -> None:
    """An ``Input``: drawn like the model's input, labelled with its name and its type (and
    ``+ lengths [B]`` for a padded batch)."""
    fill, border = IO_COLORS
    text = node_label([("io", title), ("meta", spec.describe())], options)
    dot.node(node_id(path), text, shape="ellipse", fillcolor=fill, color=border)


def _add_spec_node(
    dot: graphviz.Digraph,
    path: tuple[str, ...],
    spec: NNModuleSpec,
    rows: list[Row],
    options: Options,
    tooltip: str | None,
) -> None:
    """A spec drawn whole: a rounded box in its family's palette (``tooltip``: a long name)."""
    palette = spec_palette(spec)
    attributes = {"fillcolor": palette.fill, "color": palette.border, "tooltip": tooltip}
    dot.node(
        node_id(path),
        node_label(rows, options),
        **{k: v for k, v in attributes.items() if v is not None},
    )


def _add_cluster(
    dot: graphviz.Digraph,
    path: tuple[str, ...],
    spec: NNModuleSpec,
    inside: SpecChain | DataFlow,
    rows: list[Row],
    options: Options,
    level: int,
    tooltip: str | None,
) -> None:
    """A composite spec expanded: a rounded cluster holding the chain of its components, or
    the steps and links of its data flow."""
    palette = spec_palette(spec)
    with dot.subgraph(name=cluster_id(path)) as sub:
        if tooltip is not None:
            sub.attr(tooltip=tooltip)
        sub.attr(
            label=node_label(rows, options),
            style="rounded,filled",
            fillcolor=palette.cluster,
            color=palette.border,
            penwidth="1.2",
            labeljust="l",
            margin="10",
            fontsize="10",
        )
        if isinstance(inside, DataFlow):
            _add_flow(sub, inside, path, spec, options)
        else:
            _add_chain(sub, inside, path, options, level + 1)


def _add_flow(
    dot: graphviz.Digraph,
    flow: DataFlow,
    prefix: tuple[str, ...],
    owner: NNModuleSpec,
    options: Options,
) -> None:
    """A composite spec's ``DataFlow`` inside its cluster: a box per step (in its spec's
    colours, else the owner's), an edge per link, dashed and unranked for a value carried to
    the next time step."""
    for pseudo in PSEUDO:
        _add_io_node(dot, (*prefix, pseudo), options, top=False)
    for step in flow.steps:
        palette = spec_palette(step.spec if step.spec is not None else owner)
        meta = [step.note] if step.note else []
        if options.show_params and step.params:
            meta.append(f"{step.params:,} params")
        rows: list[Row] = [("title", step.name), ("kind", step.kind)]
        rows += [("meta", ", ".join(meta))] if meta else []
        dot.node(
            node_id((*prefix, step.name)),
            node_label(rows, options),
            fillcolor=palette.fill,
            color=palette.border,
        )
    for link in flow.links:
        shown = (link.what or None, (link.type_text if options.show_shapes else "") or None)
        attributes = {"label": edge_label([shown] if any(shown) else [], options)}
        if link.loop:
            attributes |= {"style": "dashed", "constraint": "false"}
        dot.edge(
            node_id((*prefix, link.tail)),
            node_id((*prefix, link.head)),
            **{k: v for k, v in attributes.items() if v is not None},
        )


def _add_repeat_frame(
    dot: graphviz.Digraph,
    chain: SpecChain,
    prefix: tuple[str, ...],
    run: Run,
    shared: set[str],
    options: Options,
    level: int,
) -> dict[str, _Ends]:
    """A dashed frame marked ``×N`` around the one drawn block of a repeated run."""
    endpoints = {}
    with dot.subgraph(name=cluster_id((*prefix, run.blocks[0][0], "×"))) as frame:
        frame.attr(
            label=node_label([("meta", f"×{run.count}")], options),
            style="rounded,dashed",
            color=MUTED,
            labeljust="r",
        )
        for member in run.blocks[0]:
            endpoints[member] = _add_member(
                frame, chain, prefix, member, run, shared, options, level
            )
    return endpoints


def _add_edge(
    dot: graphviz.Digraph,
    tail: _Ends,
    head: _Ends,
    source_type: Type,
    index: tuple[int, ...],
    options: Options,
    labelled: bool,
) -> None:
    """An edge, labelled with what it carries; it ends at the border of an expanded cluster
    (``lhead`` / ``ltail``) rather than crossing the cluster's label to its entry point."""
    rows = edge_rows(source_type, index, options) if labelled else []
    attributes = {"label": edge_label(rows, options), "ltail": tail.cluster, "lhead": head.cluster}
    dot.edge(tail.tail, head.head, **{k: v for k, v in attributes.items() if v is not None})


# --- a chain, recursively ---------------------------------------------------------------------


@attrs.frozen
class _Ends:
    """Where edges attach to a drawn spec: its box, or the entry and exit points of its cluster."""

    head: str  # DOT id edges into the spec go to
    tail: str  # DOT id edges out of the spec come from
    cluster: str | None = None

    @classmethod
    def box(cls, dot_id: str) -> _Ends:
        return cls(dot_id, dot_id)


def _add_chain(
    dot: graphviz.Digraph, chain: SpecChain, prefix: tuple[str, ...], options: Options, level: int
) -> None:
    """Nodes, clusters and edges of ``chain``, whose node paths start with ``prefix``."""
    top = not prefix
    runs = find_runs(chain) if options.collapse_repeats else []
    hidden = {n for run in runs for block in run.blocks[1:] for n in block}
    tail_of = {run.blocks[-1][-1]: run.blocks[0][-1] for run in runs}
    first_of = {run.blocks[0][0]: run for run in runs}
    shared = _shared_nodes(chain)
    endpoints: dict[str, _Ends] = {}
    named = argument_inputs(chain)  # drawn as the inputs themselves: no edge from "input"
    for pseudo in PSEUDO:
        if pseudo == INPUT and set(chain.graph.successors(INPUT)) <= set(named):
            continue
        _add_io_node(dot, (*prefix, pseudo), options, top)
        endpoints[pseudo] = _Ends.box(node_id((*prefix, pseudo)))
    order = _drawing_order(chain)
    for node in order:
        if node in hidden:
            continue
        run = first_of.get(node)
        if run is not None and len(run.blocks[0]) > 1:
            endpoints.update(_add_repeat_frame(dot, chain, prefix, run, shared, options, level))
        elif node not in endpoints:
            endpoints[node] = _add_member(dot, chain, prefix, node, run, shared, options, level)
    if len(named) > 1:  # the model's inputs side by side, as its arguments are
        with dot.subgraph() as inputs:
            inputs.attr(rank="same")
            for node in named:
                inputs.node(endpoints[node].head)
    position = {n: i for i, n in enumerate([INPUT, *order, OUTPUT])}
    edges = sorted(
        chain.graph.edges(keys=True, data=True),
        key=lambda e: (
            position[e[1]],
            -1 if e[3]["port"] is None else e[3]["port"],
            position[e[0]],
            e[2],
        ),
    )
    for u, v, _, data in edges:
        if v in hidden or (u == INPUT and v in named):
            continue
        shown_u = tail_of.get(u, u)
        labelled = top or (u != INPUT and v != OUTPUT)
        source_type = chain.graph.nodes[u]["out_type"]
        _add_edge(
            dot,
            endpoints[shown_u],
            endpoints[v],
            source_type,
            data["index"],
            options,
            labelled,
        )


def _add_member(
    dot: graphviz.Digraph,
    chain: SpecChain,
    prefix: tuple[str, ...],
    node: str,
    run: Run | None,
    shared: set[str],
    options: Options,
    level: int,
) -> _Ends:
    """Draw one spec node: a box, or a cluster when expanded."""
    spec = chain.spec(node)
    path = (*prefix, node)
    names, repeat = [node], 1
    if run is not None:
        names.append(run.blocks[-1][run.blocks[0].index(node)])
        repeat = run.count if len(run.blocks[0]) == 1 else 1
    title, tooltip = short_title(names)
    if isinstance(spec, Input):
        _add_input_node(dot, path, spec, title, options)
        return _Ends.box(node_id(path))
    rows = spec_rows(spec, title, options, node in shared, repeat)
    expanded = options.depth is None or level < options.depth
    inside: SpecChain | DataFlow | None = None
    if expanded:
        inside = spec.data_flow() if isinstance(spec, HasDataFlow) else spec.components()
    if inside is None:
        _add_spec_node(dot, path, spec, rows, options, tooltip)
        return _Ends.box(node_id(path))
    _add_cluster(dot, path, spec, inside, rows, options, level, tooltip)
    return _Ends(node_id((*path, INPUT)), node_id((*path, OUTPUT)), cluster_id(path))


def _drawing_order(chain: SpecChain) -> list[str]:
    """Spec nodes in reading order: a depth-first walk back from the output taking each node's
    inputs by port, so item 0 of a merge (the forward lane) is drawn before item 1."""
    graph = chain.graph
    order: list[str] = []
    seen = set(PSEUDO)

    def inputs(node: str) -> Iterator[str]:
        return (u for u, _, _ in g.in_edges(graph, node))

    stack = [(OUTPUT, inputs(OUTPUT))]
    while stack:
        node, pending = stack[-1]
        for u in pending:
            if u not in seen:
                seen.add(u)
                stack.append((u, inputs(u)))
                break
        else:
            stack.pop()
            if node != OUTPUT:
                order.append(node)
    return order + [n for n in chain.nodes if n not in seen]


def _shared_nodes(chain: SpecChain) -> set[str]:
    """Nodes whose parameters belong to an earlier node (weight sharing)."""
    owners = {node for node, _ in chain.parameter_owners().values()}
    return {n for n in chain.nodes if chain.spec(n).params and n not in owners}
