"""The LSTM paper's tasks (Hochreiter & Schmidhuber 1997), trained in numpy with specchain.

    python benchmarks/paper_tasks.py                  # all three tasks, LSTM
    python benchmarks/paper_tasks.py reber-lm         # one of: reber-classifier, reber-lm, adding
    python benchmarks/paper_tasks.py --cells all      # every task with LSTM, GRU and RNN
    python benchmarks/paper_tasks.py --cells gru,rnn adding

Each task trains until its criterion holds on held-out data (or its sequence budget runs out) and
prints the sequences seen, the wall time and the criterion; with several runs, a table of them
follows. ``--cells`` picks the zoo builders' ``cell=`` (default ``lstm``); the tasks, data, sizes,
learning rates and budgets are the same for every cell. The sequences seen depend on numpy's BLAS
thread count (summation order); ``docs/families.md`` runs with ``OPENBLAS_NUM_THREADS=1``.

- reber-classifier: ``classifier`` predicts the second-to-last symbol of held-out embedded Reber
  strings; criterion 100% accuracy.
- reber-lm: ``language_model`` on symbol ids; criterion: on every step of every held-out string
  the argmax symbol is legal, and every symbol above probability 0.1 is legal.
- adding: the adding problem with T = 50 (paper variant); criterion: absolute error < 0.04 on all
  2560 test sequences. Both markers lie in the first half, so nothing short-range helps the model
  off the mean-prediction plateau: the forget gates start open (bias 3, as Gers et al. 2000
  recommend for long time lags); with PyTorch's zero-mean default the LSTM stays on the plateau,
  in numpy and in torch alike. The GRU gets the closest equivalent: its update gate ``z`` keeps
  the state (``h' = (1 - z) * n + z * h``), so its bias starts at +3 (``z`` about 0.95). The tanh
  RNN has no gate to open and keeps PyTorch's default initialisation.
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

Outcome = tuple[bool, int, float, str]  # (criterion met, sequences seen, seconds, detail)
# Sequence budgets, in whole epochs of each task's training set (1,024 strings; 20,000 adding
# sequences): the LSTM meets every criterion well inside them.
BUDGETS = {"reber-classifier": 200 * 1024, "reber-lm": 300 * 1024, "adding": 60 * 20_000}


def train_until(
    model: sc.SpecChain,
    data: tuple[np.ndarray, np.ndarray],
    loss: sc.losses.Loss,
    lr: float,
    batch_size: int,
    done: Callable[[], tuple[bool, str]],
    budget: int,
    train_size: int,
    clip: float | None = None,
) -> Outcome:
    """Train epoch by epoch (``train_size`` sequences each) until ``done()`` or ``budget``
    sequences; returns (met, sequences seen, seconds, detail)."""
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
        epochs=budget // train_size,
        batch_size=batch_size,
        clip=clip,
        progress=False,
        on_epoch=check,
    )
    return bool(state["met"]), int(state["seen"]), time.perf_counter() - start, str(state["detail"])


def reber_classifier(cell: str) -> Outcome:
    sc.seed(0)
    train = reber.classification_data(reber.embedded_reber_strings(1024, rng=0))
    test = reber.classification_data(reber.embedded_reber_strings(1000, rng=1))
    model = zoo.classifier(len(reber.SYMBOLS), 16, 2, cell=cell)

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
        BUDGETS["reber-classifier"],
        1024,
    )


def _tokens(strings: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symbol ids of ``s[:-1]`` (padding id 0: its targets are ignored), targets, legal sets."""
    data = reber.language_model_data(strings)
    inputs = reber.symbol_ids([s[:-1] for s in strings], pad="post", pad_id=0)
    return inputs, data.targets, data.legal


def reber_lm(cell: str) -> Outcome:
    sc.seed(0)
    inputs, targets, _ = _tokens(reber.embedded_reber_strings(1024, rng=2))
    test_inputs, _, legal = _tokens(reber.embedded_reber_strings(1000, rng=3))
    model = zoo.language_model(len(reber.SYMBOLS), 32, cell=cell)

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
        model, (inputs, targets), sc.losses.cross_entropy, 0.01, 32, done, BUDGETS["reber-lm"], 1024
    )


def adding_task(cell: str) -> Outcome:
    sc.seed(0)
    train = adding.adding_problem(20_000, 50, rng=4)
    test = adding.adding_problem(2560, 50, rng=5)
    hidden = 64
    model = zoo.classifier(2, hidden, 1, cell=cell)
    if cell in ("lstm", "gru"):  # gates i, f, g, o and r, z, n: open f, bias z towards keeping h
        model.named_parameters()[f"{cell}.bias_ih_l0"][hidden : 2 * hidden] += 3.0

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
        BUDGETS["adding"],
        20_000,
        clip=1.0,
    )


TASKS: dict[str, Callable[[str], Outcome]] = {
    "reber-classifier": reber_classifier,
    "reber-lm": reber_lm,
    "adding": adding_task,
}


def cells_arg(text: str) -> list[str]:
    """``--cells``: ``all`` or a comma-separated list of ``zoo.CELLS``."""
    cells = list(zoo.CELLS) if text == "all" else text.split(",")
    unknown = [c for c in cells if c not in zoo.CELLS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown cell(s) {unknown}; choose from {', '.join(zoo.CELLS)} or all"
        )
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("tasks", nargs="*", metavar="TASK", help=f"any of {', '.join(TASKS)}")
    parser.add_argument(
        "--cells",
        type=cells_arg,
        default=["lstm"],
        help=f"comma-separated cells ({', '.join(zoo.CELLS)}) or all (default: lstm)",
    )
    args = parser.parse_args()
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown task(s) {unknown}; choose from {', '.join(TASKS)}")
    rows = []
    for name in args.tasks or TASKS:
        for cell in args.cells:
            met, seen, seconds, detail = TASKS[name](cell)
            verdict = "criterion met" if met else "criterion NOT met"
            print(
                f"{name:<17} {cell:<5} {verdict}: {detail}; {seen:,} sequences seen, "
                f"{seconds:.1f} s",
                flush=True,
            )
            solved = "solved" if met else f"not solved within {BUDGETS[name]:,} sequences"
            rows.append(f"{name:<18}{cell:<6}{solved:<42}{seen:>11,}{seconds:>10.1f}")
    if len(rows) > 1:
        print(f"\n{'task':<18}{'cell':<6}{'result':<42}{'sequences':>11}{'seconds':>10}")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
