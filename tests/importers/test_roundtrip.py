"""Round trip: spec -> PyTorch export -> ``from_torch`` -> the same weights and outputs.

For every zoo model (and every recurrent cell where the builder takes one), in float64: the
generated ``model.py`` is imported and loaded as a user would, imported back, and the chain holds
the exported module's ``state_dict`` exactly (names, order, dtype, bits), the same arrays in the
same order as the original spec (whatever names the export chose: ``lstm1``/``lstm2`` or one
``nn.LSTM(num_layers=2)``; ``attention.encoder...`` or, for a model exported as one module,
its node's name and ``encoder...``), and computes the original's outputs to 1e-12.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.exporters import pytorch
from specchain.importers.registry import converted_class
from specchain.importers.torch import from_torch
from specchain.models import zoo
from specchain.models.zoo import ZOO
from specchain.modules import LSTM, Concat, Dropout, Linear, Reverse

CELL_BUILDERS: dict[str, Callable[[str], sc.SpecChain]] = {
    "seq2seq": lambda cell: zoo.seq2seq(3, 5, 2, cell=cell),
    "classifier": lambda cell: zoo.classifier(3, 5, 2, cell=cell),
    "two_layer": lambda cell: zoo.two_layer(3, 5, 2, cell=cell),
    "stacked": lambda cell: zoo.stacked(3, 5, 2, num_layers=3, dropout=0.1, cell=cell),
    "language_model": lambda cell: zoo.language_model(7, 5, num_layers=2, dropout=0.2, cell=cell),
    "bilstm": lambda cell: zoo.bilstm(3, 4, 2, cell=cell),
}


def import_path(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"exported_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def to_torch(x: Any) -> Any:
    return tuple(torch.from_numpy(a) for a in x) if isinstance(x, tuple) else torch.from_numpy(x)


def round_trip(model: sc.SpecChain, x: Any, out: Path) -> None:
    model.to(np.float64)
    pytorch.export(model, out)
    module = import_path(out / "model.py").load()
    imported = from_torch(module, to_torch(x))
    # a model exported as one composite module (class Model(AttentionLSTM)) is one node, whose
    # name prefixes the module's own keys
    prefix = f"{imported.nodes[0]}." if converted_class(module) is not None else ""
    theirs = {prefix + key: tensor for key, tensor in module.state_dict().items()}
    ours = imported.state_dict()
    assert list(ours) == list(theirs)
    for key, tensor in theirs.items():
        assert ours[key].dtype == np.float64, key
        assert np.array_equal(ours[key], tensor.numpy()), key
    original = list(model.state_dict().values())
    assert len(original) == len(ours)
    for before, after in zip(original, ours.values(), strict=True):
        assert np.array_equal(before, after)
    np.testing.assert_allclose(imported(x), model(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(ZOO))
def test_every_zoo_model_round_trips(name: str, tmp_path: Path) -> None:
    entry = ZOO[name]
    x = entry.example_input(np.random.default_rng(0), dtype=np.float64)
    round_trip(entry.build(), x, tmp_path)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("name", list(CELL_BUILDERS))
def test_every_zoo_builder_round_trips_with_every_cell(
    name: str, cell: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    x: Any = rng.standard_normal((4, 2, 3))
    if name == "language_model":
        x = rng.integers(0, 7, size=(4, 2))
    round_trip(CELL_BUILDERS[name](cell), x, tmp_path)


def test_composed_bidirectional_and_two_layer_stack_round_trip(tmp_path: Path) -> None:
    """The shapes the exporter may fuse into one ``nn.LSTM`` (bidirectional, num_layers=2):
    the round trip holds the same arrays whether it does or not."""
    bidirectional = sc.branch(LSTM(3, 4), Reverse() >> LSTM(3, 4) >> Reverse()) >> Concat()
    model = bidirectional >> LSTM(8, 8) >> Dropout(0.1) >> LSTM(8, 8) >> Linear(8, 2)
    x = np.random.default_rng(2).standard_normal((5, 2, 3))
    round_trip(model, x, tmp_path)
