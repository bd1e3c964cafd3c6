"""``fit``'s arguments, checked before any training, with errors that give the fix.

The usual mistakes each get their own message: a loss given as a string or as a class, ``mse``
with integer class labels, a model whose output is a tuple (a recurrent layer with
``return_state=True``), and batch-first data fed to a time-major model. Metrics are resolved
here too: ``"accuracy"`` or any ``metric(outputs, targets) -> float``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from specchain import losses
from specchain.batches import Examples
from specchain.callbacks import Callback
from specchain.chain import SpecChain
from specchain.losses import CrossEntropyLoss, Loss, MSELoss
from specchain.types import ShapeError, SpecError, TupleType
from specchain.validate import SpecTypeError

Metric = Callable[[Any, np.ndarray], float]
LOSSES = "sc.losses.cross_entropy (= sc.losses.CrossEntropyLoss()) or sc.losses.mse (= MSELoss())"


def check_loss(owner: str, loss: object) -> Loss:
    """``loss`` if it is a loss object; a string, a class or a function gets the fix."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        known = getattr(losses, loss, None)
        fix = (
            f"pass the object sc.losses.{loss} (or sc.losses.{type(known).__name__}())"
            if isinstance(known, Loss)
            else f"the losses are {LOSSES}"
        )
        raise SpecTypeError(f"{owner}: loss must be a loss object, not the string {loss!r}; {fix}")
    if isinstance(loss, type) and issubclass(loss, Loss):
        raise SpecTypeError(
            f"{owner}: loss must be a loss object, got the class {loss.__name__} itself; pass an "
            f"instance: sc.losses.{loss.__name__}() (with its options, e.g. reduction=)"
        )
    raise SpecTypeError(
        f"{owner}: loss must be a specchain loss object (with value_and_grad), got "
        f"{type(loss).__name__}; use {LOSSES}, or subclass sc.losses.Loss"
    )


def check_loss_fits(owner: str, model: SpecChain, loss: Loss, targets: np.ndarray) -> None:
    """Refuse a built-in loss on a tuple output, and ``mse`` on integer labels."""
    builtin = isinstance(loss, (MSELoss, CrossEntropyLoss))
    if builtin and isinstance(model.out_type, TupleType):
        raise ShapeError(
            f"{owner}: the model outputs a tuple {model.out_type}, but {loss.name} takes one "
            "array; build the recurrent layer with return_state=False (the default), or end the "
            "model with sc.modules.Select(0) to keep the output sequence"
        )
    if isinstance(loss, MSELoss) and targets.dtype.kind in "biu":
        raise SpecTypeError(
            f"{owner}: mse got integer targets ({targets.dtype}{list(targets.shape)}); for class "
            "labels use sc.losses.cross_entropy (logits [..., C], integer labels [...]); for "
            "regression pass float targets, e.g. targets.astype(np.float32)"
        )


def check_example_counts(
    owner: str, model: SpecChain, inputs: Examples, targets: np.ndarray, out_axis: int
) -> int:
    """The number of examples N, the same in every input and in the targets; batch-first data
    into a time-major model gets the fix."""
    inputs.check_counts(owner)
    first = inputs.parts[0]
    in_axis, shape = first.axis, first.data.shape
    n, wanted = first.n, targets.shape[out_axis]
    if n == wanted:
        return n
    message = (
        f"{owner}: {first.where} hold {n} examples on axis {in_axis} (shape {list(shape)}) but "
        f"targets hold {wanted} on axis {out_axis} (shape {list(targets.shape)}); they must match"
    )
    if in_axis == 1 and shape[0] == wanted:
        swapped = [shape[1], shape[0], *shape[2:]]
        message += (
            f". The inputs look batch-first ([N, T, ...], N = {wanted}) but the model takes "
            f"{model.in_type} (time-major): build its first layer with batch_first=True, or "
            f"pass x.swapaxes(0, 1) (shape {swapped})"
        )
    raise ShapeError(message)


def resolve_metrics(owner: str, metrics: Sequence[str | Metric]) -> dict[str, Metric]:
    """``{name: metric}``: ``"accuracy"`` is ``specchain.train.accuracy``; a callable is named
    by its ``__name__``."""
    from specchain.train import accuracy

    if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
        raise SpecTypeError(
            f"{owner}: metrics must be a list such as ['accuracy'], got {metrics!r}"
        )
    resolved: dict[str, Metric] = {}
    for metric in metrics:
        if metric == "accuracy":
            resolved["accuracy"] = accuracy
        elif callable(metric) and not isinstance(metric, str):
            resolved[getattr(metric, "__name__", type(metric).__name__)] = metric
        else:
            raise SpecError(
                f"{owner}: unknown metric {metric!r}; use 'accuracy' or a function "
                "metric(outputs, targets) -> float"
            )
    return resolved


def check_callbacks(owner: str, callbacks: Sequence[Callback]) -> list[Callback]:
    if not isinstance(callbacks, (list, tuple)):
        raise SpecTypeError(f"{owner}: callbacks must be a list of Callback objects")
    for callback in callbacks:
        if isinstance(callback, type) and issubclass(callback, Callback):
            raise SpecTypeError(
                f"{owner}: callbacks hold the class {callback.__name__}; pass an instance, "
                f"e.g. {callback.__name__}()"
            )
        if not isinstance(callback, Callback):
            raise SpecTypeError(
                f"{owner}: callbacks must be sc.callbacks.Callback objects (e.g. "
                f"EarlyStopping(patience=3)), got {type(callback).__name__}"
            )
    return list(callbacks)
