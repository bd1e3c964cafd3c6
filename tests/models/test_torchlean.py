"""TorchLean's model API (``specchain.models.torchlean``): every function against the equivalent
chain and against torch autograd, record -> chain -> record round trips, the gradient functions
against central differences on the records' own arrays, and the bad inputs with pinned messages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pytest
import torch
from torch import nn

import specchain as sc
from specchain.gradcheck import relative_error
from specchain.models import torchlean as tl
from specchain.models import zoo
from specchain.modules import LinearGrads, LSTMGateParams, LSTMGrads
from tests.helpers import (
    TORCH_DTYPES,
    ErrorInput,
    assert_close,
    check_error_input,
    error_params,
    load_torch,
    torch_from,
)
from tests.models.twins import AttentionSeq2SeqTwin

IN, HID, OUT, VOCAB = 3, 4, 2, 5
T, B = 4, 2
DTYPES = [pytest.param(np.float64, id="f64"), pytest.param(np.float32, id="f32")]


def _x(rng: np.random.Generator, dtype: Any, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def _state(rng: np.random.Generator, dtype: Any, *lead: int) -> tl.State:
    return _x(rng, dtype, *lead, HID), _x(rng, dtype, *lead, HID)


def _random_biases(chain: sc.SpecChain, rng: np.random.Generator) -> sc.SpecChain:
    """Give every ``bias_hh`` a nonzero value, so the gate-wise view must sum the two biases."""
    state = chain.state_dict()
    for key, value in state.items():
        if "bias_hh" in key:
            state[key] = _x(rng, value.dtype, *value.shape)
    chain.load_state_dict(state)
    return chain


def _arrays(record: Any) -> dict[str, np.ndarray]:
    """Every array of a record (or gradient record), by field path."""
    out: dict[str, np.ndarray] = {}

    def walk(value: Any, where: str) -> None:
        if isinstance(value, np.ndarray):
            out[where] = value
        elif isinstance(value, tuple):
            for k, item in enumerate(value):
                walk(item, f"{where}[{k}]")
        elif attrs.has(type(value)):
            for a in attrs.fields(type(value)):
                if a.init:
                    walk(getattr(value, a.name), f"{where}.{a.name}".lstrip("."))

    walk(record, "")
    return out


def assert_records_equal(a: Any, b: Any) -> None:
    left, right = _arrays(a), _arrays(b)
    assert left.keys() == right.keys()
    for key in left:
        assert left[key].dtype == right[key].dtype, key
        np.testing.assert_array_equal(left[key], right[key], err_msg=key)


def assert_lstm_grads(ours: LSTMGrads, lstm: nn.LSTM | nn.LSTMCell, suffix: str = "_l0") -> None:
    """Our gate-wise gradients against torch's fused ones, viewed gate-wise."""
    g = {n: p.grad.detach().numpy() for n, p in lstm.named_parameters() if p.grad is not None}
    expected = LSTMGrads.from_fused(
        g[f"weight_ih{suffix}"], g[f"weight_hh{suffix}"], g[f"bias_ih{suffix}"]
    )
    assert_close(g[f"bias_ih{suffix}"], g[f"bias_hh{suffix}"], "torch's two bias gradients")
    for name, value in _arrays(expected).items():
        assert_close(getattr(ours, name), value, name)


def assert_linear_grads(ours: LinearGrads, linear: nn.Linear) -> None:
    assert linear.weight.grad is not None and linear.bias is not None
    assert_close(ours.dW, linear.weight.grad, "dW")
    assert_close(ours.db, linear.bias.grad, "db")


# --- records: init, state_dict, round trips ---------------------------------------------------

RECORDS: list[tuple[type[Any], tuple[Any, ...]]] = [
    (tl.SimpleLSTMModel, (IN, HID, OUT)),
    (tl.MultiLayerLSTMModel, (IN, HID, OUT, 3)),
    (tl.LSTMClassifier, (IN, HID, OUT)),
    (tl.LSTMGenerator, (VOCAB, HID)),
    (tl.BiLSTMModel, (IN, HID, OUT)),
    (tl.LSTMLanguageModel, (VOCAB, HID, 2, 0.25)),
    (tl.AttentionLSTMModel, (IN, HID, OUT)),
]
RECORD_PARAMS = [pytest.param(cls, args, id=cls.__name__) for cls, args in RECORDS]


