"""Resume test (issue 15): train 4 epochs; train 2, save a checkpoint, load it in a new process,
train 2 more: the parameters and the History (all but wall-clock times) are bit-identical in
float64, dropout, shuffling, clipping, AMSGrad state, validation and metrics included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import specchain as sc
from specchain.checkpoints import checkpoint_file
from specchain.train import History
from tests.fit_resume_child import EPOCHS, train

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).with_name("fit_resume_child.py")
EXACT = ("epoch_loss", "step_loss", "grad_norm", "sequences_seen", "val_loss", "metrics")


def test_resume_in_a_new_process_is_bit_identical(tmp_path: Path) -> None:
    whole_model, whole = train(None, EPOCHS)
    folder = tmp_path / "run"
    _, first = train(folder, 2)
    assert first.epochs == 2 and checkpoint_file(folder).is_file()

    out = tmp_path / "resumed.safetensors"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(CHILD), str(folder), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    resumed = History.from_json(json.loads(done.stdout.splitlines()[-1]))

    assert whole.epochs == resumed.epochs == EPOCHS
    assert whole.steps == resumed.steps == 4 * 5
    for field in EXACT:
        assert getattr(resumed, field) == getattr(whole, field), field
    assert resumed.step_loss[:10] == first.step_loss  # the first two epochs came from the file
    assert len(resumed.epoch_time) == EPOCHS
    params = sc.load(out).named_parameters()
    for name, p in whole_model.named_parameters().items():
        assert params[name].dtype == np.float64
        np.testing.assert_array_equal(params[name], p, err_msg=name)
