"""``LayerNorm``: torch parity (output, input gradient, weight and bias gradients), finite
differences, large and tiny inputs without floating-point warnings, export, save/load, the diagram
and the bad-input table."""

from __future__ import annotations

import ast
import importlib.util
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.exporters import graphviz, pytorch
from specchain.modules import LSTM, LayerNorm, Linear, Tanh, TimeDistributed
from tests.helpers import (
    TOLERANCES,
    TORCH_DTYPES,
    ErrorInput,
    assert_close,
    assert_gradcheck,
    check_error_input,
    error_params,
    load_torch,
    run_chain,
    torch_from,
)

F = 6
SHAPES = [(F,), (0, F), (5, F), (4, 3, F), (2, 0, F), (2, 3, 4, F)]  # rank 1..4, with B = 0
SHAPE_IDS = ["rank1", "B0", "rank2", "rank3", "rank3_B0", "rank4"]
OPTIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "eps": {"eps": 1e-3},
    "eps0": {"eps": 0},
    "no_bias": {"bias": False},
    "no_affine": {"elementwise_affine": False},
}


def randomized(model: sc.SpecChain, rng: np.random.Generator) -> sc.SpecChain:
    """``model`` with every parameter drawn N(0, 1) in its dtype: ones and zeros would hide a
    gradient that forgets ``weight``."""
    model.load_state_dict(
        {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in model.state_dict().items()}
    )
    return model


def torch_reference(
    model: sc.SpecChain, options: dict[str, Any], dtype: type, x: np.ndarray, dy: np.ndarray
) -> tuple[torch.nn.LayerNorm, torch.Tensor, torch.Tensor]:
    """``(module, output, input)`` of ``nn.LayerNorm`` with our weights, after backward."""
    ref = torch.nn.LayerNorm(F, **options, dtype=TORCH_DTYPES[np.dtype(dtype)])
    load_torch(ref, model.named_parameters(), "layer_norm.")
    xt = torch_from(x, requires_grad=True)
    yt = ref(xt)
    yt.backward(torch_from(dy))
    return ref, yt, xt


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_matches_torch(
    shape: tuple[int, ...], options: dict[str, Any], dtype: type, rng: np.random.Generator
) -> None:
    model = randomized(LayerNorm(F, **options).as_chain().to(dtype), rng)
    x = (3 * rng.standard_normal(shape) + 1).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    y, dx, grads = run_chain(model, x, dy)
    ref, yt, xt = torch_reference(model, options, dtype, x, dy)

    assert_close(y, yt, "output")
    assert_close(dx, xt.grad, "input gradient")
    assert set(grads) == {f"layer_norm.{name}" for name, _ in ref.named_parameters()}
    for name, p in ref.named_parameters():
        assert_close(grads[f"layer_norm.{name}"], p.grad, f"layer_norm.{name}")


def test_parameter_names_shapes_and_values_are_pytorchs() -> None:
    for options in OPTIONS.values():
        params = LayerNorm(F, **options).as_chain().named_parameters()
        ref = torch.nn.LayerNorm(F, **options)
        assert list(params) == [f"layer_norm.{k}" for k in ref.state_dict()]
        for key, value in ref.state_dict().items():
            assert params[f"layer_norm.{key}"].dtype == np.float32
            np.testing.assert_array_equal(params[f"layer_norm.{key}"], value.numpy())
    assert LayerNorm(F, elementwise_affine=False).num_params == 0
    assert LayerNorm(F, bias=False).num_params == F


def test_shape_contract() -> None:
    assert str(LayerNorm(8).as_chain().in_type) == "[..., 8]"
    assert str(LayerNorm(8).as_chain().out_type) == "[..., 8]"
    model = LSTM(4, 8) >> LayerNorm(8) >> Linear(8, 3)
    node = model.graph.nodes["layer_norm"]
    assert (str(node["in_type"]), str(node["out_type"])) == ("[T, B, 8]", "[T, B, 8]")
    after_tanh = Tanh() >> LayerNorm(8)  # [...] from an elementwise first node reads as [..., 8]
    assert str(after_tanh.out_type) == "[..., 8]"
    with pytest.raises(sc.ShapeError, match=r"feature size: expected 8, got 5$"):
        after_tanh(np.zeros((2, 5), np.float32))


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({}, "8"),
        ({"eps": 1e-3}, "8, eps=0.001"),
        ({"bias": False}, "8, no bias"),
        ({"elementwise_affine": False}, "8, no affine"),
        ({"eps": 0.1, "elementwise_affine": False, "bias": False}, "8, eps=0.1, no affine"),
    ],
)
def test_describe(options: dict[str, Any], text: str) -> None:
    assert LayerNorm(8, **options).describe() == text


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("shape", [(F,), (3, 2, F)], ids=["rank1", "rank3"])
def test_gradcheck(
    shape: tuple[int, ...], options: dict[str, Any], rng: np.random.Generator
) -> None:
    model = randomized(LayerNorm(F, **options).as_chain().to(np.float64), rng)
    report = assert_gradcheck(model, rng.standard_normal(shape))
    assert set(report.errors) == {"input", *model.named_parameters()}


