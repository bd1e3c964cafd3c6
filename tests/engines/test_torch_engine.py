"""The torch engine: the same steps as the numpy engine (float64, no dropout) for every zoo model,
with and without lengths; SGD with momentum and clipping; cross-entropy over a padded output;
the trained weights and optimizer state written back; refusals that name the fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import specchain as sc
from specchain.clip import clip_grad_norm
from specchain.engines.torch_engine import TorchEngine
from specchain.losses import Loss, cross_entropy, mse
from specchain.models import zoo
from specchain.optim import SGD, Adam, Optimizer
from specchain.padded import Padded
from specchain.types import SpecError
from tests.helpers import one_torch_thread

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

STEPS = 20
BUILDERS: dict[str, Callable[..., sc.SpecChain]] = {
    **{name: entry.build for name, entry in zoo.ZOO.items()},
    # the zoo's defaults have dropout between layers; equal runs need dropout 0
    "stacked": lambda lengths=False: zoo.stacked(8, 32, 4, num_layers=3, lengths=lengths),
    "language_model": lambda lengths=False: zoo.language_model(
        50, 64, num_layers=2, lengths=lengths
    ),
}


def _pair(build: Callable[..., sc.SpecChain], lengths: bool) -> tuple[sc.SpecChain, sc.SpecChain]:
    ours = build(lengths=lengths).to(np.float64)
    theirs = build(lengths=lengths).to(np.float64)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def _numpy_steps(
    model: sc.SpecChain, optimizer: Optimizer, loss: Loss, x: Any, t: Any, clip: float | None
) -> list[float]:
    values = []
    for _ in range(STEPS):
        y, tape = model.forward(x, train=True, rng=0)
        value, dy = loss.value_and_grad(y, t)
        _, grads = model.backward(tape, dy)
        if clip is not None:
            clip_grad_norm(grads, clip)
        optimizer.step(grads)
        values.append(float(value))
    return values


def _assert_same_run(
    ours: sc.SpecChain,
    theirs: sc.SpecChain,
    losses: tuple[list[float], list[float]],
    optimizers: tuple[Optimizer, Optimizer],
) -> None:
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-9)
    mine = ours.named_parameters()
    for key, value in theirs.named_parameters().items():
        np.testing.assert_allclose(value, mine[key], rtol=1e-9, atol=1e-12, err_msg=key)
    first, second = (opt.state_dict()["state"] for opt in optimizers)
    assert first.keys() == second.keys()
    for key, buffers in first.items():
        assert buffers.keys() == second[key].keys(), key
        for name, value in buffers.items():
            np.testing.assert_allclose(second[key][name], value, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_twenty_adam_steps_equal_the_numpy_engine(name: str, lengths: bool) -> None:
    ours, theirs = _pair(BUILDERS[name], lengths)
    rng = np.random.default_rng(0)
    x = zoo.ZOO[name].example_input(rng, 5, 4, np.float64, lengths=lengths)
    y = ours(x)
    target = rng.standard_normal((y.data if isinstance(y, Padded) else y).shape)
    adam_ours, adam_theirs = Adam(ours, lr=1e-2), Adam(theirs, lr=1e-2)
    expected = _numpy_steps(ours, adam_ours, mse, x, target, None)
    engine = TorchEngine(theirs, mse, adam_theirs)
    got = [engine.step(x, target)[0] for _ in range(STEPS)]
    engine.finish()
    _assert_same_run(ours, theirs, (expected, got), (adam_ours, adam_theirs))


def test_sgd_with_nesterov_momentum_and_clipping() -> None:
    ours, theirs = _pair(BUILDERS["classifier"], False)
    rng = np.random.default_rng(1)
    x, labels = rng.standard_normal((6, 5, 8)), rng.integers(0, 3, 5)
    options: dict[str, Any] = {"lr": 0.5, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}
    sgd_ours, sgd_theirs = SGD(ours, **options), SGD(theirs, **options)
    expected = _numpy_steps(ours, sgd_ours, cross_entropy, x, labels, clip=0.5)
    engine = TorchEngine(theirs, cross_entropy, sgd_theirs, clip=0.5)
    results = [engine.step(x, labels) for _ in range(STEPS)]
    engine.finish()
    assert all(norm is not None and norm > 0 for _, norm in results)
    _assert_same_run(ours, theirs, (expected, [v for v, _ in results]), (sgd_ours, sgd_theirs))


def test_cross_entropy_leaves_the_padding_of_a_padded_output_out() -> None:
    ours, theirs = _pair(BUILDERS["language_model"], True)
    rng = np.random.default_rng(2)
    tokens, lens = zoo.ZOO["language_model"].example_input(rng, 6, 4, np.float64, lengths=True)
    targets = rng.integers(0, 50, tokens.shape)
    targets[tokens.shape[0] - 1, np.argmin(lens)] = 999  # out of range, but on padding
    adam_ours, adam_theirs = Adam(ours, lr=1e-2), Adam(theirs, lr=1e-2)
    expected = _numpy_steps(ours, adam_ours, cross_entropy, (tokens, lens), targets, None)
    engine = TorchEngine(theirs, cross_entropy, adam_theirs)
    got = [engine.step((tokens, lens), targets)[0] for _ in range(STEPS)]
    engine.finish()
    _assert_same_run(ours, theirs, (expected, got), (adam_ours, adam_theirs))


def test_training_continues_from_the_optimizer_state() -> None:
    """Steps on numpy, then on torch, then on numpy again equal steps on numpy throughout."""
    ours, theirs = _pair(BUILDERS["two_layer"], False)
    rng = np.random.default_rng(3)
    x, target = rng.standard_normal((5, 3, 8)), rng.standard_normal((5, 3, 4))
    adam_ours, adam_theirs = Adam(ours, lr=1e-2), Adam(theirs, lr=1e-2)
    expected = _numpy_steps(ours, adam_ours, mse, x, target, None)
    expected += _numpy_steps(ours, adam_ours, mse, x, target, None)
    got = _numpy_steps(theirs, adam_theirs, mse, x, target, None)
    engine = TorchEngine(theirs, mse, adam_theirs)
    got += [engine.step(x, target)[0] for _ in range(STEPS)]
    engine.finish()
    _assert_same_run(ours, theirs, (expected, got), (adam_ours, adam_theirs))
    steps = {buffers["step"] for buffers in adam_theirs.state_dict()["state"].values()}
    assert steps == {2 * STEPS}


def test_refusals_name_the_fix() -> None:
    model = BUILDERS["classifier"]().to(np.float64)
    with pytest.raises(SpecError, match=r"reduction='none'.*use reduction='mean'"):
        TorchEngine(model, sc.losses.MSELoss(reduction="none"), Adam(model)).step(
            np.zeros((2, 1, 8)), np.zeros((1, 3))
        )

    class Plain(Optimizer):
        hyperparameters = ()

        def _validate(self) -> None:
            return None

    with pytest.raises(SpecError, match=r"SGD or Adam from specchain.optim.*engine='numpy'"):
        TorchEngine(model, mse, Plain(model))


def test_a_gradient_that_is_not_finite_is_named_and_nothing_updates() -> None:
    model = BUILDERS["classifier"]().to(np.float64)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    engine = TorchEngine(model, cross_entropy, Adam(model))
    # a finite loss whose backward turns one gradient infinite (as an overflow would)
    name = list(engine.params)[-1]
    engine.params[name].register_hook(lambda grad: grad * float("inf"))
    x, y = np.ones((4, 3, 8)), np.array([0, 1, 2])
    with pytest.raises(FloatingPointError, match=rf"gradient of '{name}' is not finite \(the loss"):
        engine.step(x, y)
    engine.finish()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    clean = TorchEngine(model, cross_entropy, Adam(model))  # finite gradients pass the check
    assert np.isfinite(clean.step(x, y)[0])


def test_dropout_draws_from_the_engines_own_stream_and_leaves_torchs_alone() -> None:
    torch = pytest.importorskip("torch")
    from specchain.train import fit

    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((5, 12, 8)), rng.standard_normal((5, 12, 4))

    def losses(seed: int) -> list[float]:
        sc.seed(0)  # the same initial weights each time
        model = zoo.stacked(8, 16, 4, num_layers=2, dropout=0.5).to(np.float64)
        opt = Adam(model, lr=1e-2)
        history = fit(model, (x, t), mse, opt, 2, 4, rng=seed, progress=False, engine="torch")
        return history.step_loss

    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    first = losses(0)
    assert torch.equal(torch.rand(4), expected)  # the caller's generator was left where it was
    assert losses(0) == first  # the same rng, the same dropout masks
    assert losses(1) != first


def test_a_seeded_engine_draws_the_same_masks_whatever_torchs_state() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((5, 6, 8)), rng.standard_normal((5, 6, 4))
    values = []
    for draws in (1, 1000):
        sc.seed(0)
        model = zoo.stacked(8, 16, 4, num_layers=2, dropout=0.5).to(np.float64)
        engine = TorchEngine(model, mse, Adam(model))
        torch.rand(draws)  # the caller's own use of torch's generator
        engine.seed(0)
        values.append(engine.step(x, t)[0])
        engine.finish()
    assert values[0] == values[1]
