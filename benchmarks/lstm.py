"""Numpy LSTM, GRU and RNN forward+backward against torch.nn.LSTM, nn.GRU and nn.RNN, in one
process, same thread count, float32.

python benchmarks/lstm.py                 # the tables of medians and the numpy/torch ratios
python benchmarks/lstm.py --cells lstm    # the LSTM rows only (also gru, rnn; comma-separated)

Every table has one row per (config, size, cell): ``lstm`` is ``LSTM`` against ``nn.LSTM``,
``gru`` is ``GRU`` against ``nn.GRU``, ``rnn`` is the tanh ``RNN`` against ``nn.RNN``. Both sides
hold the same weights, and once per row the script asserts that their outputs and input
gradients agree, so the timings compare equal work.

Columns: ``numpy`` and ``torch`` are medians of forward plus backward (input gradient included),
each timed in a block of its own. For single-layer rows, ``GEMMs`` times only the matrix products
our kernel issues (the input projection, the per-step recurrent products of forward and backward,
and the three products after the BPTT loop), with the same shapes and layouts: no numpy kernel
built from these BLAS calls can be faster than that column. ``target`` is issue 3's ratio (LSTM).

The second table runs the same layers on variable-length batches (lengths drawn uniformly in
T/2..T, unsorted, as ``Padded`` inputs): ``full`` and ``lengths`` time the spec's own forward and
backward on the full and the variable-length batch, ``lengths / full`` is the cost of lengths
(issue 12's target: at most 1.2 at the middle size; both are the best of three alternating
blocks), and ``torch packed`` times ``pack_padded_sequence`` -> ``nn.LSTM`` ->
``pad_packed_sequence`` and backward on the same batch. On a loaded shared machine, use
``OPENBLAS_NUM_THREADS=1 python benchmarks/lstm.py --table lengths --cpu-time``: one thread on
both sides, timed in process CPU time (``--cpu-time`` times the first table the same way).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from timing import blas_kernels, median_seconds
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import specchain as sc
from specchain.modules import GRU, LSTM, RNN
from specchain.padded import Padded
from specchain.spec import Context, NNModuleSpec

WARM_UP = 0.5  # seconds of untimed runs before the measurements
SHAPES = [(20, 4, 16, 32), (50, 32, 128, 256), (100, 64, 256, 512)]
CONFIGS = [("1 layer", 1, False), ("2 layers, bidirectional", 2, True)]
TARGETS = {(50, 32, 128, 256): 1.3, (100, 64, 256, 512): 1.0}  # issue 3, single layer
LENGTHS_TARGET = {(50, 32, 128, 256): 1.2}  # issue 12: lengths / full batch

Run = Callable[[], object]
Timer = Callable[[Run, int, float], float]  # (run, repeats, warm-up seconds) -> median seconds


@dataclass(frozen=True)
class Family:
    """One recurrent family: our spec, its torch twin, and the gate blocks stacked in ``W_ih``."""

    spec: Callable[..., NNModuleSpec]
    module: type[torch.nn.RNNBase]
    gates: int


FAMILIES = {
    "lstm": Family(LSTM, torch.nn.LSTM, 4),
    "gru": Family(GRU, torch.nn.GRU, 3),
    "rnn": Family(RNN, torch.nn.RNN, 1),  # tanh, both sides' default
}


# Runs are timed one block at a time, never interleaved: after numpy's GEMMs, OpenBLAS's worker
# threads keep spinning and slow the torch call that follows (torch doubled at (50, 32, 128, 256)
# when timed round-robin). On a shared 2-core machine, expect noise.


def numpy_run(model: sc.SpecChain, x: np.ndarray, dy: np.ndarray) -> Run:
    def run() -> object:
        _, tape = model.forward(x, train=True, rng=0)
        return model.backward(tape, dy)

    return run


def torch_run(module: torch.nn.RNNBase, x: np.ndarray, dy: np.ndarray) -> Run:
    xt, dyt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

    def run() -> object:
        module.zero_grad(set_to_none=True)
        xt.grad = None
        y, _ = module(xt)
        y.backward(dyt)
        return xt.grad

    return run


def spec_run(spec: NNModuleSpec, x: np.ndarray | Padded, dy: np.ndarray) -> Run:
    """The spec's own forward and backward (a ``Padded`` input runs packed)."""

    def run() -> object:
        _, saved = spec.forward(spec.params, x, Context(train=True))
        return spec.backward(spec.params, saved, dy)

    return run


