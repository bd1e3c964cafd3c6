"""SpecChain composition, names, types, lint, parameters, summary and casting."""

from __future__ import annotations

import re
from typing import Any

import networkx as nx
import numpy as np
import pytest

import specchain as sc
from specchain.graph import INPUT, OUTPUT
from specchain.lint import lint_graph
from specchain.modules import (
    LSTM,
    Add,
    Concat,
    Identity,
    LastStep,
    Linear,
    Reverse,
    Select,
    Tanh,
    TimeDistributed,
)
from specchain.types import ShapeError, SpecError, TensorType, TupleType, Type


def bilstm_like() -> sc.SpecChain:
    """The design's bidirectional shape, with Linear standing in for the LSTMs."""
    return (
        sc.branch(Linear(8, 16), Reverse(axis=0) >> Linear(8, 16) >> Reverse())
        >> Concat()
        >> Linear(32, 4)
    )


def edge_list(chain: sc.SpecChain) -> list[tuple[str, str, int | None, tuple[int, ...], str]]:
    return sorted(
        (u, v, d["port"], d["index"], str(d["type"])) for u, v, d in chain.graph.edges(data=True)
    )


# --- composition --------------------------------------------------------------------------------


def test_spec_rshift_spec_is_a_chain() -> None:
    m = Linear(8, 16) >> Tanh()
    assert isinstance(m, sc.SpecChain)
    assert m.nodes == ["linear", "tanh"]
    assert m.in_type == TensorType(("...", 8))
    assert m.out_type == TensorType(("...", 16))


def test_rshift_works_on_specs_and_chains_in_every_combination() -> None:
    a, b, c, d = Linear(8, 8), Tanh(), Linear(8, 4), Tanh()
    chains = [
        a >> b >> c >> d,
        (a >> b) >> (c >> d),
        a >> (b >> (c >> d)),
        (a >> b >> c) >> d,
        sc.serial(a, b, c, d),
        sc.serial(a >> b, c >> d),
    ]
    for m in chains:
        assert m.nodes == ["linear", "tanh", "linear_1", "tanh_1"]
        assert [m.spec(n) for n in m.nodes] == [a, b, c, d]
        assert m.out_type == TensorType(("...", 4))


def test_composition_does_not_change_its_parts() -> None:
    left = Linear(8, 8) >> Tanh()
    before = edge_list(left)
    _ = left >> Linear(8, 2)
    assert left.nodes == ["linear", "tanh"]
    assert edge_list(left) == before


def test_serial_matches_rshift_on_graph_and_output(rng: np.random.Generator) -> None:
    specs = [Reverse(axis=0), Linear(8, 6), Tanh(), Linear(6, 6), Reverse(), Linear(6, 2)]
    by_shift = specs[0] >> specs[1]
    for s in specs[2:]:
        by_shift = by_shift >> s
    by_serial = sc.serial(*specs)
    assert by_serial.nodes == by_shift.nodes
    assert edge_list(by_serial) == edge_list(by_shift)
    assert by_serial.in_type == by_shift.in_type == TensorType(("T", "B", 8))
    x = rng.standard_normal((4, 3, 8)).astype(np.float32)
    np.testing.assert_array_equal(by_serial(x), by_shift(x))


def test_serial_of_a_single_spec() -> None:
    m = sc.serial(Linear(3, 2))
    assert m.nodes == ["linear"]
    assert m.out_type == TensorType(("...", 2))


def test_serial_and_branch_need_parts() -> None:
    with pytest.raises(SpecError, match=r"serial\(\) needs at least one spec or chain"):
        sc.serial()
    with pytest.raises(SpecError, match=r"branch\(\) needs at least one spec or chain"):
        sc.branch()
    with pytest.raises(SpecError, match=r"parallel\(\) needs at least one spec or chain"):
        sc.parallel()


@pytest.mark.parametrize(
    "build",
    [
        lambda: Linear(2, 2) >> 3,
        lambda: 3 >> (Linear(2, 2) >> Tanh()),
        lambda: sc.serial(Linear(2, 2), "tanh"),
        lambda: sc.branch(Linear(2, 2), None),
        lambda: sc.parallel(np.zeros(2)),
    ],
)
def test_composing_a_non_spec_is_a_type_error(build: object) -> None:
    with pytest.raises(TypeError, match="expected an NNModuleSpec or a SpecChain, got"):
        build()  # type: ignore[operator]


