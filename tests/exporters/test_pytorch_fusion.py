"""Structural fusion in the PyTorch export (``specchain/exporters/pytorch/fusion.py``): exact or
not applied. Every fused export verifies against the spec in float64 (outputs, input and every
parameter gradient), and so does every near miss, which stays unfused; the fused state_dict is
exactly a hand-written module's."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import specchain as sc
from specchain.examples import example_input
from specchain.exporters import pytorch
from specchain.exporters.pytorch import arguments, fusion
from specchain.models import zoo
from specchain.modules import (
    GRU,
    LSTM,
    RNN,
    Concat,
    Dropout,
    Linear,
    Reverse,
    Select,
    Tanh,
)
from specchain.padded import Padded

Build = Callable[[], sc.SpecChain]


def bidirectional(make: Callable[..., Any], size: int, hidden: int, **options: Any) -> Any:
    """``branch(R, Reverse() >> R >> Reverse()) >> Concat()``: the two-lane recipe."""
    lanes = sc.branch(
        make(size, hidden, **options), Reverse() >> make(size, hidden, **options) >> Reverse()
    )
    return lanes >> Concat()


def with_lengths(layout: tuple[Any, ...], *parts: Any) -> sc.SpecChain:
    """``parts`` after an input that takes a padded batch's lengths."""
    return sc.serial(sc.Input(layout, name="x", lengths=True), *parts)


# name -> (model, the fused module's constructor in the source, its nodes before fusion)
FUSED: dict[str, tuple[Build, str, tuple[str, ...]]] = {
    "stack": (
        lambda: LSTM(8, 16) >> LSTM(16, 16) >> Linear(16, 4),
        "nn.LSTM(8, 16, num_layers=2)",
        ("lstm", "lstm_1"),
    ),
    "stack_with_dropout": (
        lambda: sc.serial(LSTM(8, 16), Dropout(0.25), LSTM(16, 16), Dropout(0.25), LSTM(16, 16)),
        "nn.LSTM(8, 16, num_layers=3, dropout=0.25)",
        ("lstm", "dropout", "lstm_1", "dropout_1", "lstm_2"),
    ),
    "stack_of_stacks": (
        lambda: sc.serial(
            LSTM(8, 16, num_layers=2, dropout=0.1),
            Dropout(0.1),
            LSTM(16, 16, num_layers=2, dropout=0.1),
        ),
        "nn.LSTM(8, 16, num_layers=4, dropout=0.1)",
        ("lstm", "dropout", "lstm_1"),
    ),
    "bidirectional": (
        lambda: bidirectional(LSTM, 8, 16) >> Linear(32, 4),
        "nn.LSTM(8, 16, bidirectional=True)",
        ("lstm", "reverse", "lstm_1", "reverse_1", "concat"),
    ),
    "bidirectional_batch_first": (
        lambda: bidirectional(LSTM, 8, 16, batch_first=True) >> Linear(32, 4),
        "nn.LSTM(8, 16, batch_first=True, bidirectional=True)",
        ("lstm", "reverse", "lstm_1", "reverse_1", "concat"),
    ),
    "bidirectional_stack": (
        lambda: bidirectional(LSTM, 8, 16) >> Dropout(0.2) >> bidirectional(LSTM, 32, 16),
        "nn.LSTM(8, 16, num_layers=2, dropout=0.2, bidirectional=True)",
        (
            "lstm",
            "reverse",
            "lstm_1",
            "reverse_1",
            "concat",
            "dropout",
            "lstm_2",
            "reverse_2",
            "lstm_3",
            "reverse_3",
            "concat_1",
        ),
    ),
    "projected_stack": (
        lambda: LSTM(8, 16, proj_size=4) >> LSTM(4, 16, proj_size=4),
        "nn.LSTM(8, 16, num_layers=2, proj_size=4)",
        ("lstm", "lstm_1"),
    ),
    "gru_stack": (
        lambda: GRU(8, 16) >> Dropout(0.5) >> GRU(16, 16) >> Linear(16, 4),
        "nn.GRU(8, 16, num_layers=2, dropout=0.5)",
        ("gru", "dropout", "gru_1"),
    ),
    "gru_bidirectional": (
        lambda: bidirectional(GRU, 8, 16, bias=False),
        "nn.GRU(8, 16, bias=False, bidirectional=True)",
        ("gru", "reverse", "gru_1", "reverse_1", "concat"),
    ),
    "rnn_relu_bidirectional_stack": (
        lambda: (
            bidirectional(RNN, 8, 6, nonlinearity="relu")
            >> bidirectional(RNN, 12, 6, nonlinearity="relu")
        ),
        'nn.RNN(8, 6, num_layers=2, nonlinearity="relu", bidirectional=True)',
        (
            "rnn",
            "reverse",
            "rnn_1",
            "reverse_1",
            "concat",
            "rnn_2",
            "reverse_2",
            "rnn_3",
            "reverse_3",
            "concat_1",
        ),
    ),
    "stack_with_lengths": (
        lambda: with_lengths(("T", "B", 8), LSTM(8, 16), Dropout(0.3), LSTM(16, 16)),
        "nn.LSTM(8, 16, num_layers=2, dropout=0.3)",
        ("lstm", "dropout", "lstm_1"),
    ),
    "bidirectional_with_lengths": (
        lambda: with_lengths(("T", "B", 8), bidirectional(LSTM, 8, 16), Linear(32, 4)),
        "nn.LSTM(8, 16, bidirectional=True)",
        ("lstm", "reverse", "lstm_1", "reverse_1", "concat"),
    ),
    "bidirectional_batch_first_with_lengths": (
        lambda: with_lengths(("B", "T", 8), bidirectional(GRU, 8, 16, batch_first=True)),
        "nn.GRU(8, 16, batch_first=True, bidirectional=True)",
        ("gru", "reverse", "gru_1", "reverse_1", "concat"),
    ),
}


