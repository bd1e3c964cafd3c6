"""An optimizer's state in a ``.safetensors`` file (no pickle): ``save_optimizer``,
``load_optimizer``, and the tensor + JSON split that checkpoints share.

An optimizer's ``state_dict()`` holds arrays (momentum buffers, Adam's moments) and plain values
(Adam's step count, the hyper-parameters). The arrays become tensors named
``"<parameter name>/<buffer>"`` (float32 or float64, the parameter's dtype); everything else goes
into the file's ``__metadata__`` as JSON under ``"__specchain_optimizer__"``: the optimizer's
class name, its ``param_groups`` and the plain per-parameter values. Loading checks the class and
the file, then calls ``load_state_dict``, which checks names and shapes and changes nothing
unless everything fits.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from specchain.saving.errors import ModelFileError, cut
from specchain.saving.safetensors_file import read_header, read_tensors, write_atomic
from specchain.types import SpecError

if TYPE_CHECKING:
    from specchain.optim import Optimizer

OPTIMIZER_KEY = "__specchain_optimizer__"
SUFFIX = ".safetensors"


class StateFileError(SpecError):
    """A training-state file (optimizer state or checkpoint) cannot be used: missing, corrupted,
    or written for another optimizer or model. The message names the file and the fix."""


def optimizer_tensors(optimizer: Optimizer) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(tensors, metadata)``: the state's arrays by ``"<parameter>/<buffer>"``, and the rest
    (class name, ``param_groups``, plain per-parameter values) as JSON-ready data."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, np.ndarray] = {}
    plain: dict[str, dict[str, Any]] = {}
    for name, buffers in state_dict["state"].items():
        plain[name] = {}
        for key, value in buffers.items():
            if isinstance(value, np.ndarray):
                tensors[f"{name}/{key}"] = value
            else:
                plain[name][key] = value
    meta = {
        "class": type(optimizer).__name__,
        "param_groups": state_dict["param_groups"],
        "plain": plain,
    }
    return tensors, meta


def restore_optimizer(
    optimizer: Optimizer, tensors: dict[str, np.ndarray], meta: Any, where: str
) -> None:
    """Load what ``optimizer_tensors`` gave into ``optimizer`` (checked; all or nothing)."""
    if not isinstance(meta, dict) or set(meta) != {"class", "param_groups", "plain"}:
        raise StateFileError(f"{where}: the optimizer metadata is not specchain's")
    mine = type(optimizer).__name__
    if meta["class"] != mine:
        raise StateFileError(
            f"{where}: holds the state of the optimizer {cut(str(meta['class']))}, not of "
            f"this {mine}; build the same optimizer class as the run that saved it"
        )
    plain = meta["plain"]
    if not isinstance(plain, dict) or not all(
        isinstance(values, dict)
        and all(v is None or type(v) in (int, float, bool) for v in values.values())
        for values in plain.values()
    ):
        raise StateFileError(f"{where}: the optimizer's per-parameter values are not numbers")
    state: dict[str, dict[str, Any]] = {name: dict(values) for name, values in plain.items()}
    for key, value in tensors.items():
        name, _, buffer = key.rpartition("/")
        state.setdefault(name, {})[buffer] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except SpecError as err:
        raise StateFileError(f"{where}: {err}") from None


def save_optimizer(optimizer: Optimizer, path: str | Path) -> Path:
    """Write ``optimizer``'s state (buffers and hyper-parameters) to ``path`` (``.safetensors``;
    atomic, folders made); returns the path. ``load_optimizer`` reads it back."""
    target = checked_path(path, "save_optimizer")
    tensors, meta = optimizer_tensors(optimizer)
    write_atomic(target, tensors, {OPTIMIZER_KEY: json.dumps(meta)})
    return target


def load_optimizer(optimizer: Optimizer, path: str | Path) -> None:
    """Restore ``optimizer`` (built on the same model, same class) from a ``save_optimizer``
    file; raises ``StateFileError`` naming the file and the problem, changing nothing."""
    target = checked_path(path, "load_optimizer")
    metadata, tensors = read_state_file(target)
    if OPTIMIZER_KEY not in metadata:
        raise StateFileError(f"{target}: not an optimizer state file (no {OPTIMIZER_KEY!r})")
    restore_optimizer(optimizer, tensors, parse_json(metadata[OPTIMIZER_KEY], target), str(target))


def checked_path(path: str | Path, owner: str) -> Path:
    if not isinstance(path, (str, Path, os.PathLike)):
        raise TypeError(f"{owner}: path must be a file path, got {type(path).__name__}")
    target = Path(path)
    if target.suffix.lower() != SUFFIX:
        raise StateFileError(
            f"{owner}: {target} must end in {SUFFIX} (the file is a safetensors file, never a "
            f"pickle); use a name like {target.with_suffix(SUFFIX).name!r}"
        )
    return target


def read_state_file(path: Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """``(metadata, tensors)`` of a ``.safetensors`` file, its header checked before any data is
    read; ``StateFileError`` naming the file otherwise."""
    if not path.is_file():
        raise StateFileError(f"{path}: no such file")
    try:
        with open(path, "rb") as handle:
            header = read_header(handle, os.fstat(handle.fileno()).st_size)
            return header.metadata, read_tensors(handle, header)
    except ModelFileError as err:
        raise StateFileError(f"{path}: {err}") from None


def parse_json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except ValueError as err:
        raise StateFileError(f"{path}: metadata is not JSON ({cut(str(err))})") from None


__all__ = ["StateFileError", "load_optimizer", "save_optimizer"]