def test_branch_feeds_one_input_to_every_part() -> None:
    m = sc.branch(Linear(8, 2), Linear(8, 3))
    assert m.nodes == ["linear", "linear_1"]
    assert m.in_type == TensorType(("...", 8))
    assert m.out_type == TupleType([TensorType(("...", 2)), TensorType(("...", 3))])
    assert sorted(u for u, v in m.graph.edges() if u == INPUT) == [INPUT, INPUT]


def test_branch_unifies_the_inputs_of_its_parts() -> None:
    m = sc.branch(Reverse(axis=0) >> Linear(8, 2), Linear(8, 3))
    assert m.in_type == TensorType(("T", "B", 8))


def test_branch_refuses_parts_with_conflicting_inputs() -> None:
    msg = "branch part 1 expects input [..., 9], but earlier parts expect [T, B, 8]: "
    with pytest.raises(ShapeError, match=re.escape(msg) + "feature size 8 != 9"):
        sc.branch(Reverse(axis=0) >> Linear(8, 4), Linear(9, 4))


def test_parallel_maps_tuple_items_through_parts(rng: np.random.Generator) -> None:
    m = sc.parallel(Reverse(axis=0) >> Linear(8, 2), Reverse(axis=0) >> Linear(3, 3)) >> Concat()
    assert m.in_type == TupleType([TensorType(("T", "B", 8)), TensorType(("T", "B", 3))])
    assert m.out_type == TensorType(("T", "B", 5))
    x = (rng.standard_normal((5, 2, 8)), rng.standard_normal((5, 2, 3)))
    m.to(np.float64)
    y = m(x)
    left = m.spec("linear")
    right = m.spec("linear_1")
    expected_left = x[0][::-1] @ left.params["weight"].T + left.params["bias"]
    expected_right = x[1][::-1] @ right.params["weight"].T + right.params["bias"]
    np.testing.assert_allclose(y, np.concatenate([expected_left, expected_right], axis=-1))


def test_merge_after_branch_gets_ported_edges() -> None:
    m = bilstm_like()
    ports = sorted(d["port"] for _, v, d in m.graph.edges(data=True) if v == "concat")
    assert ports == [0, 1]
    assert m.graph.nodes["concat"]["in_type"] == TupleType(
        [TensorType(("T", "B", 16)), TensorType(("T", "B", 16))]
    )


# --- node names ---------------------------------------------------------------------------------


def test_node_names_are_deterministic_snake_case() -> None:
    m = bilstm_like()
    assert m.nodes == ["linear", "reverse", "linear_1", "reverse_1", "concat", "linear_2"]
    assert bilstm_like().nodes == m.nodes
    assert (Reverse(axis=0) >> TimeDistributed(Linear(8, 2)) >> LastStep()).nodes == [
        "reverse",
        "time_distributed",
        "last_step",
    ]


def test_user_names_are_used() -> None:
    m = Linear(8, 8, name="encoder") >> Tanh(name="act") >> Linear(8, 2, name="head")
    assert m.nodes == ["encoder", "act", "head"]
    assert list(m.named_parameters()) == [
        "encoder.weight",
        "encoder.bias",
        "head.weight",
        "head.bias",
    ]


def test_user_names_and_default_names_coexist() -> None:
    m = Linear(4, 4, name="linear") >> Linear(4, 4) >> Linear(4, 4)
    assert m.nodes == ["linear", "linear_1", "linear_2"]


def test_two_different_specs_with_one_explicit_name_are_refused() -> None:
    msg = "two different specs are both named 'enc'; give one of them another name="
    with pytest.raises(SpecError, match=re.escape(msg)):
        Linear(4, 4, name="enc") >> Linear(4, 4, name="enc")
    with pytest.raises(SpecError, match=re.escape(msg)):
        sc.branch(Linear(4, 4, name="enc"), Tanh() >> Linear(4, 4, name="enc"))


@pytest.mark.parametrize("name", ["<input>", "<output>"])
def test_reserved_names_are_refused(name: str) -> None:
    with pytest.raises(SpecError, match="reserved"):
        Linear(2, 2, name=name)


