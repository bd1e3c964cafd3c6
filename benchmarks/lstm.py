"""Numpy LSTM forward+backward against torch.nn.LSTM, in one process, same thread count, float32.

python benchmarks/lstm.py            # the table of medians and the numpy/torch ratio
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

import specchain as sc
from specchain.modules import LSTM

WARM_UP = 0.5  # seconds of untimed runs before each measurement
SHAPES = [(20, 4, 16, 32), (50, 32, 128, 256), (100, 64, 256, 512)]
CONFIGS = [("1 layer", 1, False), ("2 layers, bidirectional", 2, True)]


def median_time(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``run`` after a warm-up. On a shared 2-core machine, the spinning
    thread pools of numpy's OpenBLAS and torch's OpenMP disturb each other: expect noise."""
    warm_until = time.perf_counter() + WARM_UP
    while True:  # warm up: thread pools started, pages faulted in, clocks up
        run()
        if time.perf_counter() > warm_until:
            break
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def numpy_run(model: sc.SpecChain, x: np.ndarray, dy: np.ndarray) -> Callable[[], object]:
    def run() -> object:
        _, tape = model.forward(x, train=True, rng=0)
        return model.backward(tape, dy)

    return run


def torch_run(module: torch.nn.LSTM, x: np.ndarray, dy: np.ndarray) -> Callable[[], object]:
    xt, dyt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

    def run() -> object:
        module.zero_grad(set_to_none=True)
        xt.grad = None
        y, _ = module(xt)
        y.backward(dyt)
        return xt.grad

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"float32, torch {torch.__version__}, {threads} threads (numpy's BLAS uses its own pool)")
    print(f"{'config':<26}{'T, B, I, H':<20}{'numpy ms':>10}{'torch ms':>10}{'ratio':>8}")
    for label, layers, bidirectional in CONFIGS:
        for steps, batch, features, hidden in SHAPES:
            sc.seed(0)
            spec = LSTM(features, hidden, num_layers=layers, bidirectional=bidirectional)
            model = spec.as_chain()
            module = torch.nn.LSTM(features, hidden, num_layers=layers, bidirectional=bidirectional)
            module.load_state_dict(
                {k.split(".", 1)[1]: torch.from_numpy(v) for k, v in model.state_dict().items()}
            )
            rng = np.random.default_rng(0)
            x = rng.standard_normal((steps, batch, features)).astype(np.float32)
            dy = rng.standard_normal((steps, batch, spec.directions * hidden)).astype(np.float32)
            ours = median_time(numpy_run(model, x, dy), args.repeats)
            theirs = median_time(torch_run(module, x, dy), args.repeats)
            shape = f"{steps}, {batch}, {features}, {hidden}"
            print(
                f"{label:<26}{shape:<20}{ours * 1e3:>10.2f}{theirs * 1e3:>10.2f}"
                f"{ours / theirs:>8.2f}"
            )


if __name__ == "__main__":
    main()
