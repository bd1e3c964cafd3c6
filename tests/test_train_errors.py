"""The usual mistakes with ``fit`` (and ``evaluate``) fail before training, with the fix in
the message: a loss as a string or a class, ``mse`` on class labels, a tuple output, batch-first
data into a time-major model, and callbacks or metrics that are not what fit takes."""

from __future__ import annotations

import numpy as np
import pytest

import specchain as sc
from specchain.callbacks import EarlyStopping
from specchain.losses import CrossEntropyLoss, MSELoss
from specchain.modules import LSTM, LastStep, Linear
from specchain.optim import SGD
from specchain.train import evaluate, fit


def classifier() -> sc.SpecChain:
    return LSTM(3, 4) >> LastStep() >> Linear(4, 2)


def labelled(n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, n, 3)).astype(np.float32), rng.integers(0, 2, size=n)


def fit_with(model: sc.SpecChain, data: object, loss: object, **kwargs: object) -> None:
    fit(model, data, loss, SGD(model, lr=0.1), progress=False, **kwargs)  # type: ignore[arg-type]


def test_a_loss_given_as_a_string_names_the_object() -> None:
    model = classifier()
    with pytest.raises(
        TypeError,
        match=r"not the string 'cross_entropy'; pass the object "
        r"sc\.losses\.cross_entropy \(or sc\.losses\.CrossEntropyLoss\(\)\)",
    ):
        fit_with(model, labelled(), "cross_entropy")
    with pytest.raises(
        TypeError,
        match=r"not the string 'nll'; the losses are "
        r"sc\.losses\.cross_entropy .* or sc\.losses\.mse",
    ):
        fit_with(model, labelled(), "nll")
    with pytest.raises(TypeError, match=r"evaluate: loss must be a loss object, not the string"):
        evaluate(model, *labelled(), "mse")  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [CrossEntropyLoss, MSELoss])
def test_a_loss_class_asks_for_an_instance(cls: type) -> None:
    with pytest.raises(
        TypeError,
        match=rf"got the class {cls.__name__} itself; pass an "
        rf"instance: sc\.losses\.{cls.__name__}\(\)",
    ):
        fit_with(classifier(), labelled(), cls)


def test_a_function_is_not_a_loss() -> None:
    with pytest.raises(
        TypeError,
        match=r"got function; use sc\.losses\.cross_entropy .* or "
        r"subclass sc\.losses\.Loss",
    ):
        fit_with(classifier(), labelled(), lambda y, t: float(np.mean((y - t) ** 2)))


def test_mse_on_class_labels_suggests_cross_entropy() -> None:
    model = classifier()
    with pytest.raises(
        TypeError,
        match=r"mse got integer targets \(int64\[6\]\); for class "
        r"labels use sc\.losses\.cross_entropy",
    ):
        fit_with(model, labelled(), sc.losses.mse)
    with pytest.raises(TypeError, match=r"evaluate: mse got integer targets"):
        evaluate(model, *labelled(), sc.losses.mse)


def test_a_tuple_output_suggests_select_or_return_state() -> None:
    model = LSTM(3, 4, return_state=True).as_chain()
    x = np.zeros((5, 6, 3), np.float32)
    with pytest.raises(
        sc.ShapeError,
        match=r"the model outputs a tuple .* but mse takes one "
        r"array; build the recurrent layer with return_state=False .* "
        r"sc\.modules\.Select\(0\)",
    ):
        fit_with(model, (x, np.zeros((5, 6, 4), np.float32)), sc.losses.mse)


def test_batch_first_data_into_a_time_major_model_suggests_batch_first() -> None:
    x, y = labelled(6)
    batch_first = x.swapaxes(0, 1)  # [N=6, T=5, F]
    with pytest.raises(
        sc.ShapeError,
        match=r"inputs hold 5 examples on axis 1 .* targets hold 6 "
        r".* look batch-first .* build its first layer with batch_first=True, or "
        r"pass x\.swapaxes\(0, 1\) \(shape \[5, 6, 3\]\)",
    ):
        fit_with(classifier(), (batch_first, y), sc.losses.cross_entropy)
    with pytest.raises(sc.ShapeError, match=r"fit\.validation_data: .* look batch-first"):
        fit_with(classifier(), (x, y), sc.losses.cross_entropy, validation_data=(batch_first, y))


def test_counts_that_differ_otherwise_get_no_batch_first_hint() -> None:
    x, y = labelled(6)
    with pytest.raises(sc.ShapeError, match=r"they must match$"):
        fit_with(classifier(), (x, y[:4]), sc.losses.cross_entropy)


def test_callbacks_and_metrics_must_be_what_fit_takes() -> None:
    data, ce = labelled(), sc.losses.cross_entropy
    with pytest.raises(
        TypeError,
        match=r"callbacks hold the class EarlyStopping; pass an "
        r"instance, e\.g\. EarlyStopping\(\)",
    ):
        fit_with(classifier(), data, ce, callbacks=[EarlyStopping])
    with pytest.raises(TypeError, match=r"callbacks must be sc\.callbacks\.Callback objects"):
        fit_with(classifier(), data, ce, callbacks=[print])
    with pytest.raises(TypeError, match=r"metrics must be a list such as \['accuracy'\]"):
        fit_with(classifier(), data, ce, metrics="accuracy")
    with pytest.raises(sc.SpecError, match=r"unknown metric 'f1'; use 'accuracy' or a function"):
        fit_with(classifier(), data, ce, metrics=["f1"])
    with pytest.raises(TypeError, match=r"fit\.shuffle must be True or False, got 'yes'"):
        fit_with(classifier(), data, ce, shuffle="yes")
    with pytest.raises(sc.SpecError, match=r"fit\.initial_epoch must be an int >= 0, got -1"):
        fit_with(classifier(), data, ce, initial_epoch=-1)
