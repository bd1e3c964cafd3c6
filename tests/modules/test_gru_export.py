"""``GRU`` and ``GRUCell`` beyond the numerics: PyTorch export verified (with and without
lengths, with a state), save/load round trips, the summary and the Graphviz diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specchain as sc
from specchain.exporters import graphviz, pytorch
from specchain.modules import GRU, GRUCell, LastStep, Linear
from specchain.padded import Padded
from tests.helpers import TOLERANCES, forward_arguments, one_torch_thread, unwrapped

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

F64 = TOLERANCES[np.dtype(np.float64)]


@pytest.mark.parametrize(
    "options",
    [{}, {"num_layers": 2, "bidirectional": True, "batch_first": True, "bias": False}],
    ids=["default", "L2_bi_bf_nobias"],
)
def test_export_verifies_the_layer_alone(options: dict[str, bool | int]) -> None:
    model = GRU(3, 4, **options).as_chain().to(np.float64)  # type: ignore[arg-type]
    source = pytorch.to_source(model)
    assert "nn.GRU(3, 4" in unwrapped(source)
    report = pytorch.verify(model)
    assert report.within(*F64), str(report)
    assert "gru.weight_hh_l0" in report.diffs


def test_export_verifies_with_a_state_and_return_state() -> None:
    inputs = sc.parallel(sc.Input(("T", "B", 3), name="seq"), sc.Input((2, "B", 4), name="h0"))
    model = (inputs >> GRU(3, 4, num_layers=2, return_state=True)).to(np.float64)
    source = pytorch.to_source(model)
    assert forward_arguments(source) == ["self", "seq", "h0"] and "self.gru(seq, h0)" in source
    report = pytorch.verify(model)
    assert report.within(*F64), str(report)


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
def test_export_verifies_with_lengths(batch_first: bool) -> None:
    seq = ("B", "T", 3) if batch_first else ("T", "B", 3)
    model = sc.Input(seq, name="seq", lengths=True) >> GRU(
        3, 4, num_layers=2, bidirectional=True, batch_first=batch_first
    )
    model = (model >> Linear(8, 2)).to(np.float64)
    assert forward_arguments(pytorch.to_source(model)) == ["self", "seq", "seq_lengths"]
    report = pytorch.verify(model)
    assert report.within(*F64), str(report)


def test_export_verifies_the_cell() -> None:
    model = (GRUCell(3, 4) >> Linear(4, 2)).to(np.float64)
    assert "nn.GRUCell(3, 4)" in pytorch.to_source(model)
    assert pytorch.verify(model).within(*F64)
    inputs = sc.parallel(sc.Input(("B", 3), name="x"), sc.Input(("B", 4), name="h"))
    with_state = (inputs >> GRUCell(3, 4, bias=False)).to(np.float64)
    assert "self.gru_cell(x, h)" in pytorch.to_source(with_state)
    report = pytorch.verify(with_state)
    assert report.within(*F64), str(report)


def test_save_and_load_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    model = GRU(3, 4, num_layers=2, bidirectional=True, dropout=0.25) >> LastStep() >> Linear(8, 2)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = sc.load(path)
    spec = loaded.spec("gru")
    assert isinstance(spec, GRU)
    assert (spec.num_layers, spec.bidirectional, spec.dropout) == (2, True, 0.25)
    assert loaded.state_dict().keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value, err_msg=key)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))
    x_pad = Padded(x, np.array([5, 2]))
    np.testing.assert_array_equal(loaded(x_pad), model(x_pad))


def test_cell_save_and_load_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    model = GRUCell(3, 4, bias=False).as_chain()
    path = tmp_path / "cell.safetensors"
    model.save(path)
    loaded = sc.load(path)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))


def test_summary_lists_the_layers_and_parameters() -> None:
    summary = (GRU(3, 4, num_layers=2, bidirectional=True) >> LastStep() >> GRUCell(8, 5)).summary()
    layer = 2 * (12 * 3 + 12 * 4 + 24) + 2 * (12 * 8 + 12 * 4 + 24)  # PyTorch's count: 552
    cell = 15 * 8 + 15 * 5 + 30
    assert f"GRU(3 -> 4, layers=2, bidirectional)  [T, B, 3]  [T, B, 8]  {layer}" in summary
    assert "GRUCell(8 -> 5)" in summary and f"[B, 5]     {cell}" in summary
    assert f"total parameters: {layer + cell}" in summary


def test_diagram_draws_the_layer_and_its_lanes() -> None:
    model = GRU(3, 4) >> Linear(4, 2)
    source = graphviz.to_dot(model).source
    assert "GRU(3 -&gt; 4)" in source or "GRU(3 -> 4)" in source
    palette = graphviz.family_palette("recurrent")
    assert f'color="{palette.border}" fillcolor="{palette.fill}"' in source
    expanded = graphviz.to_dot(GRU(3, 4, num_layers=2, bidirectional=True), expand=True).source
    assert "l1_reverse" in expanded and "cluster" in expanded
