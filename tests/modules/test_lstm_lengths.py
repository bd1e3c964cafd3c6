"""``LSTM`` on variable-length sequences (``Padded`` inputs): torch's packed results over the
product of options, dtypes and length patterns (outputs, ``h_n``, ``c_n`` and every gradient),
finite differences with lengths, padding that never matters, the shared lengths helpers and the
kernel against each example run alone."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import specchain as sc
from specchain.gradcheck import relative_error
from specchain.modules import LSTM, LSTMCell
from specchain.modules.lengths_kernel import Runs, reverse_index, reverse_within
from specchain.modules.lstm_kernel import LayerWeights, layer_backward, layer_forward
from specchain.padded import Padded
from specchain.spec import Context
from tests.helpers import TORCH_DTYPES, assert_close, load_torch, one_torch_thread, torch_from

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

IN, HID, PROJ, STEPS = 3, 4, 2, 6
PATTERNS = {  # four examples of T = 6 steps
    "all_equal": [6, 6, 6, 6],
    "all_different": [6, 5, 3, 2],
    "some_length_1": [1, 6, 1, 3],
    "unsorted_short": [2, 5, 3, 4],  # no example reaches T: the last step is padding for all
}


def _padded(x: np.ndarray, lengths: np.ndarray, batch_first: bool) -> Padded:
    return Padded(x, lengths, time_axis=1, batch_axis=0) if batch_first else Padded(x, lengths)


def _data(
    rng: np.random.Generator, dtype: type, spec: LSTM, lengths: np.ndarray
) -> dict[str, np.ndarray]:
    """x (in the spec's layout), h0, c0 and random cotangents dy, dh_n, dc_n (dy nonzero on
    padding too, which must be ignored)."""
    batch = len(lengths)
    seq = (batch, STEPS) if spec.batch_first else (STEPS, batch)
    count = spec.num_layers * spec.directions
    shapes = {
        "x": (*seq, IN),
        "h0": (count, batch, spec.out_size),
        "c0": (count, batch, HID),
        "dy": (*seq, spec.directions * spec.out_size),
        "dh_n": (count, batch, spec.out_size),
        "dc_n": (count, batch, HID),
    }
    return {k: rng.standard_normal(shape).astype(dtype) for k, shape in shapes.items()}


def _spec(dtype: type, **options: Any) -> LSTM:
    spec = LSTM(IN, HID, return_state=True, **options)
    spec.to(dtype)
    return spec


def _ours(
    spec: LSTM, data: dict[str, np.ndarray], lengths: np.ndarray, state: bool
) -> tuple[Any, Any]:
    """One forward and backward of the spec on a ``Padded`` input: ``(outputs, gradients)``."""
    x = _padded(data["x"], lengths, spec.batch_first)
    inp: Any = (x, (data["h0"], data["c0"])) if state else x
    (y, (h_n, c_n)), saved = spec.forward(spec.params, inp, Context(train=True))
    dx, grads = spec.backward(spec.params, saved, (data["dy"], (data["dh_n"], data["dc_n"])))
    return (y, h_n, c_n), (dx, grads)


def check_packed_parity(
    dtype: type, lengths: list[int], state: bool, rng: np.random.Generator, **options: Any
) -> None:
    spec = _spec(dtype, **options)
    ref = torch.nn.LSTM(IN, HID, dtype=TORCH_DTYPES[np.dtype(dtype)], **options)
    load_torch(ref, {f"lstm.{k}": v for k, v in spec.params.items()}, "lstm.")
    lens = np.array(lengths, np.int64)
    data = _data(rng, dtype, spec, lens)
    (y, h_n, c_n), (dx, grads) = _ours(spec, data, lens, state)

    xt, h0t, c0t = (torch_from(data[k], requires_grad=True) for k in ("x", "h0", "c0"))
    bf = spec.batch_first
    packed = pack_padded_sequence(xt, torch.from_numpy(lens), bf, enforce_sorted=False)
    out, (h_nt, c_nt) = ref(packed, (h0t, c0t)) if state else ref(packed)
    yt, _ = pad_packed_sequence(out, bf, total_length=STEPS)
    loss = (yt * torch_from(data["dy"])).sum() + (h_nt * torch_from(data["dh_n"])).sum()
    (loss + (c_nt * torch_from(data["dc_n"])).sum()).backward()

    assert isinstance(y, Padded)
    assert (y.time_axis, y.batch_axis) == ((1, 0) if bf else (0, 1))
    np.testing.assert_array_equal(y.lengths, lens)
    assert_close(y.data, yt, "output")
    assert not y.data[~y.mask()].any(), "outputs past each length are exactly 0"
    assert_close(h_n, h_nt, "h_n")
    assert_close(c_n, c_nt, "c_n")
    if state:
        dx, (dh0, dc0) = dx
        assert_close(dh0, h0t.grad, "dh0")
        assert_close(dc0, c0t.grad, "dc0")
    assert isinstance(dx, np.ndarray)
    assert_close(dx, xt.grad, "dx")
    assert set(grads) == {name for name, _ in ref.named_parameters()}
    for name, p in ref.named_parameters():
        assert_close(grads[name], p.grad, name)


@pytest.mark.parametrize("pattern", list(PATTERNS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("state", [False, True], ids=["zero_state", "state"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("proj", [0, PROJ], ids=["no_proj", "proj"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2], ids=lambda n: f"L{n}")
def test_matches_torch_packed(
    layers: int,
    bidirectional: bool,
    proj: int,
    batch_first: bool,
    state: bool,
    bias: bool,
    dtype: type,
    pattern: str,
    rng: np.random.Generator,
) -> None:
    check_packed_parity(
        dtype,
        PATTERNS[pattern],
        state,
        rng,
        num_layers=layers,
        bidirectional=bidirectional,
        proj_size=proj,
        batch_first=batch_first,
        bias=bias,
    )


def test_full_lengths_give_exactly_the_unpadded_results(rng: np.random.Generator) -> None:
    spec = _spec(np.float64, num_layers=2, bidirectional=True, proj_size=PROJ)
    lens = np.full(4, STEPS, np.int64)
    data = _data(rng, np.float64, spec, lens)
    (y, h_n, c_n), (dx, grads) = _ours(spec, data, lens, state=True)
    inp = (data["x"], (data["h0"], data["c0"]))
    (y0, (h_n0, c_n0)), saved = spec.forward(spec.params, inp, Context(train=True))
    dx0, grads0 = spec.backward(spec.params, saved, (data["dy"], (data["dh_n"], data["dc_n"])))
    for ours, plain in [(y.data, y0), (h_n, h_n0), (c_n, c_n0), (dx[0], dx0[0])]:
        np.testing.assert_array_equal(ours, plain)
    for name in grads0:
        np.testing.assert_array_equal(grads[name], grads0[name])


# --- padding never matters ---------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("fill", [np.nan, np.inf, 1e30], ids=["nan", "inf", "huge"])
def test_padding_values_change_nothing_and_get_zero_gradient(
    fill: float, batch_first: bool, rng: np.random.Generator
) -> None:
    """Padding in ``x`` and ``dy`` set to NaN, inf or 1e30 gives bit-for-bit the results of
    zero padding, and ``dx`` is exactly 0 on padding."""
    options = {"num_layers": 2, "bidirectional": True, "proj_size": PROJ}
    spec = _spec(np.float64, batch_first=batch_first, **options)
    lens = np.array(PATTERNS["some_length_1"], np.int64)
    data = _data(rng, np.float64, spec, lens)
    pad = ~_padded(data["x"], lens, batch_first).mask()[..., :1]
    clean, dirty = dict(data), dict(data)
    for key in ("x", "dy"):
        clean[key] = np.where(pad, 0.0, data[key])
        dirty[key] = np.where(pad, fill, data[key])
    (y, h_n, c_n), ((dx, (dh0, dc0)), grads) = _ours(spec, clean, lens, state=True)
    (y2, h_n2, c_n2), ((dx2, (dh02, dc02)), grads2) = _ours(spec, dirty, lens, state=True)
    for a, b in [(y.data, y2.data), (h_n, h_n2), (c_n, c_n2), (dx, dx2), (dh0, dh02), (dc0, dc02)]:
        np.testing.assert_array_equal(a, b)
    for name in grads:
        np.testing.assert_array_equal(grads[name], grads2[name])
    assert not dx[np.broadcast_to(pad, dx.shape)].any(), "no gradient reaches padding"
    assert dx[~np.broadcast_to(pad, dx.shape)].all()


# --- finite differences ------------------------------------------------------------------------


def _central_differences(
    outputs: Any, arrays: dict[str, np.ndarray], cotangents: list[np.ndarray], eps: float = 1e-6
) -> dict[str, np.ndarray]:
    """``d sum(out * cotangent) / d array`` for every entry of every array (perturbed in place);
    ``outputs()`` returns the output arrays. Outputs are differenced before the dot product, as
    in ``sc.gradcheck``."""
    numeric = {}
    for name, array in arrays.items():
        grad = np.zeros_like(array)
        flat, out = array.reshape(-1), grad.reshape(-1)
        assert np.shares_memory(flat, array)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            plus = outputs()
            flat[i] = orig - eps
            minus = outputs()
            flat[i] = orig
            out[i] = sum(float(np.sum((p - m) * w)) for p, m, w in zip(plus, minus, cotangents))
            out[i] /= 2 * eps
        numeric[name] = grad
    return numeric


@pytest.mark.parametrize(
    "options",
    [
        {"num_layers": 2, "bidirectional": True, "proj_size": PROJ},
        {"num_layers": 2, "batch_first": True, "bias": False},
        {"num_layers": 3, "bidirectional": True, "dropout": 0.4},
    ],
    ids=["L2_bi_proj", "L2_bf_nobias", "L3_bi_dropout"],
)
def test_finite_differences_with_lengths(options: dict[str, Any], rng: np.random.Generator) -> None:
    """Central differences in float64 over every weight, x (padding included: its numeric
    gradient is 0 too), h0 and c0, within the numerics contract's 1e-7; the dropout case runs
    in training with masks fixed by the context's seed."""
    spec = _spec(np.float64, **options)
    lens = np.array([2, 6, 1, 4], np.int64)
    data = _data(rng, np.float64, spec, lens)
    cot = [data["dy"], data["dh_n"], data["dc_n"]]

    def outputs() -> list[np.ndarray]:
        inp = (_padded(data["x"], lens, spec.batch_first), (data["h0"], data["c0"]))
        ctx = Context(train=True, rng=np.random.default_rng(5))
        (y, (h_n, c_n)), _ = spec.forward(spec.params, inp, ctx)
        return [y.data.copy(), h_n.copy(), c_n.copy()]

    inp = (_padded(data["x"], lens, spec.batch_first), (data["h0"], data["c0"]))
    _, saved = spec.forward(spec.params, inp, Context(train=True, rng=np.random.default_rng(5)))
    (dx, (dh0, dc0)), grads = spec.backward(spec.params, saved, (cot[0], (cot[1], cot[2])))
    analytic = {**grads, "x": dx, "h0": dh0, "c0": dc0}
    arrays = {**spec.params, "x": data["x"], "h0": data["h0"], "c0": data["c0"]}
    numeric = _central_differences(outputs, arrays, cot)
    largest = max(float(np.abs(a).max()) for a in analytic.values())
    errors = {k: relative_error(analytic[k], numeric[k], 1e-6 * largest) for k in analytic}
    assert max(errors.values()) <= 1e-7, errors
    assert not numeric["x"][~_padded(data["x"], lens, spec.batch_first).mask()].any()


