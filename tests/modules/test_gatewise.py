"""TorchLean's gate-wise LSTM layout as a view of the fused PyTorch layout: the layout itself,
round trips, and gradients checked by central differences taken in the gate-wise parametrisation."""

from __future__ import annotations

import re

import attrs
import numpy as np
import pytest

from specchain.gradcheck import relative_error
from specchain.modules import LSTM, Linear, LinearGrads, LSTMCell, LSTMGateParams, LSTMGrads
from tests.helpers import (
    one_torch_thread,
    run_chain,
)

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

IN, HID = 2, 3
FIELDS = [a.name for a in attrs.fields(LSTMGateParams)]


def _fused(rng: np.random.Generator, hidden: int = HID, inputs: int = IN) -> dict[str, np.ndarray]:
    return {
        "weight_ih": rng.standard_normal((4 * hidden, inputs)),
        "weight_hh": rng.standard_normal((4 * hidden, hidden)),
        "bias_ih": rng.standard_normal(4 * hidden),
        "bias_hh": rng.standard_normal(4 * hidden),
    }


def test_layout_is_torchleans_per_gate_weight_over_x_and_h(rng: np.random.Generator) -> None:
    fused = _fused(rng)
    gp = LSTMGateParams.from_fused(**fused)
    torchlean_order = ("forget", "input", "candidate", "output")
    assert [f"{gate}_{kind}" for gate in torchlean_order for kind in ("weights", "bias")] == FIELDS
    for k, gate in enumerate(("input", "forget", "candidate", "output")):  # PyTorch's i, f, g, o
        rows = slice(k * HID, (k + 1) * HID)
        weights = getattr(gp, f"{gate}_weights")
        assert weights.shape == (HID, IN + HID)
        np.testing.assert_array_equal(weights[:, :IN], fused["weight_ih"][rows])
        np.testing.assert_array_equal(weights[:, IN:], fused["weight_hh"][rows])
        np.testing.assert_array_equal(
            getattr(gp, f"{gate}_bias"), fused["bias_ih"][rows] + fused["bias_hh"][rows]
        )


def test_round_trips(rng: np.random.Generator) -> None:
    fused = _fused(rng)
    back = LSTMGateParams.from_fused(**fused).to_fused(IN)
    np.testing.assert_array_equal(back["weight_ih"], fused["weight_ih"])
    np.testing.assert_array_equal(back["weight_hh"], fused["weight_hh"])
    np.testing.assert_array_equal(back["bias_ih"], fused["bias_ih"] + fused["bias_hh"])
    np.testing.assert_array_equal(back["bias_hh"], np.zeros(4 * HID))

    gp = LSTMGateParams.from_fused(**fused)
    again = LSTMGateParams.from_fused(**gp.to_fused(IN))
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(again, name), getattr(gp, name), err_msg=name)

    grads = LSTMGrads.from_fused(fused["weight_ih"], fused["weight_hh"], fused["bias_ih"])
    fused_grads = grads.to_fused(IN)
    for name in ("weight_ih", "weight_hh", "bias_ih"):
        np.testing.assert_array_equal(fused_grads[name], fused[name], err_msg=name)
    np.testing.assert_array_equal(fused_grads["bias_hh"], fused["bias_ih"])  # d b_ih == d b_hh
    assert [a.name for a in attrs.fields(LSTMGrads)] == [f"d_{name}" for name in FIELDS]


def test_without_bias_the_gate_bias_is_zero(rng: np.random.Generator) -> None:
    fused = _fused(rng)
    gp = LSTMGateParams.from_fused(fused["weight_ih"], fused["weight_hh"])
    assert all(not getattr(gp, f"{gate}_bias").any() for gate in ("input", "forget"))
    grads = LSTMGrads.from_fused(fused["weight_ih"], fused["weight_hh"])
    assert not grads.d_output_bias.any() and grads.d_output_bias.shape == (HID,)


