"""Training loop, evaluation and sampling: ``fit``, ``evaluate``, ``accuracy``, ``generate``.

Data convention (time-major, like ``nn.LSTM(batch_first=False)``): ``fit`` takes ``(inputs,
targets)`` holding N examples, batched on the axes ``specchain.batches`` describes (``[T, N, F]``
inputs with ``[N]`` labels or ``[T, N, ...]`` per-step targets). Both sides must hold the same N.
Padded batches of variable-length sequences: give the inputs as ``(x, lengths)`` (or a
``Padded``) with ``lengths`` int ``[N]``; each mini-batch takes its examples' lengths, and the
loss skips the padding of the model's ``Padded`` output (``specchain.losses``). Targets stay
plain arrays (their padded positions are never read).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
from tqdm.auto import tqdm

from specchain.batches import Data, Inputs, batch_axes, unpack
from specchain.chain import SpecChain
from specchain.generation import generate
from specchain.interrupts import DeferredInterrupt
from specchain.losses import Loss
from specchain.optim import Optimizer, clip_grad_norm
from specchain.params import RngLike, runtime_generator
from specchain.spec import NNModuleSpec
from specchain.types import ShapeError, SpecError
from specchain.validate import (
    check_int_array,
    check_number,
    check_positive_int,
    out_of_range,
)


class TrainingError(SpecError):
    """Training cannot go on (a NaN or infinite loss or gradient); ``history`` holds what was
    done before the failing step."""

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history


class TrainingInterrupted(KeyboardInterrupt):
    """``fit`` stopped by Ctrl-C (SIGINT); catch it as ``KeyboardInterrupt``.

    ``history`` holds the run so far, and the parameters are those after its last step
    (``history.steps``), unless ``forced``: a second Ctrl-C during an update stops at once and
    the parameters may then mix two steps.
    """

    def __init__(self, message: str, history: History, forced: bool) -> None:
        super().__init__(message)
        self.history = history
        self.forced = forced


@attrs.define
class History:
    """What ``fit`` did.

    Attributes:
        epoch_loss: mean training loss of each epoch (steps weighted by their batch sizes).
        step_loss: the loss of every optimizer step, in order.
        epoch_time: wall-clock seconds of each epoch.
        grad_norm: total gradient norm of every step before clipping (only when ``clip`` is set).
        sequences_seen: examples processed, over all epochs.
        wall_time: wall-clock seconds of the whole run.
    """

    epoch_loss: list[float] = attrs.field(factory=list)
    step_loss: list[float] = attrs.field(factory=list)
    epoch_time: list[float] = attrs.field(factory=list)
    grad_norm: list[float] = attrs.field(factory=list)
    sequences_seen: int = 0
    wall_time: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.epoch_loss)

    @property
    def steps(self) -> int:
        return len(self.step_loss)

    @property
    def final_loss(self) -> float:
        """The mean loss of the last epoch (NaN before any epoch finished)."""
        return self.epoch_loss[-1] if self.epoch_loss else math.nan


EpochCallback = Callable[[int, History], bool | None]


def _as_model(model: SpecChain | NNModuleSpec) -> SpecChain:
    return model.as_chain() if isinstance(model, NNModuleSpec) else SpecChain.of(model)


def _check_optimizer(model: SpecChain, optimizer: Optimizer) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer must be a specchain.optim optimizer, got {type(optimizer).__name__}"
        )
    mine, theirs = model.named_parameters(), optimizer.params
    stale = [name for name, p in mine.items() if theirs.get(name) is not p]
    if stale:
        raise SpecError(
            f"the optimizer does not hold the model's current parameter arrays (for {stale}): "
            "it was built for another model, or before model.to(...) / model.load_state_dict; "
            "build it from the model itself, e.g. SGD(model, lr=0.1)"
        )


# --- fit --------------------------------------------------------------------------------------


def fit(
    model: SpecChain,
    data: Data,
    loss: Loss,
    optimizer: Optimizer,
    epochs: int = 1,
    batch_size: int = 32,
    clip: float | None = None,
    rng: RngLike = 0,
    progress: bool = True,
    on_epoch: EpochCallback | None = None,
) -> History:
    """Train ``model`` on ``data`` for ``epochs`` passes of shuffled mini-batches.

    Args:
        model: the chain to train (its parameters are updated in place by ``optimizer``).
        data: ``(inputs, targets)`` with N examples, batched as the module docstring says
            (``[T, N, F]`` inputs with ``[N]`` labels, or ``[T, N, ...]`` targets), or a
            ``specchain.data`` dataset (anything with ``.inputs`` and ``.targets``). The inputs
            may be ``(x, lengths)`` or a ``Padded``: a padded batch with int ``[N]`` lengths.
        loss: e.g. ``sc.losses.cross_entropy`` or ``sc.losses.mse`` (a scalar reduction).
        optimizer: an ``specchain.optim`` optimizer built on ``model``.
        epochs: passes over the data.
        batch_size: examples per step; the last batch of an epoch may be smaller.
        clip: if given, ``clip_grad_norm(grads, clip)`` before every step.
        rng: seeds the shuffling and the training-mode randomness (dropout): the same seed gives
            the same run.
        progress: show a tqdm bar per epoch with the running mean loss.
        on_epoch: ``on_epoch(epoch, history)`` after each epoch (``epoch`` counts from 1);
            returning True stops training.

    Returns:
        A ``History``. A NaN or infinite loss (or gradient) raises ``TrainingError`` naming the
        epoch and the step, before that step changes any parameter (``err.history`` holds the
        run so far).

    Ctrl-C (SIGINT) never cuts a parameter update: one that arrives during an update is held
    until the update (and its History entry) is complete; one that arrives elsewhere (forward,
    backward, a callback) stops at once, before the next update. Either way the parameters are
    all from the same step, and ``fit`` raises ``TrainingInterrupted`` (a ``KeyboardInterrupt``,
    which propagates as in Keras) with the History so far as ``err.history``; with ``progress``
    it also prints a one-line note to stderr. A second Ctrl-C during an update stops at once
    (``err.forced``: the parameters may then mix two steps). Deferral needs the main thread and
    a Python-level SIGINT handler (the default); elsewhere Ctrl-C behaves as usual.
    """
    chain = _as_model(model)
    inputs, targets = unpack("fit", data)
    epochs = check_positive_int("fit", "epochs", epochs)
    batch_size = check_positive_int("fit", "batch_size", batch_size)
    if clip is not None:
        clip = check_number("fit", "clip", clip)
        if not clip > 0:
            raise out_of_range("fit", "clip", "> 0 (a max gradient norm) or None", clip)
    _check_optimizer(chain, optimizer)
    in_axis, out_axis = batch_axes(chain, inputs.call_input(), targets)
    inputs.check_lengths(chain, in_axis, "fit")
    n = inputs.data.shape[in_axis]
    if targets.shape[out_axis] != n:
        raise ShapeError(
            f"inputs hold {n} examples on axis {in_axis} (shape {list(inputs.data.shape)}) but "
            f"targets hold {targets.shape[out_axis]} on axis {out_axis} (shape "
            f"{list(targets.shape)}); they must match"
        )
    if n == 0:
        raise SpecError(f"fit got no training examples (inputs of shape {list(inputs.data.shape)})")
    generator = runtime_generator(rng)
    history = History()
    steps_per_epoch = -(-n // batch_size)
    start = time.perf_counter()
    guard = DeferredInterrupt()
    try:
        with guard:
            for epoch in range(1, epochs + 1):
                epoch_start = time.perf_counter()
                order = generator.permutation(n)
                total, seen = 0.0, 0
                bar = tqdm(
                    total=steps_per_epoch,
                    desc=f"epoch {epoch}/{epochs}",
                    disable=not progress,
                    leave=False,
                    unit="step",
                )
                try:
                    for step in range(1, steps_per_epoch + 1):
                        index = order[(step - 1) * batch_size : step * batch_size]
                        xb = inputs.take(index, in_axis)
                        yb = np.take(targets, index, axis=out_axis)
                        try:
                            value, norm, grads = _gradients(chain, loss, xb, yb, generator, clip)
                        except _NotFinite as err:
                            history.wall_time = time.perf_counter() - start
                            raise TrainingError(
                                f"{err} at epoch {epoch}, step {step} (of {steps_per_epoch}); "
                                "training stopped before this step updated the parameters. "
                                "Check the inputs and targets for NaN/inf values, or lower the "
                                "learning rate or pass clip= (a max gradient norm) to fit",
                                history,
                            ) from None
                        with guard.critical():  # a Ctrl-C waits for the update to complete
                            optimizer.step(grads)
                            if norm is not None:
                                history.grad_norm.append(norm)
                            history.step_loss.append(value)
                            history.sequences_seen += len(index)
                        total += value * len(index)
                        seen += len(index)
                        bar.set_postfix(loss=f"{total / seen:.4f}", refresh=False)
                        bar.update(1)
                finally:
                    bar.close()
                history.epoch_loss.append(total / seen)
                history.epoch_time.append(time.perf_counter() - epoch_start)
                history.wall_time = time.perf_counter() - start
                if on_epoch is not None and on_epoch(epoch, history) is True:
                    break
    except KeyboardInterrupt as err:
        history.wall_time = time.perf_counter() - start
        stopped = _interrupted(history, epochs, guard.forced)
        if progress:
            print(stopped, file=sys.stderr)
        raise stopped.with_traceback(err.__traceback__) from None
    return history


def _interrupted(history: History, epochs: int, forced: bool) -> TrainingInterrupted:
    where = (
        f"during step {history.steps + 1}: a second Ctrl-C cut that update, so the parameters "
        f"may mix steps {history.steps} and {history.steps + 1}"
        if forced
        else f"after step {history.steps}: the parameters are those of that step"
    )
    return TrainingInterrupted(
        f"fit interrupted by Ctrl-C {where} ({history.epochs} of {epochs} epochs complete); "
        "the History so far is err.history",
        history,
        forced,
    )


class _NotFinite(Exception):
    """A step met a NaN or infinite loss or gradient (``fit`` adds the epoch and step)."""


def _gradients(
    chain: SpecChain,
    loss: Loss,
    xb: Any,
    yb: np.ndarray,
    generator: np.random.Generator,
    clip: float | None,
) -> tuple[float, float | None, dict[str, np.ndarray]]:
    """Forward, loss, backward, clip: ``(loss value, gradient norm or None, gradients)``.
    Raises ``_NotFinite`` if the loss or a gradient is not finite."""
    y, tape = chain.forward(xb, train=True, rng=generator)
    value, dy = loss.value_and_grad(y, yb)
    if not math.isfinite(value):
        raise _NotFinite(f"the loss is {value}")
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite gradients are checked below
        _, grads = chain.backward(tape, dy)
    bad = next((name for name, g in grads.items() if not np.isfinite(g).all()), None)
    if bad is not None:
        raise _NotFinite(f"the gradient of {bad!r} is not finite (the loss is {value})")
    norm = clip_grad_norm(grads, clip) if clip is not None else None
    return value, norm, grads


# --- evaluation -------------------------------------------------------------------------------


def evaluate(model: SpecChain, inputs: Inputs, targets: np.ndarray, loss: Loss) -> float:
    """The loss of the whole set in inference mode (dropout off), in one forward pass;
    ``inputs`` may be ``(x, lengths)`` or a ``Padded`` (the loss then skips the padding)."""
    chain = _as_model(model)
    examples, targets = unpack("evaluate", (inputs, targets))
    return float(loss(chain(examples.call_input()), targets))


def accuracy(logits: np.ndarray, labels: np.ndarray, ignore_index: int | None = None) -> float:
    """The fraction of positions where ``argmax(logits[..., :])`` equals ``labels[...]``.

    ``logits`` is ``[..., C]`` and ``labels`` the integer array ``[...]`` (ties go to the first
    class, as ``argmax`` does). Positions whose label is ``ignore_index`` do not count.
    """
    if not isinstance(logits, np.ndarray) or logits.ndim < 1:
        raise ShapeError("accuracy: logits must be a numpy array [..., C] (classes last)")
    labels = check_int_array("accuracy", "labels", np.asarray(labels), "integer class indices")
    if logits.shape[:-1] != labels.shape:
        raise ShapeError(
            f"accuracy: logits {list(logits.shape)} need labels of shape "
            f"{list(logits.shape[:-1])}, got {list(labels.shape)}"
        )
    keep = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    if not keep.any():
        raise SpecError("accuracy of no predictions is undefined (no labels to compare)")
    hits = (np.argmax(logits, axis=-1) == labels) & keep
    return float(hits.sum() / keep.sum())


__all__ = [
    "History",
    "TrainingError",
    "TrainingInterrupted",
    "accuracy",
    "batch_axes",
    "evaluate",
    "fit",
    "generate",
]
