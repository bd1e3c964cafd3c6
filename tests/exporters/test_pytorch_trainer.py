"""The exported ``train.py`` under ``torchrun``: two gloo processes on the loopback address end
with identical weights, equal (float32 tolerance) to one process on the whole batch, and the
checkpoint loads back into the spec; padded data with lengths trains too."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.data import write_training_file
from specchain.exporters import pytorch
from specchain.exporters.pytorch.trainer import trainer_source
from specchain.models import zoo

safetensors_torch = pytest.importorskip("safetensors.torch")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(model: sc.SpecChain, folder: Path, data: object, loss: str) -> None:
    pytorch.export(model, folder)  # model.py and model.safetensors, the initial weights
    (folder / "train.py").write_text(trainer_source(model, loss=loss))
    write_training_file(folder / "data.npz", model, data)


def _torchrun(folder: Path, processes: int, out: str, *extra: str) -> str:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={processes}",
        "--nnodes=1",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "train.py",
        "--data=data.npz",
        f"--out={out}",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(folder)}
    done = subprocess.run(
        command, cwd=folder, capture_output=True, text=True, timeout=240, env=env, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_two_processes_match_one_process_on_the_whole_batch(tmp_path: Path) -> None:
    model = zoo.classifier(4, 8, 3).to(np.float64)
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((5, 16, 4)), rng.integers(0, 3, 16)
    _prepare(model, tmp_path, (x, labels), "cross_entropy")
    options = ("--epochs=2", "--batch-size=8", "--lr=0.05", "--optimizer=sgd")
    two = _torchrun(tmp_path, 2, "ddp.safetensors", *options)
    assert "replicas: 2 processes, largest weight difference 0.000e+00" in two, two
    assert "epoch 2/2 - loss:" in two
    _torchrun(tmp_path, 1, "single.safetensors", *options)
    ddp = safetensors_torch.load_file(str(tmp_path / "ddp.safetensors"))
    single = safetensors_torch.load_file(str(tmp_path / "single.safetensors"))
    start = pytorch.torch_state(model, pytorch.assign_names(model))
    for key, value in ddp.items():
        np.testing.assert_allclose(value.numpy(), single[key].numpy(), rtol=1e-5, atol=1e-6)
        assert not np.array_equal(value.numpy(), start[key]), f"{key} did not train"
    pytorch.load_torch_state(model, ddp)
    for key, value in pytorch.torch_state(model, pytorch.assign_names(model)).items():
        np.testing.assert_array_equal(value, ddp[key].numpy(), err_msg=key)
    theirs = pytorch.build_torch_module(model)(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model(x), theirs, rtol=1e-12, atol=1e-12)


def test_padded_batches_train_with_their_lengths(tmp_path: Path) -> None:
    model = zoo.classifier(4, 8, 3, lengths=True).to(np.float64)
    rng = np.random.default_rng(1)
    x, lengths = rng.standard_normal((6, 8, 4)), rng.integers(1, 7, 8)
    x[np.arange(6)[:, None] >= lengths[None, :]] = np.nan  # padding never counts
    _prepare(model, tmp_path, ((x, lengths), rng.integers(0, 3, 8)), "cross_entropy")
    out = _torchrun(tmp_path, 1, "trained.safetensors", "--epochs=1", "--batch-size=4")
    loss = float(out.split("loss: ")[1].split()[0])
    assert np.isfinite(loss), out


def test_the_cli_writes_train_py_as_a_person_types_it(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "specchain", "export", "zoo:classifier"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "out"), "--trainer", "--loss", "cross_entropy"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "torchrun --nproc_per_node=2 train.py --data data.npz" in done.stdout
    script = tmp_path / "out" / "train.py"
    assert 'LOSS = "cross_entropy"' in script.read_text()
    usage = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=script.parent,
        check=False,
    )
    assert usage.returncode == 0 and "--batch-size" in usage.stdout, usage.stderr


def test_train_py_passes_ruff_with_default_settings(tmp_path: Path) -> None:
    from tests.exporters.test_pytorch_clients import _ruff

    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install ruff, or the 'dev' extra)")
    for name, model, loss in (
        ("classifier", zoo.classifier(4, 8, 3, lengths=True), "cross_entropy"),
        ("seq2seq", zoo.seq2seq(4, 8, 3), "mse"),
    ):
        (tmp_path / f"{name}.py").write_text(trainer_source(model, loss=loss))
    for command in (["check", "--isolated"], ["format", "--isolated", "--check", "--diff"]):
        done = subprocess.run(
            [*ruff, *command, str(tmp_path)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
