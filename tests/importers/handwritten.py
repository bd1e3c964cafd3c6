"""PyTorch models as people write them, for the import tests (and the CLI test's model file).

Each class takes no arguments (sizes are small defaults) and documents its input.
"""

from __future__ import annotations

import torch
from torch import nn


class Tagger(nn.Module):
    """Batch-first token tagger: tokens ``int[B, T]`` -> tag logits ``[B, T, 5]``."""

    def __init__(self, vocab: int = 11, embed: int = 6, hidden: int = 7, tags: int = 5) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=0)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(hidden, tags)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(tokens))
        return self.fc(self.dropout(out))


class Classifier(nn.Module):
    """Many-to-one: ``[T, B, 4]`` -> logits ``[B, 3]`` from the last layer's final state."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 6, num_layers=2, dropout=0.2)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(x)
        return self.head(self.norm(h[-1]))


class Seq2Seq(nn.Module):
    """Encoder-decoder: ``(source [S, B, 4], target [T, B, 3])`` -> ``[T, B, 2]``; the encoder's
    final ``(h, c)`` starts the decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.LSTM(4, 5)
        self.decoder = nn.LSTM(3, 5)
        self.out = nn.Linear(5, 2)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _, (h, c) = self.encoder(source)
        out, _ = self.decoder(target, (h, c))
        return self.out(out)


class LanguageModel(nn.Module):
    """Embedding, 2-layer LSTM and projection with tied sizes (embedding = hidden):
    tokens ``int[T, B]`` -> logits ``[T, B, 13]``."""

    def __init__(self, vocab: int = 13, size: int = 6) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab, size)
        self.drop = nn.Dropout(0.5)
        self.rnn = nn.LSTM(size, size, num_layers=2, dropout=0.5)
        self.decoder = nn.Linear(size, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.drop(self.encoder(tokens)))
        return self.decoder(self.drop(out))


class BiLSTM(nn.Module):
    """Bidirectional tagger over features: ``[T, B, 4]`` -> ``[T, B, 3]``; one head (shared
    weights) reads the outputs in order and reversed."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 5, bidirectional=True)
        self.proj = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return torch.tanh(self.proj(out)) + self.proj(torch.flip(out, [0]))


class ManualBiLSTM(nn.Module):
    """Bi-LSTM written out: a forward LSTM, a backward one on ``torch.flip``, ``torch.cat``:
    ``[T, B, 4]`` -> ``[B, 2]`` from the last step."""

    def __init__(self) -> None:
        super().__init__()
        self.forward_lstm = nn.LSTM(4, 3)
        self.backward_lstm = nn.RNN(4, 3, nonlinearity="relu")
        self.cell = nn.LSTMCell(6, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fwd, _ = self.forward_lstm(x)
        bwd = torch.flip(self.backward_lstm(torch.flip(x, [0]))[0], [0])
        both = torch.cat([fwd, bwd], dim=-1)
        h, _ = self.cell(both[-1])
        return self.head(torch.sigmoid(h))


class BiClassifier(nn.Module):
    """Bidirectional many-to-one, the usual way: both directions' final states,
    ``torch.cat((h[-2], h[-1]), dim=1)``: ``[B, T, 4]`` (batch-first) -> ``[B, 2]``."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 5, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(10, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return self.fc(torch.cat((h[-2], h[-1]), dim=1))
