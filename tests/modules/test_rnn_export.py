"""``RNN`` and ``RNNCell`` outside the numpy engine: PyTorch export (native ``nn.RNN`` /
``nn.RNNCell``, verified against our forward and backward, with lengths too), the model file
round trip, the summary and the Graphviz diagram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import specchain as sc
from specchain.exporters import graphviz, pytorch
from specchain.modules import RNN, Linear, RNNCell
from specchain.types import TensorType, TupleType
from tests.helpers import TOLERANCES, forward_arguments, one_torch_thread, unwrapped

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

F64 = TOLERANCES[np.dtype(np.float64)]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"nonlinearity": "relu", "bias": False},
        {"num_layers": 2, "bidirectional": True, "batch_first": True},
        {"num_layers": 2, "nonlinearity": "relu", "return_state": True},
    ],
    ids=["default", "relu_no_bias", "L2_bi_batch_first", "L2_relu_state"],
)
def test_export_verifies_the_layer(options: dict[str, Any]) -> None:
    model = RNN(3, 4, **options).as_chain().to(np.float64)
    report = pytorch.verify(model)
    assert report.within(*F64), str(report)
    assert set(model.named_parameters()) <= set(report.diffs), "every weight gradient compared"
    assert report.max_abs > 0  # two implementations, not one compared with itself


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_export_verifies_with_lengths(bidirectional: bool) -> None:
    model = sc.Input(("T", "B", 3), name="seq", lengths=True) >> RNN(
        3, 4, num_layers=2, nonlinearity="relu", bidirectional=bidirectional
    )
    model.to(np.float64)
    source = pytorch.to_source(model)
    assert forward_arguments(source) == ["self", "seq", "seq_lengths"]
    assert "nn.utils.rnn.pack_padded_sequence(seq, seq_lengths.cpu()" in unwrapped(source)
    report = pytorch.verify(model)
    assert report.within(*F64), str(report)


def test_generated_code_uses_native_modules() -> None:
    model = RNN(3, 4, num_layers=2, nonlinearity="relu", dropout=0.2) >> Linear(4, 2)
    source = pytorch.to_source(model)
    assert "self.rnn = nn.RNN(3, 4, num_layers=2, nonlinearity='relu', dropout=0.2)" in unwrapped(
        source
    )
    cell = pytorch.to_source(RNNCell(3, 4, bias=False, nonlinearity="relu").as_chain())
    assert 'self.rnn_cell = nn.RNNCell(3, 4, bias=False, nonlinearity="relu")' in cell


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_export_verifies_the_cell(nonlinearity: str) -> None:
    """Alone (``x``) and after a named two-part Input (``(x, h)``, passed as two arguments)."""
    cell = RNNCell(3, 4, nonlinearity=nonlinearity)
    report = pytorch.verify(cell.as_chain().to(np.float64))
    assert report.within(*F64), str(report)
    state = TupleType((TensorType(("B", 3)), TensorType(("B", 4))), ("x", "h"))
    model = (sc.Input(state, name="step") >> cell).to(np.float64)
    assert "rnn_cell = self.rnn_cell(step[0], step[1])" in pytorch.to_source(model)
    report = pytorch.verify(model)
    assert report.within(*F64), str(report)
    assert {"input_grad[0]", "input_grad[1]", "rnn_cell.weight_hh"} <= set(report.diffs)


def test_save_and_load_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    sc.seed(1)
    model = RNN(3, 4, num_layers=2, nonlinearity="relu", bidirectional=True) >> Linear(8, 2)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = sc.load(path)
    spec = loaded.spec("rnn")
    assert isinstance(spec, RNN)
    assert spec.config() == model.spec("rnn").config()
    assert spec.nonlinearity == "relu" and spec.bidirectional
    assert loaded.state_dict().keys() == model.state_dict().keys()
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))
    cell_path = tmp_path / "cell.safetensors"
    RNNCell(3, 4, nonlinearity="relu").as_chain().save(cell_path)
    cell = sc.load(cell_path).spec("rnn_cell")
    assert isinstance(cell, RNNCell) and cell.nonlinearity == "relu"


def test_summary_names_the_options_and_counts_parameters() -> None:
    model = RNN(3, 4, num_layers=2, nonlinearity="relu", bidirectional=True) >> Linear(8, 2)
    text = model.summary()
    assert "3 -> 4, layers=2, bidirectional, relu" in text
    # per direction: layer 0 4*3 + 4*4 + 4 + 4, layer 1 4*8 + 4*4 + 4 + 4
    assert model.spec("rnn").num_params == 2 * (36 + 56)
    assert f"{2 * (36 + 56)}" in text


def test_diagram_draws_layers_and_directions() -> None:
    model = RNN(3, 4, num_layers=2, bidirectional=True) >> Linear(8, 2)
    source = graphviz.to_dot(model).source
    assert "RNN(3 -&gt; 4, layers=2, bidirectional)" in source and "184 params" in source
    expanded = graphviz.to_dot(model, expand=True).source
    assert "subgraph" in expanded
    for lane in ("l0", "l0_reverse", "l1", "l1_reverse", "concat_l1"):
        assert graphviz.node_id(("rnn", lane)) in expanded, lane
    assert "subgraph" not in graphviz.to_dot(RNN(3, 4), expand=True).source
