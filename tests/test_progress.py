"""What ``fit`` prints: one readable line per epoch when the output is not a terminal (a log, a
test's capture), a tqdm bar that is erased plus the same lines on a terminal, nothing with
``progress=False``."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

import specchain as sc
from specchain.modules import LSTM, LastStep, Linear
from specchain.optim import Adam
from specchain.progress import EpochProgress, epoch_line, format_value
from specchain.train import fit

LINE = re.compile(
    r"Epoch (\d+)/5 - loss: \d\.\d{4} - accuracy: \d\.\d{4} - val_loss: \d\.\d{4} - "
    r"val_accuracy: \d\.\d{4} - \d+\.\ds"
)


def run(progress: bool = True) -> sc.train.History:
    sc.seed(0)
    model = LSTM(3, 4) >> LastStep() >> Linear(4, 2)
    rng = np.random.default_rng(0)
    data = rng.standard_normal((5, 24, 3)).astype(np.float32), rng.integers(0, 2, size=24)
    val = rng.standard_normal((5, 8, 3)).astype(np.float32), rng.integers(0, 2, size=8)
    return fit(
        model,
        data,
        sc.losses.cross_entropy,
        Adam(model, lr=0.01),
        epochs=5,
        batch_size=8,
        progress=progress,
        validation_data=val,
        metrics=["accuracy"],
    )


def test_captured_output_has_one_readable_line_per_epoch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    history = run()
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 5 and "\r" not in out and err == ""
    for epoch, line in enumerate(lines, start=1):
        match = LINE.fullmatch(line)
        assert match is not None, line
        assert int(match.group(1)) == epoch
        assert f"loss: {history.epoch_loss[epoch - 1]:.4f}" in line
        assert f"val_loss: {history.val_loss[epoch - 1]:.4f}" in line


def test_progress_false_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    run(progress=False)
    assert capsys.readouterr() == ("", "")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_that_goes_and_lines_that_stay() -> None:
    screen = Terminal()
    printer = EpochProgress(True, epochs=2, stream=screen)
    for epoch in (1, 2):
        printer.start(epoch, steps=3)
        for step in range(3):
            printer.step(0.5 - 0.1 * step)
        printer.end(epoch, {"loss": 0.4, "time": 0.25})
    text = screen.getvalue()
    assert "Epoch 1/2:" in text and "/3 [" in text and "\r" in text  # the bar, drawn with \r
    kept = [line.split("\r")[-1] for line in text.split("\n") if line.split("\r")[-1]]
    assert kept == ["Epoch 1/2 - loss: 0.4000 - 0.2s", "Epoch 2/2 - loss: 0.4000 - 0.2s"]


def test_a_log_file_gets_no_bar() -> None:
    log = io.StringIO()
    printer = EpochProgress(True, epochs=1, stream=log)
    printer.start(1, steps=3)
    printer.step(1.0)
    printer.end(1, {"loss": 1.0, "time": 2.0})
    assert log.getvalue() == "Epoch 1/1 - loss: 1.0000 - 2.0s\n"


def test_values_stay_readable() -> None:
    assert format_value(0.123456) == "0.1235" and format_value(0.0) == "0.0000"
    assert format_value(1.5e-5) == "1.5000e-05" and format_value(12.0) == "12.0000"
    assert epoch_line(3, 20, {"loss": 0.5, "val_loss": 0.25, "time": 0.42}) == (
        "Epoch 3/20 - loss: 0.5000 - val_loss: 0.2500 - 0.4s"
    )
