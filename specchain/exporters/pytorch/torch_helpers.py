"""Small PyTorch modules for the specs that have no native ``torch.nn`` twin.

The exporter reads this file as text (``emitters.helper_classes``, with ``ast``; it never imports
it, so exporting needs no torch) and copies the classes a model needs into the generated
``model.py``. Each class must therefore be self-contained: it may use only ``torch``, ``nn``,
``F`` and ``warnings``, and be ``torch.jit.script``-able. Lines stay within 88 columns (ruff's
default) so that the generated file passes ``ruff format --check`` as it is. Keeping them here,
as real code, lets the tests import and check them directly. An emitter names the class it
needs with ``pytorch.helper("Reverse", axis)``. One-line operations (``torch.cat``, ``x[-1]``)
are written inline by their emitters, not here.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn


class Reverse(nn.Module):
    """Flip the time axis: ``y[t] = x[T - 1 - t]``; with ``lengths``, each sequence
    within its length (its padding stays in place)."""

    def __init__(self, axis: int, batch_axis: int = 1) -> None:
        super().__init__()
        self.axis = axis
        self.batch_axis = batch_axis

    def extra_repr(self) -> str:
        return f"axis={self.axis}, batch_axis={self.batch_axis}"

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if lengths is None:
            return torch.flip(x, dims=(self.axis,))
        steps = torch.arange(x.shape[self.axis], device=x.device)
        shape = [1] * x.dim()
        shape[self.axis] = x.shape[self.axis]
        steps = steps.view(shape)
        shape = [1] * x.dim()
        shape[self.batch_axis] = lengths.shape[0]
        ends = lengths.to(x.device).view(shape)
        order = torch.where(steps < ends, ends - 1 - steps, steps)
        return x.gather(self.axis, order.expand_as(x))


class LastStep(nn.Module):
    """The last time step: ``[T, B, F]`` -> ``[B, F]``; with ``lengths``, each
    sequence's last valid step."""

    def __init__(self, axis: int, batch_axis: int = 1) -> None:
        super().__init__()
        self.axis = axis
        self.batch_axis = batch_axis

    def extra_repr(self) -> str:
        return f"axis={self.axis}, batch_axis={self.batch_axis}"

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if lengths is None:
            return x.select(self.axis, -1)
        shape = [1] * x.dim()
        shape[self.batch_axis] = lengths.shape[0]
        last = (lengths.to(x.device) - 1).view(shape)
        index = last.expand_as(x.narrow(self.axis, 0, 1))
        return x.gather(self.axis, index).squeeze(self.axis)


class ScaledDropout(nn.Module):
    """TorchLean's deterministic dropout: ``y = (1 - p) * x``, training or not."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1.0 - self.p)


class MaskedDropout(nn.Module):
    """Dropout with a given 0/1 keep mask: ``(x, keep)`` -> ``x * keep / (1 - p)``
    in training. The mask is data, not a variable: no gradient flows into it (as in
    the spec)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, keep = inputs
        if not self.training or self.p == 0.0:
            return x
        scale = 0.0 if self.p >= 1.0 else 1.0 / (1.0 - self.p)
        return x * (keep.detach().to(x.dtype) * scale)