# --- the kernel against each example run alone -------------------------------------------------


@pytest.mark.parametrize("proj", [0, PROJ], ids=["no_proj", "proj"])
def test_kernel_equals_each_example_run_alone(proj: int, rng: np.random.Generator) -> None:
    """``layer_forward`` / ``layer_backward`` with unsorted lengths against B separate runs of
    the full-batch kernel on ``x[:L_b, b]``; weight gradients are the sum over examples."""
    lens = np.array([3, 7, 1, 7, 5], np.int64)
    steps, batch, out = 7, len(lens), proj or HID
    scale = 1 / np.sqrt(HID)
    w = LayerWeights(
        rng.uniform(-scale, scale, (4 * HID, IN)),
        rng.uniform(-scale, scale, (4 * HID, out)),
        rng.uniform(-scale, scale, 4 * HID),
        rng.uniform(-scale, scale, (proj, HID)) if proj else None,
    )
    x, dy = rng.standard_normal((steps, batch, IN)), rng.standard_normal((steps, batch, out))
    h0, dh_n = rng.standard_normal((batch, out)), rng.standard_normal((batch, out))
    c0, dc_n = rng.standard_normal((batch, HID)), rng.standard_normal((batch, HID))
    y, (h_n, c_n), cache = layer_forward(x, h0, c0, w, lens)
    g = layer_backward(w, cache, dy, dh_n, dc_n)
    names = ("w_ih", "w_hh", "bias") + (("w_hr",) if proj else ())
    totals = dict.fromkeys(names, 0.0)
    for b, length in enumerate(lens):
        one = slice(b, b + 1)
        y1, (h1, c1), cache1 = layer_forward(x[:length, one], h0[one], c0[one], w)
        g1 = layer_backward(w, cache1, dy[:length, one], dh_n[one], dc_n[one])
        assert_close(y[:length, one], y1, f"y of example {b}")
        assert not y[length:, b].any()
        assert_close(h_n[one], h1, f"h_n of example {b}")
        assert_close(c_n[one], c1, f"c_n of example {b}")
        assert_close(g.dx[:length, one], g1.dx, f"dx of example {b}")
        assert not g.dx[length:, b].any()
        assert_close(g.dh0[one], g1.dh0, f"dh0 of example {b}")
        assert_close(g.dc0[one], g1.dc0, f"dc0 of example {b}")
        for name in names:
            totals[name] = totals[name] + getattr(g1, name)
    for name in names:
        assert_close(getattr(g, name), totals[name], name)


