"""``sc.set_num_threads`` and ``fit``'s default: one BLAS thread for small models unless the user
chose (the call or an environment variable)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import specchain as sc
from specchain import losses
from specchain.models.zoo import classifier
from specchain.optim import SGD
from specchain.threads import SMALL_MODEL_PARAMS, THREAD_VARIABLES, fit_threads


@pytest.fixture(autouse=True)
def _default_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """No thread variable set, no choice made; the choice is undone after the test."""
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    sc.set_num_threads(None)
    yield sc.get_num_threads()
    sc.set_num_threads(None)


@pytest.fixture
def several(_default_threads: int) -> int:
    """The BLAS default thread count; the test needs it to be more than one."""
    if _default_threads < 2:
        pytest.skip("numpy's BLAS starts with one thread here: nothing to limit")
    return _default_threads


def test_set_num_threads_sets_and_none_restores(several: int) -> None:
    sc.set_num_threads(1)
    assert sc.get_num_threads() == 1
    sc.set_num_threads(2)
    assert sc.get_num_threads() == 2
    sc.set_num_threads(None)
    assert sc.get_num_threads() == several


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_refuses_what_is_not_a_count(bad: object) -> None:
    with pytest.raises(ValueError, match=r"set_num_threads expects a positive int .* got"):
        sc.set_num_threads(bad)  # type: ignore[arg-type]


def test_fit_threads_uses_one_thread_for_a_small_model_and_restores(several: int) -> None:
    model = classifier(7, 16, 2)
    assert model.num_params < SMALL_MODEL_PARAMS
    with fit_threads(model):
        assert sc.get_num_threads() == 1
    assert sc.get_num_threads() == several


def test_fit_threads_leaves_a_large_model_on_every_thread(several: int) -> None:
    model = classifier(7, 256, 2)
    assert model.num_params >= SMALL_MODEL_PARAMS
    with fit_threads(model):
        assert sc.get_num_threads() == several


def test_the_users_choice_wins_over_the_default(several: int) -> None:
    sc.set_num_threads(2)
    with fit_threads(classifier(7, 16, 2)):
        assert sc.get_num_threads() == 2


def test_an_environment_variable_wins_over_the_default(
    several: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with fit_threads(classifier(7, 16, 2)):
        assert sc.get_num_threads() == several


def test_fit_trains_a_small_model_on_one_thread(several: int) -> None:
    model = classifier(3, 4, 2)
    x = np.random.default_rng(0).standard_normal((5, 8, 3)).astype(np.float32)
    y = np.arange(8) % 2
    seen: list[int] = []

    def record(epoch: int, history: sc.train.History) -> None:
        seen.append(sc.get_num_threads())

    sc.train.fit(
        model,
        (x, y),
        losses.cross_entropy,
        SGD(model.named_parameters(), lr=0.1),
        epochs=2,
        progress=False,
        on_epoch=record,
    )
    assert seen == [1, 1]
    assert sc.get_num_threads() == several