@pytest.mark.parametrize(
    ("name", "char", "index"), [("a\ud800b", "\\ud800", 1), ("\udfff", "\\udfff", 0)]
)
def test_lone_surrogates_in_names_are_refused(name: str, char: str, index: int) -> None:
    msg = (
        f"has a lone surrogate '{char}' at index {index}, which no UTF-8 file (saved model, "
        "export) can hold; decode the text that made it with errors='replace', or choose "
        "another name"
    )
    with pytest.raises(SpecError, match=re.escape(msg)):
        Linear(2, 2, name=name)


def test_a_spec_used_twice_gets_two_nodes_and_shares_parameters() -> None:
    lin = Linear(4, 4, name="lin")
    m = lin >> Tanh() >> lin
    assert m.nodes == ["lin", "tanh", "lin_1"]
    assert m.spec("lin") is m.spec("lin_1") is lin
    assert list(m.named_parameters()) == ["lin.weight", "lin.bias"]
    assert m.named_parameters()["lin.weight"] is lin.params["weight"]
    assert m.num_params == 20


def test_an_unnamed_spec_used_twice_is_numbered() -> None:
    lin = Linear(4, 4)
    m = lin >> lin >> Linear(4, 4)
    assert m.nodes == ["linear", "linear_1", "linear_2"]
    assert m.spec("linear") is m.spec("linear_1")
    assert m.spec("linear_2") is not lin
    assert list(m.named_parameters()) == [
        "linear.weight",
        "linear.bias",
        "linear_2.weight",
        "linear_2.bias",
    ]


def test_composing_a_chain_keeps_its_names() -> None:
    # enc's lexicographic order visits 'linear_1' (b) before 'linear' (a): composing enc must not
    # rename them, or enc.state_dict() would load the wrong weights into enc >> head.
    a, b = Linear(8, 4), Linear(8, 4)
    enc = sc.branch(Tanh() >> a, b)
    assert enc.spec("linear") is a and enc.spec("linear_1") is b
    model = enc >> Add() >> Linear(4, 2)
    assert model.spec("linear") is a and model.spec("linear_1") is b
    assert model.spec("linear_2").out_features == 2
    state = enc.state_dict()
    model.load_state_dict(state, strict=False)
    for key, value in state.items():
        np.testing.assert_array_equal(model.named_parameters()[key], value)


def test_clashing_names_of_a_composed_chain_are_renumbered() -> None:
    part = Linear(4, 4) >> Tanh()
    m = part >> part
    assert m.nodes == ["linear", "tanh", "linear_1", "tanh_1"]
    assert m.spec("linear") is m.spec("linear_1")
    assert list(m.named_parameters()) == ["linear.weight", "linear.bias"]


def test_unknown_node_name_lists_the_nodes() -> None:
    m = Reverse(axis=0) >> Linear(8, 4)
    with pytest.raises(
        KeyError, match=re.escape("no node named 'nope'; nodes are ['reverse', 'linear']")
    ):
        m.spec("nope")


# --- types ----------------------------------------------------------------------------------


def test_symbolic_dims_propagate_to_the_input_type() -> None:
    m = Reverse(axis=0) >> Linear(8, 4)
    assert m.in_type == TensorType(("T", "B", 8))
    assert str(m.in_type) == "[T, B, 8]"
    assert m.out_type == TensorType(("T", "B", 4))


def test_types_of_a_many_to_one_chain() -> None:
    m = Reverse(axis=0) >> LastStep() >> Linear(8, 3)
    assert str(m.in_type) == "[T, B, 8]"
    assert str(m.out_type) == "[B, 3]"
    assert str(m.graph.nodes["last_step"]["out_type"]) == "[B, 8]"


def test_types_of_the_bidirectional_shape() -> None:
    m = bilstm_like()
    assert repr(m.in_type) == "TensorType(T, B, 8)"
    assert repr(m.out_type) == "TensorType(T, B, 4)"


def test_linear_first_keeps_leading_dims_open() -> None:
    m = Linear(8, 4) >> Tanh()
    assert str(m.in_type) == "[..., 8]"
    assert str(m.out_type) == "[..., 4]"


def test_time_distributed_types() -> None:
    m = Reverse(axis=0) >> TimeDistributed(Linear(8, 3))
    assert str(m.out_type) == "[T, B, 3]"


def test_select_picks_a_branch_type() -> None:
    m = sc.branch(Reverse(axis=0) >> Linear(8, 2), Reverse(axis=0) >> Linear(8, 3)) >> Select(1)
    assert str(m.out_type) == "[T, B, 3]"


