"""``fit``'s seeding rule, ``shuffle`` and ``initial_epoch``: without ``rng`` every call draws a
new batch order (``sc.seed`` repeats a whole script), with ``rng=`` a call repeats exactly;
``shuffle=False`` keeps the data's order; epochs are numbered from ``initial_epoch`` as in
Keras."""

from __future__ import annotations

import numpy as np
import pytest

import specchain as sc
from specchain.data import adding
from specchain.modules import LSTM, LastStep, Linear
from specchain.optim import SGD
from specchain.train import History, TrainingError, fit


def regressor() -> sc.SpecChain:
    return LSTM(2, 4, rng=0) >> LastStep() >> Linear(4, 1, rng=1)  # leaves sc.seed's streams


def run(progress: bool = False, **kwargs: object) -> History:
    model = regressor()
    data = adding.adding_problem(24, 4, rng=1, variant="modern")
    return fit(
        model,
        data,
        sc.losses.mse,
        SGD(model, lr=0.1),
        batch_size=8,  # type: ignore[arg-type]
        progress=progress,
        **kwargs,
    )


def test_calls_without_rng_differ_and_sc_seed_repeats_them() -> None:
    sc.seed(3)
    first, second = run(), run()
    assert first.step_loss != second.step_loss  # another batch order on the second call
    sc.seed(3)
    again = run()
    assert again.step_loss == first.step_loss


def test_an_rng_seed_repeats_a_call_and_epochs_differ() -> None:
    first, again = run(rng=5, epochs=2), run(rng=5, epochs=2)
    assert first.step_loss == again.step_loss
    assert run(rng=6, epochs=2).step_loss != first.step_loss


def test_shuffle_false_keeps_the_data_order() -> None:
    model = regressor()
    data = adding.adding_problem(40, 4, rng=1, variant="modern")
    x = data.inputs.copy()
    x[1, 17, 0] = np.nan
    with pytest.raises(TrainingError, match=r"at epoch 1, step 3 \(of 5\)"):  # 17 // 8 + 1
        fit(
            model,
            (x, data.targets),
            sc.losses.mse,
            SGD(model, lr=0.1),
            batch_size=8,
            shuffle=False,
            progress=False,
        )
    ordered = [run(shuffle=False, rng=seed).step_loss for seed in (1, 2)]
    assert ordered[0] == ordered[1]  # no dropout: the seed has nothing left to change


def test_initial_epoch_numbers_the_epochs(capsys: pytest.CaptureFixture[str]) -> None:
    history = run(epochs=5, initial_epoch=3, progress=True)
    assert history.epochs == 2
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 4/5", "Epoch 5/5"]
    assert run(epochs=3, initial_epoch=3).epochs == 0  # already there: nothing to train
