"""What ``fit`` prints: one line per epoch that stays, and a tqdm bar while an epoch runs.

``Epoch 3/20 - loss: 0.4127 - val_loss: 0.4472 - val_accuracy: 0.9062 - 0.4s``: the line is
printed when the epoch ends, to a terminal and to a log file alike. The bar (steps done, running
mean loss) is drawn only when the stream is a terminal and is erased when the epoch ends, so a
log holds readable lines, not carriage returns.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


def format_value(value: float) -> str:
    """Four decimals, or scientific notation for tiny non-zero values."""
    return f"{value:.4e}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"


def epoch_line(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    """``Epoch 3/20 - loss: 0.4127 - val_loss: 0.4472 - 0.4s`` (``logs`` holds ``"time"``)."""
    parts = [f"Epoch {epoch}/{epochs}"]
    parts += [f"{name}: {format_value(v)}" for name, v in logs.items() if name != "time"]
    parts.append(f"{logs['time']:.1f}s")
    return " - ".join(parts)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class EpochProgress:
    """Bars and lines for one ``fit`` call; silent when ``enabled`` is False.

    ``stream`` defaults to ``sys.stdout`` at construction (as Keras prints), so a test's
    captured output and a redirected log see the lines.
    """

    def __init__(self, enabled: bool, epochs: int, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self.stream = sys.stdout if stream is None else stream
        self.bars = enabled and _is_terminal(self.stream)
        self._bar: tqdm | None = None

    def start(self, epoch: int, steps: int) -> None:
        """An epoch of ``steps`` steps begins: open its bar (on a terminal)."""
        if self.bars:
            self._bar = tqdm(
                total=steps,
                desc=f"Epoch {epoch}/{self.epochs}",
                file=self.stream,
                leave=False,
                unit="step",
                dynamic_ncols=True,
            )

    def step(self, mean_loss: float) -> None:
        if self._bar is not None:
            self._bar.set_postfix(loss=format_value(mean_loss), refresh=False)
            self._bar.update(1)

    def end(self, epoch: int, logs: dict[str, float]) -> None:
        """The epoch ended: erase its bar and print its line."""
        self.close()
        self.note(epoch_line(epoch, self.epochs, logs))

    def note(self, text: str) -> None:
        """A line of its own (a resume, an early stop), when enabled."""
        if self.enabled:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