def test_graph_schema_attributes() -> None:
    m = bilstm_like()
    assert isinstance(m.graph, nx.MultiDiGraph)
    assert INPUT in m.graph and OUTPUT in m.graph
    assert "out_type" in m.graph.nodes[INPUT] and "in_type" not in m.graph.nodes[INPUT]
    assert "in_type" in m.graph.nodes[OUTPUT] and "out_type" not in m.graph.nodes[OUTPUT]
    for node in m.nodes:
        data = m.graph.nodes[node]
        assert isinstance(data["spec"], sc.NNModuleSpec)
        assert {"in_type", "out_type"} <= set(data)
    for u, _, d in m.graph.edges(data=True):
        assert set(d) == {"port", "index", "type"}
        assert d["type"] == m.graph.nodes[u]["out_type"]


# --- the composition error message (pinned) ---------------------------------------------------


def test_feature_size_mismatch_message_is_pinned() -> None:
    msg = (
        "cannot connect 'linear' (out [..., 16]) to 'linear_1' (expects [..., 32]): "
        "feature size 16 != 32"
    )
    with pytest.raises(ShapeError, match="^" + re.escape(msg) + "$"):
        Linear(8, 16) >> Linear(32, 4)


def test_mismatch_message_shows_symbolic_dims() -> None:
    msg = (
        "cannot connect 'linear' (out [T, B, 16]) to 'linear_1' (expects [..., 32]): "
        "feature size 16 != 32"
    )
    with pytest.raises(ShapeError, match="^" + re.escape(msg) + "$"):
        Reverse(axis=0) >> Linear(8, 16) >> Linear(32, 4)


def test_mismatch_message_names_the_merge_inputs() -> None:
    with pytest.raises(ShapeError, match=re.escape("cannot connect 'linear', 'linear_1' (out")):
        sc.branch(Reverse(axis=0) >> Linear(8, 4), Reverse(axis=0) >> Linear(8, 5)) >> Add()


def test_mismatch_message_in_the_middle_of_serial() -> None:
    msg = "cannot connect 'tanh' (out [..., 6]) to 'linear_1' (expects [..., 5])"
    with pytest.raises(ShapeError, match=re.escape(msg)):
        sc.serial(Linear(4, 6), Tanh(), Linear(5, 2))


# --- lint -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        bilstm_like,
        lambda: Linear(4, 4) >> Tanh(),
        lambda: sc.serial(*[Linear(3, 3) for _ in range(20)]),
        lambda: sc.parallel(Reverse(axis=0) >> Linear(8, 2), Identity()),
        lambda: sc.branch(Identity(), Identity()) >> Add(),
        lambda: sc.branch(Reverse(axis=0) >> Linear(8, 2), Reverse() >> Linear(8, 3)) >> Select(0),
    ],
)
def test_lint_passes_on_built_graphs(build: object) -> None:
    build().lint()  # type: ignore[operator]


def lint_message(chain: sc.SpecChain | tuple[nx.MultiDiGraph, Type]) -> str:
    """Lint a chain, or a (graph, input type) pair edited by hand."""
    with pytest.raises(sc.LintError) as info:
        if isinstance(chain, sc.SpecChain):
            chain.lint()
        else:
            lint_graph(*chain)
    return str(info.value)


def editable(chain: sc.SpecChain) -> tuple[nx.MultiDiGraph, Type]:
    """A mutable copy of a chain's graph, with its input type, for lint tests."""
    return chain.graph.copy(), chain.in_type


def test_lint_reports_a_cycle() -> None:
    m = Linear(4, 4) >> Tanh() >> Linear(4, 2)
    graph, in_type = editable(m)
    graph.add_edge("linear_1", "linear", port=None, index=())
    message = lint_message((graph, in_type))
    assert message.startswith("lint found problems:")
    assert "the graph has a cycle" in message
    assert "('linear_1', 'linear', 0)" in message


def test_lint_reports_a_bad_port() -> None:
    m = Linear(4, 4) >> Tanh() >> Linear(4, 2)
    graph, in_type = editable(m)
    for _, v, d in graph.edges(data=True):
        if v == "tanh":
            d["port"] = 2
    assert "node 'tanh' has ports [2], expected 0..0" in lint_message((graph, in_type))


def test_lint_reports_a_node_without_a_spec() -> None:
    m = Linear(4, 4) >> Tanh() >> Linear(4, 2)
    graph, in_type = editable(m)
    graph.nodes["tanh"]["spec"] = None
    assert "node 'tanh' has no spec (got None)" in lint_message((graph, in_type))
    del graph.nodes["tanh"]["spec"]
    assert "node 'tanh' has no spec (got None)" in lint_message((graph, in_type))