@pytest.mark.parametrize(("cls", "args"), RECORD_PARAMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_record_chain_record_round_trip(cls: type[Any], args: tuple[Any, ...], dtype: Any) -> None:
    record = cls.init(*args, rng=3, dtype=dtype)
    chain = record.to_chain()
    assert chain.dtype == np.dtype(dtype)
    back = cls.from_chain(chain)
    assert_records_equal(back, record)
    assert set(chain.state_dict()) == set(record.state_dict())
    if cls is tl.LSTMLanguageModel:
        assert back.dropout_rate == record.dropout_rate


@pytest.mark.parametrize(("cls", "args"), RECORD_PARAMS)
def test_chain_record_chain_computes_the_same(
    cls: type[Any], args: tuple[Any, ...], rng: np.random.Generator
) -> None:
    """A chain with PyTorch's two biases per gate -> record (biases summed) -> chain: the same
    function, with the whole bias in ``bias_ih`` and ``bias_hh = 0``."""
    chain = _random_biases(cls.init(*args, rng=3, dtype=np.float64).to_chain(), rng)
    record = cls.from_chain(chain)
    again = record.to_chain()
    before, after = chain.state_dict(), again.state_dict()
    for key in before:
        if "bias_ih" in key:
            hh = key.replace("bias_ih", "bias_hh")
            np.testing.assert_allclose(after[key], before[key] + before[hh], rtol=1e-15)
            assert not after[hh].any()
        elif "bias_hh" not in key:
            np.testing.assert_array_equal(after[key], before[key])
    x: Any
    if cls is tl.AttentionLSTMModel:
        x = (_x(rng, np.float64, T + 1, B, IN), _x(rng, np.float64, T, B, IN))
    elif cls in (tl.LSTMGenerator, tl.LSTMLanguageModel):
        x = _x(rng, np.float64, T, B, VOCAB)
    else:
        x = _x(rng, np.float64, T, B, IN)
    assert_close(again(x), chain(x), "output")


@pytest.mark.parametrize(
    ("cls", "builder"),
    [
        (tl.SimpleLSTMModel, lambda: zoo.seq2seq(IN, HID, OUT)),
        (tl.LSTMClassifier, lambda: zoo.classifier(IN, HID, OUT)),
        (tl.MultiLayerLSTMModel, lambda: zoo.stacked(IN, HID, OUT, num_layers=2)),
        (tl.BiLSTMModel, lambda: zoo.bilstm(IN, HID, OUT)),
        (tl.AttentionLSTMModel, lambda: zoo.attention_seq2seq(IN, HID, OUT)),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_to_chain_is_the_zoo_model(cls: type[Any], builder: Callable[[], sc.SpecChain]) -> None:
    """The packagers give the zoo's chain: same nodes, same parameter names and shapes, and
    a zoo chain's weights read as a record load back exactly."""
    reference = builder()
    record = cls.from_chain(reference)
    chain = record.to_chain()
    assert chain.nodes == reference.nodes
    assert {k: v.shape for k, v in chain.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


def test_init_is_seeded_and_typed() -> None:
    a = tl.SimpleLSTMModel.init(IN, HID, OUT, rng=7)
    b = tl.SimpleLSTMModel.init(IN, HID, OUT, rng=7)
    c = tl.SimpleLSTMModel.init(IN, HID, OUT, rng=8)
    assert_records_equal(a, b)
    assert not np.array_equal(a.lstm.forget_weights, c.lstm.forget_weights)
    assert a.dtype == np.float32
    assert tl.SimpleLSTMModel.init(IN, HID, OUT, dtype=np.float64).dtype == np.float64
    assert (a.input_size, a.hidden_size, a.output_size) == (IN, HID, OUT)
    assert a.lstm.forget_weights.shape == (HID, IN + HID)
    bound = 2 / np.sqrt(HID)  # the gate-wise bias is b_ih + b_hh, each U(-1/sqrt(H), 1/sqrt(H))
    assert np.abs(a.lstm.input_bias).max() <= bound


def test_functions_leave_the_library_generator_alone(rng: np.random.Generator) -> None:
    """Building chains inside the functions draws throwaway weights; ``sc.seed`` users must not
    notice: the next spec gets the weights it would have had."""
    model = tl.SimpleLSTMModel.init(IN, HID, OUT, rng=0)
    sc.seed(5)
    expected = sc.modules.Linear(3, 2).params["weight"]
    sc.seed(5)
    tl.simple_lstm_sequence_forward(model, _x(rng, np.float32, T, B, IN))
    model.to_chain()
    np.testing.assert_array_equal(sc.modules.Linear(3, 2).params["weight"], expected)


def test_in_place_edits_of_a_record_are_seen(rng: np.random.Generator) -> None:
    """Functions reuse a chain per record but reload its arrays at every call."""
    model = tl.SimpleLSTMModel.init(IN, HID, OUT, rng=0, dtype=np.float64)
    x = _x(rng, np.float64, T, B, IN)
    before, _ = tl.simple_lstm_sequence_forward(model, x)
    model.output.bias[:] += 1.0
    after, _ = tl.simple_lstm_sequence_forward(model, x)
    assert_close(after, before + 1.0)


def test_models_package_reexports() -> None:
    import specchain.models as models

    assert models.torchlean is tl
    assert models.SimpleLSTMModel is tl.SimpleLSTMModel
    assert set(tl.__all__) <= set(dir(tl))


# --- SimpleLSTMModel ---------------------------------------------------------------------------


def _torch_seq2seq(model: tl.SimpleLSTMModel, dtype: Any) -> tuple[nn.LSTM, nn.Linear]:
    lstm = nn.LSTM(IN, HID, dtype=TORCH_DTYPES[np.dtype(dtype)])
    head = nn.Linear(HID, OUT, dtype=TORCH_DTYPES[np.dtype(dtype)])
    load_torch(lstm, model.state_dict(), "lstm.")
    load_torch(head, model.state_dict(), "head.")
    return lstm, head


@pytest.mark.parametrize("dtype", DTYPES)
def test_simple_lstm_matches_torch(dtype: Any, rng: np.random.Generator) -> None:
    """Sequence forward (outputs and final state) and BPTT (every gate-wise gradient, the inputs'
    and the initial state's) against ``nn.LSTM`` + ``nn.Linear`` under autograd."""
    model = tl.SimpleLSTMModel.init(IN, HID, OUT, rng=1, dtype=dtype)
    xs, (h0, c0) = _x(rng, dtype, T, B, IN), _state(rng, dtype, B)
    g = _x(rng, dtype, T, B, OUT)
    ys, (h, c) = tl.simple_lstm_sequence_forward(model, xs, (h0, c0))
    grads, dxs, (dh0, dc0) = tl.simple_lstm_backward(model, xs, (h0, c0), g)

    lstm, head = _torch_seq2seq(model, dtype)
    xt, h0t, c0t = (torch_from(a, requires_grad=True) for a in (xs, h0, c0))
    hs, (ht, ct) = lstm(xt, (h0t[None], c0t[None]))
    yt = head(hs)
    (yt * torch_from(g)).sum().backward()

    assert_close(ys, yt, "outputs")
    assert_close(h, ht[0], "h_T")
    assert_close(c, ct[0], "c_T")
    assert_close(dxs, xt.grad, "d inputs")
    assert_close(dh0, h0t.grad, "dh0")
    assert_close(dc0, c0t.grad, "dc0")
    assert isinstance(grads, tl.SimpleLSTMModelGrads)
    assert_lstm_grads(grads.lstm, lstm)
    assert_linear_grads(grads.output, head)


def test_simple_lstm_forward_steps_through_the_sequence(rng: np.random.Generator) -> None:
    """One step at a time with ``simple_lstm_forward`` is the sequence forward; unbatched too."""
    model = tl.SimpleLSTMModel.init(IN, HID, OUT, rng=1, dtype=np.float64)
    xs, state = _x(rng, np.float64, T, B, IN), _state(rng, np.float64, B)
    ys, final = tl.simple_lstm_sequence_forward(model, xs, state)
    step_state = state
    for t in range(T):
        y, step_state = tl.simple_lstm_forward(model, xs[t], step_state)
        assert_close(y, ys[t], f"step {t}")
    assert_close(step_state[0], final[0])
    assert_close(step_state[1], final[1])
    y1, (h1, c1) = tl.simple_lstm_forward(model, xs[0, 1], (state[0][1], state[1][1]))
    assert y1.shape == (OUT,) and h1.shape == c1.shape == (HID,)
    assert_close(y1, tl.simple_lstm_forward(model, xs[0], state)[0][1])


def test_simple_lstm_zero_state_default_and_packager(rng: np.random.Generator) -> None:
    model = tl.SimpleLSTMModel.init(IN, HID, OUT, rng=1, dtype=np.float64)
    xs = _x(rng, np.float64, T, B, IN)
    zeros = (np.zeros((B, HID)), np.zeros((B, HID)))
    ys, _ = tl.simple_lstm_sequence_forward(model, xs)
    assert_close(ys, tl.simple_lstm_sequence_forward(model, xs, zeros)[0])
    assert_close(tl.simple_lstm_to_module_spec(model)(xs), ys)
    assert_close(tl.simple_lstm_model_spec(model.lstm, model.output)(xs), ys)
    single, _ = tl.simple_lstm_sequence_forward(model, xs[:, 0])
    assert_close(single, ys[:, 0])


def test_simple_lstm_mse(rng: np.random.Generator) -> None:
    """The loss is the mean squared error; its gradients are BPTT of ``2 (y - t) / n``."""
    model = tl.SimpleLSTMModel.init(IN, HID, OUT, rng=1, dtype=np.float64)
    xs, state = _x(rng, np.float64, T, B, IN), _state(rng, np.float64, B)
    targets = _x(rng, np.float64, T, B, OUT)
    ys, _ = tl.simple_lstm_sequence_forward(model, xs, state)
    loss = tl.simple_lstm_mse_loss(model, xs, targets, state)
    assert loss == pytest.approx(np.mean((ys - targets) ** 2), rel=1e-14)
    value, grads = tl.simple_lstm_mse_grad(model, xs, targets, state)
    assert value == pytest.approx(loss, rel=1e-14)
    expected, _, _ = tl.simple_lstm_backward(model, xs, state, 2 * (ys - targets) / ys.size)
    for name, array in _arrays(expected).items():
        assert_close(_arrays(grads)[name], array, name)


# --- LSTMClassifier ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_classifier_matches_torch(dtype: Any, rng: np.random.Generator) -> None:
    model = tl.LSTMClassifier.init(IN, HID, OUT, rng=1, dtype=dtype)
    xs, state = _x(rng, dtype, T, B, IN), _state(rng, dtype, B)
    g = _x(rng, dtype, B, OUT)
    logits = tl.lstm_classifier_forward(model, xs, state)
    head_grads, lstm_grads, dxs = tl.lstm_classifier_backward(model, xs, state, g)

    lstm = nn.LSTM(IN, HID, dtype=TORCH_DTYPES[np.dtype(dtype)])
    head = nn.Linear(HID, OUT, dtype=TORCH_DTYPES[np.dtype(dtype)])
    load_torch(lstm, model.state_dict(), "lstm.")
    load_torch(head, model.state_dict(), "head.")
    xt = torch_from(xs, requires_grad=True)
    _, (ht, _) = lstm(xt, (torch_from(state[0])[None], torch_from(state[1])[None]))
    yt = head(ht[0])  # TorchLean reads the final hidden state
    (yt * torch_from(g)).sum().backward()

    assert_close(logits, yt, "logits")
    assert_close(dxs, xt.grad, "d inputs")
    assert_lstm_grads(lstm_grads, lstm)
    assert_linear_grads(head_grads, head)
    assert_close(
        tl.lstm_classifier_to_module_spec(model)(xs), tl.lstm_classifier_forward(model, xs)
    )
    chain = tl.lstm_classifier_model_spec(model.lstm, model.classifier)
    assert_close(chain(xs), tl.lstm_classifier_forward(model, xs))
    assert tl.lstm_classifier_forward(model, xs[:, 0]).shape == (OUT,)


# --- LSTMGenerator and LSTMLanguageModel -------------------------------------------------------


def _torch_lm(
    record: tl.LSTMGenerator | tl.LSTMLanguageModel, layers: int, scale: float, dtype: Any
) -> Callable[..., Any]:
    """Linear embedding, ``nn.LSTM(num_layers)``, ``(1 - p) *``, projection, under autograd."""
    tdtype = TORCH_DTYPES[np.dtype(dtype)]
    embedding = nn.Linear(VOCAB, HID, dtype=tdtype)
    lstm = nn.LSTM(HID, HID, num_layers=layers, dtype=tdtype)
    projection = nn.Linear(HID, VOCAB, dtype=tdtype)
    for prefix, module in (("embedding.", embedding), ("lstm.", lstm), ("projection.", projection)):
        load_torch(module, record.state_dict(), prefix)

    def run(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor) -> Any:
        hs, (h, c) = lstm(embedding(x), (h0, c0))
        return projection(hs * scale), (h, c)

    run.modules = (embedding, lstm, projection)  # type: ignore[attr-defined]
    return run


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_lm_matches_torch(dtype: Any, rng: np.random.Generator) -> None:
    model = tl.LSTMLanguageModel.init(
        VOCAB, HID, num_layers=2, dropout_rate=0.25, rng=1, dtype=dtype
    )
    xs = _x(rng, dtype, T, B, VOCAB)
    states = [_state(rng, dtype, B) for _ in range(2)]
    g = _x(rng, dtype, T, B, VOCAB)
    logits, finals = tl.lstm_lm_forward(model, xs, states)
    grads, d_inputs, d_states = tl.lstm_lm_backward(model, xs, states, g)

    run = _torch_lm(model, 2, 0.75, dtype)
    embedding, lstm, projection = run.modules  # type: ignore[attr-defined]
    xt = torch_from(xs, requires_grad=True)
    h0t = torch_from(np.stack([h for h, _ in states]), requires_grad=True)
    c0t = torch_from(np.stack([c for _, c in states]), requires_grad=True)
    yt, (ht, ct) = run(xt, h0t, c0t)
    (yt * torch_from(g)).sum().backward()

    assert_close(logits, yt, "logits")
    for k in range(2):
        assert_close(finals[k][0], ht[k], f"h_n[{k}]")
        assert_close(finals[k][1], ct[k], f"c_n[{k}]")
        assert_close(d_states[k][0], h0t.grad[k], f"dh0[{k}]")  # type: ignore[index]
        assert_close(d_states[k][1], c0t.grad[k], f"dc0[{k}]")  # type: ignore[index]
        assert_lstm_grads(grads.lstm_layers[k], lstm, f"_l{k}")
    assert_close(d_inputs, xt.grad, "d inputs")
    assert_linear_grads(grads.embedding, embedding)
    assert_linear_grads(grads.output_projection, projection)


def test_lstm_lm_tokens_are_one_hot_vectors(rng: np.random.Generator) -> None:
    """Integer tokens give what their one-hot vectors give (and no input gradient); the default
    state is zeros; a single example ``[T]`` works."""
    model = tl.LSTMLanguageModel.init(
        VOCAB, HID, num_layers=2, dropout_rate=0.5, rng=1, dtype=np.float64
    )
    tokens = rng.integers(0, VOCAB, size=(T, B))
    one_hot = np.eye(VOCAB)[tokens]
    g = _x(rng, np.float64, T, B, VOCAB)
    by_tokens, finals = tl.lstm_lm_forward(model, tokens)
    assert_close(by_tokens, tl.lstm_lm_forward(model, one_hot)[0])
    assert_close(by_tokens, model.to_chain(tokens=True)(tokens))
    grads_t, d_tokens, d_states = tl.lstm_lm_backward(model, tokens, None, g)
    grads_v, _, d_states_v = tl.lstm_lm_backward(model, one_hot, None, g)
    assert d_tokens is None
    for name, array in _arrays(grads_v).items():
        assert_close(_arrays(grads_t)[name], array, name)
    assert_close(d_states[1][0], d_states_v[1][0])
    single, single_finals = tl.lstm_lm_forward(model, tokens[:, 0])
    assert_close(single, by_tokens[:, 0])
    assert_close(single_finals[1][1], finals[1][1][0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_generator_matches_torch(dtype: Any, rng: np.random.Generator) -> None:
    model = tl.LSTMGenerator.init(VOCAB, HID, rng=1, dtype=dtype)
    tokens = rng.integers(0, VOCAB, size=(T, B))
    h0, c0 = _state(rng, dtype, B)
    logits, (h, c) = tl.lstm_generator_forward(model, tokens, (h0, c0))
    run = _torch_lm(model, 1, 1.0, dtype)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(tokens), VOCAB).to(
        TORCH_DTYPES[np.dtype(dtype)]
    )
    yt, (ht, ct) = run(onehot, torch_from(h0)[None], torch_from(c0)[None])
    assert_close(logits, yt, "logits")
    assert_close(h, ht[0], "h_T")
    assert_close(c, ct[0], "c_T")
    chain = tl.lstm_language_model_spec(model.embedding, model.lstm, model.output_projection)
    vectors = np.eye(VOCAB, dtype=dtype)[tokens]
    assert_close(chain(vectors), tl.lstm_generator_forward(model, vectors)[0])


# --- BiLSTMModel and MultiLayerLSTMModel -------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_bilstm_matches_torch(dtype: Any, rng: np.random.Generator) -> None:
    model = tl.BiLSTMModel.init(IN, HID, OUT, rng=1, dtype=dtype)
    xs = _x(rng, dtype, T, B, IN)
    fwd, bwd = _state(rng, dtype, B), _state(rng, dtype, B)
    g = _x(rng, dtype, T, B, OUT)
    ys = tl.bilstm_forward(model, xs, fwd, bwd)
    grads, dxs, (d_fwd, d_bwd) = tl.bilstm_backward(model, xs, fwd, bwd, g)

    tdtype = TORCH_DTYPES[np.dtype(dtype)]
    lstm = nn.LSTM(IN, HID, bidirectional=True, dtype=tdtype)
    head = nn.Linear(2 * HID, OUT, dtype=tdtype)
    load_torch(lstm, model.state_dict(), "lstm.")
    load_torch(head, model.state_dict(), "head.")
    xt = torch_from(xs, requires_grad=True)
    h0t = torch_from(np.stack([fwd[0], bwd[0]]), requires_grad=True)
    c0t = torch_from(np.stack([fwd[1], bwd[1]]), requires_grad=True)
    yt = head(lstm(xt, (h0t, c0t))[0])
    (yt * torch_from(g)).sum().backward()

    assert_close(ys, yt, "outputs")
    assert_close(dxs, xt.grad, "d inputs")
    assert h0t.grad is not None and c0t.grad is not None
    for k, d in enumerate((d_fwd, d_bwd)):
        assert_close(d[0], h0t.grad[k], f"dh0[{k}]")
        assert_close(d[1], c0t.grad[k], f"dc0[{k}]")
    assert_lstm_grads(grads.forward_lstm, lstm, "_l0")
    assert_lstm_grads(grads.backward_lstm, lstm, "_l0_reverse")
    assert_linear_grads(grads.output, head)
    assert_close(tl.bilstm_to_module_spec(model)(xs), tl.bilstm_forward(model, xs))
    single = tl.bilstm_forward(model, xs[:, 1], (fwd[0][1], fwd[1][1]), (bwd[0][1], bwd[1][1]))
    assert_close(single, ys[:, 1], "a single example [T, I]")


def test_bilstm_is_a_forward_and_a_reversed_lstm(rng: np.random.Generator) -> None:
    """TorchLean's definition, spelled out with two one-direction models: the backward LSTM runs
    over the reversed sequence and its outputs are reversed back before the concatenation."""
    model = tl.BiLSTMModel.init(IN, HID, OUT, rng=1, dtype=np.float64)
    xs = _x(rng, np.float64, T, B, IN)
    zero_head = tl.LinearParams(np.eye(HID), np.zeros(HID))
    fwd = tl.simple_lstm_sequence_forward(tl.SimpleLSTMModel(model.forward_lstm, zero_head), xs)[0]
    bwd = tl.simple_lstm_sequence_forward(
        tl.SimpleLSTMModel(model.backward_lstm, zero_head), xs[::-1].copy()
    )[0][::-1]
    both = np.concatenate([fwd, bwd], axis=2)
    expected = both @ model.output.weight.T + model.output.bias
    assert_close(tl.bilstm_forward(model, xs), expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_multilayer_lstm_matches_torch(dtype: Any, rng: np.random.Generator) -> None:
    model = tl.MultiLayerLSTMModel.init(IN, HID, OUT, 3, rng=1, dtype=dtype)
    xs = _x(rng, dtype, T, B, IN)
    states = [_state(rng, dtype, B) for _ in range(3)]
    g = _x(rng, dtype, T, B, OUT)
    ys, finals = tl.multilayer_lstm_forward(model, xs, states)
    grads, dxs, d_states = tl.multilayer_lstm_backward(model, xs, states, g)

    tdtype = TORCH_DTYPES[np.dtype(dtype)]
    lstm = nn.LSTM(IN, HID, num_layers=3, dtype=tdtype)
    head = nn.Linear(HID, OUT, dtype=tdtype)
    load_torch(lstm, model.state_dict(), "lstm.")
    load_torch(head, model.state_dict(), "head.")
    xt = torch_from(xs, requires_grad=True)
    h0t = torch_from(np.stack([h for h, _ in states]), requires_grad=True)
    c0t = torch_from(np.stack([c for _, c in states]), requires_grad=True)
    hs, (ht, ct) = lstm(xt, (h0t, c0t))
    yt = head(hs)
    (yt * torch_from(g)).sum().backward()

    assert_close(ys, yt, "outputs")
    assert_close(dxs, xt.grad, "d inputs")
    assert h0t.grad is not None and c0t.grad is not None
    for k in range(3):
        assert_close(finals[k][0], ht[k], f"h_n[{k}]")
        assert_close(finals[k][1], ct[k], f"c_n[{k}]")
        assert_close(d_states[k][0], h0t.grad[k], f"dh0[{k}]")
        assert_close(d_states[k][1], c0t.grad[k], f"dc0[{k}]")
        assert_lstm_grads(grads.layers[k], lstm, f"_l{k}")
    assert_linear_grads(grads.output, head)


def test_multilayer_lstm_spec_is_two_separate_layers(rng: np.random.Generator) -> None:
    """TorchLean's two-spec ``multilayerLstmSpec`` (``zoo.two_layer``) computes what the stacked
    record does with the same two layers."""
    model = tl.MultiLayerLSTMModel.init(IN, HID, OUT, 2, rng=1, dtype=np.float64)
    chain = tl.multilayer_lstm_spec(model.layers[0], model.layers[1], model.output)
    assert chain.nodes == zoo.two_layer(IN, HID, OUT).nodes
    xs = _x(rng, np.float64, T, B, IN)
    assert_close(chain(xs), tl.multilayer_lstm_forward(model, xs)[0])


# --- AttentionLSTMModel ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_lstm_matches_torch_twin(dtype: Any, rng: np.random.Generator) -> None:
    model = tl.AttentionLSTMModel.init(IN, HID, OUT, rng=1, dtype=dtype)
    source, targets = _x(rng, dtype, T + 2, B, IN), _x(rng, dtype, T, B, IN)
    g = _x(rng, dtype, T, B, OUT)
    ys = tl.attention_lstm_forward(model, source, targets)
    grads, d_source, d_targets = tl.attention_lstm_backward(model, source, targets, g)

    twin = AttentionSeq2SeqTwin(IN, HID, OUT).to(TORCH_DTYPES[np.dtype(dtype)])
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    st, tt = torch_from(source, requires_grad=True), torch_from(targets, requires_grad=True)
    yt = twin(st, tt)
    (yt * torch_from(g)).sum().backward()

    assert_close(ys, yt, "outputs")
    assert_close(d_source, st.grad, "d source")
    assert_close(d_targets, tt.grad, "d decoder_inputs")
    core = twin.attention
    assert_lstm_grads(grads.encoder, core.encoder)
    assert_lstm_grads(grads.decoder, core.decoder, "")
    assert_linear_grads(grads.attention_weights, core.attention_weights)
    assert_linear_grads(grads.output, core.output)

    _, _, d_one = tl.attention_lstm_backward(model, source[:, 1], targets[:, 1], g[:, 1])
    assert_close(tl.attention_lstm_forward(model, source[:, 1], targets[:, 1]), ys[:, 1])
    assert d_one.shape == (T, IN)


# --- finite differences on the records' own arrays ---------------------------------------------

FD_I, FD_H, FD_O, FD_V, FD_T, FD_B = 2, 2, 2, 3, 3, 2


def _numeric(
    output: Callable[[], Any], w: list[np.ndarray], array: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """Central differences of ``sum(output() * w)`` in every entry of ``array`` (perturbed in
    place). Outputs are differenced before the dot product, as in ``sc.gradcheck``: summing first
    would cancel two large sums and leave rounding noise near the 1e-7 bound."""
    grad = np.zeros_like(array)
    flat = array.reshape(-1)
    assert np.shares_memory(flat, array)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        plus = [y.copy() for y in _outs(output())]
        flat[i] = orig - eps
        minus = _outs(output())
        flat[i] = orig
        change = sum(float(np.sum((p - m) * wk)) for p, m, wk in zip(plus, minus, w, strict=True))
        grad.reshape(-1)[i] = change / (2 * eps)
    return grad


def _param_pairs(record: Any, grads: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{path: (parameter array, its analytic gradient)}``: gate fields ``forget_weights`` pair
    with ``d_forget_weights``, linear ``weight`` / ``bias`` with ``dW`` / ``db``."""
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def walk(p: Any, g: Any, where: str) -> None:
        if isinstance(p, tuple):
            for k, (pk, gk) in enumerate(zip(p, g, strict=True)):
                walk(pk, gk, f"{where}[{k}]")
        elif isinstance(p, LSTMGateParams):
            for a in attrs.fields(LSTMGateParams):
                pairs[f"{where}.{a.name}"] = (getattr(p, a.name), getattr(g, f"d_{a.name}"))
        elif isinstance(p, tl.LinearParams):
            pairs[f"{where}.weight"] = (p.weight, g.dW)
            pairs[f"{where}.bias"] = (p.bias, g.db)

    for a in attrs.fields(type(grads)):
        walk(getattr(record, a.name), getattr(grads, a.name), a.name)
    return pairs


def check_finite_differences(
    output: Callable[[], Any], pairs: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    """``scalar = sum(output() * w)`` for a fixed ``w``: every analytic gradient in ``pairs``
    against central differences, with gradcheck's error measure (relative to the tensor's scale,
    floored at 1e-6 of the largest gradient)."""
    w = [np.random.default_rng(99).standard_normal(y.shape) for y in _outs(output())]
    largest = max(float(np.max(np.abs(g))) for _, g in pairs.values())
    floor = max(1e-12, 1e-6 * largest)
    errors = {k: relative_error(g, _numeric(output, w, p), floor) for k, (p, g) in pairs.items()}
    worst = max(errors.values())
    assert worst <= 1e-7, errors


def _outs(value: Any) -> list[np.ndarray]:
    return list(value) if isinstance(value, tuple) else [value]


def _cotangent(output: Any) -> Any:
    """The fixed ``w`` of ``check_finite_differences``: dL/d output of ``sum(output * w)``."""
    ws = [np.random.default_rng(99).standard_normal(y.shape) for y in _outs(output)]
    return tuple(ws) if isinstance(output, tuple) else ws[0]


def test_simple_lstm_backward_finite_differences(rng: np.random.Generator) -> None:
    model = tl.SimpleLSTMModel.init(FD_I, FD_H, FD_O, rng=2, dtype=np.float64)
    xs = _x(rng, np.float64, FD_T, FD_B, FD_I)
    h0, c0 = _x(rng, np.float64, FD_B, FD_H), _x(rng, np.float64, FD_B, FD_H)

    def run() -> np.ndarray:
        return tl.simple_lstm_sequence_forward(model, xs, (h0, c0))[0]

    grads, dxs, (dh0, dc0) = tl.simple_lstm_backward(model, xs, (h0, c0), _cotangent(run()))
    pairs = _param_pairs(model, grads)
    pairs.update({"inputs": (xs, dxs), "h0": (h0, dh0), "c0": (c0, dc0)})
    check_finite_differences(run, pairs)


def test_lstm_classifier_backward_finite_differences(rng: np.random.Generator) -> None:
    model = tl.LSTMClassifier.init(FD_I, FD_H, FD_O, rng=2, dtype=np.float64)
    xs = _x(rng, np.float64, FD_T, FD_B, FD_I)
    state = (_x(rng, np.float64, FD_B, FD_H), _x(rng, np.float64, FD_B, FD_H))

    def run() -> np.ndarray:
        return tl.lstm_classifier_forward(model, xs, state)

    head, lstm, dxs = tl.lstm_classifier_backward(model, xs, state, _cotangent(run()))
    # the same arrays, seen through a record whose fields match SimpleLSTMModelGrads'
    view = tl.SimpleLSTMModel(model.lstm, model.classifier)
    pairs = _param_pairs(view, tl.SimpleLSTMModelGrads(lstm, head))
    pairs = {k.replace("output.", "classifier."): v for k, v in pairs.items()}
    pairs.update({"inputs": (xs, dxs)})
    assert {"classifier.weight", "lstm.forget_bias"} <= set(pairs)
    check_finite_differences(run, pairs)


def test_bilstm_backward_finite_differences(rng: np.random.Generator) -> None:
    model = tl.BiLSTMModel.init(FD_I, FD_H, FD_O, rng=2, dtype=np.float64)
    xs = _x(rng, np.float64, FD_T, FD_B, FD_I)
    fwd = (_x(rng, np.float64, FD_B, FD_H), _x(rng, np.float64, FD_B, FD_H))
    bwd = (_x(rng, np.float64, FD_B, FD_H), _x(rng, np.float64, FD_B, FD_H))

    def run() -> np.ndarray:
        return tl.bilstm_forward(model, xs, fwd, bwd)

    grads, dxs, (d_fwd, d_bwd) = tl.bilstm_backward(model, xs, fwd, bwd, _cotangent(run()))
    pairs = _param_pairs(model, grads)
    pairs.update({"inputs": (xs, dxs), "h0_backward": (bwd[0], d_bwd[0])})
    pairs.update({"c0_forward": (fwd[1], d_fwd[1])})
    check_finite_differences(run, pairs)


def test_multilayer_lstm_backward_finite_differences(rng: np.random.Generator) -> None:
    model = tl.MultiLayerLSTMModel.init(FD_I, FD_H, FD_O, 2, rng=2, dtype=np.float64)
    xs = _x(rng, np.float64, FD_T, FD_B, FD_I)
    states = [(_x(rng, np.float64, FD_B, FD_H), _x(rng, np.float64, FD_B, FD_H)) for _ in "ab"]

    def run() -> np.ndarray:
        return tl.multilayer_lstm_forward(model, xs, states)[0]

    grads, dxs, d_states = tl.multilayer_lstm_backward(model, xs, states, _cotangent(run()))
    pairs = _param_pairs(model, grads)
    pairs.update({"inputs": (xs, dxs), "h0[1]": (states[1][0], d_states[1][0])})
    pairs.update({"c0[0]": (states[0][1], d_states[0][1])})
    check_finite_differences(run, pairs)


def test_lstm_lm_backward_finite_differences(rng: np.random.Generator) -> None:
    model = tl.LSTMLanguageModel.init(FD_V, FD_H, 2, 0.4, rng=2, dtype=np.float64)
    xs = _x(rng, np.float64, FD_T, FD_B, FD_V)
    states = [(_x(rng, np.float64, FD_B, FD_H), _x(rng, np.float64, FD_B, FD_H)) for _ in "ab"]

    def run() -> np.ndarray:
        return tl.lstm_lm_forward(model, xs, states)[0]

    grads, d_inputs, d_states = tl.lstm_lm_backward(model, xs, states, _cotangent(run()))
    assert d_inputs is not None
    pairs = _param_pairs(model, grads)
    pairs.update({"inputs": (xs, d_inputs), "h0[0]": (states[0][0], d_states[0][0])})
    pairs.update({"c0[1]": (states[1][1], d_states[1][1])})
    check_finite_differences(run, pairs)


def test_attention_lstm_backward_finite_differences(rng: np.random.Generator) -> None:
    model = tl.AttentionLSTMModel.init(FD_I, FD_H, FD_O, rng=2, dtype=np.float64)
    source = _x(rng, np.float64, FD_T + 1, FD_B, FD_I)
    targets = _x(rng, np.float64, FD_T, FD_B, FD_I)

    def run() -> np.ndarray:
        return tl.attention_lstm_forward(model, source, targets)

    grads, d_source, d_targets = tl.attention_lstm_backward(
        model, source, targets, _cotangent(run())
    )
    pairs = _param_pairs(model, grads)
    pairs.update({"source": (source, d_source), "decoder_inputs": (targets, d_targets)})
    check_finite_differences(run, pairs)


# --- bad inputs --------------------------------------------------------------------------------


def _lstm(i: int, h: int) -> LSTMGateParams:
    return tl.SimpleLSTMModel.init(i, h, 1, rng=0).lstm


def _linear(i: int, o: int, dtype: Any = np.float32) -> tl.LinearParams:
    return tl.LinearParams.init(i, o, rng=0, dtype=dtype)


def _lm(layers: int = 2) -> tl.LSTMLanguageModel:
    return tl.LSTMLanguageModel.init(VOCAB, HID, num_layers=layers, rng=0)


def _bad_gate() -> LSTMGateParams:
    good = _lstm(IN, HID)
    return attrs.evolve(good, candidate_weights=good.candidate_weights[:, :-1])


ERRORS = [
    ErrorInput(
        "output_reads_another_hidden_size",
        lambda: tl.SimpleLSTMModel(_lstm(IN, 5), _linear(6, OUT)),
        sc.SpecError,
        r"^SimpleLSTMModel: output\.in_features is 6 but lstm\.hidden_size is 5; "
        r"they must be equal$",
    ),
    ErrorInput(
        "classifier_reads_another_hidden_size",
        lambda: tl.LSTMClassifier(_lstm(IN, 5), _linear(4, OUT)),
        sc.SpecError,
        r"^LSTMClassifier: classifier\.in_features is 4 but lstm\.hidden_size is 5; ",
    ),
    ErrorInput(
        "bilstm_output_not_2h",
        lambda: tl.BiLSTMModel(_lstm(IN, HID), _lstm(IN, HID), _linear(HID, OUT)),
        sc.SpecError,
        r"^BiLSTMModel: output\.in_features is 4 but 2 \* forward_lstm\.hidden_size is 8; ",
    ),
    ErrorInput(
        "bilstm_directions_differ",
        lambda: tl.BiLSTMModel(_lstm(IN, HID), _lstm(IN, 3), _linear(2 * HID, OUT)),
        sc.SpecError,
        r"^BiLSTMModel: backward_lstm\.hidden_size is 3 but forward_lstm\.hidden_size is 4; ",
    ),
    ErrorInput(
        "multilayer_second_layer_reads_wrong_size",
        lambda: tl.MultiLayerLSTMModel([_lstm(IN, HID), _lstm(3, HID)], _linear(HID, OUT)),
        sc.SpecError,
        r"^MultiLayerLSTMModel: layers\[1\]\.input_size is 3 but layers\[0\]\.hidden_size is 4; ",
    ),
    ErrorInput(
        "multilayer_no_layers",
        lambda: tl.MultiLayerLSTMModel([], _linear(HID, OUT)),
        sc.SpecError,
        r"^MultiLayerLSTMModel\.layers needs at least one LSTM layer$",
    ),
    ErrorInput(
        "generator_projection_to_another_vocabulary",
        lambda: tl.LSTMGenerator(_linear(VOCAB, HID), _lstm(HID, HID), _linear(HID, VOCAB + 1)),
        sc.SpecError,
        r"^LSTMGenerator: output_projection\.out_features is 6 but embedding\.in_features is 5; ",
    ),
    ErrorInput(
        "lm_layer_reads_another_size",
        lambda: tl.LSTMLanguageModel(
            _linear(VOCAB, HID), [_lstm(HID, HID), _lstm(3, HID)], _linear(HID, VOCAB)
        ),
        sc.SpecError,
        r"^LSTMLanguageModel: lstm_layers\[1\]\.input_size is 3 but lstm_layers\[0\]\.hidden_size "
        r"is 4; ",
    ),
    ErrorInput(
        "lm_dropout_out_of_range",
        lambda: tl.LSTMLanguageModel(
            _linear(VOCAB, HID), [_lstm(HID, HID)], _linear(HID, VOCAB), 1.5
        ),
        sc.SpecError,
        r"^LSTMLanguageModel\.dropout_rate must be in \[0, 1\], got 1\.5$",
    ),
    ErrorInput(
        "lm_states_and_layers_differ",
        lambda: tl.lstm_lm_forward(_lm(2), np.zeros((T, B), np.int64), [None, None, None]),
        sc.SpecError,
        r"^LSTMLanguageModel has 2 LSTM layers but 3 initial states were given; "
        r"pass one \(h, c\) per layer$",
    ),
    ErrorInput(
        "lm_backward_states_and_layers_differ",
        lambda: tl.lstm_lm_backward(
            _lm(2), np.zeros((T, B), np.int64), [None], np.zeros((T, B, VOCAB), np.float32)
        ),
        sc.SpecError,
        r"^LSTMLanguageModel has 2 LSTM layers but 1 initial states were given; ",
    ),
    ErrorInput(
        "multilayer_states_and_layers_differ",
        lambda: tl.multilayer_lstm_forward(
            tl.MultiLayerLSTMModel.init(IN, HID, OUT, 3, rng=0),
            np.zeros((T, B, IN), np.float32),
            [],
        ),
        sc.SpecError,
        r"^MultiLayerLSTMModel has 3 LSTM layers but 0 initial states were given; ",
    ),
    ErrorInput(
        "attention_decoder_reads_wrong_size",
        lambda: tl.AttentionLSTMModel(
            _lstm(IN, HID), _lstm(IN, HID), _linear(2 * HID, 1), _linear(HID, OUT)
        ),
        sc.SpecError,
        r"^AttentionLSTMModel: decoder\.input_size is 3 but encoder input_size \+ hidden_size "
        r"is 7; ",
    ),
    ErrorInput(
        "attention_scorer_gives_two_scores",
        lambda: tl.AttentionLSTMModel(
            _lstm(IN, HID), _lstm(IN + HID, HID), _linear(2 * HID, 2), _linear(HID, OUT)
        ),
        sc.SpecError,
        r"^AttentionLSTMModel: attention_weights\.out_features is 2 but one score is 1; ",
    ),
    ErrorInput(
        "gate_weights_differ",
        lambda: tl.SimpleLSTMModel(_bad_gate(), _linear(HID, OUT)),
        sc.ShapeError,
        r"^lstm\.candidate_weights has shape \[4, 6\], expected \[4, 7\] "
        r"\(forget_weights is \[4, 7\]\)$",
    ),
    ErrorInput(
        "gate_weights_without_input_columns",
        lambda: tl.SimpleLSTMModel(
            LSTMGateParams(
                *[np.zeros((HID, HID) if k % 2 == 0 else HID, np.float32) for k in range(8)]
            ),
            _linear(HID, OUT),
        ),
        sc.ShapeError,
        r"^lstm\.forget_weights must be \[H, I \+ H\] with I >= 1, got \[4, 4\]$",
    ),
    ErrorInput(
        "linear_bias_shape",
        lambda: tl.SimpleLSTMModel(
            _lstm(IN, HID),
            tl.LinearParams(np.zeros((OUT, HID), np.float32), np.zeros(3, np.float32)),
        ),
        sc.ShapeError,
        r"^output\.bias has shape \[3\], expected \[2\] \(weight is \[2, 4\]\)$",
    ),
    ErrorInput(
        "mixed_dtypes",
        lambda: tl.SimpleLSTMModel(_lstm(IN, HID), _linear(HID, OUT, np.float64)),
        TypeError,
        r"^SimpleLSTMModel mixes dtypes float32 \(lstm\.forget_weights\), float64 "
        r"\(output\.weight\); use one of float32 / float64$",
    ),
    ErrorInput(
        "not_gate_params",
        lambda: tl.SimpleLSTMModel(_linear(IN, HID), _linear(HID, OUT)),  # type: ignore[arg-type]
        TypeError,
        r"^SimpleLSTMModel\.lstm must be LSTMGateParams, got LinearParams$",
    ),
    ErrorInput(
        "inputs_feature_size",
        lambda: tl.simple_lstm_sequence_forward(
            tl.SimpleLSTMModel.init(IN, HID, OUT, rng=0), np.zeros((T, B, 4), np.float32)
        ),
        sc.ShapeError,
        r"^inputs must be a float \[T, B, 3\] or \[T, 3\], got float32\[4, 2, 4\]$",
    ),
    ErrorInput(
        "inputs_dtype",
        lambda: tl.lstm_classifier_forward(
            tl.LSTMClassifier.init(IN, HID, OUT, rng=0), np.zeros((T, B, IN), np.float64)
        ),
        TypeError,
        r"^inputs dtype float64 != the model's float32; cast with \.astype\(np\.float32\)$",
    ),
    ErrorInput(
        "state_shape",
        lambda: tl.simple_lstm_forward(
            tl.SimpleLSTMModel.init(IN, HID, OUT, rng=0),
            np.zeros((B, IN), np.float32),
            (np.zeros((3, HID), np.float32), np.zeros((B, HID), np.float32)),
        ),
        sc.ShapeError,
        r"^initial_state h has shape \[3, 4\], expected \[2, 4\] \(\[B, H\]\)$",
    ),
    ErrorInput(
        "state_not_a_pair",
        lambda: tl.bilstm_forward(
            tl.BiLSTMModel.init(IN, HID, OUT, rng=0),
            np.zeros((T, B, IN), np.float32),
            np.zeros((B, HID), np.float32),  # type: ignore[arg-type]
        ),
        TypeError,
        r"^forward_state must be a pair \(h, c\), got ndarray$",
    ),
    ErrorInput(
        "token_rank",
        lambda: tl.lstm_lm_forward(_lm(), np.zeros((T, B, 1), np.int64)),
        sc.ShapeError,
        r"^inputs tokens must be int \[T, B\] or \[T\], got \[4, 2, 1\]$",
    ),
    ErrorInput(
        "attention_batched_and_single",
        lambda: tl.attention_lstm_forward(
            tl.AttentionLSTMModel.init(IN, HID, OUT, rng=0),
            np.zeros((T, B, IN), np.float32),
            np.zeros((T, IN), np.float32),
        ),
        sc.ShapeError,
        r"^source \[4, 2, 3\] and decoder_inputs \[4, 3\] must both be batched",
    ),
    ErrorInput(
        "from_chain_of_another_model",
        lambda: tl.SimpleLSTMModel.from_chain(zoo.bilstm(IN, HID, OUT)),
        sc.SpecError,
        re.escape(
            "SimpleLSTMModel.from_chain: the chain's parameters are not laid out like "
            "SimpleLSTMModel.to_chain(); missing [], unexpected ['lstm.weight_ih_l0_reverse'"
        ),
    ),
]


@pytest.mark.parametrize("case", error_params(ERRORS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)
