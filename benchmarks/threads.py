"""Small-model epoch time with all cores, with one thread and with ``fit``'s default, on a quiet
machine and beside a CPU-burning process, in one run.

python benchmarks/threads.py               # the table (about a minute)
python benchmarks/threads.py --busy 2      # two competing processes instead of one

The models are the demo's classifier (``zoo.classifier(7, H, 2)``: LSTM 7 -> H, last step,
Linear H -> 2) at several hidden sizes, trained with Adam on 512 embedded-Reber strings in
batches of 32: thousands of small matrix products per epoch. Each cell is the median wall time
of ``--repeats`` epochs (``fit(..., epochs=1, progress=False)``) after a short warm-up.
``all cores`` is ``sc.set_num_threads(os.cpu_count())`` (numpy's BLAS default), ``1 thread`` is
``sc.set_num_threads(1)``, and ``default`` is what ``fit`` does when the user chose nothing (one
thread below ``SMALL_MODEL_PARAMS`` parameters). The busy rows run while ``--busy`` subprocesses
each spin a Python loop (``while True: pass``); they stop when the rows are done. Run it without
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` set, or ``default`` is the variable's choice.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from timing import median_seconds

import specchain as sc
from specchain import losses
from specchain.data import reber
from specchain.models.zoo import classifier
from specchain.optim import Adam
from specchain.threads import SMALL_MODEL_PARAMS
from specchain.train import fit

BURN = "while True: pass"


HIDDEN = (16, 64, 128, 256)


def epoch_runner(hidden: int) -> tuple[Callable[[], object], int]:
    """One epoch of the classifier with ``hidden`` units on the demo's Reber data, as a call,
    and the model's parameter count."""
    sc.seed(0)
    data = reber.classification_data(reber.embedded_reber_strings(512, rng=0))
    model = classifier(7, hidden, 2)
    optimizer = Adam(model.named_parameters(), lr=0.02)

    def run() -> object:
        return fit(
            model,
            (data.inputs, data.targets),
            losses.cross_entropy,
            optimizer,
            epochs=1,
            batch_size=32,
            rng=0,
            progress=False,
        )

    return run, model.num_params


@contextmanager
def busy(processes: int) -> Iterator[None]:
    """``processes`` CPU-burning Python subprocesses while the block runs."""
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(processes)]
    try:
        time.sleep(0.5)  # let them reach full speed
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def measure(run: Callable[[], object], threads: int | None, repeats: int) -> float:
    sc.set_num_threads(threads)
    try:
        return median_seconds(run, repeats, warm_up=0.1)
    finally:
        sc.set_num_threads(None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="epochs timed per cell")
    parser.add_argument("--busy", type=int, default=1, help="competing CPU-burning processes")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    runs = [epoch_runner(hidden) for hidden in HIDDEN]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"load average before the run: {load}")
    print(
        f"{cores} cores, BLAS starts with {sc.get_num_threads()} threads; fit's default: one "
        f"thread below {SMALL_MODEL_PARAMS:,} parameters; busy: {args.busy} competing process(es)"
    )
    header = (
        f"{'machine':<7} {'H':>4} {'params':>8} {'all cores':>10} {'1 thread':>9} {'default':>9}"
    )
    print(header + f" {'all cores / 1 thread':>21}")
    for label in ("quiet", "busy"):
        with busy(args.busy if label == "busy" else 0):
            for hidden, (run, params) in zip(HIDDEN, runs):
                many = measure(run, cores, args.repeats)
                one = measure(run, 1, args.repeats)
                default = measure(run, None, args.repeats)
                print(
                    f"{label:<7} {hidden:>4} {params:>8,} {many:>9.3f}s {one:>8.3f}s "
                    f"{default:>8.3f}s {many / one:>21.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