def test_lint_reports_a_stale_stored_type() -> None:
    m = Linear(4, 4) >> Tanh() >> Linear(4, 2)
    graph, in_type = editable(m)
    graph.nodes["tanh"]["out_type"] = TensorType(("T", 4))
    message = lint_message((graph, in_type))
    assert "node 'tanh' stores out_type [T, 4], inference gives [..., 4]" in message


def test_lint_reports_a_stale_edge_type() -> None:
    m = Linear(4, 4) >> Tanh() >> Linear(4, 2)
    graph, in_type = editable(m)
    for _, v, d in graph.edges(data=True):
        if v == "tanh":
            d["type"] = TensorType((9,))
    assert "edge 'linear' -> 'tanh' stores type [9], inference gives [..., 4]" in lint_message(
        (graph, in_type)
    )


def test_lint_lists_every_problem_at_once() -> None:
    m = Linear(4, 4) >> Tanh() >> Linear(4, 2)
    graph, in_type = editable(m)
    graph.nodes["linear_1"]["spec"] = "not a spec"
    for _, v, d in graph.edges(data=True):
        if v == "tanh":
            d["port"] = 1
    graph.add_node("orphan", spec=Tanh())
    graph.add_edge("linear", "orphan", port=None, index=())
    graph.add_edge("linear", "linear_1", port=None, index=())
    lines = lint_message((graph, in_type)).splitlines()[1:]
    assert [line.strip() for line in lines] == [
        "node 'linear_1' has no spec (got 'not a spec')",
        "node 'orphan' does not contribute to the output",
        "node 'tanh' has ports [1], expected 0..0",
        "node 'linear_1' has 2 whole-input edges, expected one or ports 0..k-1",
    ]


def test_lint_reports_a_type_error_introduced_by_hand() -> None:
    m = Reverse(axis=0) >> Linear(8, 4) >> Tanh()
    m.spec("linear").in_features = 5  # hyper-parameters edited behind the graph's back
    message = lint_message(m)
    assert "types do not check: cannot connect 'reverse'" in message
    assert "feature size 8 != 5" in message


def test_lint_reports_a_missing_pseudo_node() -> None:
    m = Linear(4, 4) >> Tanh()
    graph, in_type = editable(m)
    graph.remove_node(OUTPUT)
    message = lint_message((graph, in_type))
    assert "the pseudo-node '<output>' is missing" in message
    assert "node 'tanh' does not contribute to the output" in message


def test_lint_error_is_a_spec_error() -> None:
    assert issubclass(sc.LintError, SpecError)


# --- parameters -----------------------------------------------------------------------------


def test_named_parameters_use_node_and_pytorch_names() -> None:
    m = bilstm_like()
    params = m.named_parameters()
    assert list(params) == [
        "linear.weight",
        "linear.bias",
        "linear_1.weight",
        "linear_1.bias",
        "linear_2.weight",
        "linear_2.bias",
    ]
    assert params["linear_2.weight"].shape == (4, 32)
    assert params["linear_2.bias"].shape == (4,)
    assert params["linear.weight"] is m.spec("linear").params["weight"]  # live, not copies
    assert all(p.dtype == np.float32 for p in params.values())


def test_parameterless_chain() -> None:
    m = Reverse(axis=0) >> Tanh()
    assert m.named_parameters() == {}
    assert m.num_params == 0
    assert m.dtype is None


def test_num_params_counts_shared_specs_once() -> None:
    lin = Linear(8, 8)
    m = lin >> Tanh() >> lin >> Linear(8, 2)
    assert m.num_params == (8 * 8 + 8) + (8 * 2 + 2)
    assert bilstm_like().num_params == 2 * (8 * 16 + 16) + (32 * 4 + 4)


def test_time_distributed_shares_the_wrapped_parameters() -> None:
    inner = Linear(8, 3)
    m = Reverse(axis=0) >> TimeDistributed(inner)
    assert list(m.named_parameters()) == ["time_distributed.weight", "time_distributed.bias"]
    assert m.named_parameters()["time_distributed.weight"] is inner.params["weight"]
    assert m.num_params == 27


# --- summary ----------------------------------------------------------------------------------


def summary_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    return rows


