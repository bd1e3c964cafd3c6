"""``fit``, ``evaluate`` and ``validation_data`` with a model of several inputs: a tuple of input
arrays (each ``(x, lengths)`` if it is padded), batched on each input's own axis, every batch
taking the same examples from each; the refusals name the input, its shape and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import specchain as sc
from specchain.data import write_training_file
from specchain.models import zoo
from specchain.modules import Linear, Tanh
from specchain.optim import SGD
from specchain.padded import Padded
from specchain.train import batch_axes, evaluate, fit

N, BATCH = 10, 4  # three steps: 4, 4 and 2 examples
S, T = 4, 3  # source and decoder steps


def attention(lengths: bool = False) -> sc.SpecChain:
    sc.seed(0)
    return zoo.attention_seq2seq(3, 4, 2, lengths=lengths).to(np.float64)


def two_inputs(lengths: bool = False, n: int = N) -> tuple[Any, np.ndarray]:
    """``((source [S, n, 3], decoder_inputs [T, n, 3]), targets [T, n, 2])``, each input
    ``(x, lengths)`` with ``lengths``."""
    rng = np.random.default_rng(5)
    source, decoder = rng.standard_normal((S, n, 3)), rng.standard_normal((T, n, 3))
    if not lengths:
        return (source, decoder), rng.standard_normal((T, n, 2))
    source_lengths, decoder_lengths = rng.integers(1, S + 1, n), rng.integers(1, T + 1, n)
    inputs = ((source, source_lengths), (decoder, decoder_lengths))
    return inputs, rng.standard_normal((T, n, 2))


def manual_batch(inputs: Any, index: np.ndarray) -> Any:
    """Examples ``index`` of every input (and of its lengths), sliced by hand."""
    if isinstance(inputs[0], tuple):
        return tuple((x[:, index], lengths[index]) for x, lengths in inputs)
    return tuple(x[:, index] for x in inputs)


@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
def test_each_batch_takes_the_same_examples_from_every_input(lengths: bool) -> None:
    """fit's steps equal a hand-written loop over the same permutation (fit's first draw from
    rng=3), slicing the source and the decoder inputs (and their lengths) together."""
    model, twin = attention(lengths), attention(lengths)
    inputs, targets = two_inputs(lengths)
    history = fit(
        model, (inputs, targets), sc.losses.mse, SGD(model, lr=0.1), epochs=1,
        batch_size=BATCH, rng=3, progress=False,
    )  # fmt: skip
    optimizer = SGD(twin, lr=0.1)
    order = np.random.default_rng(3).permutation(N)
    losses = []
    for start in range(0, N, BATCH):
        index = order[start : start + BATCH]
        value, grads = twin.value_and_grad(
            manual_batch(inputs, index), targets[:, index], sc.losses.mse
        )
        optimizer.step(grads)
        losses.append(value)
    np.testing.assert_allclose(history.step_loss, losses, rtol=1e-12)
    assert history.sequences_seen == N
    for name, value in twin.named_parameters().items():
        np.testing.assert_allclose(model.named_parameters()[name], value, rtol=1e-12, err_msg=name)


def test_a_list_of_inputs_trains_as_the_tuple_does() -> None:
    """Keras users pass a list of input arrays: the same run as with a tuple."""
    inputs, targets = two_inputs()
    runs = []
    for given in (inputs, list(inputs)):
        model = attention()
        runs.append(fit(model, (given, targets), sc.losses.mse, SGD(model, lr=0.1), rng=1,
                        batch_size=BATCH, progress=False).step_loss)  # fmt: skip
    assert runs[0] == runs[1]


@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
def test_evaluate_and_validation_data_take_several_inputs(lengths: bool) -> None:
    model = attention(lengths)
    inputs, targets = two_inputs(lengths)
    held_out = two_inputs(lengths, n=6)
    outputs = model(inputs)
    assert isinstance(outputs, Padded) == lengths
    expected = float(sc.losses.mse(outputs, targets))
    assert evaluate(model, inputs, targets, sc.losses.mse) == expected
    history = fit(
        model, (inputs, targets), sc.losses.mse, SGD(model, lr=0.1), epochs=2, batch_size=BATCH,
        rng=0, progress=False, validation_data=held_out,
    )  # fmt: skip
    assert len(history.val_loss) == 2
    assert history.val_loss[-1] == evaluate(model, *held_out, sc.losses.mse)


def test_batch_axes_gives_one_axis_per_input() -> None:
    model = attention()
    inputs, targets = two_inputs()
    assert batch_axes(model, inputs, targets) == ((1, 1), 1)


def test_one_input_model_still_reads_a_pair_as_x_and_lengths() -> None:
    """The model decides: for a single-input model a 2-tuple is ``(x, lengths)``, the same run
    as with a ``Padded``."""
    x = np.random.default_rng(0).standard_normal((5, 6, 3))
    lengths = np.array([5, 2, 4, 1, 3, 5])
    targets = np.random.default_rng(1).standard_normal((5, 6, 2))
    assert batch_axes(Linear(3, 2).as_chain(), (x, lengths), targets) == (1, 1)
    runs = []
    for given in ((x, lengths), Padded(x, lengths, 0, 1)):
        sc.seed(2)
        model = (Linear(3, 4) >> Tanh() >> Linear(4, 2)).to(np.float64)
        runs.append(fit(model, (given, targets), sc.losses.mse, SGD(model, lr=0.1), rng=1,
                        batch_size=2, progress=False).step_loss)  # fmt: skip
    assert runs[0] == runs[1]
    assert len(runs[0]) == 3  # batches of examples, not of the pair's two items


def test_an_input_with_another_number_of_examples_is_named() -> None:
    model = attention()
    (source, decoder), targets = two_inputs()
    with pytest.raises(
        sc.ShapeError,
        match=r"^fit: inputs\[1\] \(decoder_inputs\) holds 9 examples on its batch axis 1 "
        r"\(shape \[3, 9, 3\]\), expected 10 as inputs\[0\] \(source\) holds; every input must "
        r"hold the same N examples",
    ):
        fit(
            model,
            ((source, decoder[:, :9]), targets),
            sc.losses.mse,
            SGD(model, lr=0.1),
            progress=False,
        )
    with pytest.raises(sc.ShapeError, match=r"^fit\.validation_data: inputs\[1\] \(decoder_inp"):
        fit(
            model, ((source, decoder), targets), sc.losses.mse, SGD(model, lr=0.1), progress=False,
            validation_data=((source, decoder[:, :9]), targets),
        )  # fmt: skip
    with pytest.raises(
        sc.ShapeError,
        match=r"^fit: inputs\[0\] \(source\) hold 10 examples on axis 1 \(shape \[4, 10, 3\]\) "
        r"but targets hold 8 on axis 1",
    ):
        fit(
            model,
            ((source, decoder), targets[:, :8]),
            sc.losses.mse,
            SGD(model, lr=0.1),
            progress=False,
        )


@pytest.mark.parametrize(
    ("given", "got"),
    [
        (lambda s, d: (s, d, d), "a tuple of 3"),
        (lambda s, d: (s,), "a tuple of 1"),
        (lambda s, d: s, "a ndarray"),
    ],
    ids=["three", "one", "an array"],
)
def test_a_wrong_number_of_inputs_is_refused_with_the_fix(given: Any, got: str) -> None:
    model = attention()
    (source, decoder), targets = two_inputs()
    with pytest.raises(
        TypeError,
        match=r"^fit\.inputs: the model takes 2 inputs \(source: \[S, B, 3\], decoder_inputs: "
        r"\[T, B, 3\]\); pass a tuple of 2 \(one per input, in that order: each an array, "
        rf"\(x, lengths\) or a Padded\), got {got}$",
    ):
        fit(
            model,
            (given(source, decoder), targets),
            sc.losses.mse,
            SGD(model, lr=0.1),
            progress=False,
        )


def test_bad_lengths_of_one_input_are_named() -> None:
    model = attention(lengths=True)
    ((source, source_lengths), (decoder, _)), targets = two_inputs(lengths=True)
    bad = ((source, source_lengths), (decoder, np.full(N, 1.0)))
    with pytest.raises(
        TypeError,
        match=r"^fit\.inputs\[1\] \(decoder_inputs\) given as \(x, lengths\) need lengths as "
        r"integers \[N\] \(one per example\), got float64\[10\]; pass "
        r"np\.asarray\(lengths, dtype=np\.int64\)$",
    ):
        fit(model, (bad, targets), sc.losses.mse, SGD(model, lr=0.1), progress=False)
    too_long = ((source, source_lengths), (decoder, np.full(N, T + 1)))
    with pytest.raises(
        sc.ShapeError, match=r"^fit inputs\[1\] \(decoder_inputs\): lengths\[0\] = 4 is outside"
    ):
        fit(model, (too_long, targets), sc.losses.mse, SGD(model, lr=0.1), progress=False)


@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
def test_the_training_file_holds_one_array_per_input(tmp_path: Path, lengths: bool) -> None:
    """``x0``, ``x1`` (depth first), each with its batch axis and its lengths where padded; the
    arrays read back are the ones given."""
    inputs, targets = two_inputs(lengths)
    write_training_file(tmp_path / "data.npz", attention(lengths), (inputs, targets))
    with np.load(tmp_path / "data.npz") as data:
        stored = dict(data)
    padded = {"lengths0", "lengths1"} if lengths else set()
    axes = {"x0_batch_axis", "x1_batch_axis", "y_batch_axis"}
    assert set(stored) == {"x0", "x1", "y", *axes, *padded}
    assert all(int(stored[key]) == 1 for key in axes)
    for i, given in enumerate(inputs):
        x, given_lengths = given if lengths else (given, None)
        np.testing.assert_array_equal(stored[f"x{i}"], x)
        if given_lengths is not None:
            assert stored[f"lengths{i}"].dtype == np.int64
            np.testing.assert_array_equal(stored[f"lengths{i}"], given_lengths)
    np.testing.assert_array_equal(stored["y"], targets)


def test_the_training_file_refuses_what_fit_refuses(tmp_path: Path) -> None:
    model = attention(lengths=True)
    ((source, source_lengths), (decoder, _)), targets = two_inputs(lengths=True)
    too_long = ((source, source_lengths), (decoder, np.full(N, T + 1)))
    with pytest.raises(
        sc.ShapeError,
        match=r"^write_training_file inputs\[1\] \(decoder_inputs\): lengths\[0\] = 4 is outside",
    ):
        write_training_file(tmp_path / "data.npz", model, (too_long, targets))
    fewer = ((source, source_lengths), (decoder[:, :-1], np.full(N - 1, T)))
    with pytest.raises(
        sc.ShapeError,
        match=r"^write_training_file: inputs\[1\] \(decoder_inputs\) holds 9 examples on its "
        r"batch axis 1 \(shape \[3, 9, 3\]\), expected 10",
    ):
        write_training_file(tmp_path / "data.npz", model, (fewer, targets))
    empty = ((source[:, :0], source_lengths[:0]), (decoder[:, :0], np.full(0, T)))
    with pytest.raises(sc.SpecError, match=r"^write_training_file: the data holds no examples"):
        write_training_file(tmp_path / "data.npz", model, (empty, targets[:, :0]))
    assert not (tmp_path / "data.npz").exists()


def test_an_input_without_its_batch_axis_is_named() -> None:
    model = attention()
    (source, decoder), targets = two_inputs()
    with pytest.raises(
        sc.ShapeError,
        match=r"^inputs\[1\] \(decoder_inputs\) of shape \[3\] have no batch axis 1; the model "
        r"takes \(source: \[S, B, 3\], decoder_inputs: \[T, B, 3\]\)",
    ):
        fit(model, ((source, decoder[:, 0, 0]), targets), sc.losses.mse, SGD(model, lr=0.1))


def test_empty_validation_data_is_refused() -> None:
    model = zoo.classifier(3, 4, 2)
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((5, 6, 3)), rng.integers(0, 2, 6))
    empty = (np.zeros((5, 0, 3)), np.zeros(0, dtype=np.int64))
    with pytest.raises(sc.SpecError, match=r"validation_data holds no examples .*\[5, 0, 3\]"):
        fit(model, data, sc.losses.cross_entropy, SGD(model, lr=0.1), 1, 3, progress=False,
            validation_data=empty)  # fmt: skip


def test_an_input_of_the_wrong_rank_is_named() -> None:
    model = zoo.attention_seq2seq(3, 4, 2).to(np.float64)
    rng = np.random.default_rng(0)
    src, dec = rng.standard_normal((4, 10, 3)), rng.standard_normal((5, 10, 3))
    targets = rng.standard_normal((5, 10, 2))
    with pytest.raises(sc.ShapeError, match=r"^inputs\[0\] \(source\) of shape \[10, 3\] has 2"):
        fit(
            model, ((src[0], dec), targets), sc.losses.mse, SGD(model, lr=0.1), 1, 4, progress=False
        )
