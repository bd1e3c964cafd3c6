"""``pytorch.verify`` gives a verdict: per-tensor max abs/rel errors held elementwise to the
numerics contract's tolerances for their dtype, ``.ok``, a table that ends in ``PASS`` or ``FAIL``
naming the worst tensor, and ``raise_on_fail=True`` / ``assert_ok()`` raising
``VerificationError``. Every zoo model passes; a slightly wrong emitter fails."""

from __future__ import annotations

import re
from typing import Any

import attrs
import numpy as np
import pytest

import specchain as sc
from specchain.exporters import pytorch
from specchain.exporters.pytorch import Emitted, VerificationError, VerifyReport
from specchain.exporters.pytorch.verdict import check_tensor
from specchain.models import ZOO, zoo
from specchain.modules import Linear, Tanh
from specchain.numerics import CONTRACT_TOLERANCES, contract_tolerances
from specchain.spec import Context, NNModuleSpec, Params
from specchain.types import DimEnv, Type
from tests.helpers import TOLERANCES

pytest.importorskip("torch")


@attrs.define(eq=False)
class LeakyReLU(NNModuleSpec, family="activation"):
    """``max(x, slope * x)``: a user's layer whose emitter the tests get slightly wrong."""

    slope: float = attrs.field(default=0.01)

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return in_type

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        return np.where(x > 0, x, self.slope * x), x

    def backward(self, params: Params, x: np.ndarray, dy: np.ndarray) -> tuple[Any, Params]:
        return np.where(x > 0, dy, self.slope * dy), {}


@pytorch.emitter(LeakyReLU, pointwise=True)
def _emit_leaky_relu(spec: LeakyReLU, in_type: Type) -> Emitted:
    return Emitted(pytorch.call("nn.LeakyReLU", spec.slope))


def emit_slope_times(factor: float) -> pytorch.Emitter:
    """An emitter for ``LeakyReLU`` whose slope is off by ``factor``."""
    return pytorch.Emitter(
        lambda spec, t: Emitted(pytorch.call("nn.LeakyReLU", spec.slope * factor)),
        pointwise=True,
    )


def leaky_model(dtype: Any) -> sc.SpecChain:
    return (Linear(4, 8) >> LeakyReLU() >> Linear(8, 3)).to(dtype)


def inputs(dtype: Any) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((5, 2, 4)).astype(dtype)


# --- the contract's tolerances, by dtype -------------------------------------------------------


