"""Exports with lengths: every zoo model built with ``lengths=True`` exports a ``forward`` that
takes the lengths and packs its sequences for ``nn.LSTM`` (``pack_padded_sequence`` /
``pad_packed_sequence``); ``verify`` passes, and the generated test file passes on its own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch

import specchain as sc
from specchain.exporters import pytorch
from specchain.models.zoo import ZOO
from specchain.modules import LSTM, Concat, LastStep, Linear, Reverse
from specchain.spec import Context, NNModuleSpec, Params
from specchain.types import DimEnv, TensorType, Type

PYTEST = (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib")


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_with_lengths_exports_and_verifies(name: str) -> None:
    model = ZOO[name].build(lengths=True).to(np.float64)
    module_source = pytorch.to_source(model).split("\nclass Model(")[1]  # nn.Module or a helper
    signature = module_source.split("def forward(")[1].split(")")[0]
    assert "_lengths" in signature, signature
    if "nn.LSTM(" in module_source:
        assert "nn.utils.rnn.pack_padded_sequence(" in module_source
    report = pytorch.verify(model)
    assert report.within(1e-7, 1e-9), report


def test_generated_test_files_pass_with_lengths(tmp_path: Path) -> None:
    directories = []
    for name in sorted(ZOO):
        directory = tmp_path / name
        pytorch.export(ZOO[name].build(lengths=True), directory)
        directories.append(str(directory / "test_model.py"))
    result = subprocess.run(
        [*PYTEST, *directories],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{2 * len(ZOO)} passed" in result.stdout  # eager and scripted


def test_exported_forward_matches_each_sequence_alone(rng: np.random.Generator) -> None:
    """The exported module on a padded batch gives, for each sequence, what it gives for that
    sequence alone: the lengths reach ``nn.LSTM`` packed and ``LastStep`` by argument."""
    model = sc.serial(
        sc.Input(("B", "T", 3), name="x", lengths=True),
        LSTM(3, 5, batch_first=True, bidirectional=True),
        LastStep(),
        Linear(10, 2, name="head"),
    ).to(np.float64)
    module = pytorch.build_torch_module(model).double().eval()
    x, lengths = rng.standard_normal((3, 6, 3)), np.array([6, 2, 4])
    with torch.no_grad():
        batch = module(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
        for b, n in enumerate(lengths):
            alone = module(torch.from_numpy(x[b : b + 1, :n]), torch.tensor([n])).numpy()
            np.testing.assert_allclose(batch[b], alone[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(batch, model((x, lengths)), rtol=1e-7, atol=1e-9)


@attrs.define(eq=False)
class RunningSum(NNModuleSpec):
    """A user's layer that acts across time and has an emitter that knows no lengths."""

    @property
    def in_type(self) -> Type:
        return TensorType(("T", "B", "F"))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return in_type

    takes_lengths = True

    def forward(self, params: Params, x: object, ctx: Context) -> tuple[object, None]:
        return x, None

    def backward(self, params: Params, saved: None, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        return dy, {}


@pytorch.emitter(RunningSum)
def _emit_running_sum(spec: RunningSum, in_type: Type) -> pytorch.Emitted:
    return pytorch.Emitted("nn.Identity()")


def test_a_layer_whose_emitter_knows_no_lengths_is_refused() -> None:
    model = sc.Input(("T", "B", 3), name="x", lengths=True) >> RunningSum()
    message = (
        "node 'running_sum': RunningSum takes a padded batch's lengths, but its emitter does not "
        "say how the exported module takes them"
    )
    with pytest.raises(pytorch.ExportError, match="^" + re.escape(message)):
        pytorch.to_source(model)
    pytorch.to_source(sc.Input(("T", "B", 3), name="x") >> RunningSum())  # without lengths: fine


@pytest.mark.parametrize(
    "layout", [("T", "B", 4), ("B", "T", 4)], ids=["time_major", "batch_first"]
)
def test_the_reverse_recipe_exports_with_lengths(layout: tuple[str, ...]) -> None:
    """``branch(LSTM, Reverse() >> LSTM >> Reverse())``: each Reverse takes the lengths (lanes
    of different sizes, so not fused into one bidirectional ``nn.LSTM``)."""
    batch_first = layout[0] == "B"
    lstm = {"batch_first": batch_first}
    model = sc.serial(
        sc.Input(layout, name="x", lengths=True),
        sc.branch(LSTM(4, 5, **lstm), Reverse() >> LSTM(4, 6, **lstm) >> Reverse()),
        Concat(),
        Linear(11, 2),
    ).to(np.float64)
    source = pytorch.to_source(model)
    assert "reverse = self.reverse(x, x_lengths)" in source
    report = pytorch.verify(model)
    assert report.within(1e-7, 1e-9), report


def test_verify_refuses_lengths_the_model_does_not_declare() -> None:
    model = LSTM(4, 5) >> LastStep()
    x, lengths = np.zeros((5, 3, 4), np.float32), np.array([5, 2, 3])
    with pytest.raises(pytorch.ExportError, match=r"start the model with sc\.Input\(type, name="):
        pytorch.verify(model, (x, lengths))


def test_verify_with_a_loss_leaves_the_padding_out(rng: np.random.Generator) -> None:
    model = ZOO["seq2seq"].build(lengths=True).to(np.float64)
    x, lengths = rng.standard_normal((5, 3, 8)), np.array([5, 2, 3])
    targets = rng.standard_normal((5, 3, 4))
    report = pytorch.verify(model, (x, lengths), targets, sc.losses.mse)
    assert report.within(1e-7, 1e-9), report
    assert report.loss is not None
    expected = sc.losses.mse(model((x, lengths)), targets)  # a Padded output: masked
    np.testing.assert_allclose(report.loss, (expected, expected), rtol=1e-10)
    targets[4, 1] = 1e6  # on the padding: changes nothing
    assert pytorch.verify(model, (x, lengths), targets, sc.losses.mse).loss == report.loss
