"""Labels: every user string (node names, ``describe()`` texts, dims) goes through ``html_text``
or ``plain_text`` here, never straight into the DOT.

A node label is a list of ``Row``s (style, text) drawn as a small HTML-like table, or as escaped
plain lines with ``Options(html=False)``; an edge label is a list of ``EdgeRow``s (item name,
type text), one line per tuple item. A node name longer than ``MAX_NAME_LENGTH`` is shortened in
its label (``short_title``) and kept whole in the node's tooltip.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence

import graphviz

from specchain.exporters.graphviz.colors import MUTED, TEXT
from specchain.exporters.graphviz.options import Options
from specchain.spec import NNModuleSpec
from specchain.types import TensorType, TupleType, Type, format_dim

Row = tuple[str, str]  # (style, user text); style is "title", "kind", "meta" or "io"
EdgeRow = tuple[str | None, str | None]  # (item name, type text)

_HTML_ROW = {
    "title": '<font point-size="12"><b>{}</b></font>',
    "io": '<font point-size="11"><b>{}</b></font>',
    "kind": '<font color="' + TEXT + '">{}</font>',
    "meta": '<font point-size="9" color="' + MUTED + '">{}</font>',
}

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


def html_text(text: str) -> str:
    """Text for an HTML-like label: entities for ``& < > " '``, ``\\\\`` for a backslash (Graphviz
    expands ``\\N``, ``\\G``... even inside HTML labels) and ``<br/>`` for a newline. A line of
    only ``]`` or ``]]`` becomes ``&#93;`` entities: Graphviz 2.43 rejects it as a text run."""
    lines = html.escape(_visible(text), quote=True).replace("\\", "\\\\").split("\n")
    lines = [line.replace("]", "&#93;") if set(line) == {"]"} else line for line in lines]
    return '<br align="center"/>'.join(lines)


def plain_text(text: str) -> str:
    """Text for a quoted DOT string (an escString): ``\\\\``, ``\\"`` and ``\\n`` escapes, and
    ``&amp;`` for ``&`` (Graphviz decodes HTML entities in plain labels too). An empty line
    becomes one space: the WebAssembly Graphviz 0.1.x traps at random on empty label lines."""
    escaped = _visible(text).replace("&", "&amp;")
    escaped = escaped.replace("\\", "\\\\").replace('"', '\\"')
    return "\\n".join(line or " " for line in escaped.split("\n"))


# --- names --------------------------------------------------------------------------------------

MAX_NAME_LENGTH = 40  # characters of a node name drawn in a label; the tooltip has all of it


def short_name(name: str) -> str:
    """``name`` as drawn: at most ``MAX_NAME_LENGTH`` characters, a longer name keeping its
    start and its last 13 characters around an ellipsis (``encoder_block_…_layer_12``), so names
    that differ only at the end still differ."""
    if len(name) <= MAX_NAME_LENGTH:
        return name
    tail = MAX_NAME_LENGTH // 3
    return f"{name[: MAX_NAME_LENGTH - tail - 1]}…{name[-tail:]}"


def short_title(names: Sequence[str]) -> tuple[str, str | None]:
    """The title of a node drawn for ``names`` (one name, or the first and last of a repeated
    run, joined by `` … ``) with long names shortened, and its tooltip: the escaped full title
    when a name was shortened, else None. A backslash shows as ``⧵`` in the tooltip: Graphviz
    expands ``\\N``, ``\\G``... in node tooltips even when the backslash is escaped."""
    title = " … ".join(short_name(name) for name in names)
    full = " … ".join(names)
    if title == full:
        return title, None
    return title, graphviz.nohtml(plain_text(full.replace("\\", "\u29f5")))


# --- labels -----------------------------------------------------------------------------------


def node_label(rows: Sequence[Row], options: Options) -> str:
    """A node or cluster label: a small HTML table, or escaped plain lines."""
    if not options.html:
        return graphviz.nohtml(plain_text("\n".join(text for _, text in rows)))
    cells = "".join(
        f"<tr><td>{_HTML_ROW[style].format(html_text(text))}</td></tr>" for style, text in rows
    )
    return f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{cells}</table>>'


def edge_label(rows: Sequence[EdgeRow], options: Options) -> str | None:
    """One line per item: its name in italics (when it has one) and its type."""
    if not rows:
        return None
    if not options.html:
        lines = [" ".join(part for part in row if part) for row in rows]
        return graphviz.nohtml(plain_text("\n".join(lines)))
    lines = []
    for name, type_text in rows:
        parts = [f"<i>{html_text(name)}</i>"] if name else []
        if type_text:
            parts.append(html_text(type_text))
        lines.append(" ".join(parts))
    return "<" + "<br/>".join(lines) + ">"


# --- rows ---------------------------------------------------------------------------------------


def spec_rows(
    spec: NNModuleSpec, title: str, options: Options, shared: bool, repeat: int = 1
) -> list[Row]:
    """A spec's rows: ``title``, its kind with hyper-parameters, and a meta line with the repeat
    count ``×N`` and the parameter count (marked ``(shared)`` for weights of an earlier node)."""
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


def edge_rows(source_type: Type, index: tuple[int, ...], options: Options) -> list[EdgeRow]:
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
