"""``.safetensors`` model files: suffix rules, metadata, the checks before allocating, atomic
writes, FIFOs, and the init stream left alone. Helpers here build hostile files for the fuzz,
memory and crash tests beside this file."""

from __future__ import annotations

import json
import os
import re
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

import specchain as sc
from specchain.modules import LSTM, Embedding, Linear, Tanh
from specchain.saving import ARCHITECTURE_KEY, check_model_path, safetensors_file
from specchain.saving.architecture import architecture_json


def metadata_of(model: sc.SpecChain, architecture: Any = None) -> dict[str, str]:
    text = (
        architecture
        if isinstance(architecture, str)
        else json.dumps(architecture_json(model) if architecture is None else architecture)
    )
    return {ARCHITECTURE_KEY: text, "format_version": "1", "specchain_version": sc.__version__}


def write_model(
    path: Path,
    model: sc.SpecChain,
    architecture: Any = None,
    tensors: dict[str, np.ndarray] | None = None,
) -> Path:
    """A ``.safetensors`` file holding ``model``'s tensors (or ``tensors``) and ``architecture``
    (the model's own by default; a dict, or text written as it is)."""
    state = model.state_dict() if tensors is None else tensors
    save_file(state, path, metadata=metadata_of(model, architecture))
    return path


def raw_file(path: Path, header: dict[str, Any], data: bytes = b"") -> Path:
    """A file with a hand-written header: what ``safetensors`` itself would never write."""
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def refused(path: Path, pattern: str, **kwargs: Any) -> str:
    with pytest.raises(sc.ModelFileError, match=pattern) as info:
        sc.load(path, **kwargs)
    assert str(info.value).startswith(f"{path}: ")
    return str(info.value)


# --- suffixes and folders ---------------------------------------------------------------------


def test_save_refuses_npz_with_the_fix(tmp_path: Path) -> None:
    message = (
        f"{tmp_path / 'm.npz'}: models are saved as .safetensors files now (.npz files can still "
        "be loaded); save to 'm.safetensors' instead"
    )
    with pytest.raises(sc.ModelFileError, match="^" + re.escape(message) + "$"):
        Linear(2, 2).as_chain().save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("name", ["m.pt", "m", "m.safetensors.tmp"])
def test_other_suffixes_are_refused_by_save_and_load(tmp_path: Path, name: str) -> None:
    with pytest.raises(sc.ModelFileError, match=r"a model file name ends in \.safetensors, got"):
        Linear(2, 2).as_chain().save(tmp_path / name)
    with pytest.raises(sc.ModelFileError, match=r"ends in \.safetensors \(or \.npz to read"):
        sc.load(tmp_path / name)
    assert check_model_path("a/B.SafeTensors", for_writing=True) == Path("a/B.SafeTensors")


