"""The exported PyTorch module against a hand-written twin: forward + backward, same process.

The exporter should cost nothing at run time: its generated module is ``nn.LSTM`` / ``nn.Linear``
/ ... called line by line, like code written by hand. Each zoo model is exported with
``build_torch_module``; its twin is the hand-written one of ``tests/models/twins.py``, with the
same ``state_dict`` (loaded with ``strict=True``, and checked to give the same outputs). Runs
alternate between the two so that load on a shared machine hits both alike; the table shows
medians, exported / twin of the medians and of the best runs.

    python benchmarks/export.py                       # T=50, B=32, H=256, float32
    python benchmarks/export.py --threads 1           # stable numbers on a busy shared machine
    python benchmarks/export.py --repeats 41 --hidden 512
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

import specchain as sc
from specchain.exporters.pytorch import build_torch_module
from specchain.models import zoo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from tests.models.twins import BiLSTMTwin, LanguageModelTwin, Seq2SeqTwin

TARGET = 1.05
INPUT_SIZE, OUTPUT_SIZE, VOCAB = 64, 16, 1000


def cases(hidden: int) -> list[tuple[str, sc.SpecChain, nn.Module]]:
    sc.seed(0)
    return [
        (
            "seq2seq",
            zoo.seq2seq(INPUT_SIZE, hidden, OUTPUT_SIZE),
            Seq2SeqTwin(INPUT_SIZE, hidden, OUTPUT_SIZE),
        ),
        (
            "language_model",
            zoo.language_model(VOCAB, hidden, num_layers=2, dropout=0.2),
            LanguageModelTwin(VOCAB, hidden, num_layers=2, dropout=0.2),
        ),
        (
            "bilstm",
            zoo.bilstm(INPUT_SIZE, hidden, OUTPUT_SIZE),
            BiLSTMTwin(INPUT_SIZE, hidden, OUTPUT_SIZE),
        ),
    ]


# --- timing ------------------------------------------------------------------------------------


def forward_backward(module: nn.Module, x: torch.Tensor, dy: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        module.zero_grad(set_to_none=True)
        y = module(x)
        y.backward(dy)
        return y

    return run


def alternating_times(
    first: Callable[[], object], second: Callable[[], object], repeats: int
) -> tuple[list[float], list[float]]:
    """Seconds per run of each, measured in alternation (AB, BA, AB, ...)."""
    first(), second()  # warm up
    times: tuple[list[float], list[float]] = ([], [])
    for k in range(repeats):
        order = (0, 1) if k % 2 == 0 else (1, 0)
        for which in order:
            run = first if which == 0 else second
            start = time.perf_counter()
            run()
            times[which].append(time.perf_counter() - start)
    return times


def make_input(name: str, steps: int, batch: int, rng: np.random.Generator) -> torch.Tensor:
    if name == "language_model":
        return torch.from_numpy(rng.integers(0, VOCAB, size=(steps, batch)))
    return torch.from_numpy(rng.standard_normal((steps, batch, INPUT_SIZE)).astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"float32, forward + backward, train mode, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; T={args.steps}, B={args.batch}, H={args.hidden}, "
        f"median of {args.repeats}; ratio = exported / twin (target <= {TARGET}), best = min / min"
    )
    print(f"{'model':<16}{'exported ms':>12}{'twin ms':>10}{'ratio':>8}{'best ratio':>12}")
    rng = np.random.default_rng(0)
    for name, model, twin in cases(args.hidden):
        exported = build_torch_module(model)
        twin.load_state_dict(exported.state_dict(), strict=True)  # same names, same layouts
        x = make_input(name, args.steps, args.batch, rng)
        with torch.no_grad():  # a real twin: the same function
            assert torch.equal(exported.eval()(x), twin.eval()(x)), name
        exported.train(), twin.train()
        with torch.no_grad():
            dy = torch.randn_like(twin(x))
        ours, theirs = alternating_times(
            forward_backward(exported, x, dy), forward_backward(twin, x, dy), args.repeats
        )
        median, twin_median = statistics.median(ours), statistics.median(theirs)
        ratio, best_ratio = median / twin_median, min(ours) / min(theirs)
        flag = "" if ratio <= TARGET else "  (above target)"
        print(
            f"{name:<16}{median * 1e3:>12.2f}{twin_median * 1e3:>10.2f}{ratio:>8.3f}"
            f"{best_ratio:>12.3f}{flag}"
        )


if __name__ == "__main__":
    main()
