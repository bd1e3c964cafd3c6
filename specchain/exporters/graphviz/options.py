"""What a diagram shows: ``Options``, built and checked from ``to_dot``'s arguments."""

from __future__ import annotations

import attrs

from specchain.chain import SpecChain
from specchain.types import SpecError

RANKDIRS = ("TB", "LR", "BT", "RL")


@attrs.frozen
class Options:
    """What ``to_dot`` draws; ``depth`` is how many levels of composite specs to expand
    (``None``: all)."""

    show_shapes: bool = True
    show_params: bool = True
    show_dtype: bool = False
    rankdir: str = "TB"
    depth: int | None = 0
    collapse_repeats: bool = False
    html: bool = True
    float_name: str = "float"


def make_options(
    chain: SpecChain,
    show_shapes: bool,
    show_params: bool,
    show_dtype: bool,
    rankdir: str,
    expand: bool | int,
    collapse_repeats: bool,
    html: bool,
) -> Options:
    """``Options`` from ``to_dot``'s arguments; a bad ``rankdir`` or ``expand`` is refused."""
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    return Options(
        show_shapes=bool(show_shapes),
        show_params=bool(show_params),
        show_dtype=bool(show_dtype),
        rankdir=rankdir,
        depth=_depth(expand),
        collapse_repeats=bool(collapse_repeats),
        html=bool(html),
        float_name=_float_name(chain) if show_dtype else "float",
    )


def _depth(expand: object) -> int | None:
    if isinstance(expand, bool):
        return None if expand else 0
    if not isinstance(expand, int):
        raise TypeError(f"expand must be True, False or an int (levels to expand), got {expand!r}")
    if expand < 0:
        raise ValueError(f"expand must be >= 0 (levels of composite specs to expand), got {expand}")
    return expand


def _float_name(chain: SpecChain) -> str:
    try:
        dtype = chain.dtype
    except SpecError:  # mixed dtypes: say only "float"
        return "float"
    return "float" if dtype is None else str(dtype)
