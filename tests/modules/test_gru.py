"""``GRU``: torch parity over the full product of options, with and without lengths (outputs,
``h_n``, input and state gradients and every weight gradient), inter-layer dropout with the same
masks, finite differences, and the bad-input table."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import specchain as sc
from specchain.modules import GRU
from specchain.padded import Padded
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

IN, HID, STEPS, BATCH = 3, 4, 6, 4
LENGTHS = [2, 6, 1, 1]  # unsorted, two of length 1


def _pair(dtype: type, **options: Any) -> tuple[sc.SpecChain, torch.nn.GRU]:
    """Our GRU (``return_state=True``) and ``nn.GRU`` with the same weights; ``strict=True``
    loading proves the parameter names and shapes are PyTorch's."""
    model = GRU(IN, HID, return_state=True, **options).as_chain().to(dtype)
    ref = torch.nn.GRU(IN, HID, dtype=TORCH_DTYPES[np.dtype(dtype)], **options)
    load_torch(ref, model.named_parameters(), "gru.")
    return model, ref


def _data(
    rng: np.random.Generator, dtype: type, batch: int | None, **options: Any
) -> dict[str, np.ndarray]:
    """x, h0 and cotangents dy, dh_n in the layout of the options (``batch=None``: unbatched)."""
    d = 2 if options.get("bidirectional") else 1
    count = options.get("num_layers", 1) * d
    if batch is None:
        seq: tuple[int, ...] = (STEPS,)
        lead: tuple[int, ...] = (count,)
    else:
        seq = (batch, STEPS) if options.get("batch_first") else (STEPS, batch)
        lead = (count, batch)
    shapes = {"x": (*seq, IN), "h0": (*lead, HID), "dy": (*seq, d * HID), "dh_n": (*lead, HID)}
    return {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}


def check_gru_matches_torch(
    rng: np.random.Generator,
    dtype: type,
    state: bool,
    lengths: list[int] | None = None,
    batch: int | None = BATCH,
    **options: Any,
) -> None:
    """One forward and backward of ours and of torch autograd (packed when ``lengths``)."""
    model, ref = _pair(dtype, **options)
    data = _data(rng, dtype, batch, **options)
    bf = bool(options.get("batch_first"))
    x: Any = data["x"]
    if lengths is not None:
        axes: tuple[int, int | None] = (0, None) if batch is None else ((1, 0) if bf else (0, 1))
        x = Padded(x, np.array(lengths), time_axis=axes[0], batch_axis=axes[1])
    (y, h_n), tape = model.forward((x, data["h0"]) if state else x, train=True, rng=0)
    dx, grads = model.backward(tape, (data["dy"], data["dh_n"]))

    xt, h0t = torch_from(data["x"], requires_grad=True), torch_from(data["h0"], True)
    inp: Any = xt
    if lengths is not None and batch is not None:
        inp = pack_padded_sequence(xt, torch.tensor(lengths), bf, enforce_sorted=False)
    yt, h_nt = ref(inp, h0t) if state else ref(inp)
    if lengths is not None:
        if batch is not None:
            yt, _ = pad_packed_sequence(yt, bf, total_length=STEPS)
        assert isinstance(y, Padded)
        assert not y.data[~y.mask()].any(), "outputs past each length are exactly 0"
        y = y.data
    ((yt * torch_from(data["dy"])).sum() + (h_nt * torch_from(data["dh_n"])).sum()).backward()

    assert_close(y, yt, "output")
    assert_close(h_n, h_nt, "h_n")
    if state:
        assert isinstance(dx, tuple), "h0 was given, so dx is (dx, dh0)"
        dx, dh0 = dx
        assert_close(dh0, h0t.grad, "dh0")
    assert_close(dx, xt.grad, "dx")
    assert set(grads) == {f"gru.{name}" for name, _ in ref.named_parameters()}
    for name, p in ref.named_parameters():
        assert_close(grads[f"gru.{name}"], p.grad, f"gru.{name}")


# --- parity: the full product of options -------------------------------------------------------


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
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
    dtype: type,
    lengths: list[int] | None,
    rng: np.random.Generator,
) -> None:
    check_gru_matches_torch(
        rng,
        dtype,
        state,
        lengths,
        num_layers=layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        bias=bias,
    )


