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
    model.output_layer.bias[:] += 1.0
    after, _ = tl.simple_lstm_sequence_forward(model, x)
    assert_close(after, before + 1.0)


def test_models_package_reexports() -> None:
    import specchain.models as models

    assert models.torchlean is tl
    assert models.SimpleLSTMModel is tl.SimpleLSTMModel
    assert set(tl.__all__) <= set(dir(tl))


# --- field names as in LstmModels.lean, the earlier names as aliases ------------------------------

LEAN_FIELDS: list[tuple[type[Any], list[str]]] = [
    (tl.SimpleLSTMModel, ["lstm", "output_layer"]),
    (tl.MultiLayerLSTMModel, ["first_layer", "hidden_layers", "output_layer"]),
    (tl.LSTMClassifier, ["lstm", "classifier"]),
    (tl.LSTMGenerator, ["embedding", "lstm", "output_projection"]),
    (tl.BiLSTMModel, ["forward_lstm", "backward_lstm", "output_layer"]),
    (tl.LSTMLanguageModel, ["embedding", "lstm_layers", "output_projection", "dropout_rate"]),
    (
        tl.AttentionLSTMModel,
        ["encoder_lstm", "decoder_lstm", "attention_weights", "output_layer"],
    ),
    (tl.SimpleLSTMModelGrads, ["lstm", "output_layer"]),
    (tl.MultiLayerLSTMModelGrads, ["first_layer", "hidden_layers", "output_layer"]),
    (tl.BiLSTMModelGrads, ["forward_lstm", "backward_lstm", "output_layer"]),
    (tl.LSTMLanguageModelGrads, ["embedding", "lstm_layers", "output_projection"]),
    (
        tl.AttentionLSTMModelGrads,
        ["encoder_lstm", "decoder_lstm", "attention_weights", "output_layer"],
    ),
]


@pytest.mark.parametrize(
    ("cls", "fields"), [pytest.param(c, f, id=c.__name__) for c, f in LEAN_FIELDS]
)
def test_fields_are_named_as_in_the_lean_file(cls: type[Any], fields: list[str]) -> None:
    """The structures' fields of ``LstmModels.lean``, in their order (the gradient records of the
    models TorchLean gives none repeat their model's fields)."""
    assert [a.name for a in attrs.fields(cls) if a.init] == fields


def _records_and_grads(rng: np.random.Generator) -> list[tuple[Any, Any]]:
    """One record of each renamed kind, with the gradients of one backward pass."""
    x = _x(rng, np.float64, T, B, IN)
    simple = tl.SimpleLSTMModel.init(IN, HID, OUT, rng=0, dtype=np.float64)
    multi = tl.MultiLayerLSTMModel.init(IN, HID, OUT, 3, rng=0, dtype=np.float64)
    bi = tl.BiLSTMModel.init(IN, HID, OUT, rng=0, dtype=np.float64)
    att = tl.AttentionLSTMModel.init(IN, HID, OUT, rng=0, dtype=np.float64)
    g = _x(rng, np.float64, T, B, OUT)
    return [
        (simple, tl.simple_lstm_backward(simple, x, None, g)[0]),
        (multi, tl.multilayer_lstm_backward(multi, x, None, g)[0]),
        (bi, tl.bilstm_backward(bi, x, None, None, g)[0]),
        (att, tl.attention_lstm_backward(att, x, x, g)[0]),
    ]


ALIASES = {"output": "output_layer", "encoder": "encoder_lstm", "decoder": "decoder_lstm"}


def test_earlier_names_are_read_only_aliases(rng: np.random.Generator) -> None:
    """``output``, ``encoder``, ``decoder`` give the very objects of ``output_layer``,
    ``encoder_lstm``, ``decoder_lstm``, on records and gradient records alike; ``layers`` is
    ``(first_layer, *hidden_layers)``; none of them can be assigned."""
    checked = set()
    for record, grads in _records_and_grads(rng):
        for value in (record, grads):
            for old, new in ALIASES.items():
                if hasattr(type(value), old):
                    assert getattr(value, old) is getattr(value, new)
                    with pytest.raises(AttributeError):
                        setattr(value, old, getattr(value, new))
                    checked.add((type(value).__name__, old))
            if isinstance(value, (tl.MultiLayerLSTMModel, tl.MultiLayerLSTMModelGrads)):
                assert value.layers == (value.first_layer, *value.hidden_layers)
                assert len(value.layers) == 3
                with pytest.raises(AttributeError):
                    value.layers = value.layers  # type: ignore[misc]
                checked.add((type(value).__name__, "layers"))
    assert len(checked) == 14
    linear = tl.LinearParams.init(IN, OUT, rng=0)
    assert linear.weights is linear.weight  # LinearSpec's field name
    with pytest.raises(AttributeError):
        linear.weights = linear.weight  # type: ignore[misc]


