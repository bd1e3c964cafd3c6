"""The training data file that an exported ``train.py`` reads (``.npz``, no pickle).

One input (``[T, N, F]``, ``int[T, N]``, ...): arrays ``x``, optional ``lengths`` (int64
``[N]``) and ``x_batch_axis``. Several inputs (a model whose input type is a tuple, like the
attention encoder/decoder's ``(source, decoder_inputs)``): ``x0``, ``x1``, ... in the depth-first
order of the model's inputs, each with its ``x{i}_batch_axis`` and, where it is padded, its
``lengths{i}``. Both: ``y`` (the targets) and ``y_batch_axis``. A ``*_batch_axis`` is the axis
that holds the N examples (a 0-d int array), found as ``fit`` finds it (``specchain.batches``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from specchain.batches import Part, target_axis, unpack
from specchain.chain import SpecChain
from specchain.fit_args import check_example_counts
from specchain.types import SpecError, TupleType

OWNER = "write_training_file"


def write_training_file(path: str | Path, model: SpecChain, data: Any) -> Path:
    """Write ``data`` as the ``.npz`` file ``train.py`` reads and return its path. ``data`` is
    ``(inputs, targets)`` (inputs as ``fit`` takes them: ``x``, ``(x, lengths)`` or a
    ``Padded``; for several inputs a tuple of those) or a ``specchain.data`` dataset. Inputs,
    lengths and targets are checked as ``fit`` checks them (batch axes, one length per example
    in ``1..T``, the same N examples everywhere)."""
    inputs, targets = unpack(OWNER, model, data)
    inputs.check_axes(model)
    y_axis = target_axis(model, targets)
    inputs.check_lengths(OWNER)
    if check_example_counts(OWNER, model, inputs, targets, y_axis) == 0:
        raise SpecError(
            f"{OWNER}: the data holds no examples (inputs of shape {inputs.shapes()}); train.py "
            "would save untrained weights; pass the training examples"
        )
    arrays: dict[str, np.ndarray] = {"y": np.asarray(targets), "y_batch_axis": np.array(y_axis)}
    if isinstance(model.in_type, TupleType):
        for i, part in enumerate(inputs.parts):
            arrays.update(_input_arrays(part, str(i)))
    else:
        arrays.update(_input_arrays(inputs.parts[0], ""))
    out = Path(path)
    with open(out, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    return out


def _input_arrays(part: Part, suffix: str) -> dict[str, np.ndarray]:
    """``x{suffix}``, ``x{suffix}_batch_axis`` and, when padded, ``lengths{suffix}``."""
    arrays = {f"x{suffix}": np.asarray(part.data), f"x{suffix}_batch_axis": np.array(part.axis)}
    if part.lengths is not None:
        arrays[f"lengths{suffix}"] = np.asarray(part.lengths, dtype=np.int64)
    return arrays
