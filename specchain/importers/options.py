"""The command line's options for a PyTorch MODEL (``--input-shape``, ``--input-dtype``) and the
check that tells a torch module from a spec; torch is imported only when a MODEL is one.

``specchain summary net.py:Net --input-shape T,B,8`` reads ``Net`` (a module, its class or a
factory), and ``specchain.importers.command_line`` imports it with ``from_torch``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from specchain.importers.registry import TorchImportError

if TYPE_CHECKING:
    from specchain.chain import SpecChain


def add_torch_input_options(parser: argparse.ArgumentParser) -> None:
    """``--input-shape DIMS`` and ``--input-dtype float|long``, both repeatable."""
    parser.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="DIMS",
        help="for a PyTorch MODEL: one forward argument's dims, e.g. T,B,8 (T, B, S symbolic); "
        "once per argument",
    )
    parser.add_argument(
        "--input-dtype",
        action="append",
        default=[],
        choices=("float", "long"),
        help="float (the module's, default) or long (token indices); once, or per --input-shape",
    )


def is_torch_module(value: object) -> bool:
    """Whether ``value`` is an ``nn.Module`` instance (never imports torch: a module can only
    exist once the user's code imported it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def given(options: Any) -> tuple[list[str], list[str]]:
    """``(input shapes, input dtypes)`` from parsed options (or none)."""
    return list(getattr(options, "input_shape", [])), list(getattr(options, "input_dtype", []))


def refuse_torch_options(options: Any, model: str) -> None:
    """The options only mean something for a PyTorch MODEL."""
    if any(given(options)):
        raise TorchImportError(
            f"--input-shape and --input-dtype describe a PyTorch module's inputs; {model} is "
            "not one (its input type is part of the model): drop them"
        )


def torch_chain(module: Any, options: Any, where: str) -> SpecChain:
    """``module`` imported with the shapes and dtypes ``options`` give."""
    from specchain.importers.command_line import import_module

    shapes, dtypes = given(options)
    return import_module(module, shapes, dtypes, where)
