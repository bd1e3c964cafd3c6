"""``fit(..., engine="torch")``: 20 Adam steps equal the numpy engine's (float64, dropout 0) for
every zoo model; History, validation, callbacks and checkpoints behave the same; refusals name
the fix."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import specchain as sc
from specchain.callbacks import EarlyStopping
from specchain.history import History
from specchain.losses import cross_entropy, mse
from specchain.models import zoo
from specchain.modules import LSTM, Linear
from specchain.optim import Adam
from specchain.padded import Padded
from specchain.train import TrainingError, fit
from specchain.types import SpecError
from tests.engines.test_torch_engine import BUILDERS
from tests.helpers import one_torch_thread

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

N, BATCH, EPOCHS = 8, 2, 5  # 20 steps


def _data(name: str, lengths: bool, model: sc.SpecChain) -> tuple[Any, np.ndarray]:
    x = zoo.ZOO[name].example_input(np.random.default_rng(0), 5, N, np.float64, lengths=lengths)
    y = model(x)
    target = np.random.default_rng(1).standard_normal(
        (y.data if isinstance(y, Padded) else y).shape
    )
    return x, target


def _fit_both(
    name: str, lengths: bool, loss: Any = mse, data: Any = None, **options: Any
) -> tuple[sc.SpecChain, sc.SpecChain, History, History]:
    ours = BUILDERS[name](lengths=lengths).to(np.float64)
    theirs = BUILDERS[name](lengths=lengths).to(np.float64)
    theirs.load_state_dict(ours.state_dict())
    data = _data(name, lengths, ours) if data is None else data
    common: dict[str, Any] = {"epochs": EPOCHS, "batch_size": BATCH, "rng": 7, "progress": False}
    first = fit(ours, data, loss, Adam(ours, lr=1e-2), **common, **options)
    second = fit(theirs, data, loss, Adam(theirs, lr=1e-2), engine="torch", **common, **options)
    return ours, theirs, first, second


def _assert_equal_runs(
    ours: sc.SpecChain, theirs: sc.SpecChain, first: History, second: History
) -> None:
    assert len(first.step_loss) == len(second.step_loss) == EPOCHS * N // BATCH
    np.testing.assert_allclose(second.step_loss, first.step_loss, rtol=1e-9)
    mine = ours.named_parameters()
    for key, value in theirs.named_parameters().items():
        np.testing.assert_allclose(value, mine[key], rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name", BUILDERS)
def test_twenty_adam_steps_equal_the_numpy_engine(name: str) -> None:
    _assert_equal_runs(*_fit_both(name, lengths=False))


def test_two_padded_inputs_with_validation_equal_the_numpy_engine() -> None:
    """The attention model's source and decoder inputs, each ``(x, lengths)``, sliced together."""
    model = BUILDERS["attention_seq2seq"](lengths=True).to(np.float64)
    data = _data("attention_seq2seq", True, model)
    ours, theirs, first, second = _fit_both(
        "attention_seq2seq", True, data=data, validation_data=data
    )
    _assert_equal_runs(ours, theirs, first, second)
    np.testing.assert_allclose(second.val_loss, first.val_loss, rtol=1e-9)


def test_padded_language_model_with_cross_entropy_and_validation() -> None:
    rng = np.random.default_rng(2)
    tokens, lens = zoo.ZOO["language_model"].example_input(rng, 6, N, np.float64, lengths=True)
    data = ((tokens, lens), rng.integers(0, 50, tokens.shape))
    ours, theirs, first, second = _fit_both(
        "language_model", True, cross_entropy, data, validation_data=data, metrics=["accuracy"]
    )
    _assert_equal_runs(ours, theirs, first, second)
    np.testing.assert_allclose(second.val_loss, first.val_loss, rtol=1e-9)
    assert second.metrics.keys() == first.metrics.keys()


