"""Callbacks for ``fit``, as Keras users know them: ``EarlyStopping`` and ``ModelCheckpoint``.

A callback subclasses ``Callback`` and overrides the hooks it needs. ``fit`` calls, in order:
``set_model(model)``; ``on_train_begin(history)`` (the History so far: empty, or restored from a
checkpoint when a run resumes); per epoch ``on_epoch_begin(epoch)`` and ``on_epoch_end(epoch,
logs)``; and ``on_train_end(history)``. Epochs count from 1, as the printed ``Epoch 3/20``
lines do (Keras counts from 0). ``logs`` maps ``"loss"``, ``"val_loss"`` (with validation data),
each metric (``"accuracy"``, ``"val_accuracy"``) and ``"time"`` to that epoch's values.
``on_epoch_end`` returning True stops training after this epoch; set ``self.reason`` to say why
(``fit`` prints it).

Monitored values: ``mode="auto"`` maximises names that contain ``acc`` and minimises the rest.
A resumed run rebuilds the callbacks' best value and patience count from the restored History,
so it stops and saves at the same epochs as the uninterrupted run.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from specchain.chain import SpecChain
from specchain.history import History
from specchain.types import SpecError
from specchain.validate import (
    check_choice,
    check_flag,
    check_non_negative,
    check_non_negative_int,
    wrong_type,
)

Logs = dict[str, float]


class Callback:
    """The hooks ``fit`` calls (module docstring); each does nothing unless overridden."""

    model: SpecChain | None = None
    reason: str = ""

    def set_model(self, model: SpecChain) -> None:
        self.model = model

    def on_train_begin(self, history: History) -> None:
        """Before the first epoch of this call; ``history`` holds the epochs done before."""

    def on_epoch_begin(self, epoch: int) -> None:
        """Before epoch ``epoch`` (counting from 1)."""

    def on_epoch_end(self, epoch: int, logs: Logs) -> bool | None:
        """After epoch ``epoch``; return True to stop training (and set ``self.reason``)."""
        return None

    def on_train_end(self, history: History) -> None:
        """After the last epoch of this call (also after a stop)."""


class _Monitor:
    """The best value of one logged quantity and the epochs since it improved."""

    def __init__(self, owner: str, monitor: str, mode: str, min_delta: float) -> None:
        if not isinstance(monitor, str):
            raise wrong_type(owner, "monitor", "a logged name such as 'val_loss'", monitor)
        mode = check_choice(owner, "mode", mode, ("auto", "min", "max"))
        self.owner, self.monitor = owner, monitor
        self.maximise = mode == "max" or (mode == "auto" and "acc" in monitor)
        self.min_delta = check_non_negative(owner, "min_delta", min_delta)
        self.reset()

    def reset(self) -> None:
        self.best = -math.inf if self.maximise else math.inf
        self.best_epoch = 0
        self.wait = 0

    def value(self, logs: Logs) -> float:
        if self.monitor not in logs:
            fix = " (pass validation_data= to fit)" if self.monitor.startswith("val_") else ""
            raise SpecError(
                f"{self.owner} monitors {self.monitor!r}, but the logs hold only "
                f"{sorted(logs)}{fix}; pass monitor= one of those"
            )
        return logs[self.monitor]

    def update(self, epoch: int, value: float) -> bool:
        """Record epoch ``epoch``'s value; True if it improved on the best by > min_delta."""
        gain = value - self.best if self.maximise else self.best - value
        if gain > self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return True
        self.wait += 1
        return False

    def replay(self, history: History) -> None:
        """Start from the epochs ``history`` already holds (a resumed run)."""
        self.reset()
        for epoch, value in enumerate(history.history.get(self.monitor, []), start=1):
            self.update(epoch, value)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved (by more than ``min_delta``) for ``patience``
    epochs, like ``keras.callbacks.EarlyStopping``.

    Args:
        monitor: a logged name: ``"val_loss"`` (default), ``"loss"``, ``"val_accuracy"``, ...
        patience: epochs without improvement before stopping (0 stops at the first one).
        min_delta: the smallest change that counts as an improvement, >= 0.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (module docstring).
        restore_best_weights: at the end, put back the parameters of the best epoch of this
            call (a resumed run only knows the epochs it ran itself).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        self.patience = check_non_negative_int("EarlyStopping", "patience", patience)
        self.restore_best_weights = check_flag(
            "EarlyStopping", "restore_best_weights", restore_best_weights
        )
        self.best_weights: dict[str, np.ndarray] | None = None
        self.stopped_epoch = 0

    def on_train_begin(self, history: History) -> None:
        self._monitor.replay(history)
        self.best_weights, self.stopped_epoch, self.reason = None, 0, ""

    def on_epoch_end(self, epoch: int, logs: Logs) -> bool:
        m = self._monitor
        if m.update(epoch, m.value(logs)):
            if self.restore_best_weights and self.model is not None:
                self.best_weights = self.model.state_dict()
            return False
        if m.wait <= self.patience:
            return False
        self.stopped_epoch = epoch
        self.reason = (
            f"early stopping: {m.monitor} has not improved for {m.wait} "
            f"epoch{'' if m.wait == 1 else 's'} (best "
            f"{m.best:.4g} at epoch {m.best_epoch})"
        )
        return True

    def on_train_end(self, history: History) -> None:
        if self.best_weights is not None and self.model is not None:
            self.model.load_state_dict(self.best_weights)

    @property
    def best(self) -> float:
        """The best monitored value so far."""
        return self._monitor.best

    def __repr__(self) -> str:
        return f"EarlyStopping(monitor={self._monitor.monitor!r}, patience={self.patience})"


class ModelCheckpoint(Callback):
    """Save the model (a ``.safetensors`` model file, ``sc.load`` reads it back) after an epoch,
    like ``keras.callbacks.ModelCheckpoint``.

    Args:
        path: the file; may name the epoch and logged values, ``"ckpt/m-{epoch:03d}.safetensors"``.
        monitor: what decides "best" (``"val_loss"`` by default).
        save_best_only: save only when ``monitor`` improved (True), or after every epoch.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (module docstring).

    ``saved`` lists the files written, in order.
    """

    def __init__(
        self,
        path: str | Path,
        monitor: str = "val_loss",
        save_best_only: bool = True,
        mode: str = "auto",
    ) -> None:
        if not isinstance(path, (str, Path)):
            raise wrong_type("ModelCheckpoint", "path", "a file path", path)
        self.path = str(path)
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode, 0.0)
        self.save_best_only = check_flag("ModelCheckpoint", "save_best_only", save_best_only)
        self.saved: list[Path] = []

    def on_train_begin(self, history: History) -> None:
        self._monitor.replay(history)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if self.model is None:
            raise SpecError("ModelCheckpoint has no model: fit calls set_model before training")
        m = self._monitor
        improved = m.update(epoch, m.value(logs))
        if improved or not self.save_best_only:
            try:
                target = Path(self.path.format(epoch=epoch, **logs))
            except (KeyError, IndexError, ValueError) as err:
                raise SpecError(
                    f"ModelCheckpoint path {self.path!r} cannot be filled ({err!r}); it may name "
                    f"{{epoch}} and {sorted(logs)}"
                ) from None
            self.model.save(target)
            self.saved.append(target)

    @property
    def best(self) -> float:
        """The best monitored value so far."""
        return self._monitor.best

    def __repr__(self) -> str:
        return f"ModelCheckpoint({self.path!r}, monitor={self._monitor.monitor!r})"


__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint"]
