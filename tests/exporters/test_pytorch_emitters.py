"""Emitters registered by class: a user's layer exports through its own ``@pytorch.emitter``, a
layer without one (or with a declared ``no_torch_twin``) is refused with a message that names the
node, the kind and the fix; ``pointwise=True`` layers map over time under ``TimeDistributed``."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from specchain.exporters import pytorch
from specchain.exporters.pytorch import Emitted, ExportError
from specchain.modules import Linear, TimeDistributed
from specchain.spec import Context, NNModuleSpec, Params
from specchain.types import DimEnv, Type


@attrs.define(eq=False)
class Softsign(NNModuleSpec, family="activation"):
    """y = x / (1 + |x|), a user's layer with a native twin (``nn.Softsign``)."""

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return in_type

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        return x / (1 + np.abs(x)), x

    def backward(self, params: Params, x: np.ndarray, dy: np.ndarray) -> tuple[Any, Params]:
        return dy / (1 + np.abs(x)) ** 2, {}


@pytorch.emitter(Softsign, pointwise=True)
def _emit_softsign(spec: Softsign, in_type: Type) -> Emitted:
    return Emitted("nn.Softsign()")


@attrs.define(eq=False)
class Cube(Softsign):
    """A subclass of a registered layer: it does not inherit ``Softsign``'s emitter."""

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        return x**3, x


@attrs.define(eq=False)
class CumulativeSum(NNModuleSpec, family="sequence"):
    """A user's layer declared without a PyTorch twin."""

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return in_type

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        return np.cumsum(x, axis=0), None

    def backward(self, params: Params, saved: Any, dy: np.ndarray) -> tuple[Any, Params]:
        return np.flip(np.cumsum(np.flip(dy, 0), axis=0), 0), {}


NO_TWIN_REASON = "torch.cumsum has no module; wrap it in your own nn.Module after export"
pytorch.no_torch_twin(CumulativeSum, NO_TWIN_REASON)


@attrs.define(eq=False)
class Scale(Softsign):
    """A subclass registered with an emitter that is not pointwise."""


@pytorch.emitter(Scale)
def _emit_scale(spec: Scale, in_type: Type) -> Emitted:
    return Emitted("nn.Identity()")


def refuses(model: Any, message: str, tmp_path: Path) -> None:
    """Every way to export ``model`` raises ``message`` and writes nothing."""
    for attempt in (
        lambda: pytorch.to_source(model),
        lambda: pytorch.export(model, tmp_path / "out"),
        lambda: pytorch.build_torch_module(model),
        lambda: pytorch.verify(model),
    ):
        with pytest.raises(ExportError, match=message):
            attempt()
    assert not (tmp_path / "out").exists()  # refused before the folder is made


# --- a user's layer with an emitter ------------------------------------------------------------


def test_a_user_layer_with_an_emitter_exports_and_verifies(tmp_path: Path) -> None:
    model = (Linear(4, 6) >> Softsign() >> Linear(6, 3)).to(np.float64)
    path = pytorch.export(model, tmp_path, class_name="Net")
    source = path.read_text(encoding="utf-8")
    ast.parse(source)
    assert "        self.softsign = nn.Softsign()\n" in source
    assert "        softsign = self.softsign(linear)\n" in source
    x = np.random.default_rng(0).standard_normal((5, 3, 4))
    report = pytorch.verify(model, x)
    assert report.within(1e-7, 1e-9), str(report)
    assert {"output[0]", "input_grad[0]", "linear.weight", "linear_1.bias"} <= set(report.diffs)


def test_a_pointwise_user_layer_maps_over_time(tmp_path: Path) -> None:
    model = (Linear(4, 6) >> TimeDistributed(Softsign())).to(np.float64)
    source = pytorch.to_source(model)
    assert "        self.time_distributed = nn.Softsign()\n" in source
    report = pytorch.verify(model, np.random.default_rng(1).standard_normal((7, 2, 4)))
    assert report.within(1e-7, 1e-9), str(report)


def test_a_user_layer_that_is_not_pointwise_is_refused_under_time_distributed(
    tmp_path: Path,
) -> None:
    message = (
        r"^node 'time_distributed': TimeDistributed\(Scale\) has no PyTorch emitter: only layers "
        r"that act on the last axis \("
        + re.escape(", ".join(pytorch.pointwise_kinds()))
        + r"\) map over time natively; if Scale acts on the last axis only, register its "
        r"emitter with @pytorch.emitter\(Scale, pointwise=True\)$"
    )
    refuses(Linear(4, 6) >> TimeDistributed(Scale()), message, tmp_path)


