"""Epoch time of one model trained three ways, in one process: the numpy engine, the torch engine
(``fit(..., engine="torch")``) and a hand-written torch loop over the same exported module.

    python benchmarks/engines.py                  # small and large sizes, CPU time
    python benchmarks/engines.py --wall --epochs 5

Each row: a classifier (LSTM -> last step -> Linear) on random data, Adam, cross-entropy, the
same batch size. Each way first trains one warm-up epoch, then ``--epochs`` epochs in one call
(as a user trains: the torch engine builds its module once per ``fit``). The table gives each
way's mean epoch time and the ratios numpy / torch engine and torch engine / hand-written
(target <= 1.05: the engine adds its batching, its finiteness checks and the write-back of the
weights after every epoch). CPU time of the process (all its threads) by default: it stays
meaningful on a busy machine, where wall time does not. The hand-written loop is what a PyTorch
user writes: tensors made once, ``torch.optim.Adam`` with its defaults, ``F.cross_entropy``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

import specchain as sc
from specchain.exporters import pytorch
from specchain.losses import cross_entropy
from specchain.models import zoo
from specchain.optim import Adam
from specchain.train import fit

SIZES = {  # name: (features, hidden, classes, steps T, examples N, batch)
    "small": (16, 32, 4, 20, 512, 32),
    "large": (64, 256, 10, 50, 512, 64),
}
Epochs = Callable[[int], None]


def data(features: int, classes: int, steps: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, n, features)).astype(np.float32)
    return x, rng.integers(0, classes, n)


def engine_epochs(
    model: sc.SpecChain, xy: tuple[np.ndarray, ...], batch: int, engine: str
) -> Epochs:
    optimizer = Adam(model, lr=1e-3)

    def epochs(count: int) -> None:  # one fit call, as a user trains
        fit(model, xy, cross_entropy, optimizer, count, batch, progress=False, engine=engine)

    return epochs


def hand_written_epochs(model: sc.SpecChain, xy: tuple[np.ndarray, ...], batch: int) -> Epochs:
    module = pytorch.build_torch_module(model)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    x, y = torch.from_numpy(xy[0]), torch.from_numpy(xy[1])
    generator = torch.Generator().manual_seed(0)

    def epochs(count: int) -> None:
        for _ in range(count):
            order = torch.randperm(x.shape[1], generator=generator)
            for start in range(0, x.shape[1], batch):
                index = order[start : start + batch]
                loss = F.cross_entropy(module(x[:, index]), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

    return epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per way")
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: small,large")
    parser.add_argument("--wall", action="store_true", help="wall time instead of CPU time")
    args = parser.parse_args()
    clock = time.perf_counter if args.wall else time.process_time
    kind = "wall" if args.wall else "CPU"
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads; mean epoch {kind} seconds")
    print(f"{'size':<7}{'numpy':>9}{'torch eng':>11}{'hand':>9}{'np/eng':>9}{'eng/hand':>10}")
    for name in args.sizes.split(","):
        features, hidden, classes, steps, n, batch = SIZES[name]
        xy = data(features, classes, steps, n)
        models = [zoo.classifier(features, hidden, classes) for _ in range(3)]
        for other in models[1:]:
            other.load_state_dict(models[0].state_dict())
        ways = [
            engine_epochs(models[0], xy, batch, "numpy"),
            engine_epochs(models[1], xy, batch, "torch"),
            hand_written_epochs(models[2], xy, batch),
        ]
        times = []
        for way in ways:
            way(1)  # warm-up
            began = clock()
            way(args.epochs)
            times.append((clock() - began) / args.epochs)
        numpy_t, engine_t, hand_t = times
        print(
            f"{name:<7}{numpy_t:>9.3f}{engine_t:>11.3f}{hand_t:>9.3f}"
            f"{numpy_t / engine_t:>9.2f}{engine_t / hand_t:>10.2f}"
        )


if __name__ == "__main__":
    main()
