"""The training data file that an exported ``train.py`` reads (``.npz``, no pickle).

Arrays: ``x`` (the inputs, as the model takes them), ``y`` (the targets), optional ``lengths``
(int64 ``[N]``), and ``x_batch_axis``/``y_batch_axis``: the axes that hold the N examples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from specchain.batches import target_axis, unpack
from specchain.chain import SpecChain
from specchain.types import SpecError, TupleType


def write_training_file(path: str | Path, model: SpecChain, data: Any) -> Path:
    """Write ``data`` (``(inputs, targets)``, inputs ``x`` or ``(x, lengths)``, or a
    ``specchain.data`` dataset) as the ``.npz`` file ``train.py`` reads: ``x``, ``y``, optional
    ``lengths`` and ``x_batch_axis``/``y_batch_axis`` (where the N examples lie, found as ``fit``
    finds them)."""
    if isinstance(model.in_type, TupleType):
        raise SpecError(
            "write_training_file: train.py trains models with one input (a sequence, with or "
            f"without lengths); this model takes {len(model.in_type.items)} {model.in_type}: "
            "train it in one process with fit(..., engine='torch'), which takes a tuple of "
            "input arrays"
        )
    inputs, targets = unpack("write_training_file", model, data)
    inputs.check_axes(model)
    y_axis = target_axis(model, targets)
    (part,) = inputs.parts
    x_axis = part.axis
    arrays: dict[str, np.ndarray] = {
        "x": np.asarray(part.data),
        "y": np.asarray(targets),
        "x_batch_axis": np.array(x_axis),
        "y_batch_axis": np.array(y_axis),
    }
    if part.lengths is not None:
        arrays["lengths"] = np.asarray(part.lengths, dtype=np.int64)
    out = Path(path)
    with open(out, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    return out
