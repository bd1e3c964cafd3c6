"""``export``: the files of an export, and the flat reference file's helpers.

``model.py`` (from ``to_source``), ``model.safetensors`` (the weights under the module's
``state_dict`` names; ``model.py`` reads it with ``safetensors.torch.load_file``, no numpy, no
pickle), ``reference.npz`` (inputs and outputs recorded now, with their tuple structure) and
``test_model.py`` (a copy of ``reference_check.py``: a pytest file that checks them with torch
and numpy, eager and scripted).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from specchain import padded
from specchain.chain import SpecChain
from specchain.examples import example_input
from specchain.exporters.pytorch import arguments
from specchain.exporters.pytorch.emitters import sibling_text
from specchain.exporters.pytorch.filetext import WEIGHTS_FILE
from specchain.exporters.pytorch.naming import assign_names, torch_state
from specchain.exporters.pytorch.source import to_source
from specchain.tree import leaves, structure


def export(
    model: SpecChain,
    out_dir: str | Path,
    class_name: str = "Model",
    example: Any = None,
    source: str | None = None,
) -> Path:
    """Write ``model.py``, ``model.safetensors``, ``reference.npz`` and ``test_model.py`` into
    ``out_dir``; returns the path of ``model.py``. ``example`` is the reference input (default:
    a seeded random input of the model's type, with lengths for an ``Input(..., lengths=True)``);
    ``source`` names the model in ``model.py``'s docstring (e.g. ``"zoo:seq2seq"``)."""
    out = Path(out_dir)
    names = assign_names(model, class_name)
    text = to_source(model, class_name, source)  # every refusal comes before the folder is made
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.py").write_text(text, encoding="utf-8")  # Python source's encoding
    weights = {key: np.ascontiguousarray(v) for key, v in torch_state(model, names).items()}
    save_file(weights, out / WEIGHTS_FILE, metadata={"format": "pt"})
    if example is None:
        example = arguments.with_example_lengths(names, model.in_type, example_input(model, rng=0))
    outputs = padded.strip(model(example))  # lengths ride along in the spec, not in the module
    call = arguments.call_arguments(names, *arguments.split_lengths(names, example))
    reference = _flatten_named("input", call) | _flatten_named("output", (outputs,))
    reference["structure"] = np.array(
        json.dumps({"inputs": structure(call), "outputs": structure((outputs,))})
    )
    with open(out / "reference.npz", "wb") as handle:
        np.savez(handle, **reference)  # type: ignore[arg-type]
    (out / "test_model.py").write_text(sibling_text("reference_check.py"), encoding="utf-8")
    return out / "model.py"


def _flatten_named(prefix: str, value: Any) -> dict[str, np.ndarray]:
    return {f"{prefix}_{i}": leaf for i, leaf in enumerate(leaves(value))}