def verified(model: sc.SpecChain) -> str:
    """The export's source, after checking it against the spec in float64."""
    model.to(np.float64)
    report = pytorch.verify(model)
    assert report.ok, report
    assert set(report.diffs) >= {"output[0]"}
    return pytorch.to_source(model)


@pytest.mark.parametrize("name", sorted(FUSED))
def test_fused_exports_verify(name: str) -> None:
    build, constructor, sources = FUSED[name]
    model = build()
    source = verified(model)
    modules = re.findall(r"self\.\w+ = nn\.(\w+)\(", source)
    assert [m for m in modules if m != "Linear"] == [
        constructor.split("(")[0].removeprefix("nn.")
    ], source
    assert constructor in source, source
    (fused,) = fusion.fuse(model).fused
    assert fused.sources == tuple(n for n in model.nodes if n in sources)  # in graph order
    assert sorted(fused.sources) == sorted(sources)
    assert f"        {fused.comment()}\n" in source  # says what was fused, above the module
    assert "class Reverse(" not in source and "class Concat(" not in source


@pytest.mark.parametrize("name", sorted(FUSED))
def test_the_fused_chain_is_the_same_function(name: str, rng: np.random.Generator) -> None:
    """In numpy too: the fused spec on the model's own arrays gives the same output and the same
    gradients, under the renamed keys."""
    model = FUSED[name][0]().to(np.float64)
    fused = fusion.fuse(model)
    names = pytorch.assign_names(model)
    x = arguments.with_example_lengths(names, model.in_type, example_input(model, rng=0))
    y, tape = model.forward(x)
    y_fused, tape_fused = fused.chain.forward(x)
    data = y.data if isinstance(y, Padded) else y
    dy = rng.standard_normal(np.shape(data))
    np.testing.assert_array_equal(data, getattr(y_fused, "data", y_fused))
    _, grads = model.backward(tape, dy)
    _, grads_fused = fused.chain.backward(tape_fused, dy)
    assert sorted(fused.keys.values()) == sorted(grads_fused)
    for ours, theirs in fused.keys.items():
        np.testing.assert_array_equal(grads[ours], grads_fused[theirs], err_msg=ours)


