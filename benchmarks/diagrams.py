"""Time ``to_dot`` on a long chain: 1,000 nodes should become DOT text in well under a second.

python benchmarks/diagrams.py              # median times of to_dot(...).source
python benchmarks/diagrams.py --nodes 5000 --layout   # also time `dot -Tsvg` on the result
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time

from timing import median_seconds

import specchain as sc
from specchain.exporters import graphviz as gv
from specchain.modules import Linear, Tanh


def long_chain(nodes: int) -> sc.SpecChain:
    """Alternating Linear(8, 8) and Tanh, ``nodes`` specs in all."""
    return sc.serial(*[Linear(8, 8) if k % 2 == 0 else Tanh() for k in range(nodes)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layout", action="store_true", help="also time the system dot")
    args = parser.parse_args()

    sc.seed(0)
    start = time.perf_counter()
    chain = long_chain(args.nodes)
    print(f"building the {args.nodes:,}-node chain: {time.perf_counter() - start:.3f} s")
    cases = {
        "to_dot (HTML labels)": {},
        "to_dot (plain labels)": {"html": False},
        "to_dot (collapse_repeats)": {"collapse_repeats": True},
    }
    print(f"{'case':<28}{'median s':>10}")
    for label, options in cases.items():
        seconds = median_seconds(
            lambda o=options: gv.to_dot(chain, **o).source, args.repeats, warm_up=1e-9
        )
        verdict = "" if seconds < 1.0 else "  (over one second!)"
        print(f"{label:<28}{seconds:>10.3f}{verdict}")
    dot = shutil.which("dot")
    if args.layout and dot is not None:
        source = gv.to_dot(chain).source
        start = time.perf_counter()
        subprocess.run([dot, "-Tsvg"], input=source.encode(), capture_output=True, check=True)
        print(f"{'dot -Tsvg (layout)':<28}{time.perf_counter() - start:>10.3f}")


if __name__ == "__main__":
    main()
