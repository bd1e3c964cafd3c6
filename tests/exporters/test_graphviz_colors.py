"""Diagram colours come from the family a spec class declares (``family="recurrent"``), not from
the file it lives in: a user layer can take a built-in family's colours, a new family gets a
colour of its own that every process agrees on, and a class without a family is grey."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

import specchain as sc
from specchain.exporters import graphviz as gv
from specchain.modules import LSTM
from specchain.spec import SPEC_KINDS, Context, NNModuleSpec, Params
from specchain.types import DimEnv, Type

ROOT = Path(__file__).resolve().parents[2]


@attrs.define(eq=False)
class Plain(NNModuleSpec):
    """A user layer that declares no family: y = x."""

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return in_type

    def forward(self, params: Params, x: Any, ctx: Context) -> tuple[Any, None]:
        return x, None

    def backward(self, params: Params, saved: None, dy: Any) -> tuple[Any, Params]:
        return dy, {}


@attrs.define(eq=False)
class UserRecurrent(Plain, family="recurrent"):
    """A user layer outside ``specchain.modules`` declaring a built-in family."""


@attrs.define(eq=False)
class UserNorm(Plain, family="normalization"):
    """A user layer declaring a family the palette does not know."""


@attrs.define(eq=False)
class UserNormBlock(Plain, family="normalization"):
    """A composite user layer: drawn as a cluster of two ``Plain`` layers with ``expand``."""

    def components(self) -> sc.SpecChain:
        return Plain(name="first") >> Plain(name="second")


def box_colors(source: str, node: str) -> tuple[str, str]:
    """``(fill, border)`` of the box drawn for top-level node ``node``."""
    statement = re.search(rf"^\t{gv.node_id((node,))} \[(.*)\]$", source, flags=re.M)
    assert statement is not None, source
    return _fill_and_border(statement.group(1))


def cluster_colors(source: str, node: str) -> tuple[str, str]:
    """``(fill, border)`` of the cluster drawn for the expanded top-level node ``node``."""
    attributes = re.search(rf"subgraph {gv.cluster_id((node,))} {{\n\t+(.*)$", source, flags=re.M)
    assert attributes is not None, source
    return _fill_and_border(attributes.group(1))


def _fill_and_border(attributes: str) -> tuple[str, str]:
    attributes = re.sub(r"label=<.*</table>>", "", attributes)  # its fonts have colours too
    fill = re.search(r'fillcolor="(#\w+)"', attributes)
    border = re.search(r'(?<!fill)color="(#\w+)"', attributes)
    assert fill is not None and border is not None, attributes
    return fill.group(1), border.group(1)


def test_a_user_layer_declaring_a_built_in_family_gets_its_colours() -> None:
    source = gv.to_dot(UserRecurrent() >> LSTM(4, 4)).source
    recurrent = gv.FAMILY_COLORS["recurrent"]
    assert box_colors(source, "user_recurrent") == (recurrent.fill, recurrent.border)
    assert box_colors(source, "user_recurrent") == box_colors(source, "lstm")


def test_a_class_without_a_family_is_grey() -> None:
    assert Plain.family is None
    source = gv.to_dot(Plain() >> UserNorm()).source
    default = gv.DEFAULT_PALETTE
    assert box_colors(source, "plain") == (default.fill, default.border)
    assert box_colors(source, "user_norm") != (default.fill, default.border)


def test_a_new_family_gets_an_extra_palette_of_its_own() -> None:
    palette = gv.family_palette("normalization")
    assert palette == gv.EXTRA_PALETTES[5]  # pinned: users' diagrams keep their colours
    assert palette != gv.DEFAULT_PALETTE
    assert palette not in gv.FAMILY_COLORS.values()
    assert not set(gv.EXTRA_PALETTES) & {*gv.FAMILY_COLORS.values(), gv.DEFAULT_PALETTE}
    families = ("normalization", "convolution", "pooling", "gating")
    assert len({gv.family_palette(f) for f in families}) > 1  # names spread over the list
    source = gv.to_dot(UserNorm()).source
    assert box_colors(source, "user_norm") == (palette.fill, palette.border)


SUBPROCESS_DRAWING = """
import attrs
from specchain.exporters import graphviz as gv
from specchain.modules import Identity

@attrs.define(eq=False)
class Norm(Identity, family="normalization"):
    pass

print(gv.to_dot(Norm()).source)
"""


@pytest.mark.parametrize("hash_seeds", [("1", "2")])
def test_a_new_family_has_the_same_colour_in_every_process(hash_seeds: tuple[str, str]) -> None:
    sources = []
    for seed in hash_seeds:  # different str hashes: the colour must not depend on hash()
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", SUBPROCESS_DRAWING],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env=env,
        )
        sources.append(done.stdout)
    first, second = (box_colors(source, "norm") for source in sources)
    assert first == second
    palette = gv.family_palette("normalization")
    assert first == (palette.fill, palette.border)
    assert first != (gv.DEFAULT_PALETTE.fill, gv.DEFAULT_PALETTE.border)


def test_an_expanded_composite_cluster_takes_its_family_colours() -> None:
    source = gv.to_dot(UserNormBlock() >> LSTM(4, 4, num_layers=2), expand=True).source
    palette = gv.family_palette("normalization")
    assert cluster_colors(source, "user_norm_block") == (palette.cluster, palette.border)
    recurrent = gv.FAMILY_COLORS["recurrent"]
    assert cluster_colors(source, "lstm") == ("#eff6ff", recurrent.border)  # as before


def test_every_built_in_kind_is_drawn_in_colour() -> None:
    """A built-in family outside ``FAMILY_COLORS`` (``LayerNorm``'s "normalization") takes its
    stable extra palette, as a user's family does: a new layer needs no edit of colors.py."""
    built_in = [cls for cls in SPEC_KINDS.values() if cls.__module__.startswith("specchain.")]
    assert built_in
    for cls in built_in:
        palette = gv.family_palette(cls.family)
        assert palette != gv.DEFAULT_PALETTE, f"{cls.__qualname__} family {cls.family!r}"
