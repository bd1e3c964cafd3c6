"""What ``specchain demo`` found, as plain values: per zoo model (summary, export verdict,
diagram) and for the training run. The reports (``index.md``, ``index.html``) are drawn from
these."""

from __future__ import annotations

from pathlib import Path

import attrs

from specchain.chain import SpecChain
from specchain.history import History


def plural(count: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


@attrs.frozen
class Verdict:
    """``pytorch.verify``'s answer for one export: equivalent or not, and the largest difference."""

    ok: bool
    max_abs: float

    @property
    def label(self) -> str:
        return "PASS" if self.ok else "FAIL"


@attrs.frozen
class ModelResult:
    """One zoo model in the demo.

    Attributes:
        name: the zoo name (``classifier``); the export is ``exports/<name>/model.py``.
        model: the chain.
        summary: ``model.summary()`` (also in ``summaries/<name>.txt``).
        verdict: the export's verification, ``None`` when torch is not installed.
        diagram: the SVG file drawn, ``None`` when no renderer was available.
        diagram_note: why there is no diagram (empty when there is one).
    """

    name: str
    model: SpecChain
    summary: str
    verdict: Verdict | None
    diagram: Path | None
    diagram_note: str = ""


@attrs.frozen
class TrainingResult:
    """The classifier's run on the embedded Reber grammar.

    Attributes:
        history: ``fit``'s History (training and validation loss per epoch).
        seconds: wall time of ``fit``.
        accuracy: held-out accuracy after the last epoch, in [0, 1].
        examples: (training, held-out) example counts.
    """

    history: History
    seconds: float
    accuracy: float
    examples: tuple[int, int]

    @property
    def figures(self) -> str:
        """The run's results, identical on every run (no timings)."""
        return (
            f"{plural(self.history.epochs, 'epoch')}, final loss {self.history.final_loss:.4g}, "
            f"held-out accuracy {self.accuracy:.1%}"
        )

    def line(self) -> str:
        """One sentence for the reports and the terminal, with the time it took."""
        train, held_out = self.examples
        return (
            f"classifier on embedded Reber ({train} training strings, {held_out} held out): "
            f"{self.figures}, trained in {self.seconds:.1f} s"
        )
