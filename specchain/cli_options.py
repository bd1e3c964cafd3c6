"""The command line's diagram and summary options and its list of MODEL forms.

``render`` takes what ``graphviz.to_dot`` and ``graphviz.render`` take: ``--expand`` /
``--depth N``, ``--direction``, ``--dpi``, ``--format``, ``--hide-shapes``, ``--hide-params``,
``--show-dtype``, ``--collapse-repeats``, ``--plain-labels`` and ``--backend``. ``summary``
takes ``--shape DIMS`` (once per input) for ``summary(input_shape=...)``.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

from specchain.types import SpecError

ZOO_BUDGET = 10_000_000  # parameter elements the zoo's models may declare (zeros, not drawn)


class OptionError(SpecError):
    """A diagram or summary option that does not fit the rest of the command line."""


@functools.cache
def model_forms() -> str:
    """The MODEL forms and the zoo's names with their types, for ``--help``. The zoo models
    are built without drawing weights: the initialisation stream does not move, so a model
    that MODEL's file builds afterwards gets the weights ``python file.py`` gives it."""
    from specchain.models import ZOO
    from specchain.params import without_init

    width = max(len(name) for name in ZOO) + len("zoo:")
    with without_init(ZOO_BUDGET):
        built = {name: entry.build() for name, entry in ZOO.items()}
    zoo = "\n".join(
        f"  {('zoo:' + name).ljust(width)}  {model.in_type} -> {model.out_type}"
        for name, model in built.items()
    )
    return f"""\
MODEL is one of:
  zoo:NAME                  a model of the zoo (below), e.g. zoo:classifier
  file.py:function          a function of no arguments (or a class) returning the model
  file.py:model             a SpecChain or a spec defined in file.py
  file.py:Net               a PyTorch nn.Module (a class, instance or factory), imported
                            with --input-shape T,B,8 (and --input-dtype long for tokens)
  model.safetensors         a model saved with model.save(...)

The zoo:
{zoo}"""


# --- summary --------------------------------------------------------------------------------


def add_summary_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shape",
        action="append",
        default=[],
        type=_sizes,
        metavar="DIMS",
        help="concrete input sizes, e.g. 20,4,8 for [T, B, 8]: the table shows every node's "
        "shape for them and the parameter and activation memory; once per input of a model "
        "taking several",
    )


def _sizes(text: str) -> tuple[int, ...]:
    """``"20,4,8"`` -> ``(20, 4, 8)``."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give sizes as non-negative integers separated by commas, e.g. 20,4,8"
        )
    return tuple(int(part) for part in parts)


def input_shape(args: argparse.Namespace) -> Any:
    """``summary``'s ``input_shape`` from ``--shape`` (None, one shape, or one per input)."""
    shapes: list[tuple[int, ...]] = args.shape
    if not shapes:
        return None
    return shapes[0] if len(shapes) == 1 else tuple(shapes)


# --- render ---------------------------------------------------------------------------------


def add_diagram_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``graphviz.to_dot`` and ``graphviz.render``."""
    from specchain.exporters.graphviz import BACKENDS, FORMATS, PNG_DPI, RANKDIRS

    add = parser.add_argument
    add("-o", "--output", required=True, help="the file to write, e.g. model.svg")
    add(
        "--format",
        choices=sorted(set(FORMATS.values())),
        help="svg, png, pdf or dot; by default the suffix of -o says (-o model with --format "
        "png writes model.png)",
    )
    add("--expand", action="store_true", help="expand composite specs into clusters")
    add(
        "--depth",
        type=_levels,
        metavar="N",
        help="expand N levels of composite specs (implies --expand; --expand alone: all)",
    )
    add(
        "--direction",
        "--rankdir",
        dest="rankdir",
        default="TB",
        choices=RANKDIRS,
        help="TB top to bottom (default), LR left to right, BT, RL",
    )
    add(
        "--dpi",
        type=_dpi,
        help=f"a PNG's resolution in dots per inch (default {PNG_DPI:g})",
    )
    add("--hide-shapes", action="store_true", help="no types on the edges")
    add("--hide-params", action="store_true", help="no parameter counts in the boxes")
    add("--show-dtype", action="store_true", help="add the dtype to edge types")
    add(
        "--collapse-repeats",
        action="store_true",
        help="draw a run of identical blocks once, marked xN",
    )
    add(
        "--plain-labels",
        action="store_true",
        help="plain text labels, for Graphviz builds without HTML-like labels",
    )
    add(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="auto (system dot, else the WebAssembly Graphviz for svg), dot or wasm",
    )


def _levels(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of levels such as 1")
    return int(text)


def _dpi(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 1 <= value <= 2400:
        raise argparse.ArgumentTypeError(f"{text!r}: give a resolution from 1 to 2400, e.g. 300")
    return value


def output_path(args: argparse.Namespace) -> Path:
    """The file ``render`` writes: ``-o``, with ``--format``'s suffix when it has none; refused
    when it is a folder, its suffix names no format, or it disagrees with ``--format``."""
    from specchain.exporters.graphviz import FORMATS

    output = Path(args.output)
    if output.is_dir():
        raise OptionError(
            f"-o {output}: is a folder; give the file to write, e.g. -o {output / 'model.svg'}"
        )
    if args.format is not None and not output.suffix:
        output = output.with_name(f"{output.name}.{args.format}")
    if output.suffix.lower() not in FORMATS:
        raise OptionError(
            f"-o {output}: unknown suffix {output.suffix!r}; the format comes from the suffix: "
            f"use one of {', '.join(FORMATS)}"
        )
    if args.format is not None and FORMATS[output.suffix.lower()] != args.format:
        raise OptionError(
            f"-o {output} says {FORMATS[output.suffix.lower()]} but --format is "
            f"{args.format}: drop --format or write -o {output.with_suffix('.' + args.format)}"
        )
    if args.dpi is not None and FORMATS[output.suffix.lower()] != "png":
        raise OptionError(
            f"--dpi sets a PNG's resolution and -o {output} is not a PNG: drop --dpi or write "
            f"-o {output.with_suffix('.png')}"
        )
    return output


def render_options(args: argparse.Namespace) -> dict[str, Any]:
    """``graphviz.render``'s keyword arguments from the parsed options."""
    expand: bool | int = args.depth if args.depth is not None else args.expand
    return {
        "backend": args.backend,
        "dpi": args.dpi,
        "expand": expand,
        "rankdir": args.rankdir,
        "show_shapes": not args.hide_shapes,
        "show_params": not args.hide_params,
        "show_dtype": args.show_dtype,
        "collapse_repeats": args.collapse_repeats,
        "html": not args.plain_labels,
    }