def test_kernel_refuses_lengths_that_do_not_fit() -> None:
    x, h, c = np.zeros((4, 2, IN)), np.zeros((2, HID)), np.zeros((2, HID))
    w = LayerWeights(np.zeros((4 * HID, IN)), np.zeros((4 * HID, HID)), None, None)
    with pytest.raises(sc.ShapeError, match=re.escape("lengths must have shape [2] (one per")):
        layer_forward(x, h, c, w, np.array([4, 4, 4]))
    with pytest.raises(sc.ShapeError, match=re.escape("must lie in 1..4 (T = 4), got 0..5")):
        layer_forward(x, h, c, w, np.array([0, 5]))


# --- the shared helpers ------------------------------------------------------------------------


def test_runs_sort_longest_first_and_split_time_where_examples_stop() -> None:
    runs = Runs.of(np.array([2, 5, 3, 5, 1]), 6, 5)
    assert runs.order is not None and runs.order.tolist() == [1, 3, 2, 0, 4]
    assert runs.lengths is not None and runs.lengths.tolist() == [5, 5, 3, 2, 1]
    assert runs.segments == ((0, 1, 5), (1, 2, 4), (2, 3, 3), (3, 5, 2))
    assert runs.padded
    a = np.arange(30.0).reshape(6, 5)
    np.testing.assert_array_equal(runs.unsort(runs.sort(a, 1), 1), a)
    assert Runs.of(np.array([3, 3, 2]), 3, 3).order is None  # already sorted: no copies
    assert not Runs.of(np.array([3, 3]), 3, 2).padded
    assert Runs.of(None, 4, 3).segments == ((0, 4, 3),)


