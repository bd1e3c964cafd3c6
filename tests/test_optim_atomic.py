"""``Optimizer.step`` is all-or-nothing: one bad gradient (unknown name, wrong shape, wrong dtype,
NaN/inf with ``check_finite``) or an error while computing the update leaves every parameter and
every state buffer (momentum buffers, Adam's moments and step counters) bit-identical."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import specchain as sc
from specchain.models import zoo
from specchain.optim import SGD, Adam, Optimizer
from specchain.validate import SpecTypeError

CONFIGS: list[tuple[type[Optimizer], dict[str, Any]]] = [
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.1, "momentum": 0.9}),
    (SGD, {"lr": 0.1, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01}),
    (SGD, {"lr": 0.05, "momentum": 0.5, "nesterov": True, "maximize": True}),
    (Adam, {"lr": 0.01}),
    (Adam, {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    (Adam, {"lr": 0.01, "amsgrad": True, "maximize": True, "weight_decay": 0.01}),
]

# Each replaces or adds the *last* gradient of a good set, so that a step checking one gradient
# at a time would already have updated every other parameter (and Adam's step counters).
BAD: dict[str, tuple[Callable[[dict[str, Any]], None], type[Exception], str]] = {
    "unknown name": (
        lambda g: g.update({"head.nope": np.zeros(2)}),
        sc.SpecError,
        r"Opt\.step: gradients for unknown parameters \['head\.nope'\]; this optimizer updates",
    ),
    "wrong shape": (
        lambda g: g.update({"head.bias": np.zeros(3)}),
        sc.ShapeError,
        r"Opt\.step: gradient of 'head\.bias' has shape \[3\], the parameter has \[2\]; "
        "nothing was updated",
    ),
    "complex dtype": (
        lambda g: g.update({"head.bias": np.ones(2, np.complex128)}),
        SpecTypeError,
        r"Opt\.step: gradients must be real numeric arrays \(they are cast to their parameter's "
        r"dtype\), but 'head\.bias' is a complex128 array; nothing was updated",
    ),
    "string dtype": (
        lambda g: g.update({"head.bias": np.array(["1", "2"])}),
        SpecTypeError,
        r"but 'head\.bias' is a <U1 array",
    ),
    "ragged list": (
        lambda g: g.update({"head.bias": [[1.0], [1.0, 2.0]]}),
        SpecTypeError,
        r"but 'head\.bias' is a list numpy cannot make an array of",
    ),
    "nan": (
        lambda g: g["head.bias"].__setitem__(1, np.nan),
        sc.SpecError,
        r"Opt\.step: the gradient of 'head\.bias' is not finite: nan at index \[1\] \(1 of 2 "
        r"entries\); nothing was updated \(check_finite=True\)",
    ),
    "inf": (
        lambda g: g["head.bias"].__setitem__(0, -np.inf),
        sc.SpecError,
        r"the gradient of 'head\.bias' is not finite: -inf at index \[0\]",
    ),
}


def grads_for(model: sc.SpecChain, seed: int) -> dict[str, Any]:
    dtype = model.named_parameters()["head.bias"].dtype
    x = np.random.default_rng(seed).standard_normal((4, 6, 3)).astype(dtype)
    y = np.random.default_rng(seed + 1).integers(0, 2, size=6)
    _, grads = model.value_and_grad(x, y, loss=sc.losses.cross_entropy)
    return dict(grads)


def snapshot(model: sc.SpecChain, opt: Optimizer) -> tuple[dict[str, bytes], dict[str, Any]]:
    params = {name: p.tobytes() for name, p in model.named_parameters().items()}
    return params, copy.deepcopy(opt.state)


def assert_unchanged(
    before: tuple[dict[str, bytes], dict[str, Any]], model: sc.SpecChain, opt: Optimizer
) -> None:
    params, state = before
    for name, p in model.named_parameters().items():
        assert p.tobytes() == params[name], f"parameter {name} changed"
    assert opt.state.keys() == state.keys(), "state entries were added or removed"
    for name, buffers in state.items():
        assert opt.state[name].keys() == buffers.keys(), f"buffers of {name} changed"
        for key, value in buffers.items():
            now = opt.state[name][key]
            if isinstance(value, np.ndarray):
                assert now.dtype == value.dtype and now.tobytes() == value.tobytes(), (
                    f"{name}.{key} changed"
                )
            else:
                assert now == value, f"{name}.{key} changed: {value} -> {now}"


def config_id(config: tuple[type[Optimizer], dict[str, Any]]) -> str:
    cls, kwargs = config
    return "-".join([cls.__name__, *(f"{k}={v}" for k, v in kwargs.items() if k != "lr")])


@pytest.mark.parametrize("warm_steps", [0, 2], ids=["fresh", "warm"])
@pytest.mark.parametrize("bad", list(BAD), ids=list(BAD))
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_one_bad_gradient_changes_nothing(
    config: tuple[type[Optimizer], dict[str, Any]], bad: str, warm_steps: int
) -> None:
    cls, kwargs = config
    opt_class = type("Opt", (cls,), {})  # one name in the pinned messages for SGD and Adam
    model = zoo.classifier(3, 5, 2).to(np.float64)
    opt = opt_class(model, check_finite=True, **kwargs)
    for seed in range(warm_steps):
        opt.step(grads_for(model, seed))
    assert bool(opt.state) == (warm_steps > 0 and (cls is Adam or "momentum" in kwargs))
    before = snapshot(model, opt)
    spoil, error, message = BAD[bad]
    grads = grads_for(model, 10)
    spoil(grads)
    with pytest.raises(error, match=message):
        opt.step(grads)
    assert_unchanged(before, model, opt)
    opt.step(grads_for(model, 10))  # and the optimizer still works
    assert snapshot(model, opt)[0] != before[0]


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_an_error_while_computing_changes_nothing(cls: type[Optimizer]) -> None:
    """A finite gradient whose update overflows float32 (``lr * g`` for SGD, ``g * g`` for
    Adam): under ``np.errstate(over="raise")`` the step fails at the last parameter, after the
    checks and after every other parameter's update was computed; nothing is written."""
    model = zoo.classifier(3, 5, 2)  # float32
    opt = cls(model, lr=10.0, momentum=0.9) if cls is SGD else cls(model, lr=0.1)
    opt.step(grads_for(model, 0))
    before = snapshot(model, opt)
    grads = grads_for(model, 1)
    grads["head.bias"] = np.full(2, 3e38, np.float32)
    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow"):
        opt.step(grads)
    assert_unchanged(before, model, opt)


