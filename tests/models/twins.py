"""Hand-written PyTorch twins of the zoo models, for autograd parity.

Each twin is an ``nn.Module`` built only from ``nn.LSTM``, ``nn.LSTMCell``, ``nn.Linear``,
``nn.Embedding`` and ``nn.Dropout``, takes the same constructor arguments as its zoo builder, and
names its submodules so that its ``state_dict`` keys are exactly our chain's: loading our
``m.state_dict()`` with ``strict=True`` proves the names, shapes and layouts are PyTorch's. The
attention twin writes out the equations of ``specchain/modules/attention.py`` by hand.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class Seq2SeqTwin(nn.Module):
    """``zoo.seq2seq``: LSTM, then a per-timestep head."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return self.head(y)


class ClassifierTwin(nn.Module):
    """``zoo.classifier``: the head on the last timestep's output."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return self.head(y[-1])


class TwoLayerTwin(nn.Module):
    """``zoo.two_layer``: two separate ``nn.LSTM`` modules and a head."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.lstm1 = nn.LSTM(input_size, hidden_size)
        self.lstm2 = nn.LSTM(hidden_size, hidden_size)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm1(x)
        y, _ = self.lstm2(y)
        return self.head(y)


class StackedTwin(nn.Module):
    """``zoo.stacked``: one ``nn.LSTM(num_layers=N, dropout=p)`` and a head."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        num_layers: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, dropout=dropout)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return self.head(y)


class LanguageModelTwin(nn.Module):
    """``zoo.language_model``: embedding (``nn.Embedding``, or a bias-free ``nn.Linear`` on
    one-hot vectors), ``nn.LSTM`` stack, ``nn.Dropout``, projection to the vocabulary."""

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        one_hot: bool = False,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.one_hot = one_hot
        self.embedding: nn.Module = (
            nn.Linear(vocab_size, hidden_size, bias=False)
            if one_hot
            else nn.Embedding(vocab_size, hidden_size)
        )
        self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers=num_layers, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.one_hot:
            dtype = self.projection.weight.dtype
            x = self.embedding(nn.functional.one_hot(tokens, self.vocab_size).to(dtype))
        else:
            x = self.embedding(tokens)
        y, _ = self.lstm(x)
        return self.projection(self.dropout(y))


class BiLSTMTwin(nn.Module):
    """``zoo.bilstm``: ``nn.LSTM(bidirectional=True)`` and a head on both directions."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, bidirectional=True)
        self.head = nn.Linear(2 * hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return self.head(y)


class AttentionCore(nn.Module):
    """The equations of ``AttentionLSTM`` (``specchain/modules/attention.py``), written out::

    e, (h, c) = encoder(source)
    score_{t,j} = attention_weights([h_{t-1}; e_j]);  alpha_t = softmax_j(score_t)
    ctx_t = sum_j alpha_{t,j} e_j
    h_t, c_t = decoder([x_t; ctx_t], (h_{t-1}, c_{t-1}));  y_t = output(h_t)
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.encoder = nn.LSTM(input_size, hidden_size)
        self.decoder = nn.LSTMCell(input_size + hidden_size, hidden_size)
        self.attention_weights = nn.Linear(2 * hidden_size, 1)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, source: torch.Tensor, decoder_inputs: torch.Tensor) -> torch.Tensor:
        enc, (h, c) = self.encoder(source)  # enc [S, B, H]
        h, c = h[0], c[0]
        hs = []
        for x_t in decoder_inputs:
            pair = torch.cat([h.unsqueeze(0).expand_as(enc), enc], dim=2)  # [S, B, 2H]
            alpha = torch.softmax(self.attention_weights(pair).squeeze(2), dim=0)  # [S, B]
            context = (alpha.unsqueeze(2) * enc).sum(dim=0)  # [B, H]
            h, c = self.decoder(torch.cat([x_t, context], dim=1), (h, c))
            hs.append(h)
        return self.output(torch.stack(hs))


class AttentionSeq2SeqTwin(nn.Module):
    """``zoo.attention_seq2seq``: the attention core as the submodule ``attention`` (keys
    ``attention.encoder.weight_ih_l0``, ``attention.decoder.weight_ih``, ...)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.attention = AttentionCore(input_size, hidden_size, output_size)

    def forward(self, source: torch.Tensor, decoder_inputs: torch.Tensor) -> torch.Tensor:
        return self.attention(source, decoder_inputs)


TWINS: dict[str, Callable[..., nn.Module]] = {
    "seq2seq": Seq2SeqTwin,
    "classifier": ClassifierTwin,
    "two_layer": TwoLayerTwin,
    "stacked": StackedTwin,
    "language_model": LanguageModelTwin,
    "bilstm": BiLSTMTwin,
    "attention_seq2seq": AttentionSeq2SeqTwin,
}
"""Zoo builder name -> twin class (same constructor arguments as the builder)."""
