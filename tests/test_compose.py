"""``>>`` extends a chain from its frontier: it must give exactly what ``serial`` builds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

import specchain as sc
from specchain.modules import LSTM, Add, Identity, LastStep, Linear, Reverse, Tanh
from specchain.types import ShapeError
from tests.test_hypothesis_chains import architectures, build_op


def graph_facts(chain: sc.SpecChain) -> tuple[Any, ...]:
    """Everything a graph states: nodes with their types, edges with ports, indices and types."""
    graph = chain.graph
    nodes = [(n, d.get("in_type"), d.get("out_type")) for n, d in graph.nodes(data=True)]
    edges = sorted(
        (u, v, d["port"], d["index"], str(d["type"])) for u, v, d in graph.edges(data=True)
    )
    return chain.in_type, chain.out_type, sorted(nodes, key=str), edges


def fold(parts: list[Any]) -> sc.SpecChain:
    chain = parts[0]
    for part in parts[1:]:
        chain = chain >> part
    return chain


@settings(max_examples=40, deadline=None)
@given(arch=architectures())
def test_rshift_fold_builds_what_serial_builds(arch: dict[str, Any]) -> None:
    sc.seed(0)
    parts = [build_op(op) for op in arch["ops"]]
    folded = fold(parts)
    in_type, out_type = folded.in_type, folded.out_type  # known before the graph is built
    assert graph_facts(folded) == graph_facts(sc.serial(*parts))
    assert (folded.in_type, folded.out_type) == (in_type, out_type)


def test_a_chain_extended_twice_names_each_extension_alone() -> None:
    base = Linear(4, 4) >> Tanh()
    first = base >> Linear(4, 4)
    second = base >> Linear(4, 2) >> Linear(2, 2)
    assert first.nodes == ["linear", "tanh", "linear_1"]
    assert second.nodes == ["linear", "tanh", "linear_1", "linear_2"]
    assert second.out_type == sc.TensorType(("...", 2))
    assert base.nodes == ["linear", "tanh"]


def test_a_failed_extension_leaves_the_chain_extendable() -> None:
    base = LSTM(8, 16) >> Tanh()
    with pytest.raises(ShapeError, match=r"cannot connect 'tanh' \(out \[T, B, 16\]\) to 'linear'"):
        base >> Linear(32, 4)
    assert (base >> Linear(16, 4)).nodes == ["lstm", "tanh", "linear"]


def test_rshift_checks_against_the_unified_input_type_as_serial_does() -> None:
    """A built chain whose output is ``([T, B, 2], [B, 2])`` cannot feed ``Add``: refused when
    ``>>`` is written, by ``serial`` alike, whether the chain was built by ``serial`` or ``>>``."""
    for two in (
        sc.serial(Linear(2, 2), sc.branch(Identity(), LastStep())),
        Linear(2, 2) >> sc.branch(Identity(), LastStep()),
    ):
        message = r"cannot connect 'identity', 'last_step' .* to 'add' .*rank 2 != 3"
        with pytest.raises(ShapeError, match=message):
            two >> Add()
        with pytest.raises(ShapeError, match=message):
            sc.serial(two, Add())


def test_copied_chains_keep_their_names_in_execution_order() -> None:
    head = Linear(2, 2) >> Linear(2, 2)
    tail = sc.branch(Tanh(name="z") >> Linear(2, 2), Linear(2, 2)) >> Add()
    expected = ["linear", "linear_1", "linear_2", "z", "linear_3", "add"]
    assert (head >> tail).nodes == sc.serial(head, tail).nodes == expected


def test_rshift_reports_a_mismatch_when_it_is_written() -> None:
    chain = LSTM(8, 16) >> Reverse()
    with pytest.raises(ShapeError) as info:
        chain >> (Tanh() >> Linear(8, 4))
    assert str(info.value) == (
        "cannot connect 'tanh' (out [T, B, 16]) to 'linear' (expects [..., 8]): "
        "feature size 16 != 8"
    )


def test_a_long_rshift_loop_is_built_lazily_and_runs() -> None:
    import numpy as np

    chain: Any = Linear(3, 3)
    for _ in range(200):
        chain = chain >> Linear(3, 3)
    assert chain._graph is None  # nothing built yet
    chain = chain >> LastStep()  # it refines the input type ([..., 3] -> [T, B, 3]): built now
    assert chain.in_type == sc.TensorType(("T", "B", 3))
    x = np.ones((2, 1, 3), np.float32)
    assert chain(x).shape == (1, 3)
    assert len(chain.nodes) == 202
