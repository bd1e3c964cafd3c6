"""``AttentionLSTM(score=...)``: the concat, Luong dot and general, and Bahdanau additive scores.
Each matches a hand-written torch twin under autograd (float32 and float64, with source and
decoder lengths), passes finite differences (with and without lengths), exports to a module that
``verify`` accepts, survives a save/load round trip; the default is the concat scorer as before,
and an unknown score is refused with the choices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import specchain as sc
from specchain.exporters import pytorch
from specchain.modules.attention import AttentionLSTM
from specchain.padded import Padded
from specchain.spec import Context
from tests.helpers import TOLERANCES, assert_close, load_torch, one_torch_thread, torch_from

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

IN, HID, OUT = 3, 4, 2
SCORES = ["concat", "dot", "general", "additive"]
SOURCE_LENGTHS = np.array([5, 2, 1, 4], np.int64)  # S = 5, unsorted, one of length 1
TARGET_LENGTHS = np.array([2, 4, 3, 1], np.int64)  # T = 4
PARAMETERS = {  # the attention parameters of each score, by name and shape (H = 4)
    "concat": {"attention_weights.weight": (1, 8), "attention_weights.bias": (1,)},
    "dot": {},
    "general": {"attention_weights.weight": (4, 4)},
    "additive": {
        "attention_weights.weight": (4, 8),
        "attention_weights.bias": (4,),
        "attention_v.weight": (1, 4),
    },
}


class ScoredAttention(nn.Module):
    """The equations of ``AttentionLSTM`` written out in torch for every score, over a padded
    batch as a PyTorch user writes it (packed encoder, ``-inf`` on padded source positions)."""

    def __init__(self, score: str) -> None:
        super().__init__()
        self.score = score
        self.encoder = nn.LSTM(IN, HID)
        self.decoder = nn.LSTMCell(IN + HID, HID)
        if score == "concat":
            self.attention_weights = nn.Linear(2 * HID, 1)
        if score == "general":
            self.attention_weights = nn.Linear(HID, HID, bias=False)
        if score == "additive":
            self.attention_weights = nn.Linear(2 * HID, HID)
            self.attention_v = nn.Linear(HID, 1, bias=False)
        self.output = nn.Linear(HID, OUT)

    def scores(self, s: torch.Tensor, enc: torch.Tensor) -> torch.Tensor:
        """``s [B, H]``, ``enc [S, B, H]`` -> ``[S, B]``."""
        if self.score == "dot":  # s . e_j
            return (s.unsqueeze(0) * enc).sum(dim=2)
        if self.score == "general":  # s^T W_a e_j
            return (s.unsqueeze(0) * (enc @ self.attention_weights.weight.T)).sum(dim=2)
        pair = torch.cat([s.unsqueeze(0).expand_as(enc), enc], dim=2)
        if self.score == "concat":  # w^T [s; e_j] + b
            return self.attention_weights(pair).squeeze(2)
        return self.attention_v(torch.tanh(self.attention_weights(pair))).squeeze(2)

    def forward(
        self, source: torch.Tensor, source_lengths: torch.Tensor, decoder_inputs: torch.Tensor
    ) -> torch.Tensor:
        packed = pack_padded_sequence(source, source_lengths, enforce_sorted=False)
        enc_packed, (h, c) = self.encoder(packed)
        enc, _ = pad_packed_sequence(enc_packed, total_length=len(source))
        h, c = h[0], c[0]
        padding = torch.arange(len(source))[:, None] >= source_lengths[None, :]
        hs = []
        for x_t in decoder_inputs:
            alpha = torch.softmax(self.scores(h, enc).masked_fill(padding, -torch.inf), dim=0)
            context = (alpha.unsqueeze(2) * enc).sum(dim=0)
            h, c = self.decoder(torch.cat([x_t, context], dim=1), (h, c))
            hs.append(h)
        return self.output(torch.stack(hs))


def _model(score: str, lengths: bool = False, dtype: type = np.float64) -> sc.SpecChain:
    return sc.models.attention_seq2seq(IN, HID, OUT, lengths=lengths, score=score).to(dtype)


def _data(rng: np.random.Generator, dtype: type = np.float64) -> tuple[np.ndarray, ...]:
    """``source [5, 4, I]``, ``decoder_inputs [4, 4, I]`` and a cotangent ``dy [4, 4, O]``."""
    shapes = ((5, 4, IN), (4, 4, IN), (4, 4, OUT))
    return tuple(rng.standard_normal(shape).astype(dtype) for shape in shapes)


@pytest.mark.parametrize("score", SCORES)
def test_parameters_follow_one_naming_scheme(score: str) -> None:
    """Encoder, decoder and output as always; the score's own under ``attention_weights.``
    (and ``attention_v.`` for additive), shaped as the equations say."""
    spec = AttentionLSTM(IN, HID, OUT, score=score)
    shapes = {name: p.shape for name, p in spec.params.items()}
    own = {k: v for k, v in shapes.items() if k.startswith("attention")}
    assert own == PARAMETERS[score]
    assert {k.split(".")[0] for k in shapes} - {"attention_weights", "attention_v"} == {
        "encoder",
        "decoder",
        "output",
    }


def test_default_is_the_concat_score() -> None:
    """No ``score=``: the concat scorer, the same parameters (values too, from one seed) and
    description."""
    default = AttentionLSTM(IN, HID, OUT, rng=0)
    concat = AttentionLSTM(IN, HID, OUT, score="concat", rng=0)
    assert default.score == "concat" and default.describe() == "3 -> 4 -> 2, attention"
    assert list(default.params) == list(concat.params)
    for name, value in default.params.items():
        np.testing.assert_array_equal(value, concat.params[name])
    assert AttentionLSTM(IN, HID, OUT, score="dot").describe().endswith("(dot score)")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("score", SCORES)
def test_matches_torch_autograd_with_lengths(
    score: str, dtype: type, rng: np.random.Generator
) -> None:
    """Output and every gradient (weights, both inputs) against the torch twin's autograd, on a
    batch with source and decoder lengths (padding NaN for us, zero for torch)."""
    model = _model(score, dtype=dtype)
    source, target, dy = _data(rng, dtype)
    source_mask = Padded(source, SOURCE_LENGTHS).mask()
    target_mask = Padded(target, TARGET_LENGTHS).mask()
    x = ((np.where(source_mask, source, np.nan), SOURCE_LENGTHS), (target, TARGET_LENGTHS))
    y, tape = model.forward(x, train=True, rng=0)
    (d_source, d_target), grads = model.backward(tape, dy)
    twin = ScoredAttention(score).to(torch.float64 if dtype == np.float64 else torch.float32)
    load_torch(twin, dict(model.named_parameters()), "attention.")
    source_t, target_t = torch_from(source, True), torch_from(target, True)
    mask = torch_from(Padded(dy, TARGET_LENGTHS).mask())
    out = twin(source_t * torch_from(source_mask), torch.from_numpy(SOURCE_LENGTHS), target_t)
    (out * mask).backward(torch_from(dy))
    assert_close(y.data, out * mask, "y")
    assert_close(d_source, source_t.grad, "d_source")
    assert_close(d_target, torch.where(torch_from(target_mask), target_t.grad, 0), "d_target")
    assert not d_target[~target_mask].any()
    names = dict(twin.named_parameters())
    assert set(grads) == {f"attention.{name}" for name in names}
    for name, param in names.items():
        assert_close(grads[f"attention.{name}"], param.grad, name)


@pytest.mark.parametrize("score", SCORES)
def test_attention_weights_are_exactly_zero_past_each_source_length(
    score: str, rng: np.random.Generator
) -> None:
    spec = AttentionLSTM(IN, HID, OUT, score=score).to(np.float64)
    source, target, _ = _data(rng)
    x = (Padded(source, SOURCE_LENGTHS), target)
    _, saved = spec.forward(spec.params, x, Context())
    valid = Padded(source, SOURCE_LENGTHS).mask()[..., 0]
    for step in saved.steps:
        assert (step.alpha[~valid] == 0).all() and (step.alpha[valid] > 0).all()
        np.testing.assert_allclose(step.alpha.sum(axis=0), 1.0, rtol=1e-12)


@pytest.mark.parametrize("lengths", [False, True], ids=["plain", "lengths"])
@pytest.mark.parametrize("score", SCORES)
def test_finite_differences(score: str, lengths: bool, rng: np.random.Generator) -> None:
    """``sc.gradcheck`` (central differences, float64) over every weight and both inputs,
    relative error <= 1e-7. At initialisation the scores are small and nearly uniform across
    positions, so the gradients of the score's own weights are ~1e-4 and rounding noise of the
    differences (~1e-16 / eps) decides: the score's weights are tripled (sharper attention,
    larger gradients) and eps is 1e-5 (truncation error ~eps^2 stays far below). The concat
    score stays as built: its ``s`` half and bias have an exactly zero gradient."""
    source, target, _ = _data(rng)
    x: Any = (source, target)
    if lengths:
        x = ((source, SOURCE_LENGTHS), (target, TARGET_LENGTHS))
    model = _model(score)
    params = model.spec("attention").params
    for name in PARAMETERS[score]:
        params[name] *= 1.0 if score == "concat" else 3.0
    report = sc.gradcheck(model, x, eps=1e-5)
    assert report.passed(1e-7), str(report)
    if score != "dot":
        assert any("attention_weights" in name for name in report.errors)


@pytest.mark.parametrize("lengths", [False, True], ids=["plain", "lengths"])
@pytest.mark.parametrize("score", SCORES)
def test_export_verifies(score: str, lengths: bool) -> None:
    """The exported module (the ``AttentionLSTM`` helper built with this score) computes the
    same output and gradients, with and without source and decoder lengths."""
    model = _model(score, lengths=lengths)
    source = pytorch.to_source(model)
    arguments = "(3, 4, 2)" if score == "concat" else f'(3, 4, 2, "{score}")'
    assert "class Model(AttentionLSTM):" in source  # one composite node: the class is it
    assert f"super().__init__{arguments}" in source
    report = pytorch.verify(model)
    assert report.within(*TOLERANCES[np.dtype(np.float64)]), str(report)
    assert {k for k in report.diffs if "attention_" in k} == set(PARAMETERS[score])


@pytest.mark.parametrize("score", SCORES)
def test_save_load_round_trip(score: str, tmp_path: Path, rng: np.random.Generator) -> None:
    model = _model(score, lengths=True)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = sc.load(path)
    assert loaded.spec("attention").score == score
    source, target, _ = _data(rng)
    x = ((source, SOURCE_LENGTHS), (target, TARGET_LENGTHS))
    np.testing.assert_array_equal(loaded(x).data, model(x).data)


def test_refuses_an_unknown_score() -> None:
    choices = r"'concat', 'dot', 'general', 'additive'"
    with pytest.raises(sc.SpecError, match=rf"score must be one of {choices}, got 'bilinear'; "):
        AttentionLSTM(IN, HID, OUT, score="bilinear")
    with pytest.raises(sc.SpecError, match=rf"one of {choices}, got 'mlp'"):
        sc.models.attention_seq2seq(IN, HID, OUT, score="mlp")
