"""The exported ``train.py`` under ``torchrun``: two gloo processes on the loopback address end
with identical weights, equal (float32 tolerance) to one process on the whole batch, and the
checkpoint loads back into the spec; padded data with lengths trains too; a model with several
inputs (the attention encoder/decoder) trains from a file with one array per input."""

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
from specchain.exporters.pytorch.emitters import ExportError
from specchain.exporters.pytorch.trainer import trainer_source
from specchain.models import zoo
from specchain.modules import Linear
from specchain.optim import SGD
from specchain.train import fit

safetensors_torch = pytest.importorskip("safetensors.torch")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(model: sc.SpecChain, folder: Path, data: object, loss: str) -> None:
    pytorch.export(model, folder)  # model.py and model.safetensors, the initial weights
    (folder / "train.py").write_text(trainer_source(model, loss=loss))
    write_training_file(folder / "data.npz", model, data)


def _attention(lengths: bool) -> sc.SpecChain:
    sc.seed(0)
    return zoo.attention_seq2seq(3, 4, 2, lengths=lengths).to(np.float64)


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


def test_several_inputs_two_processes_match_fit_on_the_whole_batch(tmp_path: Path) -> None:
    """attention_seq2seq with lengths on both inputs, all varying: the output keeps the decoder
    lengths, so the two processes hold different numbers of positions, and the loss is still the
    whole batch's mean: three full-batch SGD steps under torchrun equal three of fit's."""
    model, reference = (_attention(lengths=True), _attention(lengths=True))  # twins
    rng = np.random.default_rng(2)
    n, steps, source_steps = 8, 3, 5
    source, decoder = rng.standard_normal((source_steps, n, 3)), rng.standard_normal((steps, n, 3))
    source_lengths = rng.integers(1, source_steps + 1, n)
    decoder_lengths = np.array(
        [1, 3, 3, 1, 3, 2, 2, 2]
    )  # 7 positions on one process, 9 on the other
    inputs = ((source, source_lengths), (decoder, decoder_lengths))
    targets = rng.standard_normal((steps, n, 2))
    _prepare(model, tmp_path, (inputs, targets), "mse")
    options = ("--epochs=3", f"--batch-size={n}", "--lr=0.1", "--optimizer=sgd")
    two = _torchrun(tmp_path, 2, "ddp.safetensors", *options)
    assert "replicas: 2 processes, largest weight difference 0.000e+00" in two, two
    fit(reference, (inputs, targets), sc.losses.mse, SGD(reference, lr=0.1), epochs=3,
        batch_size=n, progress=False)  # fmt: skip
    ddp = safetensors_torch.load_file(str(tmp_path / "ddp.safetensors"))
    names = pytorch.assign_names(model)
    start, single = pytorch.torch_state(model, names), pytorch.torch_state(reference, names)
    for key, value in ddp.items():
        np.testing.assert_allclose(value.numpy(), single[key], rtol=1e-5, atol=1e-6, err_msg=key)
    still = {key for key, value in ddp.items() if np.array_equal(value.numpy(), start[key])}
    assert still == {"attention_weights.bias"}  # a softmax ignores a shift of every score
    pytorch.load_torch_state(model, ddp)
    for key, value in pytorch.torch_state(model, names).items():
        np.testing.assert_array_equal(value, ddp[key].numpy(), err_msg=key)


def test_a_nested_input_is_refused_naming_the_argument() -> None:
    model = sc.parallel(Linear(3, 2), sc.parallel(Linear(3, 2), Linear(3, 2)))
    with pytest.raises(
        ExportError,
        match=r"^train\.py gives each forward argument one tensor, but 'x1' takes a tuple "
        r"\(\[\.\.\., 3\], \[\.\.\., 3\]\); train this model with fit\(\.\.\., "
        r"engine='torch'\), or give it one input per tensor",
    ):
        trainer_source(model)


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        (False, "data.npz holds 1 inputs, but the model takes 2 ('source', 'decoder_inputs'): "
         "write the data with specchain.data.write_training_file(path, model, data) for this "
         "model"),
        (True, "data.npz: no lengths for source; the model takes them"),
    ],
    ids=["inputs", "lengths"],
)  # fmt: skip
def test_train_py_refuses_a_data_file_of_another_model(
    tmp_path: Path, lengths: bool, message: str
) -> None:
    """Before any process group starts (plain ``python train.py``, no torchrun)."""
    model = _attention(lengths=True)
    pytorch.export(model, tmp_path)
    (tmp_path / "train.py").write_text(trainer_source(model))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 2))
    if lengths:  # the model's two inputs, without their lengths
        write_training_file(tmp_path / "data.npz", _attention(lengths=False), ((x, x), y))
    else:  # one input
        write_training_file(tmp_path / "data.npz", zoo.seq2seq(3, 4, 2), (x, y))
    done = subprocess.run(
        [sys.executable, "train.py", "--data=data.npz"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 1 and done.stderr.strip() == message, done.stderr


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
        ("attention", zoo.attention_seq2seq(4, 8, 3, lengths=True), "mse"),
    ):
        (tmp_path / f"{name}.py").write_text(trainer_source(model, loss=loss))
    for command in (["check", "--isolated"], ["format", "--isolated", "--check", "--diff"]):
        done = subprocess.run(
            [*ruff, *command, str(tmp_path)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
