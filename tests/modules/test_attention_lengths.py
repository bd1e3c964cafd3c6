"""``AttentionLSTM`` on padded batches: source and decoder lengths, alone or together. Each
example of a batch gets what it gets alone (outputs and every gradient), torch with a packed
encoder and a masked softmax agrees, finite differences agree, padding (even NaN) never matters,
and a ``Padded`` in the wrong layout is refused with the fix."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import specchain as sc
from specchain.gradcheck import relative_error
from specchain.modules import Linear
from specchain.modules.attention import AttentionLSTM, masked_softmax
from specchain.padded import Padded
from specchain.spec import Context
from tests.helpers import assert_close, load_torch, one_torch_thread, torch_from
from tests.models.twins import AttentionCore

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

IN, HID, OUT = 3, 4, 2
SOURCE_LENGTHS = np.array([5, 2, 1, 4], np.int64)  # S = 5, unsorted, one of length 1
TARGET_LENGTHS = np.array([2, 4, 3, 1], np.int64)  # T = 4
WHICH = ["both", "source", "decoder_inputs"]  # the inputs that carry lengths


def _model(dtype: type = np.float64) -> sc.SpecChain:
    """The zoo's attention encoder/decoder (one ``AttentionLSTM`` node named ``attention``)."""
    return sc.models.attention_seq2seq(IN, HID, OUT).to(dtype)


def _lengths(which: str) -> tuple[np.ndarray, np.ndarray]:
    """Source and target lengths; an input without lengths uses its full length."""
    source = SOURCE_LENGTHS if which != "decoder_inputs" else np.full(4, 5, np.int64)
    target = TARGET_LENGTHS if which != "source" else np.full(4, 4, np.int64)
    return source, target


def _batch(rng: np.random.Generator, which: str, dtype: type = np.float64) -> dict[str, Any]:
    """A batch whose padding holds NaN, its lengths, the chain input for ``which`` and a
    cotangent ``dy`` that is nonzero (and huge) on padding too."""
    source_lengths, target_lengths = _lengths(which)
    source = rng.standard_normal((5, 4, IN)).astype(dtype)
    target = rng.standard_normal((4, 4, IN)).astype(dtype)
    dy = rng.standard_normal((4, 4, OUT)).astype(dtype)
    source[~Padded(source, source_lengths).mask()] = np.nan
    target[~Padded(target, target_lengths).mask()] = np.nan
    dy[~Padded(dy, target_lengths).mask()] = 1e6
    x: dict[str, Any] = {
        "both": ((source, source_lengths), (target, target_lengths)),
        "source": ((source, source_lengths), target),
        "decoder_inputs": (source, (target, target_lengths)),
    }
    return {
        "source": source,
        "target": target,
        "dy": dy,
        "lengths": (source_lengths, target_lengths),
        "x": x[which],
    }


# --- each example alone ----------------------------------------------------------------------


@pytest.mark.parametrize("which", WHICH)
def test_each_example_alone_equals_its_row(which: str, rng: np.random.Generator) -> None:
    """Through the chain, float64: the output rows, ``d_source`` and ``d_decoder_inputs`` of
    example b equal those of example b run alone and unpadded (zero on padding), and the weight
    gradients of the batch are the sum of the examples' own. The NaN padding raises no
    floating-point warning on the way."""
    model, data = _model(), _batch(rng, which)
    (source_lengths, target_lengths), dy = data["lengths"], data["dy"]
    with np.errstate(all="raise"):
        y, tape = model.forward(data["x"], train=True, rng=0)
        (d_source, d_target), grads = model.backward(tape, dy)
    if which == "source":
        assert isinstance(y, np.ndarray), "no decoder lengths: a plain output"
    else:
        assert isinstance(y, Padded) and (y.time_axis, y.batch_axis) == (0, 1)
        np.testing.assert_array_equal(y.lengths, target_lengths)
        y = y.data
    summed = {name: np.zeros_like(g) for name, g in grads.items()}
    for b, (s, t) in enumerate(zip(source_lengths, target_lengths, strict=True)):
        alone = (data["source"][:s, b : b + 1], data["target"][:t, b : b + 1])
        y_b, tape_b = model.forward(alone, train=True, rng=0)
        (ds_b, dt_b), grads_b = model.backward(tape_b, dy[:t, b : b + 1])
        assert_close(y[:t, b], y_b[:, 0], f"y[:, {b}]")
        assert_close(d_source[:s, b], ds_b[:, 0], f"d_source[:, {b}]")
        assert_close(d_target[:t, b], dt_b[:, 0], f"d_decoder_inputs[:, {b}]")
        for name, g in grads_b.items():
            summed[name] += g
        assert not y[t:, b].any() and not d_source[s:, b].any() and not d_target[t:, b].any()
    for name, g in grads.items():
        assert_close(g, summed[name], name)


