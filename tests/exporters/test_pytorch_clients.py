"""Exports against the clients PyTorch users run them with (issue 14, points 1 and 2).

Every zoo model (with and without lengths, each cell) and every graph of ``test_pytorch.GRAPHS``
is exported to disk, then: ``torch.jit.script`` compiles it, ``torch.jit.trace`` records it
where a trace is meaningful (not the attention decoder, whose loop a trace unrolls: it warns),
both match the spec at two other (T, B), and the generated ``test_model.py`` passes, eager and
scripted. The generated sources pass ``ruff check`` and ``ruff format --check`` with default
settings; the zoo goes through the legacy ONNX exporter with dynamic T and B and runs in
onnxruntime; one small export is compared with a golden file; ``load_checkpoint`` loads a
hand-written checkpoint given a key map.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import specchain as sc
from specchain import padded
from specchain.examples import example_input
from specchain.exporters import pytorch
from specchain.exporters.pytorch import arguments, torch_helpers
from specchain.exporters.pytorch.source import LOOPS_OVER_TIME
from specchain.models import zoo
from specchain.models.zoo import ZOO
from specchain.modules import LSTM, Add, Concat, Identity, LastStep, Linear, LSTMVariant, Reverse
from tests.exporters.test_pytorch import GRAPHS
from tests.helpers import TOLERANCES

GOLDEN = Path(__file__).with_name("golden") / "bidirectional_classifier.py"
OTHER_SIZES = [{"T": 1, "B": 1}, {"T": 7, "B": 2}]


def _models() -> dict[str, Callable[[], sc.SpecChain]]:
    models: dict[str, Callable[[], sc.SpecChain]] = {}
    for name, entry in ZOO.items():
        models[f"zoo_{name}"] = entry.build
        models[f"zoo_{name}_lengths"] = partial(entry.build, lengths=True)
    for cell in ("gru", "rnn"):
        for builder in (zoo.seq2seq, zoo.classifier, zoo.bilstm):
            key = f"{builder.__name__}_{cell}"
            models[key] = partial(builder, 4, 6, 3, cell=cell)
            models[f"{key}_lengths"] = partial(builder, 4, 6, 3, lengths=True, cell=cell)
    for score in ("dot", "general", "additive"):
        models[f"attention_{score}"] = partial(zoo.attention_seq2seq, 4, 6, 3, score=score)
    for paper_name in ("V", "CIFG", "FGR"):  # the LSTM variants' own step-by-step class
        models[f"lstm_variant_{paper_name}"] = partial(_lstm_variant, paper_name)
        models[f"lstm_variant_{paper_name}_lengths"] = partial(_lstm_variant, paper_name, True)
    models |= {f"graph_{name}": build for name, (build, _) in GRAPHS.items()}
    models["long_names"] = _long_names
    return models


def _lstm_variant(paper_name: str, lengths: bool = False) -> sc.SpecChain:
    variant = LSTMVariant.greff(paper_name, 4, 6, num_layers=2, bidirectional=True)
    x = sc.Input(("T", "B", 4), name="x", lengths=lengths)
    return x >> variant >> LastStep() >> Linear(12, 3)


def _long_names() -> sc.SpecChain:
    """Inline operations on the longest variable names: their lines wrap as ruff wraps them."""
    a, b, c, d = (letter * 48 for letter in "abcd")
    both = sc.branch(LSTM(4, 5, name=a), Reverse(name=b) >> LSTM(4, 5, name=c)) >> Concat()
    added = sc.branch(Linear(10, 10, name=d), Identity()) >> Add()
    return both >> added


MODELS = _models()
# graphs whose input the model's type alone does not give (a dropout mask): their own maker
INPUTS = {f"graph_{name}": inputs for name, (_, inputs) in GRAPHS.items()}


def import_path(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def has_decoder_loop(model: sc.SpecChain) -> bool:
    """A Python loop over the steps (the attention decoder, an LSTM variant's cell)."""
    return any(model.spec(n).kind in LOOPS_OVER_TIME for n in model.nodes)


def inputs_at(
    model: sc.SpecChain, names: pytorch.Names, sizes: dict[str, int], name: str = ""
) -> Any:
    """A seeded spec input at ``sizes`` (with lengths where the model declares them)."""
    bound = {**sizes, "S": sizes["T"] + 1}
    rng = np.random.default_rng(sizes["T"])
    if name in INPUTS:
        return INPUTS[name](model, rng, bound)
    x = example_input(model, rng, sizes=bound)
    return arguments.with_example_lengths(names, model.in_type, x)


def module_arguments(names: pytorch.Names, spec_input: Any) -> tuple[Any, ...]:
    call = arguments.call_arguments(names, *arguments.split_lengths(names, spec_input))
    return tuple(_to_torch(a) for a in call)


def _to_torch(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_to_torch(v) for v in value)
    return torch.from_numpy(np.array(value))


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def assert_matches(got: Any, expected: Any, dtype: Any) -> None:
    rtol, atol = TOLERANCES[np.dtype(dtype)]
    ours = _leaves(padded.strip(expected))
    theirs = _leaves(got)
    assert len(theirs) == len(ours)
    for t, o in zip(theirs, ours):
        assert tuple(t.shape) == o.shape
        np.testing.assert_allclose(t.detach().numpy(), o, rtol=rtol, atol=atol)


# --- torch.jit.script, torch.jit.trace and the generated test, for every export ---------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_export_scripts_traces_and_passes_its_own_test(name: str, tmp_path: Path) -> None:
    model = MODELS[name]()
    names = pytorch.assign_names(model)
    example = inputs_at(model, names, {"T": 5, "B": 3}, name)
    path = pytorch.export(model, tmp_path, example=example)
    generated = import_path(path, f"clients_{name}")
    module = generated.load()
    scripted = torch.jit.script(module)
    traced = None
    if not has_decoder_loop(model):  # a trace of the decoder loop is refused below
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            call = module_arguments(names, example)
            traced = torch.jit.trace(module, call, check_trace=False)
    for sizes in OTHER_SIZES:
        spec_input = inputs_at(model, names, sizes, name)
        expected = model(spec_input)
        call = module_arguments(names, spec_input)
        with torch.no_grad():
            assert_matches(scripted(*call), expected, np.float32)
            if traced is not None:
                assert_matches(traced(*call), expected, np.float32)
    test_file = import_path(tmp_path / "test_model.py", f"clients_test_{name}")
    for mode in ("eager", "scripted"):
        test_file.test_reproduces_reference_outputs(mode)


# --- the attention decoder under tracing: a warning, never a silent wrong shape ---------------


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # T read while tracing, on purpose
def test_tracing_the_attention_decoder_warns_and_scripting_follows_t(tmp_path: Path) -> None:
    model = ZOO["attention_seq2seq"].build().to(np.float64)
    names = pytorch.assign_names(model)
    module = import_path(pytorch.export(model, tmp_path), "clients_attention").load()
    source = (tmp_path / "model.py").read_text(encoding="utf-8")
    assert "Tracing (torch.jit.trace, legacy ONNX export) would fix the sequence length" in source
    example = module_arguments(names, inputs_at(model, names, {"T": 5, "B": 4}))
    with pytest.warns(UserWarning, match=r"tracing unrolls the decoder loop .* T=5"):
        torch.jit.trace(module, example, check_trace=False)
    scripted = torch.jit.script(module)
    for steps in (1, 5, 9):
        spec_input = inputs_at(model, names, {"T": steps, "B": 4})
        with torch.no_grad():
            y = scripted(*module_arguments(names, spec_input))
        assert tuple(y.shape) == (steps, 4, 4)
        assert_matches(y, model(spec_input), np.float64)


# --- ruff, with its default settings, on every generated file ---------------------------------


def _ruff() -> list[str] | None:
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    found = shutil.which("ruff")
    return [found] if found else None


def test_generated_sources_pass_ruff_with_default_settings(tmp_path: Path) -> None:
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install ruff, or the 'dev' extra)")
    files = []
    for name, build in sorted(MODELS.items()):
        model = build()
        example = inputs_at(model, pytorch.assign_names(model), {"T": 2, "B": 1}, name)
        files.append(str(pytorch.export(model, tmp_path / name, example=example)))
    assert len(files) == len(MODELS)
    for command in (["check", "--isolated"], ["format", "--isolated", "--check", "--diff"]):
        result = subprocess.run(
            [*ruff, *command, *files], capture_output=True, text=True, check=False, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr


# --- legacy ONNX export with dynamic T and B, run by onnxruntime ----------------------------


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_runs_in_onnxruntime_with_dynamic_t_and_b(name: str, tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="onnx is not installed (the 'test' extra has it)")
    ort = pytest.importorskip(
        "onnxruntime", reason="onnxruntime is not installed (the 'test' extra)"
    )
    model = ZOO[name].build()  # float32: onnxruntime's LSTM kernel has no float64
    names = pytorch.assign_names(model)
    module = import_path(pytorch.export(model, tmp_path), f"onnx_{name}").load()
    if has_decoder_loop(model):  # a trace would unroll the loop: export the scripted module
        module = torch.jit.script(module)
    example = module_arguments(names, inputs_at(model, names, {"T": 5, "B": 3}))
    axes = {a: {0: "S" if a == "source" else "T", 1: "B"} for a in names.arguments}
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(
            module,
            example,
            str(path),
            input_names=list(names.arguments),
            output_names=["output"],
            dynamic_axes=axes,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for sizes in OTHER_SIZES:
        spec_input = inputs_at(model, names, sizes)
        feed = {a: np.asarray(v) for a, v in zip(names.arguments, _items(names, spec_input))}
        (got,) = session.run(None, feed)
        assert_matches(torch.from_numpy(got), model(spec_input), np.float32)


def _items(names: pytorch.Names, spec_input: Any) -> tuple[Any, ...]:
    return tuple(spec_input) if len(names.arguments) > 1 else (spec_input,)


# --- a golden file, reviewed by eye ----------------------------------------------------------


def golden_model() -> sc.SpecChain:
    """A small bidirectional classifier: LSTMs, an inline flip, cat and last step, a head. The
    lanes differ in size, so they stay two modules (equal lanes fuse into one
    ``nn.LSTM(bidirectional=True)``, test_pytorch_fusion.py)."""
    sc.seed(0)
    both = sc.branch(LSTM(4, 5), Reverse() >> LSTM(4, 6) >> Reverse()) >> Concat()
    return both >> LastStep() >> Linear(11, 3, name="head")


def test_golden_export() -> None:
    source = pytorch.to_source(golden_model(), "BiClassifier", source="golden_model()")
    regenerate = (
        f"the export of golden_model() differs from {GOLDEN}; if the change is intended, "
        'regenerate it with: python -c "from tests.exporters.test_pytorch_clients import '
        'write_golden; write_golden()" and review the diff by eye'
    )
    assert source == GOLDEN.read_text(encoding="utf-8"), regenerate


def write_golden() -> None:
    """Rewrite the golden file from the current exporter (then review ``git diff``)."""
    source = pytorch.to_source(golden_model(), "BiClassifier", source="golden_model()")
    GOLDEN.write_text(source, encoding="utf-8")


# --- a hand-written checkpoint, loaded with a key map ----------------------------------------


class HandWritten(torch.nn.Module):
    """What a PyTorch user writes for ``zoo.seq2seq(8, 32, 4)``, under other names."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.LSTM(8, 32)
        self.fc = torch.nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.fc(out)


def test_load_checkpoint_with_a_key_map(tmp_path: Path) -> None:
    module = import_path(pytorch.export(ZOO["seq2seq"].build(), tmp_path), "ckpt").load()
    theirs = HandWritten().eval()
    module.load_checkpoint(
        theirs.state_dict(),
        key_map={"rnn.": "lstm.", "fc.weight": "head.weight", "fc.bias": "head.bias"},
    )
    x = torch.randn(6, 2, 8)
    with torch.no_grad():
        torch.testing.assert_close(module(x), theirs(x), rtol=0, atol=0)


def test_load_checkpoint_lists_unmatched_keys_and_suggests_a_map(tmp_path: Path) -> None:
    module = import_path(pytorch.export(ZOO["seq2seq"].build(), tmp_path), "ckpt_bad").load()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(RuntimeError) as caught:
        module.load_checkpoint(HandWritten().state_dict(), key_map={"rnn.": "lstm."})
    message = str(caught.value)
    assert "checkpoint keys do not match Model: missing ['head.weight', 'head.bias']" in message
    assert "unexpected ['fc.weight', 'fc.bias']" in message
    assert "key_map={'fc.weight': 'head.weight', 'fc.bias': 'head.bias'}" in message
    for key, value in module.state_dict().items():  # nothing was loaded
        assert torch.equal(value, before[key]), key


# --- the helper classes that remain ------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "text"),
    [
        (torch_helpers.Reverse(0), "Reverse(axis=0, batch_axis=1)"),
        (torch_helpers.LastStep(1, 0), "LastStep(axis=1, batch_axis=0)"),
        (torch_helpers.ScaledDropout(0.25), "ScaledDropout(p=0.25)"),
        (torch_helpers.MaskedDropout(0.5), "MaskedDropout(p=0.5)"),
        (torch_helpers.OneHot(7), "OneHot(num_classes=7)"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, torch.nn.Module) else "",
)
def test_helpers_show_their_arguments_and_script(module: torch.nn.Module, text: str) -> None:
    assert repr(module) == text
    torch.jit.script(module)


def test_the_attention_helper_shows_its_score() -> None:
    module = torch_helpers.AttentionLSTM(4, 6, 3, "dot")
    assert repr(module).startswith("AttentionLSTM(\n  score='dot'\n")
    torch.jit.script(module)
