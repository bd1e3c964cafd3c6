"""Graphviz diagrams of a ``SpecChain``: ``to_dot`` builds the DOT, ``render`` draws it.

    from specchain.exporters import graphviz
    graphviz.render(model, "model.svg")                  # svg / png / pdf / dot by suffix
    graphviz.render(model, "model.png", dpi=300)         # PNG resolution (default 192)
    graphviz.svg(model)                                  # SVG text to inline (None: no Graphviz)
    graphviz.to_dot(model, expand=True).source           # the DOT text

Each spec is a rounded box coloured by the family its class declares
(``class LSTM(NNModuleSpec, family="recurrent")``; a user family gets a stable colour of its own,
a class without one is grey) showing its name, kind with key hyper-parameters
(``spec.describe()``) and parameter count. Edges carry the types with symbolic dims
(``[T, B, 32]``) and tuple items by name (``output``, ``h_n``). The model's input and output are
ellipses. A composite spec (a stacked or bidirectional LSTM) is one box, or a cluster of its
``components()`` with ``expand``.

One module per concern: ``options`` (what is drawn), ``colors`` (family palettes), ``labels``
(escaping of every user string, node and edge labels), ``repeats`` (``collapse_repeats``),
``dot`` (graph, nodes, clusters, edges, ``to_dot``) and ``backends`` (system ``dot``, WebAssembly
Graphviz, ``render``).
"""

from specchain.exporters.graphviz.backends import (
    BACKENDS,
    FORMATS,
    INSTALL_DOT,
    INSTALL_WASM,
    PNG_DPI,
    GraphvizNotFound,
    RenderError,
    find_dot,
    load_wasm,
    render,
    svg,
    wasm_supports_html,
)
from specchain.exporters.graphviz.colors import (
    DEFAULT_PALETTE,
    EXTRA_PALETTES,
    FAMILY_COLORS,
    Palette,
    family_palette,
)
from specchain.exporters.graphviz.dot import cluster_id, node_id, to_dot
from specchain.exporters.graphviz.options import RANKDIRS, Options
from specchain.exporters.graphviz.repeats import MAX_PERIOD

__all__ = [
    "BACKENDS",
    "DEFAULT_PALETTE",
    "EXTRA_PALETTES",
    "FAMILY_COLORS",
    "FORMATS",
    "INSTALL_DOT",
    "INSTALL_WASM",
    "MAX_PERIOD",
    "PNG_DPI",
    "RANKDIRS",
    "GraphvizNotFound",
    "Options",
    "Palette",
    "RenderError",
    "cluster_id",
    "family_palette",
    "find_dot",
    "load_wasm",
    "node_id",
    "render",
    "svg",
    "to_dot",
    "wasm_supports_html",
]
