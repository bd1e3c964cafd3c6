"""Copied verbatim into an export as ``test_model.py``: a pytest file that checks that
``model.py`` with ``model.safetensors`` reproduces the outputs specchain recorded in
``reference.npz``, as loaded (eager) and compiled by ``torch.jit.script``.

It imports only numpy, pytest and torch (``model.py`` itself needs torch and safetensors),
never specchain.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

HERE = Path(__file__).parent


def _exported_module() -> Any:
    spec = importlib.util.spec_from_file_location("exported_model", HERE / "model.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {HERE / 'model.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ordered(data: Any, prefix: str) -> list[np.ndarray]:
    keys = sorted(
        (k for k in data.files if k.startswith(prefix)), key=lambda k: int(k[len(prefix) :])
    )
    return [data[k] for k in keys]


def _build(structure: Any, leaves: list[Any]) -> Any:
    if isinstance(structure, list):
        return tuple(_build(item, leaves) for item in structure)
    return leaves[structure]


def _flat(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _flat(item)]
    return [value]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("mode", ["eager", "scripted"])
def test_reproduces_reference_outputs(mode: str) -> None:
    model = _exported_module().load(HERE / "model.safetensors")
    if mode == "scripted":
        model = torch.jit.script(model)
    with np.load(HERE / "reference.npz", allow_pickle=False) as data:
        structure = json.loads(str(data["structure"]))
        inputs = [torch.from_numpy(a) for a in _ordered(data, "input_")]
        expected = _ordered(data, "output_")
    with torch.no_grad():
        got = _flat(model(*_build(structure["inputs"], inputs)))
    assert len(got) == len(expected)
    for actual, wanted in zip(got, expected):
        tight = wanted.dtype == np.float64
        np.testing.assert_allclose(
            actual.numpy(), wanted, rtol=1e-7 if tight else 1e-4, atol=1e-9 if tight else 1e-5
        )