def test_runs_zero_padding_and_last_steps() -> None:
    runs = Runs.of(np.array([1, 3, 2]), 4, 3)
    seq = np.arange(1.0, 13.0).reshape(4, 3, 1)
    sorted_seq = runs.sort(seq, 1)
    runs.zero_padding(sorted_seq)
    assert sorted_seq[..., 0].tolist() == [[2, 3, 1], [5, 6, 0], [8, 0, 0], [0, 0, 0]]
    # each example's last valid step, back in the caller's order
    assert runs.last(sorted_seq)[:, 0].tolist() == [1, 8, 6]


def test_reverse_within_lengths() -> None:
    lens = np.array([3, 1, 4])
    index = reverse_index(lens, 4)
    assert index.T.tolist() == [[2, 1, 0, 3], [0, 1, 2, 3], [3, 2, 1, 0]]
    seq = np.arange(12).reshape(4, 3)
    rev = reverse_within(seq, lens)
    assert rev.T.tolist() == [[6, 3, 0, 9], [1, 4, 7, 10], [11, 8, 5, 2]]
    np.testing.assert_array_equal(reverse_within(rev, lens), seq)  # its own inverse
    flipped = reverse_within(seq, None)
    assert np.shares_memory(flipped, seq) and flipped[0].tolist() == [9, 10, 11]


