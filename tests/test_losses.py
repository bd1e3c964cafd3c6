"""``mse`` and ``cross_entropy`` against ``torch.nn.functional``: values and gradients for every
reduction, ``ignore_index``, huge logits without floating-point warnings, and pinned messages."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import specchain as sc
from specchain.losses import CrossEntropyLoss, MSELoss
from specchain.modules import Linear, Tanh
from tests.helpers import (
    ErrorInput,
    assert_close,
    assert_close64,
    check_error_input,
    error_params,
    load_torch,
    torch_from,
)

SHAPES = [(5,), (3, 4), (2, 3, 4)]
REDUCTIONS = ["mean", "sum"]

# --- mse ---------------------------------------------------------------------------------


def torch_mse(y: np.ndarray, t: np.ndarray, reduction: str) -> tuple[torch.Tensor, torch.Tensor]:
    yt = torch_from(y, requires_grad=True)
    value = F.mse_loss(yt, torch_from(t), reduction=reduction)
    if reduction != "none":
        value.backward()
    return value, yt.grad  # type: ignore[return-value]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"rank{len(s)}")
def test_mse_matches_torch(
    shape: tuple[int, ...], reduction: str, rng: np.random.Generator
) -> None:
    y, t = rng.standard_normal(shape), rng.standard_normal(shape)
    loss = MSELoss(reduction=reduction)
    value, grad = loss.value_and_grad(y, t)
    ref_value, ref_grad = torch_mse(y, t, reduction)
    assert isinstance(value, float)
    assert_close64(np.float64(value), ref_value, "value")
    assert_close64(loss(y, t), ref_value, "call value")
    assert_close64(grad, ref_grad, "gradient")


def test_mse_default_is_mean(rng: np.random.Generator) -> None:
    y, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert sc.losses.mse.reduction == "mean"
    assert sc.losses.mse(y, t) == MSELoss(reduction="mean")(y, t)
    np.testing.assert_allclose(sc.losses.mse(y, t), np.mean((y - t) ** 2), rtol=1e-14)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"rank{len(s)}")
def test_mse_none_matches_torch(shape: tuple[int, ...], rng: np.random.Generator) -> None:
    y, t = rng.standard_normal(shape), rng.standard_normal(shape)
    ref_value, _ = torch_mse(y, t, "none")
    assert_close64(MSELoss(reduction="none")(y, t), ref_value, "per element")


def test_mse_float32_matches_torch(rng: np.random.Generator) -> None:
    y = rng.standard_normal((4, 3)).astype(np.float32)
    t = rng.standard_normal((4, 3)).astype(np.float32)
    value, grad = sc.losses.mse.value_and_grad(y, t)
    ref_value, ref_grad = torch_mse(y, t, "mean")
    assert grad.dtype == np.float32
    assert_close(np.float32(value), ref_value, "value")
    assert_close(grad, ref_grad, "gradient")


def test_mse_of_nothing_is_nan_like_torch() -> None:
    value, grad = sc.losses.mse.value_and_grad(np.zeros(0), np.zeros(0))
    assert np.isnan(value) and torch.isnan(F.mse_loss(torch.zeros(0), torch.zeros(0)))
    assert grad.shape == (0,)


# --- cross_entropy -----------------------------------------------------------------------


def torch_ce(
    logits: np.ndarray, target: np.ndarray, reduction: str, ignore_index: int = -100
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """torch's cross_entropy with our layout: classes last, so flatten to ``[N, C]``."""
    classes = logits.shape[-1]
    lt = torch_from(logits, requires_grad=True)
    value = F.cross_entropy(
        lt.reshape(-1, classes),
        torch_from(target.astype(np.int64)).reshape(-1),
        reduction=reduction,
        ignore_index=ignore_index,
    )
    if reduction == "none":
        return value.reshape(target.shape), None
    value.backward()
    return value, lt.grad


