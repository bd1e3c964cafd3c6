"""Proof of equivalence and import back: the only part of the exporter that uses torch, and only
inside functions (``import specchain`` works without torch).

- ``verify(model, inputs)`` runs the spec and the generated module side by side and returns a
  ``VerifyReport`` (``verdict.py``): the largest differences of outputs, input gradients, every
  parameter gradient (and the loss), the tolerances they were held to, and ``.ok``.
- ``build_torch_module(model)`` instantiates the generated class with the model's weights.

``load_torch_state`` (weights back from PyTorch) lives in ``checkpoints.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specchain import padded
from specchain.chain import SpecChain
from specchain.examples import example_input
from specchain.exporters.pytorch import arguments
from specchain.exporters.pytorch.emitters import ExportError
from specchain.exporters.pytorch.naming import assign_names, torch_state
from specchain.exporters.pytorch.source import to_source
from specchain.exporters.pytorch.verdict import TensorCheck, VerifyReport, check_tensor
from specchain.tree import leaves, rebuild, structure, tree_map


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
    *,
    rtol: float | None = None,
    atol: float | None = None,
    raise_on_fail: bool = False,
) -> VerifyReport:
    """Run the spec and its exported module on the same inputs (and cotangent) and compare
    outputs, the input gradients and every parameter gradient (by state_dict name), and the loss
    value when ``loss`` is given.

    ``inputs`` defaults to an example input of the model's type. Each tensor is held to
    ``|spec - torch| <= atol + rtol * |torch|`` elementwise, with the numerics contract's
    tolerances for its dtype (float64: rtol 1e-7, atol 1e-9; float32: rtol 1e-4, atol 1e-5) unless
    ``rtol`` and ``atol`` are given (both). Returns the report (``report.ok``, ``print(report)``);
    with ``raise_on_fail=True`` a ``FAIL`` raises ``VerificationError`` (an ``AssertionError``)
    holding the table. Training mode compares deterministic graphs only: a node that draws random
    numbers in training (dropout with p > 0) is refused with an ExportError naming it."""
    import torch

    if (rtol is None) != (atol is None):
        raise ValueError(
            f"verify: give rtol and atol together (got rtol={rtol}, atol={atol}), or neither "
            "for the numerics contract's tolerances by dtype"
        )
    tolerances = None if rtol is None or atol is None else (rtol, atol)

    names = assign_names(model, class_name)
    module = build_torch_module(model, class_name)
    module.train(train)
    if inputs is None:
        inputs = arguments.with_example_lengths(names, model.in_type, example_input(model, rng=0))
    y_spec, tape = model.forward(inputs, train=train, rng=0)
    if train:
        _refuse_random_nodes(model, inputs, tape.values)
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
    checks: dict[str, TensorCheck] = {}

    def compare(key: str, ours: np.ndarray, theirs: np.ndarray) -> None:
        checks[key] = check_tensor(key, ours, theirs, tolerances)

    for i, (ours, theirs) in enumerate(zip(leaves(y), out_leaves)):
        compare(f"output[{i}]", ours, theirs.detach().numpy())
    pairs = [
        (o, torch.from_numpy(np.asarray(d))) for o, d in zip(out_leaves, dy_leaves) if d is not None
    ]
    torch.autograd.backward([o for o, _ in pairs], [d for _, d in pairs])
    for i, (ours, leaf) in enumerate(zip(leaves(dx), in_leaves)):
        if ours is not None and leaf.is_floating_point():  # no gradient in torch: zero
            theirs = np.zeros_like(ours) if leaf.grad is None else leaf.grad.numpy()
            compare(f"input_grad[{i}]", ours, theirs)
    torch_params = dict(module.named_parameters())
    for key, grad in grads.items():
        torch_key = names.state_key(model, key)
        theirs = torch_params[torch_key].grad
        reference = np.zeros_like(grad) if theirs is None else theirs.numpy()
        compare(torch_key, grad, reference)
    loss_pair = None
    if loss is not None and value is not None:
        theirs_y = rebuild(y, iter(o.detach().numpy() for o in out_leaves))
        if isinstance(y_spec, padded.Padded):
            theirs_y = y_spec.with_data(theirs_y)
        torch_value = loss(theirs_y, targets)
        dtype = leaves(y)[0].dtype  # the loss is held to the output's tolerances
        compare("loss", np.asarray(value, dtype=dtype), np.asarray(torch_value, dtype=dtype))
        loss_pair = (float(value), float(torch_value))
    report = VerifyReport(checks, loss_pair)
    return report.assert_ok() if raise_on_fail else report


def _random_like(value: Any, rng: np.random.Generator) -> Any:
    """A normal cotangent in each leaf's dtype."""
    return tree_map(lambda leaf: rng.standard_normal(leaf.shape).astype(leaf.dtype), value)


def _refuse_random_nodes(model: SpecChain, inputs: Any, values: dict[str, Any]) -> None:
    """Training mode compares only deterministic graphs: a node whose training-mode output
    changes with the random stream (dropout with p > 0, a user's noise layer) draws other
    numbers in torch, so its outputs differ by design. Found by a second forward with another
    seed; the first such node (in execution order) is named."""
    _, other = model.forward(inputs, train=True, rng=1)
    for step in model.plan.steps:
        mine = leaves(padded.strip(values[step.node]))
        theirs = leaves(padded.strip(other.values[step.node]))
        if not all(np.array_equal(a, b, equal_nan=True) for a, b in zip(mine, theirs)):
            raise ExportError(
                f"verify(train=True): node {step.node!r} ({step.spec.kind}) draws random numbers "
                "in training (dropout masks), and numpy and torch draw different ones, so their "
                "training-mode outputs differ by design; verify with train=False (no dropout), "
                f"or build the model with a rate of 0 for {step.node!r} to compare training mode"
            )
