"""Sampling time per token: ``generate`` carries the recurrent state, so it is flat in the length.

python benchmarks/generate.py            # the table, the flatness ratio and the rerun baseline

The model is a character-level language model (``sc.models.language_model``: vocabulary 65,
hidden 128, 2 LSTM layers, float32) sampling one sequence from a one-token prompt. Each length
is timed ``--repeats`` times, lengths interleaved, and the best run counts (a shared machine only
ever adds time; on a loaded machine, ``OPENBLAS_NUM_THREADS=1 python benchmarks/generate.py
--cpu-time`` times one thread in process CPU time). Issue 15's target: the largest time per
token over the smallest <= 1.5. The second table times the definition ``generate`` had before
(rerun the chain on the whole sequence for every token), whose time per token grows with the
length.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

import specchain as sc
from specchain.generation import _sample, generate
from specchain.params import runtime_generator

LENGTHS = (100, 1_000, 10_000)
RERUN_LENGTHS = (100, 200)
TARGET = 1.5


def rerun_generate(model: sc.SpecChain, prompt: np.ndarray, n: int) -> np.ndarray:
    """The previous definition: the whole sequence so far through the chain, every token."""
    generator = runtime_generator(0)
    out = np.empty((prompt.shape[0] + n, prompt.shape[1]), dtype=prompt.dtype)
    out[: prompt.shape[0]] = prompt
    for t in range(prompt.shape[0], prompt.shape[0] + n):
        out[t] = _sample(model(out[:t])[-1], 1.0, None, generator)
    return out


def seconds(run: object, clock: Callable[[], float] = time.perf_counter) -> float:
    start = clock()
    run()  # type: ignore[operator]
    return clock() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per length")
    parser.add_argument("--no-rerun", action="store_true", help="skip the rerun baseline")
    parser.add_argument(
        "--cpu-time", action="store_true", help="time in process CPU time (a loaded machine)"
    )
    args = parser.parse_args()
    sc.seed(0)
    model = sc.models.language_model(vocab_size=65, hidden_size=128, num_layers=2)
    prompt = np.zeros((1, 1), dtype=np.int64)
    generate(model, prompt, 200, rng=0)  # warm up: thread pools, caches
    clock = time.process_time if args.cpu_time else time.perf_counter
    best = {n: float("inf") for n in LENGTHS}
    for _ in range(args.repeats):
        for n in LENGTHS:
            best[n] = min(best[n], seconds(lambda n=n: generate(model, prompt, n, rng=0), clock))
    timed = "CPU time" if args.cpu_time else "wall time"
    print(f"generate (state carried), best of {args.repeats}, {timed}")
    print("| tokens | total s | µs per token |\n|---|---|---|")
    per_token = {n: best[n] / n * 1e6 for n in LENGTHS}
    for n in LENGTHS:
        print(f"| {n:,} | {best[n]:.3f} | {per_token[n]:.1f} |")
    ratio = max(per_token.values()) / min(per_token.values())
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"largest / smallest time per token: {ratio:.2f} (target <= {TARGET}: {verdict})")
    if not args.no_rerun:
        print("\nrerun of the whole sequence per token (the previous definition), one run each")
        print("| tokens | total s | µs per token |\n|---|---|---|")
        for n in RERUN_LENGTHS:
            took = seconds(lambda n=n: rerun_generate(model, prompt, n), clock)
            print(f"| {n:,} | {took:.3f} | {took / n * 1e6:.1f} |")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
