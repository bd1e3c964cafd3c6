"""``LSTM``: torch parity over every option (outputs, final states, input and state gradients and
every weight gradient), inter-layer dropout with injected masks, finite differences, numerics at
extreme pre-activations, and the bad-input table."""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import specchain as sc
from specchain.modules import LSTM
from tests.helpers import (
    TORCH_DTYPES,
    ErrorInput,
    assert_close,
    assert_gradcheck,
    check_error_input,
    error_params,
    load_torch,
    numpy_of,
    one_torch_thread,
    torch_from,
)

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

# torch notes once that oneDNN has no projection kernel; its reference path is what we compare to
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

IN, HID, PROJ = 4, 5, 3  # input, hidden and projection sizes, kept small for speed


def _pair(
    dtype: type, sizes: tuple[int, int] = (IN, HID), **options: Any
) -> tuple[sc.SpecChain, torch.nn.LSTM]:
    """Our LSTM (``return_state=True``) and a torch ``nn.LSTM`` holding the same weights; loading
    with ``strict=True`` proves the parameter names and shapes are PyTorch's."""
    model = LSTM(*sizes, return_state=True, **options).as_chain().to(dtype)
    ref = torch.nn.LSTM(*sizes, dtype=TORCH_DTYPES[np.dtype(dtype)], **options)
    load_torch(ref, model.named_parameters(), "lstm.")
    return model, ref


