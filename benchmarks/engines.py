"""Epoch time of one model trained three ways, in one process: the numpy engine, the torch engine
(``fit(..., engine="torch")``) and a hand-written torch loop over the same exported module.

    python benchmarks/engines.py                  # small and large sizes, CPU time
    python benchmarks/engines.py --wall --epochs 5

Each row: a classifier (LSTM -> last step -> Linear) on random data, Adam, cross-entropy, the
same batch size. Each way trains ``1 + --epochs`` epochs in one call (as a user trains: the torch
engine builds its module once per ``fit``) and a clock is read at the end of every epoch (for
``fit``, by a callback: after the weights are written back into the spec). The table gives each
way's steady epoch time (the mean over the ``--epochs`` epochs after the first), the ratios numpy
/ torch engine and torch engine / hand-written (target <= 1.05: the engine adds its batching, its
finiteness checks and, every epoch, the weights taken from and written back into the spec), and
the torch engine's one-time cost per ``fit`` call (``setup``: building the module in memory and the
checks; measured after a warm-up call of one epoch), which a run of E epochs spreads over E. The
ways take turns, ``--repeats`` timed calls each, and each way's best call counts (the least
disturbed by the machine's other work). CPU time of the
process (all its threads) by default: it stays meaningful on a busy machine, where wall time does
not. The hand-written loop is what a PyTorch user writes: tensors made once, ``torch.optim.Adam``
with its defaults, ``F.cross_entropy``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from timing import blas_kernels

import specchain as sc
from specchain.callbacks import Callback
from specchain.exporters import pytorch
from specchain.losses import cross_entropy
from specchain.models import zoo
from specchain.optim import Adam
from specchain.train import fit

SIZES = {  # name: (features, hidden, classes, steps T, examples N, batch)
    "small": (16, 32, 4, 20, 512, 32),
    "large": (64, 256, 10, 50, 512, 64),
}
Clock = Callable[[], float]
Run = Callable[[int, Clock], list[float]]  # epochs, clock -> the clock at each epoch's end


def data(features: int, classes: int, steps: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, n, features)).astype(np.float32)
    return x, rng.integers(0, classes, n)


class EpochEnds(Callback):
    """Reads the clock at the end of every epoch."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.ends = clock, []

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.ends.append(self.clock())


def engine_run(model: sc.SpecChain, xy: tuple[np.ndarray, ...], batch: int, engine: str) -> Run:
    optimizer = Adam(model, lr=1e-3)

    def run(epochs: int, clock: Clock) -> list[float]:  # one fit call, as a user trains
        ends = EpochEnds(clock)
        fit(
            model,
            xy,
            cross_entropy,
            optimizer,
            epochs,
            batch,
            progress=False,
            engine=engine,
            callbacks=[ends],
        )
        return ends.ends

    return run


def hand_written_run(model: sc.SpecChain, xy: tuple[np.ndarray, ...], batch: int) -> Run:
    module = pytorch.build_torch_module(model)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    x, y = torch.from_numpy(xy[0]), torch.from_numpy(xy[1])
    generator = torch.Generator().manual_seed(0)

    def run(epochs: int, clock: Clock) -> list[float]:
        ends = []
        for _ in range(epochs):
            order = torch.randperm(x.shape[1], generator=generator)
            for start in range(0, x.shape[1], batch):
                index = order[start : start + batch]
                loss = F.cross_entropy(module(x[:, index]), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            ends.append(clock())
        return ends

    return run


def timed(run: Run, epochs: int, clock: Clock) -> tuple[float, float]:
    """``(steady epoch time, one-time cost of the call)`` of one call of ``1 + epochs`` epochs."""
    began = clock()
    ends = run(1 + epochs, clock)
    steady = (ends[-1] - ends[0]) / epochs
    return steady, ends[-1] - began - (1 + epochs) * steady


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=int, default=5, help="timed epochs per way (after one more)"
    )
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: small,large")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed calls per way, in turn; the best counts"
    )
    parser.add_argument("--wall", action="store_true", help="wall time instead of CPU time")
    args = parser.parse_args()
    clock = time.perf_counter if args.wall else time.process_time
    kind = "wall" if args.wall else "CPU"
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, {threads} threads; mean epoch {kind} seconds, best of "
        f"{args.repeats} calls per way"
    )
    print(f"numpy's BLAS: {blas_kernels()}")
    print(
        f"{'size':<7}{'numpy':>9}{'torch eng':>11}{'hand':>9}{'np/eng':>9}{'eng/hand':>10}"
        f"{'eng setup':>11}"
    )
    for name in args.sizes.split(","):
        features, hidden, classes, steps, n, batch = SIZES[name]
        xy = data(features, classes, steps, n)
        models = [zoo.classifier(features, hidden, classes) for _ in range(3)]
        for other in models[1:]:
            other.load_state_dict(models[0].state_dict())
        runs = [
            engine_run(models[0], xy, batch, "numpy"),
            engine_run(models[1], xy, batch, "torch"),
            hand_written_run(models[2], xy, batch),
        ]
        for run in runs:
            run(1, clock)  # warm-up: torch's first calls, the thread pools, the caches
        rounds = [[timed(run, args.epochs, clock) for run in runs] for _ in range(args.repeats)]
        (numpy_t, _), (engine_t, setup), (hand_t, _) = (min(way) for way in zip(*rounds))
        print(
            f"{name:<7}{numpy_t:>9.4f}{engine_t:>11.4f}{hand_t:>9.4f}"
            f"{numpy_t / engine_t:>9.2f}{engine_t / hand_t:>10.2f}{setup:>11.4f}"
        )


if __name__ == "__main__":
    main()