def test_gradcheck_between_linears(rng: np.random.Generator) -> None:
    model = randomized((Linear(3, F) >> LayerNorm(F) >> Linear(F, 2)).to(np.float64), rng)
    report = assert_gradcheck(model, rng.standard_normal((4, 2, 3)))
    assert report.worst > 0  # the check saw non-trivial gradients
    assert {"layer_norm.weight", "layer_norm.bias", "input"} <= set(report.errors)


def test_feature_size_one_gives_the_bias_and_no_input_gradient() -> None:
    model = LayerNorm(1).as_chain().to(np.float64)
    model.load_state_dict(
        {"layer_norm.weight": np.array([2.0]), "layer_norm.bias": np.array([3.0])}
    )
    y, dx, grads = run_chain(model, np.array([[5.0], [-7.0]]), np.array([[1.0], [4.0]]))
    np.testing.assert_array_equal(y, [[3.0], [3.0]])
    np.testing.assert_array_equal(dx, [[0.0], [0.0]])
    np.testing.assert_array_equal(grads["layer_norm.bias"], [5.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_large_tiny_and_constant_inputs_without_fp_warnings(
    dtype: type, rng: np.random.Generator
) -> None:
    tiny = float(np.finfo(dtype).tiny) ** 0.75  # its square underflows
    x = np.array(
        [
            [-1e4, 1e4, 3e3, -2.5e3, 0.0, 1e4],  # the contract's largest magnitude
            [1e4] * F,  # a constant row: variance 0, output = bias, eps keeps it finite
            [tiny, -2 * tiny, 3 * tiny, 0.0, tiny / 2, -tiny],  # squares flush to 0 (eps rules)
            [1e4, 1e4, 1e4, 1e4, 1e4, -1e4],
        ],
        dtype=dtype,
    )
    model = randomized(LayerNorm(F).as_chain().to(dtype), rng)
    dy = rng.standard_normal(x.shape).astype(dtype)
    with np.errstate(all="raise"):
        y, dx, grads = run_chain(model, x, dy)
    for value in (y, dx, *grads.values()):
        assert value.dtype == dtype and np.isfinite(value).all()
    # The reference is torch in float64 on the same values: torch's float32 CPU backward loses
    # digits on the constant row (its dx formula cancels terms of size |x|: -110.0 where the
    # float64 answer is -109.626...), ours keeps them.
    model64 = LayerNorm(F).as_chain().to(np.float64)
    model64.load_state_dict({k: v.astype(np.float64) for k, v in model.state_dict().items()})
    ref, yt, xt = torch_reference(
        model64, {}, np.float64, x.astype(np.float64), dy.astype(np.float64)
    )
    assert_close(y, yt.detach().numpy().astype(dtype), "output")
    assert_close(dx, xt.grad.numpy().astype(dtype), "input gradient")
    for name, p in ref.named_parameters():
        assert p.grad is not None
        expected = p.grad.numpy().astype(dtype)
        assert_close(grads[f"layer_norm.{name}"], expected, f"layer_norm.{name}")


def test_a_float64_eps_keeps_float32_float32(rng: np.random.Generator) -> None:
    model = LayerNorm(F, eps=np.float64(1e-3), elementwise_affine=False).as_chain()
    x = rng.standard_normal((3, F)).astype(np.float32)
    y, dx, _ = run_chain(model, x, np.ones_like(x))
    assert y.dtype == dx.dtype == np.float32


def test_nan_propagates_to_its_row_only(rng: np.random.Generator) -> None:
    model = LayerNorm(F).as_chain().to(np.float64)
    x = rng.standard_normal((3, F))
    x[1, 2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, dx, _ = run_chain(model, x, np.ones((3, F)))
    assert np.isnan(y[1]).all() and np.isnan(dx[1]).all()
    assert np.isfinite(y[[0, 2]]).all() and np.isfinite(dx[[0, 2]]).all()


# --- export, save/load, diagram ---------------------------------------------------------------


def lstm_layer_norm_linear(dtype: type, rng: np.random.Generator) -> sc.SpecChain:
    return randomized((LSTM(4, 8) >> LayerNorm(8) >> Linear(8, 3)).to(dtype), rng)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(5, 2, 4), (3, 1, 4), (6, 4)], ids=["T5_B2", "T3_B1", "T6"])
def test_export_verifies(shape: tuple[int, ...], dtype: type, rng: np.random.Generator) -> None:
    model = lstm_layer_norm_linear(dtype, rng)
    x = rng.standard_normal(shape).astype(dtype)
    report = pytorch.verify(model, x)
    rtol, atol = TOLERANCES[np.dtype(dtype)]
    assert report.within(rtol, atol), str(report)
    expected = {"output[0]", "input_grad[0]", *model.named_parameters()}
    assert set(report.diffs) == expected, "every gradient, the LayerNorm's too, was compared"
    assert report.max_abs > 0  # two implementations, not one compared with itself
    with torch.no_grad():
        out = pytorch.build_torch_module(model)(torch_from(x))
    assert_close(out, model(x), "the exported module's output, in the model's dtype")


def test_generated_code_uses_nn_layer_norm(tmp_path: Path) -> None:
    model = (
        LSTM(4, 8)
        >> LayerNorm(8)
        >> LayerNorm(8, eps=1e-3, bias=False)
        >> LayerNorm(8, 0.0, False)
        >> Linear(8, 3)
    )
    path = pytorch.export(model, tmp_path, class_name="Net")
    source = path.read_text(encoding="utf-8")
    ast.parse(source)
    assert "        self.layer_norm = nn.LayerNorm(8)\n" in source
    assert "        self.layer_norm_1 = nn.LayerNorm(8, eps=0.001, bias=False)\n" in source
    assert (
        "        self.layer_norm_2 = nn.LayerNorm(8, eps=0.0, elementwise_affine=False)\n" in source
    )
    assert "        layer_norm = self.layer_norm(lstm)\n" in source
    module_spec = importlib.util.spec_from_file_location("exported_layer_norm", path)
    assert module_spec is not None and module_spec.loader is not None
    generated = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(generated)  # the file as a user imports it, with its weights
    x = np.random.default_rng(0).standard_normal((5, 2, 4)).astype(np.float32)
    with torch.no_grad():
        assert_close(generated.load()(torch_from(x)), model(x), "the exported file's output")


def test_time_distributed_layer_norm_exports_as_the_layer(rng: np.random.Generator) -> None:
    model = randomized((Linear(4, F) >> TimeDistributed(LayerNorm(F, eps=1e-4))), rng)
    model.to(np.float64)
    assert "        self.time_distributed = nn.LayerNorm(6, eps=0.0001)\n" in pytorch.to_source(
        model
    )
    report = pytorch.verify(model, rng.standard_normal((7, 2, 4)))
    assert report.within(*TOLERANCES[np.dtype(np.float64)]), str(report)
    assert {"time_distributed.weight", "time_distributed.bias"} <= set(report.diffs)


def test_save_and_load_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    model = randomized(LSTM(4, 8) >> LayerNorm(8, eps=1e-3, bias=False) >> Linear(8, 3), rng)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = sc.load(path)
    spec = loaded.spec("layer_norm")
    assert isinstance(spec, LayerNorm)
    assert spec.config() == {
        "normalized_shape": 8,
        "eps": 1e-3,
        "elementwise_affine": True,
        "bias": False,
    }
    assert loaded.state_dict().keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value, err_msg=key)
    x = rng.standard_normal((5, 2, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))


