"""Each helper module copied into generated files against its specchain spec, on random data:
outputs, input gradients and (for ``AttentionLSTM``) every parameter gradient."""

from __future__ import annotations

import ast
import inspect
from typing import Any

import numpy as np
import pytest
import torch

from specchain.exporters import pytorch
from specchain.exporters.pytorch import torch_helpers
from specchain.modules import (
    Add,
    Concat,
    Dropout,
    LastStep,
    Pack,
    Reverse,
    ScaledDropout,
    Select,
)
from specchain.modules.attention import AttentionLSTM
from specchain.modules.embedding import OneHot
from specchain.spec import Context, NNModuleSpec
from specchain.types import type_of
from tests.helpers import assert_close, numpy_of, torch_from

DTYPES = [np.float64, np.float32]


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _rebuild(template: Any, leaves: Any) -> Any:
    if isinstance(template, (tuple, list)):
        return tuple(_rebuild(item, leaves) for item in template)
    return next(leaves)


def _cotangent(value: Any, rng: np.random.Generator) -> Any:
    if isinstance(value, tuple):
        return tuple(_cotangent(v, rng) for v in value)
    return rng.standard_normal(value.shape).astype(value.dtype)


class Inline(torch.nn.Module):
    """The one-line expression the emitter of ``spec`` writes into an export, evaluated as the
    generated file would (``torch.cat((x[0], x[1]), dim=-1)``), for ``compare``."""

    def __init__(self, spec: NNModuleSpec, x: Any) -> None:
        super().__init__()
        in_type = type_of(x)
        emitted = pytorch.emitter_for(spec, "node").emit(spec, in_type)
        assert emitted.inline and not emitted.constructor, emitted  # no module, no helper
        items = [f"x[{i}]" for i in range(len(x))]
        self.expression = emitted.inline.format(*items, x="x", items=f"({', '.join(items)},)")
        self.function = eval(f"lambda x: {self.expression}", {"torch": torch})

    def forward(self, x: Any) -> Any:
        return self.function(x)


def compare(
    spec: NNModuleSpec,
    module: torch.nn.Module,
    x: Any,
    rng: np.random.Generator,
    train: bool = False,
) -> None:
    """Spec forward/backward vs the helper's forward and torch autograd, leaf by leaf."""
    dtype = _leaves(x)[0].dtype if _leaves(x)[0].dtype.kind == "f" else np.dtype(np.float64)
    spec.to(dtype)
    module.to(getattr(torch, str(dtype)))
    module.load_state_dict({k: torch_from(v) for k, v in spec.params.items()}, strict=True)
    module.train(train)
    y, saved = spec.forward(spec.params, x, Context(train=train, dtype=dtype))
    dy = _cotangent(y, rng)
    dx, dparams = spec.backward(spec.params, saved, dy)

    leaves = [torch_from(a, requires_grad=a.dtype.kind == "f") for a in _leaves(x)]
    out = module(_rebuild(x, iter(leaves)))
    ours, theirs = _leaves(y), _leaves(out)
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert_close(b, a, f"output {i}")
    pairs = [(o, torch_from(d)) for o, d in zip(theirs, _leaves(dy)) if o.requires_grad]
    if pairs:
        torch.autograd.backward([o for o, _ in pairs], [d for _, d in pairs])
    for i, (ours_dx, leaf) in enumerate(zip(_leaves(dx), leaves)):
        if ours_dx is None:
            assert leaf.grad is None or not leaf.is_floating_point() or not leaf.grad.any()
            continue
        got = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
        assert_close(got, ours_dx, f"input grad {i}")
    named = dict(module.named_parameters())
    assert set(dparams) == set(named)
    for key, grad in dparams.items():
        assert_close(named[key].grad, grad, key)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_reverse(rng: np.random.Generator, dtype: Any, axis: int) -> None:
    x = rng.standard_normal((5, 3, 4)).astype(dtype)
    compare(Reverse(axis), torch_helpers.Reverse(axis), x, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1])
def test_last_step(rng: np.random.Generator, dtype: Any, axis: int) -> None:
    x = rng.standard_normal((5, 3, 4)).astype(dtype)
    compare(LastStep(axis), torch_helpers.LastStep(axis), x, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 0, 2])