def test_summary_table() -> None:
    lin = Linear(8, 8, name="lin")
    m = (
        Reverse(axis=0)
        >> lin
        >> Tanh()
        >> lin
        >> TimeDistributed(Linear(8, 64))
        >> LastStep()
        >> Linear(64, 3, bias=False)
    )
    text = m.summary()
    lines = text.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["node", "kind", "input", "output", "params"]
    rows = summary_rows(text)
    assert rows["(input)"] == ["[T, B, 8]"]
    assert rows["reverse"] == ["Reverse(axis=0)", "[T, B, 8]", "[T, B, 8]", "0"]
    assert rows["lin"] == ["Linear(8 -> 8)", "[T, B, 8]", "[T, B, 8]", "72"]
    assert rows["tanh"] == ["Tanh", "[T, B, 8]", "[T, B, 8]", "0"]
    assert rows["lin_1"] == ["Linear(8 -> 8)", "[T, B, 8]", "[T, B, 8]", "shared (72)"]
    assert rows["time_distributed"] == [
        "TimeDistributed(Linear(8 -> 64))",
        "[T, B, 8]",
        "[T, B, 64]",
        "576",
    ]
    assert rows["last_step"] == ["LastStep", "[T, B, 64]", "[B, 64]", "0"]
    assert rows["linear"] == ["Linear(64 -> 3, no bias)", "[B, 64]", "[B, 3]", "192"]
    assert "total parameters: 840" in lines
    assert lines[-1] == "input: [T, B, 8]  ->  output: [B, 3]"
    assert m.num_params == 840 == 72 + 576 + 192


def test_summary_rows_follow_execution_order_and_totals_use_separators() -> None:
    m = bilstm_like() >> Linear(4, 500)
    lines = m.summary().splitlines()
    names = [line.split()[0] for line in lines[3 : 3 + len(m.nodes)]]
    assert names == m.nodes
    assert f"total parameters: {m.num_params:,}" in lines
    assert m.num_params == 420 + 4 * 500 + 500
    assert "total parameters: 2,920" in lines


def test_summary_shows_tuple_types_of_merges() -> None:
    rows = summary_rows(bilstm_like().summary())
    assert rows["concat"] == ["Concat(axis=-1)", "([T, B, 16], [T, B, 16])", "[T, B, 32]", "0"]


# --- casting --------------------------------------------------------------------------------


def test_to_float64_casts_every_parameter(rng: np.random.Generator) -> None:
    lin = Linear(8, 8)
    m = Reverse(axis=0) >> lin >> Tanh() >> lin >> TimeDistributed(Linear(8, 3))
    assert m.dtype == np.float32
    before = {k: v.copy() for k, v in m.named_parameters().items()}
    assert m.to(np.float64) is m
    assert m.dtype == np.float64
    for key, value in m.named_parameters().items():
        assert value.dtype == np.float64, key
        np.testing.assert_array_equal(value, before[key].astype(np.float64))
    assert lin.params["weight"].dtype == np.float64
    assert m.spec("linear_1") is lin  # still shared after the cast
    assert m.spec("linear") is m.spec("linear_1")
    y = m(rng.standard_normal((3, 2, 8)))
    assert y.dtype == np.float64


def test_to_accepts_dtype_names_and_goes_back() -> None:
    m = Linear(3, 2) >> Tanh()
    m.to("float64")
    assert m.dtype == np.float64
    m.to(np.float32)
    assert m.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "complex128", object])
def test_to_refuses_non_float32_64(dtype: object) -> None:
    m = Linear(3, 2) >> Tanh()
    with pytest.raises(TypeError, match="expected float32 or float64"):
        m.to(dtype)
    assert m.dtype == np.float32


def test_repr_shows_types_and_nodes() -> None:
    assert repr(Reverse(axis=0) >> Linear(8, 4)) == (
        "SpecChain([T, B, 8] -> [T, B, 4], nodes=['reverse', 'linear'])"
    )


# --- a chain is a value ----------------------------------------------------------------------

IMMUTABLE = "a SpecChain's graph cannot be edited: compose a new chain"


