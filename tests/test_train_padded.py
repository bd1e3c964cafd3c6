"""Training on padded batches: ``fit`` and ``evaluate`` take inputs as ``(x, lengths)`` or a
``Padded``; every mini-batch carries its own examples' lengths, the loss skips the padding of the
model's ``Padded`` output, and what the padding holds (inputs or targets) changes nothing.

The models are per-step chains (``Linear >> Tanh >> Linear``) and a many-to-one one through
``LastStep``: the engine turns ``(x, lengths)`` into a ``Padded`` and carries the lengths along."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import specchain as sc
from specchain.modules import LastStep, Linear, Tanh
from specchain.optim import Adam
from specchain.padded import Padded
from specchain.train import accuracy, batch_axes, evaluate, fit

T, N, F, C = 8, 64, 3, 3


def tagging_task(
    seed: int = 0, pad_input: float = 50.0, pad_label: int = 999
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x [T, N, F]``, ``lengths [N]`` in 2..T, per-step labels ``[T, N]`` (the argmax of each
    step's features) and the mask of real steps; padding holds ``pad_input`` and ``pad_label``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N, F)).astype(np.float32)
    lengths = rng.integers(2, T + 1, N)
    keep = np.arange(T)[:, None] < lengths[None, :]
    labels = np.where(keep, np.argmax(x, axis=-1), pad_label)
    return np.where(keep[..., None], x, np.float32(pad_input)), lengths, labels, keep


def tagger() -> sc.SpecChain:
    sc.seed(3)
    return Linear(F, 16) >> Tanh() >> Linear(16, C)


def train(data: object, epochs: int = 12) -> tuple[sc.SpecChain, list[float]]:
    """A fresh ``tagger`` trained on ``data`` (a pair or a dataset): its step losses."""
    model = tagger()
    history = fit(
        model,
        data,  # type: ignore[arg-type]
        sc.losses.cross_entropy,
        Adam(model, lr=0.03),
        epochs=epochs,
        batch_size=16,
        rng=5,
        progress=False,
    )
    return model, history.step_loss


def test_a_tagger_learns_on_padded_batches() -> None:
    x, lengths, labels, keep = tagging_task()
    before = evaluate(tagger(), (x, lengths), labels, sc.losses.cross_entropy)
    model, steps = train(((x, lengths), labels))
    after = evaluate(model, (x, lengths), labels, sc.losses.cross_entropy)
    assert len(steps) == 12 * 4  # 64 examples in batches of 16
    assert after < 0.3 * before
    logits = model((x, lengths))
    assert isinstance(logits, Padded)
    assert accuracy(logits.data, np.where(keep, labels, -1), ignore_index=-1) > 0.9


def test_the_padding_changes_nothing() -> None:
    """Other padding values and other (garbage) padded labels give the very same run: each
    shuffled mini-batch took its own examples' lengths."""
    x, lengths, labels, _ = tagging_task()
    x2, _, labels2, _ = tagging_task(pad_input=-7e3, pad_label=-5)
    model, steps = train(((x, lengths), labels), epochs=2)
    model2, steps2 = train(((x2, lengths), labels2), epochs=2)
    assert steps == steps2
    for name, p in model.named_parameters().items():
        np.testing.assert_array_equal(p, model2.named_parameters()[name], err_msg=name)


def test_padded_inputs_and_datasets_train_as_pairs_do() -> None:
    x, lengths, labels, _ = tagging_task()
    _, steps = train(((x, lengths), labels), epochs=1)
    _, from_padded = train((Padded(x, lengths), labels), epochs=1)
    _, from_list = train(((x, lengths.tolist()), labels), epochs=1)
    _, from_dataset = train(SimpleNamespace(inputs=Padded(x, lengths), targets=labels), epochs=1)
    assert from_padded == steps and from_list == steps and from_dataset == steps


def test_evaluate_takes_the_mean_over_real_steps_only() -> None:
    x, lengths, labels, keep = tagging_task()
    model = tagger()
    value = evaluate(model, (x, lengths), labels, sc.losses.cross_entropy)
    logits = model(x)  # the same forward, without the lengths
    assert value == pytest.approx(float(sc.losses.cross_entropy(logits, labels, mask=keep)))


