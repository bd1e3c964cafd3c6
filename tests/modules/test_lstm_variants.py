"""``LSTMVariant``: all options off is exactly ``LSTM``; every variant passes finite differences
(with states, lengths, two layers, both directions) and its exported step-by-step module is
verified against the numpy forward and backward, eager and scripted."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.exporters import graphviz, pytorch
from specchain.modules import LSTM, LastStep, Linear, LSTMVariant
from specchain.modules.lstm_kernel import LayerWeights, layer_backward, layer_forward
from specchain.modules.lstm_variant_kernel import (
    Variant,
    VariantWeights,
    variant_backward,
    variant_forward,
)
from specchain.modules.lstm_variants import GREFF
from specchain.padded import Padded
from specchain.spec import Context
from specchain.types import SpecError
from tests.helpers import assert_close64, assert_gradcheck, one_torch_thread

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

IN, HID, STEPS, BATCH = 3, 4, 5, 3

VARIANTS: dict[str, dict[str, bool]] = {
    **{f"greff_{name}": options for name, options in GREFF.items() if name != "NP"},
    "1997": {"no_forget_gate": True},
    "cifg_no_peephole": {"coupled_gates": True},
    "fgr_cifg_noaf": {
        "full_gate_recurrence": True,
        "coupled_gates": True,
        "no_output_activation": True,
    },
    "only_g": {"no_input_gate": True, "no_forget_gate": True, "no_output_gate": True},
}


def _params(spec: Any) -> dict[str, np.ndarray]:
    return {k: v.astype(np.float64) for k, v in spec.params.items()}


def test_all_options_off_is_exactly_lstm(rng: np.random.Generator) -> None:
    options: dict[str, Any] = {"num_layers": 2, "bidirectional": True, "batch_first": True}
    variant, lstm = LSTMVariant(IN, HID, **options), LSTM(IN, HID, **options)
    assert variant.declare_params().keys() == lstm.declare_params().keys()
    params = _params(lstm)
    x = rng.standard_normal((BATCH, STEPS, IN))
    for inp in (x, Padded(x, np.array([5, 2, 4]), time_axis=1, batch_axis=0)):
        y1, saved1 = variant.forward(params, inp, Context())
        y2, saved2 = lstm.forward(params, inp, Context())
        y1, y2 = (y.data if isinstance(y, Padded) else y for y in (y1, y2))
        np.testing.assert_array_equal(y1, y2)
        dy = rng.standard_normal(y1.shape)
        (dx1, g1), (dx2, g2) = (
            variant.backward(params, saved1, dy),
            lstm.backward(params, saved2, dy),
        )
        np.testing.assert_array_equal(dx1, dx2)
        assert g1.keys() == g2.keys()
        for key in g1:
            np.testing.assert_array_equal(g1[key], g2[key], err_msg=key)


def test_the_general_kernel_with_no_option_matches_the_lstm_kernel(
    rng: np.random.Generator,
) -> None:
    """The variant kernel's own path (not taken by an all-off spec) computes the LSTM too."""
    w_ih, w_hh = rng.standard_normal((4 * HID, IN)), rng.standard_normal((4 * HID, HID))
    bias = rng.standard_normal(4 * HID)
    x, h0, c0 = (rng.standard_normal(s) for s in ((STEPS, BATCH, IN), (BATCH, HID), (BATCH, HID)))
    lengths = np.array([5, 1, 3])
    y1, final1, cache1 = variant_forward(
        x, h0, c0, VariantWeights(w_ih, w_hh, bias, {}, None), Variant(), lengths
    )
    y2, final2, cache2 = layer_forward(x, h0, c0, LayerWeights(w_ih, w_hh, bias, None), lengths)
    assert_close64(y1, y2)
    assert_close64(final1, final2)
    dy, dh, dc = (
        rng.standard_normal(y1.shape),
        rng.standard_normal(h0.shape),
        rng.standard_normal(c0.shape),
    )
    g1 = variant_backward(VariantWeights(w_ih, w_hh, bias, {}, None), Variant(), cache1, dy, dh, dc)
    g2 = layer_backward(LayerWeights(w_ih, w_hh, bias, None), cache2, dy, dh, dc)
    for name in ("dx", "dh0", "dc0", "w_ih", "w_hh", "bias"):
        assert_close64(getattr(g1, name), getattr(g2, name), name)


@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_finite_differences_with_states_two_layers_both_directions(
    options: dict[str, bool], rng: np.random.Generator
) -> None:
    spec = LSTMVariant(IN, HID, num_layers=2, bidirectional=True, return_state=True, **options)
    inputs = sc.parallel(
        sc.Input(("T", "B", IN), name="x"),
        sc.parallel(sc.Input((4, "B", HID), name="h0"), sc.Input((4, "B", HID), name="c0")),
    )
    model = inputs >> spec
    x = rng.standard_normal((STEPS, BATCH, IN))
    h0, c0 = rng.standard_normal((4, BATCH, HID)), rng.standard_normal((4, BATCH, HID))
    report = assert_gradcheck(model, (x, (h0, c0)))
    assert any("weight_c" in k or "weight_gg" in k for k in report.errors) == (
        options.get("peephole", False) or options.get("full_gate_recurrence", False)
    )