def test_diagram_draws_it_in_its_family_colours() -> None:
    source = graphviz.to_dot(LSTM(4, 8) >> LayerNorm(8) >> Linear(8, 3)).source
    statement = re.search(rf"^\t{graphviz.node_id(('layer_norm',))} \[(.*)\]$", source, re.M)
    assert statement is not None, source
    assert "LayerNorm(8)" in statement.group(1) and "16 params" in statement.group(1)
    palette = graphviz.family_palette("normalization")
    assert palette != graphviz.DEFAULT_PALETTE
    assert f'color="{palette.border}" fillcolor="{palette.fill}"' in statement.group(1)


# --- bad inputs --------------------------------------------------------------------------------

BAD_INPUTS = [
    ErrorInput(
        "zero_size",
        lambda: LayerNorm(0),
        sc.SpecError,
        r"^LayerNorm\.normalized_shape must be a positive int, got 0$",
    ),
    ErrorInput(
        "negative_size",
        lambda: LayerNorm(-4),
        sc.SpecError,
        r"^LayerNorm\.normalized_shape must be a positive int, got -4$",
    ),
    ErrorInput(
        "float_size",
        lambda: LayerNorm(8.0),  # type: ignore[arg-type]
        TypeError,
        r"^LayerNorm\.normalized_shape must be a positive int, got 8\.0 \(float\)$",
    ),
    ErrorInput(
        "bool_size",
        lambda: LayerNorm(True),
        TypeError,
        r"^LayerNorm\.normalized_shape must be a positive int, got True \(bool\)$",
    ),
    ErrorInput(
        "tuple_size",  # PyTorch's tuple form normalises several axes: not offered
        lambda: LayerNorm((8,)),  # type: ignore[arg-type]
        TypeError,
        r"^LayerNorm\.normalized_shape must be a positive int, got \(8,\) \(tuple\)$",
    ),
    ErrorInput(
        "negative_eps",
        lambda: LayerNorm(8, eps=-1e-5),
        sc.SpecError,
        r"^LayerNorm\.eps must be >= 0 and finite, got -1e-05$",
    ),
    ErrorInput(
        "nan_eps",
        lambda: LayerNorm(8, eps=float("nan")),
        sc.SpecError,
        r"^LayerNorm\.eps must be a number, got nan$",
    ),
    ErrorInput(
        "inf_eps",
        lambda: LayerNorm(8, eps=float("inf")),
        sc.SpecError,
        r"^LayerNorm\.eps must be >= 0 and finite, got inf$",
    ),
    ErrorInput(
        "str_eps",
        lambda: LayerNorm(8, eps="1e-5"),  # type: ignore[arg-type]
        TypeError,
        r"^LayerNorm\.eps must be a number, got '1e-5' \(str\)$",
    ),
    ErrorInput(
        "none_eps",
        lambda: LayerNorm(8, eps=None),  # type: ignore[arg-type]
        TypeError,
        r"^LayerNorm\.eps must be a number, got None \(NoneType\)$",
    ),
    ErrorInput(
        "bool_eps",
        lambda: LayerNorm(8, eps=True),
        TypeError,
        r"^LayerNorm\.eps must be a number, got True \(bool\)$",
    ),
    ErrorInput(
        "int_affine_flag",
        lambda: LayerNorm(8, elementwise_affine=1),  # type: ignore[arg-type]
        TypeError,
        r"^LayerNorm\.elementwise_affine must be True or False, got 1 \(int\)$",
    ),
    ErrorInput(
        "str_bias_flag",
        lambda: LayerNorm(8, bias="no"),  # type: ignore[arg-type]
        TypeError,
        r"^LayerNorm\.bias must be True or False, got 'no' \(str\)$",
    ),
    ErrorInput(
        "reserved_name",
        lambda: LayerNorm(8, name="<input>"),
        sc.SpecError,
        r"^the node name '<input>' is reserved",
    ),
    ErrorInput(
        "connect_feature_mismatch_after_lstm",
        lambda: LSTM(4, 8) >> LayerNorm(6),
        sc.ShapeError,
        re.escape(
            "cannot connect 'lstm' (out [T, B, 8]) to 'layer_norm' (expects [..., 6]): "
            "feature size 8 != 6"
        ),
    ),
    ErrorInput(
        "connect_feature_mismatch_before_linear",
        lambda: LayerNorm(4) >> Linear(5, 2),
        sc.ShapeError,
        re.escape(
            "cannot connect 'layer_norm' (out [..., 4]) to 'linear' (expects [..., 5]): "
            "feature size 4 != 5"
        ),
    ),
    ErrorInput(
        "connect_tuple",
        lambda: sc.branch(Linear(3, 4), Linear(3, 4)) >> LayerNorm(4),
        sc.ShapeError,
        re.escape(
            "cannot connect 'linear', 'linear_1' (out ([..., 4], [..., 4])) to 'layer_norm' "
            "(expects [..., 4]): LayerNorm takes one float tensor [..., 4], got "
            "([..., 4], [..., 4])"
        ),
    ),
    ErrorInput(
        "call_feature_mismatch",
        lambda: LayerNorm(3)(np.zeros((2, 5), np.float32)),
        sc.ShapeError,
        re.escape(
            "input to 'layer_norm' (LayerNorm, expects [..., 3]): got [2, 5]: feature size: "
            "expected 3, got 5"
        ),
    ),
    ErrorInput(
        "call_feature_mismatch_without_params",
        lambda: LayerNorm(3, elementwise_affine=False)(np.zeros((4, 2, 5))),
        sc.ShapeError,
        re.escape(
            "input to 'layer_norm' (LayerNorm, expects [..., 3]): got [4, 2, 5]: feature size: "
            "expected 3, got 5"
        ),
    ),
    ErrorInput(
        "call_scalar",
        lambda: LayerNorm(3)(np.array(1.0, np.float32)),
        sc.ShapeError,
        r"LayerNorm needs at least one axis, got a scalar$",
    ),
    ErrorInput(
        "call_int_input",
        lambda: LayerNorm(3)(np.zeros((2, 3), np.int64)),
        sc.ShapeError,
        re.escape("LayerNorm takes one float tensor [..., 3], got int[2, 3]"),
    ),
    ErrorInput(
        "call_dtype_mismatch",
        lambda: LayerNorm(3)(np.zeros((2, 3), np.float64)),
        TypeError,
        r"^input dtype float64 does not match the model's parameter dtype float32; cast the "
        r"input with x\.astype\(np\.float32\) or the model with model\.to\(np\.float64\)$",
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)
