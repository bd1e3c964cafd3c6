"""``RNN``: torch parity over the full product of options, with and without lengths (outputs,
``h_n``, ``dx``, ``dh0`` and every weight gradient), unbatched input, inter-layer dropout with
the masks torch would need, ``B = 0``, finite differences, and the bad-input table."""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import specchain as sc
from specchain.modules import RNN
from specchain.padded import Padded
from specchain.spec import Context
from tests.helpers import (
    TORCH_DTYPES,
    ErrorInput,
    assert_close,
    assert_gradcheck,
    check_error_input,
    error_params,
    load_torch,
    one_torch_thread,
    torch_from,
)

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

IN, HID, STEPS = 3, 4, 6
LENGTHS = [1, 6, 1, 3, 5]  # unsorted, two of length 1, one reaching T


def _spec_and_torch(dtype: type, **options: Any) -> tuple[RNN, torch.nn.RNN]:
    """Our RNN (``return_state=True``) and an ``nn.RNN`` holding the same weights; loading with
    ``strict=True`` proves the parameter names and shapes are PyTorch's."""
    spec = RNN(IN, HID, return_state=True, **options)
    spec.to(dtype)
    ref = torch.nn.RNN(IN, HID, dtype=TORCH_DTYPES[np.dtype(dtype)], **options)
    load_torch(ref, {f"rnn.{k}": v for k, v in spec.params.items()}, "rnn.")
    return spec, ref


def check_matches_torch(
    rng: np.random.Generator,
    dtype: type,
    state: bool,
    lengths: list[int] | None,
    batch: int | None = 5,
    **options: Any,
) -> None:
    """One forward and backward of ours and of torch autograd (packed when ``lengths`` are
    given; ``batch=None``: unbatched); compare every output and gradient."""
    spec, ref = _spec_and_torch(dtype, **options)
    count = spec.num_layers * spec.directions
    bf = spec.batch_first
    if batch is None:
        seq: tuple[int, ...] = (STEPS,)
        lead: tuple[int, ...] = (count,)
    else:
        seq, lead = ((batch, STEPS) if bf else (STEPS, batch)), (count, batch)
    x = rng.standard_normal((*seq, IN)).astype(dtype)
    h0 = rng.standard_normal((*lead, HID)).astype(dtype)
    dy = rng.standard_normal((*seq, spec.directions * HID)).astype(dtype)
    dh_n = rng.standard_normal((*lead, HID)).astype(dtype)
    lens = None if lengths is None else np.array(lengths, np.int64)

    inp: Any = x if lens is None else Padded(x, lens, *((1, 0) if bf else (0, 1)))
    (y, h_n), saved = spec.forward(spec.params, (inp, h0) if state else inp, Context(train=True))
    dx, grads = spec.backward(spec.params, saved, (dy, dh_n))

    xt, h0t = torch_from(x, requires_grad=True), torch_from(h0, requires_grad=True)
    if lens is None:
        yt, h_nt = ref(xt, h0t) if state else ref(xt)
    else:
        packed = pack_padded_sequence(xt, torch.from_numpy(lens), bf, enforce_sorted=False)
        out, h_nt = ref(packed, h0t) if state else ref(packed)
        yt, _ = pad_packed_sequence(out, bf, total_length=STEPS)
    ((yt * torch_from(dy)).sum() + (h_nt * torch_from(dh_n)).sum()).backward()

    if lens is not None:
        assert isinstance(y, Padded)
        np.testing.assert_array_equal(y.lengths, lens)
        assert not y.data[~y.mask()].any(), "outputs past each length are exactly 0"
        y = y.data
    assert_close(y, yt, "output")
    assert_close(h_n, h_nt, "h_n")
    if state:
        dx, dh0 = dx
        assert_close(dh0, h0t.grad, "dh0")
    assert_close(dx, xt.grad, "dx")
    assert set(grads) == {name for name, _ in ref.named_parameters()}
    for name, p in ref.named_parameters():
        assert_close(grads[name], p.grad, name)


# --- parity: the full product of options -------------------------------------------------------


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("state", [False, True], ids=["zero_state", "state"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2], ids=lambda n: f"L{n}")
def test_matches_torch(
    layers: int,
    bidirectional: bool,
    batch_first: bool,
    state: bool,
    bias: bool,
    nonlinearity: str,
    dtype: type,
    lengths: list[int] | None,
    rng: np.random.Generator,
) -> None:
    check_matches_torch(
        rng,
        dtype,
        state,
        lengths,
        num_layers=layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        bias=bias,
        nonlinearity=nonlinearity,
    )


