"""``SGD``, ``Adam`` and ``clip_grad_norm`` against ``torch.optim`` / ``torch.nn.utils``: a small
LSTM classifier and its hand-written torch twin take 20 steps side by side in float64 and must
agree after every step; state dicts resume runs exactly; bad hyper-parameters have pinned
messages."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.models import zoo
from specchain.modules import LSTM, LastStep, Linear
from specchain.optim import SGD, Adam, Optimizer, clip_grad_norm
from specchain.state import StateDictError
from tests.helpers import ErrorInput, check_error_input, error_params, load_torch, torch_from

STEPS = 20
RTOL, ATOL = 1e-9, 1e-12


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Tiny tensors: threads only add overhead (and contention on a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_model() -> sc.SpecChain:
    """The zoo classifier (``lstm`` -> ``last_step`` -> ``head``), small, in float64."""
    return zoo.classifier(3, 5, 2).to(np.float64)


class TorchTwin(torch.nn.Module):
    """``zoo.classifier(3, 5, 2)`` written by hand in torch."""

    def __init__(self, model: sc.SpecChain) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 5, dtype=torch.float64)
        self.head = torch.nn.Linear(5, 2, dtype=torch.float64)
        params = model.named_parameters()
        load_torch(self.lstm, params, "lstm.")
        load_torch(self.head, params, "head.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[-1])


def batches(loss_name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    out = []
    for _ in range(STEPS):
        x = rng.standard_normal((4, 6, 3))
        if loss_name == "mse":
            y: np.ndarray = rng.standard_normal((6, 2))
        else:
            y = rng.integers(0, 2, size=6)
        out.append((x, y))
    return out


def torch_loss(loss_name: str, logits: torch.Tensor, y: np.ndarray) -> torch.Tensor:
    if loss_name == "mse":
        return torch.nn.functional.mse_loss(logits, torch_from(y))
    return torch.nn.functional.cross_entropy(logits, torch_from(y))


OURS: dict[str, Callable[..., Optimizer]] = {"SGD": SGD, "Adam": Adam}
THEIRS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "SGD": torch.optim.SGD,
    "Adam": torch.optim.Adam,
}

CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("SGD", {"lr": 0.1}, "cross_entropy"),
    ("SGD", {"lr": 0.1, "momentum": 0.9}, "cross_entropy"),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}, "cross_entropy"),
    ("SGD", {"lr": 0.1, "weight_decay": 0.05}, "mse"),
    ("SGD", {"lr": 0.1, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01}, "mse"),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}, "cross_entropy"),
    ("Adam", {"lr": 0.01}, "cross_entropy"),
    ("Adam", {"lr": 0.01}, "mse"),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}, "mse"),
    ("Adam", {"lr": 0.01, "amsgrad": True}, "cross_entropy"),
    ("Adam", {"lr": 0.01, "amsgrad": True, "maximize": True, "weight_decay": 0.01}, "mse"),
]


def config_id(config: tuple[str, dict[str, Any], str]) -> str:
    name, kwargs, loss_name = config
    return "-".join([name, loss_name, *(f"{k}={v}" for k, v in kwargs.items() if k != "lr")])


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_matches_torch_step_by_step(config: tuple[str, dict[str, Any], str]) -> None:
    name, kwargs, loss_name = config
    model = small_model()
    twin = TorchTwin(model)
    ours = OURS[name](model, **kwargs)
    theirs = THEIRS[name](twin.parameters(), foreach=False, **kwargs)
    loss = getattr(sc.losses, loss_name)
    torch_params = dict(twin.named_parameters())
    assert set(torch_params) == set(model.named_parameters())
    for step, (x, y) in enumerate(batches(loss_name), start=1):
        value, grads = model.value_and_grad(x, y, loss=loss)
        theirs.zero_grad()
        ref = torch_loss(loss_name, twin(torch_from(x)), y)
        ref.backward()
        np.testing.assert_allclose(value, ref.item(), rtol=RTOL, err_msg=f"loss, step {step}")
        ours.step(grads)
        theirs.step()
        for pname, p in model.named_parameters().items():
            np.testing.assert_allclose(
                p,
                torch_params[pname].detach().numpy(),
                rtol=RTOL,
                atol=ATOL,
                err_msg=f"{pname} after step {step}",
            )


def test_parameters_change_in_place_and_keep_dtype() -> None:
    model = LSTM(3, 5) >> LastStep() >> Linear(5, 2)  # float32
    before = {k: (p, p.copy()) for k, p in model.named_parameters().items()}
    x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype(np.float32)
    _, grads = model.value_and_grad(x, np.zeros(6, np.int64), loss=sc.losses.cross_entropy)
    for opt in (SGD(model.named_parameters(), lr=0.1, momentum=0.9), Adam(model, lr=0.1)):
        opt.step(grads)
    for name, p in model.named_parameters().items():
        live, old = before[name]
        assert p is live, f"{name} was replaced instead of updated in place"
        assert p.dtype == np.float32
        assert not np.array_equal(p, old), f"{name} did not change"


def test_optimizer_follows_model_to() -> None:
    model = LSTM(3, 5) >> LastStep() >> Linear(5, 2)
    opt = Adam(model, lr=0.01)
    x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype(np.float32)
    y = np.zeros(6, np.int64)
    opt.step(model.value_and_grad(x, y, loss=sc.losses.cross_entropy)[1])
    model.to(np.float64)
    before = model.state_dict()
    opt.step(model.value_and_grad(x.astype(np.float64), y, loss=sc.losses.cross_entropy)[1])
    for name, p in model.named_parameters().items():
        assert p.dtype == np.float64
        assert opt.state[name]["exp_avg"].dtype == np.float64
        assert not np.array_equal(p, before[name]), f"{name} was not updated after model.to"


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}), ("Adam", {"amsgrad": True})],
)
def test_state_dict_resumes_exactly(name: str, kwargs: dict[str, Any]) -> None:
    data = batches("cross_entropy")
    loss = sc.losses.cross_entropy
    model = small_model()
    opt = OURS[name](model, **kwargs)
    for x, y in data[:10]:
        opt.step(model.value_and_grad(x, y, loss=loss)[1])
    saved_model, saved_opt = model.state_dict(), opt.state_dict()
    for x, y in data[10:]:
        opt.step(model.value_and_grad(x, y, loss=loss)[1])

    resumed = small_model()
    resumed.load_state_dict(saved_model)
    other = OURS[name](resumed, lr=0.5)  # hyper-parameters come from the state dict
    other.load_state_dict(saved_opt)
    assert other.state_dict()["param_groups"] == saved_opt["param_groups"]
    for x, y in data[10:]:
        other.step(resumed.value_and_grad(x, y, loss=loss)[1])
    for pname, p in model.named_parameters().items():
        np.testing.assert_array_equal(resumed.named_parameters()[pname], p, err_msg=pname)


def test_state_dict_is_a_copy() -> None:
    model = small_model()
    opt = SGD(model, lr=0.1, momentum=0.9)
    x, y = batches("cross_entropy")[0]
    opt.step(model.value_and_grad(x, y, loss=sc.losses.cross_entropy)[1])
    sd = opt.state_dict()
    buf = sd["state"]["head.weight"]["momentum_buffer"]
    buf += 1.0
    assert not np.array_equal(opt.state["head.weight"]["momentum_buffer"], buf)
    assert sd["param_groups"][0]["params"] == list(model.named_parameters())


def test_load_state_dict_rejects_mismatches() -> None:
    model = small_model()
    opt = SGD(model, lr=0.1, momentum=0.9)
    x, y = batches("cross_entropy")[0]
    opt.step(model.value_and_grad(x, y, loss=sc.losses.cross_entropy)[1])
    sd = opt.state_dict()
    other = SGD(LSTM(3, 4).as_chain(), lr=0.1)
    with pytest.raises(StateDictError, match="are not this optimizer's"):
        other.load_state_dict(sd)
    bad = opt.state_dict()
    bad["state"]["head.weight"]["momentum_buffer"] = np.zeros((3, 3))
    with pytest.raises(StateDictError, match=r"head.weight.momentum_buffer: shape \[3, 3\]"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    bad["param_groups"][0]["lr"] = -1.0
    with pytest.raises(sc.SpecError, match=r"SGD\.lr must be > 0"):
        opt.load_state_dict(bad)
    assert opt.lr == 0.1, "a rejected state dict must not change the optimizer"
    with pytest.raises(StateDictError, match="expects"):
        opt.load_state_dict({"state": {}})


def test_step_checks_gradients() -> None:
    model = small_model()
    opt = SGD(model, lr=0.1)
    with pytest.raises(sc.SpecError, match=r"gradients for unknown parameters \['lstm.nope'\]"):
        opt.step({"lstm.nope": np.zeros(3)})
    with pytest.raises(sc.ShapeError, match=r"gradient of 'head.bias' has shape \[3\]"):
        opt.step({"head.bias": np.zeros(3)})
    before = model.state_dict()
    opt.step({"head.bias": np.ones(2)})  # a parameter without a gradient is left alone
    after = model.named_parameters()
    np.testing.assert_allclose(after["head.bias"], before["head.bias"] - 0.1, rtol=1e-15)
    np.testing.assert_array_equal(after["head.weight"], before["head.weight"])


def test_assigned_hyperparameters_are_checked_at_step() -> None:
    model = small_model()
    opt = Adam(model)
    opt.lr = 0.0
    with pytest.raises(sc.SpecError, match=r"Adam\.lr must be > 0 and finite, got 0\.0"):
        opt.step({})


# --- bad hyper-parameters -------------------------------------------------------------------


def _params() -> dict[str, np.ndarray]:
    return {"w": np.zeros(3)}


BAD_HYPERPARAMETERS = [
    ErrorInput(
        "sgd lr 0", lambda: SGD(_params(), lr=0), sc.SpecError, r"SGD\.lr must be > 0.*got 0"
    ),
    ErrorInput(
        "sgd lr negative", lambda: SGD(_params(), lr=-0.1), sc.SpecError, r"SGD\.lr .* got -0\.1"
    ),
    ErrorInput("sgd lr nan", lambda: SGD(_params(), lr=math.nan), sc.SpecError, "lr .* got nan"),
    ErrorInput("sgd lr inf", lambda: SGD(_params(), lr=math.inf), sc.SpecError, "lr .* got inf"),
    ErrorInput("sgd lr str", lambda: SGD(_params(), lr="0.1"), TypeError, "lr must be a number"),
    ErrorInput(
        "sgd momentum",
        lambda: SGD(_params(), lr=0.1, momentum=-0.5),
        sc.SpecError,
        r"SGD\.momentum must be >= 0 and finite, got -0\.5",
    ),
    ErrorInput(
        "sgd dampening",
        lambda: SGD(_params(), lr=0.1, dampening=-1),
        sc.SpecError,
        r"SGD\.dampening must be >= 0",
    ),
    ErrorInput(
        "sgd weight decay",
        lambda: SGD(_params(), lr=0.1, weight_decay=-1e-4),
        sc.SpecError,
        r"SGD\.weight_decay must be >= 0",
    ),
    ErrorInput(
        "nesterov without momentum",
        lambda: SGD(_params(), lr=0.1, nesterov=True),
        sc.SpecError,
        r"nesterov=True requires momentum > 0 and dampening = 0, got momentum=0\.0",
    ),
    ErrorInput(
        "nesterov with dampening",
        lambda: SGD(_params(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
        sc.SpecError,
        r"requires momentum > 0 and dampening = 0, got momentum=0\.9, dampening=0\.1",
    ),
    ErrorInput(
        "sgd nesterov not bool",
        lambda: SGD(_params(), lr=0.1, momentum=0.9, nesterov=1),  # type: ignore[arg-type]
        TypeError,
        r"SGD\.nesterov must be True or False",
    ),
    ErrorInput("adam lr 0", lambda: Adam(_params(), lr=0.0), sc.SpecError, r"Adam\.lr must be > 0"),
    ErrorInput(
        "adam beta1 = 1",
        lambda: Adam(_params(), betas=(1.0, 0.999)),
        sc.SpecError,
        r"Adam\.betas\[0\] must be in \[0, 1\), got 1\.0",
    ),
    ErrorInput(
        "adam beta2 negative",
        lambda: Adam(_params(), betas=(0.9, -0.1)),
        sc.SpecError,
        r"Adam\.betas\[1\] must be in \[0, 1\), got -0\.1",
    ),
    ErrorInput(
        "adam betas not a pair",
        lambda: Adam(_params(), betas=(0.9,)),  # type: ignore[arg-type]
        TypeError,
        r"Adam\.betas must be a pair",
    ),
    ErrorInput(
        "adam eps", lambda: Adam(_params(), eps=-1e-8), sc.SpecError, r"Adam\.eps must be >= 0"
    ),
    ErrorInput(
        "adam weight decay",
        lambda: Adam(_params(), weight_decay=-1),
        sc.SpecError,
        r"Adam\.weight_decay must be >= 0",
    ),
    ErrorInput("empty params", lambda: Adam({}), sc.SpecError, "Adam got an empty parameter list"),
    ErrorInput(
        "int parameter",
        lambda: SGD({"w": np.zeros(3, np.int64)}, lr=0.1),
        TypeError,
        re.escape("SGD.params['w'] must be a float numpy array, got int64 array"),
    ),
    ErrorInput(
        "not params",
        lambda: SGD([np.zeros(3)], lr=0.1),  # type: ignore[arg-type]
        TypeError,
        "SGD takes a model or its named_parameters",
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_HYPERPARAMETERS))
def test_bad_hyperparameters(case: ErrorInput) -> None:
    check_error_input(case)


# --- clip_grad_norm ---------------------------------------------------------------------------


def random_grads(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "a": rng.standard_normal((4, 3)),
        "b": rng.standard_normal(5) * 3.0,
        "c": rng.standard_normal((2, 2, 2)),
    }


def torch_clip(
    grads: dict[str, np.ndarray], max_norm: float, norm_type: float, error: bool = False
) -> tuple[float, dict[str, np.ndarray]]:
    params = []
    for g in grads.values():
        p = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        p.grad = torch_from(g)
        params.append(p)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type, error_if_nonfinite=error)
    clipped = {k: p.grad.numpy() for k, p in zip(grads, params, strict=True)}  # type: ignore[union-attr]
    return float(total), clipped


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type: float | str, max_norm: float) -> None:
    grads = random_grads()
    torch_norm = math.inf if norm_type == "inf" else float(norm_type)
    ref_total, ref_grads = torch_clip(grads, max_norm, torch_norm)
    total = clip_grad_norm(grads, max_norm, norm_type)
    np.testing.assert_allclose(total, ref_total, rtol=1e-12)
    for k, g in grads.items():
        np.testing.assert_allclose(g, ref_grads[k], rtol=1e-12, atol=1e-15, err_msg=k)
    if max_norm < ref_total:
        after = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
        if norm_type == 2.0:
            assert after == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_leaves_small_gradients_alone() -> None:
    grads = random_grads()
    before = {k: g.copy() for k, g in grads.items()}
    total = clip_grad_norm(grads, 1e6)
    assert total > 0
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])


def test_clip_grad_norm_nonfinite() -> None:
    grads = random_grads()
    grads["b"][1] = np.nan
    with pytest.raises(sc.SpecError, match="non-finite"):
        clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch_clip(random_grads() | {"b": grads["b"]}, 1.0, 2.0, error=True)
    total = clip_grad_norm(grads, 1.0)  # torch scales by the NaN norm: every gradient is NaN
    assert math.isnan(total)
    assert all(np.isnan(g).all() for g in grads.values())

    grads = random_grads()
    grads["a"][0, 0] = np.inf
    ref_total, ref_grads = torch_clip({k: g.copy() for k, g in grads.items()}, 1.0, 2.0)
    total = clip_grad_norm(grads, 1.0)
    assert total == ref_total == math.inf
    for k, g in grads.items():  # finite entries become 0, the inf one NaN, as in torch
        assert np.array_equal(np.isnan(g), np.isnan(ref_grads[k])), k
        np.testing.assert_array_equal(g[~np.isnan(g)], ref_grads[k][~np.isnan(g)], err_msg=k)


def test_clip_grad_norm_edge_cases() -> None:
    assert clip_grad_norm({}, 1.0) == 0.0
    grads = {"w": np.ones(4, np.float32)}
    total = clip_grad_norm(grads, 1.0)
    assert total == pytest.approx(2.0)
    assert grads["w"].dtype == np.float32
    np.testing.assert_allclose(grads["w"], 0.5, rtol=1e-5)
    with pytest.raises(sc.SpecError, match=r"max_norm must be >= 0, got -1\.0"):
        clip_grad_norm(grads, -1.0)
    with pytest.raises(sc.SpecError, match="norm_type must be a number > 0 or 'inf', got 0"):
        clip_grad_norm(grads, 1.0, norm_type=0)
    with pytest.raises(sc.SpecError, match="norm_type must be a number > 0 or 'inf'"):
        clip_grad_norm(grads, 1.0, norm_type="fro")
