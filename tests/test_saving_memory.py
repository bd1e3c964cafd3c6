"""Files that declare huge tensors or layers, tiny on disk, are refused without allocating: peak
RSS growth under 100 MB, measured in a fresh child process (``resource.getrusage``)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from specchain.modules import LSTM, Embedding, Linear
from specchain.saving.architecture import architecture_json
from tests.test_saving_safetensors import raw_file, write_model
from tests.user_code import run_python

resource = pytest.importorskip("resource")

CHILD = """
import json, resource, sys
import specchain as sc

def peak_mb():
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / scale / 2**20

sc.load(sys.argv[1])  # warm up: every import and code path of a good load
before = peak_mb()
results = {}
for path in sys.argv[2:]:
    try:
        sc.load(path)
        results[path] = "loaded"
    except sc.ModelFileError as err:
        results[path] = "refused: " + str(err)[:300]
print(json.dumps({"growth_mb": peak_mb() - before, "results": results}))
"""


def huge_config(tmp_path: Path, name: str, spec: object, **config: int) -> Path:
    model = spec.as_chain()  # type: ignore[attr-defined]
    architecture = architecture_json(model)
    architecture["nodes"][0]["config"].update(config)
    return write_model(tmp_path / f"{name}.safetensors", model, architecture)


def huge_npy_member(tmp_path: Path) -> Path:
    """A legacy ``.npz`` whose weight member's header claims 10**12 floats."""
    model = Linear(4, 3).as_chain()
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)}
    )
    path = tmp_path / "huge_member.npz"
    with zipfile.ZipFile(path, "w") as archive:
        text = io.BytesIO()
        np.save(text, np.array(json.dumps(architecture_json(model))))
        archive.writestr("__specchain__.npy", text.getvalue())
        archive.writestr("linear.weight.npy", buffer.getvalue() + b"\0" * 64)
    return path


def test_huge_declarations_are_refused_in_little_memory(tmp_path: Path) -> None:
    good = tmp_path / "good.safetensors"
    (LSTM(8, 8) >> Linear(8, 2)).save(good)
    hostile = [
        huge_config(tmp_path, "wide_lstm", LSTM(8, 8), hidden_size=8000),
        huge_config(tmp_path, "deep_lstm", LSTM(8, 8), num_layers=10**5),
        huge_config(tmp_path, "embedding", Embedding(10, 8), num_embeddings=10**12),
        huge_config(tmp_path, "big_embedding", Embedding(10, 8), num_embeddings=4000),
        raw_file(
            tmp_path / "huge_tensor.safetensors",
            {"w": {"dtype": "F32", "shape": [2**38], "data_offsets": [0, 2**40]}},
            b"\0" * 64,
        ),
        huge_npy_member(tmp_path),
    ]
    (tmp_path / "huge_header.safetensors").write_bytes((2**40).to_bytes(8, "little") + b"{}")
    hostile.append(tmp_path / "huge_header.safetensors")
    done = run_python("-c", CHILD, str(good), *map(str, hostile), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for path in hostile:
        assert report["results"][str(path)].startswith("refused: "), report["results"]
    assert report["growth_mb"] < 100, report
