"""Ctrl-C during ``fit``: a SIGINT never cuts a parameter update; ``fit`` raises
``TrainingInterrupted`` (a ``KeyboardInterrupt``) with the History so far, the parameters are
those of its last step, a second Ctrl-C during an update forces the stop, and the previous SIGINT
handler is always restored. The last test sends SIGINT at random moments to child processes
running ``fit`` (120 interrupts) and checks that the parameters are always from one step."""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import specchain as sc
from specchain.models import zoo
from specchain.optim import SGD
from specchain.train import History, TrainingInterrupted, fit

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).with_name("fit_interrupt_child.py")


def data(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, n, 3)).astype(np.float32), rng.integers(0, 2, size=n)


class SignallingSGD(SGD):
    """Sends itself ``signals`` SIGINTs at the start of step ``at`` (counting from 1), then
    updates; keeps a copy of the parameters after every completed step."""

    def __init__(self, model: sc.SpecChain, at: int, signals: int = 1) -> None:
        super().__init__(model, lr=0.1, momentum=0.9)
        self.model, self.at, self.signals = model, at, signals
        self.calls = 0
        self.after: list[dict[str, np.ndarray]] = []

    def step(self, grads: Any) -> None:
        self.calls += 1
        if self.calls == self.at:
            for _ in range(self.signals):
                signal.raise_signal(signal.SIGINT)
        super().step(grads)
        self.after.append({k: p.copy() for k, p in self.model.named_parameters().items()})


def assert_params(model: sc.SpecChain, expected: dict[str, np.ndarray]) -> None:
    for name, p in model.named_parameters().items():
        np.testing.assert_array_equal(p, expected[name], err_msg=name)


