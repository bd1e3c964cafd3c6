"""The zoo builders take their layers' names, so an export's attributes and ``state_dict`` keys
are a hand-written model's (``self.embedding``, ``self.lstm``, ``self.fc``); the defaults are
unchanged."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from specchain import SpecChain
from specchain.exporters import pytorch
from specchain.models import zoo

# builder -> (its default node names, its node names with every name given, the export's attributes)
NAMED: dict[str, tuple[Callable[..., SpecChain], list[str], list[str], list[str]]] = {
    "seq2seq": (
        lambda **names: zoo.seq2seq(8, 6, 4, **names),
        ["lstm", "head"],
        ["rnn", "fc"],
        ["rnn", "fc"],
    ),
    "classifier": (
        lambda **names: zoo.classifier(8, 6, 3, cell="gru", **names),
        ["gru", "last_step", "head"],
        ["rnn", "last_step", "fc"],
        ["rnn", "fc"],  # the last step is inline: rnn[-1]
    ),
    "two_layer": (
        lambda **names: zoo.two_layer(8, 6, 4, **names),
        ["lstm1", "lstm2", "head"],
        ["rnn1", "rnn2", "fc"],
        ["rnn", "fc"],  # one nn.LSTM(num_layers=2)
    ),
    "stacked": (
        lambda **names: zoo.stacked(8, 6, 4, num_layers=2, **names),
        ["lstm", "head"],
        ["rnn", "fc"],
        ["rnn", "fc"],
    ),
    "bilstm": (
        lambda **names: zoo.bilstm(8, 6, 4, **names),
        ["lstm", "head"],
        ["rnn", "fc"],
        ["rnn", "fc"],
    ),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_builders_take_layer_names(name: str) -> None:
    build, defaults, given, attributes = NAMED[name]
    assert build().nodes == defaults
    model = build(recurrent_name="rnn", head_name="fc")
    assert model.nodes == given
    source = pytorch.to_source(model)
    for attribute in attributes:
        assert f"        self.{attribute} = " in source, source
    keys = pytorch.build_torch_module(model).state_dict()
    assert {key.split(".")[0] for key in keys} == {"rnn", "fc"}


def test_language_model_names() -> None:
    assert zoo.language_model(20, 8).nodes == ["embedding", "lstm", "dropout", "projection"]
    model = zoo.language_model(
        20, 8, num_layers=2, embedding_name="embed", recurrent_name="rnn", head_name="fc"
    )
    assert model.nodes == ["embed", "rnn", "dropout", "fc"]
    one_hot = zoo.language_model(20, 8, one_hot=True, embedding_name="embed")
    assert "embed" in one_hot.nodes


class Tagger(nn.Module):
    """A hand-written tagger, attribute names as PyTorch users write them."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 8)
        self.lstm = nn.LSTM(8, 8, num_layers=2)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(8, 20)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(tokens))
        return self.fc(self.dropout(out))


def test_a_named_language_model_loads_a_hand_written_checkpoint(
    rng: np.random.Generator,
) -> None:
    hand = Tagger().double().eval()
    model = zoo.language_model(20, 8, num_layers=2, head_name="fc").to(np.float64)
    exported = pytorch.build_torch_module(model)
    exported.load_state_dict(hand.state_dict(), strict=True)
    pytorch.load_torch_state(model, hand)
    tokens = rng.integers(0, 20, size=(5, 3))
    with torch.no_grad():
        expected = hand(torch.from_numpy(tokens)).numpy()
    np.testing.assert_allclose(model(tokens), expected, rtol=0, atol=1e-12)