@pytest.mark.parametrize("lengths", [None, [STEPS]], ids=["full", "lengths"])
@pytest.mark.parametrize("state", [False, True], ids=["zero_state", "state"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_unbatched_matches_torch(
    dtype: type,
    bidirectional: bool,
    state: bool,
    lengths: list[int] | None,
    rng: np.random.Generator,
) -> None:
    """``x [T, I]`` with ``h0 [L*D, H]``; an unbatched ``Padded`` (its one length is T) runs
    as torch's unbatched call."""
    check_gru_matches_torch(
        rng, dtype, state, lengths, None, num_layers=2, bidirectional=bidirectional
    )


@pytest.mark.parametrize("fill", [np.nan, np.inf, 1e30], ids=["nan", "inf", "huge"])
def test_padding_values_change_nothing_and_get_zero_gradient(
    fill: float, rng: np.random.Generator
) -> None:
    """Padding in ``x`` and ``dy`` set to NaN, inf or 1e30 gives bit-for-bit the results of
    zero padding, and ``dx`` is exactly 0 on padding."""
    model, _ = _pair(np.float64, num_layers=2, bidirectional=True, batch_first=True)
    data = _data(rng, np.float64, BATCH, num_layers=2, bidirectional=True, batch_first=True)
    lens = np.array(LENGTHS)
    pad = (np.arange(STEPS)[None, :] >= lens[:, None])[..., None]  # [B, T, 1]

    def run(value: float) -> tuple[Any, ...]:
        x = Padded(np.where(pad, value, data["x"]), lens, time_axis=1, batch_axis=0)
        (y, h_n), tape = model.forward((x, data["h0"]), train=True, rng=0)
        (dx, dh0), grads = model.backward(tape, (np.where(pad, value, data["dy"]), data["dh_n"]))
        return y.data, h_n, dx, dh0, grads

    clean, dirty = run(0.0), run(fill)
    for a, b in zip(clean[:4], dirty[:4], strict=True):
        np.testing.assert_array_equal(a, b)
    for name, grad in clean[4].items():
        np.testing.assert_array_equal(grad, dirty[4][name], err_msg=name)
    dx = dirty[2]
    assert not dx[np.broadcast_to(pad, dx.shape)].any(), "no gradient reaches padding"
    assert dx[~np.broadcast_to(pad, dx.shape)].all()


def test_without_return_state_the_output_is_y(rng: np.random.Generator) -> None:
    model = GRU(IN, HID, num_layers=2, bidirectional=True).as_chain().to(np.float64)
    ref = torch.nn.GRU(IN, HID, num_layers=2, bidirectional=True, dtype=torch.float64)
    load_torch(ref, model.named_parameters(), "gru.")
    x, dy = rng.standard_normal((5, 2, IN)), rng.standard_normal((5, 2, 2 * HID))
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
        assert_close(grads[f"gru.{name}"], p.grad, name)


def test_parameter_names_order_shapes_and_init_are_pytorchs() -> None:
    options = {"num_layers": 2, "bidirectional": True}
    model = GRU(IN, HID, **options).as_chain()
    ref = torch.nn.GRU(IN, HID, **options)
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [
        (f"gru.{k}", tuple(v.shape)) for k, v in ref.state_dict().items()
    ]
    bound = 1 / np.sqrt(HID)  # PyTorch: every parameter U(-1/sqrt(H), 1/sqrt(H))
    params = model.named_parameters().values()
    assert all(p.dtype == np.float32 and np.abs(p).max() <= bound for p in params)
    assert all(np.abs(p).max() > bound / 2 for p in params)


def test_empty_batch_gives_empty_results_like_torch(rng: np.random.Generator) -> None:
    model, ref = _pair(np.float64, num_layers=2, bidirectional=True)
    data = _data(rng, np.float64, 0, num_layers=2, bidirectional=True)
    (y, h_n), tape = model.forward((data["x"], data["h0"]), train=True, rng=0)
    yt, h_nt = ref(torch_from(data["x"]), torch_from(data["h0"]))
    assert (y.shape, h_n.shape) == (tuple(yt.shape), tuple(h_nt.shape)) == ((6, 0, 8), (4, 0, 4))
    (dx, dh0), grads = model.backward(tape, (data["dy"], None))
    assert (dx.shape, dh0.shape) == (data["x"].shape, data["h0"].shape)
    assert all(not g.any() for g in grads.values())


def test_saturated_gates_raise_no_float_warnings_and_match_torch(rng: np.random.Generator) -> None:
    model, ref = _pair(np.float64, num_layers=2)
    for weight in model.named_parameters().values():
        weight *= 400.0
    load_torch(ref, model.named_parameters(), "gru.")
    x = rng.standard_normal((300, 2, IN))
    with np.errstate(all="raise"):
        (y, _), tape = model.forward(x, train=True, rng=0)
        dx, grads = model.backward(tape, (np.ones_like(y), None))
    xt = torch_from(x, requires_grad=True)
    yt, _ = ref(xt)
    yt.sum().backward()
    assert_close(y, yt, "output")
    assert_close(dx, xt.grad, "dx")
    for name, p in ref.named_parameters():
        assert_close(grads[f"gru.{name}"], p.grad, name)


# --- inter-layer dropout -----------------------------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_dropout_between_layers_matches_torch_with_the_same_masks(
    dtype: type, bidirectional: bool, rng: np.random.Generator
) -> None:
    layers, p = 3, 0.4
    model = GRU(IN, HID, num_layers=layers, dropout=p, bidirectional=bidirectional)
    chain = model.as_chain().to(dtype)
    data = _data(rng, dtype, BATCH, num_layers=layers, bidirectional=bidirectional)
    y, tape = chain.forward((data["x"], data["h0"]), train=True, rng=7)
    masks = tape.saved["gru"][1]
    assert len(masks) == layers - 1
    assert all(0 < np.count_nonzero(m) < m.size and m.dtype == dtype for m in masks)
    (dx, dh0), grads = chain.backward(tape, data["dy"])

    d, params = (2 if bidirectional else 1), chain.named_parameters()
    xt, h0t = torch_from(data["x"], True), torch_from(data["h0"], True)
    inp, twins = xt, []
    for layer in range(layers):
        size = IN if layer == 0 else d * HID
        twin = torch.nn.GRU(
            size, HID, bidirectional=bidirectional, dtype=TORCH_DTYPES[np.dtype(dtype)]
        )
        names = {k: f"gru.{k.replace('_l0', f'_l{layer}')}" for k in twin.state_dict()}
        twin.load_state_dict({k: torch_from(params[v]) for k, v in names.items()}, strict=True)
        if layer > 0:
            inp = inp * torch_from(masks[layer - 1])
        inp, _ = twin(inp, h0t[layer * d : (layer + 1) * d])
        twins.append((layer, twin))
    (inp * torch_from(data["dy"])).sum().backward()
    assert_close(y, inp, "output")
    assert_close(dx, xt.grad, "dx")
    assert_close(dh0, h0t.grad, "dh0")
    for layer, twin in twins:
        for name, param in twin.named_parameters():
            ours = f"gru.{name.replace('_l0', f'_l{layer}')}"
            assert_close(grads[ours], param.grad, ours)


def test_dropout_is_identity_in_inference_and_follows_the_seed(rng: np.random.Generator) -> None:
    model, ref = _pair(np.float64, num_layers=3, dropout=0.5)
    x = rng.standard_normal((5, 2, IN))
    ref.eval()
    (y, _), tape = model.forward(x, train=False, rng=0)
    assert tape.saved["gru"][1] == []
    assert_close(y, ref(torch_from(x))[0], "output")
    first = model.forward(x, train=True, rng=11)[1].saved["gru"][1]
    again = model.forward(x, train=True, rng=11)[1].saved["gru"][1]
    other = model.forward(x, train=True, rng=12)[1].saved["gru"][1]
    for a, b, c in zip(first, again, other, strict=True):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


# --- finite differences ------------------------------------------------------------------------


def test_gradcheck_two_layer_bidirectional_with_state(rng: np.random.Generator) -> None:
    model = GRU(3, 4, num_layers=2, bidirectional=True, return_state=True).as_chain()
    x, h0 = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 4))
    report = assert_gradcheck(model, (x, h0))
    assert {"input", "input[1]", "gru.bias_hh_l1_reverse"} <= set(report.errors)