def test_callbacks_and_checkpoints_see_the_trained_weights(tmp_path: Path) -> None:
    ours, theirs, first, second = _fit_both(
        "classifier",
        False,
        validation_data=None,
        callbacks=[EarlyStopping(monitor="loss", patience=100)],
    )
    _assert_equal_runs(ours, theirs, first, second)
    model = BUILDERS["classifier"]().to(np.float64)
    data = _data("classifier", False, model)
    optimizer = Adam(model, lr=1e-2)
    fit(
        model,
        data,
        mse,
        optimizer,
        epochs=2,
        batch_size=BATCH,
        rng=3,
        progress=False,
        engine="torch",
        checkpoint=tmp_path,
    )
    resumed = BUILDERS["classifier"]().to(np.float64)
    resumed_optimizer = Adam(resumed, lr=1e-2)
    history = fit(
        resumed,
        data,
        mse,
        resumed_optimizer,
        epochs=2,
        batch_size=BATCH,
        rng=3,
        progress=False,
        checkpoint=tmp_path,
    )
    assert history.epochs == 2  # nothing left to train: the checkpoint holds epoch 2
    for key, value in model.named_parameters().items():
        np.testing.assert_array_equal(resumed.named_parameters()[key], value, err_msg=key)


def test_refusals_name_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    model = BUILDERS["classifier"]().to(np.float64)
    data = _data("classifier", False, model)
    with pytest.raises(SpecError, match=r"engine.*'numpy' or 'torch'"):
        fit(model, data, mse, Adam(model), engine="jax", progress=False)
    with pytest.raises(SpecError, match=r"device='cuda' needs engine='torch'"):
        fit(model, data, mse, Adam(model), device="cuda", progress=False)
    real_import = builtins.__import__

    def no_torch(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(SpecError, match=r"pip install 'specchain\[torch\]'"):
        fit(model, data, mse, Adam(model), engine="torch", progress=False)


def test_cuda_trains_where_a_gpu_exists() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine: the device path is the CPU one with .to()")
    _assert_equal_runs(*_fit_both("classifier", False, device="cuda"))


def test_changes_between_epochs_count_as_with_numpy() -> None:
    """A callback that lowers the learning rate and edits a weight after epoch 1, and AMSGrad
    switched on mid-run: both engines follow."""
    runs = [BUILDERS["classifier"]().to(np.float64) for _ in range(2)]
    runs[1].load_state_dict(runs[0].state_dict())
    data = _data("classifier", False, runs[0])
    for model, engine in zip(runs, ("numpy", "torch")):
        optimizer = Adam(model, lr=1e-2)

        def edit(epoch: int, history: History, model: Any = model, opt: Any = optimizer) -> None:
            if epoch == 1:
                opt.lr, opt.amsgrad = 1e-3, True
                model.named_parameters()["head.bias"][...] = 0.5

        fit(
            model,
            data,
            mse,
            optimizer,
            epochs=3,
            batch_size=BATCH,
            rng=1,
            progress=False,
            on_epoch=edit,
            engine=engine,
        )
    for key, value in runs[1].named_parameters().items():
        np.testing.assert_allclose(value, runs[0].named_parameters()[key], rtol=1e-9, atol=1e-12)


def test_a_failing_step_leaves_the_spec_at_the_last_good_step() -> None:
    runs = [BUILDERS["classifier"]().to(np.float64) for _ in range(2)]
    runs[1].load_state_dict(runs[0].state_dict())
    for model, engine in zip(runs, ("numpy", "torch")):
        x, target = _data("classifier", False, model)
        x = x.copy()
        x[:, 7] = np.nan  # the third batch of 3 holds example 7
        with pytest.raises(TrainingError, match="epoch 1, step 3") as caught:
            fit(
                model,
                (x, target),
                mse,
                Adam(model, lr=1e-2),
                batch_size=3,
                shuffle=False,
                progress=False,
                engine=engine,
            )
        assert len(caught.value.history.step_loss) == 2
    for key, value in runs[1].named_parameters().items():
        np.testing.assert_allclose(value, runs[0].named_parameters()[key], rtol=1e-9, atol=1e-12)


def test_inputs_the_export_cannot_take_are_refused_with_the_fix() -> None:
    plain = (LSTM(3, 4) >> Linear(4, 2)).to(np.float64)
    x, lengths = np.zeros((5, 2, 3)), np.array([5, 3])
    with pytest.raises(SpecError, match=r"sc.Input\(type, name=..., lengths=True\)"):
        fit(
            plain,
            ((x, lengths), np.zeros((5, 2, 2))),
            mse,
            Adam(plain),
            progress=False,
            engine="torch",
        )
    single = LSTM(3, 4).as_chain()
    with pytest.raises(SpecError, match=r"inputs are float64 but the model is float32"):
        fit(single, (x, np.zeros((5, 2, 4))), mse, Adam(single), progress=False, engine="torch")


def _dropout_run(tmp: Path | None, epochs: int, model: sc.SpecChain | None = None) -> Any:
    if model is None:
        sc.seed(0)
        model = zoo.stacked(8, 16, 4, num_layers=2, dropout=0.5).to(np.float64)
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((5, 12, 8)), rng.standard_normal((5, 12, 4)))
    optimizer = Adam(model, lr=1e-2)
    history = fit(
        model,
        data,
        mse,
        optimizer,
        epochs,
        4,
        rng=1,
        progress=False,
        engine="torch",
        checkpoint=tmp,
    )
    return model, history


