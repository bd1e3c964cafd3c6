"""``load_state_dict``: fill a chain's parameters from PyTorch-named arrays, strictly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from specchain.params import FLOAT_DTYPES
from specchain.types import SpecError

if TYPE_CHECKING:
    from specchain.chain import SpecChain


class StateDictError(SpecError):
    """A state_dict does not fit the model: missing or unexpected keys, wrong shapes or dtypes."""


def load_state_dict(chain: SpecChain, state_dict: dict[str, Any], strict: bool = True) -> None:
    """Copy arrays into the chain's parameters. Every problem is reported at once and nothing is
    changed unless everything fits. ``strict=False`` tolerates missing and unexpected keys only.
    """
    owners = chain.parameter_owners()
    params = chain.named_parameters()
    missing = [k for k in owners if k not in state_dict]
    unexpected = [k for k in state_dict if k not in owners]
    problems = []
    if strict and missing:
        problems.append(f"missing keys: {missing}")
    if strict and unexpected:
        problems.append(f"unexpected keys: {unexpected}")
    arrays = {}
    for key in owners:
        if key not in state_dict:
            continue
        value = np.asarray(state_dict[key])
        expected = params[key]
        if value.shape != expected.shape:
            problems.append(f"{key}: shape {list(value.shape)} != expected {list(expected.shape)}")
        elif value.dtype != expected.dtype:
            fix = f"cast the array with .astype(np.{expected.dtype})"
            if value.dtype in FLOAT_DTYPES:  # model.to only takes float32 / float64
                fix += f" or the model with model.to(np.{value.dtype})"
            problems.append(f"{key}: dtype {value.dtype} != the model's {expected.dtype}; {fix}")
        else:
            arrays[key] = value
    if problems:
        raise StateDictError("load_state_dict failed:\n  " + "\n  ".join(problems))
    for key, value in arrays.items():
        node, local = owners[key]
        np.copyto(chain.spec(node).params[local], value)  # in place, like torch
