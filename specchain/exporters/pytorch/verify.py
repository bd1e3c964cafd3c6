"""Proof of equivalence and import back: the only part of the exporter that uses torch, and only
inside functions (``import specchain`` works without torch).

- ``verify(model, inputs)`` runs the spec and the generated module side by side and reports the
  largest differences of outputs, input gradients and every parameter gradient.
- ``build_torch_module(model)`` instantiates the generated class with the model's weights.
- ``load_torch_state(model, state_dict_or_module)`` fills a spec from PyTorch weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from specchain import padded
from specchain.chain import SpecChain
from specchain.examples import example_input
from specchain.exporters.pytorch import arguments
from specchain.exporters.pytorch.emitters import ExportError
from specchain.exporters.pytorch.naming import assign_names, torch_state
from specchain.exporters.pytorch.source import to_source
from specchain.state import StateDictError
from specchain.tree import leaves, rebuild, structure, tree_map


@attrs.frozen
class VerifyReport:
    """Largest absolute and relative differences per compared tensor (spec vs torch)."""

    diffs: dict[str, tuple[float, float]]
    loss: tuple[float, float] | None = None

    @property
    def max_abs(self) -> float:
        return max((a for a, _ in self.diffs.values()), default=0.0)

    def ok(self, rtol: float, atol: float) -> bool:
        """Every tensor within ``atol + rtol * |reference|`` elementwise (checked at build)."""
        return all(a <= atol or r <= rtol for a, r in self.diffs.values())

    def __str__(self) -> str:
        width = max((len(k) for k in self.diffs), default=4)
        rows = [
            f"{k:<{width}}  max|diff| {a:.3e}  max rel {r:.3e}" for k, (a, r) in self.diffs.items()
        ]
        return "specchain vs exported torch module:\n  " + "\n  ".join(rows)


def load_module_class(source: str, class_name: str) -> Any:
    """Execute generated source in a fresh module namespace and return the class."""
    import types

    module = types.ModuleType("specchain_exported")
    module.__dict__["__file__"] = "<specchain export>"
    exec(compile(source, "<specchain export>", "exec"), module.__dict__)
    return getattr(module, class_name)


def build_torch_module(model: SpecChain, class_name: str = "Model") -> Any:
    """The generated module class, instantiated, in the model's dtype, with its weights."""
    import torch

    names = assign_names(model, class_name)
    module = load_module_class(to_source(model, class_name), class_name)()
    if model.dtype is not None:
        module.to(getattr(torch, str(model.dtype)))
    state = {k: torch.from_numpy(v) for k, v in torch_state(model, names).items()}
    module.load_state_dict(state, strict=True)
    return module