def test_gatewise_params_compute_the_same_lstm(rng: np.random.Generator) -> None:
    """fused -> gate-wise -> fused (all bias in ``bias_ih``) is the same function."""
    model = LSTM(IN, HID, return_state=True).as_chain().to(np.float64)
    x = rng.standard_normal((4, 2, IN))
    y, (h_n, c_n) = model(x)
    params = model.named_parameters()
    gp = LSTMGateParams.from_fused(*(params[f"lstm.{n}_l0"] for n in _NAMES))
    for name, value in gp.to_fused(IN).items():
        params[f"lstm.{name}_l0"][...] = value
    y2, (h_n2, c_n2) = model(x)
    np.testing.assert_allclose(y2, y, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(h_n2, h_n, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(c_n2, c_n, rtol=1e-14, atol=1e-15)


_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")

# (label, builder, input shape, node, parameter suffix, that layer's input size)
TARGETS = [
    ("lstm", lambda: LSTM(IN, HID, return_state=True), (4, 2, IN), "lstm", "_l0", IN),
    (
        "lstm_layer1_reverse",
        lambda: LSTM(IN, HID, num_layers=2, bidirectional=True),
        (3, 2, IN),
        "lstm",
        "_l1_reverse",
        2 * HID,
    ),
    ("lstm_cell", lambda: LSTMCell(IN, HID), (2, IN), "lstm_cell", "", IN),
]


@pytest.mark.parametrize(
    ("builder", "shape", "node", "suffix", "inputs"),
    [pytest.param(*t[1:], id=t[0]) for t in TARGETS],
)
def test_gatewise_gradients_match_central_differences(
    builder: object, shape: tuple[int, ...], node: str, suffix: str, inputs: int
) -> None:
    """Map gate-wise params -> fused -> our model; ``LSTMGrads.from_fused`` of the analytic
    fused gradients must equal central differences taken in the gate-wise parametrisation."""
    rng = np.random.default_rng(7)
    model = builder().as_chain().to(np.float64)  # type: ignore[operator]
    params = model.named_parameters()
    names = [f"{node}.{n}{suffix}" for n in _NAMES]
    gp = LSTMGateParams.from_fused(*(params[n] for n in names))
    x = rng.standard_normal(shape)
    y, _ = model.forward(x)
    weights = _cotangent_like(y, rng)

    def loss(gate_params: LSTMGateParams) -> float:
        for name, value in zip(names, gate_params.to_fused(inputs).values()):
            params[name][...] = value
        return _dot(model(x), weights)

    loss(gp)  # load the gate-wise parametrisation (bias moved into bias_ih)
    _, _, grads = run_chain(model, x, weights)
    analytic = LSTMGrads.from_fused(grads[names[0]], grads[names[1]], grads[names[2]])
    np.testing.assert_array_equal(grads[names[2]], grads[names[3]])

    eps = 1e-6
    for field in FIELDS:
        base = getattr(gp, field)
        numeric = np.zeros_like(base)
        for i in np.ndindex(base.shape):
            values = []
            for step in (eps, -eps):
                moved = base.copy()
                moved[i] += step
                values.append(loss(attrs.evolve(gp, **{field: moved})))
            numeric[i] = (values[0] - values[1]) / (2 * eps)
        error = relative_error(getattr(analytic, f"d_{field}"), numeric)
        assert error <= 1e-7, f"d_{field}: relative error {error:.3e}"


def _cotangent_like(y: object, rng: np.random.Generator) -> object:
    if isinstance(y, tuple):
        return tuple(_cotangent_like(item, rng) for item in y)
    assert isinstance(y, np.ndarray)
    return rng.standard_normal(y.shape)


def _dot(y: object, w: object) -> float:
    if isinstance(y, tuple):
        assert isinstance(w, tuple)
        return sum(_dot(a, b) for a, b in zip(y, w))
    return float(np.sum(np.asarray(y) * np.asarray(w)))


def test_linear_grads_view(rng: np.random.Generator) -> None:
    model = Linear(3, 2).as_chain().to(np.float64)
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    _, _, grads = run_chain(model, x, dy)
    view = LinearGrads.from_fused(grads, prefix="linear.")
    np.testing.assert_allclose(view.dW, dy.T @ x, rtol=1e-14)
    np.testing.assert_allclose(view.db, dy.sum(axis=0), rtol=1e-14)
    no_bias = LinearGrads.from_fused({"weight": grads["linear.weight"]})
    assert no_bias.db.shape == (2,) and not no_bias.db.any()


def test_bad_fused_shapes_are_named(rng: np.random.Generator) -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(
            "fused LSTM weights need weight_ih [4H, I] and weight_hh [4H, H], "
            "got [12, 2] and [12, 4]"
        ),
    ):
        LSTMGateParams.from_fused(np.zeros((12, 2)), np.zeros((12, 4)))
    with pytest.raises(ValueError, match=re.escape("got [8, 2] and [12, 3]")):
        LSTMGateParams.from_fused(np.zeros((8, 2)), np.zeros((12, 3)))
