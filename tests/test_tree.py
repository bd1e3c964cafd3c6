"""Nested-tuple helpers shared by the engine, gradcheck and the exporters."""

from __future__ import annotations

import json
import operator

import numpy as np

from specchain.tree import leaves, rebuild, structure, tree_map


def test_leaves_are_depth_first_and_lists_count_as_tuples() -> None:
    a, b, c = np.zeros(1), np.ones(2), np.full(3, 2.0)
    assert [x.size for x in leaves(((a, [b]), c))] == [1, 2, 3]
    assert leaves(a) == [a]
    assert leaves(()) == []


def test_rebuild_and_structure_round_trip_through_json() -> None:
    tree = ((1, [2, 3]), 4)
    shape = json.loads(json.dumps(structure(tree)))
    assert shape == [[0, [1, 2]], 3]
    assert rebuild(shape, iter("abcd")) == (("a", ("b", "c")), "d")
    assert rebuild(tree, iter(leaves(tree))) == ((1, (2, 3)), 4)


def test_tree_map_zips_matching_trees() -> None:
    assert tree_map(operator.sub, (5, (7, 9)), (1, [2, 3])) == (4, (5, 6))
    assert tree_map(lambda x: x * 2, 3) == 6
