"""What ``from_torch`` refuses, and how a user maps an op of their own with ``@converter``."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch
from torch import nn

from specchain.importers import registry
from specchain.importers.torch import Call, Converted, TorchImportError, converter, from_torch
from specchain.importers.tracing import LeafTracer
from specchain.modules import Add, Identity
from specchain.params import ParamDecl
from specchain.spec import Context, NNModuleSpec, Params
from specchain.types import ANY, DimEnv, Type
from tests.helpers import assert_close64


class Doubler(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return out * 2


def test_an_unsupported_op_names_the_node_the_op_and_the_hook() -> None:
    with pytest.raises(
        TorchImportError,
        match=r"^cannot import node 'mul' \(call_function operator\.mul\): specchain has no "
        r"converter for it; register one that returns the equivalent spec: "
        r"@specchain\.importers\.torch\.converter\(operator\.mul\) def convert\(call\): "
        r"return MySpec\(\.\.\.\); see docs/importing\.md$",
    ):
        from_torch(Doubler(), torch.randn(3, 2, 4))


class Flattens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 5)
        self.conv = nn.Conv1d(5, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return out.view(-1, 5)


class Convolves(Flattens):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class MiddleStep(Flattens):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return out[2]


class ReadsWeight(Flattens):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.conv.weight[:, :, 0]


class AddsOne(Flattens):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return out + 1.0


class Unused(Flattens):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return out


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(7, 4)
        self.lstm = nn.LSTM(4, 4)
        self.decoder = nn.Linear(4, 7)
        self.decoder.weight = self.embedding.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(tokens))
        return self.decoder(out)


@pytest.mark.parametrize(
    ("module", "x", "message"),
    [
        (
            Flattens(),
            torch.randn(3, 2, 4),
            r"node 'view' \(call_method \.view\).*converter\('view'\)",
        ),
        (
            Convolves(),
            torch.randn(2, 5, 3),
            r"node 'conv' \(call_module nn\.Conv1d\).*converter\(nn\.Conv1d\)",
        ),
        (
            MiddleStep(),
            torch.randn(3, 2, 4),
            r"node 'getitem_2' .*indexing \[T, B, 5\] with \[2\]: neither the first nor the last",
        ),
        (ReadsWeight(), torch.randn(3, 2, 5), r"node 'conv_weight' \(get_attr conv\.weight\)"),
        (AddsOne(), torch.randn(3, 2, 4), r"node 'add' .*one operand is the constant 1\.0"),
        (Unused(), torch.randn(3, 2, 4), r"\['conv\.bias', 'conv\.weight'\].*never uses"),
        (
            Tied(),
            torch.randint(0, 7, (3, 2)),
            r"^tied weights: decoder\.weight is embedding\.weight; .*untie them",
        ),
        (Unused(), torch.randn(3, 2, 7), r"example input\(s\) \(\[3, 2, 7\] torch\.float32\).*"),
        (Unused(), (torch.randn(3, 2, 4),) * 2, r"forward takes 1 argument\(s\) \(x\), got 2"),
    ],
)
def test_refusals_name_the_problem_and_the_fix(module: nn.Module, x: object, message: str) -> None:
    with pytest.raises(TorchImportError, match=message):
        from_torch(module, x)  # type: ignore[arg-type]


def test_a_constant_tensor_is_refused() -> None:
    class Cat(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x, torch.zeros(3, 2, 1)], dim=-1)

    with pytest.raises(TorchImportError, match=r"'_tensor_constant0'.*forward makes a constant"):
        from_torch(Cat(), torch.randn(3, 2, 4))


# --- a user's own module and spec, mapped with @converter ---------------------------------


class Scale(nn.Module):
    """``y = x * weight`` with a learned per-feature ``weight [F]``."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(0.5, 1.5, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


@attrs.define(eq=False)
class ScaleSpec(NNModuleSpec, family="activation"):
    """``[..., F]`` -> ``[..., F]``: ``x * weight``."""

    features: int

    def declare_params(self) -> dict[str, ParamDecl]:
        return {"weight": ParamDecl((self.features,), lambda rng, shape: np.ones(shape))}

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return in_type

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, object]:
        return x * params["weight"], x

    def backward(self, params: Params, x: np.ndarray, dy: np.ndarray) -> tuple[object, Params]:
        return dy * params["weight"], {"weight": (dy * x).reshape(-1, x.shape[-1]).sum(0)}


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 3)
        self.scale = Scale(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.gru(x)[0])