def test_registering_again_replaces_the_emitter() -> None:
    """Like re-running a notebook cell: the later registration wins."""

    @attrs.define(eq=False)
    class Twice(Softsign):
        pass

    pytorch.emitter(Twice)(lambda spec, in_type: Emitted("nn.Tanh()"))
    pytorch.emitter(Twice)(lambda spec, in_type: Emitted("nn.Softsign()"))
    assert "self.twice = nn.Softsign()" in pytorch.to_source(Linear(4, 4) >> Twice())
    pytorch.no_torch_twin(Twice, "changed my mind")
    with pytest.raises(ExportError, match=r"Twice has no PyTorch twin: changed my mind$"):
        pytorch.to_source(Linear(4, 4) >> Twice())


def test_replacing_a_built_in_emitter_needs_replace_true() -> None:
    original = pytorch.EMITTERS[Linear]

    def _other(spec: Linear, in_type: Type) -> Emitted:
        return Emitted("nn.Identity()")

    try:
        message = (
            r"^Linear is a built-in layer with the emitter specchain\.modules\.linear\."
            r"_emit_linear; registering tests\.exporters\.test_pytorch_emitters\..*_other would "
            r"change every export"
        )
        with pytest.raises(ExportError, match=message):
            pytorch.emitter(Linear)(_other)
        assert pytorch.EMITTERS[Linear] is original
        pytorch.emitter(Linear, replace=True)(_other)
        assert "nn.Identity()" in pytorch.to_source(Linear(4, 4).as_chain())
    finally:
        pytorch.EMITTERS[Linear] = original


def test_the_decorator_returns_the_function() -> None:
    assert _emit_softsign(Softsign(), None) == Emitted("nn.Softsign()")  # type: ignore[arg-type]


# --- what is refused, and how ------------------------------------------------------------------


def test_a_user_layer_without_an_emitter_is_refused(tmp_path: Path) -> None:
    @attrs.define(eq=False)
    class Square(NNModuleSpec, family="activation"):
        def infer(self, in_type: Type, dims: DimEnv) -> Type:
            return in_type

        def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
            return x * x, x

        def backward(self, params: Params, x: np.ndarray, dy: np.ndarray) -> tuple[Any, Params]:
            return 2 * x * dy, {}

    message = (
        r"^node 'sq': no PyTorch emitter for Square; register one with "
        r"@pytorch.emitter\(Square\); see docs/custom_layers.md$"
    )
    refuses(Linear(4, 4) >> Square(name="sq"), message, tmp_path)


def test_a_subclass_does_not_inherit_its_bases_emitter(tmp_path: Path) -> None:
    message = (
        r"^node 'cube': no PyTorch emitter for Cube \(emitters are not inherited from Softsign\); "
        r"register one with @pytorch.emitter\(Cube\); see docs/custom_layers.md$"
    )
    refuses(Linear(4, 4) >> Cube(), message, tmp_path)


def test_a_layer_without_a_torch_twin_says_why(tmp_path: Path) -> None:
    message = (
        rf"^node 'cumulative_sum': CumulativeSum has no PyTorch twin: {re.escape(NO_TWIN_REASON)}$"
    )
    refuses(Linear(4, 4) >> CumulativeSum(), message, tmp_path)


def test_a_no_twin_layer_under_time_distributed_is_refused(tmp_path: Path) -> None:
    message = r"^node 'time_distributed': TimeDistributed\(CumulativeSum\) has no PyTorch emitter"
    refuses(Linear(4, 4) >> TimeDistributed(CumulativeSum()), message, tmp_path)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("nn.Tanh()", r"the emitter of Bad returned str; it must return pytorch.Emitted\("),
        (
            pytorch.helper("Softsign"),
            r"the emitter of Bad asks for the helper class 'Softsign', which torch_helpers.py does "
            r"not define \(it has AttentionLSTM, LastStep, ",
        ),
    ],
    ids=["not_emitted", "unknown_helper"],
)
def test_a_wrong_emitter_result_is_refused(returned: Any, message: str) -> None:
    @attrs.define(eq=False)
    class Bad(Softsign):
        pass

    pytorch.emitter(Bad)(lambda spec, in_type: returned)
    with pytest.raises(ExportError, match=rf"^node 'bad': {message}"):
        pytorch.to_source(Linear(4, 4) >> Bad())