def test_every_bad_gradient_of_a_kind_is_listed() -> None:
    model = zoo.classifier(3, 5, 2)
    opt = SGD(model, lr=0.1)
    with pytest.raises(
        sc.SpecError,
        match=r"SGD\.step: gradients for unknown parameters \['lstm\.nope', 'hed\.bias'\] \(no "
        r"gradient for \['lstm\.weight_ih_l0', 'lstm\.weight_hh_l0', 'lstm\.bias_ih_l0', "
        r"'lstm\.bias_hh_l0', 'head\.weight', 'head\.bias'\]\)",
    ):
        opt.step({"lstm.nope": np.zeros(3), "hed.bias": np.zeros(2)})
    with pytest.raises(
        sc.ShapeError,
        match=r"gradient of 'head\.weight' has shape \[3\], the parameter has \[2, 5\]; "
        r"gradient of 'head\.bias' has shape \[\], the parameter has \[2\]; nothing was updated",
    ):
        opt.step({"head.weight": np.zeros(3), "head.bias": np.float32(0.0)})
    with pytest.raises(SpecTypeError, match=r"SGD\.step\.grads must be a dict"):
        opt.step([np.zeros(2)])  # type: ignore[arg-type]


def test_check_finite_names_the_first_bad_index_after_the_cast() -> None:
    model = zoo.classifier(3, 5, 2)  # float32: 1e300 becomes inf when cast
    opt = Adam(model, check_finite=True)
    grads = grads_for(model, 0)
    grads["head.weight"] = grads["head.weight"].astype(np.float64)
    grads["head.weight"][1, 3] = 1e300
    grads["head.weight"][1, 4] = np.nan
    message = r"Adam\.step: the gradient of 'head\.weight' is not finite: inf at index \[1, 3\] "
    with np.errstate(over="ignore"), pytest.raises(sc.SpecError, match=message + r"\(2 of 10"):
        opt.step(grads)
    assert opt.state == {}


def test_check_finite_is_off_by_default_as_in_torch() -> None:
    model = zoo.classifier(3, 5, 2)
    opt = SGD(model, lr=0.1)
    assert opt.check_finite is False
    grads = grads_for(model, 0)
    grads["head.bias"][0] = np.nan
    opt.step(grads)  # torch.optim.SGD applies a NaN gradient too
    bias = model.named_parameters()["head.bias"]
    assert np.isnan(bias[0]) and np.isfinite(bias[1])
    assert repr(SGD(model, lr=0.1, check_finite=True)).endswith("check_finite=True, params=6)")
    with pytest.raises(SpecTypeError, match=r"SGD\.check_finite must be True or False, got 1"):
        SGD(model, lr=0.1, check_finite=1)  # type: ignore[arg-type]
    opt.check_finite = "yes"  # type: ignore[assignment]
    with pytest.raises(SpecTypeError, match=r"SGD\.check_finite must be True or False"):
        opt.step({})


def test_castable_gradients_still_work() -> None:
    """As before: nested lists and integer arrays are cast to the parameter's dtype."""
    model = zoo.classifier(3, 5, 2)
    opt = SGD(model, lr=0.5)
    bias = model.named_parameters()["head.bias"]
    start = bias.copy()
    opt.step({"head.bias": [1.0, 2.0]})
    opt.step({"head.bias": np.array([2, 2])})
    np.testing.assert_allclose(bias, start - np.float32(0.5) * np.array([3, 4], np.float32))
    assert bias.dtype == np.float32