def _inputs(
    rng: np.random.Generator,
    dtype: type,
    steps: int,
    batch: int | None,
    sizes: tuple[int, int] = (IN, HID),
    **options: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x``, ``h0``, ``c0`` for the options; ``batch=None`` means unbatched."""
    inputs, hidden = sizes
    layers = options.get("num_layers", 1) * (2 if options.get("bidirectional") else 1)
    proj = options.get("proj_size", 0) or hidden
    if batch is None:
        x_shape: tuple[int, ...] = (steps, inputs)
        lead: tuple[int, ...] = (layers,)
    else:
        x_shape = (batch, steps, inputs) if options.get("batch_first") else (steps, batch, inputs)
        lead = (layers, batch)
    x = rng.standard_normal(x_shape).astype(dtype)
    h0 = rng.standard_normal((*lead, proj)).astype(dtype)
    c0 = rng.standard_normal((*lead, hidden)).astype(dtype)
    return x, h0, c0


def check_lstm_matches_torch(
    rng: np.random.Generator,
    dtype: type,
    steps: int,
    batch: int | None,
    state: bool,
    cotangent: str = "all",
    sizes: tuple[int, int] = (IN, HID),
    **options: Any,
) -> None:
    """One forward and backward of ours and of torch autograd; compare every output and gradient.

    ``cotangent``: "all" (on y, h_n and c_n) or "c_n" (ours receives ``(None, (None, dc_n))``).
    """
    model, ref = _pair(dtype, sizes, **options)
    x, h0, c0 = _inputs(rng, dtype, steps, batch, sizes, **options)
    (y, (h_n, c_n)), tape = model.forward((x, (h0, c0)) if state else x, train=True, rng=0)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dh_n = rng.standard_normal(h_n.shape).astype(dtype)
    dc_n = rng.standard_normal(c_n.shape).astype(dtype)
    ours_dy = (dy, (dh_n, dc_n)) if cotangent == "all" else (None, (None, dc_n))
    dx, grads = model.backward(tape, ours_dy)

    xt, h0t, c0t = (torch_from(a, requires_grad=True) for a in (x, h0, c0))
    yt, (h_nt, c_nt) = ref(xt, (h0t, c0t)) if state else ref(xt)
    loss = (c_nt * torch_from(dc_n)).sum()
    if cotangent == "all":
        loss = loss + (yt * torch_from(dy)).sum() + (h_nt * torch_from(dh_n)).sum()
    loss.backward()

    assert_close(y, yt, "output")
    assert_close(h_n, h_nt, "h_n")
    assert_close(c_n, c_nt, "c_n")
    if state:
        assert isinstance(dx, tuple), "a state was given, so dx is (dx, (dh0, dc0))"
        dx, (dh0, dc0) = dx
        assert_close(dh0, h0t.grad, "dh0")
        assert_close(dc0, c0t.grad, "dc0")
    assert_close(dx, xt.grad, "dx")
    assert set(grads) == {f"lstm.{name}" for name, _ in ref.named_parameters()}
    for name, p in ref.named_parameters():
        # torch leaves .grad None for a weight the loss does not reach (c_n alone with T = 1)
        expected = p.grad if p.grad is not None else torch.zeros_like(p)
        assert_close(grads[f"lstm.{name}"], expected, f"lstm.{name}")


# --- parity: the full product of options -------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 3], ids=lambda b: f"B{b}")
@pytest.mark.parametrize("steps", [1, 2, 7], ids=lambda t: f"T{t}")
@pytest.mark.parametrize("state", [False, True], ids=["zero_state", "state"])
@pytest.mark.parametrize("layers", [1, 2, 3], ids=lambda n: f"L{n}")
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_matches_torch(
    dtype: type,
    bias: bool,
    batch_first: bool,
    bidirectional: bool,
    layers: int,
    state: bool,
    steps: int,
    batch: int,
    rng: np.random.Generator,
) -> None:
    check_lstm_matches_torch(
        rng,
        dtype,
        steps,
        batch,
        state,
        bias=bias,
        batch_first=batch_first,
        bidirectional=bidirectional,
        num_layers=layers,
    )


@pytest.mark.parametrize("state", [False, True], ids=["zero_state", "state"])
@pytest.mark.parametrize("steps", [1, 7], ids=lambda t: f"T{t}")
@pytest.mark.parametrize("layers", [1, 3], ids=lambda n: f"L{n}")
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_projection_matches_torch(
    dtype: type,
    batch_first: bool,
    bidirectional: bool,
    layers: int,
    steps: int,
    state: bool,
    rng: np.random.Generator,
) -> None:
    check_lstm_matches_torch(
        rng,
        dtype,
        steps,
        3,
        state,
        proj_size=PROJ,
        batch_first=batch_first,
        bidirectional=bidirectional,
        num_layers=layers,
    )


@pytest.mark.parametrize("proj", [0, PROJ], ids=["no_proj", "proj"])
@pytest.mark.parametrize("state", [False, True], ids=["zero_state", "state"])
@pytest.mark.parametrize("layers", [1, 2], ids=lambda n: f"L{n}")
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_unbatched_matches_torch(
    dtype: type, bidirectional: bool, layers: int, state: bool, proj: int, rng: np.random.Generator
) -> None:
    """``x [T, I]`` with unbatched states ``[L*D, P]`` / ``[L*D, H]``; ``batch_first`` does not
    apply to unbatched input (in torch either)."""
    check_lstm_matches_torch(
        rng,
        dtype,
        4,
        None,
        state,
        bidirectional=bidirectional,
        num_layers=layers,
        proj_size=proj,
        batch_first=True,
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"num_layers": 2, "bidirectional": True},
        {"num_layers": 3, "proj_size": PROJ, "batch_first": True},
        {"num_layers": 2, "bidirectional": True, "proj_size": PROJ, "bias": False},
    ],
    ids=["L1", "L2_bi", "L3_proj_bf", "L2_bi_proj_nobias"],
)
@pytest.mark.parametrize("steps", [1, 5], ids=lambda t: f"T{t}")
@pytest.mark.parametrize("state", [False, True], ids=["zero_state", "state"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_cotangent_on_c_n_alone(
    dtype: type, state: bool, steps: int, options: dict[str, Any], rng: np.random.Generator
) -> None:
    check_lstm_matches_torch(rng, dtype, steps, 2, state, cotangent="c_n", **options)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_without_return_state_the_output_is_y(
    bidirectional: bool, rng: np.random.Generator
) -> None:
    model = LSTM(IN, HID, num_layers=2, bidirectional=bidirectional).as_chain().to(np.float64)
    ref = torch.nn.LSTM(IN, HID, num_layers=2, bidirectional=bidirectional, dtype=torch.float64)
    load_torch(ref, model.named_parameters(), "lstm.")
    x = rng.standard_normal((6, 2, IN))
    dy = rng.standard_normal((6, 2, 2 * HID if bidirectional else HID))
    y, tape = model.forward(x, train=True, rng=0)
    assert isinstance(y, np.ndarray)
    dx, grads = model.backward(tape, dy)
    xt = torch_from(x, requires_grad=True)
    yt, _ = ref(xt)
    yt.backward(torch_from(dy))
    assert_close(y, yt, "output")
    assert_close(model(x), yt, "inference output")
    assert_close(dx, xt.grad, "dx")
    for name, p in ref.named_parameters():
        assert_close(grads[f"lstm.{name}"], p.grad, name)


@st.composite
def _architectures(draw: st.DrawFn) -> dict[str, Any]:
    hidden = draw(st.integers(1, 8))
    return {
        "sizes": (draw(st.integers(1, 8)), hidden),
        "num_layers": draw(st.integers(1, 3)),
        "bidirectional": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "proj_size": draw(st.integers(0, hidden - 1)),
    }


@settings(max_examples=40, deadline=None)
@given(
    arch=_architectures(),
    steps=st.integers(0, 10),
    batch=st.one_of(st.none(), st.integers(0, 4)),
    state=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_architectures_match_torch(
    arch: dict[str, Any], steps: int, batch: int | None, state: bool, seed: int
) -> None:
    """Design section 9: dims 1-8, T 0-10, B 0-4 (or unbatched); T = 0 fails in both."""
    rng = np.random.default_rng(seed)
    if steps == 0:
        model, ref = _pair(np.float64, **arch)
        x, _, _ = _inputs(rng, np.float64, 0, batch, **arch)
        with pytest.raises(sc.ShapeError, match="LSTM needs at least one time step, got T = 0"):
            model(x)
        with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0"):
            ref(torch_from(x))
        return
    check_lstm_matches_torch(rng, np.float64, steps, batch, state, **arch)


def test_parameter_names_order_shapes_and_init_are_pytorchs() -> None:
    options = {"num_layers": 2, "bidirectional": True, "proj_size": 2}
    model = LSTM(IN, HID, **options).as_chain()
    ref = torch.nn.LSTM(IN, HID, **options)
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [
        (f"lstm.{k}", tuple(v.shape)) for k, v in ref.state_dict().items()
    ]
    bound = 1 / np.sqrt(HID)  # PyTorch: every parameter U(-1/sqrt(H), 1/sqrt(H))
    params = model.named_parameters().values()
    assert all(p.dtype == np.float32 and np.abs(p).max() <= bound for p in params)
    assert all(np.abs(p).max() > bound / 2 for p in params)  # spread over the range, not zeros


def test_empty_batch_gives_empty_results_like_torch(rng: np.random.Generator) -> None:
    options = {"num_layers": 2, "bidirectional": True, "proj_size": PROJ}
    model, ref = _pair(np.float64, **options)
    x, h0, c0 = _inputs(rng, np.float64, 3, 0, **options)
    (y, (h_n, c_n)), tape = model.forward((x, (h0, c0)), train=True, rng=0)
    yt, (h_nt, c_nt) = ref(torch_from(x), (torch_from(h0), torch_from(c0)))
    assert (y.shape, h_n.shape, c_n.shape) == (yt.shape, h_nt.shape, c_nt.shape)
    assert y.shape == (3, 0, 2 * PROJ)
    (dx, (dh0, dc0)), grads = model.backward(tape, (None, (None, np.zeros_like(c_n))))
    assert (dx.shape, dh0.shape, dc0.shape) == (x.shape, h0.shape, c0.shape)
    for name, p in ref.named_parameters():
        assert grads[f"lstm.{name}"].shape == tuple(p.shape) and not grads[f"lstm.{name}"].any()


# --- inter-layer dropout -----------------------------------------------------------------------


def _torch_layers(model: sc.SpecChain, dtype: torch.dtype, **options: Any) -> list[torch.nn.LSTM]:
    """One single-layer ``nn.LSTM`` per layer of ``model``, holding that layer's weights."""
    spec = model.spec("lstm")
    assert isinstance(spec, LSTM)
    params = model.named_parameters()
    layers = []
    for layer in range(spec.num_layers):
        size = IN if layer == 0 else spec.directions * spec.out_size
        module = torch.nn.LSTM(size, HID, dtype=dtype, **options)
        ours = {k: f"lstm.{k.replace('_l0', f'_l{layer}')}" for k in module.state_dict()}
        module.load_state_dict({k: torch_from(params[v]) for k, v in ours.items()}, strict=True)
        layers.append(module)
    return layers


@pytest.mark.parametrize("proj", [0, PROJ], ids=["no_proj", "proj"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [2, 3], ids=lambda n: f"L{n}")
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_dropout_between_layers_matches_torch_with_the_same_masks(
    dtype: type, layers: int, bidirectional: bool, proj: int, rng: np.random.Generator
) -> None:
    p = 0.4
    options = {"bidirectional": bidirectional, "proj_size": proj}
    model = LSTM(IN, HID, num_layers=layers, dropout=p, return_state=True, **options).as_chain()
    model.to(dtype)
    x, h0, c0 = _inputs(rng, dtype, 6, 3, num_layers=layers, **options)
    (y, (h_n, c_n)), tape = model.forward((x, (h0, c0)), train=True, rng=7)
    masks = tape.saved["lstm"][1]
    directions = 2 if bidirectional else 1
    assert len(masks) == layers - 1
    for mask in masks:
        assert mask.shape == (6, 3, directions * (proj or HID)) and mask.dtype == dtype
        kept = mask[mask != 0]  # already scaled by 1 / (1 - p)
        np.testing.assert_allclose(kept, np.full_like(kept, 1 / (1 - p)), rtol=1e-6)
        assert 0 < np.count_nonzero(mask) < mask.size
    dy, dh_n, dc_n = (rng.standard_normal(a.shape).astype(dtype) for a in (y, h_n, c_n))
    (dx, (dh0, dc0)), grads = model.backward(tape, (dy, (dh_n, dc_n)))

    tdtype = TORCH_DTYPES[np.dtype(dtype)]
    twins = _torch_layers(model, tdtype, **options)
    xt, h0t, c0t = (torch_from(a, requires_grad=True) for a in (x, h0, c0))
    inp, h_parts, c_parts = xt, [], []
    for layer, twin in enumerate(twins):
        if layer > 0:
            inp = inp * torch_from(masks[layer - 1])
        k = slice(layer * directions, (layer + 1) * directions)
        inp, (h, c) = twin(inp, (h0t[k], c0t[k]))
        h_parts.append(h)
        c_parts.append(c)
    yt, h_nt, c_nt = inp, torch.cat(h_parts), torch.cat(c_parts)
    loss = (yt * torch_from(dy)).sum() + (h_nt * torch_from(dh_n)).sum()
    (loss + (c_nt * torch_from(dc_n)).sum()).backward()

    assert_close(y, yt, "output")
    assert_close(h_n, h_nt, "h_n")
    assert_close(c_n, c_nt, "c_n")
    assert_close(dx, xt.grad, "dx")
    assert_close(dh0, h0t.grad, "dh0")
    assert_close(dc0, c0t.grad, "dc0")
    for layer, twin in enumerate(twins):
        for name, param in twin.named_parameters():
            ours = f"lstm.{name.replace('_l0', f'_l{layer}')}"
            assert_close(grads[ours], param.grad, ours)


def test_dropout_is_identity_in_inference_like_torch_eval(rng: np.random.Generator) -> None:
    options = {"num_layers": 3, "dropout": 0.5, "bidirectional": True}
    model, ref = _pair(np.float64, **options)
    x = rng.standard_normal((5, 2, IN))
    ref.eval()
    yt, (h_nt, c_nt) = ref(torch_from(x))
    y, (h_n, c_n) = model(x)
    assert_close(y, yt, "output")
    assert_close(h_n, h_nt, "h_n")
    assert_close(c_n, c_nt, "c_n")
    (y_eval, _), tape = model.forward(x, train=False, rng=0)
    assert tape.saved["lstm"][1] == []
    assert_close(y_eval, yt, "forward(train=False)")
    (y_train, _), _ = model.forward(x, train=True, rng=0)
    assert not np.allclose(y_train, y_eval), "training mode must drop something"


def test_dropout_masks_follow_the_seed(rng: np.random.Generator) -> None:
    model = LSTM(IN, HID, num_layers=3, dropout=0.3).as_chain().to(np.float64)
    x = rng.standard_normal((4, 3, IN))

    def masks(seed: int) -> list[np.ndarray]:
        return list(model.forward(x, train=True, rng=seed)[1].saved["lstm"][1])

    first, again, other = masks(11), masks(11), masks(12)
    assert len(first) == 2
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    assert not np.array_equal(first[0], first[1]), "each layer draws its own mask"
    np.testing.assert_array_equal(
        model.forward(x, train=True, rng=11)[0], model.forward(x, train=True, rng=11)[0]
    )


def test_single_layer_draws_no_dropout_mask(rng: np.random.Generator) -> None:
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        model, ref = _pair(np.float64, dropout=0.5)  # torch warns and ignores it; so do we
    x = rng.standard_normal((3, 2, IN))
    (y, _), tape = model.forward(x, train=True, rng=0)
    assert tape.saved["lstm"][1] == []
    assert_close(y, ref(torch_from(x))[0], "output")


def test_dropout_one_zeroes_every_layer_input_but_the_first(rng: np.random.Generator) -> None:
    """p = 1 is deterministic, so torch's own training mode is the reference."""
    model, ref = _pair(np.float64, num_layers=2, dropout=1.0)
    x = rng.standard_normal((3, 2, IN))
    (y, _), tape = model.forward(x, train=True, rng=0)
    assert all(not m.any() for m in tape.saved["lstm"][1])
    dx, grads = model.backward(tape, (np.ones_like(y), (None, None)))
    # the second layer sees zeros: its output is the input-free response, and nothing flows back
    assert not dx.any() and not grads["lstm.weight_ih_l0"].any()
    assert not grads["lstm.weight_ih_l1"].any()
    assert np.isfinite(y).all() and grads["lstm.weight_hh_l1"].any()
    xt = torch_from(x, requires_grad=True)
    yt, _ = ref.train()(xt)
    yt.sum().backward()
    assert_close(y, yt, "output")
    assert_close(dx, xt.grad, "dx")
    for name, p in ref.named_parameters():
        expected = p.grad if p.grad is not None else torch.zeros_like(p)
        assert_close(grads[f"lstm.{name}"], expected, name)


# --- finite differences ------------------------------------------------------------------------


def test_gradcheck_one_layer(rng: np.random.Generator) -> None:
    report = assert_gradcheck(LSTM(3, 4).as_chain(), rng.standard_normal((5, 2, 3)))
    assert "input" in report.errors


def test_gradcheck_two_layer_bidirectional_projection_with_state(
    rng: np.random.Generator,
) -> None:
    model = LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2).as_chain()
    x = rng.standard_normal((4, 2, 3))
    h0, c0 = rng.standard_normal((4, 2, 2)), rng.standard_normal((4, 2, 4))
    report = assert_gradcheck(model, (x, (h0, c0)))
    assert {"input", "input[1]", "input[2]", "lstm.weight_hr_l1_reverse"} <= set(report.errors)


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
def test_gradcheck_return_state_with_all_cotangents(
    batch_first: bool, rng: np.random.Generator
) -> None:
    """``sc.gradcheck`` weighs every output (y, h_n and c_n) with its own random cotangent."""
    model = LSTM(3, 4, num_layers=2, batch_first=batch_first, return_state=True).as_chain()
    x = rng.standard_normal((2, 5, 3) if batch_first else (5, 2, 3))
    h0, c0 = rng.standard_normal((2, 2, 4)), rng.standard_normal((2, 2, 4))
    assert_gradcheck(model, (x, (h0, c0)))


def test_gradcheck_unbatched_with_state(rng: np.random.Generator) -> None:
    model = LSTM(3, 4, bidirectional=True, proj_size=3, return_state=True).as_chain()
    x, h0, c0 = (rng.standard_normal(shape) for shape in ((4, 3), (2, 3), (2, 4)))
    assert_gradcheck(model, (x, (h0, c0)))


def test_gradcheck_training_with_dropout(rng: np.random.Generator) -> None:
    """The masks are a fixed function of the seed, so the training forward is differentiable."""
    model = LSTM(3, 4, num_layers=3, dropout=0.3, bidirectional=True).as_chain().to(np.float64)
    report = sc.gradcheck(model, rng.standard_normal((3, 2, 3)), train=True, rng=5)
    assert report.passed(1e-7), str(report)


# --- numerics ----------------------------------------------------------------------------------


def test_saturated_gates_over_long_sequences_raise_no_float_warnings() -> None:
    """Pre-activations around +-1e3 for T = 2000 steps: gates saturate exactly at 0 or 1, and
    nothing overflows, underflows or divides by zero, forward or backward."""
    sc.seed(3)
    model = LSTM(4, 5, num_layers=2, bidirectional=True, return_state=True).as_chain()
    model.to(np.float64)
    for p in model.named_parameters().values():
        p *= 400.0
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 2, 4))
    w = model.named_parameters()["lstm.weight_ih_l0"]
    assert 5e2 < np.abs(x @ w.T).max() < 5e3  # the input part alone reaches ~1e3
    with np.errstate(all="raise"):
        (y, (h_n, c_n)), tape = model.forward(x, train=True, rng=0)
        cot = tuple(rng.standard_normal(a.shape) for a in (y, h_n, c_n))
        dx, grads = model.backward(tape, (cot[0], (cot[1], cot[2])))
    assert np.isfinite(y).all() and np.isfinite(h_n).all() and np.isfinite(c_n).all()
    assert np.isfinite(dx).all()
    assert all(np.isfinite(g).all() for g in grads.values())
    assert np.abs(y).max() <= 1.0


