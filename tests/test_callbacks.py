"""Callbacks: the hooks run in Keras' order with the epoch's logs; ``EarlyStopping`` stops after
``patience`` epochs without improvement (and can restore the best weights); ``ModelCheckpoint``
saves model files when the monitored value improves; both pick up where a resumed run was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specchain as sc
from specchain.callbacks import Callback, EarlyStopping, ModelCheckpoint
from specchain.history import History
from specchain.modules import LSTM, LastStep, Linear
from specchain.optim import SGD, Adam
from specchain.train import fit


def classifier() -> sc.SpecChain:
    sc.seed(0)
    return LSTM(3, 4) >> LastStep() >> Linear(4, 2)


def labelled(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((5, n, 3)).astype(np.float32), rng.integers(0, 2, size=n)


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def on_train_begin(self, history: History) -> None:
        self.events.append(("train_begin", history.epochs))

    def on_epoch_begin(self, epoch: int) -> None:
        self.events.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.events.append(("epoch_end", (epoch, tuple(logs))))

    def on_train_end(self, history: History) -> None:
        self.events.append(("train_end", history.epochs))


def test_hooks_run_in_order_with_the_logs() -> None:
    model, recorder = classifier(), Recorder()
    history = fit(
        model,
        labelled(16, 0),
        sc.losses.cross_entropy,
        SGD(model, lr=0.1),
        epochs=2,
        rng=0,
        progress=False,
        validation_data=labelled(8, 1),
        metrics=["accuracy"],
        callbacks=[recorder],
    )
    keys = ("loss", "accuracy", "val_loss", "val_accuracy", "time")
    assert recorder.model is model
    assert recorder.events == [
        ("train_begin", 0),
        ("epoch_begin", 1),
        ("epoch_end", (1, keys)),
        ("epoch_begin", 2),
        ("epoch_end", (2, keys)),
        ("train_end", 2),
    ]
    assert list(history.history) == list(keys[:-1])
    assert all(
        0.0 <= a <= 1.0 for a in history.metrics["accuracy"] + history.metrics["val_accuracy"]
    )


def fit_until_stopped(
    stopper: EarlyStopping, epochs: int = 10, progress: bool = False, **kwargs: object
) -> History:
    model = classifier()
    return fit(
        model,
        labelled(16, 0),
        sc.losses.cross_entropy,
        SGD(model, lr=0.1),
        epochs=epochs,
        rng=0,
        progress=progress,
        callbacks=[stopper],
        **kwargs,  # type: ignore[arg-type]
    )


def test_early_stopping_waits_patience_epochs(capsys: pytest.CaptureFixture[str]) -> None:
    stopper = EarlyStopping(monitor="loss", min_delta=1e9, patience=2)  # nothing improves enough
    history = fit_until_stopped(stopper)
    assert history.epochs == 4 and stopper.stopped_epoch == 4  # best at 1, then 2 + 1 epochs
    assert stopper.best == history.epoch_loss[0]
    assert "loss has not improved for 3 epochs (best" in stopper.reason
    model = classifier()
    fit(
        model,
        labelled(16, 0),
        sc.losses.cross_entropy,
        SGD(model, lr=0.1),
        epochs=10,
        callbacks=[EarlyStopping(monitor="loss", min_delta=1e9)],
    )
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("early stopping: loss has not improved for 1 epoch (best")
    assert out[-2].startswith("Epoch 2/10 - loss: ")


def test_early_stopping_modes() -> None:
    falling = EarlyStopping(monitor="val_accuracy", patience=0)  # "acc": maximised
    falling.on_train_begin(History())
    assert [falling.on_epoch_end(e, {"val_accuracy": v}) for e, v in ((1, 0.5), (2, 0.7))] == [
        False,
        False,
    ]
    assert falling.on_epoch_end(3, {"val_accuracy": 0.6}) is True and falling.best == 0.7
    rising = EarlyStopping(monitor="score", mode="max", min_delta=0.1)
    rising.on_train_begin(History())
    rising.on_epoch_end(1, {"score": 1.0})
    assert rising.on_epoch_end(2, {"score": 1.05}) is True  # +0.05 is not > min_delta
    with pytest.raises(sc.SpecError, match=r"EarlyStopping\.mode must be one of"):
        EarlyStopping(mode="up")


def test_early_stopping_restores_the_best_weights() -> None:
    model = classifier()
    stopper = EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    stopper.set_model(model)
    stopper.on_train_begin(History())
    weights = []
    for epoch, value in enumerate([3.0, 1.0, 2.0, 2.5], start=1):
        for p in model.named_parameters().values():
            p += 1.0  # "training"
        weights.append(model.state_dict())
        stop = stopper.on_epoch_end(epoch, {"loss": value})
    assert stop is True and stopper.stopped_epoch == 4
    stopper.on_train_end(History())
    for name, p in model.named_parameters().items():
        np.testing.assert_array_equal(p, weights[1][name], err_msg=name)  # epoch 2's


def test_a_missing_monitor_names_the_logs_and_the_fix() -> None:
    with pytest.raises(
        sc.SpecError,
        match=r"EarlyStopping monitors 'val_loss', but the logs "
        r"hold only \['loss', 'time'\] \(pass validation_data= to fit\)",
    ):
        fit_until_stopped(EarlyStopping())


def test_model_checkpoint_saves_when_the_validation_loss_improves(tmp_path: Path) -> None:
    model = classifier()
    best = ModelCheckpoint(tmp_path / "best-{epoch:02d}.safetensors")
    every = ModelCheckpoint(tmp_path / "last.safetensors", save_best_only=False)
    history = fit(
        model,
        labelled(32, 0),
        sc.losses.cross_entropy,
        Adam(model, lr=0.05),
        epochs=6,
        batch_size=8,
        rng=0,
        progress=False,
        validation_data=labelled(16, 1),
        callbacks=[best, every],
    )
    improved = [
        epoch
        for epoch in range(1, 7)
        if history.val_loss[epoch - 1] < min(history.val_loss[: epoch - 1], default=np.inf)
    ]
    assert [p.name for p in best.saved] == [f"best-{e:02d}.safetensors" for e in improved]
    assert best.best == min(history.val_loss)
    assert every.saved == [tmp_path / "last.safetensors"] * 6
    x, _ = labelled(4, 2)
    np.testing.assert_array_equal(sc.load(tmp_path / "last.safetensors")(x), model(x))
    with pytest.raises(sc.SpecError, match=r"ModelCheckpoint path '.*\{step\}.*' cannot be filled"):
        fit(
            model,
            labelled(8, 0),
            sc.losses.cross_entropy,
            Adam(model),
            progress=False,
            callbacks=[ModelCheckpoint(tmp_path / "m-{step}.safetensors", monitor="loss")],
        )


def test_a_resumed_run_stops_at_the_same_epoch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def stopper() -> EarlyStopping:
        return EarlyStopping(monitor="loss", min_delta=1e9, patience=2)

    whole = fit_until_stopped(stopper())
    assert whole.epochs == 4
    fit_until_stopped(stopper(), epochs=2, checkpoint=tmp_path)
    resumed = fit_until_stopped(stopper(), checkpoint=tmp_path)
    assert resumed.epochs == 4 and resumed.step_loss == whole.step_loss
    again = fit_until_stopped(stopper(), checkpoint=tmp_path, progress=True)  # stopped: no more
    assert capsys.readouterr().out == (
        f"resumed from {tmp_path / 'checkpoint.safetensors'} after epoch 4 (a callback stopped "
        "the run there: nothing more to train)\n"
    )
    assert again.epochs == 4 and again.step_loss == whole.step_loss