def test_a_user_converter_maps_a_module_of_theirs() -> None:
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    module = Scaled().double()
    with pytest.raises(
        TorchImportError,
        match=r"node 'scale_weight' \(get_attr scale\.weight\): forward reads self\.scale\.weight "
        r"directly; .*converter\(Scale\)\), so it is imported whole",
    ):
        from_torch(module, x)  # traced into: Scale's weight is read by hand

    @converter(Scale)
    def _scale(call: Call) -> NNModuleSpec:
        return ScaleSpec(call.module.weight.shape[0])

    try:
        model = from_torch(module, x)
        assert model.nodes == ["gru", "scale"]
        assert isinstance(model.spec("scale"), ScaleSpec)
        assert_close64(model.named_parameters()["scale.weight"], module.scale.weight)
        assert_close64(model(x.numpy()), module(x))
    finally:
        del registry.MODULES[Scale]


class Stacks(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x, x]).sum(0)


def test_a_converter_chooses_the_inputs_which_must_be_graph_values() -> None:
    @converter(torch.stack)
    def _stack(call: Call) -> Converted:
        return Converted(Add(), tuple(call.args[0]))

    @converter("sum")
    def _sum(call: Call) -> Converted:
        return Converted(Identity(), (call.args[0], call.args[1]))

    try:
        with pytest.raises(
            TorchImportError,
            match=r"^cannot import node 'sum_1' \(call_method \.sum\): it passes the constant 0 wh",
        ):
            from_torch(Stacks(), torch.randn(3, 2, 4))

        @converter("sum")
        def _wrong(call: Call) -> object:
            return "Identity"

        with pytest.raises(TorchImportError, match=r"for node 'sum_1' .* returned str; a conv"):
            from_torch(Stacks(), torch.randn(3, 2, 4))

        @converter("sum")
        def _sum_of_one(call: Call) -> Converted:
            return Converted(Identity(), call.args[0])

        x = torch.randn(3, 2, 4)
        model = from_torch(Stacks(), x)
        assert model.nodes == ["add", "identity"]
        np.testing.assert_allclose(model(x.numpy()), 2 * x.numpy(), rtol=1e-6)
    finally:
        del registry.FUNCTIONS[torch.stack]
        del registry.METHODS["sum"]


def test_replacing_a_built_in_converter_needs_replace_true() -> None:
    original = registry.MODULES[nn.Linear]
    with pytest.raises(
        TorchImportError,
        match=r"^<class 'torch\.nn\.modules\.linear\.Linear'> has the built-in converter "
        r"specchain\.importers\.modules\._linear; registering .*_mine would change every import "
        r"of it in this process: pass converter\(\.\.\., replace=True\) to mean it$",
    ):

        @converter(nn.Linear)
        def _mine(call: Call) -> NNModuleSpec:
            return original(call)  # type: ignore[return-value]

    assert registry.MODULES[nn.Linear] is original
    try:

        @converter(nn.Linear, replace=True)
        def _bias_free(call: Call) -> NNModuleSpec:
            raise ValueError("no biases here")

        with pytest.raises(
            TorchImportError,
            match=r"^the converter tests\.importers\.test_errors\..*_bias_free failed on node '0' "
            r"\(call_module nn\.Linear\): ValueError: no biases here$",
        ):
            from_torch(nn.Sequential(nn.Linear(3, 2)), torch.randn(4, 3))
    finally:
        registry.MODULES[nn.Linear] = original


class Unknown(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_a_module_of_yours_without_converter_is_named_by_its_class() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.custom = Unknown()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.custom(x)

    class Leaves(LeafTracer):
        def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
            return isinstance(m, Unknown) or super().is_leaf_module(m, module_qualified_name)

    call_node = next(n for n in Leaves().trace(Net()).nodes if n.op == "call_module")
    call = Call(call_node, Unknown(), (), {}, lambda value: ANY)
    with pytest.raises(
        TorchImportError,
        match=r"^cannot import node 'custom' \(call_module Unknown\): .*converter\(Unknown\) def",
    ):
        registry.converter_for(call)


class ScaledLinear(nn.Linear):
    """A subclass with its own forward: not an ``nn.Linear`` any more."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 2


class InitialisedLinear(nn.Linear):
    """A subclass that keeps ``nn.Linear.forward``: still one."""

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        if self.bias is not None:
            nn.init.ones_(self.bias)


def test_a_subclass_is_converted_only_while_it_keeps_the_forward() -> None:
    model = from_torch(nn.Sequential(InitialisedLinear(3, 2)), torch.randn(4, 3))
    assert model.nodes == ["0"]
    np.testing.assert_array_equal(model(np.zeros((4, 3), np.float32)), np.ones((4, 2)))
    with pytest.raises(TorchImportError, match=r"get_attr 0\.weight.*converter\(ScaledLinear\)"):
        from_torch(nn.Sequential(ScaledLinear(3, 2)), torch.randn(4, 3))