def test_saturated_gates_match_torch(rng: np.random.Generator) -> None:
    model, ref = _pair(np.float64, num_layers=2)
    for weight in model.named_parameters().values():
        weight *= 400.0
    load_torch(ref, model.named_parameters(), "lstm.")
    x = rng.standard_normal((200, 2, IN))
    (y, _), tape = model.forward(x, train=True, rng=0)
    dx, grads = model.backward(tape, (np.ones_like(y), (None, None)))
    xt = torch_from(x, requires_grad=True)
    yt, _ = ref(xt)
    yt.sum().backward()
    assert_close(y, yt, "output")
    assert_close(dx, xt.grad, "dx")
    for name, p in ref.named_parameters():
        assert_close(grads[f"lstm.{name}"], p.grad, name)


def test_nan_input_propagates_like_torch(rng: np.random.Generator) -> None:
    """A NaN at (t=2, b=0) poisons batch element 0 from step 2 on (forward direction), leaves
    element 1 alone, and raises no RuntimeWarning (pytest turns those into errors)."""
    model, ref = _pair(np.float64)
    x = rng.standard_normal((5, 2, IN))
    x[2, 0, 1] = np.nan
    (y, (h_n, _)), tape = model.forward(x, train=True, rng=0)
    dx, grads = model.backward(tape, (np.ones_like(y), (None, None)))
    assert np.isfinite(y[:2]).all() and np.isnan(y[2:, 0]).all() and np.isfinite(y[:, 1]).all()
    assert np.isnan(h_n[:, 0]).all() and np.isfinite(h_n[:, 1]).all()
    assert np.isfinite(dx[:, 1]).all()
    assert np.isnan(grads["lstm.weight_ih_l0"]).any()
    xt = torch_from(x, requires_grad=True)
    yt, _ = ref(xt)
    yt.sum().backward()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(numpy_of(yt)))
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(numpy_of(xt.grad)))
    finite = ~np.isnan(y)
    np.testing.assert_allclose(y[finite], numpy_of(yt)[finite], rtol=1e-7, atol=1e-9)