@pytest.mark.parametrize("target", ["Linear", Linear(4, 4), int])
def test_registration_takes_a_spec_class(target: Any) -> None:
    with pytest.raises(
        TypeError,
        match=r"^pytorch.emitter takes an NNModuleSpec subclass, got .*; e\.g\. "
        r"@pytorch.emitter\(MyLayer\)$",
    ):
        pytorch.emitter(target)
    with pytest.raises(
        TypeError,
        match=r"^pytorch.no_torch_twin takes an NNModuleSpec subclass, got .*; e\.g\. "
        r"pytorch.no_torch_twin\(MyLayer, 'why, and what to do instead'\)$",
    ):
        pytorch.no_torch_twin(target, "a reason")


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_no_torch_twin_needs_a_reason(reason: Any) -> None:
    with pytest.raises(TypeError, match=r"^no_torch_twin\(Softsign, reason\): reason must be a"):
        pytorch.no_torch_twin(Softsign, reason)
    assert isinstance(pytorch.EMITTERS[Softsign], pytorch.Emitter)  # unchanged


# --- a user's layer with a helper class of its own ------------------------------------------

SQUARE_SOURCE = '''class SquareModule(nn.Module):
    """y = x * x."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x
'''


@attrs.define(eq=False)
class Square(Softsign):
    """A user layer with no ``nn.*`` twin: it ships its own helper class."""

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        return x * x, x

    def backward(self, params: Params, x: np.ndarray, dy: np.ndarray) -> tuple[Any, Params]:
        return 2 * x * dy, {}


@pytorch.emitter(Square)
def _emit_square(spec: Square, in_type: Type) -> Emitted:
    return pytorch.helper("SquareModule", source=SQUARE_SOURCE)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_a_user_layer_ships_its_own_helper_class(tmp_path: Path) -> None:
    import torch

    model = (Linear(4, 6) >> Square() >> Square() >> Linear(6, 3)).to(np.float64)
    path = pytorch.export(model, tmp_path)
    source = path.read_text(encoding="utf-8")
    assert source.count("class SquareModule(nn.Module):") == 1
    assert "        self.square = SquareModule()\n" in source
    report = pytorch.verify(model, np.random.default_rng(0).standard_normal((5, 3, 4)))
    assert report.within(1e-7, 1e-9), str(report)
    module_spec = importlib.util.spec_from_file_location("exported_square", path)
    assert module_spec is not None and module_spec.loader is not None
    exported = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(exported)
    scripted = torch.jit.script(exported.load())
    x = torch.ones(2, 4, dtype=torch.float64)
    np.testing.assert_allclose(scripted(x).detach().numpy(), model(x.numpy()), rtol=1e-12)


@pytest.mark.parametrize(
    ("name", "source", "message"),
    [
        ("Reverse", SQUARE_SOURCE, "must be an identifier that no import, built-in helper"),
        ("square", SQUARE_SOURCE, "must be an identifier that no import, built-in helper"),
        ("SquareModule", "class SquareModule(nn.Module:", "its source does not parse"),
        ("SquareModule", SQUARE_SOURCE + "\nx = 1\n", "exactly one top-level class SquareModule"),
        ("Other", SQUARE_SOURCE, r"defining \['SquareModule'\]"),
    ],
    ids=["builtin_helper", "node_variable", "syntax", "extra_statement", "wrong_class"],
)
def test_a_bad_user_helper_class_is_refused(name: str, source: str, message: str) -> None:
    @attrs.define(eq=False)
    class Squared(Square):
        pass

    pytorch.emitter(Squared)(lambda spec, in_type: pytorch.helper(name, source=source))
    model = Linear(4, 4) >> Squared(name="square")
    with pytest.raises(ExportError, match=rf"^node 'square': the helper class '{name}'.*{message}"):
        pytorch.to_source(model)


def test_two_different_helper_classes_with_one_name_are_refused() -> None:
    @attrs.define(eq=False)
    class Other(Square):
        pass

    other_source = SQUARE_SOURCE.replace("x * x", "x * x * x")
    pytorch.emitter(Other)(
        lambda spec, in_type: pytorch.helper("SquareModule", source=other_source)
    )
    with pytest.raises(ExportError, match="two different classes are both called 'SquareModule'"):
        pytorch.to_source(Linear(4, 4) >> Square() >> Other())
