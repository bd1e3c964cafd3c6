"""Numpy LSTM forward+backward against torch.nn.LSTM, in one process, same thread count, float32.

python benchmarks/lstm.py            # the tables of medians and the numpy/torch ratios

Columns: ``numpy`` and ``torch`` are medians of forward plus backward (input gradient included),
each timed in a block of its own. For single-layer rows, ``GEMMs`` times only the matrix products
our kernel issues (the input projection, the per-step recurrent products of forward and backward,
and the three products after the BPTT loop), with the same shapes and layouts: no numpy kernel
built from these BLAS calls can be faster than that column. ``target`` is issue 3's ratio.

The second table runs the same layers on variable-length batches (lengths drawn uniformly in
T/2..T, unsorted, as ``Padded`` inputs): ``full`` and ``lengths`` time the spec's own forward and
backward on the full and the variable-length batch, ``lengths / full`` is the cost of lengths
(issue 12's target: at most 1.2 at the middle size; both are the best of three alternating
blocks), and ``torch packed`` times ``pack_padded_sequence`` -> ``nn.LSTM`` ->
``pad_packed_sequence`` and backward on the same batch. On a loaded shared machine, use
``OPENBLAS_NUM_THREADS=1 python benchmarks/lstm.py --table lengths --cpu-time``: one thread on
both sides, timed in process CPU time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from timing import median_seconds
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import specchain as sc
from specchain.modules import LSTM
from specchain.padded import Padded
from specchain.spec import Context

WARM_UP = 0.5  # seconds of untimed runs before the measurements
SHAPES = [(20, 4, 16, 32), (50, 32, 128, 256), (100, 64, 256, 512)]
CONFIGS = [("1 layer", 1, False), ("2 layers, bidirectional", 2, True)]
TARGETS = {(50, 32, 128, 256): 1.3, (100, 64, 256, 512): 1.0}  # issue 3, single layer
LENGTHS_TARGET = {(50, 32, 128, 256): 1.2}  # issue 12: lengths / full batch

Run = Callable[[], object]
Timer = Callable[[Run, int, float], float]  # (run, repeats, warm-up seconds) -> median seconds


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


def spec_run(spec: LSTM, x: np.ndarray | Padded, dy: np.ndarray) -> Run:
    """The spec's own forward and backward (a ``Padded`` input runs packed)."""

    def run() -> object:
        _, saved = spec.forward(spec.params, x, Context(train=True))
        return spec.backward(spec.params, saved, dy)

    return run


def torch_packed_run(
    module: torch.nn.LSTM, x: np.ndarray, lengths: np.ndarray, dy: np.ndarray
) -> Run:
    xt, dyt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)
    steps, lens = x.shape[0], torch.from_numpy(lengths)

    def run() -> object:
        module.zero_grad(set_to_none=True)
        xt.grad = None
        packed = pack_padded_sequence(xt, lens, enforce_sorted=False)
        y, _ = pad_packed_sequence(module(packed)[0], total_length=steps)
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


def _pair(layers: int, bidirectional: bool, features: int, hidden: int) -> tuple[LSTM, Any]:
    """Our LSTM and a torch ``nn.LSTM`` holding the same weights."""
    sc.seed(0)
    spec = LSTM(features, hidden, num_layers=layers, bidirectional=bidirectional)
    module = torch.nn.LSTM(features, hidden, num_layers=layers, bidirectional=bidirectional)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in spec.params.items()})
    return spec, module