def torch_packed_run(
    module: torch.nn.RNNBase, x: np.ndarray, lengths: np.ndarray, dy: np.ndarray
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


def gemm_run(steps: int, batch: int, features: int, hidden: int, gates: int = 4) -> Run:
    """The matrix products of one single-layer forward+backward in `lstm_kernel` (``gates`` = 4),
    `gru_kernel` (3) or `rnn_kernel` (1), alone: all three issue the same products."""
    rng = np.random.default_rng(0)

    def rand(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    x, hs = rand(steps * batch, features), rand(steps * batch, hidden)
    w_ih, w_hh = rand(gates * hidden, features), rand(gates * hidden, hidden)
    w_hh_t = np.ascontiguousarray(w_hh.T)
    h, dz = rand(batch, hidden), rand(batch, gates * hidden)
    dgates = rand(steps * batch, gates * hidden)
    recurrent, dh = np.empty_like(dz), np.empty_like(h)

    def run() -> object:
        gates = x @ w_ih.T
        for _ in range(steps):
            np.matmul(h, w_hh_t, out=recurrent)
        for _ in range(steps):
            np.matmul(dz, w_hh, out=dh)
        return gates, dgates @ w_ih, dgates.T @ x, dgates.T @ hs

    return run


def _pair(
    family: Family, layers: int, bidirectional: bool, features: int, hidden: int
) -> tuple[NNModuleSpec, torch.nn.RNNBase]:
    """Our layer of ``family`` and its torch twin holding the same weights."""
    sc.seed(0)
    spec = family.spec(features, hidden, num_layers=layers, bidirectional=bidirectional)
    module = family.module(features, hidden, num_layers=layers, bidirectional=bidirectional)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in spec.params.items()})
    return spec, module


def _batch(
    spec: NNModuleSpec, steps: int, batch: int, features: int, hidden: int
) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """A float32 input ``[T, B, I]``, an output gradient ``[T, B, D*H]`` and the generator."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, features)).astype(np.float32)
    dy = rng.standard_normal((steps, batch, spec.directions * hidden)).astype(np.float32)
    return x, dy, rng


def check_same_work(
    spec: NNModuleSpec, module: torch.nn.RNNBase, x: np.ndarray | Padded, dy: np.ndarray
) -> None:
    """Assert that both sides compute the same output and input gradient (float32 tolerances),
    on the full batch or, for a ``Padded`` ``x``, through torch's packed path."""
    y, saved = spec.forward(spec.params, x, Context(train=True))
    dx, _ = spec.backward(spec.params, saved, dy)
    if isinstance(x, Padded):
        y, dx = y.data, dx.data
        xt = torch.from_numpy(x.data).requires_grad_(True)
        packed = pack_padded_sequence(xt, torch.from_numpy(x.lengths), enforce_sorted=False)
        yt, _ = pad_packed_sequence(module(packed)[0], total_length=x.data.shape[0])
    else:
        xt = torch.from_numpy(x).requires_grad_(True)
        yt, _ = module(xt)
    yt.backward(torch.from_numpy(dy))
    assert xt.grad is not None
    name = type(spec).__name__
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-3, atol=1e-4, err_msg=name)


def _rows(cells: list[str]) -> list[tuple[str, int, bool, tuple[int, int, int, int], str]]:
    """(config label, layers, bidirectional, shape, cell) in table order: the cells side by side."""
    return [
        (label, layers, bidirectional, shape, cell)
        for label, layers, bidirectional in CONFIGS
        for shape in SHAPES
        for cell in cells
    ]


def _clock(timer: Timer) -> str:
    return "CPU time, one thread" if timer is cpu_median else "wall time"


