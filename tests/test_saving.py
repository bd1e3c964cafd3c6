"""save / load: round trips, and every kind of bad ``.npz`` (the format before 0.2, still read)
refused with ModelFileError. ``.safetensors`` files: ``test_saving_safetensors.py``."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import safe_open

import specchain as sc
from specchain.modules import Add, Concat, LastStep, Linear, Reverse, Select, Tanh, TimeDistributed
from specchain.saving import ARCHITECTURE_KEY
from specchain.saving.architecture import architecture_json


def round_trip(model: sc.SpecChain, tmp_path: Path) -> sc.SpecChain:
    path = tmp_path / "model.safetensors"
    model.save(path)
    return sc.load(path)


def assert_same_model(a: sc.SpecChain, b: sc.SpecChain, x: Any) -> None:
    assert b.nodes == a.nodes
    assert b.in_type == a.in_type and b.out_type == a.out_type
    assert [b.spec(n).kind for n in b.nodes] == [a.spec(n).kind for n in a.nodes]
    assert list(b.named_parameters()) == list(a.named_parameters())
    for key, value in a.named_parameters().items():
        assert b.named_parameters()[key].dtype == value.dtype
        np.testing.assert_array_equal(b.named_parameters()[key], value)
    ya, yb = a(x), b(x)
    if isinstance(ya, tuple):
        for u, v in zip(ya, yb, strict=True):
            np.testing.assert_array_equal(u, v)
    else:
        np.testing.assert_array_equal(ya, yb)


# --- round trips ------------------------------------------------------------------------------


def test_round_trip_bidirectional(tmp_path: Path, rng: np.random.Generator) -> None:
    m = sc.branch(Linear(8, 16), Reverse() >> Linear(8, 16) >> Reverse()) >> Concat()
    m = m >> Linear(32, 4)
    loaded = round_trip(m, tmp_path)
    assert_same_model(m, loaded, rng.standard_normal((5, 3, 8)).astype(np.float32))
    assert loaded.dtype == np.float32
    loaded.lint()


def test_round_trip_keeps_float64(tmp_path: Path, rng: np.random.Generator) -> None:
    m = (Reverse() >> Linear(8, 4) >> Tanh() >> LastStep() >> Linear(4, 2)).to(np.float64)
    loaded = round_trip(m, tmp_path)
    assert loaded.dtype == np.float64
    assert_same_model(m, loaded, rng.standard_normal((5, 3, 8)))


def test_round_trip_keeps_sharing(tmp_path: Path, rng: np.random.Generator) -> None:
    lin = Linear(6, 6, name="lin")
    m = Reverse() >> lin >> Tanh() >> lin >> Linear(6, 2, bias=False)
    loaded = round_trip(m, tmp_path)
    assert_same_model(m, loaded, rng.standard_normal((4, 2, 6)).astype(np.float32))
    assert loaded.nodes == ["reverse", "lin", "tanh", "lin_1", "linear"]
    assert loaded.spec("lin") is loaded.spec("lin_1")
    assert loaded.spec("lin").name == "lin"
    assert loaded.spec("linear").bias is False
    assert loaded.num_params == m.num_params == 42 + 12
    loaded.named_parameters()["lin.weight"][0, 0] = 123.0  # one array behind both nodes
    assert loaded.spec("lin_1").params["weight"][0, 0] == 123.0


def test_round_trip_time_distributed(tmp_path: Path, rng: np.random.Generator) -> None:
    inner = Linear(8, 3)
    m = Reverse() >> TimeDistributed(inner) >> Tanh()
    loaded = round_trip(m, tmp_path)
    assert_same_model(m, loaded, rng.standard_normal((4, 2, 8)).astype(np.float32))
    wrapper = loaded.spec("time_distributed")
    assert isinstance(wrapper, TimeDistributed)
    assert isinstance(wrapper.spec, Linear) and wrapper.spec.out_features == 3
    assert wrapper.params is wrapper.spec.params  # still shares the wrapped spec's arrays


def test_round_trip_tuple_output_and_select(tmp_path: Path, rng: np.random.Generator) -> None:
    m = sc.branch(Reverse() >> Linear(8, 2), Reverse() >> Linear(8, 3))
    loaded = round_trip(m, tmp_path)
    assert_same_model(m, loaded, rng.standard_normal((3, 2, 8)).astype(np.float32))
    m2 = sc.branch(Linear(4, 4), Tanh()) >> Add() >> sc.branch(Tanh(), Linear(4, 1)) >> Select(1)
    assert_same_model(m2, round_trip(m2, tmp_path), np.ones((2, 4), dtype=np.float32))


def test_loaded_model_trains_like_the_original(tmp_path: Path, rng: np.random.Generator) -> None:
    m = (Reverse() >> Linear(8, 4) >> Tanh()).to(np.float64)
    loaded = round_trip(m, tmp_path)
    x = rng.standard_normal((3, 2, 8))
    dy = rng.standard_normal((3, 2, 4))
    _, tape_a = m.forward(x)
    _, tape_b = loaded.forward(x)
    dx_a, grads_a = m.backward(tape_a, dy)
    dx_b, grads_b = loaded.backward(tape_b, dy)
    np.testing.assert_array_equal(dx_a, dx_b)
    assert list(grads_a) == list(grads_b)
    for key in grads_a:
        np.testing.assert_array_equal(grads_a[key], grads_b[key])


def test_file_holds_architecture_and_state_dict_names(tmp_path: Path) -> None:
    m = Reverse() >> Linear(8, 4)
    path = tmp_path / "m.safetensors"
    m.save(str(path))  # str paths work too
    with safe_open(path, framework="np") as data:
        assert sorted(data.keys()) == ["linear.bias", "linear.weight"]
        metadata = data.metadata()
    assert sorted(metadata) == [ARCHITECTURE_KEY, "format_version", "specchain_version"]
    assert metadata["format_version"] == "1" and metadata["specchain_version"] == sc.__version__
    architecture = json.loads(metadata[ARCHITECTURE_KEY])
    assert architecture["format"] == "specchain"
    assert [n["name"] for n in architecture["nodes"]] == ["reverse", "linear"]


# --- .npz files written before 0.2 still load, converted by saving again ----------------------


def legacy_arrays(model: sc.SpecChain) -> dict[str, np.ndarray]:
    """What ``save`` wrote into an ``.npz`` before 0.2."""
    text = np.array(json.dumps(architecture_json(model)))
    return {ARCHITECTURE_KEY: text, **model.state_dict()}


def test_an_old_npz_loads_and_converts(tmp_path: Path, rng: np.random.Generator) -> None:
    m = Reverse() >> Linear(8, 4) >> Tanh()
    old = write(tmp_path / "old.npz", legacy_arrays(m))
    advice = r"read a \.npz model file of specchain before 0\.2; convert it once with sc\.load\("
    with pytest.warns(FutureWarning, match=advice):
        loaded = sc.load(old)
    x = rng.standard_normal((3, 2, 8)).astype(np.float32)
    assert_same_model(m, loaded, x)
    loaded.save(tmp_path / "new.safetensors")
    assert_same_model(m, sc.load(tmp_path / "new.safetensors"), x)


# --- bad files --------------------------------------------------------------------------------


def saved_arrays(tmp_path: Path) -> dict[str, np.ndarray]:
    return legacy_arrays(Linear(4, 3) >> Tanh())


def architecture_of(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    architecture: dict[str, Any] = json.loads(str(arrays[ARCHITECTURE_KEY]))
    return architecture


def write(path: Path, arrays: dict[str, Any], allow_pickle: bool = False) -> Path:
    with open(path, "wb") as handle:
        np.savez(handle, allow_pickle=allow_pickle, **arrays)
    return path


def refused(path: Path, pattern: str) -> str:
    with pytest.raises(sc.ModelFileError, match=pattern) as info:
        sc.load(path)
    assert str(info.value).startswith(str(path))
    return str(info.value)


def test_model_file_error_is_a_spec_error() -> None:
    assert issubclass(sc.ModelFileError, sc.SpecError)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_file(tmp_path: Path, keep: float) -> None:
    path = write(tmp_path / "m.npz", saved_arrays(tmp_path))
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    refused(path, re.escape(f"{path}: not a readable .npz file"))


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    refused(path, re.escape(f"{path}: not a readable .npz file"))


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    refused(path, re.escape(f"{path}: not a readable .npz file"))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.npz"
    refused(path, "^" + re.escape(f"{path}: no such file") + "$")


def test_a_directory_is_not_a_model(tmp_path: Path) -> None:
    folder = tmp_path / "m.npz"
    folder.mkdir()
    refused(folder, "^" + re.escape(f"{folder}: is a directory, not a model file") + "$")


def test_file_without_the_architecture_key(tmp_path: Path) -> None:
    arrays = saved_arrays(tmp_path)
    del arrays[ARCHITECTURE_KEY]
    path = write(tmp_path / "weights.npz", arrays)
    msg = f"{path}: key '__specchain__' is missing: not a specchain model file"
    refused(path, "^" + re.escape(msg) + "$")


def test_unknown_spec_kind(tmp_path: Path) -> None:
    arrays = saved_arrays(tmp_path)
    architecture = architecture_of(arrays)
    architecture["nodes"][0]["kind"] = "Bogus"
    arrays[ARCHITECTURE_KEY] = np.array(json.dumps(architecture))
    path = write(tmp_path / "kind.npz", arrays)
    message = refused(path, re.escape(f"{path}: key '__specchain__': unknown spec kind 'Bogus'"))
    assert "known kinds:" in message and "'Linear'" in message


def test_parameter_with_a_wrong_shape(tmp_path: Path) -> None:
    arrays = saved_arrays(tmp_path)
    arrays["linear.weight"] = np.zeros((4, 4), dtype=np.float32)
    path = write(tmp_path / "shape.npz", arrays)
    refused(path, re.escape(f"{path}: ") + r"(.|\n)*" + re.escape("linear.weight: shape [4, 4]"))


def test_missing_parameter(tmp_path: Path) -> None:
    arrays = saved_arrays(tmp_path)
    del arrays["linear.bias"]
    path = write(tmp_path / "missing.npz", arrays)
    refused(path, re.escape("missing keys: ['linear.bias']"))


def test_integer_parameters(tmp_path: Path) -> None:
    arrays = saved_arrays(tmp_path)
    arrays["linear.weight"] = arrays["linear.weight"].astype(np.int64)
    arrays["linear.bias"] = arrays["linear.bias"].astype(np.int64)
    path = write(tmp_path / "ints.npz", arrays)
    refused(path, re.escape("linear.weight: dtype int64 != the model's float32"))


def test_parameters_of_mixed_dtypes(tmp_path: Path) -> None:
    arrays = saved_arrays(tmp_path)
    arrays["linear.bias"] = arrays["linear.bias"].astype(np.float64)
    path = write(tmp_path / "mixed.npz", arrays)
    refused(path, re.escape("linear.bias: dtype float64 != the model's float32"))


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda a: "not json", "invalid architecture"),
        (lambda a: [], "expected a JSON object, got list"),
        (lambda a: None, "expected a JSON object, got NoneType"),
        (lambda a: {**a, "version": 99}, "version 99 is not specchain version 1"),
        (lambda a: {**a, "format": "keras"}, "format 'keras'"),
        (lambda a: {k: v for k, v in a.items() if k != "nodes"}, "invalid architecture"),
        (lambda a: {**a, "edges": [*a["edges"], ["tanh", "linear", None, []]]}, "invalid"),
        (lambda a: {**a, "edges": [["<input>", "ghost", None, []]]}, "unknown node 'ghost'"),
        (
            lambda a: {**a, "nodes": [{**a["nodes"][0], "name": "<input>"}, a["nodes"][1]]},
            "node name '<input>' is reserved, repeated or no string",
        ),
        (
            lambda a: {**a, "nodes": [{**a["nodes"][0], "name": "a\ud800"}, a["nodes"][1]]},
            "the node name 'a\\ud800' has a lone surrogate '\\ud800' at index 1",
        ),
        (
            lambda a: {**a, "nodes": [{**a["nodes"][0], "config": {"in_features": -1}}]},
            "invalid architecture",
        ),
        (lambda a: {**a, "nodes": [{**a["nodes"][0], "config": [1]}]}, "invalid architecture"),
        (lambda a: {**a, "in_type": {"dims": [-1], "dtype": "float"}}, "invalid architecture"),
    ],
)
def test_malformed_architecture(tmp_path: Path, edit: Any, pattern: str) -> None:
    arrays = saved_arrays(tmp_path)
    edited = edit(architecture_of(arrays))
    arrays[ARCHITECTURE_KEY] = np.array(edited if isinstance(edited, str) else json.dumps(edited))
    path = write(tmp_path / "arch.npz", arrays)
    refused(path, re.escape(f"{path}: key '__specchain__': ") + ".*" + re.escape(pattern))


def test_architecture_that_is_not_text(tmp_path: Path) -> None:
    arrays = saved_arrays(tmp_path)
    arrays[ARCHITECTURE_KEY] = np.zeros(3)
    path = write(tmp_path / "arch.npz", arrays)
    refused(path, re.escape(f"{path}: key '__specchain__': invalid architecture"))


# --- pickles are refused without side effects --------------------------------------------------


class _Sentinel:
    """Unpickling this creates a file: proof that a loader executed code from the file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.path, "w"))


@pytest.mark.parametrize("key", ["linear.weight", ARCHITECTURE_KEY, "extra"])
def test_pickled_object_array_is_refused_without_side_effect(tmp_path: Path, key: str) -> None:
    sentinel = tmp_path / "pwned"
    arrays: dict[str, Any] = dict(saved_arrays(tmp_path))
    arrays[key] = np.array([_Sentinel(str(sentinel))], dtype=object)
    path = write(tmp_path / "evil.npz", arrays, allow_pickle=True)
    # the file really is dangerous: unpickling it creates the sentinel
    with np.load(path, allow_pickle=True) as data:
        data[key]
    assert sentinel.exists()
    sentinel.unlink()

    refused(path, re.escape(f"{path}: key {key!r}: refused"))
    assert not sentinel.exists()


def test_plain_pickle_file_is_refused_without_side_effect(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(_Sentinel(str(sentinel))))
    refused(path, re.escape(f"{path}: not a readable .npz file"))
    assert not sentinel.exists()