def test_the_contract_tolerances_are_the_documented_ones() -> None:
    assert dict(CONTRACT_TOLERANCES) == TOLERANCES
    assert contract_tolerances(np.float64) == (1e-7, 1e-9)
    assert contract_tolerances("float32") == (1e-4, 1e-5)
    with pytest.raises(ValueError, match=r"float32 and float64, not float16; compare in one"):
        contract_tolerances(np.float16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_passes_at_the_contract_tolerances(name: str, dtype: Any) -> None:
    model = ZOO[name].build().to(dtype)
    report = pytorch.verify(model, raise_on_fail=True)
    assert report.ok, str(report)
    rtol, atol = TOLERANCES[np.dtype(dtype)]
    for check in report.tensors.values():
        assert (check.dtype, check.rtol, check.atol) == (np.dtype(dtype), rtol, atol)
    names = set(pytorch.torch_state(model, pytorch.assign_names(model)))
    assert names <= set(report.tensors), "a parameter gradient was not compared"
    assert report.max_abs > 0  # two implementations, not one compared with itself
    assert str(report).splitlines()[-1].startswith(f"PASS: all {len(report.tensors)} tensors")


def test_the_table_shows_errors_tolerances_and_a_pass_line() -> None:
    model = (Linear(4, 6) >> Tanh() >> Linear(6, 2)).to(np.float64)
    report = pytorch.verify(model, np.random.default_rng(0).standard_normal((3, 4)))
    lines = str(report).splitlines()
    header = ["tensor", "dtype", "max|diff|", "max", "rel", "rtol", "atol", "diff/tol"]
    assert lines[1].split() == header
    for line in lines[2:-1]:
        row = dict(
            zip(["name", "dtype", "abs", "rel", "rtol", "atol", "ratio", "status"], line.split())
        )
        check = report.tensors[row["name"]]
        assert row["dtype"] == "float64" and (row["rtol"], row["atol"]) == ("1e-07", "1e-09")
        assert float(row["abs"]) == pytest.approx(check.max_abs, rel=1e-3)
        assert row["status"] == "ok"
    assert set(report.tensors) == {
        "output[0]",
        "input_grad[0]",
        "linear.weight",
        "linear.bias",
        "linear_1.weight",
        "linear_1.bias",
    }
    worst = max(report.tensors.values(), key=lambda c: c.worst)
    assert report.worst is worst
    assert lines[-1] == (
        f"PASS: all 6 tensors within tolerance; worst: {worst.name} at {worst.worst:.2g} of its "
        "tolerance"
    )


# --- a wrong export fails, naming the worst tensor ---------------------------------------------


def test_a_slightly_wrong_emitter_fails_and_names_the_worst_tensor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(pytorch.EMITTERS, LeakyReLU, emit_slope_times(1.01))
    model, x = leaky_model(np.float64), inputs(np.float64)
    report = pytorch.verify(model, x)
    assert not report.ok
    assert report.tensors["linear.weight"].max_abs > 0  # gradients before the wrong node too
    worst = report.worst
    assert worst is not None and not worst.ok
    assert all(worst.worst >= c.worst for c in report.tensors.values())
    failed = [c.name for c in report.tensors.values() if not c.ok]
    assert "output[0]" in failed
    text = str(report)
    assert re.search(r"^  output\[0\] .* FAIL$", text, flags=re.M)
    assert text.splitlines()[-1] == (
        f"FAIL: {len(failed)} of {len(report.tensors)} tensors outside tolerance; worst: "
        f"{worst.name}, max|diff| {worst.max_abs:.3e}, {worst.worst:.3g} times its tolerance "
        "(atol 1e-09 + rtol 1e-07 * |torch|)"
    )
    with pytest.raises(VerificationError, match=rf"FAIL: .* worst: {re.escape(worst.name)}, "):
        pytorch.verify(model, x, raise_on_fail=True)
    with pytest.raises(AssertionError, match=r"specchain vs exported torch module"):
        report.assert_ok()
    assert issubclass(VerificationError, sc.SpecError)


def test_the_tolerance_follows_the_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slope off by one part in a million is outside float64's contract, inside float32's."""
    monkeypatch.setitem(pytorch.EMITTERS, LeakyReLU, emit_slope_times(1 + 1e-6))
    f64 = pytorch.verify(leaky_model(np.float64), inputs(np.float64))
    assert not f64.ok and f64.worst is not None and f64.worst.rtol == 1e-7
    f32 = pytorch.verify(leaky_model(np.float32), inputs(np.float32))
    assert f32.ok, str(f32)
    assert {c.rtol for c in f32.tensors.values()} == {1e-4}


def test_the_right_emitter_passes() -> None:
    report = pytorch.verify(leaky_model(np.float64), inputs(np.float64))
    assert report.ok, str(report)
    assert str(report).splitlines()[-1].startswith("PASS: all 6 tensors within tolerance")


def test_given_tolerances_replace_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(pytorch.EMITTERS, LeakyReLU, emit_slope_times(1.01))
    model, x = leaky_model(np.float64), inputs(np.float64)
    loose = pytorch.verify(model, x, rtol=0.5, atol=0.5)
    assert loose.ok, str(loose)
    assert {(c.rtol, c.atol) for c in loose.tensors.values()} == {(0.5, 0.5)}
    strict = pytorch.verify(model, x)
    assert not strict.ok and strict.within(0.5, 0.5)
    with pytest.raises(ValueError, match=r"give rtol and atol together \(got rtol=0\.1, atol=No"):
        pytorch.verify(model, x, rtol=0.1)


def test_the_loss_is_a_compared_tensor() -> None:
    model = ZOO["language_model"].build().to(np.float64)
    rng = np.random.default_rng(0)
    x, target = rng.integers(0, 50, (4, 2)), rng.integers(0, 50, (4, 2))
    report = pytorch.verify(model, x, target, loss=sc.losses.cross_entropy)
    assert report.ok and "loss" in report.tensors
    assert report.loss is not None
    assert f"loss value: {report.loss[0]!r} (specchain)" in str(report)


# --- the elementwise rule ----------------------------------------------------------------------


def test_each_element_is_held_to_atol_plus_rtol_times_its_size() -> None:
    """Large values pass on rtol, small ones on atol, even when the largest absolute error is
    above atol and the largest relative error above rtol (``np.allclose``'s rule)."""
    theirs = np.array([1.0, 1e-6])
    ours = theirs + np.array([5e-8, 5e-10])  # 5e-8 > atol, 5e-4 relative > rtol, each element ok
    check = check_tensor("x", ours, theirs)
    assert check.max_abs > 1e-9 and check.max_rel > 1e-7
    assert check.ok and check.worst == pytest.approx(5e-10 / (1e-9 + 1e-7 * 1e-6))
    assert np.allclose(ours, theirs, rtol=1e-7, atol=1e-9)
    off = theirs + np.array([2e-7, 0.0])
    assert not check_tensor("x", off, theirs).ok
    assert not np.allclose(off, theirs, rtol=1e-7, atol=1e-9)


def test_nan_never_matches_and_equal_infinities_do() -> None:
    nan = check_tensor("y", np.array([1.0, np.nan]), np.array([1.0, np.nan]))
    assert not nan.ok and not nan.within(1.0, 1.0) and np.isnan(nan.max_abs)
    report = VerifyReport({"y": nan, "z": check_tensor("z", np.ones(2), np.ones(2) + 1.0)})
    assert report.worst is nan  # a NaN difference is the worst, even beside a large one
    inf = check_tensor("y", np.array([np.inf, -np.inf]), np.array([np.inf, -np.inf]))
    assert inf.ok and inf.max_abs == 0.0
    assert not check_tensor("y", np.array([np.inf]), np.array([-np.inf])).ok


def test_empty_tensors_pass_and_shapes_never_broadcast() -> None:
    assert check_tensor("e", np.zeros((0, 3)), np.zeros((0, 3))).ok
    with pytest.raises(pytorch.ExportError, match=r"^w: specchain has shape \[3\], the exported"):
        check_tensor("w", np.zeros(3), np.zeros((1, 3)))


def test_training_mode_refuses_a_node_that_draws_random_numbers() -> None:
    model = zoo.stacked(8, 16, 4, num_layers=2, dropout=0.5)
    with pytest.raises(pytorch.ExportError, match=r"'lstm' \(LSTM\) draws random numbers"):
        pytorch.verify(model, train=True)
    assert pytorch.verify(model, train=False).ok  # inference: dropout off, the same function
    assert pytorch.verify(zoo.stacked(8, 16, 4, num_layers=2, dropout=0.0), train=True).ok