def test_concat(rng: np.random.Generator, dtype: Any, axis: int) -> None:
    shapes = [[5, 3, 4], [5, 3, 4], [5, 3, 4]]
    for k, shape in enumerate(shapes):
        shape[axis] += k  # items differ along the axis only
    x = tuple(rng.standard_normal(s).astype(dtype) for s in shapes)
    compare(Concat(axis), Inline(Concat(axis), x), x, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count", [2, 3, 5])
def test_add(rng: np.random.Generator, dtype: Any, count: int) -> None:
    x = tuple(rng.standard_normal((4, 2, 3)).astype(dtype) for _ in range(count))
    compare(Add(), Inline(Add(), x), x, rng)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_select(rng: np.random.Generator, index: int) -> None:
    x = (rng.standard_normal((4, 3)), rng.standard_normal((2,)), rng.standard_normal((1, 3, 5)))
    compare(Select(index), Inline(Select(index), x), x, rng)


def test_select_of_a_nested_state_tuple(rng: np.random.Generator) -> None:
    x = (rng.standard_normal((4, 3)), (rng.standard_normal((1, 3)), rng.standard_normal((1, 3))))
    compare(Select(1), Inline(Select(1), x), x, rng)


def test_pack(rng: np.random.Generator) -> None:
    x = (rng.standard_normal((4, 3)), rng.standard_normal((2, 2)))
    compare(Pack(), Inline(Pack(), x), x, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.25, 1.0])
@pytest.mark.parametrize("train", [False, True])
def test_scaled_dropout(rng: np.random.Generator, dtype: Any, p: float, train: bool) -> None:
    x = rng.standard_normal((5, 3, 4)).astype(dtype)
    compare(ScaledDropout(p), torch_helpers.ScaledDropout(p), x, rng, train=train)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("train", [False, True])
def test_masked_dropout(rng: np.random.Generator, dtype: Any, p: float, train: bool) -> None:
    x = rng.standard_normal((5, 3, 4)).astype(dtype)
    keep = (rng.random((5, 3, 4)) >= 0.5).astype(dtype)
    compare(Dropout(p), torch_helpers.MaskedDropout(p), (x, keep), rng, train=train)


def test_masked_dropout_applies_the_given_mask() -> None:
    module = torch_helpers.MaskedDropout(0.5).train()
    x = torch.ones(2, 2, dtype=torch.float64)
    keep = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert module((x, keep)).tolist() == [[2.0, 0.0], [0.0, 2.0]]
    assert module.eval()((x, keep)).tolist() == [[1.0, 1.0], [1.0, 1.0]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
def test_one_hot(rng: np.random.Generator, dtype: Any, index_dtype: Any) -> None:
    x = rng.integers(0, 7, size=(5, 3)).astype(index_dtype)
    spec, module = OneHot(7), torch_helpers.OneHot(7).to(getattr(torch, np.dtype(dtype).name))
    y, _ = spec.forward(spec.params, x, Context(dtype=np.dtype(dtype)))
    out = module(torch.from_numpy(x))
    assert_close(out, y)
    assert module.state_dict() == {}  # the dtype probe is not a weight


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("source_steps", "steps", "batch"), [(6, 5, 3), (1, 1, 1), (3, 7, 2)])
def test_attention_lstm(
    rng: np.random.Generator, dtype: Any, source_steps: int, steps: int, batch: int
) -> None:
    spec = AttentionLSTM(4, 6, 3)
    x = (
        rng.standard_normal((source_steps, batch, 4)).astype(dtype),
        rng.standard_normal((steps, batch, 4)).astype(dtype),
    )
    compare(spec, torch_helpers.AttentionLSTM(4, 6, 3), x, rng)


def test_attention_lstm_state_dict_names_match_the_spec() -> None:
    spec = AttentionLSTM(4, 6, 3)
    module = torch_helpers.AttentionLSTM(4, 6, 3)
    theirs = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert theirs == {k: v.shape for k, v in spec.params.items()}
    assert list(theirs) == list(spec.params)


@pytest.mark.parametrize("name", pytorch.HELPER_CLASSES)
def test_helpers_are_self_contained(name: str) -> None:
    """The copied source uses only torch, nn, F and builtins: run alone, it defines the class."""
    source = inspect.getsource(getattr(torch_helpers, name))
    tree = ast.parse(source)
    assert [type(node) for node in tree.body] == [ast.ClassDef]
    namespace: dict[str, Any] = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional}
    exec(compile("from __future__ import annotations\n" + source, name, "exec"), namespace)
    assert issubclass(namespace[name], torch.nn.Module)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    allowed = {"torch", "nn", "F", "self", "super", "range", "tuple", "object", "int", "float"}
    allowed |= {"warnings", "list"}  # the attention decoder's trace warning, its step list
    allowed.add("str")  # annotations of string arguments (AttentionLSTM's score)
    local = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    arguments = {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in n.args}
    assert used <= allowed | local | arguments, used - allowed - local - arguments


def test_helpers_list_is_complete() -> None:
    defined = {
        name
        for name, value in vars(torch_helpers).items()
        if isinstance(value, type)
        and issubclass(value, torch.nn.Module)
        and value.__module__ == torch_helpers.__name__
    }
    assert defined == set(pytorch.HELPER_CLASSES)


def test_helpers_preserve_the_float_dtype() -> None:
    x = torch.randn(3, 2, 4, dtype=torch.float64)
    for module in (torch_helpers.Reverse(0), torch_helpers.ScaledDropout(0.5)):
        assert numpy_of(module(x)).dtype == np.float64