def random_problem(
    rng: np.random.Generator, lead: tuple[int, ...], classes: int, scale: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    logits = scale * rng.standard_normal((*lead, classes))
    return logits, rng.integers(0, classes, size=lead)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("lead", [(), (6,), (4, 3)], ids=["unbatched", "N", "T_B"])
def test_cross_entropy_matches_torch(
    lead: tuple[int, ...], reduction: str, rng: np.random.Generator
) -> None:
    logits, target = random_problem(rng, lead, 5)
    loss = CrossEntropyLoss(reduction=reduction)
    value, grad = loss.value_and_grad(logits, target)
    ref_value, ref_grad = torch_ce(logits, target, reduction)
    assert_close64(np.float64(value), ref_value, "value")
    assert_close64(loss(logits, target), ref_value, "call value")
    assert_close64(grad, ref_grad, "gradient")


@pytest.mark.parametrize("lead", [(6,), (4, 3)], ids=["N", "T_B"])
def test_cross_entropy_none_matches_torch(lead: tuple[int, ...], rng: np.random.Generator) -> None:
    logits, target = random_problem(rng, lead, 5)
    target[0] = -100
    per_item = CrossEntropyLoss(reduction="none")(logits, target)
    ref, _ = torch_ce(logits, target, "none")
    assert per_item.shape == lead
    assert_close64(per_item, ref, "per item")
    assert np.all(per_item[0] == 0.0)  # ignored entries count for nothing


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, 2, -1])
def test_cross_entropy_ignore_index_matches_torch(
    ignore_index: int, reduction: str, rng: np.random.Generator
) -> None:
    logits, target = random_problem(rng, (5, 3), 4)
    target[[0, 2, 4], [1, 0, 2]] = ignore_index
    loss = CrossEntropyLoss(reduction=reduction, ignore_index=ignore_index)
    ref_value, ref_grad = torch_ce(logits, target, reduction, ignore_index)
    assert_close64(loss(logits, target), ref_value, "value")
    if reduction != "none":
        value, grad = loss.value_and_grad(logits, target)
        assert_close64(np.float64(value), ref_value, "value_and_grad value")
        assert_close64(grad, ref_grad, "gradient")
        assert not grad[0, 1].any() and not grad[2, 0].any()  # ignored rows get no gradient


def test_cross_entropy_all_ignored_is_nan_with_zero_gradient_like_torch(
    rng: np.random.Generator,
) -> None:
    logits = rng.standard_normal((3, 4))
    target = np.full(3, -100)
    value, grad = sc.losses.cross_entropy.value_and_grad(logits, target)
    ref_value, ref_grad = torch_ce(logits, target, "mean")
    assert np.isnan(value) and torch.isnan(ref_value)
    assert_close64(grad, ref_grad, "gradient")
    assert sc.losses.CrossEntropyLoss(reduction="sum")(logits, target) == 0.0


def test_cross_entropy_float32_matches_torch(rng: np.random.Generator) -> None:
    logits, target = random_problem(rng, (4, 3), 6)
    logits = logits.astype(np.float32)
    value, grad = sc.losses.cross_entropy.value_and_grad(logits, target)
    ref_value, ref_grad = torch_ce(logits, target, "mean")
    assert grad.dtype == np.float32
    assert_close(np.float32(value), ref_value, "value")
    assert_close(grad, ref_grad, "gradient")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_huge_logits_are_finite_exact_and_quiet(dtype: type) -> None:
    logits = np.array(
        [
            [1e4, -1e4, 0.0],  # confident and right: loss 0
            [1e4, -1e4, 0.0],  # confident and wrong: loss 2e4
            [-1e4, -1e4, -1e4],  # all equal: log 3
            [0.0, 1e4, 1e4],  # a tie at the top: log 2
            [-1e4, 1e4 - 1.0, 1e4],
        ],
        dtype=dtype,
    )
    target = np.array([0, 1, 2, 2, 1])
    with np.errstate(all="raise"):
        per_item = CrossEntropyLoss(reduction="none")(logits, target)
        value, grad = sc.losses.cross_entropy.value_and_grad(logits, target)
    assert np.isfinite(per_item).all() and np.isfinite(value) and np.isfinite(grad).all()
    expected = [0.0, 2e4, np.log(3), np.log(2), np.log1p(np.exp(-1.0)) + 1.0]
    assert_close(per_item, np.array(expected, dtype=dtype), "per item")
    ref_value, ref_grad = torch_ce(logits, target, "mean")
    assert_close(np.asarray(value, dtype=dtype), ref_value, "value")
    assert_close(grad, ref_grad, "gradient")
    np.testing.assert_allclose(grad.sum(axis=-1), 0.0, atol=1e-7)  # softmax - one_hot


def test_value_and_grad_of_a_model_matches_torch(rng: np.random.Generator) -> None:
    model = (Linear(3, 4) >> Tanh() >> Linear(4, 5)).to(np.float64)
    x, target = rng.standard_normal((6, 2, 3)), rng.integers(0, 5, size=(6, 2))
    value, grads = model.value_and_grad(x, target, loss=sc.losses.cross_entropy)
    first, head = torch.nn.Linear(3, 4).double(), torch.nn.Linear(4, 5).double()
    load_torch(first, model.named_parameters(), "linear.")
    load_torch(head, model.named_parameters(), "linear_1.")
    logits = head(torch.tanh(first(torch_from(x))))
    ref = F.cross_entropy(logits.reshape(-1, 5), torch_from(target).reshape(-1))
    ref.backward()
    assert_close64(np.float64(value), ref, "loss")
    for name, module in (("linear", first), ("linear_1", head)):
        assert_close64(grads[f"{name}.weight"], module.weight.grad, f"{name}.weight")
        assert_close64(grads[f"{name}.bias"], module.bias.grad, f"{name}.bias")