def verify(
    model: SpecChain,
    inputs: Any = None,
    targets: Any = None,
    loss: Any = None,
    train: bool = False,
    class_name: str = "Model",
) -> VerifyReport:
    """Run the spec and its exported module on the same inputs (and cotangent) and compare
    outputs, the input gradients and every parameter gradient (by state_dict name).

    Training mode is only comparable without random masks (dropout p = 0)."""
    import torch

    names = assign_names(model, class_name)
    module = build_torch_module(model, class_name)
    module.train(train)
    if inputs is None:
        inputs = arguments.with_example_lengths(names, model.in_type, example_input(model, rng=0))
    y_spec, tape = model.forward(inputs, train=train, rng=0)
    y = padded.strip(y_spec)  # lengths ride along in the spec; the module returns the data
    if loss is not None:  # on a padded output, the loss leaves the padding out (as in training)
        value, dy = loss.value_and_grad(y_spec, targets)
    else:
        value, dy = None, _random_like(y, np.random.default_rng(7))
    dx, grads = model.backward(tape, dy)

    data, lengths = arguments.split_lengths(names, inputs)
    if padded.found(padded.attach(data, model.in_type)):
        raise ExportError(
            "the inputs carry lengths that the model does not declare, so its exported forward "
            "takes none; start the model with sc.Input(type, name=..., lengths=True) for each "
            "padded input, or verify without lengths"
        )
    in_leaves = [torch.from_numpy(np.array(a)) for a in leaves(data)]
    for leaf in in_leaves:
        if leaf.is_floating_point():
            leaf.requires_grad_(True)
    rebuilt = rebuild(data, iter(in_leaves))
    torch_lengths = {i: torch.from_numpy(np.asarray(v)) for i, v in lengths.items()}
    out = module(*arguments.call_arguments(names, rebuilt, torch_lengths))
    out_leaves = leaves(out)
    dy_leaves = leaves(dy)
    if len(out_leaves) != len(leaves(y)):
        raise ExportError(
            f"the exported module returns {len(out_leaves)} arrays, the spec "
            f"{len(leaves(y))}: {structure((out,))} != {structure((y,))}"
        )
    diffs: dict[str, tuple[float, float]] = {}
    for i, (ours, theirs) in enumerate(zip(leaves(y), out_leaves)):
        diffs[f"output[{i}]"] = _diff(f"output[{i}]", ours, theirs.detach().numpy())
    pairs = [
        (o, torch.from_numpy(np.asarray(d))) for o, d in zip(out_leaves, dy_leaves) if d is not None
    ]
    torch.autograd.backward([o for o, _ in pairs], [d for _, d in pairs])
    for i, (ours, leaf) in enumerate(zip(leaves(dx), in_leaves)):
        if ours is not None and leaf.is_floating_point():  # no gradient in torch: zero
            theirs = np.zeros_like(ours) if leaf.grad is None else leaf.grad.numpy()
            diffs[f"input_grad[{i}]"] = _diff(f"input_grad[{i}]", ours, theirs)
    torch_params = dict(module.named_parameters())
    for key, grad in grads.items():
        torch_key = names.state_key(model, key)
        theirs = torch_params[torch_key].grad
        reference = np.zeros_like(grad) if theirs is None else theirs.numpy()
        diffs[torch_key] = _diff(torch_key, grad, reference)
    loss_pair = None
    if loss is not None and value is not None:
        theirs_y = rebuild(y, iter(o.detach().numpy() for o in out_leaves))
        if isinstance(y_spec, padded.Padded):
            theirs_y = y_spec.with_data(theirs_y)
        torch_value = float(loss(theirs_y, targets))
        loss_pair = (float(value), torch_value)
    return VerifyReport(diffs, loss_pair)


def _diff(key: str, ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    if ours.shape != theirs.shape:  # never broadcast one onto the other
        raise ExportError(
            f"{key}: specchain has shape {list(ours.shape)}, the exported module "
            f"{list(theirs.shape)}"
        )
    if ours.size == 0:
        return 0.0, 0.0
    delta = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    scale = np.abs(theirs.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(delta == 0, 0.0, delta / scale)
    return float(delta.max()), float(np.nanmax(rel))


def _random_like(value: Any, rng: np.random.Generator) -> Any:
    """A normal cotangent in each leaf's dtype."""
    return tree_map(lambda leaf: rng.standard_normal(leaf.shape).astype(leaf.dtype), value)


def load_torch_state(model: SpecChain, state: Any, class_name: str = "Model") -> None:
    """Fill ``model`` from a torch module or state_dict with the exported module's key names
    (strict: missing, unexpected and mis-shaped entries are all reported at once)."""
    if hasattr(state, "state_dict") and callable(state.state_dict):
        state = state.state_dict()
    if not isinstance(state, Mapping):
        raise TypeError(
            f"expected a torch module or a state_dict mapping, got {type(state).__name__}"
        )
    names = assign_names(model, class_name)
    current = model.named_parameters()
    ours = {names.state_key(model, key): key for key in current}
    missing = [k for k in ours if k not in state]
    unexpected = [k for k in state if k not in ours]
    problems: list[str] = []
    if missing or unexpected:
        problems.append(f"missing keys: {missing}; unexpected keys: {unexpected}")
    arrays: dict[str, np.ndarray] = {}
    for key, our_key in ours.items():  # named by the torch keys, which the caller knows
        if key in state:
            value, expected = _as_numpy(state[key]), current[our_key]
            if value.shape != expected.shape:
                problems.append(f"{key}: shape {list(value.shape)} != {list(expected.shape)}")
            elif value.dtype != expected.dtype:
                problems.append(f"{key}: dtype {value.dtype} != the model's {expected.dtype}")
            arrays[our_key] = value
    if problems:
        raise StateDictError("load_torch_state: " + "\n  ".join(problems))
    model.load_state_dict(arrays, strict=True)


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return np.asarray(value.detach().cpu().numpy())
    return np.asarray(value)
