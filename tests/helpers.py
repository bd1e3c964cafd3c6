"""Helpers shared by the tests: numpy <-> torch, the numerics contract's tolerances, and the
bad-input table record (PyTorch's ``module_error_inputs`` style)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import numpy as np
import pytest
import torch

import specchain as sc

# Design section 6: float64 rtol 1e-7 / atol 1e-9; float32 rtol 1e-4 / atol 1e-5.
TOLERANCES = {np.dtype(np.float64): (1e-7, 1e-9), np.dtype(np.float32): (1e-4, 1e-5)}
TORCH_DTYPES = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}


def torch_from(a: np.ndarray, requires_grad: bool = False) -> torch.Tensor:
    """A torch tensor holding a copy of ``a`` (same dtype)."""
    return torch.from_numpy(np.array(a, copy=True)).requires_grad_(requires_grad)


def numpy_of(t: torch.Tensor | np.ndarray) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def assert_close(actual: Any, expected: Any, err_msg: str = "") -> None:
    """Same dtype, same shape, and close within the contract's tolerance for that dtype.
    NaN never equals NaN here: tests that mean to compare NaNs do so explicitly."""
    actual, expected = numpy_of(actual), numpy_of(expected)
    assert actual.dtype == expected.dtype, f"{err_msg}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{err_msg}: shape {actual.shape} != {expected.shape}"
    rtol, atol = TOLERANCES[actual.dtype]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=err_msg)


def assert_close64(actual: Any, expected: Any, err_msg: str = "") -> None:
    """``assert_close`` that also insists both sides are float64."""
    assert numpy_of(actual).dtype == np.float64, f"{err_msg}: not float64"
    assert_close(actual, expected, err_msg)


def load_torch(module: torch.nn.Module, params: Mapping[str, np.ndarray], prefix: str) -> None:
    """Load our parameters (``linear.weight`` ...) into a torch module by exact PyTorch names:
    ``strict=True`` proves the names and shapes are PyTorch's."""
    state = {
        k.removeprefix(prefix): torch_from(v) for k, v in params.items() if k.startswith(prefix)
    }
    module.load_state_dict(state, strict=True)


def run_chain(model: sc.SpecChain, x: Any, dy: Any) -> tuple[Any, Any, dict[str, np.ndarray]]:
    """``(y, dx, grads)`` of one forward (train mode) and one backward."""
    y, tape = model.forward(x, train=True, rng=0)
    dx, grads = model.backward(tape, dy)
    return y, dx, grads


def assert_gradcheck(model: sc.SpecChain, x: Any, tolerance: float = 1e-7) -> sc.GradcheckReport:
    """Finite differences in float64: every tensor within ``tolerance``; returns the report."""
    model.to(np.float64)
    report = sc.gradcheck(model, x)
    expected = set(model.named_parameters())
    assert expected <= set(report.errors), f"parameters missing from the report: {report.errors}"
    assert report.passed(tolerance), str(report)
    return report


@attrs.frozen
class ErrorInput:
    """One bad input: ``build()`` must raise ``error`` with a message matching ``match``."""

    desc: str
    build: Callable[[], object]
    error: type[Exception]
    match: str


def error_params(cases: list[ErrorInput]) -> list[Any]:
    return [pytest.param(case, id=case.desc) for case in cases]


def check_error_input(case: ErrorInput) -> None:
    with pytest.raises(case.error, match=case.match):
        case.build()


def one_torch_thread() -> Iterator[None]:
    """Generator for a module-scoped autouse fixture: torch on one thread while the module runs
    (tiny tensors gain nothing from threads, and spinning threads stall on a busy machine)::

        _one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def unwrapped(source: str) -> str:
    """Generated source with every statement on one line (``ast.unparse``: single quotes, no
    docstring layout), so text checks do not depend on where the exporter wraps lines."""
    return ast.unparse(ast.parse(source))


def forward_arguments(source: str, class_name: str = "Model") -> list[str]:
    """The argument names of the generated class's ``forward`` (its annotations aside)."""
    tree = ast.parse(source)
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    (forward,) = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "forward"]
    return [a.arg for a in forward.args.args]