# --- the LSTM's Padded input -------------------------------------------------------------------


def test_without_return_state_the_output_is_padded(rng: np.random.Generator) -> None:
    spec = LSTM(IN, HID, batch_first=True)
    x = rng.standard_normal((3, STEPS, IN)).astype(np.float32)
    inp = Padded(x, [4, 6, 2], time_axis=1, batch_axis=0)
    y, saved = spec.forward(spec.params, inp, Context())
    assert isinstance(y, Padded) and y.data.shape == (3, STEPS, HID)
    assert (y.time_axis, y.batch_axis) == (1, 0) and y.lengths.tolist() == [4, 6, 2]
    dx, grads = spec.backward(spec.params, saved, np.ones_like(y.data))
    assert isinstance(dx, np.ndarray) and dx.shape == x.shape and not dx[2, 2:].any()
    assert set(grads) == set(spec.params)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_unbatched_padded_matches_torch_packed(
    bidirectional: bool, rng: np.random.Generator
) -> None:
    """An unbatched ``[T, F]`` sequence with one length equals torch's packed batch of one."""
    spec = _spec(np.float64, num_layers=2, bidirectional=bidirectional, proj_size=PROJ)
    ref = torch.nn.LSTM(IN, HID, 2, bidirectional=bidirectional, proj_size=PROJ)
    load_torch(ref.double(), {f"lstm.{k}": v for k, v in spec.params.items()}, "lstm.")
    x = rng.standard_normal((STEPS, IN))
    inp = Padded(x, [4], batch_axis=None)
    (y, (h_n, c_n)), saved = spec.forward(spec.params, inp, Context(train=True))
    dy = rng.standard_normal(y.data.shape)
    dx, _ = spec.backward(spec.params, saved, (dy, (None, None)))
    xt = torch_from(x[:, None], requires_grad=True)
    packed = pack_padded_sequence(xt, torch.tensor([4]))
    out, (h_nt, c_nt) = ref(packed)
    yt, _ = pad_packed_sequence(out, total_length=STEPS)
    (yt[:, 0] * torch_from(dy)).sum().backward()
    assert y.batch_axis is None and y.data.shape == (STEPS, spec.directions * PROJ)
    assert_close(y.data, yt[:, 0], "output")
    assert_close(h_n, h_nt[:, 0], "h_n")
    assert_close(c_n, c_nt[:, 0], "c_n")
    assert_close(dx, xt.grad[:, 0], "dx")


