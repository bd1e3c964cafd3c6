"""Numpy LSTM forward+backward against torch.nn.LSTM, in one process, same thread count, float32.

python benchmarks/lstm.py            # the table of medians and the numpy/torch ratio

Columns: ``numpy`` and ``torch`` are medians of forward plus backward (input gradient included),
each timed in a block of its own. For single-layer rows, ``GEMMs`` times only the matrix products
our kernel issues (the input projection, the per-step recurrent products of forward and backward,
and the three products after the BPTT loop), with the same shapes and layouts: no numpy kernel
built from these BLAS calls can be faster than that column. ``target`` is issue 3's ratio.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
from timing import median_seconds

import specchain as sc
from specchain.modules import LSTM

WARM_UP = 0.5  # seconds of untimed runs before the measurements
SHAPES = [(20, 4, 16, 32), (50, 32, 128, 256), (100, 64, 256, 512)]
CONFIGS = [("1 layer", 1, False), ("2 layers, bidirectional", 2, True)]
TARGETS = {(50, 32, 128, 256): 1.3, (100, 64, 256, 512): 1.0}  # issue 3, single layer

Run = Callable[[], object]


# Runs are timed one block at a time, never interleaved: after numpy's GEMMs, OpenBLAS's worker
# threads keep spinning and slow the torch call that follows (torch doubled at (50, 32, 128, 256)
# when timed round-robin). On a shared 2-core machine, expect noise.


def numpy_run(model: sc.SpecChain, x: np.ndarray, dy: np.ndarray) -> Run:
    def run() -> object:
        _, tape = model.forward(x, train=True, rng=0)
        return model.backward(tape, dy)

    return run


def torch_run(module: torch.nn.LSTM, x: np.ndarray, dy: np.ndarray) -> Run:
    xt, dyt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

    def run() -> object:
        module.zero_grad(set_to_none=True)
        xt.grad = None
        y, _ = module(xt)
        y.backward(dyt)
        return xt.grad

    return run


def gemm_run(steps: int, batch: int, features: int, hidden: int) -> Run:
    """The matrix products of one single-layer forward+backward in `lstm_kernel`, alone."""
    rng = np.random.default_rng(0)

    def rand(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    x, hs = rand(steps * batch, features), rand(steps * batch, hidden)
    w_ih, w_hh = rand(4 * hidden, features), rand(4 * hidden, hidden)
    w_hh_t = np.ascontiguousarray(w_hh.T)
    h, dz, dgates = rand(batch, hidden), rand(batch, 4 * hidden), rand(steps * batch, 4 * hidden)
    recurrent, dh = np.empty_like(dz), np.empty_like(h)

    def run() -> object:
        gates = x @ w_ih.T
        for _ in range(steps):
            np.matmul(h, w_hh_t, out=recurrent)
        for _ in range(steps):
            np.matmul(dz, w_hh, out=dh)
        return gates, dgates @ w_ih, dgates.T @ x, dgates.T @ hs

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"float32, torch {torch.__version__}, {threads} threads (numpy's BLAS uses its own pool)")
    print(
        f"{'config':<26}{'T, B, I, H':<20}{'numpy ms':>10}{'torch ms':>10}{'ratio':>8}"
        f"{'GEMMs ms':>10}{'GEMMs/torch':>13}{'target':>8}"
    )
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
            runs = [numpy_run(model, x, dy), torch_run(module, x, dy)]
            if layers == 1 and not bidirectional:
                runs.append(gemm_run(steps, batch, features, hidden))
            ours, theirs, *floor = (
                median_seconds(run, args.repeats, warm_up=WARM_UP) for run in runs
            )
            shape = (steps, batch, features, hidden)
            line = f"{label:<26}{', '.join(map(str, shape)):<20}"
            line += f"{ours * 1e3:>10.2f}{theirs * 1e3:>10.2f}{ours / theirs:>8.2f}"
            if floor:
                line += f"{floor[0] * 1e3:>10.2f}{floor[0] / theirs:>13.2f}"
                if shape in TARGETS:
                    line += f"{'<= ' + str(TARGETS[shape]):>8}"
            print(line)


if __name__ == "__main__":
    main()
