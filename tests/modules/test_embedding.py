"""``Embedding``: torch parity (lookup and the weight gradient with repeated indices), padding
rows, composition with an LSTM, and the bad-input table."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.modules import LSTM, Embedding
from tests.helpers import (
    TORCH_DTYPES,
    ErrorInput,
    assert_close,
    check_error_input,
    error_params,
    load_torch,
    one_torch_thread,
    torch_from,
)

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

N, E = 7, 3


def _pair(dtype: type, padding_idx: int | None = None) -> tuple[sc.SpecChain, torch.nn.Embedding]:
    model = Embedding(N, E, padding_idx=padding_idx).as_chain().to(dtype)
    ref = torch.nn.Embedding(N, E, padding_idx=padding_idx, dtype=TORCH_DTYPES[np.dtype(dtype)])
    load_torch(ref, model.named_parameters(), "embedding.")
    return model, ref


@pytest.mark.parametrize("padding_idx", [None, 0, 4, -1, -N], ids=lambda p: f"pad{p}")
@pytest.mark.parametrize("shape", [(6,), (5, 4), (2, 3, 4)], ids=["T", "TB", "3d"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_matches_torch(
    dtype: type, shape: tuple[int, ...], padding_idx: int | None, rng: np.random.Generator
) -> None:
    model, ref = _pair(dtype, padding_idx)
    idx = rng.integers(0, N, shape)
    idx.reshape(-1)[:3] = [1, 1, N - 1]  # repeated indices accumulate
    if padding_idx is not None:
        idx.reshape(-1)[3] = padding_idx % N  # the padding row is used at least once
    dy = rng.standard_normal((*shape, E)).astype(dtype)
    y, tape = model.forward(idx, train=True, rng=0)
    dx, grads = model.backward(tape, dy)
    yt = ref(torch.from_numpy(idx))
    yt.backward(torch_from(dy))
    assert dx is None
    assert_close(y, yt, "output")
    assert_close(grads["embedding.weight"], ref.weight.grad, "weight")


def test_repeated_indices_add_up(rng: np.random.Generator) -> None:
    model = Embedding(N, E).as_chain().to(np.float64)
    idx = np.array([[2, 2], [2, 5]])
    dy = rng.standard_normal((2, 2, E))
    _, tape = model.forward(idx, train=True)
    _, grads = model.backward(tape, dy)
    g = grads["embedding.weight"]
    np.testing.assert_allclose(g[2], dy[0, 0] + dy[0, 1] + dy[1, 0], rtol=1e-15)
    np.testing.assert_array_equal(g[5], dy[1, 1])
    assert not np.delete(g, [2, 5], axis=0).any()


@pytest.mark.parametrize("padding_idx", [2, -1], ids=["pad2", "pad_minus1"])
def test_padding_row_is_zero_and_gets_no_gradient(padding_idx: int) -> None:
    spec = Embedding(N, E, padding_idx=padding_idx)
    row = padding_idx % N
    assert spec.padding_idx == row  # negative counts from the end, as in torch
    assert spec.padding_idx == torch.nn.Embedding(N, E, padding_idx=padding_idx).padding_idx
    model = spec.as_chain().to(np.float64)
    weight = model.named_parameters()["embedding.weight"]
    assert not weight[row].any()
    assert np.delete(weight, row, axis=0).all()
    idx = np.array([[row, 1], [row, row]])
    y, tape = model.forward(idx, train=True)
    assert not y[idx == row].any()
    _, grads = model.backward(tape, np.ones((2, 2, E)))
    assert not grads["embedding.weight"][row].any()
    np.testing.assert_array_equal(grads["embedding.weight"][1], np.ones(E))


def test_init_is_standard_normal_like_torch() -> None:
    sc.seed(0)
    weight = Embedding(2000, 50).as_chain().named_parameters()["embedding.weight"]
    assert weight.dtype == np.float32 and weight.shape == (2000, 50)
    assert abs(weight.mean()) < 0.01 and abs(weight.std() - 1.0) < 0.01


def test_embedding_into_lstm_matches_torch(rng: np.random.Generator) -> None:
    model = (Embedding(N, E, padding_idx=0) >> LSTM(E, 4)).to(np.float64)
    emb = torch.nn.Embedding(N, E, padding_idx=0, dtype=torch.float64)
    lstm = torch.nn.LSTM(E, 4, dtype=torch.float64)
    load_torch(emb, model.named_parameters(), "embedding.")
    load_torch(lstm, model.named_parameters(), "lstm.")
    idx = rng.integers(0, N, (5, 2))
    dy = rng.standard_normal((5, 2, 4))
    y, tape = model.forward(idx, train=True)
    _, grads = model.backward(tape, dy)
    yt, _ = lstm(emb(torch.from_numpy(idx)))
    yt.backward(torch_from(dy))
    assert_close(y, yt, "output")
    assert_close(grads["embedding.weight"], emb.weight.grad, "embedding.weight")
    for name, p in lstm.named_parameters():
        assert_close(grads[f"lstm.{name}"], p.grad, name)


def test_empty_input(rng: np.random.Generator) -> None:
    model = Embedding(N, E).as_chain().to(np.float64)
    y, tape = model.forward(np.zeros((0, 3), np.int64), train=True)
    assert y.shape == (0, 3, E)
    _, grads = model.backward(tape, np.zeros((0, 3, E)))
    assert grads["embedding.weight"].shape == (N, E) and not grads["embedding.weight"].any()


BAD_INPUTS = [
    ErrorInput(
        "num_embeddings_zero",
        lambda: Embedding(0, 3),
        sc.SpecError,
        r"^Embedding\.num_embeddings must be a positive int, got 0$",
    ),
    ErrorInput(
        "embedding_dim_float",
        lambda: Embedding(5, 2.0),  # type: ignore[arg-type]
        TypeError,
        r"^Embedding\.embedding_dim must be a positive int, got 2\.0 \(float\)$",
    ),
    ErrorInput(
        "padding_idx_too_large",
        lambda: Embedding(10, 3, padding_idx=10),
        sc.SpecError,
        re.escape("Embedding.padding_idx must be within [-10, 9], got 10"),
    ),
    ErrorInput(
        "padding_idx_too_negative",
        lambda: Embedding(10, 3, padding_idx=-11),
        sc.SpecError,
        re.escape("Embedding.padding_idx must be within [-10, 9], got -11"),
    ),
    ErrorInput(
        "padding_idx_float",
        lambda: Embedding(10, 3, padding_idx=1.0),  # type: ignore[arg-type]
        TypeError,
        r"^Embedding\.padding_idx must be an int or None, got 1\.0$",
    ),
    ErrorInput(
        "index_too_large",
        lambda: Embedding(10, 3)(np.array([[1, 2], [10, 3]])),
        sc.SpecError,
        re.escape("Embedding index 10 at position [1, 0] is out of range [0, 10)"),
    ),
    ErrorInput(
        "index_negative",
        lambda: Embedding(10, 3)(np.array([[1, 2, 3], [4, 5, -1]])),
        sc.SpecError,
        re.escape("Embedding index -1 at position [1, 2] is out of range [0, 10)"),
    ),
    ErrorInput(
        "index_negative_unbatched_names_the_first_bad_position",
        lambda: Embedding(10, 3)(np.array([0, -3, 12])),
        sc.SpecError,
        re.escape("Embedding index -3 at position [1] is out of range [0, 10)"),
    ),
    ErrorInput(
        "float_indices",
        lambda: Embedding(10, 3)(np.array([[1.0, 2.0]])),
        sc.ShapeError,
        re.escape("Embedding takes integer indices, got [1, 2]"),
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)


def test_out_of_range_error_names_the_node() -> None:
    with pytest.raises(sc.SpecError, match=r"^in forward of node 'embedding' \(Embedding"):
        Embedding(10, 3)(np.array([[10]]))


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_index_dtypes_torch_refuses_are_refused_too(dtype: type) -> None:
    """``nn.Embedding`` takes only int32/int64 indices; so do we, or the export would disagree."""
    model = Embedding(5, 2).as_chain()
    with pytest.raises(TypeError, match=r"takes int32 or int64 indices \(as torch does\)"):
        model(np.zeros((3, 2), dtype=dtype))
