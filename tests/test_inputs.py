"""``sc.Input(type, name=...)``: named, typed graph inputs, through composition, calls, summaries,
diagrams, the PyTorch export and model files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import specchain as sc
from specchain.exporters import graphviz, pytorch
from specchain.inputs import Input
from specchain.modules import LSTM, Embedding, Identity, Linear
from specchain.padded import Padded
from specchain.saving import ModelFileError
from specchain.saving.architecture import architecture_json, build
from specchain.saving.kinds import Kinds
from specchain.types import ShapeError, SpecError, TensorType, TupleType
from tests.helpers import forward_arguments, unwrapped

STATE = TensorType((1, "B", 16))
TOKENS = TensorType(("T", "B"), "int")


def two_inputs() -> sc.SpecChain:
    """``(tokens int[T, B], state ([1, B, 16], [1, B, 16]))`` -> LSTM output and state."""
    sc.seed(0)
    tokens = Input(TOKENS, name="tokens") >> Embedding(10, 8)
    state = Input(TupleType((STATE, STATE), ("h0", "c0")), name="state")
    return sc.parallel(tokens, state) >> LSTM(8, 16, return_state=True)


def two_input_values(rng: np.random.Generator) -> tuple[Any, ...]:
    h0, c0 = rng.standard_normal((2, 1, 3, 16)).astype(np.float32)
    return rng.integers(0, 10, size=(5, 3)), (h0, c0)


# --- the spec ----------------------------------------------------------------------------------


def test_an_input_types_the_chain_and_passes_values_through() -> None:
    sc.seed(0)
    lstm = LSTM(8, 16)
    model = Input(TensorType(("T", "B", 8)), name="seq") >> lstm
    assert model.nodes == ["seq", "lstm"]
    assert str(model.in_type) == "[T, B, 8]" and str(model.out_type) == "[T, B, 16]"
    x = np.random.default_rng(0).standard_normal((5, 3, 8)).astype(np.float32)
    y, tape = model.forward(x)
    np.testing.assert_array_equal(y, lstm(x))
    dy = np.ones_like(y)
    dx, grads = model.backward(tape, dy)
    alone = lstm.as_chain()
    dx_alone, grads_alone = alone.backward(alone.forward(x)[1], dy)
    np.testing.assert_array_equal(dx, dx_alone)
    assert grads.keys() == grads_alone.keys() == {f"lstm.{k}" for k in lstm.params}


def test_a_tuple_of_dims_is_a_float_tensor_type_and_the_default_name_is_x() -> None:
    spec = Input(("T", "B", 8))
    assert spec.type == TensorType(("T", "B", 8)) and spec.default_name == "x"
    assert spec.in_type == spec.type and spec.num_params == 0
    assert sc.parallel(Input((2,)), Input((3,))).nodes == ["x", "x_1"]


@pytest.mark.parametrize("bad", ["T, B", 8, None, sc.ANY])
def test_a_type_that_is_not_one_is_refused(bad: object) -> None:
    with pytest.raises(SpecError, match=r"^Input.type must be a TensorType, a TupleType or a"):
        Input(bad)  # type: ignore[arg-type]


def test_lengths_takes_one_tensor_type() -> None:
    with pytest.raises(SpecError, match=r"Input 'pair': lengths=True needs one tensor type"):
        Input(TupleType((STATE, STATE)), name="pair", lengths=True)
    with pytest.raises(TypeError, match=r"Input.lengths must be"):
        Input(("T", "B", 8), lengths=1)  # type: ignore[arg-type]


# --- composition -------------------------------------------------------------------------------


def test_parallel_inputs_name_the_items_of_the_input_tuple() -> None:
    model = two_inputs()
    assert isinstance(model.in_type, TupleType)
    assert model.in_type.names == ("tokens", "state")
    assert str(model.in_type) == "(tokens: int[T, B], state: (h0: [1, B, 16], c0: [1, B, 16]))"
    y, (h, c) = model(two_input_values(np.random.default_rng(1)))
    assert y.shape == (5, 3, 16) and h.shape == c.shape == (1, 3, 16)


def test_a_part_without_an_input_gets_a_positional_item_name() -> None:
    model = sc.parallel(Input((4,), name="features"), Linear(3, 4))
    assert isinstance(model.in_type, TupleType) and model.in_type.names == ("features", "x1")
    assert sc.parallel(Linear(3, 4), Linear(3, 4)).in_type.names is None  # type: ignore[union-attr]


def test_two_inputs_with_one_name_are_refused() -> None:
    with pytest.raises(SpecError, match=r"two different specs are both named 'tokens'"):
        sc.parallel(Input((2,), name="tokens"), Input((3,), name="tokens"))


def test_an_input_conflicting_with_the_next_layer_names_both_at_build_time() -> None:
    with pytest.raises(
        ShapeError,
        match=r"^cannot connect 'seq' \(out \[T, B, 8\]\) to 'lstm' \(expects \[T, B, 16\]\): "
        r"feature size 8 != 16$",
    ):
        Input(("T", "B", 8), name="seq") >> LSTM(16, 4)


def test_an_input_inside_a_graph_asserts_the_type_arriving() -> None:
    model = Linear(3, 8) >> Input(("T", "B", 8), name="hidden") >> Linear(8, 2)
    assert str(model.in_type) == "[T, B, 3]"
    with pytest.raises(
        ShapeError,
        match=r"^cannot connect 'linear' \(out \[\.\.\., 4\]\) to 'hidden' \(expects \[T, B, 8\]\):"
        r" feature size 4 != 8$",
    ):
        Linear(3, 4) >> Input(("T", "B", 8), name="hidden")


def test_a_call_is_checked_against_the_declared_type_and_unbatched_values_pass() -> None:
    model = Input(("T", "B", 8), name="seq") >> LSTM(8, 4)
    with pytest.raises(ShapeError, match=r"'seq' \(Input, expects \[T, B, 8\]\): got \[5, 3, 7\]"):
        model(np.zeros((5, 3, 7), np.float32))
    assert model(np.zeros((5, 8), np.float32)).shape == (5, 4)  # [T, F], as nn.LSTM takes it


# --- lengths -----------------------------------------------------------------------------------


def test_an_input_with_lengths_refuses_a_call_without_them() -> None:
    model = Input(("T", "B", 3), name="seq", lengths=True) >> Linear(3, 2)
    x = np.zeros((4, 2, 3), np.float32)
    with pytest.raises(ShapeError, match=r"input 'seq' takes \(x, lengths\): a padded batch"):
        model(x)
    y = model((x, np.array([4, 2])))
    assert isinstance(y, Padded) and y.lengths.tolist() == [4, 2] and y.data.shape == (4, 2, 2)


def test_an_input_without_lengths_still_takes_them() -> None:
    model = Input(("T", "B", 3), name="seq") >> Linear(3, 2)
    y = model((np.zeros((4, 2, 3), np.float32), np.array([1, 4])))
    assert isinstance(y, Padded) and y.lengths.tolist() == [1, 4]


# --- summary and diagram -----------------------------------------------------------------------


def test_the_summary_lists_the_inputs_first_by_name() -> None:
    lines = two_inputs().summary().splitlines()
    assert lines[2].split()[:2] == ["tokens", "Input(int[T,"]
    assert lines[3].split()[:2] == ["state", "Input((h0:"]
    assert not any(line.startswith("(input)") for line in lines)
    assert (LSTM(3, 4) >> Linear(4, 2)).summary().splitlines()[2].startswith("(input)")


def test_the_diagram_draws_each_input_once_with_its_name_and_type() -> None:
    sc.seed(0)
    tokens = Input(TOKENS, name="tokens", lengths=True) >> Embedding(10, 8)
    model = sc.parallel(tokens, Input(TupleType((STATE, STATE)), name="state")) >> LSTM(8, 16)
    source = graphviz.to_dot(model).source
    assert "<b>tokens</b>" in source and "int[T, B] + lengths [B]" in source
    assert "<b>state</b>" in source and "([1, B, 16], [1, B, 16])" in source
    assert "<b>input</b>" not in source  # no input pseudo-node besides the inputs
    assert source.count("shape=ellipse") == 3  # tokens, state, output
    plain = graphviz.to_dot(model, html=False).source
    assert "tokens\\nint[T, B] + lengths [B]" in plain


def test_the_diagram_keeps_the_input_node_for_nodes_that_take_the_input_directly() -> None:
    source = graphviz.to_dot(sc.parallel(Input((4,), name="features"), Linear(3, 4))).source
    assert "<b>features</b>" in source and "<b>input</b>" in source


# --- PyTorch export ----------------------------------------------------------------------------


def _import(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem + "_exported", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_generated_test(directory: Path) -> None:
    """The export's own test_model.py passes, eager and scripted."""
    generated = _import(directory / "test_model.py")
    for mode in ("eager", "scripted"):
        generated.test_reproduces_reference_outputs(mode)


