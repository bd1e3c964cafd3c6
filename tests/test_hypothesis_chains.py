"""Random architectures (Hypothesis): ``out_type`` predicts the actual output shape and the
hand-written backward agrees with finite differences.

An architecture is drawn as a *recipe* (plain tuples, readable in a failure report) together with
the output shape it must produce for an input ``[T, B, F]``; the test builds it after seeding, so
a replayed example has the same weights.

Dims 1-8, T 0-10, B 0-4 (design section 9). ``Linear``, ``TimeDistributed(Linear)``,
activations, ``Identity``, ``Reverse``, ``branch`` + ``Concat`` / ``Add`` and ``LastStep`` (with
T = 0 it must fail with its clear message instead).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import specchain as sc
from specchain.modules import (
    Add,
    Concat,
    Identity,
    LastStep,
    Linear,
    ReLU,
    Reverse,
    Sigmoid,
    Tanh,
    TimeDistributed,
)

Op = tuple[Any, ...]
SIZES = st.integers(1, 8)
ACTIVATIONS = {"tanh": Tanh, "sigmoid": Sigmoid, "relu": ReLU, "identity": Identity}

# --- recipes ---------------------------------------------------------------------------------
# State while drawing: ``feature`` (the last dim; None while the type is a bare ``[...]``) and
# ``stepped`` (LastStep applied: T is gone). The input is always [T, B, F].


@st.composite
def single_op(
    draw: st.DrawFn, feature: int | None, out: int | None = None, stepped: bool = False
) -> Op:
    """One shape-preserving or feature-changing op on ``[..., feature]``; ``out`` forces the
    output feature size (for the parts of an ``Add``). After ``LastStep`` (``stepped``) there is
    no time axis: ``Reverse`` and ``TimeDistributed`` would be refused."""
    keep_ok = out is None or out == feature
    timed = [] if stepped else ["reverse"]
    kinds = (["act", *timed] if keep_ok else []) + (["linear"] if feature else [])
    kinds += ["td"] if feature and not stepped else []
    kind = draw(st.sampled_from(kinds))
    if kind == "act":
        return ("act", draw(st.sampled_from(sorted(ACTIVATIONS))))
    if kind == "reverse":
        return ("reverse",)
    size = out if out is not None else draw(SIZES)
    if kind == "td":
        return ("td", feature, size)
    return ("linear", feature, size, draw(st.booleans()))


@st.composite
def branch_op(draw: st.DrawFn, feature: int, stepped: bool) -> tuple[Op, int]:
    """``branch(part, part[, part]) >> Concat()`` or ``>> Add()``; returns the op and its
    output feature size."""
    merge = draw(st.sampled_from(["concat", "add"]))
    n_parts = draw(st.integers(2, 3))
    out = draw(st.sampled_from([feature, draw(SIZES)])) if merge == "add" else None
    parts, sizes = [], []
    for _ in range(n_parts):
        first = draw(single_op(feature, out, stepped))
        size = _out_feature(first, feature)
        part = [first]
        if draw(st.booleans()):
            part.append(("act", draw(st.sampled_from(sorted(ACTIVATIONS)))))
        parts.append(tuple(part))
        sizes.append(size)
    return ("branch", merge, tuple(parts)), (sum(sizes) if merge == "concat" else sizes[0])


def _out_feature(op: Op, feature: int | None) -> int | None:
    return op[2] if op[0] in ("linear", "td") else feature


@st.composite
def architectures(draw: st.DrawFn) -> dict[str, Any]:
    f0 = draw(SIZES)
    # B = 0 is an edge case, not the usual one: drawn uniformly, shrinking towards B = 2.
    T, B = draw(st.integers(0, 10)), draw(st.sampled_from([2, 1, 3, 4, 0]))
    first_kind = draw(st.sampled_from(["linear", "td", "reverse", "act"]))
    if first_kind == "linear":
        first: Op = ("linear", f0, draw(SIZES), draw(st.booleans()))
    elif first_kind == "td":
        first = ("td", f0, draw(SIZES))
    elif first_kind == "reverse":
        first = ("reverse",)
    else:  # not Identity: its input type is ANY, so its output type would predict nothing
        first = ("act", draw(st.sampled_from(["relu", "sigmoid", "tanh"])))
    # A bare activation first gives the type [...]: the feature size is not stated yet.
    feature = _out_feature(first, f0) if first_kind != "act" else None
    ops, stepped = [first], False
    for _ in range(draw(st.integers(1, 4))):
        choices = ["single"]
        if feature is not None:
            choices += ["branch", "branch"]
        if not stepped:  # LastStep gives an open [..., F] the rank of [T, B, F]
            choices.append("laststep")
        choice = draw(st.sampled_from(choices))
        if choice == "laststep":
            ops.append(("laststep",))
            stepped = True
        elif choice == "branch":
            assert feature is not None
            op, feature = draw(branch_op(feature, stepped))
            ops.append(op)
        else:
            op = draw(single_op(feature, stepped=stepped))
            ops.append(op)
            feature = _out_feature(op, feature)
    out_feature = feature if feature is not None else f0
    shape = (B, out_feature) if stepped else (T, B, out_feature)
    seed = draw(st.integers(0, 2**16))
    return {"ops": tuple(ops), "input": (T, B, f0), "output": shape, "seed": seed}


def build(ops: tuple[Op, ...]) -> sc.SpecChain:
    return sc.serial(*(build_op(op) for op in ops))


def build_op(op: Op) -> sc.NNModuleSpec | sc.SpecChain:
    kind = op[0]
    if kind == "linear":
        return Linear(op[1], op[2], bias=op[3])
    if kind == "td":
        return TimeDistributed(Linear(op[1], op[2]))
    if kind == "act":
        return ACTIVATIONS[op[1]]()
    if kind == "reverse":
        return Reverse()
    if kind == "laststep":
        return LastStep()
    assert kind == "branch"
    merge = Concat() if op[1] == "concat" else Add()
    return sc.branch(*(build(part) for part in op[2])) >> merge


# --- what a type predicts ------------------------------------------------------------------


def evaluate(dim: int | str, bindings: dict[str, int]) -> int:
    """A dim's size: an int, a bound symbol, or a Concat sum of them such as ``F+F`` or
    ``F+4``."""
    if isinstance(dim, int):
        return dim
    return sum(int(term) if term.isdigit() else bindings[term] for term in dim.split("+"))


def assert_type_predicts(
    t: sc.TensorType, shape: tuple[int, ...], bindings: dict[str, int]
) -> None:
    dims = list(t.dims)
    if t.variadic:  # a leading '...' stands for any leading dims
        stated = dims[1:]
        assert len(shape) >= len(stated), f"{t} cannot describe shape {shape}"
        tail = shape[len(shape) - len(stated) :]
    else:
        stated, tail = dims, shape
        assert len(shape) == len(stated), f"{t} has rank {len(stated)}, the output {shape}"
    assert [evaluate(d, bindings) for d in stated] == list(tail), f"{t} vs {shape}"


@settings(max_examples=40, deadline=None)
@given(arch=architectures())
def test_random_chains_type_and_gradcheck(arch: dict[str, Any]) -> None:
    kinds = {op[0] if op[0] != "branch" else f"branch+{op[1]}" for op in arch["ops"]}
    for kind in sorted(kinds):
        event(kind)
    event(f"T={min(arch['input'][0], 2)}{'+' if arch['input'][0] >= 2 else ''}")
    event("B=0" if arch["input"][1] == 0 else "B>0")
    sc.seed(arch["seed"])
    model = build(arch["ops"]).to(np.float64)
    T, B, f0 = arch["input"]
    x = np.random.default_rng(arch["seed"]).standard_normal((T, B, f0))
    out_type = model.out_type
    assert isinstance(out_type, sc.TensorType)
    assert model.dtype in (None, np.dtype(np.float64))

    if T == 0 and any(op[0] == "laststep" for op in arch["ops"]):
        with pytest.raises(sc.ShapeError, match=re.escape("LastStep needs at least one time step")):
            model(x)
        return

    y = model(x)
    assert y.shape == arch["output"], f"recipe predicts {arch['output']}, got {y.shape}"
    assert y.dtype == np.float64
    assert_type_predicts(out_type, y.shape, {"T": T, "B": B, "F": f0})
    report = sc.gradcheck(model, x)
    assert report.passed(1e-7), f"{arch['ops']}\n{report}"


def test_type_prediction_helper_rejects_wrong_shapes() -> None:
    seq = sc.TensorType(("T", "B", "F+4"))
    assert_type_predicts(seq, (3, 2, 9), {"T": 3, "B": 2, "F": 5})
    with pytest.raises(AssertionError):
        assert_type_predicts(seq, (3, 2, 8), {"T": 3, "B": 2, "F": 5})
    with pytest.raises(AssertionError):
        assert_type_predicts(sc.TensorType(("...", 4)), (2, 5), {})
    assert_type_predicts(sc.TensorType(("...", 4)), (7, 2, 4), {})
