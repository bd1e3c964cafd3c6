"""The PyTorch exporter on every zoo model and on the graph shapes the zoo does not cover.

For each model, dtype and mode: the generated file parses, imports, ``load()`` loads its weights
strictly, and the spec matches torch (outputs, input gradients and every parameter gradient) on
the export shapes and two others, eager and compiled by ``torch.jit.script``. Then: the
generated ``test_model.py`` passes on its own, ``verify`` catches wrong modules, training with
Adam follows the same loss curve in numpy and in torch, and weights come back from torch with
``load_torch_state``.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
import safetensors.numpy
import torch

import specchain as sc
from specchain.examples import example_input
from specchain.exporters import pytorch
from specchain.exporters.pytorch import (
    Emitted,
    ExportError,
    assign_names,
    build_torch_module,
    export,
    load_torch_state,
    torch_state,
    verify,
)
from specchain.models import zoo
from specchain.models.zoo import ZOO
from specchain.modules import (
    LSTM,
    Add,
    Concat,
    Dropout,
    Embedding,
    Identity,
    LastStep,
    Linear,
    LSTMCell,
    Reverse,
    Select,
    Tanh,
    TimeDistributed,
)
from specchain.modules.activation import Elementwise
from specchain.optim import Adam
from specchain.spec import Context, Params
from tests.helpers import TOLERANCES

DTYPES = [np.float64, np.float32]
SIZES = [None, {"T": 1, "B": 1}, {"T": 7, "B": 2}]  # None: the export shapes (T=5, B=3, S=6)
Inputs = Callable[[sc.SpecChain, np.random.Generator, "dict[str, int] | None"], Any]


# --- helpers ---------------------------------------------------------------------------------


def import_path(path: Path) -> Any:
    """Import a generated ``model.py`` by path, as a user would."""
    spec = importlib.util.spec_from_file_location(f"exported_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def without_dropout(model: sc.SpecChain) -> sc.SpecChain:
    """Dropout p = 0 everywhere (inside LSTMs too): training mode becomes deterministic."""
    for node in model.nodes:
        spec = model.spec(node)
        if spec.kind == "LSTM":
            spec.dropout = 0.0  # type: ignore[attr-defined]
        elif spec.kind == "Dropout":
            spec.p = 0.0  # type: ignore[attr-defined]
    return model


def has_random_dropout(model: sc.SpecChain) -> bool:
    specs = [model.spec(n) for n in model.nodes]
    return any(getattr(s, "dropout", 0.0) or (s.kind == "Dropout" and s.p) for s in specs)  # type: ignore[attr-defined]


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _to_torch(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_to_torch(v) for v in value)
    return torch.from_numpy(np.array(value))


def default_inputs(model: sc.SpecChain, rng: np.random.Generator, sizes: Any) -> Any:
    return example_input(model, rng, sizes=sizes)


def check_export(
    model: sc.SpecChain,
    out_dir: Path,
    train: bool = False,
    inputs: Inputs = default_inputs,
    class_name: str = "Exported",
) -> Any:
    """Export, parse, import, load strictly, and match the spec on three shapes (via ``verify``
    and via the imported file itself). Returns the imported module."""
    dtype = np.dtype(model.dtype or np.float32)
    rtol, atol = TOLERANCES[dtype]
    rng = np.random.default_rng(5)
    path = export(model, out_dir, class_name=class_name, example=inputs(model, rng, None))
    ast.parse(path.read_text(encoding="utf-8"))
    generated = import_path(path)
    loaded = generated.load()
    assert type(loaded).__name__ == class_name
    assert not loaded.training
    names = assign_names(model, class_name)
    expected = torch_state(model, names)
    got = loaded.state_dict()
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key].numpy().dtype == dtype, key
        np.testing.assert_array_equal(got[key].numpy(), value, err_msg=key)
    loaded.train(train)
    scripted = torch.jit.script(loaded)  # every export here also compiles with TorchScript
    for sizes in SIZES:
        x = inputs(model, rng, sizes)
        report = verify(model, x, train=train, class_name=class_name)
        assert report.within(rtol, atol), f"sizes {sizes}\n{report}"
        assert set(expected) <= set(report.diffs), "a parameter gradient was not compared"
        outputs = [k for k in report.diffs if k.startswith("output[")]
        y, _ = model.forward(x, train=train, rng=0)
        assert len(outputs) == len(_leaves(y))
        if _leaves(x)[0].dtype.kind == "f":
            assert "input_grad[0]" in report.diffs
        arguments = _to_torch(x) if len(names.arguments) > 1 else (_to_torch(x),)
        with torch.no_grad():
            theirs = _leaves(loaded(*arguments))
            compiled = _leaves(scripted(*arguments))
        assert len(theirs) == len(compiled) == len(_leaves(y))
        for ours, t, c in zip(_leaves(y), theirs, compiled):
            assert t.numpy().dtype == ours.dtype
            np.testing.assert_allclose(t.numpy(), ours, rtol=rtol, atol=atol)
            np.testing.assert_allclose(c.numpy(), ours, rtol=rtol, atol=atol)
    return generated


# --- every zoo model ---------------------------------------------------------------------------


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_exports_and_matches(name: str, dtype: Any, train: bool, tmp_path: Path) -> None:
    model = ZOO[name].build().to(dtype)
    if train:  # random masks are not comparable: p = 0 makes training mode deterministic
        model = without_dropout(model)
        assert not has_random_dropout(model)
    check_export(model, tmp_path, train=train)


def test_the_zoo_has_models_with_dropout() -> None:
    """The train-mode runs above really exercise models that have dropout."""
    with_dropout = [name for name, entry in ZOO.items() if has_random_dropout(entry.build())]
    assert "language_model" in with_dropout and "stacked" in with_dropout


def test_zoo_sources_use_native_modules() -> None:
    source = pytorch.to_source(ZOO["language_model"].build())
    for line in (
        "self.embedding = nn.Embedding(50, 64)",
        "self.lstm = nn.LSTM(64, 64, num_layers=2, dropout=0.2)",
        "self.dropout = nn.Dropout(0.2)",
        "self.projection = nn.Linear(64, 50)",
        "lstm, _ = self.lstm(embedding)",
    ):
        assert f"        {line}\n" in source
    bilstm = pytorch.to_source(ZOO["bilstm"].build())
    assert "self.lstm = nn.LSTM(8, 16, bidirectional=True)" in bilstm
    assert "class " not in bilstm.replace("class Model(", "")  # no helper needed


@pytest.mark.parametrize(
    ("name", "dtype"),
    [("seq2seq", np.float32), ("language_model", np.float64), ("attention_seq2seq", np.float64)],
)
def test_generated_test_file_passes(name: str, dtype: Any, tmp_path: Path) -> None:
    export(ZOO[name].build().to(dtype), tmp_path)
    result = run_generated_test(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout  # eager and scripted


def test_generated_test_file_fails_on_wrong_weights(tmp_path: Path) -> None:
    export(ZOO["seq2seq"].build(), tmp_path)
    weights = safetensors.numpy.load_file(tmp_path / "model.safetensors")
    weights["head.bias"] = weights["head.bias"] + np.float32(1e-2)
    safetensors.numpy.save_file(weights, tmp_path / "model.safetensors")
    result = run_generated_test(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 failed" in result.stdout  # eager and scripted


def run_generated_test(directory: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, str(directory / "test_model.py")],
        capture_output=True,
        text=True,
        cwd=directory,
        timeout=120,
        check=False,
    )


def test_generated_test_file_imports_no_specchain(tmp_path: Path) -> None:
    export(ZOO["seq2seq"].build(), tmp_path)
    for file in ("model.py", "test_model.py"):
        tree = ast.parse((tmp_path / file).read_text(encoding="utf-8"))
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}  # type: ignore[misc]
        assert not any(str(m).startswith("specchain") for m in modules), (file, modules)
        if file == "model.py":  # torch and safetensors only: no numpy
            assert not any(str(m).startswith("numpy") for m in modules), modules
            assert "safetensors.torch" in modules
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.py",
        "model.safetensors",
        "reference.npz",
        "test_model.py",
    ]
    weights = safetensors.numpy.load_file(tmp_path / "model.safetensors")  # no pickles
    assert set(weights) == set(ZOO["seq2seq"].build().state_dict())


# --- graph shapes beyond the zoo ---------------------------------------------------------------


def masked_inputs(model: sc.SpecChain, rng: np.random.Generator, sizes: Any) -> Any:
    bound = {"T": 5, "B": 3, **(sizes or {})}
    shape = (bound["T"], bound["B"], 8)
    dtype = model.dtype
    keep = (rng.random(shape) >= 0.5).astype(dtype)
    return rng.standard_normal(shape).astype(dtype), keep


def _shared() -> sc.SpecChain:
    linear = Linear(8, 8)
    return linear >> Tanh() >> linear


def _lstm_options() -> sc.SpecChain:
    lstm = LSTM(8, 16, num_layers=2, bidirectional=True, proj_size=4, batch_first=True)
    return lstm >> LastStep(axis=1) >> Linear(8, 3, bias=False)


GRAPHS: dict[str, tuple[Callable[[], sc.SpecChain], Inputs]] = {
    "bidirectional_branch": (
        lambda: (
            sc.branch(LSTM(8, 16), Reverse() >> LSTM(8, 16) >> Reverse())
            >> Concat()
            >> Linear(32, 4)
        ),
        default_inputs,
    ),
    "return_state_select": (
        lambda: LSTM(8, 16, return_state=True) >> Select(1) >> Select(0) >> Linear(16, 4),
        default_inputs,
    ),
    "return_state_output": (
        lambda: LSTM(8, 16, num_layers=2, return_state=True).as_chain(),
        default_inputs,
    ),
    "shared_spec": (_shared, default_inputs),
    "time_distributed_linear": (
        lambda: TimeDistributed(Linear(8, 3)) >> Tanh(),
        default_inputs,
    ),
    "one_hot_language_model": (
        lambda: zoo.language_model(20, 16, num_layers=2, one_hot=True),
        default_inputs,
    ),
    "masked_dropout": (
        lambda: sc.parallel(Linear(8, 8), Identity()) >> Dropout(0.5) >> Linear(8, 2),
        masked_inputs,
    ),
    "lstm_cell": (lambda: LSTMCell(8, 16) >> Select(0) >> Linear(16, 4), default_inputs),
    "residual_add": (
        lambda: sc.branch(Linear(8, 8), Identity()) >> Add() >> Tanh(),
        default_inputs,
    ),
    "lstm_options": (_lstm_options, default_inputs),
    "embedding_padding": (
        lambda: Embedding(10, 8, padding_idx=0) >> LSTM(8, 8) >> Linear(8, 10),
        default_inputs,
    ),
}


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_graph_exports_and_matches(graph: str, dtype: Any, train: bool, tmp_path: Path) -> None:
    build, inputs = GRAPHS[graph]
    check_export(build().to(dtype), tmp_path, train=train, inputs=inputs)


def test_masked_dropout_in_training_uses_the_mask(tmp_path: Path) -> None:
    build, inputs = GRAPHS["masked_dropout"]
    model = build().to(np.float64)
    generated = check_export(model, tmp_path, train=True, inputs=inputs)
    assert "self.dropout = MaskedDropout(0.5)" in (tmp_path / "model.py").read_text()
    x, keep = inputs(model, np.random.default_rng(0), None)
    module = generated.load().train()
    with torch.no_grad():
        masked = module(torch.from_numpy(x), torch.from_numpy(keep)).numpy()
        unmasked = module(torch.from_numpy(x), torch.ones_like(torch.from_numpy(keep))).numpy()
    assert not np.allclose(masked, unmasked)


def test_masked_dropout_takes_an_integer_mask_like_the_spec(tmp_path: Path) -> None:
    build, inputs = GRAPHS["masked_dropout"]
    model = build().to(np.float64)
    x, keep = inputs(model, np.random.default_rng(0), None)
    int_keep = keep.astype(np.int64)
    expected = model.forward((x, int_keep), train=True)[0]
    module = import_path(export(model, tmp_path, example=(x, keep))).load().train()
    with torch.no_grad():
        got = module(torch.from_numpy(x), torch.from_numpy(int_keep)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_shared_spec_is_one_module_used_twice(tmp_path: Path) -> None:
    model = _shared().to(np.float64)
    assert model.nodes == ["linear", "tanh", "linear_1"]
    source = pytorch.to_source(model)
    assert source.count("self.linear = nn.Linear(8, 8)") == 1
    assert "self.linear_1 =" not in source
    assert "linear = self.linear(x)" in source
    assert "linear_1 = self.linear(tanh)" in source
    module = build_torch_module(model)
    assert list(module.state_dict()) == ["linear.weight", "linear.bias"]
    assert len(list(module.parameters())) == 2
    report = verify(model)  # the gradient of the shared weight sums both uses
    assert report.within(1e-7, 1e-9), str(report)
    assert set(report.diffs) == {"output[0]", "input_grad[0]", "linear.weight", "linear.bias"}


def test_bidirectional_branch_source() -> None:
    """Lanes of different sizes: not one bidirectional nn.LSTM (test_pytorch_fusion.py), so
    each node is its own line."""
    lanes = sc.branch(LSTM(8, 16), Reverse() >> LSTM(8, 12) >> Reverse())
    source = pytorch.to_source(lanes >> Concat() >> Linear(28, 4))
    for line in (
        "lstm, _ = self.lstm(x)",
        "reverse = torch.flip(x, dims=(0,))",
        "lstm_1, _ = self.lstm_1(reverse)",
        "reverse_1 = torch.flip(lstm_1, dims=(0,))",
        "concat = torch.cat((lstm, reverse_1), dim=-1)",
    ):
        assert f"        {line}\n" in source, line
    assert "class Model(nn.Module)" in source
    assert source.count("(nn.Module)") == 1  # one-line operations inline: no helper class
    assert "self.reverse" not in source and "self.concat" not in source


def test_return_state_source() -> None:
    source = pytorch.to_source(GRAPHS["return_state_select"][0]())
    assert "        lstm = self.lstm(x)\n" in source  # the whole (output, (h_n, c_n))
    assert "        select = lstm[1]\n" in source
    assert "        select_1 = select[0]\n" in source
    assert "self.select" not in source


def test_time_distributed_linear_is_a_plain_linear() -> None:
    source = pytorch.to_source(GRAPHS["time_distributed_linear"][0]())
    assert "self.time_distributed = nn.Linear(8, 3)" in source


def test_one_hot_language_model_source() -> None:
    source = pytorch.to_source(GRAPHS["one_hot_language_model"][0]())
    assert "self.one_hot = OneHot(20)" in source
    assert "self.embedding = nn.Linear(20, 16, bias=False)" in source
    assert "import torch.nn.functional as F" in source


# --- what cannot be exported ---------------------------------------------------------------------


@attrs.define(eq=False)
class SquareWithoutEmitter(Elementwise):
    """y = x * x: a spec the exporter knows nothing about."""

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        return x * x, x

    def backward(self, params: Params, x: np.ndarray, dy: np.ndarray) -> tuple[Any, Params]:
        return 2 * x * dy, {}


def test_a_spec_without_emitter_is_refused(tmp_path: Path) -> None:
    model = Linear(4, 4) >> SquareWithoutEmitter()
    message = (
        r"^node 'square_without_emitter': no PyTorch emitter for SquareWithoutEmitter; register "
        r"one with @pytorch.emitter\(SquareWithoutEmitter\); see docs/custom_layers.md$"
    )
    with pytest.raises(ExportError, match=message):
        pytorch.to_source(model)
    with pytest.raises(ExportError, match=message):
        export(model, tmp_path / "out")
    assert not (tmp_path / "out" / "model.py").exists()
    with pytest.raises(ExportError, match=message):
        build_torch_module(model)
    with pytest.raises(ExportError, match=message):
        verify(model)


@pytest.mark.parametrize(
    "inner",
    [Reverse(axis=1), LastStep(axis=1)],  # over a [B, S, F] step: S is a (second) time axis
    ids=lambda s: s.kind if hasattr(s, "kind") else str(s),
)
def test_time_distributed_of_a_non_pointwise_spec_is_refused(inner: Any) -> None:
    model = TimeDistributed(inner).as_chain()
    message = (
        rf"^node 'time_distributed': TimeDistributed\({inner.kind}\) has no PyTorch emitter: only "
        r"layers that act on the last axis \("
        + re.escape(", ".join(pytorch.pointwise_kinds()))
        + r"\) map over time natively$"
    )
    with pytest.raises(ExportError, match=message):
        pytorch.to_source(model)


def test_export_error_is_a_spec_error() -> None:
    assert issubclass(ExportError, sc.SpecError)


# --- verify is not vacuous ---------------------------------------------------------------------


def test_verify_reports_a_wrong_activation(monkeypatch: pytest.MonkeyPatch) -> None:
    model = (Linear(4, 4) >> Tanh() >> Linear(4, 2)).to(np.float64)
    monkeypatch.setitem(
        pytorch.EMITTERS, Tanh, pytorch.Emitter(lambda s, t: Emitted("nn.Sigmoid()"))
    )
    report = verify(model, np.random.default_rng(0).standard_normal((3, 4)))
    assert not report.within(1e-7, 1e-9)
    assert report.diffs["output[0]"][0] > 1e-2
    assert report.diffs["linear.weight"][0] > 1e-3  # gradients before the wrong node differ too
    assert "output[0]" in str(report) and "linear.weight" in str(report)


def test_verify_refuses_a_wrong_output_structure(monkeypatch: pytest.MonkeyPatch) -> None:
    """An LSTM emitted keeping its state returns ``(output, (h_n, c_n))``: never a silent
    match."""
    model = LSTM(4, 5).as_chain()
    lstm = pytorch.emitter_for(LSTM(4, 5), "lstm").emit
    without_index = pytorch.Emitter(lambda s, t: attrs.evolve(lstm(s, t), drop_state=False))
    monkeypatch.setitem(pytorch.EMITTERS, LSTM, without_index)
    with pytest.raises(ExportError, match=r"the exported module returns 3 arrays, the spec 1"):
        verify(model)


def test_verify_refuses_a_wrong_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    """``LastStep`` emitted as ``Reverse`` gives [T, B, F] where the spec has [B, F]: no
    broadcasting one onto the other."""
    model = LSTM(4, 5) >> LastStep()
    as_reverse = pytorch.Emitter(lambda s, t: pytorch.helper("Reverse", 0))
    monkeypatch.setitem(pytorch.EMITTERS, LastStep, as_reverse)
    with pytest.raises(ExportError, match=r"output\[0\]: specchain has shape \[3, 5\]"):
        verify(model)


def test_verify_with_a_loss_compares_the_loss_value() -> None:
    model = ZOO["language_model"].build().to(np.float64)
    rng = np.random.default_rng(0)
    x, target = rng.integers(0, 50, (4, 2)), rng.integers(0, 50, (4, 2))
    report = verify(model, x, target, loss=sc.losses.cross_entropy)
    assert report.within(1e-7, 1e-9), str(report)
    assert report.loss is not None
    np.testing.assert_allclose(report.loss[0], report.loss[1], rtol=1e-12)


# --- training: numpy Adam and torch Adam from the same weights -----------------------------------


def test_adam_training_follows_the_same_loss_curve() -> None:
    vocab, steps, batch = 20, 6, 4
    model = zoo.language_model(vocab, 16, num_layers=2, dropout=0.0).to(np.float64)
    module = build_torch_module(model).train()
    rng = np.random.default_rng(3)
    x, target = rng.integers(0, vocab, (steps, batch)), rng.integers(0, vocab, (steps, batch))
    ours_opt = Adam(model.named_parameters(), lr=0.01)
    theirs_opt = torch.optim.Adam(module.parameters(), lr=0.01)
    ours, theirs = [], []
    x_t, target_t = torch.from_numpy(x), torch.from_numpy(target).reshape(-1)
    for _ in range(20):
        loss, grads = model.value_and_grad(x, target, loss=sc.losses.cross_entropy, rng=0)
        ours_opt.step(grads)
        ours.append(loss)
        theirs_opt.zero_grad()
        logits = module(x_t)
        torch_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), target_t)
        torch_loss.backward()
        theirs_opt.step()
        theirs.append(torch_loss.item())
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=0)
    assert ours[-1] < 0.8 * ours[0]  # it trained
    names = assign_names(model)
    final = module.state_dict()
    for key, value in torch_state(model, names).items():
        np.testing.assert_allclose(final[key].numpy(), value, rtol=1e-7, atol=1e-9, err_msg=key)


# --- weights back from torch ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ZOO))
def test_round_trip_through_the_exported_file(name: str, tmp_path: Path) -> None:
    model = ZOO[name].build()
    module = import_path(export(model, tmp_path)).load()
    sc.seed(1)
    fresh = ZOO[name].build()
    before = fresh.named_parameters()
    assert all(not np.array_equal(v, before[k]) for k, v in model.named_parameters().items())
    load_torch_state(fresh, module)
    after = fresh.named_parameters()
    assert list(after) == list(model.named_parameters())
    for key, value in model.named_parameters().items():
        assert after[key].dtype == value.dtype
        np.testing.assert_array_equal(after[key], value, err_msg=key)


def test_weights_trained_in_torch_come_back() -> None:
    model = ZOO["seq2seq"].build().to(np.float64)
    module = build_torch_module(model)
    x = torch.from_numpy(example_input(model, 0))
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    load_torch_state(model, module.state_dict())
    with torch.no_grad():
        expected = module(x).numpy()
    np.testing.assert_allclose(model(x.numpy()), expected, rtol=1e-7, atol=1e-9)
    with torch.no_grad():  # copies: changing torch's tensors later leaves the spec alone
        module.head.weight.zero_()
    assert np.abs(model.named_parameters()["head.weight"]).max() > 0


def test_load_torch_state_reports_missing_and_extra_keys() -> None:
    model = ZOO["seq2seq"].build()
    state = build_torch_module(model).state_dict()
    del state["head.bias"]
    state["bogus.weight"] = torch.zeros(2)
    sc.seed(1)
    fresh = ZOO["seq2seq"].build()
    before = fresh.state_dict()
    message = "missing keys: ['head.bias']; unexpected keys: ['bogus.weight']"
    with pytest.raises(sc.StateDictError, match=re.escape(message)):
        load_torch_state(fresh, state)
    for key, value in fresh.state_dict().items():  # nothing changed
        np.testing.assert_array_equal(value, before[key])


def test_load_torch_state_names_a_mis_shaped_key() -> None:
    model = ZOO["seq2seq"].build()
    state = build_torch_module(model).state_dict()
    state["head.weight"] = torch.zeros(1, 1)
    with pytest.raises(sc.StateDictError, match=r"head\.weight: shape \[1, 1\] != \[4, 32\]"):
        load_torch_state(model, state)


def test_load_torch_state_reports_every_problem_at_once() -> None:
    model = ZOO["seq2seq"].build()
    state = build_torch_module(model).state_dict()
    del state["head.bias"]
    state["lstm.weight_ih_l0"] = torch.zeros(3)
    state["head.weight"] = state["head.weight"].double()
    with pytest.raises(sc.StateDictError) as caught:
        load_torch_state(model, state)
    message = str(caught.value)
    assert "missing keys: ['head.bias']" in message
    assert "lstm.weight_ih_l0: shape [3] != [128, 8]" in message
    assert "head.weight: dtype float64 != the model's float32" in message


def test_load_torch_state_refuses_other_things() -> None:
    with pytest.raises(TypeError, match="expected a torch module or a state_dict mapping, got int"):
        load_torch_state(ZOO["seq2seq"].build(), 3)


def test_lstm_taking_an_initial_state_exports_and_matches() -> None:
    """``(x, (h0, c0))`` in, ``(output, (h_n, c_n))`` out: the export calls nn.LSTM(x, state)."""
    model = sc.parallel(
        Identity(name="x"), sc.parallel(Identity(name="h0"), Identity(name="c0"))
    ) >> LSTM(4, 5, num_layers=2, bidirectional=True, return_state=True)
    model.to(np.float64)
    rng = np.random.default_rng(3)
    inputs = (
        rng.standard_normal((6, 2, 4)),
        (rng.standard_normal((4, 2, 5)), rng.standard_normal((4, 2, 5))),
    )
    report = pytorch.verify(model, inputs)
    assert report.within(rtol=1e-7, atol=1e-9), str(report)
    assert {"input_grad[1]", "input_grad[2]"} <= set(report.diffs)  # dh0 and dc0 compared
    assert "self.lstm(x_1, pack)" in pytorch.to_source(model)
