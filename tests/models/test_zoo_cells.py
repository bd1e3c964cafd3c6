"""Every zoo builder with every recurrent cell: summary, diagram, export (native nn.* module),
verify, lengths and a saved file, with no special case per cell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import specchain as sc
from specchain.exporters import graphviz, pytorch
from specchain.models import zoo
from specchain.padded import strip

BUILDERS: dict[str, Any] = {
    "seq2seq": lambda cell, lengths: zoo.seq2seq(4, 6, 3, lengths=lengths, cell=cell),
    "classifier": lambda cell, lengths: zoo.classifier(4, 6, 3, lengths=lengths, cell=cell),
    "two_layer": lambda cell, lengths: zoo.two_layer(4, 6, 3, lengths=lengths, cell=cell),
    "stacked": lambda cell, lengths: zoo.stacked(4, 6, 3, num_layers=2, lengths=lengths, cell=cell),
    "language_model": lambda cell, lengths: zoo.language_model(
        9, 6, num_layers=2, lengths=lengths, cell=cell
    ),
    "bilstm": lambda cell, lengths: zoo.bilstm(4, 6, 3, lengths=lengths, cell=cell),
}


@pytest.mark.parametrize("cell", sorted(zoo.CELLS))
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_builder_takes_every_cell(name: str, cell: str, tmp_path: Path) -> None:
    model = BUILDERS[name](cell, True).to(np.float64)
    assert any(type(model.spec(node)) is zoo.CELLS[cell] for node in model.nodes)
    assert "+ lengths [B]" in str(graphviz.to_dot(model).source)  # the diagram shows them
    assert model.summary()
    assert pytorch.verify(model).within(1e-7, 1e-9)
    model.save(tmp_path / "m.safetensors")
    loaded = sc.load(tmp_path / "m.safetensors")
    rng = np.random.default_rng(0)
    data = (
        rng.integers(0, 9, (5, 3)) if name == "language_model" else rng.standard_normal((5, 3, 4))
    )
    x = (data, np.array([5, 2, 4]))
    np.testing.assert_array_equal(strip(loaded(x)), strip(model(x)))