def test_many_to_one_classifier_trains_on_each_examples_last_real_step() -> None:
    """``LastStep`` reads each example's last real step; labels ``[N]`` sit on axis 0."""
    x, lengths, _, _ = tagging_task()
    last = x[lengths - 1, np.arange(N)]  # [N, F]
    labels = np.argmax(last, axis=-1)
    sc.seed(1)
    model = Linear(F, 16) >> Tanh() >> LastStep() >> Linear(16, C)
    assert batch_axes(model, (x, lengths), labels) == (1, 0)
    before = evaluate(model, (x, lengths), labels, sc.losses.cross_entropy)
    optimizer = Adam(model, lr=0.03)
    data = ((x, lengths), labels)
    fit(model, data, sc.losses.cross_entropy, optimizer, epochs=15, batch_size=16, progress=False)
    assert evaluate(model, (x, lengths), labels, sc.losses.cross_entropy) < 0.5 * before


@pytest.mark.parametrize(
    ("lengths", "match"),
    [
        (
            np.full(N - 1, T),
            r"^fit inputs: lengths has 63 entries for a batch of 64 \(data shape \[8, 64, 3\]\); "
            r"give one length per example$",
        ),
        (
            np.r_[np.full(N - 1, T), T + 1],
            r"^fit inputs: lengths\[63\] = 9 is outside 1\.\.8 \(T = 8 in data shape "
            r"\[8, 64, 3\]\)",
        ),
        (np.r_[0, np.full(N - 1, T)], r"^fit inputs: lengths\[0\] = 0 is outside 1\.\.8"),
    ],
    ids=["one too few", "past T", "empty sequence"],
)
def test_lengths_that_do_not_fit_are_refused_before_training(
    lengths: np.ndarray, match: str
) -> None:
    x, _, labels, _ = tagging_task()
    model = tagger()
    with pytest.raises(sc.ShapeError, match=match):
        fit(model, ((x, lengths), labels), sc.losses.cross_entropy, Adam(model), progress=False)


def test_inputs_that_are_not_arrays_are_named() -> None:
    model = tagger()
    with pytest.raises(
        TypeError,
        match=r"^fit\.inputs must be a numpy array, \(x, lengths\) or a Padded, got list$",
    ):
        fit(model, ([[1.0]], np.zeros(1, int)), sc.losses.cross_entropy, Adam(model))  # type: ignore[arg-type]


def test_lengths_need_a_time_axis_apart_from_the_examples() -> None:
    model = tagger()
    with pytest.raises(
        sc.ShapeError,
        match=r"^fit: inputs of shape \[4, 3\] hold the examples on axis 0, which is also the "
        r"time axis of \[\.\.\., 3\]; lengths need a sequence input \[T, N, \.\.\.\]",
    ):
        data = ((np.zeros((4, 3), np.float32), np.ones(4, int)), np.zeros(4, int))
        fit(model, data, sc.losses.cross_entropy, Adam(model), progress=False)


def test_float_lengths_are_refused_with_the_fix() -> None:
    x, lengths, labels, _ = tagging_task()
    model = tagger()
    with pytest.raises(
        TypeError,
        match=r"^fit\.inputs given as \(x, lengths\) need lengths as integers \[N\] \(one per "
        r"example\), got float64\[64\]; pass np\.asarray\(lengths, dtype=np\.int64\)$",
    ):
        data = ((x, lengths.astype(float)), labels)
        fit(model, data, sc.losses.cross_entropy, Adam(model), progress=False)


def test_a_tuple_of_input_arrays_for_a_one_input_model_is_named() -> None:
    x, _, labels, _ = tagging_task()
    model = tagger()
    with pytest.raises(
        TypeError,
        match=r"a tuple of several input arrays is for a model with several inputs; this model "
        r"takes one: \[\.\.\., 3\]\)$",
    ):
        fit(model, ((x, x), labels), sc.losses.cross_entropy, Adam(model), progress=False)
