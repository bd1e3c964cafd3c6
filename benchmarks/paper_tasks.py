"""The LSTM paper's tasks (Hochreiter & Schmidhuber 1997), trained in numpy with specchain.

    python benchmarks/paper_tasks.py            # all three tasks
    python benchmarks/paper_tasks.py reber-lm   # one of: reber-classifier, reber-lm, adding

Each task trains until its criterion holds on held-out data (or a sequence budget runs out) and
prints the sequences seen, the wall time and the criterion:

- reber-classifier: ``classifier`` predicts the second-to-last symbol of held-out embedded Reber
  strings; criterion 100% accuracy.
- reber-lm: ``language_model`` on symbol ids; criterion: on every step of every held-out string
  the argmax symbol is legal, and every symbol above probability 0.1 is legal.
- adding: the adding problem with T = 50 (paper variant); criterion: absolute error < 0.04 on all
  2560 test sequences. Both markers lie in the first half, so nothing short-range helps the model
  off the mean-prediction plateau: the forget gates start open (bias 3, as Gers et al. 2000
  recommend for long time lags); with PyTorch's zero-mean default the LSTM stays on the plateau,
  in numpy and in torch alike.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import specchain as sc
from specchain.data import adding, reber
from specchain.models import zoo
from specchain.optim import Adam
from specchain.train import accuracy, fit


def train_until(
    model: sc.SpecChain,
    data: tuple[np.ndarray, np.ndarray],
    loss: sc.losses.Loss,
    lr: float,
    batch_size: int,
    done: Callable[[], tuple[bool, str]],
    max_epochs: int,
    clip: float | None = None,
) -> tuple[bool, int, float, str]:
    """Train epoch by epoch until ``done()``; returns (met, sequences seen, seconds, detail)."""
    optimizer = Adam(model.named_parameters(), lr=lr)
    state = {"met": False, "detail": "", "seen": 0}

    def check(epoch: int, history: sc.train.History) -> bool:
        state["met"], state["detail"] = done()
        state["seen"] = history.sequences_seen
        return bool(state["met"])

    start = time.perf_counter()
    fit(
        model,
        data,
        loss,
        optimizer,
        epochs=max_epochs,
        batch_size=batch_size,
        clip=clip,
        progress=False,
        on_epoch=check,
    )
    return bool(state["met"]), int(state["seen"]), time.perf_counter() - start, str(state["detail"])


def reber_classifier() -> tuple[bool, int, float, str]:
    sc.seed(0)
    train = reber.classification_data(reber.embedded_reber_strings(1024, rng=0))
    test = reber.classification_data(reber.embedded_reber_strings(1000, rng=1))
    model = zoo.classifier(len(reber.SYMBOLS), 16, 2)

    def done() -> tuple[bool, str]:
        acc = accuracy(model(test.inputs), test.targets)
        return acc == 1.0, f"held-out accuracy {acc:.2%} on {len(test.targets)} strings"

    return train_until(
        model,
        (train.inputs, train.targets),
        sc.losses.cross_entropy,
        0.02,
        32,
        done,
        max_epochs=200,
    )


def _tokens(strings: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symbol ids of ``s[:-1]`` (padding id 0: its targets are ignored), targets, legal sets."""
    data = reber.language_model_data(strings)
    inputs = reber.symbol_ids([s[:-1] for s in strings], pad="post", pad_id=0)
    return inputs, data.targets, data.legal


def reber_lm() -> tuple[bool, int, float, str]:
    sc.seed(0)
    inputs, targets, _ = _tokens(reber.embedded_reber_strings(1024, rng=2))
    test_inputs, _, legal = _tokens(reber.embedded_reber_strings(1000, rng=3))
    model = zoo.language_model(len(reber.SYMBOLS), 32)

    def done() -> tuple[bool, str]:
        logits = model(test_inputs)
        argmax_steps, argmax_strings = reber.language_model_accuracy(logits, legal)
        _, threshold_strings = reber.language_model_accuracy(logits, legal, threshold=0.1)
        met = argmax_strings == 1.0 and threshold_strings == 1.0
        return met, (
            f"legal next symbol: argmax {argmax_strings:.2%} of strings ({argmax_steps:.2%} of "
            f"steps), all symbols above p=0.1 legal in {threshold_strings:.2%} of strings"
        )

    return train_until(
        model, (inputs, targets), sc.losses.cross_entropy, 0.01, 32, done, max_epochs=300
    )


def adding_task() -> tuple[bool, int, float, str]:
    sc.seed(0)
    train = adding.adding_problem(20_000, 50, rng=4)
    test = adding.adding_problem(2560, 50, rng=5)
    hidden = 64
    model = zoo.classifier(2, hidden, 1)
    model.named_parameters()["lstm.bias_ih_l0"][hidden : 2 * hidden] += 3.0  # open forget gates

    def done() -> tuple[bool, str]:
        errors = np.abs(model(test.inputs) - test.targets)[:, 0]
        met = bool((errors < 0.04).all())
        return met, (
            f"abs error < 0.04 on {(errors < 0.04).mean():.2%} of 2560 test sequences, "
            f"max {errors.max():.4f}, mean {errors.mean():.4f}"
        )

    return train_until(
        model,
        (train.inputs, train.targets),
        sc.losses.mse,
        0.003,
        64,
        done,
        max_epochs=60,
        clip=1.0,
    )


TASKS = {"reber-classifier": reber_classifier, "reber-lm": reber_lm, "adding": adding_task}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tasks", nargs="*", metavar="TASK", help=f"any of {', '.join(TASKS)}")
    args = parser.parse_args()
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown task(s) {unknown}; choose from {', '.join(TASKS)}")
    for name in args.tasks or TASKS:
        met, seen, seconds, detail = TASKS[name]()
        verdict = "criterion met" if met else "criterion NOT met"
        print(f"{name:<17} {verdict}: {detail}; {seen:,} sequences seen, {seconds:.1f} s")


if __name__ == "__main__":
    main()