# name -> a model that looks fusable but is not (it would not compute the same)
NEAR_MISSES: dict[str, Build] = {
    "different_hidden_sizes": lambda: LSTM(8, 16) >> LSTM(16, 12),
    "different_bias": lambda: LSTM(8, 16) >> LSTM(16, 16, bias=False),
    "a_node_between": lambda: LSTM(8, 16) >> Tanh() >> LSTM(16, 16),
    "two_dropouts_between": lambda: LSTM(8, 16) >> Dropout(0.1) >> Dropout(0.1) >> LSTM(16, 16),
    "different_families": lambda: LSTM(8, 16) >> GRU(16, 16),
    "output_used_twice": lambda: (
        LSTM(8, 16) >> sc.branch(LSTM(16, 16), Tanh()) >> Concat() >> Linear(32, 4)
    ),
    "a_stack_with_its_own_other_dropout": lambda: (
        LSTM(8, 16, num_layers=2, dropout=0.2) >> Dropout(0.1) >> LSTM(16, 16)
    ),
    "state_out_in_the_middle": lambda: LSTM(8, 16, return_state=True) >> Select(0) >> LSTM(16, 16),
    "shared_layer": lambda: (lambda shared: LSTM(8, 16) >> shared >> shared)(LSTM(16, 16)),
    "lanes_of_different_sizes": lambda: (
        sc.branch(LSTM(8, 16), Reverse() >> LSTM(8, 12) >> Reverse()) >> Concat()
    ),
    "lanes_swapped": lambda: (
        sc.branch(Reverse() >> LSTM(8, 16) >> Reverse(), LSTM(8, 16)) >> Concat()
    ),
    "two_layer_lanes": lambda: bidirectional(LSTM, 8, 16, num_layers=2),
    "reverse_lane_not_flipped_back": lambda: (
        sc.branch(LSTM(8, 16), Reverse() >> LSTM(8, 16)) >> Concat()
    ),
    "lanes_joined_along_time": lambda: (
        sc.branch(LSTM(8, 16), Reverse() >> LSTM(8, 16) >> Reverse()) >> Concat(axis=0)
    ),
    "lanes_on_different_inputs": lambda: (
        sc.parallel(LSTM(8, 16), Reverse() >> LSTM(8, 16) >> Reverse()) >> Concat()
    ),
}


@pytest.mark.parametrize("name", sorted(NEAR_MISSES))
def test_near_misses_are_not_fused_and_still_verify(name: str) -> None:
    model = NEAR_MISSES[name]()
    plan = fusion.fuse(model)
    assert plan.fused == () and plan.chain is model
    assert plan.keys == {key: key for key in model.state_dict()}
    assert "exact fusion" not in verified(model)


def test_a_different_dropout_ends_the_stack() -> None:
    """Dropout 0.1 then 0.2: the first two layers fuse, the third stays its own module."""
    model = sc.serial(LSTM(8, 16), Dropout(0.1), LSTM(16, 16), Dropout(0.2), LSTM(16, 16))
    source = verified(model)
    assert "self.lstm = nn.LSTM(8, 16, num_layers=2, dropout=0.1)" in source
    assert "self.dropout_1 = nn.Dropout(0.2)" in source
    assert "self.lstm_2 = nn.LSTM(16, 16)" in source
    assert [f.sources for f in fusion.fuse(model).fused] == [("lstm", "dropout", "lstm_1")]


# --- state_dicts of hand-written modules --------------------------------------------------------


class TwoLayerTagger(nn.Module):
    """What a PyTorch engineer writes for the zoo's ``two_layer``."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=2)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out)


class BiTagger(nn.Module):
    """A bidirectional tagger with PyTorch's usual attribute names."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, bidirectional=True)
        self.fc = nn.Linear(2 * hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out)