def test_save_makes_missing_folders_and_keeps_permissions(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "m.safetensors"
    model = Linear(3, 2) >> Tanh()
    model.save(path)
    assert sc.load(path).state_dict().keys() == model.state_dict().keys()
    os.chmod(path, 0o640)
    model.save(path)
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.safetensors"]


# --- what loading does not do -----------------------------------------------------------------


def test_loading_does_not_move_the_init_stream(tmp_path: Path) -> None:
    path = (LSTM(4, 8) >> Linear(8, 2)).save(
        tmp_path / "m.safetensors"
    ) or tmp_path / "m.safetensors"
    sc.seed(5)
    expected = Linear(4, 4).params["weight"]
    sc.seed(5)
    sc.load(path)
    np.testing.assert_array_equal(Linear(4, 4).params["weight"], expected)


def test_max_params_is_a_budget(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    (Linear(8, 8) >> Linear(8, 8)).save(path)
    assert sc.load(path, max_params=144).num_params == 144
    message = refused(path, "the layers declare more than 100 parameter elements", max_params=100)
    assert message.endswith("pass sc.load(path, max_params=...) to open a bigger model you trust")
    with pytest.raises(TypeError, match=r"^load\.max_params must be a positive int, got 1\.5"):
        sc.load(path, max_params=1.5)  # type: ignore[arg-type]


def test_hyper_parameters_beyond_the_file_are_refused_before_building(tmp_path: Path) -> None:
    model = Embedding(10, 4).as_chain()
    architecture = architecture_json(model)
    architecture["nodes"][0]["config"]["num_embeddings"] = 10**12
    path = write_model(tmp_path / "m.safetensors", model, architecture)
    refused(path, r"hyper-parameter 'num_embeddings' = 1000000000000 is larger than the file's")
    architecture["nodes"][0]["config"]["num_embeddings"] = 4000  # small, but beyond the data
    write_model(path, model, architecture)
    refused(path, r"more than 40 parameter elements .*; the file holds only 160 bytes")


# --- bad headers and tensors ------------------------------------------------------------------


def good(tmp_path: Path) -> tuple[sc.SpecChain, Path]:
    model = Linear(4, 3) >> Tanh()
    path = tmp_path / "good.safetensors"
    model.save(path)
    return model, path


def test_header_longer_than_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    refused(path, r"header length 1099511627776 does not fit: the file has 2 bytes after it")


@pytest.mark.parametrize(
    ("entry", "pattern"),
    [
        ({"dtype": "I64", "shape": [3], "data_offsets": [0, 24]}, "dtype 'I64' is not a model's"),
        ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}, "shape \\[-1\\] is not a list"),
        ({"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}, "is not a list of at most"),
        ({"dtype": "F32", "shape": [2**40], "data_offsets": [0, 8]}, "needs 4398046511104"),
        ({"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}, "is not \\[begin, end\\]"),
        ({"dtype": "F32", "shape": [2]}, "expected dtype, shape and data_offsets"),
        ({"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}, "starts at byte 4, expected 0"),
    ],
)
def test_bad_header_entries(tmp_path: Path, entry: dict[str, Any], pattern: str) -> None:
    path = raw_file(tmp_path / "m.safetensors", {"linear.weight": entry}, b"\0" * 8)
    refused(path, pattern)


def test_data_longer_than_the_tensors(tmp_path: Path) -> None:
    _, path = good(tmp_path)
    path.write_bytes(path.read_bytes() + b"\0" * 8)
    refused(path, "the tensors hold 60 bytes but the file has 68 bytes of data")


def test_metadata_must_name_the_architecture_and_version(tmp_path: Path) -> None:
    model, path = good(tmp_path)
    save_file(model.state_dict(), path)
    refused(path, "key '__specchain__' is missing from __metadata__: not a specchain model")
    save_file(model.state_dict(), path, metadata={**metadata_of(model), "format_version": "2"})
    refused(path, "format_version '2' is not 1: written by another specchain version")


def test_tensors_that_do_not_fit_are_listed_briefly(tmp_path: Path) -> None:
    model, _ = good(tmp_path)
    tensors = {f"extra.{i}": np.zeros(1, np.float32) for i in range(500)}
    tensors["linear.weight"] = np.zeros((4, 4), np.float32)
    path = write_model(tmp_path / "m.safetensors", model, tensors=tensors)
    message = refused(path, r"the tensors do not fit the architecture:\n  missing keys: ")
    assert "linear.weight: shape [4, 4] != expected [3, 4]" in message
    assert "unexpected keys: ['extra.0', " in message and "(and 492 more)" in message
    assert len(message) < 800


def test_mixed_dtypes(tmp_path: Path) -> None:
    model, _ = good(tmp_path)
    tensors = model.state_dict()
    tensors["linear.bias"] = tensors["linear.bias"].astype(np.float64)
    path = write_model(tmp_path / "m.safetensors", model, tensors=tensors)
    refused(path, re.escape("linear.bias: dtype float64 != the model's float32"))


def test_deeply_nested_architecture(tmp_path: Path) -> None:
    model, _ = good(tmp_path)
    path = write_model(tmp_path / "m.safetensors", model, "[" * 100_000 + "]" * 100_000)
    refused(path, "key '__specchain__': architecture JSON is nested 100000 deep, more than 64")


def test_node_names_with_nul_are_refused_in_files(tmp_path: Path) -> None:
    model, _ = good(tmp_path)
    architecture = architecture_json(model)
    architecture["nodes"][0]["name"] = "a\0b"
    path = write_model(tmp_path / "m.safetensors", model, architecture)
    refused(path, "the node name 'a\\\\x00b' has a control character")


# --- file types -------------------------------------------------------------------------------


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "m.safetensors"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: outcome.append(_error_of(fifo)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the reader so the test run can end, then fail
        with open(fifo, "wb"):
            pass
        pytest.fail("loading a FIFO blocked")
    assert isinstance(outcome[0], sc.ModelFileError)
    assert str(outcome[0]) == f"{fifo}: is a FIFO, not a regular file: refused without reading"


def _error_of(path: Path) -> BaseException:
    try:
        sc.load(path)
    except BaseException as err:  # the thread reports whatever it got
        return err
    raise AssertionError("loaded a FIFO")


def test_a_device_is_refused(tmp_path: Path) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    link = tmp_path / "zero.safetensors"
    link.symlink_to("/dev/zero")
    refused(link, "is a device, socket or other special file, not a regular file")


# --- atomic save ------------------------------------------------------------------------------


def test_a_failed_save_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, path = good(tmp_path)
    before = path.read_bytes()

    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors_file.os, "replace", broken)
    with pytest.raises(OSError, match="No space left"):
        (Linear(4, 3) >> Tanh()).save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.safetensors"]


# --- real clients ----------------------------------------------------------------------------


def test_pytorch_users_open_the_file_and_one_model_gives_one_byte_string(tmp_path: Path) -> None:
    torch_files = pytest.importorskip("safetensors.torch")
    model = (LSTM(4, 8) >> Linear(8, 2)).to(np.float64)
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    model.save(first)
    model.save(second)
    assert first.read_bytes() == second.read_bytes()
    tensors = torch_files.load_file(first)
    assert sorted(tensors) == sorted(model.state_dict())
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(tensors[name].numpy(), value)