class OneHot(nn.Module):
    """Integer indices (any integer dtype) -> one-hot vectors in the module's dtype."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        # follows .double() / .to(dtype) like a parameter would, but is not saved
        self.register_buffer("dtype_probe", torch.zeros(()), persistent=False)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(x.long(), self.num_classes)
        return one_hot.to(self.dtype_probe.dtype)


class AttentionLSTM(nn.Module):
    """Encoder LSTM, attention over its outputs, LSTMCell decoder on [input; context].

    ``(source [S, B, I], decoder_inputs [T, B, I])`` -> ``[T, B, O]``. ``score`` of the
    decoder state ``s [B, H]`` against each encoder output ``e_j``: ``"concat"``
    ``w^T [s; e_j] + b``, ``"dot"`` ``s . e_j`` (Luong et al. 2015), ``"general"``
    ``s^T W_a e_j`` (Luong et al. 2015), ``"additive"`` ``v^T tanh(W [s; e_j] + b)``
    (Bahdanau et al. 2015). A score without a layer keeps ``nn.Identity`` in its place
    (no parameters), so every branch scripts.

    The decoder loops over the T decoder steps. ``torch.jit.trace`` (and the legacy
    ONNX export, which traces) records the loop unrolled for the traced T and would
    return that T at any other: tracing warns. Use ``torch.jit.script`` instead.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        score: str = "concat",
    ) -> None:
        super().__init__()
        self.score = score
        self.encoder = nn.LSTM(input_size, hidden_size)
        self.decoder = nn.LSTMCell(input_size + hidden_size, hidden_size)
        self.attention_weights: nn.Module = nn.Identity()
        self.attention_v: nn.Module = nn.Identity()
        if score == "concat":
            self.attention_weights = nn.Linear(2 * hidden_size, 1)
        elif score == "general":
            self.attention_weights = nn.Linear(hidden_size, hidden_size, bias=False)
        elif score == "additive":
            self.attention_weights = nn.Linear(2 * hidden_size, hidden_size)
            self.attention_v = nn.Linear(hidden_size, 1, bias=False)
        self.output = nn.Linear(hidden_size, output_size)

    def extra_repr(self) -> str:
        return f"score={self.score!r}"

    def forward(
        self,
        inputs: tuple[torch.Tensor, torch.Tensor],
        source_lengths: torch.Tensor | None = None,
        decoder_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self._forward_impl(inputs, source_lengths, decoder_lengths)

    def _forward_impl(  # a model that is this module alone subclasses it and calls this
        self,
        inputs: tuple[torch.Tensor, torch.Tensor],
        source_lengths: torch.Tensor | None = None,
        decoder_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        source, decoder_inputs = inputs
        if torch.jit.is_tracing():
            warnings.warn(
                "AttentionLSTM: tracing unrolls the decoder loop for the traced "
                f"decoder length T={decoder_inputs.shape[0]}; the trace returns that "
                "length at any other T. Script the module (torch.jit.script) instead.",
                stacklevel=2,
            )
        if source_lengths is None:
            encoded, (h, c) = self.encoder(source)
        else:  # packed: each source stops at its length, attention never looks past it
            packed = nn.utils.rnn.pack_padded_sequence(
                source,
                source_lengths.cpu(),
                enforce_sorted=False,
            )
            packed_out, (h, c) = self.encoder(packed)
            encoded, _ = nn.utils.rnn.pad_packed_sequence(
                packed_out,
                total_length=source.shape[0],
            )
        h, c = h[0], c[0]
        steps = torch.arange(source.shape[0], device=source.device)
        if source_lengths is None:  # every source step is valid
            ends = torch.full_like(h[:, 0], source.shape[0], dtype=torch.long)
        else:
            ends = source_lengths.to(source.device)
        padding = steps[:, None] >= ends[None, :]  # [S, B]: True past each source
        states: list[torch.Tensor] = []
        for t in range(decoder_inputs.shape[0]):
            if self.score == "dot":
                scores = torch.einsum("bh,sbh->sb", h, encoded)
            elif self.score == "general":
                weighted = self.attention_weights(encoded)
                scores = torch.einsum("bh,sbh->sb", h, weighted)
            else:  # concat or additive: a layer on [s; e_j]
                pairs = torch.cat([h.expand_as(encoded), encoded], dim=2)
                pairs = self.attention_weights(pairs)
                if self.score == "additive":
                    pairs = self.attention_v(torch.tanh(pairs))
                scores = pairs[..., 0]
            scores = scores.masked_fill(padding, float("-inf"))
            alpha = torch.softmax(scores, dim=0)
            context = torch.einsum("sb,sbh->bh", alpha, encoded)
            step_input = torch.cat([decoder_inputs[t], context], dim=1)
            h, c = self.decoder(step_input, (h, c))
            states.append(h)
        y = self.output(torch.stack(states))
        if decoder_lengths is not None:  # zero past each target length
            steps_out = torch.arange(y.shape[0], device=y.device)
            valid = steps_out[:, None] < decoder_lengths.to(y.device)[None, :]
            y = y * valid.to(y.dtype)[..., None]
        return y