def test_multilayer_from_layers_is_first_and_hidden_layers() -> None:
    model = tl.MultiLayerLSTMModel.init(IN, HID, OUT, 3, rng=0)
    again = tl.MultiLayerLSTMModel.from_layers(list(model.layers), model.output_layer)
    assert_records_equal(again, model)
    assert again.hidden_layers == model.layers[1:] and model.num_layers == 3
    single = tl.MultiLayerLSTMModel(model.first_layer, (), model.output_layer)
    assert single.num_layers == 1 and single.layers == (model.first_layer,)
    assert set(single.state_dict()) == {
        "lstm.weight_ih_l0",
        "lstm.weight_hh_l0",
        "lstm.bias_ih_l0",
        "lstm.bias_hh_l0",
        "head.weight",
        "head.bias",
    }


# --- the records' public chains and gradient reading ------------------------------------------


def test_cached_chain_is_built_once_and_reloaded(rng: np.random.Generator) -> None:
    """``cached_chain()`` (and the two state-typed chains) are one object per record, reloaded
    with the record's arrays at every call; ``to_chain()`` is a new chain each time."""
    model = tl.SimpleLSTMModel.init(IN, HID, OUT, rng=0, dtype=np.float64)
    x = _x(rng, np.float64, T, B, IN)
    for method in (model.cached_chain, model.chain_with_initial_state):
        assert method() is method()
    assert model.chain_with_final_state() is model.chain_with_final_state()
    assert model.to_chain() is not model.to_chain()
    before = model.cached_chain()(x)
    model.output_layer.bias[:] += 1.0
    assert_close(model.cached_chain()(x), before + 1.0)
    assert_close(model.to_chain()(x), before + 1.0)


def test_state_chains_are_what_the_functions_run(rng: np.random.Generator) -> None:
    """``chain_with_initial_state()`` takes ``(x, (h0, c0))`` stacked ``[N, B, H]`` and gives the
    outputs; ``chain_with_final_state()`` gives the final state too."""
    x, (h0, c0) = _x(rng, np.float64, T, B, IN), _state(rng, np.float64, B)
    simple = tl.SimpleLSTMModel.init(IN, HID, OUT, rng=0, dtype=np.float64)
    ys, (h, c) = tl.simple_lstm_sequence_forward(simple, x, (h0, c0))
    stacked = (x, (h0[None], c0[None]))
    assert_close(simple.chain_with_initial_state()(stacked), ys)
    ys2, (h2, c2) = simple.chain_with_final_state()(stacked)
    assert_close(ys2, ys)
    assert_close(h2[0], h)
    assert_close(c2[0], c)
    bi = tl.BiLSTMModel.init(IN, HID, OUT, rng=0, dtype=np.float64)
    both = (x, (np.stack([h0, h0]), np.stack([c0, c0])))
    assert_close(bi.chain_with_initial_state()(both), tl.bilstm_forward(bi, x, (h0, c0), (h0, c0)))
    att = tl.AttentionLSTMModel.init(IN, HID, OUT, rng=0, dtype=np.float64)
    assert_close(att.cached_chain()((x, x)), tl.attention_lstm_forward(att, x, x))