def full_batch_table(repeats: int) -> None:
    print(
        f"{'config':<26}{'T, B, I, H':<20}{'numpy ms':>10}{'torch ms':>10}{'ratio':>8}"
        f"{'GEMMs ms':>10}{'GEMMs/torch':>13}{'target':>8}"
    )
    for label, layers, bidirectional in CONFIGS:
        for steps, batch, features, hidden in SHAPES:
            spec, module = _pair(layers, bidirectional, features, hidden)
            model = spec.as_chain()
            rng = np.random.default_rng(0)
            x = rng.standard_normal((steps, batch, features)).astype(np.float32)
            dy = rng.standard_normal((steps, batch, spec.directions * hidden)).astype(np.float32)
            runs = [numpy_run(model, x, dy), torch_run(module, x, dy)]
            if layers == 1 and not bidirectional:
                runs.append(gemm_run(steps, batch, features, hidden))
            ours, theirs, *floor = (median_seconds(run, repeats, warm_up=WARM_UP) for run in runs)
            shape = (steps, batch, features, hidden)
            line = f"{label:<26}{', '.join(map(str, shape)):<20}"
            line += f"{ours * 1e3:>10.2f}{theirs * 1e3:>10.2f}{ours / theirs:>8.2f}"
            if floor:
                line += f"{floor[0] * 1e3:>10.2f}{floor[0] / theirs:>13.2f}"
                if shape in TARGETS:
                    line += f"{'<= ' + str(TARGETS[shape]):>8}"
            print(line)


def cpu_median(run: Run, repeats: int, warm_up: float = 0.0) -> float:
    """``median_seconds`` in process CPU time: with one BLAS thread, what the run itself costs,
    whatever else loads a shared machine."""
    warm_until = time.process_time() + warm_up
    while time.process_time() < warm_until:
        run()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return statistics.median(times)


def alternating_medians(runs: list[Run], repeats: int, timer: Timer) -> list[float]:
    """For numpy runs only (no thread pools to disturb each other): each run's median, timed in
    three alternating blocks, the best block kept, so that a burst of load on a shared machine
    skews neither side of a ratio."""
    best = [float("inf")] * len(runs)
    for _ in range(3):
        for k, run in enumerate(runs):
            best[k] = min(best[k], timer(run, repeats, WARM_UP))
    return best


def lengths_table(repeats: int, timer: Timer) -> None:
    clock = "CPU time" if timer is cpu_median else "wall time"
    print(f"\nwith lengths uniform in T/2..T (unsorted), Padded input, medians of {clock}")
    print(
        f"{'config':<26}{'T, B, I, H':<20}{'full ms':>10}{'lengths ms':>12}{'lengths/full':>14}"
        f"{'torch packed ms':>17}{'ratio':>8}{'target':>8}"
    )
    for label, layers, bidirectional in CONFIGS:
        for steps, batch, features, hidden in SHAPES:
            spec, module = _pair(layers, bidirectional, features, hidden)
            rng = np.random.default_rng(0)
            x = rng.standard_normal((steps, batch, features)).astype(np.float32)
            dy = rng.standard_normal((steps, batch, spec.directions * hidden)).astype(np.float32)
            lengths = rng.integers(steps // 2, steps + 1, batch).astype(np.int64)
            full, ours = alternating_medians(
                [spec_run(spec, x, dy), spec_run(spec, Padded(x, lengths), dy)], repeats, timer
            )
            theirs = timer(torch_packed_run(module, x, lengths, dy), repeats, WARM_UP)
            shape = (steps, batch, features, hidden)
            line = f"{label:<26}{', '.join(map(str, shape)):<20}{full * 1e3:>10.2f}"
            line += f"{ours * 1e3:>12.2f}{ours / full:>14.2f}{theirs * 1e3:>17.2f}"
            line += f"{ours / theirs:>8.2f}"
            if layers == 1 and shape in LENGTHS_TARGET:
                line += f"{'<= ' + str(LENGTHS_TARGET[shape]):>8}"
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--table", choices=("all", "full", "lengths"), default="all", help="which table to print"
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="lengths table in CPU time, torch on one thread (also set OPENBLAS_NUM_THREADS=1)",
    )
    args = parser.parse_args()
    if args.cpu_time:
        torch.set_num_threads(1)
    threads = torch.get_num_threads()
    print(f"float32, torch {torch.__version__}, {threads} threads (numpy's BLAS uses its own pool)")
    if args.table in ("all", "full"):
        full_batch_table(args.repeats)
    if args.table in ("all", "lengths"):
        lengths_table(args.repeats, cpu_median if args.cpu_time else median_seconds)


if __name__ == "__main__":
    main()