@pytest.fixture(autouse=True)
def _default_handler() -> Iterator[None]:
    """Python's default SIGINT handler for each test, even when pytest itself runs with SIGINT
    ignored (a background job of a shell script); afterwards, fit must have put it back."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, (
            "fit did not restore the SIGINT handler"
        )
    finally:
        signal.signal(signal.SIGINT, before)


def test_ctrl_c_during_an_update_waits_for_it() -> None:
    model = zoo.classifier(3, 6, 2)
    opt = SignallingSGD(model, at=5)  # 3 steps per epoch: step 2 of epoch 2
    with pytest.raises(KeyboardInterrupt) as info:
        fit(model, data(), sc.losses.cross_entropy, opt, epochs=4, batch_size=8, progress=False)
    err = info.value
    assert isinstance(err, TrainingInterrupted) and not err.forced
    assert str(err) == (
        "fit interrupted by Ctrl-C after step 5: the parameters are those of that step (1 of 4 "
        "epochs complete); the History so far is err.history"
    )
    assert err.history.steps == 5 and err.history.epochs == 1
    assert err.history.sequences_seen == 40 and err.history.wall_time > 0
    assert opt.calls == 5, "the update after the interrupted one ran"
    assert_params(model, opt.after[4])


def test_ctrl_c_outside_an_update_stops_at_once() -> None:
    model = zoo.classifier(3, 6, 2)
    opt = SignallingSGD(model, at=0)

    def interrupt_after_two(epoch: int, history: History) -> None:
        if epoch == 2:
            signal.raise_signal(signal.SIGINT)
            pytest.fail("the SIGINT did not stop fit at once")

    with pytest.raises(TrainingInterrupted, match="after step 6: the parameters") as info:
        fit(model, data(), sc.losses.cross_entropy, opt, epochs=5, batch_size=8,
            progress=False, on_epoch=interrupt_after_two)  # fmt: skip
    assert info.value.history.epochs == 2 and info.value.history.steps == 6
    assert_params(model, opt.after[5])


class RaisesSigintWhenCollected:
    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_lost_in_a_finalizer_still_stops_before_the_next_update() -> None:
    """A KeyboardInterrupt raised inside a ``__del__`` is printed and dropped by Python (this
    happened with tqdm's bar): ``fit`` still stops, before the next update."""
    model = zoo.classifier(3, 6, 2)
    opt = SignallingSGD(model, at=0)

    def drop_a_finalizer(epoch: int, history: History) -> None:
        if epoch == 1:
            RaisesSigintWhenCollected()  # collected at once: the handler runs in its __del__

    with pytest.raises(TrainingInterrupted, match="after step 3: the parameters") as info:
        fit(model, data(), sc.losses.cross_entropy, opt, epochs=3, batch_size=8,
            progress=False, on_epoch=drop_a_finalizer)  # fmt: skip
    assert info.value.history.steps == 3 and opt.calls == 3
    assert_params(model, opt.after[2])


def test_a_second_ctrl_c_during_an_update_forces_the_stop() -> None:
    model = zoo.classifier(3, 6, 2)
    opt = SignallingSGD(model, at=4, signals=2)
    with pytest.raises(TrainingInterrupted) as info:
        fit(model, data(), sc.losses.cross_entropy, opt, epochs=4, batch_size=8, progress=False)
    assert info.value.forced
    assert "during step 4: a second Ctrl-C cut that update, so the parameters may mix steps 3 " in (
        str(info.value)
    )
    assert info.value.history.steps == 3
    assert_params(model, opt.after[2])  # cut before the update began, as it happens here


def test_the_note_is_printed_with_progress(capsys: pytest.CaptureFixture[str]) -> None:
    model = zoo.classifier(3, 6, 2)
    with pytest.raises(TrainingInterrupted):
        fit(model, data(), sc.losses.cross_entropy, SignallingSGD(model, at=2), batch_size=8)
    lines = [line for line in capsys.readouterr().err.splitlines() if "Ctrl-C" in line]
    note = (
        "fit interrupted by Ctrl-C after step 2: the parameters are those of that step (0 of 1 "
        "epochs complete); the History so far is err.history"
    )
    assert lines == [note]


def test_an_ignored_sigint_stays_ignored() -> None:
    model = zoo.classifier(3, 6, 2)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        history = fit(model, data(), sc.losses.cross_entropy, SignallingSGD(model, at=2),
                      epochs=2, batch_size=8, progress=False)  # fmt: skip
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert history.steps == 6


def test_fit_in_another_thread_leaves_the_handler_alone() -> None:
    model = zoo.classifier(3, 6, 2)
    results: list[History] = []
    thread = threading.Thread(
        target=lambda: results.append(
            fit(model, data(), sc.losses.cross_entropy, SGD(model, lr=0.1), progress=False)
        )
    )
    thread.start()
    thread.join(timeout=60)
    assert len(results) == 1 and results[0].steps == 1


# --- random interrupts in child processes ------------------------------------------------------

RUNS = 60  # per child; two children (Adam, SGD) start side by side


class Child:
    """A child process running ``fit_interrupt_child.py``, its stdout read line by line by a
    thread (so that waiting for a line can time out)."""

    def __init__(self, which: str, stderr: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(RUNS), which],
            stdout=subprocess.PIPE,
            stderr=stderr.open("wb"),
            env=env,
        )
        self.stderr = stderr
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.decode())

    def line(self, timeout: float = 60.0) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"the child said nothing for {timeout} s; its stderr:\n{self.stderr.read_text()}"
            ) from None

    def drive(self, seed: int) -> list[dict[str, Any]]:
        """One SIGINT per run, after a random delay (seeded): none, a few steps, many steps."""
        delays = random.Random(seed)
        reports = []
        for _ in range(RUNS):
            assert self.line() == "ready\n"
            time.sleep(delays.choice([0.0, delays.uniform(0, 0.002), delays.uniform(0, 0.02)]))
            os.kill(self.proc.pid, signal.SIGINT)
            reports.append(json.loads(self.line()))
        assert self.proc.wait(timeout=60) == 0, self.stderr.read_text()
        return reports


def test_random_sigints_always_leave_parameters_from_one_step(tmp_path: Path) -> None:
    children = {which: Child(which, tmp_path / f"{which}.err") for which in ("adam", "sgd")}
    try:
        results = {which: child.drive(seed) for seed, (which, child) in enumerate(children.items())}
    finally:
        for child in children.values():
            child.proc.kill()
            child.proc.wait()
    for which, reports in results.items():
        assert len(reports) == RUNS
        for report in reports:
            where = f"{which} run {report['run']}"
            assert report["outcome"] == "TrainingInterrupted", where
            assert not report["forced"], where
            sums = report["sums"]
            assert sums, f"{where}: interrupted before the first step completed"
            assert report["history_steps"] == len(sums), where
            # an epoch's summary follows its last step: a Ctrl-C may fall in between
            assert report["history_epochs"] in (len(sums) // 3, (len(sums) - 1) // 3), where
            assert report["sequences_seen"] == 8 * len(sums), where
            assert report["final"] == sums[-1], f"{where}: parameters mix two steps"
            assert report["final"] != report["initial"], where
        assert len({len(r["sums"]) for r in reports}) > 5, "the interrupts all hit alike"