def test_the_export_takes_one_argument_per_named_input(tmp_path: Path) -> None:
    import torch

    model = two_inputs().to(np.float64)
    source = pytorch.to_source(model)
    assert forward_arguments(source) == ["self", "tokens", "state"]
    assert "self.tokens =" not in source and "self.state =" not in source  # arguments, not modules
    pytorch.export(model, tmp_path)
    module = _import(tmp_path / "model.py").load(tmp_path / "model.safetensors")
    tokens, state = two_input_values(np.random.default_rng(2))
    h0, c0 = (s.astype(np.float64) for s in state)
    with torch.no_grad():  # called by keyword: the names are the arguments'
        y, (h, c) = module(
            state=(torch.from_numpy(h0), torch.from_numpy(c0)), tokens=torch.from_numpy(tokens)
        )
    ours, (h_ours, c_ours) = model((tokens, (h0, c0)))
    np.testing.assert_allclose(y.numpy(), ours, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(h.numpy(), h_ours, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(c.numpy(), c_ours, rtol=1e-7, atol=1e-9)
    check_generated_test(tmp_path)
    assert pytorch.verify(model).within(rtol=1e-7, atol=1e-9)


def test_a_single_named_input_names_the_argument() -> None:
    model = Input(("T", "B", 3), name="frames") >> Linear(3, 2)
    source = pytorch.to_source(model)
    assert forward_arguments(source) == ["self", "frames"]
    assert "linear = self.linear(frames)" in source
    assert forward_arguments(pytorch.to_source(Input((3,)) >> Linear(3, 2))) == ["self", "x"]


def test_an_input_inside_the_graph_is_an_assignment_not_a_module() -> None:
    model = Linear(3, 8) >> Input(("T", "B", 8), name="hidden") >> Linear(8, 2)
    source = pytorch.to_source(model)
    assert "        hidden = linear\n" in source and "self.hidden" not in source
    assert pytorch.verify(model.to(np.float64)).within(rtol=1e-7, atol=1e-9)


def test_an_input_with_lengths_adds_its_lengths_argument(tmp_path: Path) -> None:
    model = sc.parallel(Input(("T", "B", 3), name="seq", lengths=True), Input((2,), name="bias"))
    model = (model >> sc.parallel(Linear(3, 2), Identity())).to(np.float64)
    assert forward_arguments(pytorch.to_source(model)) == ["self", "seq", "seq_lengths", "bias"]
    assert pytorch.verify(model).within(rtol=1e-7, atol=1e-9)
    pytorch.export(model, tmp_path)
    check_generated_test(tmp_path)


def test_a_layer_reading_lengths_exports_with_them() -> None:
    model = Input(("T", "B", 3), name="seq", lengths=True) >> Linear(3, 3) >> LSTM(3, 2)
    source = pytorch.to_source(model)
    assert forward_arguments(source) == ["self", "seq", "seq_lengths"]
    assert "nn.utils.rnn.pack_padded_sequence(linear, seq_lengths.cpu()" in unwrapped(source)
    assert pytorch.verify(model.to(np.float64)).within(1e-7, 1e-9)


# --- model files -------------------------------------------------------------------------------


def test_inputs_round_trip_through_a_model_file(tmp_path: Path) -> None:
    sc.seed(0)
    tokens = Input(TOKENS, name="tokens", lengths=True) >> Embedding(10, 8) >> Linear(8, 4)
    model = sc.parallel(tokens, Input(TupleType((STATE, STATE), ("h0", "c0")), name="state"))
    model.save(tmp_path / "m.safetensors")
    loaded = sc.load(tmp_path / "m.safetensors")
    assert loaded.nodes == model.nodes
    assert str(loaded.in_type) == str(model.in_type)
    assert isinstance(loaded.in_type, TupleType) and loaded.in_type.names == ("tokens", "state")
    for node in ("tokens", "state"):
        ours, theirs = model.spec(node), loaded.spec(node)
        assert isinstance(theirs, Input) and isinstance(ours, Input)
        assert (theirs.type, theirs.lengths, theirs.name) == (ours.type, ours.lengths, ours.name)
    tokens_in, state_in = two_input_values(np.random.default_rng(3))
    call = ((tokens_in, np.array([5, 2, 4])), state_in)
    (y_loaded, _), (y, _) = loaded(call), model(call)
    assert isinstance(y, Padded) and isinstance(y_loaded, Padded)
    np.testing.assert_array_equal(y_loaded.data, y.data)


def test_the_torchlean_stateful_chains_take_named_inputs() -> None:
    """``stateful`` carries ``(x, (h0, c0))`` through Inputs named ``x`` and ``state``."""
    from specchain.models.torchlean.chains import stateful_per_step

    chain = stateful_per_step(3, 4, 2, num_layers=2).to(np.float64)
    assert isinstance(chain.in_type, TupleType) and chain.in_type.names == ("x", "state")
    assert str(chain.in_type) == "(x: [T, B, 3], state: (h0: [2, B, 4], c0: [2, B, 4]))"
    assert forward_arguments(pytorch.to_source(chain)) == ["self", "x", "state"]
    assert pytorch.verify(chain).within(rtol=1e-7, atol=1e-9)


DIMS = st.lists(st.integers(0, 9) | st.sampled_from(["T", "B", "S", "F"]), max_size=4)
TENSORS = st.builds(TensorType, DIMS.map(tuple), st.sampled_from(["float", "int", "bool"]))
TYPES = st.recursive(
    TENSORS,
    lambda inner: st.lists(inner, min_size=1, max_size=3).flatmap(
        lambda items: st.builds(
            TupleType,
            st.just(tuple(items)),
            st.none() | st.just(tuple(f"item{i}" for i in range(len(items)))),
        )
    ),
    max_leaves=5,
)


@settings(max_examples=60, deadline=None)
@given(declared=TYPES)
def test_any_declared_type_round_trips_through_the_architecture(declared: Any) -> None:
    model = sc.parallel(Input(declared, name="first"), Input((2,), name="second"))
    text = json.dumps(architecture_json(model))
    loaded = build(json.loads(text), Kinds(()), budget=0)
    spec = loaded.spec("first")
    assert isinstance(spec, Input) and spec.type == declared
    assert str(loaded.in_type) == str(model.in_type)  # item names included


HOSTILE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
) | st.fixed_dictionaries({"dims": st.lists(st.integers()), "dtype": st.text(max_size=6)})


@settings(max_examples=100, deadline=None)
@given(value=HOSTILE)
def test_a_hostile_declared_type_in_a_model_file_loads_or_is_refused(value: Any) -> None:
    architecture = architecture_json(Input(("T", "B", 3), name="seq") >> Linear(3, 2))
    architecture["nodes"][0]["config"]["type"] = {"__type__": value}
    try:
        loaded = build(json.loads(json.dumps(architecture)), Kinds(()), budget=0)
    except ModelFileError as err:
        assert str(err).startswith("invalid architecture")
    else:
        assert isinstance(loaded.spec("seq"), Input)