def test_a_resumed_run_with_dropout_is_the_uninterrupted_run(tmp_path: Path) -> None:
    straight, whole = _dropout_run(None, 4)
    _dropout_run(tmp_path, 2)  # stops after epoch 2, checkpointed
    sc.seed(99)  # other initial weights: the checkpoint restores them
    fresh = zoo.stacked(8, 16, 4, num_layers=2, dropout=0.5).to(np.float64)
    resumed, history = _dropout_run(tmp_path, 4, fresh)
    assert history.epoch_loss == whole.epoch_loss
    for key, value in straight.named_parameters().items():
        np.testing.assert_array_equal(resumed.named_parameters()[key], value, err_msg=key)


def test_no_global_torch_generator_is_reseeded(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    calls: list[str] = []
    monkeypatch.setattr(torch, "manual_seed", lambda seed: calls.append("manual_seed"))
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.append("cuda"))
    _dropout_run(None, 1)
    assert calls == []


def test_default_dtype_float64_trains() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        _, history = _dropout_run(None, 1)
    finally:
        torch.set_default_dtype(before)
    assert np.isfinite(history.epoch_loss).all()


def test_targets_get_the_numpy_engines_checks() -> None:
    model = BUILDERS["classifier"]().to(np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 12, 8))

    def train(targets: np.ndarray, loss: Any = mse) -> None:
        data = (x, targets)
        fit(model, data, loss, Adam(model), 1, 4, progress=False, engine="torch", shuffle=False)

    with pytest.raises(sc.ShapeError, match="no broadcasting"):
        train(rng.standard_normal((12, 1)))
    with pytest.raises(TypeError, match="target dtype float32"):
        train(rng.standard_normal((12, 3)).astype(np.float32))
    labels = np.zeros(12, dtype=np.int64)
    labels[9] = 7  # in the third batch: found when torch refuses it
    with pytest.raises(SpecError, match=r"target 7 at position \[1\] is out of range for 3"):
        train(labels, cross_entropy)


def test_without_shuffling_each_epoch_still_draws_new_masks() -> None:
    sc.seed(0)
    model = zoo.stacked(4, 8, 3, num_layers=2, dropout=0.5).to(np.float64)
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((5, 4, 4)), rng.standard_normal((5, 4, 3)))
    optimizer = Adam(model, lr=1e-300)  # the weights stay: only the masks change the loss
    history = fit(
        model, data, mse, optimizer, 3, 4, rng=1, progress=False, engine="torch", shuffle=False
    )
    assert len(set(history.step_loss)) == 3
