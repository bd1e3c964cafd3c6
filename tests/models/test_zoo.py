"""The model zoo: finite differences of every model (and of the attention spec under a loss), and
torch autograd parity of every model against a hand-written twin (``tests/models/twins.py``):
outputs, the input gradient and every parameter gradient, in float64 and float32."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pytest
import torch

import specchain as sc
from specchain.models import zoo
from tests.helpers import TORCH_DTYPES, assert_close, torch_from
from tests.models.twins import TWINS

STEPS, BATCH = 4, 2

Maker = Callable[[np.random.Generator, Any], Any]


def _floats(size: int) -> Maker:
    def make(rng: np.random.Generator, dtype: Any) -> Any:
        return rng.standard_normal((STEPS, BATCH, size)).astype(dtype)

    return make


def _tokens(vocab: int) -> Maker:
    def make(rng: np.random.Generator, dtype: Any) -> Any:
        return rng.integers(0, vocab, size=(STEPS, BATCH))

    return make


def _source_and_target(size: int) -> Maker:
    def make(rng: np.random.Generator, dtype: Any) -> Any:
        source = rng.standard_normal((STEPS + 2, BATCH, size)).astype(dtype)
        return source, rng.standard_normal((STEPS, BATCH, size)).astype(dtype)

    return make


@attrs.frozen
class Case:
    """A zoo model at small sizes: ``zoo.<builder>(*args, **kwargs)`` and an input maker."""

    id: str
    builder: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    make_input: Maker
    dropout: bool = False  # has dropout: compared in eval mode, and with p = 0 in train mode

    def build(self, **overrides: Any) -> sc.SpecChain:
        model: sc.SpecChain = getattr(zoo, self.builder)(*self.args, **{**self.kwargs, **overrides})
        return model

    def twin(self, **overrides: Any) -> torch.nn.Module:
        return TWINS[self.builder](*self.args, **{**self.kwargs, **overrides})


CASES = [
    Case("seq2seq", "seq2seq", (3, 4, 2), {}, _floats(3)),
    Case("classifier", "classifier", (3, 4, 3), {}, _floats(3)),
    Case("two_layer", "two_layer", (3, 4, 2), {}, _floats(3)),
    Case("stacked", "stacked", (3, 4, 2), {"num_layers": 3, "dropout": 0.3}, _floats(3), True),
    Case(
        "language_model",
        "language_model",
        (7, 4),
        {"num_layers": 2, "dropout": 0.25},
        _tokens(7),
        True,
    ),
    Case(
        "language_model_one_hot",
        "language_model",
        (7, 4),
        {"num_layers": 2, "dropout": 0.25, "one_hot": True},
        _tokens(7),
        True,
    ),
    Case("bilstm", "bilstm", (3, 4, 2), {}, _floats(3)),
    Case("attention_seq2seq", "attention_seq2seq", (3, 4, 2), {}, _source_and_target(3)),
]


def _leaves(value: Any) -> tuple[Any, ...]:
    return value if isinstance(value, tuple) else (value,)


def check_against_twin(
    model: sc.SpecChain, twin: torch.nn.Module, x: Any, train: bool, rng: np.random.Generator
) -> None:
    """One forward and backward of ours and of the twin under torch autograd, with the same
    weights (loaded by exact names, ``strict=True``) and the same cotangent; compare everything."""
    dtype = model.dtype
    assert dtype is not None
    twin.to(TORCH_DTYPES[dtype])
    state = {k: torch.from_numpy(v) for k, v in model.state_dict().items()}
    twin.load_state_dict(state, strict=True)
    twin.train(train)

    y, tape = model.forward(x, train=train, rng=0)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, grads = model.backward(tape, dy)

    inputs = [
        torch_from(a, requires_grad=True) if a.dtype.kind == "f" else torch.from_numpy(a)
        for a in _leaves(x)
    ]
    yt = twin(*inputs)
    (yt * torch_from(dy)).sum().backward()

    assert_close(y, yt, "output")
    for i, (ours, theirs) in enumerate(zip(_leaves(dx), inputs, strict=True)):
        if theirs.requires_grad:
            assert_close(ours, theirs.grad, f"input {i} gradient")
        else:
            assert ours is None, "integer inputs get no gradient"
    named = dict(twin.named_parameters())
    assert set(grads) == set(named)
    for name, p in named.items():
        expected = p.grad if p.grad is not None else torch.zeros_like(p)
        assert_close(grads[name], expected, name)


def _parity_params() -> list[Any]:
    params = []
    for case in CASES:
        modes = ["train", "eval"] if case.dropout else ["train"]
        for mode in modes:
            for dtype, label in ((np.float64, "f64"), (np.float32, "f32")):
                params.append(pytest.param(case, mode, dtype, id=f"{case.id}-{mode}-{label}"))
    return params


@pytest.mark.parametrize(("case", "mode", "dtype"), _parity_params())
def test_matches_twin(case: Case, mode: str, dtype: type, rng: np.random.Generator) -> None:
    """Train mode compares dropout models with p = 0 (torch's masks are not ours to replay);
    eval mode compares them with their dropout, which is then the identity on both sides."""
    overrides = {"dropout": 0.0} if case.dropout and mode == "train" else {}
    model = case.build(**overrides).to(dtype)
    x = case.make_input(rng, dtype)
    check_against_twin(model, case.twin(**overrides), x, mode == "train", rng)


# The ``ZOO`` entries' builder arguments (zoo.py); a change there fails the strict state_dict load.
ZOO_ARGS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "seq2seq": ((8, 32, 4), {}),
    "classifier": ((8, 32, 3), {}),
    "two_layer": ((8, 32, 4), {}),
    "stacked": ((8, 32, 4), {"num_layers": 3, "dropout": 0.1}),
    "language_model": ((50, 64), {"num_layers": 2, "dropout": 0.2}),
    "bilstm": ((8, 16, 4), {}),
    "attention_seq2seq": ((8, 16, 4), {}),
}


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_registered_models_match_twins(name: str, rng: np.random.Generator) -> None:
    """Every ``ZOO`` entry at its default sizes, on its own example input, in eval mode."""
    assert name in ZOO_ARGS, f"zoo model {name!r} has no twin arguments in this test"
    entry = zoo.ZOO[name]
    args, kwargs = ZOO_ARGS[name]
    model = entry.build().to(np.float64)
    x = entry.example_input(rng, steps=4, batch=2, dtype=np.float64)
    check_against_twin(model, TWINS[name](*args, **kwargs), x, False, rng)


def test_every_zoo_builder_has_a_twin() -> None:
    builders = {"seq2seq", "classifier", "two_layer", "stacked", "language_model", "bilstm"}
    builders.add("attention_seq2seq")
    assert set(TWINS) == builders
    assert set(zoo.ZOO) <= set(TWINS)


# --- finite differences (float64) -------------------------------------------------------------

SMALL = [
    Case("seq2seq", "seq2seq", (2, 3, 2), {}, _floats(2)),
    Case("classifier", "classifier", (2, 3, 3), {}, _floats(2)),
    Case("two_layer", "two_layer", (2, 3, 2), {}, _floats(2)),
    Case("stacked", "stacked", (2, 3, 2), {"num_layers": 2, "dropout": 0.3}, _floats(2), True),
    Case(
        "language_model",
        "language_model",
        (5, 3),
        {"num_layers": 2, "dropout": 0.25},
        _tokens(5),
        True,
    ),
    Case(
        "language_model_one_hot",
        "language_model",
        (5, 3),
        {"num_layers": 2, "dropout": 0.25, "one_hot": True},
        _tokens(5),
        True,
    ),
    Case("bilstm", "bilstm", (2, 3, 2), {}, _floats(2)),
    Case("attention_seq2seq", "attention_seq2seq", (2, 3, 2), {}, _source_and_target(2)),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in SMALL])
def test_gradcheck(case: Case, rng: np.random.Generator) -> None:
    """Central differences of every parameter and float input, in training mode: dropout masks
    are drawn again from the same seed at every evaluation, so the function is fixed."""
    model = case.build().to(np.float64)
    report = sc.gradcheck(model, case.make_input(rng, np.float64), train=True)
    expected = set(model.named_parameters())
    floats = [a for a in _leaves(case.make_input(rng, np.float64)) if a.dtype.kind == "f"]
    assert expected | ({"input"} if floats else set()) <= set(report.errors)
    assert report.passed(1e-7), str(report)


def test_attention_gradcheck_with_loss(rng: np.random.Generator) -> None:
    """The attention spec under ``mse`` against a target: both inputs and every weight."""
    model = zoo.attention_seq2seq(2, 3, 2).to(np.float64)
    x = _source_and_target(2)(rng, np.float64)
    target = rng.standard_normal((STEPS, BATCH, 2))
    report = sc.gradcheck(model, x, target, loss=sc.losses.mse)
    assert {"input", "input[1]", *model.named_parameters()} <= set(report.errors)
    assert report.passed(1e-7), str(report)


def test_attention_decoder_state_scores_get_zero_gradient(rng: np.random.Generator) -> None:
    """The docstring's note: the decoder-state half of ``attention_weights`` cancels in the
    softmax, so its gradient is zero (to rounding), while the encoder half's is not."""
    model = zoo.attention_seq2seq(2, 3, 2).to(np.float64)
    x = _source_and_target(2)(rng, np.float64)
    y, tape = model.forward(x)
    _, grads = model.backward(tape, rng.standard_normal(y.shape))
    w = grads["attention.attention_weights.weight"]
    assert np.max(np.abs(w[:, :3])) < 1e-12
    assert np.max(np.abs(w[:, 3:])) > 1e-6
    assert abs(grads["attention.attention_weights.bias"][0]) < 1e-12


def test_an_unknown_cell_is_named_with_the_choices() -> None:
    with pytest.raises(sc.SpecError, match=r"^cell must be one of 'lstm'.*, got 'lsmt'$"):
        zoo.classifier(8, 16, 3, cell="lsmt")
