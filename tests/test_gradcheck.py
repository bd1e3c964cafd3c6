"""Finite differences on composed graphs (branch/Concat DAGs, shared specs, parallel, residual,
TimeDistributed), torch parity for weight sharing, and proof that the checker catches a wrong
backward."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.models import zoo
from specchain.modules import (
    Add,
    Concat,
    Identity,
    LastStep,
    Linear,
    ReLU,
    Reverse,
    Select,
    Sigmoid,
    Tanh,
    TimeDistributed,
)
from tests.helpers import assert_close64, assert_gradcheck, load_torch, run_chain, torch_from


def test_bidirectional_dag(rng: np.random.Generator) -> None:
    model = sc.branch(Linear(8, 16), Reverse(axis=0) >> Linear(8, 16) >> Reverse()) >> Concat()
    model = model >> Linear(32, 4)
    assert (str(model.in_type), str(model.out_type)) == ("[T, B, 8]", "[T, B, 4]")
    report = assert_gradcheck(model, rng.standard_normal((4, 2, 8)))
    assert set(report.errors) == {*model.named_parameters(), "input"}
    assert len(model.named_parameters()) == 6


def test_shared_spec_gradient_is_the_sum_of_both_uses(rng: np.random.Generator) -> None:
    lin = Linear(4, 4)
    model = (lin >> Tanh() >> lin).to(np.float64)
    assert model.nodes == ["linear", "tanh", "linear_1"]
    assert set(model.named_parameters()) == {"linear.weight", "linear.bias"}
    x, dy = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 2, 4))
    y, dx, grads = run_chain(model, x, dy)

    ref = torch.nn.Linear(4, 4).double()
    load_torch(ref, model.named_parameters(), "linear.")
    xt = torch_from(x, requires_grad=True)
    yt = ref(torch.tanh(ref(xt)))
    yt.backward(torch_from(dy))
    assert_close64(y, yt, "output")
    assert_close64(dx, xt.grad, "input gradient")
    assert_close64(grads["linear.weight"], ref.weight.grad, "linear.weight")
    assert_close64(grads["linear.bias"], ref.bias.grad, "linear.bias")

    # ... and the sum is really over two uses: each use alone gives a different gradient.
    h = np.tanh(x @ lin.params["weight"].T + lin.params["bias"])
    outer_use = dy.reshape(-1, 4).T @ h.reshape(-1, 4)
    assert not np.allclose(grads["linear.weight"], outer_use)
    assert_gradcheck(model, x)


def test_spec_shared_through_time_distributed(rng: np.random.Generator) -> None:
    lin = Linear(3, 3)
    model = TimeDistributed(lin) >> Sigmoid() >> lin
    assert set(model.named_parameters()) == {"time_distributed.weight", "time_distributed.bias"}
    assert_gradcheck(model, rng.standard_normal((4, 2, 3)))


def test_parallel(rng: np.random.Generator) -> None:
    model = sc.parallel(Linear(3, 4) >> Tanh(), Reverse(axis=0) >> Linear(2, 4)) >> Select(1)
    assert str(model.in_type) == "([..., 3], [T, B, 2])"
    x = (rng.standard_normal((5, 3)), rng.standard_normal((4, 2, 2)))
    report = assert_gradcheck(model, x)
    assert {"input", "input[1]"} <= set(report.errors)


def test_parallel_tuple_output(rng: np.random.Generator) -> None:
    model = sc.parallel(Linear(3, 4), Sigmoid())
    x = (rng.standard_normal((5, 3)), rng.standard_normal((2, 6)))
    assert_gradcheck(model, x)


def test_residual(rng: np.random.Generator) -> None:
    model = sc.branch(Identity(), Linear(4, 4) >> Tanh()) >> Add()
    assert str(model.out_type) == "[..., 4]"
    model.to(np.float64)
    x, dy = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 2, 4))
    y, dx, grads = run_chain(model, x, dy)
    ref = torch.nn.Linear(4, 4).double()
    load_torch(ref, model.named_parameters(), "linear.")
    xt = torch_from(x, requires_grad=True)
    yt = xt + torch.tanh(ref(xt))
    yt.backward(torch_from(dy))
    assert_close64(y, yt, "output")
    assert_close64(dx, xt.grad, "input gradient (both paths)")
    assert_close64(grads["linear.weight"], ref.weight.grad, "linear.weight")
    assert_gradcheck(model, x)


def test_stacked_residuals_and_heads(rng: np.random.Generator) -> None:
    block = sc.branch(Identity(), Linear(4, 4) >> ReLU() >> Linear(4, 4)) >> Add()
    model = TimeDistributed(Linear(3, 4)) >> block >> block >> Reverse(axis=0) >> LastStep()
    model = model >> Linear(4, 2)
    assert str(model.out_type) == "[B, 2]"
    x = rng.standard_normal((5, 3, 3))
    assert_gradcheck(model, x)


def test_time_distributed_in_a_graph(rng: np.random.Generator) -> None:
    model = TimeDistributed(Linear(3, 4)) >> Tanh() >> TimeDistributed(Linear(4, 2))
    assert (str(model.in_type), str(model.out_type)) == ("[T, B, 3]", "[T, B, 2]")
    assert_gradcheck(model, rng.standard_normal((4, 3, 3)))


def test_with_a_loss(rng: np.random.Generator) -> None:
    model = (Linear(3, 4) >> Tanh() >> Linear(4, 5)).to(np.float64)
    x, target = rng.standard_normal((4, 2, 3)), rng.integers(0, 5, size=(4, 2))
    report = sc.gradcheck(model, x, target, loss=sc.losses.cross_entropy)
    assert report.passed(1e-7), str(report)
    report = sc.gradcheck(model, x, rng.standard_normal((4, 2, 5)), loss=sc.losses.mse)
    assert report.passed(1e-7), str(report)


def test_refuses_float32() -> None:
    model = Linear(3, 2).as_chain()
    with pytest.raises(
        sc.SpecError, match=r"gradcheck needs float64; call model\.to\(np\.float64\)"
    ):
        sc.gradcheck(model, np.zeros((2, 3), np.float32))


# --- the checker catches wrong backwards ------------------------------------------------


class ScaledTanh(Tanh):
    """Tanh whose backward is 10% too large: a bug gradcheck must see."""

    def backward(self, params: Any, y: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, Any]:
        dx, dparams = super().backward(params, y, dy)
        return 1.1 * dx, dparams


class HalfWeightGradLinear(Linear):
    """Linear whose weight gradient is halved, but whose input gradient is right."""

    def backward(self, params: Any, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, Any]:
        dx, grads = super().backward(params, x, dy)
        return dx, {**grads, "weight": 0.5 * grads["weight"]}


def test_catches_a_wrong_input_gradient(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 2, 4))
    report = sc.gradcheck(ScaledTanh().as_chain().to(np.float64), x)
    assert report.passed() is False
    assert set(report.errors) == {"input"}
    assert report.errors["input"] == pytest.approx(0.1 / 1.1, rel=1e-4)
    assert "input: 9.09" in str(report)


def test_a_wrong_backward_spoils_everything_upstream_only(rng: np.random.Generator) -> None:
    model = Linear(4, 3) >> ScaledTanh() >> Linear(3, 2)
    model.to(np.float64)
    report = sc.gradcheck(model, rng.standard_normal((3, 2, 4)))
    assert not report.passed(1e-3)
    bad = {name for name, err in report.errors.items() if err > 1e-3}
    assert bad == {"linear.weight", "linear.bias", "input"}  # upstream of the bad node
    assert report.errors["linear_1.weight"] < 1e-7  # downstream is still right


def test_catches_a_wrong_parameter_gradient(rng: np.random.Generator) -> None:
    model = HalfWeightGradLinear(3, 2, name="head").as_chain().to(np.float64)
    report = sc.gradcheck(model, rng.standard_normal((4, 3)))
    assert not report.passed()
    assert report.errors["head.weight"] == pytest.approx(0.5, rel=1e-4)
    assert report.errors["head.bias"] < 1e-7 and report.errors["input"] < 1e-7
    assert report.worst == report.errors["head.weight"]


@pytest.mark.parametrize("build", [zoo.classifier, zoo.bilstm], ids=["classifier", "bilstm"])
def test_finite_differences_with_lengths(build: Any, rng: np.random.Generator) -> None:
    model = build(3, 4, 2).to(np.float64)
    x, lengths = rng.standard_normal((5, 3, 3)), np.array([5, 1, 3])
    report = sc.gradcheck(model, (x, lengths))
    assert report.passed(1e-7), report
    assert set(report.errors) == {*model.named_parameters(), "input"}
