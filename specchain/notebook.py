"""Jupyter display of a ``SpecChain`` (``SpecChain._repr_html_``): the diagram as inline SVG
above the summary table, like Keras' ``plot_model`` and torchview show inline.

The diagram comes from ``graphviz.svg``: the system ``dot`` when present, else the pip-installable
WebAssembly Graphviz. With neither, or when drawing fails, the display is the summary table alone
with a one-line note saying why and what to install: a notebook cell never shows a traceback
for a model that works.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from specchain.types import SpecError

if TYPE_CHECKING:
    from specchain.chain import SpecChain

NOTE_STYLE = "color:#64748b;font-size:smaller"


def chain_html(chain: SpecChain) -> str:
    """HTML of ``chain``: ``<div>`` holding the inline SVG diagram (or a note saying why there
    is none) and the summary table in a ``<pre>``; every model string is escaped."""
    from specchain.exporters import graphviz

    try:
        drawing = graphviz.svg(chain)
        note = None if drawing is not None else _no_graphviz_note()
    except SpecError as err:  # RenderError: Graphviz failed on this diagram
        drawing, note = None, f"no diagram: {err}"
    parts = ['<div class="specchain">']
    if drawing is not None:
        parts.append(f"<div>{drawing}</div>")
    else:
        parts.append(f'<p style="{NOTE_STYLE}">{html.escape(str(note))}</p>')
    parts.append(f"<pre>{html.escape(chain.summary())}</pre>")
    parts.append("</div>")
    return "\n".join(parts)


def _no_graphviz_note() -> str:
    from specchain.exporters.graphviz import INSTALL_DOT, INSTALL_WASM

    return (
        f"no diagram: no Graphviz found; install the WebAssembly one (`{INSTALL_WASM}`) or the "
        f"system one (`{INSTALL_DOT}`) to see it here"
    )
