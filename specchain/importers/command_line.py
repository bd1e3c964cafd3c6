"""PyTorch models named on the command line: ``specchain summary net.py:Net --input-shape
T,B,8`` imports ``Net()`` with ``from_torch`` so it can be summarised, drawn and exported (the
options themselves: ``specchain.importers.options``).

``--input-shape`` gives one forward argument's dims, comma-separated: numbers are fixed sizes,
``T``, ``B`` and ``S`` stay symbolic (the example that traces the module uses T = 5, B = 3,
S = 6). ``--input-dtype`` is ``float`` (the module's float dtype) or ``long`` (token indices):
once for every argument, or once per ``--input-shape``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from specchain.chain import SpecChain
from specchain.importers.registry import TorchImportError
from specchain.importers.torch import from_torch
from specchain.importers.weights import DTYPES
from specchain.types import Dim, TensorType

EXAMPLE_SIZES = {"T": 5, "B": 3, "S": 6}
INPUT_DTYPES = ("float", "long")
SHAPE_HINT = "e.g. --input-shape T,B,8 (T and B symbolic; token indices: add --input-dtype long)"


def parse_shape(text: str) -> tuple[Dim, ...]:
    """``"T,B,8"`` -> ``("T", "B", 8)``; an error for an empty item or an unknown symbol."""
    dims: list[Dim] = []
    for item in (part.strip() for part in text.split(",")):
        if item.isdigit():
            dims.append(int(item))
        elif item in EXAMPLE_SIZES:
            dims.append(item)
        else:
            raise TorchImportError(
                f"--input-shape {text}: {item!r} is neither a size nor one of "
                f"{', '.join(EXAMPLE_SIZES)}; write feature sizes as numbers, {SHAPE_HINT}"
            )
    return tuple(dims)


def import_module(
    module: nn.Module, shapes: Sequence[str], dtypes: Sequence[str], where: str
) -> SpecChain:
    """``from_torch(module, examples)`` with the examples and input types the options give."""
    if not shapes:
        raise TorchImportError(
            f"{where} is a PyTorch module ({type(module).__name__}): give --input-shape for each "
            f"argument of its forward, {SHAPE_HINT}"
        )
    if len(dtypes) not in (0, 1, len(shapes)):
        raise TorchImportError(
            f"{len(dtypes)} --input-dtype options for {len(shapes)} --input-shape options: give "
            "one for every input, or one per --input-shape"
        )
    kinds = list(dtypes) if len(dtypes) == len(shapes) else [*dtypes, "float"][:1] * len(shapes)
    dims = [parse_shape(shape) for shape in shapes]
    float_dtype = _float_dtype(module)
    examples = tuple(_example(d, kind, float_dtype) for d, kind in zip(dims, kinds, strict=True))
    types = [TensorType(d, "int" if kind == "long" else "float") for d, kind in zip(dims, kinds)]
    return from_torch(module, examples, types[0] if len(types) == 1 else types)


def _float_dtype(module: nn.Module) -> torch.dtype:
    dtypes = {p.dtype for p in module.parameters() if p.dtype in DTYPES}
    return dtypes.pop() if len(dtypes) == 1 else torch.float32


def _example(dims: tuple[Dim, ...], kind: str, float_dtype: torch.dtype) -> torch.Tensor:
    """Zeros of the shape (token 0 is a valid index for any vocabulary)."""
    shape: list[Any] = [EXAMPLE_SIZES[d] if isinstance(d, str) else d for d in dims]
    return torch.zeros(shape, dtype=torch.long if kind == "long" else float_dtype)
