"""``Dropout`` and ``ScaledDropout``: torch parity with the mask torch drew, seeded masks,
inference identity, p = 0 and p = 1, gradients and the bad-input table."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.modules import Dropout, ScaledDropout
from specchain.modules.dropout import dropout_mask
from tests.helpers import (
    ErrorInput,
    assert_close,
    assert_gradcheck,
    check_error_input,
    error_params,
    one_torch_thread,
    torch_from,
)

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_train_matches_torch_with_torchs_mask(
    dtype: type, p: float, rng: np.random.Generator
) -> None:
    """torch draws the mask; we read it off its output and pass it as ``(x, keep)``."""
    x = rng.standard_normal((6, 4, 5)).astype(dtype)  # no exact zeros, so keep = (y != 0)
    dy = rng.standard_normal(x.shape).astype(dtype)
    torch.manual_seed(0)
    xt = torch_from(x, requires_grad=True)
    yt = torch.nn.Dropout(p).train()(xt)
    yt.backward(torch_from(dy))
    keep = (yt != 0).numpy()
    assert 0 < keep.sum() < keep.size

    model = Dropout(p).as_chain()
    y, tape = model.forward((x, keep), train=True, rng=0)
    (dx, dkeep), grads = model.backward(tape, dy)
    assert_close(y, yt, "output")
    assert_close(dx, xt.grad, "dx")
    assert dkeep is None and grads == {}


@pytest.mark.parametrize("keep_dtype", [bool, np.int32, np.int64, np.float32, np.float64])
def test_explicit_mask_is_a_0_1_keep_mask(keep_dtype: type, rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 4))
    keep = (rng.random((3, 4)) > 0.5).astype(keep_dtype)
    y = Dropout(0.25).as_chain().forward((x, keep), train=True)[0]
    np.testing.assert_allclose(y, np.where(keep.astype(bool), x / 0.75, 0.0), rtol=1e-15, atol=0)
    assert y.dtype == np.float64


def test_seeded_masks_are_reproducible_and_inverted(rng: np.random.Generator) -> None:
    p = 0.3
    model = Dropout(p).as_chain().to(np.float64)
    x = rng.standard_normal((50, 40)) + 10.0  # no zeros
    y1, tape = model.forward(x, train=True, rng=4)
    y2, _ = model.forward(x, train=True, rng=4)
    y3, _ = model.forward(x, train=True, rng=5)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(y1, y3)
    kept = y1 != 0
    np.testing.assert_allclose(y1[kept], x[kept] / (1 - p), rtol=1e-15)
    assert abs(kept.mean() - (1 - p)) < 0.05  # 2000 draws: 5 sigma is about 0.05
    dx, _ = model.backward(tape, np.ones_like(x))
    np.testing.assert_array_equal(dx, np.where(kept, 1 / (1 - p), 0.0))


def test_generator_advances_between_calls(rng: np.random.Generator) -> None:
    model = Dropout(0.5).as_chain()
    x = np.ones((20, 20), np.float32)
    gen = np.random.default_rng(0)
    a = model.forward(x, train=True, rng=gen)[0]
    b = model.forward(x, train=True, rng=gen)[0]
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_inference_is_identity_like_torch_eval(p: float, rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 2, 4)).astype(np.float32)
    model = Dropout(p).as_chain()
    y, tape = model.forward(x, train=False, rng=0)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(model(x), torch.nn.Dropout(p).eval()(torch_from(x)).numpy())
    dx, _ = model.backward(tape, 2 * x)
    np.testing.assert_array_equal(dx, 2 * x)


def test_p_zero_is_identity_in_training(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 4))
    y, _ = Dropout(0.0).as_chain().to(np.float64).forward(x, train=True, rng=0)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_p_one_gives_zeros_like_torch(dtype: type, rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 4)).astype(dtype)
    model = Dropout(1.0).as_chain().to(dtype)
    y, tape = model.forward(x, train=True, rng=0)
    xt = torch_from(x, requires_grad=True)
    yt = torch.nn.Dropout(1.0).train()(xt)
    yt.sum().backward()
    assert_close(y, yt, "output")
    dx, _ = model.backward(tape, np.ones_like(x))
    assert_close(dx, xt.grad, "dx")
    assert not y.any() and not dx.any() and np.isfinite(dx).all()
    y_explicit, _ = model.forward((x, np.ones(x.shape, bool)), train=True)
    assert not y_explicit.any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_dropout_mask_values(dtype: type) -> None:
    mask = dropout_mask(np.random.default_rng(0), (1000,), 0.2, np.dtype(dtype))
    assert mask.dtype == dtype
    assert set(np.unique(mask)) == {dtype(0.0), dtype(1.0) / dtype(0.8)}
    assert not dropout_mask(np.random.default_rng(0), (5,), 1.0, np.dtype(dtype)).any()


def test_gradcheck_in_training(rng: np.random.Generator) -> None:
    model = Dropout(0.4).as_chain().to(np.float64)
    report = sc.gradcheck(model, rng.standard_normal((4, 5)), train=True, rng=3)
    assert report.passed(1e-7), str(report)


# --- ScaledDropout -----------------------------------------------------------------------------


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_scaled_dropout_scales_in_both_modes(
    dtype: type, p: float, train: bool, rng: np.random.Generator
) -> None:
    x = rng.standard_normal((3, 2, 4)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    model = ScaledDropout(p).as_chain()
    y, tape = model.forward(x, train=train, rng=0)
    dx, grads = model.backward(tape, dy)
    xt = torch_from(x, requires_grad=True)
    yt = xt * (1 - p)
    yt.backward(torch_from(dy))
    assert_close(y, yt, "output")
    assert_close(dx, xt.grad, "dx")
    assert y.dtype == dtype and grads == {}


def test_scaled_dropout_gradcheck(rng: np.random.Generator) -> None:
    assert_gradcheck(ScaledDropout(0.3).as_chain(), rng.standard_normal((2, 3)))


# --- bad inputs --------------------------------------------------------------------------------

BAD_INPUTS = [
    ErrorInput(
        "p_above_one",
        lambda: Dropout(1.5),
        sc.SpecError,
        r"^Dropout\.p must be in \[0, 1\], got 1\.5$",
    ),
    ErrorInput(
        "p_negative",
        lambda: Dropout(-0.1),
        sc.SpecError,
        r"^Dropout\.p must be in \[0, 1\], got -0\.1$",
    ),
    ErrorInput(
        "p_str",
        lambda: Dropout("0.5"),  # type: ignore[arg-type]
        TypeError,
        r"^Dropout\.p must be a float in \[0, 1\], got '0\.5' \(str\)$",
    ),
    ErrorInput(
        "p_bool",
        lambda: Dropout(True),
        TypeError,
        r"^Dropout\.p must be a float in \[0, 1\], got True \(bool\)$",
    ),
    ErrorInput(
        "scaled_p_above_one",
        lambda: ScaledDropout(2.0),
        sc.SpecError,
        r"^ScaledDropout\.p must be in \[0, 1\], got 2\.0$",
    ),
    ErrorInput(
        "mask_shape_mismatch",
        lambda: Dropout(0.5).as_chain().forward((np.zeros((3, 8)), np.ones((3, 7))), train=True),
        sc.ShapeError,
        re.escape("feature size: expected 8, got 7"),
    ),
    ErrorInput(
        "int_input",
        lambda: Dropout(0.5)(np.zeros((3, 8), np.int64)),
        sc.ShapeError,
        re.escape("Dropout takes a float tensor (or (x, mask)), got int[3, 8]"),
    ),
    ErrorInput(
        "scaled_int_input",
        lambda: ScaledDropout(0.5)(np.zeros((3, 8), np.int64)),
        sc.ShapeError,
        re.escape("ScaledDropout takes a float tensor (or (x, mask)), got int[3, 8]"),
    ),
    ErrorInput(
        "mask_not_zero_one",
        lambda: (
            Dropout(0.5)
            .as_chain()
            .forward(
                (np.zeros((3, 4)), np.array([[1, 0, 1, 1], [1, 1, 2, 0], [0, 0, 0, 0]])), train=True
            )
        ),
        sc.SpecError,
        re.escape(
            "Dropout mask must hold only 0 and 1 (1 keeps), got 2 at position [1, 2]; "
            "pass a bool array such as rng.random(x.shape) >= p"
        ),
    ),
    ErrorInput(
        "fractional_mask",
        lambda: (
            Dropout(0.5).as_chain().forward((np.zeros((2, 2)), np.full((2, 2), 0.5)), train=True)
        ),
        sc.SpecError,
        re.escape("got 0.5 at position [0, 0]"),
    ),
    ErrorInput(
        "tuple_mask",
        lambda: (
            Dropout(0.5)
            .as_chain()
            .forward((np.zeros((2, 2)), (np.ones((2, 2)), np.ones((2, 2)))), train=True)
        ),
        sc.ShapeError,
        re.escape("Dropout mask must be one array, got ([2, 2], [2, 2])"),
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)
