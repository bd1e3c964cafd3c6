"""Repeated blocks: runs of identical consecutive blocks that ``collapse_repeats`` draws once,
marked ``×N``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from specchain.chain import SpecChain
from specchain.graph import PSEUDO

MAX_PERIOD = 4  # longest repeated block ``find_runs`` looks for


@attrs.frozen
class Run:
    """``count`` consecutive copies of a block (a tuple of node names); only the first is
    drawn."""

    blocks: tuple[tuple[str, ...], ...]

    @property
    def count(self) -> int:
        return len(self.blocks)


def find_runs(chain: SpecChain) -> list[Run]:
    """Maximal runs of >= 2 identical consecutive blocks (period 1..MAX_PERIOD) along simple
    paths, where each link is a single whole-value edge: the only output of one node and the
    only input of the next."""
    runs = []
    for path in _simple_paths(chain):
        signatures = [_signature(chain, n) for n in path]
        i = 0
        while i < len(path):
            period, count = _best_repeat(signatures, i)
            if count >= 2:
                blocks = tuple(
                    tuple(path[i + k * period : i + (k + 1) * period]) for k in range(count)
                )
                runs.append(Run(blocks))
                i += period * count
            else:
                i += 1
    return runs


def _best_repeat(signatures: list[tuple[Any, ...]], start: int) -> tuple[int, int]:
    """``(period, count)`` of the longest run of repeats starting at ``start`` (``(1, 1)``:
    none)."""
    best = (1, 1)
    for period in range(1, MAX_PERIOD + 1):
        block = signatures[start : start + period]
        if len(block) < period:
            break
        count = 1
        while signatures[start + count * period : start + (count + 1) * period] == block:
            count += 1
        if count >= 2 and period * count > best[0] * best[1]:
            best = (period, count)
    return best


def _simple_paths(chain: SpecChain) -> Iterator[list[str]]:
    """Maximal paths of >= 2 spec nodes linked by single whole-value edges."""
    graph = chain.graph
    nxt: dict[str, str] = {}
    for u in chain.nodes:
        out = list(graph.out_edges(u, data=True))
        if len(out) != 1:
            continue
        _, v, d = out[0]
        if v not in PSEUDO and graph.in_degree(v) == 1 and d["port"] is None and d["index"] == ():
            nxt[u] = v
    followers = set(nxt.values())
    starts = [n for n in chain.nodes if n not in followers]
    for node in starts:
        path = [node]
        while path[-1] in nxt:
            path.append(nxt[path[-1]])
        if len(path) > 1:
            yield path


def _signature(chain: SpecChain, node: str) -> tuple[Any, ...]:
    """What makes two nodes identical for collapsing: class, hyper-parameters, parameter count
    and types in and out."""
    spec = chain.spec(node)
    data = chain.graph.nodes[node]
    return (
        type(spec),
        spec.describe(),
        spec.num_params,
        str(data["in_type"]),
        str(data["out_type"]),
    )