# --- bad inputs --------------------------------------------------------------------------

F64 = np.zeros((3, 4))
BAD_INPUTS = [
    ErrorInput(
        "ce_target_too_large",
        lambda: sc.losses.cross_entropy(np.zeros((2, 3, 4)), np.array([[0, 1, 2], [3, 4, 0]])),
        sc.SpecError,
        re.escape(
            "cross_entropy: target 4 at position [1, 1] is out of range for 4 classes "
            "(valid: 0..3 or ignore_index -100)"
        ),
    ),
    ErrorInput(
        "ce_target_negative",
        lambda: sc.losses.cross_entropy(F64, np.array([0, -1, 2])),
        sc.SpecError,
        re.escape("cross_entropy: target -1 at position [1] is out of range for 4 classes"),
    ),
    ErrorInput(
        "ce_target_negative_not_ignored",
        lambda: CrossEntropyLoss(ignore_index=-1)(F64, np.array([-1, -100, 2])),
        sc.SpecError,
        re.escape("target -100 at position [1] is out of range for 4 classes (valid: 0..3 or "),
    ),
    ErrorInput(
        "ce_target_checked_in_value_and_grad",
        lambda: sc.losses.cross_entropy.value_and_grad(F64, np.array([0, 1, 9])),
        sc.SpecError,
        re.escape("target 9 at position [2]"),
    ),
    ErrorInput(
        "ce_float_target",
        lambda: sc.losses.cross_entropy(F64, np.array([0.0, 1.0, 2.0])),
        TypeError,
        re.escape(
            "cross_entropy.target must be an integer numpy array of class indices, "
            "got float64 array"
        ),
    ),
    ErrorInput(
        "ce_list_target",
        lambda: sc.losses.cross_entropy(F64, [0, 1, 2]),  # type: ignore[arg-type]
        TypeError,
        r"integer numpy array of class indices, got list$",
    ),
    ErrorInput(
        "ce_int_logits",
        lambda: sc.losses.cross_entropy(np.zeros((3, 4), np.int64), np.array([0, 1, 2])),
        TypeError,
        r"^cross_entropy\.input must be a float numpy array, got int64 array$",
    ),
    ErrorInput(
        "ce_target_shape",
        lambda: sc.losses.cross_entropy(F64, np.array([0, 1, 2, 3])),
        sc.ShapeError,
        re.escape("cross_entropy: logits [3, 4] need targets of shape [3], got [4]"),
    ),
    ErrorInput(
        "ce_target_shape_classes_first",
        lambda: sc.losses.cross_entropy(np.zeros((4, 3)), np.array([0, 1, 2])),
        sc.ShapeError,
        re.escape("cross_entropy: logits [4, 3] need targets of shape [4], got [3]"),
    ),
    ErrorInput(
        "ce_scalar_logits",
        lambda: sc.losses.cross_entropy(np.array(1.0), np.array(0)),
        sc.ShapeError,
        re.escape("cross_entropy: logits need a class axis (the last), got a scalar"),
    ),
    ErrorInput(
        "ce_float_ignore_index",
        lambda: CrossEntropyLoss(ignore_index=1.5),  # type: ignore[arg-type]
        TypeError,
        r"^CrossEntropyLoss\.ignore_index must be an int, got 1\.5 \(float\)$",
    ),
    ErrorInput(
        "mse_shape",
        lambda: sc.losses.mse(np.zeros(3), np.zeros((3, 1))),
        sc.ShapeError,
        re.escape(
            "mse: input shape [3] != target shape [3, 1]; reshape the target (no broadcasting)"
        ),
    ),
    ErrorInput(
        "mse_dtype",
        lambda: sc.losses.mse(np.zeros(3, np.float32), np.zeros(3)),
        TypeError,
        r"^mse: input dtype float32 != target dtype float64$",
    ),
    ErrorInput(
        "mse_int_target",
        lambda: sc.losses.mse(np.zeros(3), np.zeros(3, np.int64)),
        TypeError,
        r"^mse\.target must be a float numpy array, got int64 array$",
    ),
    ErrorInput(
        "mse_list_input",
        lambda: sc.losses.mse([0.0, 1.0], np.zeros(2)),  # type: ignore[arg-type]
        TypeError,
        r"^mse\.input must be a float numpy array, got list$",
    ),
    ErrorInput(
        "unknown_reduction",
        lambda: MSELoss(reduction="avg"),
        sc.SpecError,
        re.escape("MSELoss.reduction must be one of ('mean', 'sum', 'none'), got 'avg'"),
    ),
    ErrorInput(
        "value_and_grad_of_none",
        lambda: CrossEntropyLoss(reduction="none").value_and_grad(F64, np.array([0, 1, 2])),
        sc.SpecError,
        re.escape("value_and_grad needs a scalar loss; use reduction='mean' or 'sum'"),
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)