@pytest.mark.parametrize("lengths", [None, [4]], ids=["full", "lengths"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("state", [False, True], ids=["zero_state", "state"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_unbatched_matches_torch(
    dtype: type,
    bidirectional: bool,
    state: bool,
    nonlinearity: str,
    lengths: list[int] | None,
    rng: np.random.Generator,
) -> None:
    """``x [T, I]`` with ``h0 [L*D, H]``; torch has no unbatched packed input, so the length
    case compares against torch on the first 4 steps, zero-padded."""
    if lengths is None:
        check_matches_torch(
            rng,
            dtype,
            state,
            None,
            batch=None,
            num_layers=2,
            bidirectional=bidirectional,
            nonlinearity=nonlinearity,
        )
        return
    spec, ref = _spec_and_torch(
        dtype, num_layers=2, bidirectional=bidirectional, nonlinearity=nonlinearity
    )
    x = rng.standard_normal((STEPS, IN)).astype(dtype)
    h0 = rng.standard_normal((spec.num_layers * spec.directions, HID)).astype(dtype)
    inp: Any = Padded(x, np.array(lengths), time_axis=0, batch_axis=None)
    (y, h_n), _ = spec.forward(spec.params, (inp, h0) if state else inp, Context(train=False))
    with torch.no_grad():
        xt = torch_from(x[: lengths[0]])
        yt, h_nt = ref(xt, torch_from(h0)) if state else ref(xt)
    assert_close(y.data[: lengths[0]], yt, "output")
    assert not y.data[lengths[0] :].any()
    assert_close(h_n, h_nt, "h_n")


def test_without_return_state_the_output_is_y(rng: np.random.Generator) -> None:
    model = RNN(IN, HID, num_layers=2, batch_first=True).as_chain().to(np.float64)
    x = rng.standard_normal((2, STEPS, IN))
    y = model(x)
    assert isinstance(y, np.ndarray) and y.shape == (2, STEPS, HID)
    assert str(model.out_type) == f"[B, T, {HID}]"
    with_state = RNN(IN, HID, num_layers=2, batch_first=True, return_state=True).as_chain()
    assert str(with_state.out_type) == f"(output: [B, T, {HID}], h_n: [2, B, {HID}])"


def test_parameter_names_order_shapes_and_init_are_pytorchs() -> None:
    sc.seed(0)
    spec = RNN(IN, HID, num_layers=2, bidirectional=True)
    ref = torch.nn.RNN(IN, HID, num_layers=2, bidirectional=True)
    assert [(k, v.shape) for k, v in spec.params.items()] == [
        (k, tuple(v.shape)) for k, v in ref.named_parameters()
    ]
    bound = 1 / np.sqrt(HID)
    values = np.concatenate([v.ravel() for v in spec.params.values()])
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.8 * bound


def test_empty_batch_gives_empty_results_like_torch() -> None:
    spec, ref = _spec_and_torch(np.float64, num_layers=2, bidirectional=True)
    x, h0 = np.zeros((STEPS, 0, IN)), np.zeros((4, 0, HID))
    (y, h_n), saved = spec.forward(spec.params, (x, h0), Context(train=True))
    (dx, dh0), grads = spec.backward(spec.params, saved, (np.zeros_like(y), np.zeros_like(h_n)))
    yt, h_nt = ref(torch_from(x), torch_from(h0))
    assert y.shape == tuple(yt.shape) and h_n.shape == tuple(h_nt.shape)
    assert dx.shape == x.shape and dh0.shape == h0.shape
    assert all(not g.any() for g in grads.values())


# --- dropout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_dropout_between_layers_matches_torch_with_the_same_masks(
    bidirectional: bool, rng: np.random.Generator
) -> None:
    """Two one-layer torch RNNs with our mask multiplied in between are the dropout RNN."""
    spec = RNN(IN, HID, num_layers=2, dropout=0.4, bidirectional=bidirectional)
    spec.to(np.float64)
    x = rng.standard_normal((STEPS, 3, IN))
    y, saved = spec.forward(spec.params, x, Context(train=True, rng=np.random.default_rng(1)))
    (mask,) = saved[1]
    assert set(np.unique(mask)) == {0.0, 1 / 0.6}
    dy = rng.standard_normal(y.shape)
    dx, grads = spec.backward(spec.params, saved, dy)

    layers = [
        torch.nn.RNN(n, HID, bidirectional=bidirectional, dtype=torch.float64)
        for n in (IN, spec.directions * HID)
    ]
    for layer, ref in enumerate(layers):
        own = {
            k.replace(f"_l{layer}", "_l0"): v for k, v in spec.params.items() if f"_l{layer}" in k
        }
        load_torch(ref, {f"rnn.{k}": v for k, v in own.items()}, "rnn.")
    xt = torch_from(x, requires_grad=True)
    yt, _ = layers[1](layers[0](xt)[0] * torch_from(mask))
    (yt * torch_from(dy)).sum().backward()
    assert_close(y, yt, "output")
    assert_close(dx, xt.grad, "dx")
    for layer, ref in enumerate(layers):
        for name, p in ref.named_parameters():
            assert_close(grads[name.replace("_l0", f"_l{layer}")], p.grad, name)


def test_dropout_is_identity_in_inference_and_on_one_layer(rng: np.random.Generator) -> None:
    x = rng.standard_normal((STEPS, 2, IN))
    spec = RNN(IN, HID, num_layers=2, dropout=0.5)
    assert spec.forward(spec.params, x.astype(np.float32), Context(train=False))[1][1] == []
    one = RNN(IN, HID, dropout=0.5)
    assert one.forward(one.params, x.astype(np.float32), Context(train=True))[1][1] == []


# --- finite differences ------------------------------------------------------------------------


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_gradcheck_two_layer_bidirectional_with_state(
    nonlinearity: str, rng: np.random.Generator
) -> None:
    spec = RNN(3, 4, 2, nonlinearity, bidirectional=True, return_state=True)
    model = spec.as_chain()
    x, h0 = rng.standard_normal((5, 2, 3)), rng.standard_normal((4, 2, 4))
    report = assert_gradcheck(model, (x, h0))
    assert {"input", "input[1]", "rnn.weight_hh_l1_reverse"} <= set(report.errors)


def test_gradcheck_with_lengths(rng: np.random.Generator) -> None:
    """A chain called with ``(x, lengths)``: finite differences through the packed path."""
    model = sc.Input(("T", "B", 3), lengths=True) >> RNN(3, 4, num_layers=2, bidirectional=True)
    x = rng.standard_normal((5, 3, 3))
    assert_gradcheck(model, (x, np.array([2, 5, 1])))


def test_gradcheck_unbatched_batch_first_and_dropout(rng: np.random.Generator) -> None:
    assert_gradcheck(RNN(3, 4, bidirectional=True).as_chain(), rng.standard_normal((4, 3)))
    assert_gradcheck(RNN(3, 4, batch_first=True).as_chain(), rng.standard_normal((2, 4, 3)))
    model = RNN(3, 4, num_layers=3, dropout=0.3).as_chain().to(np.float64)
    report = sc.gradcheck(model, rng.standard_normal((3, 2, 3)), train=True, rng=5)
    assert report.passed(1e-7), str(report)


def test_saturated_tanh_over_long_sequences_raises_no_float_warnings() -> None:
    sc.seed(3)
    model = RNN(4, 5, num_layers=2, bidirectional=True).as_chain().to(np.float64)
    for p in model.named_parameters().values():
        p *= 400.0
    x = np.random.default_rng(0).standard_normal((2000, 2, 4))
    with np.errstate(all="raise"):
        y, tape = model.forward(x, train=True, rng=0)
        dx, grads = model.backward(tape, np.ones_like(y))
    assert np.abs(y).max() <= 1.0 and np.isfinite(dx).all()
    assert all(np.isfinite(g).all() for g in grads.values())


# --- bad inputs --------------------------------------------------------------------------------


def _f32(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


def _forward(spec: RNN, x: Any) -> Any:
    return spec.forward(spec.params, x, Context())


BAD_INPUTS = [
    ErrorInput(
        "nonlinearity_unknown",
        lambda: RNN(3, 4, nonlinearity="sigmoid"),
        sc.SpecError,
        re.escape("RNN.nonlinearity must be one of ('tanh', 'relu'), got 'sigmoid'"),
    ),
    ErrorInput(
        "hidden_size_zero",
        lambda: RNN(3, 0),
        sc.SpecError,
        r"^RNN\.hidden_size must be a positive int, got 0$",
    ),
    ErrorInput(
        "dropout_above_one",
        lambda: RNN(3, 4, num_layers=2, dropout=1.5),
        sc.SpecError,
        r"^RNN\.dropout must be in \[0, 1\], got 1\.5$",
    ),
    ErrorInput(
        "call_wrong_feature_size",
        lambda: RNN(8, 4)(_f32(2, 3, 9)),
        sc.ShapeError,
        re.escape("got [2, 3, 9]: feature size: expected 8, got 9"),
    ),
    ErrorInput(
        "call_rank_4",
        lambda: RNN(8, 4)(_f32(2, 3, 1, 8)),
        sc.ShapeError,
        re.escape("rank: expected [T, B, 8] or [T, 8], got [2, 3, 1, 8]"),
    ),
    ErrorInput(
        "h0_wrong_layers",
        lambda: RNN(8, 4)((_f32(2, 3, 8), _f32(2, 3, 4))),
        sc.ShapeError,
        re.escape("h0 must be [1, 3, 4], got [2, 3, 4]: dim 0: expected 1, got 2"),
    ),
    ErrorInput(
        "h0_batched_for_unbatched_input",
        lambda: RNN(8, 4)((_f32(2, 8), _f32(1, 1, 4))),
        sc.ShapeError,
        re.escape("h0 must be [1, 4], got [1, 1, 4]"),
    ),
    ErrorInput(
        "lstm_style_state",
        lambda: RNN(8, 4)((_f32(2, 3, 8), (_f32(1, 3, 4), _f32(1, 3, 4)))),
        sc.ShapeError,
        re.escape("takes x or (x, h0), got"),
    ),
    ErrorInput(
        "h0_dtype",
        lambda: RNN(8, 4)((_f32(2, 3, 8), np.zeros((1, 3, 4)))),
        TypeError,
        r"^input dtype float64 does not match the model's parameter dtype float32",
    ),
    ErrorInput(
        "zero_time_steps",
        lambda: RNN(8, 4)(_f32(0, 3, 8)),
        sc.ShapeError,
        r"RNN needs at least one time step, got T = 0$",
    ),
    ErrorInput(
        "zero_time_steps_unbatched",
        lambda: RNN(8, 4)(_f32(0, 8)),
        sc.ShapeError,
        r"RNN needs at least one time step, got T = 0$",
    ),
    ErrorInput(
        "int_input",
        lambda: RNN(8, 4)(np.zeros((2, 3, 8), np.int64)),
        sc.ShapeError,
        r"takes a float sequence, got int\[2, 3, 8\]$",
    ),
    ErrorInput(
        "lengths_out_of_range",
        lambda: RNN(8, 4)(Padded(_f32(2, 3, 8), np.array([1, 3, 2]))),
        sc.ShapeError,
        re.escape("lengths[1] = 3 is outside 1..2 (T = 2 in data shape [2, 3, 8])"),
    ),
    ErrorInput(
        "padded_axes_for_the_other_layout",
        lambda: _forward(RNN(8, 4, batch_first=True), Padded(_f32(3, 2, 8), np.array([1, 2]))),
        sc.ShapeError,
        re.escape(
            "RNN (batch_first=True) reads [B, T, F] data, but the Padded input says time_axis=0, "
            "batch_axis=1; build it as Padded(x, lengths, time_axis=1, batch_axis=0)"
        ),
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)


def test_every_option_combination_builds_and_infers_its_types() -> None:
    """The shape contract agrees with what forward returns, for every option."""
    for layers, bi, bf, nl in itertools.product(
        [1, 2], [False, True], [False, True], ["tanh", "relu"]
    ):
        spec = RNN(3, 4, num_layers=layers, bidirectional=bi, batch_first=bf, nonlinearity=nl)
        model = spec.as_chain().to(np.float64)
        y = model(np.zeros((2, 5, 3)))
        d = 2 if bi else 1
        assert y.shape == (2, 5, d * 4)
        assert str(model.out_type) == (f"[B, T, {d * 4}]" if bf else f"[T, B, {d * 4}]")
