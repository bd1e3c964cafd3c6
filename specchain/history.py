"""``History``: what ``fit`` did, epoch by epoch and step by step, and its loss-curve picture.

A History is plain data (lists of floats and ints), so a checkpoint stores it as JSON and a
resumed run continues it (``specchain.checkpoints``). ``History.plot(path)`` needs matplotlib,
the optional ``plot`` extra (``pip install 'specchain[plot]'``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs

from specchain.types import SpecError

PLOT_EXTRA = "pip install 'specchain[plot]' (or pip install matplotlib)"
_SERIES = ("epoch_loss", "step_loss", "epoch_time", "grad_norm", "val_loss")  # lists of floats


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
        val_loss: the validation loss after each epoch (only with ``validation_data``).
        metrics: ``{name: one value per epoch}``: each metric on the training batches
            (``"accuracy"``) and on the validation data (``"val_accuracy"``).
    """

    epoch_loss: list[float] = attrs.field(factory=list)
    step_loss: list[float] = attrs.field(factory=list)
    epoch_time: list[float] = attrs.field(factory=list)
    grad_norm: list[float] = attrs.field(factory=list)
    sequences_seen: int = 0
    wall_time: float = 0.0
    val_loss: list[float] = attrs.field(factory=list)
    metrics: dict[str, list[float]] = attrs.field(factory=dict)

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

    @property
    def history(self) -> dict[str, list[float]]:
        """Keras' ``history.history``: ``{"loss": [...], "accuracy": [...], "val_loss": [...],
        "val_accuracy": [...]}``, one value per epoch (``val_*`` only when validation ran)."""
        train = {k: list(v) for k, v in self.metrics.items() if not k.startswith("val_")}
        held_out = {k: list(v) for k, v in self.metrics.items() if k.startswith("val_")}
        out = {"loss": list(self.epoch_loss), **train}
        if self.val_loss:
            out["val_loss"] = list(self.val_loss)
        return {**out, **held_out}

    def logs(self, epoch: int) -> dict[str, float]:
        """The values of the ``epoch``-th epoch this History holds (counting from 1) by name,
        plus its ``"time"``."""
        index = epoch - 1
        logs = {name: v[index] for name, v in self.history.items() if len(v) > index}
        logs["time"] = self.epoch_time[index]
        return logs

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON-ready data (floats round-trip exactly through ``json``)."""
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> History:
        """The inverse of ``to_json``; refuses anything else with ``SpecError``."""
        fields = {field.name for field in attrs.fields(cls)}
        if not isinstance(data, dict) or set(data) != fields:
            raise SpecError(f"a stored History must have the fields {sorted(fields)}")
        lists = [data[name] for name in _SERIES]
        metrics = data["metrics"]
        if isinstance(metrics, dict) and all(isinstance(k, str) for k in metrics):
            lists += list(metrics.values())
        else:
            lists.append(None)
        if not all(_numbers(values) for values in lists) or not (
            type(data["sequences_seen"]) is int and _numbers([data["wall_time"]])
        ):
            raise SpecError("a stored History holds something other than numbers")
        return cls(**data)

    def plot(self, path: str | Path) -> Path:
        """Draw the loss curves (training, and validation when present) per epoch to ``path``
        (``.png``, ``.svg`` or ``.pdf``, by suffix); returns the path. Needs matplotlib."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError(f"History.plot needs matplotlib: {PLOT_EXTRA}") from None
        if not self.epoch_loss:
            raise SpecError("History.plot: no epoch finished, so there is no curve to draw")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        figure, axes = plt.subplots(figsize=(6, 4))
        try:
            epochs = range(1, self.epochs + 1)
            axes.plot(epochs, self.epoch_loss, marker="o", label="loss")
            if self.val_loss:
                axes.plot(epochs[: len(self.val_loss)], self.val_loss, marker="o", label="val_loss")
            axes.set_xlabel("epoch")
            axes.set_ylabel("loss")
            axes.legend()
            axes.grid(alpha=0.3)
            figure.tight_layout()
            figure.savefig(target)
        finally:
            plt.close(figure)
        return target


def _numbers(values: Any) -> bool:
    return isinstance(values, list) and all(type(v) in (int, float) for v in values)
