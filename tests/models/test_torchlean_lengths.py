"""The TorchLean functions on padded batches (``lengths=``): per example, a padded batch gives
exactly what that example alone, cut to its length, gives (outputs, final states, input, state
and parameter gradients), zeros past each length, the mse over valid steps only, and bad
lengths refused with the function named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pytest

from specchain.models import torchlean as tl
from specchain.types import ShapeError
from specchain.validate import SpecTypeError
from tests.helpers import assert_close64

IN, HID, OUT, VOCAB = 3, 4, 2, 5
T, B = 5, 3
LENGTHS = np.array([5, 2, 3])
F64 = np.float64


@attrs.frozen
class Run:
    """What one call gives: ``time`` arrays ``[T, B, ...]`` (outputs, d inputs), ``batch`` arrays
    ``[B, ...]`` (final states, logits, d states) and ``summed`` parameter gradients."""

    time: list[np.ndarray]
    batch: list[np.ndarray]
    summed: dict[str, np.ndarray]


def _flat(record: Any, where: str = "") -> dict[str, np.ndarray]:
    """Every array of a gradient record (or tuple of them), by field path."""
    if isinstance(record, np.ndarray):
        return {where: record}
    if isinstance(record, tuple):
        return {
            k: v for i, item in enumerate(record) for k, v in _flat(item, f"{where}[{i}]").items()
        }
    return {
        k: v
        for a in attrs.fields(type(record))
        for k, v in _flat(getattr(record, a.name), f"{where}.{a.name}").items()
    }


def _pairs(states: list[tl.State]) -> list[np.ndarray]:
    return [array for pair in states for array in pair]


Case = Callable[[Any, np.ndarray, list[tl.State], np.ndarray, Any], Run]


def _simple(m: Any, x: np.ndarray, st: list[tl.State], dy: np.ndarray, lengths: Any) -> Run:
    y, final = tl.simple_lstm_sequence_forward(m, x, st[0], lengths=lengths)
    grads, dx, d_state = tl.simple_lstm_backward(m, x, st[0], dy, lengths=lengths)
    return Run([y, dx], _pairs([final, d_state]), _flat(grads))


def _classifier(m: Any, x: np.ndarray, st: list[tl.State], dy: np.ndarray, lengths: Any) -> Run:
    logits = tl.lstm_classifier_forward(m, x, st[0], lengths=lengths)
    d_head, d_lstm, dx = tl.lstm_classifier_backward(m, x, st[0], dy, lengths=lengths)
    return Run([dx], [logits], _flat((d_head, d_lstm)))


def _generator(m: Any, x: np.ndarray, st: list[tl.State], dy: np.ndarray, lengths: Any) -> Run:
    logits, final = tl.lstm_generator_forward(m, x, st[0], lengths=lengths)
    return Run([logits], _pairs([final]), {})


def _bilstm(m: Any, x: np.ndarray, st: list[tl.State], dy: np.ndarray, lengths: Any) -> Run:
    y = tl.bilstm_forward(m, x, st[0], st[1], lengths=lengths)
    grads, dx, d_states = tl.bilstm_backward(m, x, st[0], st[1], dy, lengths=lengths)
    return Run([y, dx], _pairs(list(d_states)), _flat(grads))


def _multilayer(m: Any, x: np.ndarray, st: list[tl.State], dy: np.ndarray, lengths: Any) -> Run:
    y, finals = tl.multilayer_lstm_forward(m, x, st, lengths=lengths)
    grads, dx, d_states = tl.multilayer_lstm_backward(m, x, st, dy, lengths=lengths)
    return Run([y, dx], _pairs(finals + d_states), _flat(grads))


def _lm(m: Any, x: np.ndarray, st: list[tl.State], dy: np.ndarray, lengths: Any) -> Run:
    logits, finals = tl.lstm_lm_forward(m, x, st, lengths=lengths)
    grads, dx, d_states = tl.lstm_lm_backward(m, x, st, dy, lengths=lengths)
    time = [logits] if dx is None else [logits, dx]
    return Run(time, _pairs(finals + d_states), _flat(grads))


# (case, record, features per step (0: int tokens [T, B]), how many states, dy's shape after
# [T, B] (None: logits' [B, OUT]))
CASES = [
    pytest.param(
        _simple, tl.SimpleLSTMModel.init(IN, HID, OUT, 1, F64), IN, 1, (OUT,), id="simple"
    ),
    pytest.param(_classifier, tl.LSTMClassifier.init(IN, HID, OUT, 2, F64), IN, 1, None, id="clf"),
    pytest.param(_generator, tl.LSTMGenerator.init(VOCAB, HID, 3, F64), 0, 1, None, id="gen-tok"),
    pytest.param(_generator, tl.LSTMGenerator.init(VOCAB, HID, 3, F64), VOCAB, 1, None, id="gen"),
    pytest.param(_bilstm, tl.BiLSTMModel.init(IN, HID, OUT, 4, F64), IN, 2, (OUT,), id="bilstm"),
    pytest.param(
        _multilayer, tl.MultiLayerLSTMModel.init(IN, HID, OUT, 2, 5, F64), IN, 2, (OUT,), id="stack"
    ),
    pytest.param(
        _lm, tl.LSTMLanguageModel.init(VOCAB, HID, 2, 0.25, 6, F64), VOCAB, 2, (VOCAB,), id="lm"
    ),
    pytest.param(
        _lm, tl.LSTMLanguageModel.init(VOCAB, HID, 2, 0.25, 6, F64), 0, 2, (VOCAB,), id="lm-tok"
    ),
]


def _inputs(features: int, states: int, dy_tail: tuple[int, ...] | None) -> tuple[Any, ...]:
    """Random inputs (int tokens for ``features == 0``), states and a cotangent (``[B, OUT]``
    logits' for ``dy_tail`` None)."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, VOCAB, (T, B)) if features == 0 else rng.standard_normal((T, B, features))
    st = [(rng.standard_normal((B, HID)), rng.standard_normal((B, HID))) for _ in range(states)]
    dy = rng.standard_normal((B, OUT) if dy_tail is None else (T, B, *dy_tail))
    return x, st, dy


@pytest.mark.parametrize(("case", "model", "features", "states", "dy_tail"), CASES)
def test_each_example_of_a_padded_batch_is_that_example_alone(
    case: Case, model: Any, features: int, states: int, dy_tail: tuple[int, ...] | None
) -> None:
    x, st, dy = _inputs(features, states, dy_tail)
    padded = case(model, x, st, dy, LENGTHS)
    summed: dict[str, np.ndarray] = {}
    for b, n in enumerate(LENGTHS):
        st_b = [(h[b : b + 1], c[b : b + 1]) for h, c in st]
        dy_b = dy[b : b + 1] if dy_tail is None else dy[:n, b : b + 1]
        alone = case(model, x[:n, b : b + 1], st_b, dy_b, None)
        for k, (ours, theirs) in enumerate(zip(padded.time, alone.time, strict=True)):
            assert_close64(ours[:n, b], theirs[:, 0], f"time array {k}, example {b}")
            assert not ours[n:, b].any(), f"time array {k}, example {b}: nonzero past length {n}"
        for k, (ours, theirs) in enumerate(zip(padded.batch, alone.batch, strict=True)):
            assert_close64(ours[b], theirs[0], f"batch array {k}, example {b}")
        for key, grad in alone.summed.items():
            summed[key] = summed[key] + grad if key in summed else grad
    assert padded.summed.keys() == summed.keys()
    for key, grad in summed.items():
        assert_close64(padded.summed[key], grad, key)


@pytest.mark.parametrize(("case", "model", "features", "states", "dy_tail"), CASES)
def test_full_lengths_change_nothing(
    case: Case, model: Any, features: int, states: int, dy_tail: tuple[int, ...] | None
) -> None:
    x, st, dy = _inputs(features, states, dy_tail)
    full, plain = case(model, x, st, dy, np.full(B, T)), case(model, x, st, dy, None)
    for ours, theirs in zip(full.time + full.batch, plain.time + plain.batch, strict=True):
        assert_close64(ours, theirs, "full lengths vs none")
    for key, grad in plain.summed.items():
        assert_close64(full.summed[key], grad, key)


def test_an_unbatched_sequence_takes_one_length() -> None:
    model = tl.SimpleLSTMModel.init(IN, HID, OUT, 1, F64)
    x = np.random.default_rng(8).standard_normal((T, IN))
    y, (h, c) = tl.simple_lstm_sequence_forward(model, x, lengths=np.array([2]))
    y_alone, (h_alone, c_alone) = tl.simple_lstm_sequence_forward(model, x[:2])
    assert y.shape == (T, OUT) and not y[2:].any()
    assert_close64(y[:2], y_alone)
    assert_close64(h, h_alone)
    assert_close64(c, c_alone)


def test_grad_outputs_past_each_length_count_for_nothing() -> None:
    model = tl.SimpleLSTMModel.init(IN, HID, OUT, 1, F64)
    x, (st,), dy = _inputs(IN, 1, (OUT,))
    grads, dx, _ = tl.simple_lstm_backward(model, x, st, dy, lengths=LENGTHS)
    noisy = dy.copy()
    noisy[3:, 1] = np.nan  # example 1 has length 2
    again, dx_again, _ = tl.simple_lstm_backward(model, x, st, noisy, lengths=LENGTHS)
    assert_close64(dx_again, dx)
    for key, grad in _flat(grads).items():
        assert_close64(_flat(again)[key], grad, key)


def test_mse_averages_over_valid_steps_only() -> None:
    """loss = sum over valid elements / their number, so it is the examples' own losses
    weighted by their valid elements; targets past each length (here NaN) count for nothing."""
    model = tl.SimpleLSTMModel.init(IN, HID, OUT, 1, F64)
    x, (st,), targets = _inputs(IN, 1, (OUT,))
    targets[4:, 1] = np.nan
    loss = tl.simple_lstm_mse_loss(model, x, targets, st, lengths=LENGTHS)
    loss_g, grads = tl.simple_lstm_mse_grad(model, x, targets, st, lengths=LENGTHS)
    weights = LENGTHS / LENGTHS.sum()
    expected, summed = 0.0, {}
    for b, n in enumerate(LENGTHS):
        args = (
            model,
            x[:n, b : b + 1],
            targets[:n, b : b + 1],
            (st[0][b : b + 1], st[1][b : b + 1]),
        )
        expected += weights[b] * tl.simple_lstm_mse_loss(*args)
        for key, grad in _flat(tl.simple_lstm_mse_grad(*args)[1]).items():
            summed[key] = summed.get(key, 0.0) + weights[b] * grad
    assert np.isclose(loss, expected, rtol=1e-12) and loss_g == loss
    for key, grad in summed.items():
        assert_close64(_flat(grads)[key], grad, key)


BAD = [
    pytest.param([5, 0, 3], ShapeError, r"lengths\[1\] = 0 is outside 1..5", id="zero"),
    pytest.param([5, 6, 3], ShapeError, r"lengths\[1\] = 6 is outside 1..5", id="past-T"),
    pytest.param([5, 2], ShapeError, "lengths has 2 entries for a batch of 3", id="count"),
    pytest.param([[5, 2, 3]], ShapeError, r"one integer per example \(shape \[B\]\)", id="2d"),
    pytest.param([5.0, 2.0, 3.0], SpecTypeError, "lengths must be integers", id="float"),
]


@pytest.mark.parametrize(("lengths", "error", "message"), BAD)
def test_bad_lengths_are_refused_naming_the_function(
    lengths: Any, error: type[Exception], message: str
) -> None:
    model = tl.MultiLayerLSTMModel.init(IN, HID, OUT, 2, 1, F64)
    x, st, dy = _inputs(IN, 2, (OUT,))
    with pytest.raises(error, match=f"^multilayer_lstm_forward inputs: .*{message}"):
        tl.multilayer_lstm_forward(model, x, st, lengths=np.asarray(lengths))
    with pytest.raises(error, match=f"^multilayer_lstm_backward inputs: .*{message}"):
        tl.multilayer_lstm_backward(model, x, st, dy, lengths=np.asarray(lengths))


def test_tokens_and_unbatched_lengths_are_checked() -> None:
    generator = tl.LSTMGenerator.init(VOCAB, HID, 3, F64)
    tokens = np.zeros((T, B), dtype=np.int64)
    with pytest.raises(ShapeError, match=r"^lstm_generator_forward inputs: lengths\[2\] = 9"):
        tl.lstm_generator_forward(generator, tokens, lengths=np.array([1, 2, 9]))
    model = tl.SimpleLSTMModel.init(IN, HID, OUT, 1, F64)
    with pytest.raises(ShapeError, match=r"^simple_lstm_mse_grad inputs: an unbatched sequence"):
        x = np.zeros((T, IN))
        tl.simple_lstm_mse_grad(model, x, np.zeros((T, OUT)), lengths=np.array([2, 3]))


def _attention(
    model: Any, src: np.ndarray, dec: np.ndarray, dy: np.ndarray, lengths: tuple[Any, Any]
) -> Run:
    keywords = {"source_lengths": lengths[0], "decoder_lengths": lengths[1]}
    y = tl.attention_lstm_forward(model, src, dec, **keywords)
    grads, d_src, d_dec = tl.attention_lstm_backward(model, src, dec, dy, **keywords)
    return Run([y, d_src, d_dec], [], _flat(grads))


def test_attention_examples_of_padded_batches_are_those_examples_alone() -> None:
    """Source and decoder lengths differ; outputs and d decoder_inputs follow the decoder's,
    d source the source's."""
    model = tl.AttentionLSTMModel.init(IN, HID, OUT, 9, F64)
    rng = np.random.default_rng(10)
    src, dec = rng.standard_normal((T - 1, B, IN)), rng.standard_normal((T, B, IN))
    dy = rng.standard_normal((T, B, OUT))
    src_lengths, dec_lengths = np.array([4, 1, 3]), LENGTHS
    padded = _attention(model, src, dec, dy, (src_lengths, dec_lengths))
    summed: dict[str, np.ndarray] = {}
    for b, (ns, nt) in enumerate(zip(src_lengths, dec_lengths, strict=True)):
        one = slice(b, b + 1)
        alone = _attention(model, src[:ns, one], dec[:nt, one], dy[:nt, one], (None, None))
        for k, (ours, theirs, n) in enumerate(zip(padded.time, alone.time, (nt, ns, nt))):
            assert_close64(ours[:n, b], theirs[:, 0], f"time array {k}, example {b}")
            assert not ours[n:, b].any(), f"time array {k}, example {b}: nonzero past length {n}"
        for key, grad in alone.summed.items():
            summed[key] = summed[key] + grad if key in summed else grad
    for key, grad in summed.items():
        assert_close64(padded.summed[key], grad, key)


def test_attention_lengths_unbatched_and_refused() -> None:
    model = tl.AttentionLSTMModel.init(IN, HID, OUT, 9, F64)
    rng = np.random.default_rng(11)
    src, dec = rng.standard_normal((T, IN)), rng.standard_normal((T, IN))
    y = tl.attention_lstm_forward(model, src, dec, source_lengths=[2], decoder_lengths=[3])
    alone = tl.attention_lstm_forward(model, src[:2], dec[:3])
    assert y.shape == (T, OUT) and not y[3:].any()
    assert_close64(y[:3], alone)
    with pytest.raises(ShapeError, match=r"^attention_lstm_backward source: lengths\[0\] = 6"):
        tl.attention_lstm_backward(model, src, dec, np.zeros((T, OUT)), source_lengths=[6])
    with pytest.raises(ShapeError, match=r"^attention_lstm_forward decoder_inputs: an unbatched"):
        tl.attention_lstm_forward(model, src, dec, decoder_lengths=[1, 2])
