"""``fit``, ``evaluate``, ``accuracy`` and ``generate``: training lowers the loss, the history
adds up, runs are reproducible from the seed, bad data fails with clear messages, and sampling
draws from the right distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest

import specchain as sc
from specchain.data import adding, copy
from specchain.modules import LSTM, Dropout, Embedding, LastStep, Linear
from specchain.optim import SGD, Adam
from specchain.train import History, TrainingError, accuracy, evaluate, fit, generate


def regressor(dropout: float = 0.0) -> sc.SpecChain:
    return LSTM(2, 8) >> Dropout(dropout) >> LastStep() >> Linear(8, 1)


def tiny_task(n: int = 96) -> adding.SequenceData:
    return adding.adding_problem(n, 6, rng=1, variant="modern")


def test_fit_lowers_the_loss() -> None:
    model = regressor()
    data = tiny_task()
    before = evaluate(model, data.inputs, data.targets, sc.losses.mse)
    history = fit(model, data, sc.losses.mse, Adam(model, lr=0.02), epochs=8, progress=False)
    after = evaluate(model, data.inputs, data.targets, sc.losses.mse)
    assert history.epoch_loss[-1] < 0.5 * history.epoch_loss[0]
    assert after < 0.5 * before


def test_history_fields_add_up() -> None:
    model = regressor()
    data = tiny_task(50)
    history = fit(model, data, sc.losses.mse, SGD(model, lr=0.1), epochs=3, batch_size=16,
                  progress=False)  # fmt: skip
    steps_per_epoch = 4  # 16 + 16 + 16 + 2
    assert isinstance(history, History)
    assert history.epochs == 3 and len(history.epoch_time) == 3
    assert history.steps == len(history.step_loss) == 3 * steps_per_epoch
    assert history.sequences_seen == 150
    assert history.wall_time >= sum(history.epoch_time) > 0
    assert history.grad_norm == []  # only recorded with clip
    sizes = np.array([16, 16, 16, 2])
    for epoch in range(3):
        losses = history.step_loss[epoch * steps_per_epoch : (epoch + 1) * steps_per_epoch]
        expected = float(np.dot(losses, sizes) / sizes.sum())
        assert history.epoch_loss[epoch] == pytest.approx(expected, rel=1e-12)
    assert history.final_loss == history.epoch_loss[-1]


def run(seed: int, rng: int) -> tuple[History, dict[str, np.ndarray]]:
    sc.seed(seed)
    model = regressor(dropout=0.3)
    data = tiny_task(40)
    history = fit(model, data, sc.losses.mse, Adam(model, lr=0.01), epochs=2, batch_size=8,
                  rng=rng, progress=False)  # fmt: skip
    return history, model.state_dict()


def test_fit_is_deterministic_given_rng() -> None:
    first, params = run(seed=0, rng=5)
    again, params_again = run(seed=0, rng=5)
    assert first.step_loss == again.step_loss
    for name, p in params.items():
        np.testing.assert_array_equal(params_again[name], p, err_msg=name)
    other, _ = run(seed=0, rng=6)  # another shuffle and other dropout masks
    assert other.step_loss != first.step_loss


def test_clip_records_norms_and_bounds_the_update() -> None:
    model = regressor()
    history = fit(model, tiny_task(32), sc.losses.mse, SGD(model, lr=0.1), epochs=1,
                  batch_size=8, clip=1e-3, progress=False)  # fmt: skip
    assert len(history.grad_norm) == history.steps == 4
    assert all(math.isfinite(g) and g > 1e-3 for g in history.grad_norm)


def test_per_timestep_targets_are_batched_on_axis_1() -> None:
    data = copy.copy_task(12, length=2, delay=3, num_symbols=3, rng=0)
    model = LSTM(5, 8) >> Linear(8, 5)
    assert data.inputs.shape == (7, 12, 5) and data.targets.shape == (7, 12)
    history = fit(model, data, sc.losses.cross_entropy, Adam(model, lr=0.05), epochs=3,
                  batch_size=5, progress=False)  # fmt: skip
    assert history.sequences_seen == 36
    assert history.epoch_loss[-1] < history.epoch_loss[0]


def test_batch_first_inputs_are_batched_on_axis_0() -> None:
    model = LSTM(2, 4, batch_first=True) >> Linear(4, 3)
    x = np.random.default_rng(0).standard_normal((10, 5, 2)).astype(np.float32)  # [B, T, F]
    y = np.random.default_rng(1).integers(0, 3, size=(10, 5))  # [B, T]
    history = fit(model, (x, y), sc.losses.cross_entropy, SGD(model, lr=0.1), batch_size=4,
                  progress=False)  # fmt: skip
    assert history.steps == 3 and history.sequences_seen == 10


def test_on_epoch_can_stop_training() -> None:
    model = regressor()
    seen: list[int] = []

    def on_epoch(epoch: int, history: History) -> bool:
        seen.append(epoch)
        assert history.epochs == epoch
        return epoch == 2

    history = fit(model, tiny_task(16), sc.losses.mse, SGD(model, lr=0.1), epochs=5,
                  progress=False, on_epoch=on_epoch)  # fmt: skip
    assert seen == [1, 2] and history.epochs == 2


def test_progress_names_the_epoch(capsys: pytest.CaptureFixture[str]) -> None:
    model = regressor()
    fit(model, tiny_task(16), sc.losses.mse, SGD(model, lr=0.1), epochs=2, progress=True)
    assert "Epoch 2/2 - loss: " in capsys.readouterr().out  # not a terminal: lines, no bar


# --- errors -------------------------------------------------------------------------------------


def test_nan_loss_stops_naming_epoch_and_step() -> None:
    model = regressor()
    data = tiny_task(40)
    x = data.inputs.copy()
    bad_example = 17
    x[2, bad_example, 0] = np.nan
    position = int(np.flatnonzero(np.random.default_rng(3).permutation(40) == bad_example)[0])
    step = position // 8 + 1  # fit's first draw from rng=3 is the epoch's shuffle
    with pytest.raises(TrainingError, match=rf"the loss is nan at epoch 1, step {step} \(of 5\)"):
        fit(model, (x, data.targets), sc.losses.mse, SGD(model, lr=0.1), batch_size=8, rng=3,
            progress=False)  # fmt: skip

    before = model.state_dict()
    with pytest.raises(TrainingError) as info:
        fit(model, (x, data.targets), sc.losses.mse, SGD(model, lr=0.1), batch_size=40,
            progress=False)  # fmt: skip
    assert "the loss is nan at epoch 1, step 1 (of 1)" in str(info.value)
    assert info.value.history.steps == 0 and info.value.history.sequences_seen == 0
    for name, p in model.named_parameters().items():
        np.testing.assert_array_equal(p, before[name], err_msg=name)


def test_infinite_gradient_stops_before_the_update() -> None:
    model = regressor()
    data = tiny_task(8)
    x = data.inputs.copy()
    x[0, :, 0] = np.inf  # saturated gates: the loss stays finite, the gradients do not
    before = model.state_dict()
    with pytest.raises(
        TrainingError,
        match=r"the gradient of 'lstm\.weight_ih_l0' is not finite \(the loss is 0\.\d+\) at "
        r"epoch 1, step 1 \(of 1\); training stopped before this step updated the parameters",
    ):
        fit(model, (x, data.targets), sc.losses.mse, SGD(model, lr=0.1), progress=False)
    for name, p in model.named_parameters().items():
        np.testing.assert_array_equal(p, before[name], err_msg=name)


def test_empty_data() -> None:
    model = regressor()
    x, y = np.zeros((6, 0, 2), np.float32), np.zeros((0, 1), np.float32)
    with pytest.raises(sc.SpecError, match=r"fit got no training examples \(inputs of shape"):
        fit(model, (x, y), sc.losses.mse, SGD(model, lr=0.1), progress=False)


def test_mismatched_sizes() -> None:
    model = regressor()
    x, y = np.zeros((6, 10, 2), np.float32), np.zeros((9, 1), np.float32)
    with pytest.raises(
        sc.ShapeError,
        match=r"inputs hold 10 examples on axis 1 \(shape \[6, 10, 2\]\) but targets hold 9 on "
        r"axis 0 \(shape \[9, 1\]\)",
    ):
        fit(model, (x, y), sc.losses.mse, SGD(model, lr=0.1), progress=False)


def test_lr_must_be_positive() -> None:
    model = regressor()
    with pytest.raises(sc.SpecError, match=r"SGD\.lr must be > 0 and finite, got 0"):
        SGD(model, lr=0)
    with pytest.raises(sc.SpecError, match=r"Adam\.lr must be > 0 and finite, got -0\.001"):
        Adam(model, lr=-1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, r"fit\.epochs must be a positive int, got 0"),
        ({"batch_size": 0}, r"fit\.batch_size must be a positive int, got 0"),
        ({"batch_size": 2.5}, r"fit\.batch_size must be a positive int, got 2.5"),
        ({"clip": 0.0}, r"fit\.clip must be > 0"),
    ],
)
def test_bad_fit_arguments(kwargs: dict[str, float], match: str) -> None:
    model = regressor()
    with pytest.raises(sc.SpecError, match=match):
        fit(model, tiny_task(4), sc.losses.mse, SGD(model, lr=0.1), progress=False, **kwargs)  # type: ignore[arg-type]


def test_bad_data_container() -> None:
    model = regressor()
    data = tiny_task(4)
    with pytest.raises(TypeError, match=r"data must be a pair \(inputs, targets\)"):
        fit(model, (data.inputs,), sc.losses.mse, SGD(model, lr=0.1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="targets must be a numpy array, got list"):
        fit(model, (data.inputs, [1.0] * 4), sc.losses.mse, SGD(model, lr=0.1))  # type: ignore[arg-type]


def test_stale_optimizer_is_refused() -> None:
    model = regressor()
    opt = SGD(model.named_parameters(), lr=0.1)  # a dict of the float32 arrays
    model.to(np.float64)
    data = tiny_task(4)
    with pytest.raises(sc.SpecError, match="does not hold the model's current parameter arrays"):
        fit(model, (data.inputs.astype(np.float64), data.targets.astype(np.float64)),
            sc.losses.mse, opt, progress=False)  # fmt: skip


# --- evaluate and accuracy ---------------------------------------------------------------------


def test_evaluate_is_the_inference_loss() -> None:
    model = regressor(dropout=0.5)
    data = tiny_task(20)
    value = evaluate(model, data.inputs, data.targets, sc.losses.mse)
    assert isinstance(value, float)
    assert value == float(sc.losses.mse(model(data.inputs), data.targets))
    assert value == evaluate(model, data.inputs, data.targets, sc.losses.mse)  # no dropout


def test_accuracy() -> None:
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 5.0, 0.0], [0.0, 0.0, 0.0]])
    labels = np.array([0, 2, 0, 0])
    assert accuracy(logits, labels) == 0.75  # ties go to the first class
    assert accuracy(logits, np.array([0, 2, -100, 1]), ignore_index=-100) == pytest.approx(2 / 3)
    per_step = np.stack([logits, logits])  # [T, B, C] with labels [T, B]
    assert accuracy(per_step, np.stack([labels, labels])) == 0.75
    with pytest.raises(sc.ShapeError, match=r"logits \[4, 3\] need labels of shape \[4\]"):
        accuracy(logits, labels[:3])
    with pytest.raises(TypeError, match="labels must be integer class indices"):
        accuracy(logits, labels.astype(float))
    with pytest.raises(sc.SpecError, match="no labels"):
        accuracy(logits, np.full(4, -1), ignore_index=-1)


# --- generate -----------------------------------------------------------------------------------


def language_model() -> sc.SpecChain:
    return Embedding(7, 4) >> LSTM(4, 8) >> Dropout(0.5) >> Linear(8, 7)


def test_generate_shapes_and_prompt() -> None:
    model = language_model()
    prompt = np.array([[0, 1], [2, 3], [4, 5]], dtype=np.int64)
    out = generate(model, prompt, 5, rng=0)
    assert out.shape == (8, 2) and out.dtype == np.int64
    np.testing.assert_array_equal(out[:3], prompt)
    assert ((out >= 0) & (out < 7)).all()
    np.testing.assert_array_equal(generate(model, prompt, 0, rng=0), prompt)
    single = generate(model, prompt[:, 0], 4, rng=0)  # unbatched [T]
    assert single.shape == (7,)


def test_generate_is_deterministic_given_rng() -> None:
    model = language_model()
    prompt = np.zeros((2, 6), dtype=np.int64)
    first = generate(model, prompt, 10, rng=1)
    np.testing.assert_array_equal(generate(model, prompt, 10, rng=1), first)
    assert not np.array_equal(generate(model, prompt, 10, rng=2), first)


def test_generate_temperature_zero_is_greedy() -> None:
    model = language_model()
    prompt = np.array([[1, 2, 3]], dtype=np.int64).T  # [3, 1]
    out = generate(model, prompt, 6, temperature=0.0, rng=0)
    np.testing.assert_array_equal(generate(model, prompt, 6, temperature=0, rng=99), out)
    seq = prompt
    for _ in range(6):  # greedy decoding by hand, in inference mode (dropout off)
        nxt = model(seq)[-1].argmax(axis=-1)
        seq = np.concatenate([seq, nxt[None]], axis=0)
    np.testing.assert_array_equal(out, seq)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_generate_samples_the_softmax(temperature: float) -> None:
    model = Embedding(3, 3) >> Linear(3, 4)
    model.to(np.float64)
    params = model.named_parameters()
    params["embedding.weight"][...] = np.eye(3)
    params["linear.bias"][...] = 0.0
    params["linear.weight"][...] = np.array([[1.0, 0, 0], [0.0, 0, 0], [2.0, 0, 0], [-1.0, 0, 0]])
    prompt = np.zeros((1, 4000), dtype=np.int64)  # logits of token 0: [1, 0, 2, -1]
    out = generate(model, prompt, 1, temperature=temperature, rng=0)
    freq = np.bincount(out[1], minlength=4) / 4000
    z = np.array([1.0, 0.0, 2.0, -1.0]) / temperature
    expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(freq, expected, atol=0.03)


def test_generate_errors() -> None:
    model = language_model()
    prompt = np.zeros((2, 1), dtype=np.int64)
    with pytest.raises(sc.SpecError, match=r"temperature must be >= 0 and finite, got -0\.5"):
        generate(model, prompt, 3, temperature=-0.5)
    with pytest.raises(TypeError, match="prompt must be an integer numpy array"):
        generate(model, prompt.astype(np.float32), 3)
    with pytest.raises(sc.ShapeError, match=r"T >= 1, got \[0, 1\]"):
        generate(model, np.zeros((0, 1), np.int64), 3)
    with pytest.raises(sc.SpecError, match="n must be an int >= 0, got -1"):
        generate(model, prompt, -1)
