"""``History``: Keras' ``history.history`` view, per-epoch logs, an exact JSON round trip (what
checkpoints store), and ``plot`` (matplotlib, an optional extra, named when missing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import specchain as sc
from specchain.history import History


def sample() -> History:
    return History(
        epoch_loss=[0.9, 0.1 + 0.2],
        step_loss=[1.0, 0.8, 0.3, 0.3],
        epoch_time=[0.5, 0.25],
        sequences_seen=8,
        wall_time=0.8,
        val_loss=[1.1, 0.6],
        metrics={"accuracy": [0.5, 0.75], "val_accuracy": [0.25, 0.5]},
    )


def test_history_view_and_logs() -> None:
    history = sample()
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history.history["val_loss"] == [1.1, 0.6]
    assert history.logs(2) == {
        "loss": 0.1 + 0.2,
        "accuracy": 0.75,
        "val_loss": 0.6,
        "val_accuracy": 0.5,
        "time": 0.25,
    }
    assert History(epoch_loss=[1.0], epoch_time=[2.0]).logs(1) == {"loss": 1.0, "time": 2.0}


def test_json_round_trip_is_exact() -> None:
    history = sample()
    again = History.from_json(json.loads(json.dumps(history.to_json())))
    assert again == history and again.epoch_loss[1] == 0.1 + 0.2
    with pytest.raises(sc.SpecError, match=r"a stored History must have the fields"):
        History.from_json({"epoch_loss": []})


def test_plot_writes_the_loss_curves(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = sample().plot(tmp_path / "curves" / "loss.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in sample().plot(tmp_path / "loss.svg").read_text()
    with pytest.raises(sc.SpecError, match=r"no epoch finished"):
        History().plot(tmp_path / "empty.png")


def test_plot_without_matplotlib_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(
        ImportError,
        match=r"History\.plot needs matplotlib: pip install "
        r"'specchain\[plot\]'",
    ):
        sample().plot(tmp_path / "loss.png")
