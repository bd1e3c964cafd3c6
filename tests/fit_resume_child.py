"""The training run of ``test_fit_resume.py``, and its child process.

``train(folder, epochs)`` builds the same float64 model, optimizer and data every time and fits
until ``epochs`` (checkpointing into ``folder`` when given). Run as a script, ``python
tests/fit_resume_child.py FOLDER OUT``: it resumes from ``FOLDER``'s checkpoint, trains to epoch
4, saves the model to ``OUT`` and prints the History as one JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import specchain as sc
from specchain.callbacks import EarlyStopping
from specchain.modules import LSTM, Dropout, LastStep, Linear
from specchain.optim import Adam
from specchain.train import History, fit

EPOCHS = 4


def train(folder: Path | None, epochs: int) -> tuple[sc.SpecChain, History]:
    sc.seed(0)
    model = (LSTM(3, 6) >> Dropout(0.3) >> LastStep() >> Linear(6, 2)).to(np.float64)
    optimizer = Adam(model, lr=0.02, amsgrad=True)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 40, 3)), rng.integers(0, 2, size=40)
    val = rng.standard_normal((5, 16, 3)), rng.integers(0, 2, size=16)
    history = fit(
        model,
        (x, y),
        sc.losses.cross_entropy,
        optimizer,
        epochs=epochs,
        batch_size=8,
        clip=1.0,
        rng=7,
        progress=False,
        validation_data=val,
        metrics=["accuracy"],
        callbacks=[EarlyStopping(patience=10)],
        checkpoint=folder,
    )
    return model, history


if __name__ == "__main__":
    model, history = train(Path(sys.argv[1]), EPOCHS)
    model.save(sys.argv[2])
    print(json.dumps(history.to_json()))