def check_hand_written(model: sc.SpecChain, hand: nn.Module, x: np.ndarray) -> None:
    """The hand-written module's state_dict loads into the export with ``strict=True`` and into
    the spec (``load_torch_state``); all three then compute the same."""
    hand = hand.double()
    model.to(np.float64)
    exported = pytorch.build_torch_module(model)
    assert list(exported.state_dict()) == list(hand.state_dict())
    exported.load_state_dict(hand.state_dict(), strict=True)
    pytorch.load_torch_state(model, hand)
    with torch.no_grad():
        expected = hand(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(exported(torch.from_numpy(x)).numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(model(x), expected, rtol=0, atol=1e-12)


def test_zoo_two_layer_loads_a_hand_written_two_layer_lstm(rng: np.random.Generator) -> None:
    model = zoo.two_layer(8, 16, 4)
    source = pytorch.to_source(model)
    assert "self.lstm = nn.LSTM(8, 16, num_layers=2)" in source
    assert "self.lstm1" not in source and "self.lstm2" not in source
    check_hand_written(model, TwoLayerTagger(8, 16, 4), rng.standard_normal((5, 3, 8)))


def test_lstm_lanes_load_a_hand_written_bidirectional_lstm(rng: np.random.Generator) -> None:
    model = sc.serial(
        sc.branch(LSTM(8, 16), Reverse() >> LSTM(8, 16, name="backward") >> Reverse()),
        Concat(),
        Linear(32, 4, name="fc"),
    )
    check_hand_written(model, BiTagger(8, 16, 4), rng.standard_normal((5, 3, 8)))
    assert pytorch.assign_names(model).state_key(model, "backward.weight_hh_l0") == (
        "lstm.weight_hh_l0_reverse"
    )


def test_zoo_bilstm_is_one_bidirectional_lstm(rng: np.random.Generator) -> None:
    model = zoo.bilstm(8, 16, 4, head_name="fc")
    assert "self.lstm = nn.LSTM(8, 16, bidirectional=True)" in pytorch.to_source(model)
    check_hand_written(model, BiTagger(8, 16, 4), rng.standard_normal((5, 3, 8)))


def test_one_composite_node_exports_without_a_prefix() -> None:
    """The attention model's exported class is the attention module: ``encoder.weight_ih_l0``,
    the keys of a hand-written encoder/decoder, with and without lengths."""
    from specchain.exporters.pytorch import torch_helpers

    hand = torch_helpers.AttentionLSTM(8, 16, 4).double()
    for lengths in (False, True):
        model = zoo.attention_seq2seq(8, 16, 4, lengths=lengths)
        source = verified(model)
        assert "class Model(AttentionLSTM):" in source
        assert "super().__init__(8, 16, 4)" in source
        exported = pytorch.build_torch_module(model)
        assert list(exported.state_dict()) == list(hand.state_dict())
        assert "encoder.weight_ih_l0" in exported.state_dict()
        exported.load_state_dict(hand.state_dict(), strict=True)
        pytorch.load_torch_state(model, hand)
        np.testing.assert_array_equal(
            model.state_dict()["attention.decoder.weight_ih"], hand.decoder.weight_ih.detach()
        )


def test_a_single_native_module_keeps_its_attribute() -> None:
    """One ``nn.LSTM`` is not a composite: a hand-written wrapper has ``self.lstm``."""
    keys = pytorch.build_torch_module(LSTM(4, 3).as_chain()).state_dict()
    assert list(keys) == [
        "lstm.weight_ih_l0",
        "lstm.weight_hh_l0",
        "lstm.bias_ih_l0",
        "lstm.bias_hh_l0",
    ]


# --- names, files, saving -----------------------------------------------------------------------


def test_fused_node_names() -> None:
    """The first layer's name without its layer number; the family's name when that leaves
    less than two characters; unique among the other nodes."""
    cases = {
        ("lstm1", "lstm2"): "lstm",
        ("encoder_1", "encoder_2"): "encoder",
        ("l0", "l1"): "lstm",
        ("first", "second"): "first",
    }
    for (a, b), expected in cases.items():
        model = LSTM(8, 16, name=a) >> LSTM(16, 16, name=b)
        assert fusion.fuse(model).chain.nodes == [expected]
    taken = LSTM(8, 16, name="lstm1") >> LSTM(16, 16, name="lstm2") >> Linear(16, 4, name="lstm")
    assert fusion.fuse(taken).chain.nodes == ["lstm_1", "lstm"]


def test_hostile_names_appear_only_repred() -> None:
    names = ("a\u2028b", "it's \"", "Model")
    model = sc.serial(
        LSTM(4, 3, name=names[0]), Dropout(0.5, name=names[1]), LSTM(3, 3, name=names[2])
    ).to(np.float64)
    source = pytorch.to_source(model)
    tree = ast.parse(source)  # a name never breaks out of its comment
    assert len(source.splitlines()) == len(source.split("\n")) - 1
    assert f"# exact fusion of nodes {', '.join(map(repr, names))}: nn.LSTM(" in source
    module = pytorch.load_module_class(source, "Model")
    node_names = next(
        ast.literal_eval(s.value)
        for s in tree.body
        if isinstance(s, ast.Assign) and ast.unparse(s.targets[0]) == "NODE_NAMES"
    )
    assert list(node_names.values()) == [names]
    assert module is not None
    assert pytorch.verify(model).ok


def test_export_files_and_saving_work_fused(tmp_path: Path) -> None:
    """``export`` writes the fused keys and its generated test passes; ``sc.save`` keeps the
    spec's own names, and the loaded model exports the same."""
    model = zoo.two_layer(8, 16, 4, lengths=True)
    keys = pytorch.torch_state(model, pytorch.assign_names(model))
    assert "lstm.weight_ih_l1" in keys and "lstm2.weight_ih_l0" not in keys
    pytorch.export(model, tmp_path / "export")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_model.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path / "export",
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    model.save(tmp_path / "m.safetensors")
    loaded = sc.load(tmp_path / "m.safetensors")
    assert "lstm2.weight_ih_l0" in loaded.state_dict()
    assert pytorch.to_source(loaded) == pytorch.to_source(model)