def test_grads_by_field_reads_a_chains_gradients(rng: np.random.Generator) -> None:
    """A chain's ``state_dict``-named gradients, read by the record's fields: what the gradient
    records are built from."""
    model = tl.MultiLayerLSTMModel.init(IN, HID, OUT, 2, rng=0, dtype=np.float64)
    x, g = _x(rng, np.float64, T, B, IN), _x(rng, np.float64, T, B, OUT)
    chain = model.to_chain()
    _, tape = chain.forward(x)
    _, raw = chain.backward(tape, g)
    by_field = model.grads_by_field(raw)
    assert list(by_field) == ["first_layer", "hidden_layers", "output_layer"]
    assert isinstance(by_field["first_layer"], LSTMGrads)
    assert len(by_field["hidden_layers"]) == 1
    assert isinstance(by_field["output_layer"], LinearGrads)
    assert_close(by_field["output_layer"].dW, raw["head.weight"], "dW")
    assert_close(by_field["hidden_layers"][0].d_forget_bias, raw["lstm.bias_ih_l1"][HID : 2 * HID])
    grads, _, _ = tl.multilayer_lstm_backward(model, x, None, g)
    expected = _arrays(grads)
    for name, array in _arrays(tl.MultiLayerLSTMModelGrads(**by_field)).items():
        assert_close(array, expected[name], name)


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
    assert_linear_grads(grads.output_layer, head)


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
    assert_close(tl.simple_lstm_model_spec(model.lstm, model.output_layer)(xs), ys)
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


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _hand_lm(
    model: tl.LSTMLanguageModel, xs: np.ndarray, keep: float
) -> tuple[np.ndarray, np.ndarray]:
    """TorchLean's ``lstmLmForward`` written out for one layer and one example ``[T, V]``:
    ``f = sigmoid(W_f [x; h] + b_f)``, ... , ``c = f c + i g``, ``h = o tanh(c)``, then the
    projection of ``keep * h``. Returns ``(logits [T, V], hidden states [T, H])``."""
    (layer,) = model.lstm_layers
    h = c = np.zeros(HID)
    hs = []
    for x in xs:
        z = np.concatenate([model.embedding.weight @ x + model.embedding.bias, h])
        f = _sigmoid(layer.forget_weights @ z + layer.forget_bias)
        i = _sigmoid(layer.input_weights @ z + layer.input_bias)
        g = np.tanh(layer.candidate_weights @ z + layer.candidate_bias)
        o = _sigmoid(layer.output_weights @ z + layer.output_bias)
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
    hidden = np.stack(hs)
    projection = model.output_projection
    return (keep * hidden) @ projection.weight.T + projection.bias, hidden


def test_lstm_lm_dropout_inference_by_hand(rng: np.random.Generator) -> None:
    """``"seed"`` (the default) scales the LSTM's output by ``1 - p`` before the projection,
    ``"identity"`` leaves it alone; the backward follows: the projection's ``dW`` is
    ``sum_t g_t (keep h_t)^T`` and every gradient below the dropout scales by ``keep``."""
    p = 0.3
    model = tl.LSTMLanguageModel.init(VOCAB, HID, 1, p, rng=4, dtype=np.float64)
    xs = _x(rng, np.float64, T, VOCAB)
    g = _x(rng, np.float64, T, VOCAB)
    by_mode = {}
    for mode, keep in (("seed", 1 - p), ("identity", 1.0)):
        expected, hidden = _hand_lm(model, xs, keep)
        logits, _ = tl.lstm_lm_forward(model, xs, dropout_inference=mode)  # type: ignore[arg-type]
        assert_close(logits, expected, mode)
        grads, d_inputs, _ = tl.lstm_lm_backward(
            model,
            xs,
            None,
            g,
            dropout_inference=mode,  # type: ignore[arg-type]
        )
        assert_close(grads.output_projection.dW, g.T @ (keep * hidden), f"{mode} dW")
        assert_close(grads.output_projection.db, g.sum(axis=0), f"{mode} db")
        by_mode[mode] = (grads, d_inputs)
    assert_close(tl.lstm_lm_forward(model, xs)[0], _hand_lm(model, xs, 1 - p)[0], "default")
    (seed, d_seed), (identity, d_identity) = by_mode["seed"], by_mode["identity"]
    assert_close(d_seed, (1 - p) * d_identity, "d inputs")
    assert_close(seed.embedding.dW, (1 - p) * identity.embedding.dW, "embedding dW")
    assert_close(
        seed.lstm_layers[0].d_candidate_weights,
        (1 - p) * identity.lstm_layers[0].d_candidate_weights,
        "d_candidate_weights",
    )