@pytest.mark.parametrize(
    "edit",
    [
        lambda g: g.add_edge("linear_1", "linear", port=None, index=()),
        lambda g: g.add_node("orphan"),
        lambda g: g.remove_node("tanh"),
        lambda g: g.remove_edge("linear", "tanh"),
        lambda g: g.clear(),
    ],
    ids=["add_edge", "add_node", "remove_node", "remove_edge", "clear"],
)
def test_editing_a_chains_graph_structure_raises(edit: Any) -> None:
    m = Linear(4, 4) >> Tanh() >> Linear(4, 2)
    with pytest.raises(SpecError, match=IMMUTABLE):
        edit(m.graph)
    assert m.nodes == ["linear", "tanh", "linear_1"]


def test_editing_a_chains_graph_attributes_raises() -> None:
    m = Linear(4, 4) >> Tanh()
    with pytest.raises(SpecError, match=IMMUTABLE):
        m.graph.nodes["tanh"]["spec"] = Linear(4, 4)
    with pytest.raises(SpecError, match=IMMUTABLE):
        next(iter(m.graph.edges(data=True)))[2]["port"] = 3
    with pytest.raises(SpecError, match=IMMUTABLE):
        m.graph.graph.update(note=1)
    with pytest.raises(AttributeError):
        m.in_type = TensorType((1, 4))  # type: ignore[misc]
    assert nx.is_frozen(m.graph) and isinstance(m.order, tuple)


def test_copies_of_a_chains_graph_are_ordinary_editable_graphs() -> None:
    import copy
    import pickle

    m = Linear(4, 4) >> Tanh()
    for graph in (copy.deepcopy(m.graph), pickle.loads(pickle.dumps(m.graph)), m.graph.reverse()):
        graph.add_node("extra")
        graph.nodes["tanh"]["note"] = "mine"
    assert "extra" not in m.graph and "note" not in m.graph.nodes["tanh"]


def test_a_copy_of_the_graph_is_editable_and_builds_a_new_chain() -> None:
    m = Linear(4, 4) >> Tanh()
    graph = m.graph.copy()
    graph.nodes["tanh"]["note"] = "mine"
    assert "note" not in m.graph.nodes["tanh"]
    assert sc.SpecChain(graph, m.in_type).nodes == m.nodes


def test_building_from_another_chains_graph_leaves_it_intact() -> None:
    m = LSTM(8, 16) >> Linear(16, 4)
    before = {n: dict(d) for n, d in m.graph.nodes(data=True)}
    other = sc.SpecChain(m.graph, TensorType((5, 3, 8)))
    assert other.out_type == TensorType((5, 3, 4))
    assert {n: dict(d) for n, d in m.graph.nodes(data=True)} == before
    assert m.out_type == TensorType(("T", "B", 4))


def test_retyped_gives_the_same_nodes_for_another_input_type() -> None:
    m = LSTM(8, 16) >> Linear(16, 4)
    fixed = m.retyped(TensorType((5, "B", 8)))
    assert fixed.out_type == TensorType((5, "B", 4))
    assert fixed.nodes == m.nodes and fixed.spec("lstm") is m.spec("lstm")
    with pytest.raises(ShapeError, match="feature size 9 != 8"):
        m.retyped(TensorType(("T", "B", 9)))


def test_the_plan_and_checked_inputs_live_on_the_chain() -> None:
    m = Linear(4, 2) >> Tanh()
    m(np.ones((3, 4), np.float32))
    assert m.plan is m.plan and [s.node for s in m.plan.steps] == ["linear", "tanh"]
    assert "_plan" not in vars(m) and "_accepted_inputs" not in vars(m)


def test_a_tensor_that_states_nothing_is_read_as_the_specs_own_input() -> None:
    """``[...]`` (an elementwise first node) meets ``[..., F]``: handled once, in the base class."""
    m = Tanh() >> Linear(6, 2)
    assert m.out_type == TensorType(("...", 2))
    assert (Tanh() >> Tanh()).out_type == TensorType(("...",))


def test_deepcopy_and_pickle_give_an_equal_independent_chain() -> None:
    import copy
    import pickle

    shared = Linear(8, 8)
    m = LSTM(4, 8) >> shared >> Tanh() >> shared
    x = np.random.default_rng(0).standard_normal((3, 2, 4)).astype(np.float32)
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert clone.nodes == m.nodes and (clone.in_type, clone.out_type) == (m.in_type, m.out_type)
        assert clone.spec("linear") is clone.spec("linear_1") and clone.spec("linear") is not shared
        np.testing.assert_array_equal(clone(x), m(x))
        with pytest.raises(SpecError, match=IMMUTABLE):
            clone.graph.add_node("extra")
