"""Training checkpoints: model + optimizer state + epoch + random state + History, in one
``.safetensors`` file (no pickle), so a stopped run resumes exactly where it was.

The file holds the tensors ``"model/<state_dict key>"`` and ``"optimizer/<parameter>/<buffer>"``;
its ``__metadata__`` holds the model's architecture JSON (``"__specchain__"``, as in a model file)
and, under ``"__specchain_checkpoint__"``, a JSON object with the format version, the epochs
done, the random generator's state (``bit_generator.state``), the History and the optimizer's
hyper-parameters and plain state. Writing is atomic (``specchain.saving``), so a run killed while
saving leaves the previous checkpoint whole.

``fit(..., checkpoint=folder)`` writes ``folder/checkpoint.safetensors`` after every epoch and,
when that file already exists, resumes from it (like Keras' ``BackupAndRestore``). By hand:
``save_checkpoint(path, model, optimizer, state)`` and ``state = load_checkpoint(path, model,
optimizer)``, which fills the model and the optimizer in place (build them as the saving run did).
In float64 a resumed run gives bit for bit the parameters and History (times aside) of the
run that was never stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from specchain.chain import SpecChain
from specchain.history import History
from specchain.optim import Optimizer
from specchain.optim_state import (
    StateFileError,
    checked_path,
    optimizer_tensors,
    parse_json,
    read_state_file,
    restore_optimizer,
)
from specchain.saving import ARCHITECTURE_KEY
from specchain.saving.architecture import architecture_json
from specchain.saving.safetensors_file import write_atomic
from specchain.types import SpecError

CHECKPOINT_KEY = "__specchain_checkpoint__"
CHECKPOINT_FORMAT = 1
FILE_NAME = "checkpoint.safetensors"
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")  # numpy's, by name
ARRAY_DTYPES = ("uint32", "uint64")  # the dtypes of those generators' state arrays


@attrs.define
class TrainingState:
    """Where a run is: ``epoch`` epochs done, their ``history``, the generator ``rng`` that
    shuffles the batches and draws dropout masks (its state is saved, so the next epoch draws
    exactly what it would have drawn), and whether a callback ``stopped`` the run (a resumed
    run that was stopped early trains no further)."""

    epoch: int
    history: History
    rng: np.random.Generator
    stopped: bool = False


def checkpoint_file(folder: str | Path) -> Path:
    """The checkpoint of ``fit(..., checkpoint=folder)``: ``folder/checkpoint.safetensors``."""
    return Path(folder) / FILE_NAME


def save_checkpoint(
    path: str | Path, model: SpecChain, optimizer: Optimizer, state: TrainingState
) -> Path:
    """Write ``model``, ``optimizer`` and ``state`` to ``path`` (``.safetensors``; atomic,
    folders made); returns the path."""
    target = checked_path(path, "save_checkpoint")
    opt_tensors, opt_meta = optimizer_tensors(optimizer)
    tensors = {f"model/{key}": value for key, value in model.state_dict().items()}
    tensors.update({f"optimizer/{key}": value for key, value in opt_tensors.items()})
    record = {
        "format": CHECKPOINT_FORMAT,
        "epoch": state.epoch,
        "stopped": state.stopped,
        "rng": _encode(state.rng.bit_generator.state),
        "history": state.history.to_json(),
        "optimizer": opt_meta,
    }
    metadata = {
        ARCHITECTURE_KEY: json.dumps(architecture_json(model)),
        CHECKPOINT_KEY: json.dumps(record),
    }
    write_atomic(target, tensors, metadata)
    return target


def load_checkpoint(path: str | Path, model: SpecChain, optimizer: Optimizer) -> TrainingState:
    """Fill ``model`` and ``optimizer`` (built as in the run that saved) from ``path`` and return
    the ``TrainingState`` to continue from. Everything is checked first (the architecture, the
    tensors, the optimizer class); on any problem ``StateFileError`` names the file and nothing
    changes."""
    target = checked_path(path, "load_checkpoint")
    metadata, tensors = read_state_file(target)
    if CHECKPOINT_KEY not in metadata or ARCHITECTURE_KEY not in metadata:
        raise StateFileError(f"{target}: not a specchain checkpoint (no {CHECKPOINT_KEY!r})")
    record = parse_json(metadata[CHECKPOINT_KEY], target)
    found = record.get("format") if isinstance(record, dict) else None
    if found != CHECKPOINT_FORMAT:
        raise StateFileError(
            f"{target}: checkpoint format {found!r} is not {CHECKPOINT_FORMAT}: written by "
            "another specchain version"
        )
    if parse_json(metadata[ARCHITECTURE_KEY], target) != architecture_json(model):
        raise StateFileError(
            f"{target}: was saved from another architecture than this model's; build the model "
            "exactly as the run that saved it (same layers, sizes and names)"
        )
    try:
        state = TrainingState(
            _epoch(record.get("epoch")),
            History.from_json(record.get("history")),
            _generator(record.get("rng")),
            record.get("stopped") is True,
        )
    except (SpecError, TypeError, ValueError, KeyError) as err:
        raise StateFileError(f"{target}: invalid training state ({err})") from None
    model_part = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    opt_part = {k[len("optimizer/") :]: v for k, v in tensors.items() if k.startswith("optimizer/")}
    before = model.state_dict()
    try:
        model.load_state_dict(model_part)
    except SpecError as err:
        raise StateFileError(f"{target}: {err}") from None
    try:
        restore_optimizer(optimizer, opt_part, record.get("optimizer"), str(target))
    except BaseException:
        model.load_state_dict(before)
        raise
    return state


def _epoch(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise SpecError(f"epoch {value!r} is not an int >= 0")
    return value


def _encode(value: Any) -> Any:
    """A generator state as JSON-ready data (its arrays as ``{"array": [...], "dtype": ...}``)."""
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"array", "dtype"}:
        if value["dtype"] not in ARRAY_DTYPES:
            raise SpecError(f"generator state array of dtype {value['dtype']!r}")
        return np.asarray(value["array"], dtype=value["dtype"])
    if isinstance(value, dict):
        return {key: _decode(item) for key, item in value.items()}
    return value


def _generator(data: Any) -> np.random.Generator:
    """A generator in the saved state; only numpy's own bit generators, named in the file."""
    if not isinstance(data, dict) or data.get("bit_generator") not in BIT_GENERATORS:
        raise SpecError(f"the generator state must name one of {list(BIT_GENERATORS)}")
    bit_generator = getattr(np.random, data["bit_generator"])()
    bit_generator.state = _decode(data)
    return np.random.Generator(bit_generator)


__all__ = [
    "StateFileError",
    "TrainingState",
    "checkpoint_file",
    "load_checkpoint",
    "save_checkpoint",
]
