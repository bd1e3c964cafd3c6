"""Fuzz: truncated, bit-flipped and edited model files, hostile hyper-parameters, wrong dtypes
and shapes. Every case loads or raises ``ModelFileError`` (nothing else), each within a bound
that catches hangs (not a benchmark)."""

from __future__ import annotations

import json
import os
import struct
import time
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specchain as sc
from specchain.modules import LSTM, Embedding, Linear, TimeDistributed
from specchain.saving.architecture import architecture_json
from tests.test_saving import legacy_arrays, write
from tests.test_saving_safetensors import write_model

BOUND_SECONDS = 2.0
EXAMPLES = int(os.environ.get("SPECCHAIN_FUZZ_EXAMPLES", "120"))  # raise it to explore locally
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@cache
def model() -> sc.SpecChain:
    return Embedding(10, 4) >> LSTM(4, 6, num_layers=2) >> TimeDistributed(Linear(6, 3))


@cache
def good_bytes() -> bytes:
    path = Path(__file__).parent / ".fuzz-good.safetensors"  # made once, read, removed
    model().save(path)
    raw = path.read_bytes()
    path.unlink()
    return raw


def loads_or_refuses(path: Path) -> None:
    """The property: a chain or a ``ModelFileError``, within ``BOUND_SECONDS``."""
    start = time.perf_counter()
    try:
        assert isinstance(sc.load(path), sc.SpecChain)
    except sc.ModelFileError as err:
        assert str(err).startswith(f"{path}: ") and len(str(err)) < 2000
    assert time.perf_counter() - start < BOUND_SECONDS


def split(raw: bytes) -> tuple[dict[str, Any], bytes]:
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def joined(header: Any, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


# --- bytes -----------------------------------------------------------------------------------


@FUZZ
@given(cut=st.integers(0, 10**6))
def test_truncations(tmp_path: Path, cut: int) -> None:
    raw = good_bytes()
    path = tmp_path / "m.safetensors"
    path.write_bytes(raw[: cut % len(raw)])
    loads_or_refuses(path)


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), min_size=1, max_size=8))
def test_bit_flips(tmp_path: Path, flips: list[tuple[int, int]]) -> None:
    raw = bytearray(good_bytes())
    for position, bit in flips:
        raw[position % len(raw)] ^= 1 << bit
    path = tmp_path / "m.safetensors"
    path.write_bytes(bytes(raw))
    loads_or_refuses(path)


@FUZZ
@given(length=st.integers(0, 2**64 - 1), body=st.binary(max_size=64))
def test_header_lengths_and_bodies(tmp_path: Path, length: int, body: bytes) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", length) + body)
    loads_or_refuses(path)


@FUZZ
@given(position=st.integers(0, 10**6), flips=st.integers(1, 255))
@pytest.mark.filterwarnings("ignore::specchain.saving.LegacyModelFileWarning")  # a file that loads
def test_legacy_npz_bytes(tmp_path: Path, position: int, flips: int) -> None:
    path = write(tmp_path / "m.npz", legacy_arrays(model()))
    raw = bytearray(path.read_bytes())
    raw[position % len(raw)] ^= flips
    path.write_bytes(bytes(raw))
    loads_or_refuses(path)


# --- the header ------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
HEADER_FIELDS = st.sampled_from(["dtype", "shape", "data_offsets", "extra"])


@FUZZ
@given(which=st.integers(0, 100), field=HEADER_FIELDS, value=JSON)
def test_header_entry_edits(tmp_path: Path, which: int, field: str, value: Any) -> None:
    header, data = split(good_bytes())
    names = sorted(k for k in header if k != "__metadata__")
    header[names[which % len(names)]][field] = value
    path = tmp_path / "m.safetensors"
    path.write_bytes(joined(header, data))
    loads_or_refuses(path)


@FUZZ
@given(key=st.sampled_from(["__specchain__", "format_version", "specchain_version"]), value=JSON)
def test_metadata_edits(tmp_path: Path, key: str, value: Any) -> None:
    header, data = split(good_bytes())
    header["__metadata__"][key] = value if isinstance(value, str) else json.dumps(value)
    path = tmp_path / "m.safetensors"
    path.write_bytes(joined(header, data))
    loads_or_refuses(path)


# --- the architecture: hostile hyper-parameters ------------------------------------------------

HOSTILE = (
    st.sampled_from([10**5, 10**12, 2**63, -1, 0, 1e5, 1.5, float("inf"), "8", [8], [[8]], None])
    | JSON
)


@FUZZ
@given(
    node=st.integers(0, 10),
    key=st.text(max_size=12)
    | st.sampled_from(
        [
            "num_embeddings",
            "embedding_dim",
            "input_size",
            "hidden_size",
            "num_layers",
            "proj_size",
            "bidirectional",
            "dropout",
            "padding_idx",
            "in_features",
            "out_features",
            "bias",
        ]
    ),
    value=HOSTILE,
)
def test_hostile_hyper_parameters(tmp_path: Path, node: int, key: str, value: Any) -> None:
    architecture = architecture_json(model())
    target = architecture["nodes"][node % len(architecture["nodes"])]
    config = target.get("config") or target
    if "spec" in config:  # TimeDistributed: edit the wrapped Linear
        config = config["spec"]["__spec__"]["config"]
    config[key] = value
    path = write_model(tmp_path / "m.safetensors", model(), architecture)
    loads_or_refuses(path)


@FUZZ
@given(field=st.sampled_from(["nodes", "edges", "in_type", "format", "version"]), value=JSON)
def test_architecture_field_edits(tmp_path: Path, field: str, value: Any) -> None:
    architecture = architecture_json(model())
    architecture[field] = value
    path = write_model(tmp_path / "m.safetensors", model(), architecture)
    loads_or_refuses(path)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10**6,
        '{"a":' * 10**5 + "1" + "}" * 10**5,
        json.dumps({"format": "specchain", "version": 1, "nodes": [{}] * 10**5, "edges": []}),
        '"' + "x" * (9 * 2**20) + '"',
        "\udcff not utf-8",
    ],
    ids=["brackets", "objects", "many-nodes", "long", "surrogate"],
)
def test_hostile_architecture_text(tmp_path: Path, text: str) -> None:
    state = model().state_dict()
    header = {"__specchain__": text, "format_version": "1"}
    path = tmp_path / "m.safetensors"
    raw = joined({"__metadata__": header, **_entries(state)}, _data(state))
    path.write_bytes(raw.replace(b"\\udcff", b"\xff"))
    loads_or_refuses(path)


def _entries(state: dict[str, np.ndarray]) -> dict[str, Any]:
    out, position = {}, 0
    for name in sorted(state):
        size = state[name].nbytes
        out[name] = {
            "dtype": "F32",
            "shape": list(state[name].shape),
            "data_offsets": [position, position + size],
        }
        position += size
    return out


def _data(state: dict[str, np.ndarray]) -> bytes:
    return b"".join(state[name].tobytes() for name in sorted(state))


# --- tensors: wrong dtypes and shapes ---------------------------------------------------------


@FUZZ
@given(
    which=st.integers(0, 100),
    dtype=st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.int64, np.uint8]),
    shape=st.lists(st.integers(0, 12), max_size=3),
)
def test_wrong_dtypes_and_shapes(tmp_path: Path, which: int, dtype: Any, shape: list[int]) -> None:
    state = model().state_dict()
    name = sorted(state)[which % len(state)]
    state[name] = np.zeros(shape, dtype=dtype)
    path = write_model(tmp_path / "m.safetensors", model(), tensors=state)
    loads_or_refuses(path)
