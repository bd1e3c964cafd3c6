"""The two random streams: initialisation and run time, both reset by ``sc.seed``."""

from __future__ import annotations

import numpy as np
import pytest

import specchain as sc
from specchain import params
from specchain.data.adding import adding_problem
from specchain.modules import LSTM, Dropout, Linear
from specchain.spec import Context


def weights_after(action: object = None) -> dict[str, np.ndarray]:
    sc.seed(0)
    if callable(action):
        action()
    return (LSTM(4, 8) >> Linear(8, 2)).state_dict()


DROPOUT_MODEL = Linear(4, 4) >> Dropout(0.5)  # built before the seed: only its forward runs


def dropout_forward() -> None:
    DROPOUT_MODEL.forward(np.ones((3, 2, 4), np.float32), train=True)  # no rng=: run-time stream


def draw_dataset() -> None:
    adding_problem(8, length=10, rng=None)


@pytest.mark.parametrize("action", [dropout_forward, draw_dataset], ids=["dropout", "dataset"])
def test_running_never_changes_the_weights_built_next(action: object) -> None:
    expected = weights_after()
    got = weights_after(action)
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


def test_seed_makes_train_mode_forwards_reproducible() -> None:
    x = np.ones((50, 4), np.float32)
    model = Dropout(0.5).as_chain()
    sc.seed(3)
    first, second = model.forward(x, train=True)[0], model.forward(x, train=True)[0]
    assert not np.array_equal(first, second)  # the stream moves on between calls
    sc.seed(3)
    np.testing.assert_array_equal(model.forward(x, train=True)[0], first)


def test_an_explicit_rng_wins_over_the_streams() -> None:
    x = np.ones((50, 4), np.float32)
    model = Dropout(0.5).as_chain()
    sc.seed(1)
    a = model.forward(x, train=True, rng=7)[0]
    sc.seed(2)
    np.testing.assert_array_equal(model.forward(x, train=True, rng=7)[0], a)
    generator = np.random.default_rng(5)
    assert params.runtime_generator(generator) is generator
    assert params.init_generator(generator) is generator


def test_the_streams_are_distinct_and_context_carries_the_run_time_one() -> None:
    sc.seed(0)
    assert params.init_generator() is not params.runtime_generator()
    assert Context().rng is params.runtime_generator()
    sc.seed(0)
    assert params.init_generator().random() == np.random.default_rng(0).random()


def test_seed_refuses_a_non_int() -> None:
    with pytest.raises(TypeError, match=r"sc.seed expects an int, got 1.5"):
        sc.seed(1.5)  # type: ignore[arg-type]