def test_attention_weights_are_exactly_zero_on_source_padding(rng: np.random.Generator) -> None:
    """Every decoder step's softmax covers each example's valid source positions only: the
    weights past each length are exactly zero and the others sum to one."""
    spec, data = _model().spec("attention"), _batch(rng, "both")
    x = (Padded(data["source"], SOURCE_LENGTHS), Padded(data["target"], TARGET_LENGTHS))
    _, saved = spec.forward(spec.params, x, Context())
    valid = Padded(data["source"], SOURCE_LENGTHS).mask()[..., 0]
    for step in saved.steps:
        assert (step.alpha[~valid] == 0).all()
        assert (step.alpha[valid] > 0).all()
        np.testing.assert_allclose(step.alpha.sum(axis=0), 1.0, rtol=1e-12)


def test_masked_softmax_is_stable_and_exact() -> None:
    """Scores up to 1e4 with masked positions holding inf or NaN: no floating-point warning,
    exact zeros where masked, the plain softmax over the valid ones."""
    scores = np.array([[1e4, 0.0], [-1e4, np.inf], [3.0, np.nan]])
    valid = np.array([[True, True], [True, False], [False, False]])
    with np.errstate(all="raise"):
        alpha = masked_softmax(scores, valid)
    np.testing.assert_array_equal(alpha, [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(masked_softmax(scores[:1], None), [[1.0, 1.0]])


# --- torch: a packed encoder and a masked softmax ----------------------------------------------


class PackedAttention(AttentionCore):
    """``AttentionCore`` over a padded batch, as a PyTorch user writes it: the encoder runs on a
    packed sequence, padded source positions are filled with ``-inf`` before the softmax, and
    the output is zeroed past each target length."""

    def forward_padded(
        self, source: torch.Tensor, source_lengths: torch.Tensor, decoder_inputs: torch.Tensor
    ) -> torch.Tensor:
        packed = pack_padded_sequence(source, source_lengths, enforce_sorted=False)
        enc_packed, (h, c) = self.encoder(packed)
        enc, _ = torch.nn.utils.rnn.pad_packed_sequence(enc_packed, total_length=len(source))
        h, c = h[0], c[0]
        padding = torch.arange(len(source))[:, None] >= source_lengths[None, :]  # [S, B]
        hs = []
        for x_t in decoder_inputs:
            pair = torch.cat([h.unsqueeze(0).expand_as(enc), enc], dim=2)
            scores = self.attention_weights(pair).squeeze(2).masked_fill(padding, -torch.inf)
            alpha = torch.softmax(scores, dim=0)
            context = (alpha.unsqueeze(2) * enc).sum(dim=0)
            h, c = self.decoder(torch.cat([x_t, context], dim=1), (h, c))
            hs.append(h)
        return self.output(torch.stack(hs))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_matches_torch_packed(dtype: type, rng: np.random.Generator) -> None:
    """Output and every gradient (weights, both inputs) against torch autograd at the numerics
    contract's tolerance for the dtype (padding zero-filled for torch, NaN for us)."""
    model, data = _model(dtype), _batch(rng, "both", dtype)
    y, tape = model.forward(data["x"], train=True, rng=0)
    (d_source, d_target), grads = model.backward(tape, data["dy"])
    twin = PackedAttention(IN, HID, OUT).to(torch.float64 if dtype == np.float64 else torch.float32)
    load_torch(twin, model.named_parameters(), "attention.")
    target_mask = Padded(data["dy"], TARGET_LENGTHS).mask()
    source = torch_from(np.nan_to_num(data["source"]), requires_grad=True)
    target = torch_from(np.nan_to_num(data["target"]), requires_grad=True)
    out = twin.forward_padded(source, torch.from_numpy(SOURCE_LENGTHS), target)
    out = out * torch_from(target_mask)
    out.backward(torch_from(np.where(target_mask, data["dy"], 0)))
    assert_close(y.data, out, "y")
    assert_close(d_source, source.grad, "d_source")
    assert_close(d_target, target.grad, "d_decoder_inputs")
    for name, param in twin.named_parameters():
        assert_close(grads[f"attention.{name}"], param.grad, name)


# --- finite differences ----------------------------------------------------------------------


def test_finite_differences_with_lengths(rng: np.random.Generator) -> None:
    """Central differences in float64 of ``sum(y * dy)`` over every weight and both inputs
    (padding included: its numeric gradient is zero) against backward, relative error <= 1e-7
    (the numerics contract); ``dy`` is nonzero on padding, where it must be ignored."""
    spec, data = _model().spec("attention"), _batch(rng, "both")
    source, target, dy = np.nan_to_num(data["source"]), np.nan_to_num(data["target"]), data["dy"]

    def output() -> np.ndarray:
        x = (Padded(source, SOURCE_LENGTHS), Padded(target, TARGET_LENGTHS))
        y, _ = spec.forward(spec.params, x, Context())
        return np.array(y.data)

    x = (Padded(source, SOURCE_LENGTHS), Padded(target, TARGET_LENGTHS))
    _, saved = spec.forward(spec.params, x, Context())
    (d_source, d_target), grads = spec.backward(spec.params, saved, dy)
    analytic = {**grads, "source": d_source, "decoder_inputs": d_target}
    arrays = {**spec.params, "source": source, "decoder_inputs": target}
    numeric = {name: _central_differences(output, array, dy) for name, array in arrays.items()}
    largest = max(float(np.abs(a).max()) for a in analytic.values())
    errors = {k: relative_error(analytic[k], numeric[k], 1e-6 * largest) for k in analytic}
    assert max(errors.values()) <= 1e-7, errors
    assert not numeric["source"][~Padded(source, SOURCE_LENGTHS).mask()].any()
    assert not numeric["decoder_inputs"][~Padded(target, TARGET_LENGTHS).mask()].any()


def _central_differences(
    output: Any, array: np.ndarray, dy: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """``d sum(output() * dy) / d array`` entry by entry (``array`` perturbed in place)."""
    grad = np.zeros_like(array)
    flat, out = array.reshape(-1), grad.reshape(-1)
    assert np.shares_memory(flat, array)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        plus = output()
        flat[i] = orig - eps
        minus = output()
        flat[i] = orig
        out[i] = float(np.sum((plus - minus) * dy)) / (2 * eps)
    return grad


# --- chains and refusals ---------------------------------------------------------------------


def test_lengths_ride_along_to_a_per_step_head(rng: np.random.Generator) -> None:
    """``AttentionLSTM >> Linear`` with decoder lengths returns ``Padded(y, target lengths)``
    whose valid steps are the head applied to the attention output."""
    model = (AttentionLSTM(IN, HID, OUT, name="attention") >> Linear(OUT, 2)).to(np.float64)
    data = _batch(rng, "both")
    y = model(data["x"])
    assert isinstance(y, Padded)
    np.testing.assert_array_equal(y.lengths, TARGET_LENGTHS)
    attention = model.spec("attention")
    x = (Padded(data["source"], SOURCE_LENGTHS), Padded(data["target"], TARGET_LENGTHS))
    hidden, _ = attention.forward(attention.params, x, Context())
    head = model.spec("linear").params
    valid = y.mask()
    assert_close(y.data[valid], (hidden.data @ head["weight"].T + head["bias"])[valid], "head")


def test_refuses_a_padded_input_in_another_layout(rng: np.random.Generator) -> None:
    spec = _model().spec("attention")
    source = rng.standard_normal((4, 5, IN))  # [B, S, I]
    target = rng.standard_normal((4, 4, IN))
    batch_first = Padded(source, SOURCE_LENGTHS, time_axis=1, batch_axis=0)
    with pytest.raises(sc.ShapeError, match=r"time-major source .* time_axis=1, batch_axis=0; "):
        spec.forward(spec.params, (batch_first, target), Context())


def test_refuses_lengths_that_do_not_fit(rng: np.random.Generator) -> None:
    """Through a chain: one length per example, each in ``1..len``, named with the fix."""
    model, data = _model(), _batch(rng, "both")
    source, target = np.nan_to_num(data["source"]), np.nan_to_num(data["target"])
    with pytest.raises(sc.ShapeError, match=r"lengths has 3 entries for a batch of 4"):
        model(((source, np.array([1, 2, 3])), target))
    with pytest.raises(sc.ShapeError, match=r"lengths\[1\] = 5 is outside 1..4"):
        model((source, (target, np.array([1, 5, 2, 2]))))
