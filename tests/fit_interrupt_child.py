"""The child of ``test_train_interrupt.py``: runs ``fit`` again and again until SIGINT stops it.

``python tests/fit_interrupt_child.py RUNS OPTIMIZER``. Each run builds a fresh model and trains
it with an optimizer that, after every completed step, records a checksum of all parameters. It
prints ``ready`` (on the first step, so inside ``fit``), the parent sends one SIGINT at a random
moment, and the child prints one JSON line: the checksums of the completed steps, the checksum of
the final parameters, and what the raised ``TrainingInterrupted`` carries.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
from typing import Any

import numpy as np

import specchain as sc
from specchain.models import zoo
from specchain.optim import SGD, Adam, Optimizer
from specchain.train import TrainingInterrupted, fit


def checksum(model: sc.SpecChain) -> str:
    digest = hashlib.sha256()
    for name, p in model.named_parameters().items():
        digest.update(name.encode())
        digest.update(p.tobytes())
    return digest.hexdigest()[:20]


def recording(base: type[Optimizer]) -> type[Optimizer]:
    class Recording(base):  # type: ignore[valid-type, misc]
        """Records the parameters' checksum after every completed step."""

        def __init__(self, model: sc.SpecChain, **kwargs: Any) -> None:
            super().__init__(model, **kwargs)
            self.model = model
            self.sums: list[str] = []

        def step(self, grads: Any) -> None:
            if not self.sums:
                print("ready", flush=True)
            super().step(grads)
            self.sums.append(checksum(self.model))

    return Recording


OPTIMIZERS: dict[str, tuple[type[Optimizer], dict[str, Any]]] = {
    "adam": (Adam, {"lr": 1e-3, "amsgrad": True, "weight_decay": 0.01}),
    "sgd": (SGD, {"lr": 1e-2, "momentum": 0.9, "nesterov": True}),
}


def main(runs: int, which: str) -> None:
    base, kwargs = OPTIMIZERS[which]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 24, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=24)
    for run in range(runs):
        sc.seed(run)
        model = zoo.classifier(3, 6, 2)
        opt = recording(base)(model, **kwargs)
        report: dict[str, Any] = {"run": run, "initial": checksum(model)}
        try:
            fit(model, (x, y), sc.losses.cross_entropy, opt, epochs=10**6, batch_size=8, rng=run,
                progress=False)  # fmt: skip
            report["outcome"] = "fit returned"
        except TrainingInterrupted as err:
            report["outcome"] = "TrainingInterrupted"
            report["forced"] = err.forced
            report["history_steps"] = err.history.steps
            report["history_epochs"] = err.history.epochs
            report["sequences_seen"] = err.history.sequences_seen
        except KeyboardInterrupt:
            report["outcome"] = "bare KeyboardInterrupt"
        report["final"] = checksum(model)
        report["sums"] = opt.sums
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    main(int(sys.argv[1]), sys.argv[2])
