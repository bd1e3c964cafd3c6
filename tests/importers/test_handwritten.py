"""Hand-written PyTorch models of the usual shapes import and match torch autograd: outputs,
input gradients and every parameter gradient, at the numerics contract's float64 tolerances,
with the module's ``state_dict`` names."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import specchain as sc
from specchain.importers.torch import from_torch
from tests.helpers import assert_close64
from tests.importers import handwritten

T, B = 5, 3


def _floats(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7))


CASES: dict[str, tuple[type[nn.Module], Any]] = {
    "tagger": (handwritten.Tagger, lambda: torch.randint(0, 11, (B, T))),
    "classifier": (handwritten.Classifier, lambda: _floats(T, B, 4)),
    "seq2seq": (handwritten.Seq2Seq, lambda: (_floats(T + 1, B, 4), _floats(T, B, 3))),
    "language_model": (handwritten.LanguageModel, lambda: torch.randint(0, 13, (T, B))),
    "bilstm": (handwritten.BiLSTM, lambda: _floats(T, B, 4)),
    "manual_bilstm": (handwritten.ManualBiLSTM, lambda: _floats(T, B, 4)),
    "bidirectional_classifier": (handwritten.BiClassifier, lambda: _floats(B, T, 4)),
}


def _as_tuple(x: Any) -> tuple[torch.Tensor, ...]:
    return x if isinstance(x, tuple) else (x,)


def _numpy(x: Any) -> Any:
    return tuple(t.numpy() for t in x) if isinstance(x, tuple) else x.numpy()


@pytest.mark.parametrize("name", list(CASES))
def test_hand_written_model_matches_torch_outputs_and_gradients(name: str) -> None:
    make, example = CASES[name]
    torch.manual_seed(0)
    module = make().double().eval()
    x = example()
    model = from_torch(module, x)
    assert list(model.state_dict()) == list(module.state_dict())

    inputs = [t.clone().requires_grad_(t.is_floating_point()) for t in _as_tuple(x)]
    y_torch = module(*inputs)
    dy = torch.randn(y_torch.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    y_torch.backward(dy)

    y, tape = model.forward(_numpy(x))
    dx, grads = model.backward(tape, dy.numpy())
    assert_close64(y, y_torch, "output")
    for i, (ours, given) in enumerate(zip(_as_tuple(dx), inputs, strict=True)):
        if given.is_floating_point():
            assert given.grad is not None
            assert_close64(ours, given.grad, f"input {i} gradient")
    torch_grads = {k: p.grad for k, p in module.named_parameters()}
    assert set(grads) == set(torch_grads)
    for key, grad in torch_grads.items():
        assert grad is not None
        assert_close64(grads[key], grad, key)


class Options(nn.Module):
    """Recurrent layers with their less common options, one after the other."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 6, num_layers=2, proj_size=3, bidirectional=True, bias=False)
        self.rnn = nn.RNN(6, 5, nonlinearity="relu", num_layers=2, dropout=0.3)
        self.gru = nn.GRU(5, 4, bidirectional=True, batch_first=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, (_h, _c) = self.lstm(x)
        out, _h = self.rnn(out)
        return self.gru(out, None)[0]


def test_every_recurrent_option_imports_and_matches_torch() -> None:
    module = Options().double().eval()
    x = _floats(T, B, 4)
    model = from_torch(module, x)
    lstm, rnn, gru = (model.spec(n) for n in ("lstm", "rnn", "gru"))
    assert (lstm.proj_size, lstm.bias, lstm.bidirectional, lstm.num_layers) == (3, False, True, 2)
    assert lstm.return_state is False  # out, (_h, _c) reads the output alone
    assert (rnn.nonlinearity, rnn.dropout, rnn.return_state) == ("relu", 0.3, False)
    assert (gru.bidirectional, gru.return_state) == (True, False)
    assert_close64(model(x.numpy()), module(x))


def test_import_names_nodes_after_module_paths_and_guesses_layouts() -> None:
    tagger = from_torch(handwritten.Tagger(), torch.randint(0, 11, (B, T)))
    assert tagger.nodes == ["embedding", "lstm", "dropout", "fc"]
    assert str(tagger.in_type) == "int[B, T]"
    assert str(tagger.out_type) == "[B, T, 5]"
    seq2seq = from_torch(handwritten.Seq2Seq(), (torch.randn(6, B, 4), torch.randn(T, B, 3)))
    assert seq2seq.in_type.names == ("source", "target")
    classifier = from_torch(handwritten.Classifier(), torch.randn(T, B, 4))
    assert classifier.nodes == ["gru", "last_step", "norm", "head.0", "head.1", "head.2"]
    assert classifier.dtype == np.float32


def test_import_keeps_the_state_and_dropout_options_of_recurrent_layers() -> None:
    lm = from_torch(handwritten.LanguageModel(), torch.randint(0, 13, (T, B)))
    rnn = lm.spec("rnn")
    assert (rnn.num_layers, rnn.dropout, rnn.return_state) == (2, 0.5, False)
    seq2seq = from_torch(handwritten.Seq2Seq(), (torch.randn(6, B, 4), torch.randn(T, B, 3)))
    assert seq2seq.spec("encoder").return_state is True
    assert seq2seq.spec("decoder").return_state is False


def test_a_module_called_twice_shares_its_parameters() -> None:
    model = from_torch(handwritten.BiLSTM(), torch.randn(T, B, 4))
    assert "proj_1" in model.nodes
    assert model.spec("proj_1").params is model.spec("proj").params
    assert [k for k in model.state_dict() if k.startswith("proj")] == ["proj.weight", "proj.bias"]


class WithDefaults(nn.Module):
    """``forward(x, lengths=None, flip=False)``: arguments past the examples keep defaults."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 5)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None, flip: bool = False
    ) -> torch.Tensor:
        if flip:
            x = torch.flip(x, [0])
        out, _ = self.lstm(x)
        return out if lengths is None else out * 0


def test_arguments_past_the_examples_keep_their_defaults() -> None:
    module = WithDefaults().double()
    x = _floats(T, B, 4)
    model = from_torch(module, x)
    assert model.nodes == ["lstm"]
    assert str(model.in_type) == "[T, B, 4]"
    assert_close64(model(x.numpy()), module(x))


def test_explicit_input_types_replace_the_guess() -> None:
    module = handwritten.Classifier()
    model = from_torch(module, torch.randn(T, B, 4), input_types=("T", 2, 4))
    assert str(model.in_type) == "[T, 2, 4]"
    sc.seed(0)  # the guess names T and B
    assert str(from_torch(module, torch.randn(T, B, 4)).in_type) == "[T, B, 4]"


def test_a_bare_layer_is_a_one_node_chain_named_after_its_class() -> None:
    lstm = nn.LSTM(4, 5, num_layers=2).double()
    x = _floats(T, B, 4)
    model = from_torch(lstm, x)
    assert model.nodes == ["lstm"]
    assert model.spec("lstm").return_state is True  # nothing says the state is unused
    assert list(model.state_dict()) == [f"lstm.{key}" for key in lstm.state_dict()]
    out, (h, c) = model(x.numpy())
    out_t, (h_t, c_t) = lstm(x)
    for ours, theirs in ((out, out_t), (h, h_t), (c, c_t)):
        assert_close64(ours, theirs)