def test_gradcheck_unbatched_batch_first_no_bias(rng: np.random.Generator) -> None:
    model = GRU(3, 4, batch_first=True, bias=False, bidirectional=True).as_chain()
    assert_gradcheck(model, rng.standard_normal((5, 3)))


def test_gradcheck_with_lengths_through_the_chain(rng: np.random.Generator) -> None:
    """``model((x, lengths))`` runs packed; finite differences hold the lengths fixed."""
    spec = GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    model = (spec >> sc.modules.Linear(8, 2)).to(np.float64)
    x, lens = rng.standard_normal((4, 5, 3)), np.array([2, 5, 1, 4])
    y = model((x, lens))
    assert isinstance(y, Padded) and (y.time_axis, y.batch_axis) == (1, 0)
    report = sc.gradcheck(model, (x, lens))
    assert report.passed(1e-7), str(report)


def test_gradcheck_training_with_dropout(rng: np.random.Generator) -> None:
    model = GRU(3, 4, num_layers=3, dropout=0.3, bidirectional=True).as_chain().to(np.float64)
    report = sc.gradcheck(model, rng.standard_normal((3, 2, 3)), train=True, rng=5)
    assert report.passed(1e-7), str(report)


# --- bad inputs --------------------------------------------------------------------------------


def _f32(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


BAD_INPUTS = [
    ErrorInput(
        "input_size_zero",
        lambda: GRU(0, 3),
        sc.SpecError,
        r"^GRU\.input_size must be a positive int, got 0$",
    ),
    ErrorInput(
        "hidden_size_float",
        lambda: GRU(3, 4.0),  # type: ignore[arg-type]
        TypeError,
        r"^GRU\.hidden_size must be a positive int, got 4\.0 \(float\)$",
    ),
    ErrorInput(
        "num_layers_zero",
        lambda: GRU(3, 4, num_layers=0),
        sc.SpecError,
        r"^GRU\.num_layers must be a positive int, got 0$",
    ),
    ErrorInput(
        "dropout_above_one",
        lambda: GRU(3, 4, num_layers=2, dropout=1.5),
        sc.SpecError,
        r"^GRU\.dropout must be in \[0, 1\], got 1\.5$",
    ),
    ErrorInput(
        "bidirectional_int",
        lambda: GRU(3, 4, bidirectional=1),  # type: ignore[arg-type]
        TypeError,
        r"^GRU\.bidirectional must be True or False, got 1 \(int\)$",
    ),
    ErrorInput(
        "call_wrong_feature_size",
        lambda: GRU(8, 4)(_f32(2, 3, 9)),
        sc.ShapeError,
        re.escape(
            "input to 'gru' (GRU, expects [T, B, 8]): got [2, 3, 9]: feature size: "
            "expected 8, got 9"
        ),
    ),
    ErrorInput(
        "call_rank_4",
        lambda: GRU(8, 4)(_f32(2, 3, 1, 8)),
        sc.ShapeError,
        re.escape("rank: expected [T, B, 8] or [T, 8], got [2, 3, 1, 8]"),
    ),
    ErrorInput(
        "h0_wrong_layers",
        lambda: GRU(8, 4, num_layers=2)((_f32(2, 3, 8), _f32(1, 3, 4))),
        sc.ShapeError,
        re.escape("h0 must be [2, 3, 4], got [1, 3, 4]: dim 0: expected 2, got 1"),
    ),
    ErrorInput(
        "h0_wrong_hidden",
        lambda: GRU(8, 4, bidirectional=True)((_f32(2, 3, 8), _f32(2, 3, 5))),
        sc.ShapeError,
        re.escape("h0 must be [2, 3, 4], got [2, 3, 5]: dim 2: expected 4, got 5"),
    ),
    ErrorInput(
        "h0_batched_for_unbatched_input",
        lambda: GRU(8, 4)((_f32(2, 8), _f32(1, 1, 4))),
        sc.ShapeError,
        re.escape("h0 must be [1, 4], got [1, 1, 4]"),
    ),
    ErrorInput(
        "lstm_state_pair",
        lambda: GRU(8, 4)((_f32(2, 3, 8), (_f32(1, 3, 4), _f32(1, 3, 4)))),
        sc.ShapeError,
        re.escape("takes x or (x, h0), got"),
    ),
    ErrorInput(
        "zero_time_steps",
        lambda: GRU(8, 4)(_f32(0, 3, 8)),
        sc.ShapeError,
        r"GRU needs at least one time step, got T = 0$",
    ),
    ErrorInput(
        "zero_time_steps_batch_first",
        lambda: GRU(8, 4, batch_first=True)(_f32(3, 0, 8)),
        sc.ShapeError,
        r"GRU needs at least one time step, got T = 0$",
    ),
    ErrorInput(
        "int_input",
        lambda: GRU(8, 4)(np.zeros((2, 3, 8), np.int64)),
        sc.ShapeError,
        r"takes a float sequence, got int\[2, 3, 8\]$",
    ),
    ErrorInput(
        "lengths_above_steps",
        lambda: GRU(8, 4)((_f32(2, 3, 8), np.array([1, 3, 2]))),
        sc.ShapeError,
        re.escape("input: lengths[1] = 3 is outside 1..2 (T = 2 in data shape [2, 3, 8])"),
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)