# --- bad inputs --------------------------------------------------------------------------------


def _f32(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


BAD_INPUTS = [
    ErrorInput(
        "input_size_zero",
        lambda: LSTM(0, 3),
        sc.SpecError,
        r"^LSTM\.input_size must be a positive int, got 0$",
    ),
    ErrorInput(
        "input_size_negative",
        lambda: LSTM(-2, 3),
        sc.SpecError,
        r"^LSTM\.input_size must be a positive int, got -2$",
    ),
    ErrorInput(
        "input_size_float",
        lambda: LSTM(2.5, 3),  # type: ignore[arg-type]
        TypeError,
        r"^LSTM\.input_size must be a positive int, got 2\.5 \(float\)$",
    ),
    ErrorInput(
        "hidden_size_zero",
        lambda: LSTM(3, 0),
        sc.SpecError,
        r"^LSTM\.hidden_size must be a positive int, got 0$",
    ),
    ErrorInput(
        "hidden_size_negative",
        lambda: LSTM(3, -1),
        sc.SpecError,
        r"^LSTM\.hidden_size must be a positive int, got -1$",
    ),
    ErrorInput(
        "hidden_size_float",
        lambda: LSTM(3, 4.0),  # type: ignore[arg-type]
        TypeError,
        r"^LSTM\.hidden_size must be a positive int, got 4\.0 \(float\)$",
    ),
    ErrorInput(
        "num_layers_zero",
        lambda: LSTM(3, 4, num_layers=0),
        sc.SpecError,
        r"^LSTM\.num_layers must be a positive int, got 0$",
    ),
    ErrorInput(
        "proj_size_equal_hidden",
        lambda: LSTM(3, 4, proj_size=4),
        sc.SpecError,
        r"^LSTM\.proj_size must be smaller than hidden_size \(4\), got 4; use 0 for no projection$",
    ),
    ErrorInput(
        "proj_size_above_hidden",
        lambda: LSTM(3, 4, proj_size=9),
        sc.SpecError,
        r"^LSTM\.proj_size must be smaller than hidden_size \(4\), got 9",
    ),
    ErrorInput(
        "proj_size_negative",
        lambda: LSTM(3, 4, proj_size=-1),
        sc.SpecError,
        r"^LSTM\.proj_size must be an int >= 0, got -1$",
    ),
    ErrorInput(
        "dropout_above_one",
        lambda: LSTM(3, 4, num_layers=2, dropout=1.5),
        sc.SpecError,
        r"^LSTM\.dropout must be in \[0, 1\], got 1\.5$",
    ),
    ErrorInput(
        "dropout_negative",
        lambda: LSTM(3, 4, num_layers=2, dropout=-0.1),
        sc.SpecError,
        r"^LSTM\.dropout must be in \[0, 1\], got -0\.1$",
    ),
    ErrorInput(
        "dropout_str",
        lambda: LSTM(3, 4, dropout="0.2"),  # type: ignore[arg-type]
        TypeError,
        r"^LSTM\.dropout must be a float in \[0, 1\], got '0\.2' \(str\)$",
    ),
    ErrorInput(
        "bidirectional_int",
        lambda: LSTM(3, 4, bidirectional=1),  # type: ignore[arg-type]
        TypeError,
        r"^LSTM\.bidirectional must be True or False, got 1 \(int\)$",
    ),
    ErrorInput(
        "call_wrong_feature_size",
        lambda: LSTM(8, 4)(_f32(2, 3, 9)),
        sc.ShapeError,
        re.escape(
            "input to 'lstm' (LSTM, expects [T, B, 8]): got [2, 3, 9]: feature size: "
            "expected 8, got 9"
        ),
    ),
    ErrorInput(
        "call_wrong_feature_size_unbatched",
        lambda: LSTM(8, 4)(_f32(2, 9)),
        sc.ShapeError,
        r"expected 8, got 9$",
    ),
    ErrorInput(
        "call_wrong_feature_size_with_state",
        lambda: LSTM(8, 4)((_f32(2, 3, 9), (_f32(1, 3, 4), _f32(1, 3, 4)))),
        sc.ShapeError,
        r"feature size: expected 8, got 9$",
    ),
    ErrorInput(
        "call_rank_4",
        lambda: LSTM(8, 4)(_f32(2, 3, 1, 8)),
        sc.ShapeError,
        re.escape("rank: expected [T, B, 8] or [T, 8], got [2, 3, 1, 8]"),
    ),
    ErrorInput(
        "h0_wrong_layers",
        lambda: LSTM(8, 4, num_layers=2)((_f32(2, 3, 8), (_f32(1, 3, 4), _f32(2, 3, 4)))),
        sc.ShapeError,
        re.escape("h0 must be [2, 3, 4], got [1, 3, 4]: dim 0: expected 2, got 1"),
    ),
    ErrorInput(
        "h0_wrong_batch",
        lambda: LSTM(8, 4)((_f32(2, 3, 8), (_f32(1, 2, 4), _f32(1, 3, 4)))),
        sc.ShapeError,
        re.escape("h0 must be [1, 3, 4], got [1, 2, 4]: dim 1: expected 3, got 2"),
    ),
    ErrorInput(
        "h0_hidden_size_instead_of_proj_size",
        lambda: LSTM(8, 4, proj_size=2)((_f32(2, 3, 8), (_f32(1, 3, 4), _f32(1, 3, 4)))),
        sc.ShapeError,
        re.escape("h0 must be [1, 3, 2], got [1, 3, 4]: dim 2: expected 2, got 4"),
    ),
    ErrorInput(
        "c0_wrong_size",
        lambda: LSTM(8, 4, bidirectional=True)((_f32(2, 3, 8), (_f32(2, 3, 4), _f32(2, 3, 5)))),
        sc.ShapeError,
        re.escape("c0 must be [2, 3, 4], got [2, 3, 5]: dim 2: expected 4, got 5"),
    ),
    ErrorInput(
        "h0_batched_for_unbatched_input",
        lambda: LSTM(8, 4)((_f32(2, 8), (_f32(1, 1, 4), _f32(1, 4)))),
        sc.ShapeError,
        re.escape("h0 must be [1, 4], got [1, 1, 4]"),
    ),
    ErrorInput(
        "state_not_a_pair",
        lambda: LSTM(8, 4)((_f32(2, 3, 8), _f32(1, 3, 4))),
        sc.ShapeError,
        re.escape("takes x or (x, (h0, c0)), got ([2, 3, 8], [1, 3, 4])"),
    ),
    ErrorInput(
        "h0_dtype",
        lambda: LSTM(8, 4)((_f32(2, 3, 8), (np.zeros((1, 3, 4)), _f32(1, 3, 4)))),
        TypeError,
        r"^input dtype float64 does not match the model's parameter dtype float32",
    ),
    ErrorInput(
        "zero_time_steps",
        lambda: LSTM(8, 4)(_f32(0, 3, 8)),
        sc.ShapeError,
        r"LSTM needs at least one time step, got T = 0$",
    ),
    ErrorInput(
        "zero_time_steps_batch_first",
        lambda: LSTM(8, 4, batch_first=True)(_f32(3, 0, 8)),
        sc.ShapeError,
        r"LSTM needs at least one time step, got T = 0$",
    ),
    ErrorInput(
        "zero_time_steps_unbatched",
        lambda: LSTM(8, 4)(_f32(0, 8)),
        sc.ShapeError,
        r"LSTM needs at least one time step, got T = 0$",
    ),
    ErrorInput(
        "int_input",
        lambda: LSTM(8, 4)(np.zeros((2, 3, 8), np.int64)),
        sc.ShapeError,
        r"takes a float sequence, got int\[2, 3, 8\]$",
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)


def test_zero_time_steps_is_an_error_in_torch_too() -> None:
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0"):
        torch.nn.LSTM(8, 4)(torch.zeros(0, 3, 8))


def test_every_option_combination_builds_and_infers_its_types() -> None:
    """The shape contract agrees with what forward returns, for every option."""
    for layers, bi, proj, bf in itertools.product([1, 2], [False, True], [0, 2], [False, True]):
        spec = LSTM(3, 4, num_layers=layers, bidirectional=bi, proj_size=proj, batch_first=bf)
        model = spec.as_chain().to(np.float64)
        x = np.zeros((2, 5, 3))
        y = model(x)
        d = 2 if bi else 1
        assert y.shape == (2, 5, d * (proj or 4))
        assert str(model.out_type) == (
            f"[B, T, {d * (proj or 4)}]" if bf else f"[T, B, {d * (proj or 4)}]"
        )
