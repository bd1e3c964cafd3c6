"""Nested-tuple values: a model's input, output or cotangent is an array or a (nested) tuple of
them. Lists count as tuples (what torch returns or a user writes), so every helper reads both.

    leaves(((a, b), c))               -> [a, b, c]        depth first
    rebuild(((x, x), x), iter([1, 2, 3])) -> ((1, 2), 3)  the template's structure, new leaves
    tree_map(f, t1, t2)               -> f applied leaf by leaf, structure of t1
    structure(((a, b), c))            -> [[0, 1], 2]      leaf numbers, JSON-friendly
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Tree = Any  # a leaf, or a tuple/list of trees


def is_node(value: object) -> bool:
    return isinstance(value, (tuple, list))


def leaves(tree: Tree) -> list[Any]:
    """The leaves of ``tree``, depth first."""
    if is_node(tree):
        return [leaf for item in tree for leaf in leaves(item)]
    return [tree]


def rebuild(template: Tree, items: Iterator[Any]) -> Tree:
    """A tree shaped like ``template`` (tuples at every node) whose leaves come from ``items``."""
    if is_node(template):
        return tuple(rebuild(item, items) for item in template)
    return next(items)


def tree_map(fn: Callable[..., Any], tree: Tree, *others: Tree) -> Tree:
    """``fn`` applied to the leaves of ``tree`` and the matching items of ``others`` (which must
    have its structure); the result has ``tree``'s structure, with tuples at every node."""
    if is_node(tree):
        return tuple(
            tree_map(fn, item, *(other[i] for other in others)) for i, item in enumerate(tree)
        )
    return fn(tree, *others)


def structure(tree: Tree) -> Any:
    """Nested lists of leaf numbers (depth-first order): a tree's shape, storable as JSON."""
    counter = iter(range(len(leaves(tree))))
    return _numbered(tree, counter)


def _numbered(tree: Tree, counter: Iterator[int]) -> Any:
    if is_node(tree):
        return [_numbered(item, counter) for item in tree]
    return next(counter)
