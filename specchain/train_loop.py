"""The inside of ``fit``: one epoch of mini-batch steps (``EpochRunner``), the step's forward,
loss, backward and clipping (``gradients``), and the validation pass after an epoch.

Every step checks its loss and gradients before the optimizer runs: a NaN or infinite value
raises ``TrainingError`` naming the epoch and step, with no parameter changed by that step.
Optimizer steps run inside the ``DeferredInterrupt``'s critical section, so a Ctrl-C never cuts
an update (``specchain.interrupts``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from specchain.batches import Examples
from specchain.chain import SpecChain
from specchain.checkpoints import TrainingState
from specchain.fit_args import Metric
from specchain.history import History
from specchain.interrupts import DeferredInterrupt
from specchain.losses import Loss
from specchain.optim import Optimizer, clip_grad_norm
from specchain.progress import EpochProgress
from specchain.types import SpecError

if TYPE_CHECKING:
    from specchain.engines.torch_engine import TorchEngine


class TrainingError(SpecError):
    """Training cannot go on (a NaN or infinite loss or gradient); ``history`` holds what was
    done before the failing step."""

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history


class EpochRunner:
    """One ``fit`` call's loop state: the data, the step function and the History it fills."""

    def __init__(
        self,
        chain: SpecChain,
        loss: Loss,
        optimizer: Optimizer,
        inputs: Examples,
        targets: np.ndarray,
        target_axis: int,
        batch_size: int,
        clip: float | None,
        scorers: dict[str, Metric],
        state: TrainingState,
        engine: TorchEngine | None = None,
    ) -> None:
        self.chain, self.loss, self.optimizer, self.engine = chain, loss, optimizer, engine
        self.inputs, self.targets, self.target_axis = inputs, targets, target_axis
        self.batch_size, self.clip, self.scorers, self.state = batch_size, clip, scorers, state
        self.n = inputs.n
        self.start, self.previous_time = time.perf_counter(), state.history.wall_time

    def clock(self) -> None:
        """Bring ``wall_time`` up to date (it continues a resumed run's)."""
        self.state.history.wall_time = self.previous_time + time.perf_counter() - self.start

    def epoch(
        self, epoch: int, shuffle: bool, printer: EpochProgress, guard: DeferredInterrupt
    ) -> None:
        """Train one epoch and append its loss, metrics and time to the History."""
        history, generator = self.state.history, self.state.rng
        steps = -(-self.n // self.batch_size)
        began = time.perf_counter()
        order = generator.permutation(self.n) if shuffle else np.arange(self.n)
        total, seen = 0.0, 0
        scores = dict.fromkeys(self.scorers, 0.0)
        printer.start(epoch, steps)
        for step in range(1, steps + 1):
            index = order[(step - 1) * self.batch_size : step * self.batch_size]
            xb = self.inputs.take(index)  # the same examples from every input
            yb = np.take(self.targets, index, axis=self.target_axis)
            try:
                value, norm, update, y = self._gradients(xb, yb, generator)
            except (NotFinite, FloatingPointError) as err:
                self.clock()
                raise TrainingError(
                    f"{err} at epoch {epoch}, step {step} (of {steps}); training stopped "
                    "before this step updated the parameters. Check the inputs and targets for "
                    "NaN/inf values, or lower the learning rate or pass clip= (a max gradient "
                    "norm) to fit",
                    history,
                ) from None
            with guard.critical():  # a Ctrl-C waits for the update to complete
                update()
                if norm is not None:
                    history.grad_norm.append(norm)
                history.step_loss.append(value)
                history.sequences_seen += len(index)
            total += value * len(index)
            seen += len(index)
            for name, scorer in self.scorers.items():
                scores[name] += float(scorer(y, yb)) * len(index)
            printer.step(total / seen)
        history.epoch_loss.append(total / seen)
        for name, score in scores.items():
            history.metrics.setdefault(name, []).append(score / seen)
        history.epoch_time.append(time.perf_counter() - began)
        self.clock()

    def _gradients(
        self, xb: Any, yb: np.ndarray, generator: np.random.Generator
    ) -> tuple[float, float | None, Callable[[], None], Any]:
        """One step's ``(loss, gradient norm or None, the update to commit, outputs)``, on
        the numpy engine or the torch engine."""
        if self.engine is not None:
            value, norm, y = self.engine.gradients(xb, yb, outputs=bool(self.scorers))
            return value, norm, self.engine.update, y
        value, norm, grads, y = gradients(self.chain, self.loss, xb, yb, generator, self.clip)
        return value, norm, lambda: self.optimizer.step(grads), y

    def refresh(self) -> None:
        """With the torch engine: take the spec's weights and optimizer settings (before each
        epoch, so changes made between epochs count), and seed its dropout stream from a copy of
        the run's generator as the epoch starts (a resumed run restores that generator, so it
        draws the masks the uninterrupted run drew)."""
        if self.engine is not None:
            drawn = int(copy.deepcopy(self.state.rng).integers(2**62))  # rng as the epoch starts
            epoch = self.state.epoch  # and the epoch: new masks even without shuffling
            self.engine.seed(int(np.random.SeedSequence([drawn, epoch]).generate_state(1)[0]))
            self.engine.refresh()

    def sync(self) -> None:
        """With the torch engine: write its weights and optimizer state into the spec (after
        each epoch, before validation, callbacks and checkpoints read them)."""
        if self.engine is not None:
            self.engine.finish()

    def validate(self, inputs: Examples, targets: np.ndarray) -> None:
        """The validation loss and metrics, in inference mode, appended to the History."""
        history = self.state.history
        outputs = self.chain(inputs.call_input())
        history.val_loss.append(float(self.loss(outputs, targets)))
        for name, scorer in self.scorers.items():
            history.metrics.setdefault(f"val_{name}", []).append(float(scorer(outputs, targets)))


class NotFinite(Exception):
    """A step met a NaN or infinite loss or gradient (``fit`` adds the epoch and step)."""


def gradients(
    chain: SpecChain,
    loss: Loss,
    xb: Any,
    yb: np.ndarray,
    generator: np.random.Generator,
    clip: float | None,
) -> tuple[float, float | None, dict[str, np.ndarray], Any]:
    """Forward, loss, backward, clip: ``(loss value, gradient norm or None, gradients,
    outputs)``. Raises ``NotFinite`` if the loss or a gradient is not finite."""
    y, tape = chain.forward(xb, train=True, rng=generator)
    value, dy = loss.value_and_grad(y, yb)
    if not math.isfinite(value):
        raise NotFinite(f"the loss is {value}")
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite gradients are checked below
        _, grads = chain.backward(tape, dy)
    bad = next((name for name, g in grads.items() if not np.isfinite(g).all()), None)
    if bad is not None:
        raise NotFinite(f"the gradient of {bad!r} is not finite (the loss is {value})")
    norm = clip_grad_norm(grads, clip) if clip is not None else None
    return value, norm, grads, y
