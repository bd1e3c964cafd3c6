"""Checkpoints and optimizer state files: safetensors (no pickle), round trips that continue
exactly, and refusals (another architecture, another optimizer, a damaged or misnamed file) that
name the file, give the fix and change nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specchain as sc
from specchain.checkpoints import (
    StateFileError,
    TrainingState,
    checkpoint_file,
    load_checkpoint,
    save_checkpoint,
)
from specchain.history import History
from specchain.modules import GRU, LSTM, LastStep, Linear
from specchain.optim import SGD, Adam, Optimizer, load_optimizer, save_optimizer
from specchain.train import fit


def model_and_data(cell: type = LSTM) -> tuple[sc.SpecChain, tuple[np.ndarray, np.ndarray]]:
    sc.seed(0)
    model = (cell(3, 4) >> LastStep() >> Linear(4, 2)).to(np.float64)
    rng = np.random.default_rng(0)
    return model, (rng.standard_normal((5, 12, 3)), rng.integers(0, 2, size=12))


def trained(optimizer: type[Optimizer], **kwargs: object) -> tuple[sc.SpecChain, Optimizer]:
    model, data = model_and_data()
    opt = optimizer(model, **kwargs)
    fit(model, data, sc.losses.cross_entropy, opt, epochs=2, batch_size=4, rng=0, progress=False)
    return model, opt


def one_step(model: sc.SpecChain, opt: Optimizer) -> dict[str, np.ndarray]:
    _, data = model_and_data()
    _, grads = model.value_and_grad(data[0], data[1], loss=sc.losses.cross_entropy)
    opt.step(grads)
    return model.state_dict()


@pytest.mark.parametrize(
    ("optimizer", "kwargs"),
    [(Adam, {"lr": 0.01, "amsgrad": True}), (SGD, {"lr": 0.1, "momentum": 0.9})],
)
def test_optimizer_state_round_trip_continues_exactly(
    tmp_path: Path, optimizer: type[Optimizer], kwargs: dict[str, object]
) -> None:
    model, opt = trained(optimizer, **kwargs)
    path = save_optimizer(opt, tmp_path / "opt.safetensors")
    assert safetensors.numpy.load_file(path)  # a plain safetensors file, the buffers inside
    twin = model_and_data()[0]
    twin.load_state_dict(model.state_dict())
    fresh = optimizer(twin, lr=1.0)  # the hyper-parameters come from the file too
    load_optimizer(fresh, path)
    assert fresh.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    expected, got = one_step(model, opt), one_step(twin, fresh)
    for name, p in expected.items():
        np.testing.assert_array_equal(got[name], p, err_msg=name)


def test_optimizer_state_refusals(tmp_path: Path) -> None:
    model, opt = trained(Adam, lr=0.01)
    path = save_optimizer(opt, tmp_path / "opt.safetensors")
    sgd = SGD(model, lr=0.5)
    with pytest.raises(
        StateFileError,
        match=r"opt\.safetensors: holds the state of the optimizer "
        r"Adam, not of this SGD; build the same optimizer class",
    ):
        load_optimizer(sgd, path)
    assert sgd.lr == 0.5 and sgd.state == {}
    other = Adam(model_and_data(GRU)[0])
    with pytest.raises(StateFileError, match=r"the saved parameters .* are not this optimizer's"):
        load_optimizer(other, path)
    with pytest.raises(
        StateFileError,
        match=r"must end in \.safetensors .* never a pickle\); "
        r"use a name like 'opt\.safetensors'",
    ):
        save_optimizer(opt, tmp_path / "opt.pt")
    with pytest.raises(StateFileError, match=r"missing\.safetensors: no such file"):
        load_optimizer(opt, tmp_path / "missing.safetensors")
    model.save(tmp_path / "model.safetensors")
    with pytest.raises(StateFileError, match=r"not an optimizer state file"):
        load_optimizer(opt, tmp_path / "model.safetensors")


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model, opt = trained(Adam, lr=0.01)
    history = History(
        epoch_loss=[0.7, 0.6],
        step_loss=[0.1 * i for i in range(6)],
        epoch_time=[0.1, 0.2],
        sequences_seen=24,
        wall_time=0.3,
        val_loss=[0.8, 0.75],
        metrics={"val_accuracy": [0.5, 2 / 3]},
    )
    generator = np.random.Generator(np.random.MT19937(5))  # a state with arrays
    generator.random(3)
    path = save_checkpoint(
        tmp_path / "c.safetensors", model, opt, TrainingState(2, history, generator)
    )
    keys = set(safetensors.numpy.load_file(path))
    assert "model/lstm.weight_ih_l0" in keys and "optimizer/linear.bias/exp_avg" in keys

    twin, _ = model_and_data()
    twin_opt = Adam(twin)
    state = load_checkpoint(path, twin, twin_opt)
    assert state.epoch == 2 and state.history == history and state.stopped is False
    assert state.rng.random() == generator.random()
    for name, p in model.named_parameters().items():
        np.testing.assert_array_equal(twin.named_parameters()[name], p, err_msg=name)
    np.testing.assert_array_equal(
        one_step(twin, twin_opt)["linear.weight"], one_step(model, opt)["linear.weight"]
    )


def test_checkpoint_refusals_change_nothing(tmp_path: Path) -> None:
    model, opt = trained(Adam, lr=0.01)
    path = save_checkpoint(
        tmp_path / "c.safetensors",
        model,
        opt,
        TrainingState(2, History(), np.random.default_rng(0)),
    )
    gru, _ = model_and_data(GRU)
    with pytest.raises(
        StateFileError,
        match=r"c\.safetensors: was saved from another "
        r"architecture than this model's; build the model exactly as",
    ):
        load_checkpoint(path, gru, Adam(gru))
    twin, _ = model_and_data()
    before = twin.state_dict()
    with pytest.raises(StateFileError, match=r"holds the state of the optimizer Adam, not of this"):
        load_checkpoint(path, twin, SGD(twin, lr=0.1))
    for name, p in twin.named_parameters().items():
        np.testing.assert_array_equal(p, before[name], err_msg=name)  # rolled back
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(StateFileError, match=r"damaged\.safetensors: .*truncated"):
        load_checkpoint(damaged, twin, Adam(twin))
    with pytest.raises(StateFileError, match=r"not a specchain checkpoint"):
        load_checkpoint(save_optimizer(opt, tmp_path / "o.safetensors"), twin, Adam(twin))
    float32 = model_and_data()[0].to(np.float32)
    with pytest.raises(StateFileError, match=r"dtype float64 != the model's float32"):
        load_checkpoint(path, float32, Adam(float32))


def test_fit_writes_the_checkpoint_and_says_when_it_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, data = model_and_data()
    opt = Adam(model, lr=0.01)
    fit(model, data, sc.losses.cross_entropy, opt, epochs=1, batch_size=4, checkpoint=tmp_path)
    assert checkpoint_file(tmp_path) == tmp_path / "checkpoint.safetensors"
    assert checkpoint_file(tmp_path).is_file()
    history = fit(
        model, data, sc.losses.cross_entropy, opt, epochs=3, batch_size=4, checkpoint=tmp_path
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"resumed from {checkpoint_file(tmp_path)} after epoch 1"
    assert [line.split(" - ")[0] for line in lines] == [
        "Epoch 1/1",
        "resumed from " + str(checkpoint_file(tmp_path)) + " after epoch 1",
        "Epoch 2/3",
        "Epoch 3/3",
    ]
    assert history.epochs == 3 and history.steps == 9


FUZZ_FILE: dict[str, bytes] = {}


def fuzz_bytes() -> bytes:
    """A checkpoint's bytes, made once (Hypothesis runs the test body many times)."""
    if "file" not in FUZZ_FILE:
        import tempfile

        model, opt = trained(Adam, lr=0.01)
        with tempfile.TemporaryDirectory() as folder:
            state = TrainingState(
                2, History(epoch_loss=[0.5], epoch_time=[0.1]), np.random.default_rng(0)
            )
            path = save_checkpoint(Path(folder) / "c.safetensors", model, opt, state)
            FUZZ_FILE["file"] = path.read_bytes()
    return FUZZ_FILE["file"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6)
)
def test_a_damaged_checkpoint_loads_or_fails_cleanly(
    tmp_path: Path, flips: list[tuple[int, int]]
) -> None:
    """Any bytes changed: either the file still loads, or ``StateFileError`` and nothing changed."""
    data = bytearray(fuzz_bytes())
    for position, value in flips:
        data[position % len(data)] = value
    path = tmp_path / "c.safetensors"
    path.write_bytes(bytes(data))
    model, _ = model_and_data()
    opt = Adam(model)
    before = model.state_dict()
    try:
        state = load_checkpoint(path, model, opt)
    except StateFileError:
        for name, p in model.named_parameters().items():
            np.testing.assert_array_equal(p, before[name], err_msg=name)
        assert opt.state == {}
    else:
        assert isinstance(state.history, History) and state.epoch >= 0