@pytest.mark.parametrize("name", ["V", "CIFG", "FGR"])
def test_finite_differences_with_lengths_hold_padding_out(
    name: str, rng: np.random.Generator
) -> None:
    spec = LSTMVariant.greff(name, IN, HID, bidirectional=True, batch_first=True)
    model = (spec >> LastStep() >> Linear(2 * HID, 2)).to(np.float64)
    x, lengths = rng.standard_normal((BATCH, STEPS, IN)), np.array([2, 5, 1])
    report = sc.gradcheck(model, (x, lengths))
    assert report.passed(1e-7), str(report)
    poisoned = x.copy()
    poisoned[0, 2:] = np.nan
    np.testing.assert_array_equal(model((poisoned, lengths)), model((x, lengths)))


@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_export_verifies_forward_and_backward(options: dict[str, bool]) -> None:
    spec = LSTMVariant(IN, HID, num_layers=2, bidirectional=True, dropout=0.2, **options)
    model = (spec >> LastStep() >> Linear(2 * HID, 2)).to(np.float64)
    source = pytorch.to_source(model)
    assert "class " in source and "nn.LSTM(" not in source
    report = pytorch.verify(model)
    assert report.ok, str(report)


def _from_file(model: sc.SpecChain, folder: Path) -> torch.nn.Module:
    """The generated class imported from a real file (TorchScript reads its source), with
    the spec's weights."""
    path = folder / "variant_model.py"
    path.write_text(pytorch.to_source(model))
    module_spec = importlib.util.spec_from_file_location("variant_model", path)
    assert module_spec is not None and module_spec.loader is not None
    loaded = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(loaded)
    module: torch.nn.Module = loaded.Model().double()
    module.load_state_dict(pytorch.build_torch_module(model).state_dict())
    return module


def test_export_with_lengths_state_and_return_state_verifies_and_scripts(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    spec = LSTMVariant.greff("FGR", IN, HID, batch_first=True, return_state=True)
    seq = sc.Input(("B", "T", IN), name="seq", lengths=True)
    padded = (seq >> spec >> sc.modules.Select(0) >> LastStep() >> Linear(HID, 2)).to(np.float64)
    report = pytorch.verify(padded)
    assert report.ok, str(report)
    inputs = sc.parallel(
        sc.Input(("T", "B", IN), name="x"),
        sc.parallel(sc.Input((1, "B", HID), name="h0"), sc.Input((1, "B", HID), name="c0")),
    )
    stateful = (inputs >> LSTMVariant.greff("CIFG", IN, HID, return_state=True)).to(np.float64)
    assert pytorch.verify(stateful).ok
    module = _from_file(stateful, tmp_path).lstm_variant
    scripted = torch.jit.script(module)
    x, h0, c0 = (
        torch.from_numpy(rng.standard_normal(s)) for s in ((STEPS, 2, IN), (1, 2, HID), (1, 2, HID))
    )
    y, (h, c) = scripted(x, (h0, c0))
    y_ref, (h_ref, c_ref) = module(x, (h0, c0))
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close((h, c), (h_ref, c_ref))


def test_the_exported_class_reads_like_its_equations() -> None:
    source = pytorch.to_source(LSTMVariant.greff("CIFG", IN, HID).as_chain())
    assert "class PeepholeCoupledLSTM(nn.Module):" in source
    assert "c_new = (1 - i) * c + i * g" in source
    assert "o = torch.sigmoid(z_o + w_co * c_new)" in source


def test_save_and_load_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    model = LSTMVariant.greff("FGR", IN, HID, num_layers=2) >> LastStep() >> Linear(HID, 2)
    path = tmp_path / "variant.safetensors"
    model.save(path)
    loaded = sc.load(path)
    spec = loaded.spec("lstm_variant")
    assert isinstance(spec, LSTMVariant) and spec.full_gate_recurrence and spec.peephole
    x = rng.standard_normal((STEPS, 2, IN)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))


def test_describe_summary_and_diagram_name_the_variant() -> None:
    assert LSTMVariant.greff("NIG", IN, HID).describe() == f"{IN} -> {HID}, NIG variant"
    assert LSTMVariant(IN, HID, peephole=True).describe() == f"{IN} -> {HID}, peephole"
    model = LSTMVariant.greff("CIFG", IN, HID, bidirectional=True) >> LastStep()
    assert "CIFG variant" in str(model.summary())
    expanded = graphviz.to_dot(model, expand=True).source
    assert "l0_reverse" in expanded and "CIFG variant" in expanded


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: LSTMVariant(IN, HID, coupled_gates=True, no_forget_gate=True), "needs both gates"),
        (
            lambda: LSTMVariant(
                IN,
                HID,
                full_gate_recurrence=True,
                no_input_gate=True,
                no_forget_gate=True,
                no_output_gate=True,
            ),
            "has none",
        ),
        (lambda: LSTMVariant.greff("XYZ", IN, HID), r"unknown Greff et al\. variant 'XYZ'"),
    ],
    ids=["coupled_without_forget_gate", "gate_recurrence_without_gates", "unknown_paper_name"],
)
def test_impossible_variants_are_refused(build: Any, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        build()