def full_batch_table(repeats: int, cells: list[str], timer: Timer) -> None:
    print(f"\nfull batch, medians of {_clock(timer)}")
    print(
        f"{'config':<26}{'T, B, I, H':<20}{'cell':<6}{'numpy ms':>10}{'torch ms':>10}{'ratio':>8}"
        f"{'GEMMs ms':>10}{'GEMMs/torch':>13}{'target':>8}"
    )
    for label, layers, bidirectional, shape, cell in _rows(cells):
        family = FAMILIES[cell]
        spec, module = _pair(family, layers, bidirectional, shape[2], shape[3])
        x, dy, _ = _batch(spec, *shape)
        check_same_work(spec, module, x, dy)
        runs = [numpy_run(spec.as_chain(), x, dy), torch_run(module, x, dy)]
        if layers == 1 and not bidirectional:
            runs.append(gemm_run(*shape, gates=family.gates))
        ours, theirs, *floor = (timer(run, repeats, WARM_UP) for run in runs)
        line = f"{label:<26}{', '.join(map(str, shape)):<20}{cell:<6}"
        line += f"{ours * 1e3:>10.2f}{theirs * 1e3:>10.2f}{ours / theirs:>8.2f}"
        if floor:
            line += f"{floor[0] * 1e3:>10.2f}{floor[0] / theirs:>13.2f}"
            if cell == "lstm" and shape in TARGETS:
                line += f"{'<= ' + str(TARGETS[shape]):>8}"
        print(line, flush=True)


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


def lengths_table(repeats: int, cells: list[str], timer: Timer) -> None:
    print(f"\nwith lengths uniform in T/2..T (unsorted), Padded input, medians of {_clock(timer)}")
    print(
        f"{'config':<26}{'T, B, I, H':<20}{'cell':<6}{'full ms':>10}{'lengths ms':>12}"
        f"{'lengths/full':>14}{'torch packed ms':>17}{'ratio':>8}{'target':>8}"
    )
    for label, layers, bidirectional, shape, cell in _rows(cells):
        steps, batch = shape[:2]
        spec, module = _pair(FAMILIES[cell], layers, bidirectional, shape[2], shape[3])
        x, dy, rng = _batch(spec, *shape)
        lengths = rng.integers(steps // 2, steps + 1, batch).astype(np.int64)
        check_same_work(spec, module, Padded(x, lengths), dy)
        full, ours = alternating_medians(
            [spec_run(spec, x, dy), spec_run(spec, Padded(x, lengths), dy)], repeats, timer
        )
        theirs = timer(torch_packed_run(module, x, lengths, dy), repeats, WARM_UP)
        line = f"{label:<26}{', '.join(map(str, shape)):<20}{cell:<6}{full * 1e3:>10.2f}"
        line += f"{ours * 1e3:>12.2f}{ours / full:>14.2f}{theirs * 1e3:>17.2f}"
        line += f"{ours / theirs:>8.2f}"
        if cell == "lstm" and layers == 1 and shape in LENGTHS_TARGET:
            line += f"{'<= ' + str(LENGTHS_TARGET[shape]):>8}"
        print(line, flush=True)


def cells_arg(text: str) -> list[str]:
    """``--cells``: ``all`` or a comma-separated list of ``FAMILIES``."""
    cells = list(FAMILIES) if text == "all" else text.split(",")
    unknown = [c for c in cells if c not in FAMILIES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown cell(s) {unknown}; choose from {', '.join(FAMILIES)} or all"
        )
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--table", choices=("all", "full", "lengths"), default="all", help="which table to print"
    )
    parser.add_argument(
        "--cells",
        type=cells_arg,
        default=list(FAMILIES),
        help=f"comma-separated families ({', '.join(FAMILIES)}) or all (default: all)",
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="tables in CPU time, torch on one thread (also set OPENBLAS_NUM_THREADS=1)",
    )
    args = parser.parse_args()
    if args.cpu_time:
        torch.set_num_threads(1)
    timer = cpu_median if args.cpu_time else median_seconds
    threads = torch.get_num_threads()
    print(f"float32, torch {torch.__version__}, {threads} threads (numpy's BLAS uses its own pool)")
    print(f"numpy's BLAS: {blas_kernels()}")
    if args.table in ("all", "full"):
        full_batch_table(args.repeats, args.cells, timer)
    if args.table in ("all", "lengths"):
        lengths_table(args.repeats, args.cells, timer)


if __name__ == "__main__":
    main()