def test_padded_axes_must_match_the_layout() -> None:
    x = np.zeros((STEPS, 2, IN), np.float32)
    with pytest.raises(
        sc.ShapeError,
        match=re.escape(
            "LSTM (batch_first=True) reads [B, T, F] data, but the Padded input says "
            "time_axis=0, batch_axis=1; build it as Padded(x, lengths, time_axis=1, batch_axis=0)"
        ),
    ):
        spec = LSTM(IN, HID, batch_first=True)
        spec.forward(spec.params, Padded(x, [1, 2]), Context())
    spec = LSTM(IN, HID)
    with pytest.raises(sc.ShapeError, match=re.escape("time_axis=0, batch_axis=None)")):
        spec.forward(spec.params, Padded(x[:, 0], [2]), Context())


def test_lengths_outside_one_to_t_are_refused() -> None:
    spec = LSTM(IN, HID)
    x = np.zeros((STEPS, 2, IN), np.float32)
    state = (np.zeros((1, 2, HID), np.float32), np.zeros((1, 2, HID), np.float32))
    with pytest.raises(sc.ShapeError, match=re.escape("LSTM input: lengths[1] = 7 is outside")):
        spec.forward(spec.params, (Padded(x, [2, 7]), state), Context())
    with pytest.raises(sc.ShapeError, match=re.escape("LSTM input: lengths has 3 entries")):
        spec.forward(spec.params, Padded(x, [2, 1, 1]), Context())


def test_lstm_takes_lengths_and_its_cell_does_not() -> None:
    """The engine hands ``Padded`` values to layers that say so (the cell has no time axis)."""
    assert LSTM.takes_lengths and LSTM(IN, HID).takes_lengths
    assert not LSTMCell.takes_lengths


def test_empty_batch_with_lengths_gives_empty_results(rng: np.random.Generator) -> None:
    spec = _spec(np.float64, num_layers=2, bidirectional=True, proj_size=PROJ)
    lens = np.zeros(0, np.int64)
    data = _data(rng, np.float64, spec, lens)
    (y, h_n, c_n), ((dx, (dh0, dc0)), grads) = _ours(spec, data, lens, state=True)
    assert y.data.shape == (STEPS, 0, 2 * PROJ) and h_n.shape == (4, 0, PROJ)
    assert c_n.shape == (4, 0, HID)
    assert (dx.shape, dh0.shape, dc0.shape) == (data["x"].shape, (4, 0, PROJ), (4, 0, HID))
    assert all(not g.any() and g.shape == spec.params[k].shape for k, g in grads.items())


def test_chain_called_with_lengths_runs_packed_and_passes_gradcheck(
    rng: np.random.Generator,
) -> None:
    """Through the engine: ``model((x, lengths))`` gives the spec's packed results, and
    ``sc.gradcheck`` with the lengths held fixed stays within 1e-7."""
    spec = LSTM(IN, HID, num_layers=2, bidirectional=True, batch_first=True, proj_size=PROJ)
    model = (spec >> sc.modules.Linear(2 * PROJ, 2)).to(np.float64)
    x, lens = rng.standard_normal((4, STEPS, IN)), np.array([2, 6, 1, 4])
    y = model((x, lens))
    assert isinstance(y, Padded) and (y.time_axis, y.batch_axis) == (1, 0)
    direct, _ = spec.forward(spec.params, _padded(x, lens, True), Context())
    params = model.named_parameters()
    expected = direct.data @ params["linear.weight"].T + params["linear.bias"]
    assert_close(y.data, expected, "chain output")
    report = sc.gradcheck(model, (x, lens))
    assert report.passed(1e-7), str(report)