def test_lstm_lm_identity_dropout_is_torch_eval(rng: np.random.Generator) -> None:
    """``"identity"`` is ``nn.Dropout`` in ``eval()``: the chain holds a ``Dropout(p)`` (which
    ``from_chain`` reads back), and the logits and final states are torch's without scaling."""
    model = tl.LSTMLanguageModel.init(VOCAB, HID, 2, 0.4, rng=1, dtype=np.float64)
    xs = _x(rng, np.float64, T, B, VOCAB)
    chain = model.to_chain(dropout_inference="identity")
    assert chain.nodes == ["embedding", "lstm", "dropout", "projection"]
    assert model.to_chain().nodes == ["embedding", "lstm", "scaled_dropout", "projection"]
    assert tl.LSTMLanguageModel.from_chain(chain).dropout_rate == 0.4
    run = _torch_lm(model, 2, 1.0, np.float64)
    zeros = torch.zeros(2, B, HID, dtype=torch.float64)
    yt, (ht, _) = run(torch_from(xs), zeros, zeros)
    logits, finals = tl.lstm_lm_forward(model, xs, dropout_inference="identity")
    assert_close(logits, yt, "logits")
    assert_close(finals[1][0], ht[1], "h_n[1]")
    assert_close(chain(xs), logits, "to_chain")
    tokens = rng.integers(0, VOCAB, size=(T, B))
    by_tokens = model.to_chain(tokens=True, dropout_inference="identity")(tokens)
    assert_close(by_tokens, tl.lstm_lm_forward(model, np.eye(VOCAB)[tokens], None, "identity")[0])


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
    assert_linear_grads(grads.output_layer, head)
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
    expected = both @ model.output_layer.weight.T + model.output_layer.bias
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
        layer_grads = grads.first_layer if k == 0 else grads.hidden_layers[k - 1]
        assert_lstm_grads(layer_grads, lstm, f"_l{k}")
    assert_linear_grads(grads.output_layer, head)


def test_multilayer_lstm_spec_is_two_separate_layers(rng: np.random.Generator) -> None:
    """TorchLean's two-spec ``multilayerLstmSpec`` (``zoo.two_layer``) computes what the stacked
    record does with the same two layers."""
    model = tl.MultiLayerLSTMModel.init(IN, HID, OUT, 2, rng=1, dtype=np.float64)
    chain = tl.multilayer_lstm_spec(model.first_layer, model.hidden_layers[0], model.output_layer)
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
    assert_lstm_grads(grads.encoder_lstm, core.encoder)
    assert_lstm_grads(grads.decoder_lstm, core.decoder, "")
    assert_linear_grads(grads.attention_weights, core.attention_weights)
    assert_linear_grads(grads.output_layer, core.output)

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
    pairs = {k.replace("output_layer.", "classifier."): v for k, v in pairs.items()}
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
        r"^SimpleLSTMModel: output_layer\.in_features is 6 but lstm\.hidden_size is 5; "
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
        r"^BiLSTMModel: output_layer\.in_features is 4 but 2 \* forward_lstm\.hidden_size is 8; ",
    ),
    ErrorInput(
        "bilstm_directions_differ",
        lambda: tl.BiLSTMModel(_lstm(IN, HID), _lstm(IN, 3), _linear(2 * HID, OUT)),
        sc.SpecError,
        r"^BiLSTMModel: backward_lstm\.hidden_size is 3 but forward_lstm\.hidden_size is 4; ",
    ),
    ErrorInput(
        "multilayer_second_layer_reads_wrong_size",
        lambda: tl.MultiLayerLSTMModel(_lstm(IN, HID), [_lstm(3, HID)], _linear(HID, OUT)),
        sc.SpecError,
        r"^MultiLayerLSTMModel: hidden_layers\[0\]\.input_size is 3 but first_layer\.hidden_size "
        r"is 4; ",
    ),
    ErrorInput(
        "multilayer_no_layers",
        lambda: tl.MultiLayerLSTMModel.from_layers([], _linear(HID, OUT)),
        sc.SpecError,
        r"^MultiLayerLSTMModel\.from_layers needs at least one LSTM layer \(the first_layer\)$",
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
        "lm_dropout_inference_unknown",
        lambda: tl.lstm_lm_forward(
            _lm(1),
            np.zeros((T, B), np.int64),
            None,
            "eval",  # type: ignore[arg-type]
        ),
        ValueError,
        r"^dropout_inference must be 'seed' \(y = \(1 - p\) \* x, TorchLean's first revision\) or "
        r"'identity' \(y = x, its later evaluation-mode dropout\), got 'eval'$",
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
        r"^AttentionLSTMModel: decoder_lstm\.input_size is 3 but encoder_lstm input_size \+ "
        r"hidden_size is 7; ",
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
        r"^output_layer\.bias has shape \[3\], expected \[2\] \(weight is \[2, 4\]\)$",
    ),
    ErrorInput(
        "mixed_dtypes",
        lambda: tl.SimpleLSTMModel(_lstm(IN, HID), _linear(HID, OUT, np.float64)),
        TypeError,
        r"^SimpleLSTMModel mixes dtypes float32 \(lstm\.forget_weights\), float64 "
        r"\(output_layer\.weight\); use one of float32 / float64$",
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
