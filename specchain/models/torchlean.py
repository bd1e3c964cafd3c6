"""TorchLean's LSTM model API (``NN/Spec/Module/LstmModels.lean``), as a thin layer over chains.

TorchLean describes its models as parameter records (``SimpleLSTMModel``, ``LSTMClassifier``, ...)
and free functions (``simpleLstmForward``, ``simpleLstmBackward``, ...). Here every record holds
numpy arrays in TorchLean's gate-wise layout (``LSTMGateParams``: per gate a weight ``[H, I + H]``
over ``[x; h]`` and one bias ``[H]``; ``LinearParams``: ``weight [O, I]``, ``bias [O]``), and every
function does the same three things: build the equivalent ``SpecChain`` (a zoo builder or a few
specs), load the record's weights into it (``record.state_dict()``, PyTorch's fused layout) and run
the chain's ``forward`` / ``backward``. No LSTM math lives in this file. (A record keeps the
chains its functions built and reloads its arrays into them at every call, so repeated calls, such
as stepping ``simple_lstm_forward`` through a sequence, pay for type inference only once.)

Conventions:

- Sequences are time-major: ``inputs [T, B, F]``; a single example ``[T, F]`` works too, and then
  states are ``[H]`` instead of ``[B, H]``. Token inputs are integer ``[T, B]`` (or ``[T]``).
- A state is the pair ``(h, c)``, each ``[B, H]``; ``None`` means zeros. Multi-layer functions take
  and return a list with one pair per layer.
- Every record has ``init(sizes..., rng=None, dtype=np.float32)`` (PyTorch's default
  initialisation, like the specs), ``state_dict()``, ``to_chain()`` and ``from_chain(chain)``.
  Its sizes are read off the arrays and checked against each other when it is built.
- Gradients come back as TorchLean's records (``LSTMGrads``, ``LinearGrads`` and one record per
  model with the model's field names), inputs' and states' gradients as arrays shaped like them.
- Building a chain here never advances the library-wide generator (``sc.seed``): the throwaway
  initial weights it draws are replaced by the record's, and the generator's state is restored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import attrs
import numpy as np

from specchain.chain import Part, SpecChain, parallel, serial
from specchain.losses import mse
from specchain.models import zoo
from specchain.modules.activation import Identity
from specchain.modules.dropout import ScaledDropout
from specchain.modules.embedding import OneHot
from specchain.modules.gatewise import LinearGrads, LSTMGateParams, LSTMGrads
from specchain.modules.linear import Linear
from specchain.modules.recurrent import LSTM
from specchain.params import FLOAT_DTYPES, RngLike, as_generator
from specchain.types import ShapeError, SpecError, TensorType, TupleType, Type

__all__ = [
    "AttentionLSTMModel",
    "AttentionLSTMModelGrads",
    "BiLSTMModel",
    "BiLSTMModelGrads",
    "LSTMClassifier",
    "LSTMGenerator",
    "LSTMLanguageModel",
    "LSTMLanguageModelGrads",
    "LinearParams",
    "MultiLayerLSTMModel",
    "MultiLayerLSTMModelGrads",
    "SimpleLSTMModel",
    "SimpleLSTMModelGrads",
    "State",
    "attention_lstm_backward",
    "attention_lstm_forward",
    "bilstm_backward",
    "bilstm_forward",
    "bilstm_to_module_spec",
    "lstm_classifier_backward",
    "lstm_classifier_forward",
    "lstm_classifier_model_spec",
    "lstm_classifier_to_module_spec",
    "lstm_generator_forward",
    "lstm_language_model_spec",
    "lstm_lm_backward",
    "lstm_lm_forward",
    "multilayer_lstm_backward",
    "multilayer_lstm_forward",
    "multilayer_lstm_spec",
    "simple_lstm_backward",
    "simple_lstm_forward",
    "simple_lstm_model_spec",
    "simple_lstm_mse_grad",
    "simple_lstm_mse_loss",
    "simple_lstm_sequence_forward",
    "simple_lstm_to_module_spec",
]

State = tuple[np.ndarray, np.ndarray]
"""An LSTM state ``(h, c)``, each ``[B, H]`` (or ``[H]`` for a single example)."""

M = TypeVar("M", bound="_Model")


# --- the parts: TorchLean's LinearSpec, and checks of both part kinds -------------------------


@attrs.frozen(eq=False)
class LinearParams:
    """TorchLean's ``LinearSpec``: ``y = W x + b`` with ``weight [O, I]`` and ``bias [O]``."""

    weight: np.ndarray
    bias: np.ndarray

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    @classmethod
    def init(
        cls, in_features: int, out_features: int, rng: RngLike = None, dtype: Any = np.float32
    ) -> LinearParams:
        """PyTorch's default initialisation (that of ``Linear``), from ``rng``."""
        params = Linear(in_features, out_features, rng=as_generator(rng)).to(dtype).params
        return cls(params["weight"], params["bias"])


def _init_lstm(
    input_size: int, hidden_size: int, rng: np.random.Generator, dtype: Any
) -> LSTMGateParams:
    """PyTorch's default LSTM initialisation, viewed gate-wise (the bias is ``b_ih + b_hh``)."""
    p = LSTM(input_size, hidden_size, rng=rng).to(dtype).params
    return LSTMGateParams.from_fused(
        p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"]
    )


def _shape(a: np.ndarray) -> list[int]:
    return [int(n) for n in a.shape]


def _lstm_sizes(p: LSTMGateParams, where: str) -> tuple[int, int]:
    """``(I, H)`` of a gate-wise LSTM layer, after checking every gate has the same shapes."""
    for a in attrs.fields(LSTMGateParams):
        value = getattr(p, a.name)
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{where}.{a.name} must be a numpy array, got {type(value).__name__}")
    first = p.forget_weights
    if first.ndim != 2 or first.shape[1] <= first.shape[0]:
        raise ShapeError(
            f"{where}.forget_weights must be [H, I + H] with I >= 1, got {_shape(first)}"
        )
    hidden = int(first.shape[0])
    for a in attrs.fields(LSTMGateParams):
        value = getattr(p, a.name)
        expected = first.shape if a.name.endswith("_weights") else (hidden,)
        if value.shape != expected:
            raise ShapeError(
                f"{where}.{a.name} has shape {_shape(value)}, expected {list(expected)} "
                f"(forget_weights is {_shape(first)})"
            )
    return int(first.shape[1]) - hidden, hidden


def _linear_sizes(p: LinearParams, where: str) -> tuple[int, int]:
    """``(in_features, out_features)`` of a linear layer, after checking its shapes."""
    for name in ("weight", "bias"):
        if not isinstance(getattr(p, name), np.ndarray):
            kind = type(getattr(p, name)).__name__
            raise TypeError(f"{where}.{name} must be a numpy array, got {kind}")
    if p.weight.ndim != 2:
        raise ShapeError(f"{where}.weight must be [O, I], got {_shape(p.weight)}")
    if p.bias.shape != (p.weight.shape[0],):
        raise ShapeError(
            f"{where}.bias has shape {_shape(p.bias)}, expected [{p.weight.shape[0]}] "
            f"(weight is {_shape(p.weight)})"
        )
    return p.in_features, p.out_features


def _same(model: str, a: str, a_size: int, b: str, b_size: int) -> None:
    if a_size != b_size:
        raise SpecError(f"{model}: {a} is {a_size} but {b} is {b_size}; they must be equal")


# --- layouts: where each part's arrays live in the chain's state_dict ------------------------


@attrs.frozen
class _LSTMSlot:
    """One gate-wise LSTM layer at ``{prefix}weight_ih{suffix}`` etc. of a chain."""

    prefix: str
    suffix: str

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}{self.suffix}"

    def names(self) -> list[str]:
        return [self.key(n) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def state(self, part: LSTMGateParams) -> dict[str, np.ndarray]:
        input_size = part.forget_weights.shape[1] - part.forget_weights.shape[0]
        return {self.key(k): v for k, v in part.to_fused(input_size).items()}

    def params(self, state: dict[str, np.ndarray]) -> LSTMGateParams:
        return LSTMGateParams.from_fused(*(state[k] for k in self.names()))

    def grads(self, grads: dict[str, np.ndarray]) -> LSTMGrads:
        keys = self.names()  # d bias_ih == d bias_hh == d of TorchLean's single bias
        return LSTMGrads.from_fused(grads[keys[0]], grads[keys[1]], grads[keys[2]])


@attrs.frozen
class _LinearSlot:
    """One linear layer at ``{prefix}weight`` and ``{prefix}bias``."""

    prefix: str

    def names(self) -> list[str]:
        return [f"{self.prefix}weight", f"{self.prefix}bias"]

    def state(self, part: LinearParams) -> dict[str, np.ndarray]:
        return dict(zip(self.names(), (part.weight, part.bias)))

    def params(self, state: dict[str, np.ndarray]) -> LinearParams:
        return LinearParams(*(state[k] for k in self.names()))

    def grads(self, grads: dict[str, np.ndarray]) -> LinearGrads:
        return LinearGrads.from_fused(grads, self.prefix)


_Slot = _LSTMSlot | _LinearSlot
Layout = dict[str, _Slot | tuple[_Slot, ...]]


def _slots(entry: _Slot | tuple[_Slot, ...]) -> tuple[_Slot, ...]:
    return entry if isinstance(entry, tuple) else (entry,)


def _layers(prefix: str, count: int) -> tuple[_Slot, ...]:
    return tuple(_LSTMSlot(prefix, f"_l{k}") for k in range(count))


def _state_of(layout: Layout, parts: dict[str, Any]) -> dict[str, np.ndarray]:
    state: dict[str, np.ndarray] = {}
    for field, entry in layout.items():
        values = parts[field] if isinstance(entry, tuple) else (parts[field],)
        for slot, value in zip(_slots(entry), values, strict=True):
            state.update(slot.state(value))
    return state


def _read(layout: Layout, arrays: dict[str, np.ndarray], grads: bool) -> dict[str, Any]:
    """Parts (or their gradient records) by field, read from chain-named arrays."""
    out: dict[str, Any] = {}
    for field, entry in layout.items():
        read = [slot.grads(arrays) if grads else slot.params(arrays) for slot in _slots(entry)]
        out[field] = tuple(read) if isinstance(entry, tuple) else read[0]
    return out


def _count_layers(state: dict[str, np.ndarray], prefix: str = "lstm.") -> int:
    pattern = re.compile(rf"^{re.escape(prefix)}weight_ih_l(\d+)$")
    return sum(1 for key in state if pattern.match(key))


@contextmanager
def _library_generator_untouched() -> Iterator[None]:
    """Specs draw initial weights from the library-wide generator; the chains built here
    overwrite them at once, so put the generator back where the user left it."""
    generator = as_generator(None)
    saved = generator.bit_generator.state
    try:
        yield
    finally:
        generator.bit_generator.state = saved


def _as_layers(layers: Iterable[LSTMGateParams]) -> tuple[LSTMGateParams, ...]:
    return tuple(layers)


def _check_kind(inst: object, where: str, value: object, kind: type) -> None:
    if not isinstance(value, kind):
        raise TypeError(
            f"{type(inst).__name__}.{where} must be {kind.__name__}, got {type(value).__name__}"
        )


def _gate_params(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_kind(inst, attribute.name, value, LSTMGateParams)


def _linear_params(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_kind(inst, attribute.name, value, LinearParams)


def _gate_params_list(
    inst: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]
) -> None:
    for k, item in enumerate(value):
        _check_kind(inst, f"{attribute.name}[{k}]", item, LSTMGateParams)


# --- the records -----------------------------------------------------------------------------


@attrs.frozen(eq=False)
class _Model:
    """What every record shares: its layout, ``state_dict``, ``to_chain`` and ``from_chain``.

    Subclasses are frozen attrs classes whose parameter fields are named in ``_layout_for``.
    ``_chains`` keeps the chains the functions run, built once per record (see ``_cached``).
    """

    _chains: dict[Any, SpecChain] = attrs.field(init=False, factory=dict, repr=False)

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        raise NotImplementedError

    @property
    def _num_lstm_layers(self) -> int:
        return 1

    def _layout(self) -> Layout:
        return self._layout_for(self._num_lstm_layers)

    @classmethod
    def _options_from(cls, chain: SpecChain) -> dict[str, Any]:
        return {}

    def _build(self) -> SpecChain:
        raise NotImplementedError

    def _arrays(self) -> dict[str, np.ndarray]:
        """Every array of the record by its field path (``lstm.forget_weights``, ...)."""
        out: dict[str, np.ndarray] = {}
        for field, entry in self._layout().items():
            parts = getattr(self, field)
            many = isinstance(entry, tuple)
            for k, part in enumerate(parts if many else (parts,)):
                where = f"{field}[{k}]" if many else field
                for a in attrs.fields(type(part)):
                    out[f"{where}.{a.name}"] = getattr(part, a.name)
        return out

    def _check(self) -> None:
        """One float dtype (float32 or float64) for every array."""
        name = type(self).__name__
        first: dict[str, str] = {}
        for where, value in self._arrays().items():
            first.setdefault(str(value.dtype), where)
        if len(first) > 1:
            shown = ", ".join(f"{dtype} ({where})" for dtype, where in first.items())
            raise TypeError(f"{name} mixes dtypes {shown}; use one of float32 / float64")
        dtype = np.dtype(next(iter(first)))
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} parameters must be float32 or float64, got {dtype}")

    @property
    def dtype(self) -> np.dtype[Any]:
        """The float dtype of every array of the record."""
        return next(iter(self._arrays().values())).dtype

    def state_dict(self) -> dict[str, np.ndarray]:
        """PyTorch's fused layout under the names of ``to_chain()`` (``lstm.weight_ih_l0``, ...).

        Each gate-wise bias goes to ``bias_ih``; ``bias_hh`` is zero (the same function)."""
        layout = self._layout()
        return _state_of(layout, {field: getattr(self, field) for field in layout})

    def to_chain(self) -> SpecChain:
        """The equivalent ``SpecChain`` with this record's weights loaded (a new chain)."""
        return _loaded(self, self._build)

    @property
    def hidden_size(self) -> int:
        """H, the hidden size of the (first) LSTM."""
        raise NotImplementedError

    @property
    def _state_count(self) -> int:
        """How many ``(h, c)`` pairs the LSTM of ``_build()`` takes (layers x directions)."""
        return self._num_lstm_layers

    def _state_chain(self) -> SpecChain:
        """``to_chain()`` typed to take ``(x, (h0, c0))``, as the functions call it."""

        def build() -> SpecChain:
            chain = self._build()
            return _state_typed(chain, chain.in_type, self._state_count, self.hidden_size)

        return self._cached("state", build)

    def _cached(self, key: Any, build: Callable[[], SpecChain]) -> SpecChain:
        """The chain ``build()`` makes, built once per record and ``key``, and loaded with the
        record's current arrays at every call (so edits of the arrays in place are seen)."""
        chain = self._chains.get(key)
        if chain is None:
            with _library_generator_untouched():
                chain = build()
            chain.to(self.dtype)
            self._chains[key] = chain
        chain.load_state_dict(self.state_dict())
        return chain

    @classmethod
    def from_chain(cls: type[M], chain: SpecChain) -> M:
        """The record of a chain laid out like ``to_chain()`` (biases summed per gate)."""
        state = chain.state_dict()
        layout = cls._layout_for(_count_layers(state))
        expected = [k for entry in layout.values() for s in _slots(entry) for k in s.names()]
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        if missing or unexpected:
            raise SpecError(
                f"{cls.__name__}.from_chain: the chain's parameters are not laid out like "
                f"{cls.__name__}.to_chain(); missing {missing}, unexpected {unexpected}"
            )
        return cls(**_read(layout, state, grads=False), **cls._options_from(chain))

    def _grads(self, record: type[Any], grads: dict[str, np.ndarray]) -> Any:
        return record(**_read(self._layout(), grads, grads=True))


def _loaded(model: _Model, build: Callable[[], SpecChain]) -> SpecChain:
    """``build()`` (without touching the library generator), cast and loaded with ``model``."""
    with _library_generator_untouched():
        chain = build()
    chain.to(model.dtype)
    chain.load_state_dict(model.state_dict())
    return chain


def _embed(vocab_size: int, hidden_size: int, tokens: bool) -> Part:
    """TorchLean's embedding: a linear layer on ``[T, B, V]`` vectors (one-hot for tokens)."""
    linear = Linear(vocab_size, hidden_size, name="embedding")
    return OneHot(vocab_size) >> linear if tokens else linear


def _state_typed(chain: SpecChain, x_type: Type, count: int, hidden: int) -> SpecChain:
    """``chain`` (its graph) typed to take ``(x, (h0 [count, B, H], c0 [count, B, H]))``, so calls
    with a state check their input by unification instead of re-inferring the whole graph."""
    state = TensorType((count, "B", hidden))
    return SpecChain(chain.graph, TupleType((x_type, TupleType((state, state)))))


def _stateful(lstm: LSTM, head: Part, embed: Part | None = None) -> SpecChain:
    """``[embed >>] lstm >> head`` carrying the LSTM's state through:
    ``(x, (h0, c0))`` -> ``(head(y), (h_n, c_n))`` (``lstm`` has ``return_state=True``)."""
    tail = parallel(head, Identity(name="final_state"))
    count, hidden = lstm.num_layers * lstm.directions, lstm.hidden_size
    if embed is None:
        return _state_typed(lstm >> tail, lstm.in_type, count, hidden)
    carried = parallel(embed, Identity(name="initial_state"))
    typed = _state_typed(carried, SpecChain.of(embed).in_type, count, hidden)
    return serial(typed, lstm, tail)


@attrs.frozen(eq=False)
class SimpleLSTMModel(_Model):
    """One LSTM layer (``[T, B, I]`` -> ``[T, B, H]``) and a per-timestep output layer
    (``H`` -> ``O``). Chain: ``zoo.seq2seq`` (nodes ``lstm``, ``head``)."""

    lstm: LSTMGateParams = attrs.field(validator=_gate_params)
    output: LinearParams = attrs.field(validator=_linear_params)

    def __attrs_post_init__(self) -> None:
        _, hidden = _lstm_sizes(self.lstm, "lstm")
        in_features, _ = _linear_sizes(self.output, "output")
        _same("SimpleLSTMModel", "output.in_features", in_features, "lstm.hidden_size", hidden)
        self._check()

    @property
    def input_size(self) -> int:
        return _lstm_sizes(self.lstm, "lstm")[0]

    @property
    def hidden_size(self) -> int:
        return _lstm_sizes(self.lstm, "lstm")[1]

    @property
    def output_size(self) -> int:
        return self.output.out_features

    @classmethod
    def init(
        cls,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> SimpleLSTMModel:
        gen = as_generator(rng)
        return cls(
            _init_lstm(input_size, hidden_size, gen, dtype),
            LinearParams.init(hidden_size, output_size, gen, dtype),
        )

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {"lstm": _LSTMSlot("lstm.", "_l0"), "output": _LinearSlot("head.")}

    def _build(self) -> SpecChain:
        return zoo.seq2seq(self.input_size, self.hidden_size, self.output_size)

    def _stateful_chain(self) -> SpecChain:
        i, h, o = self.input_size, self.hidden_size, self.output_size
        return self._cached(
            "stateful",
            lambda: _stateful(LSTM(i, h, return_state=True), Linear(h, o, name="head")),
        )


@attrs.frozen(eq=False)
class SimpleLSTMModelGrads:
    """Gradients of a ``SimpleLSTMModel``: ``lstm`` gate-wise, ``output`` as ``LinearGrads``."""

    lstm: LSTMGrads
    output: LinearGrads


@attrs.frozen(eq=False)
class MultiLayerLSTMModel(_Model):
    """Stacked LSTM layers (the first ``I`` -> ``H``, the others ``H`` -> ``H``) and a
    per-timestep output layer ``H`` -> ``O``. Chain: ``zoo.stacked(num_layers=L)``, one
    ``nn.LSTM(num_layers=L)`` (nodes ``lstm``, ``head``)."""

    layers: tuple[LSTMGateParams, ...] = attrs.field(
        converter=_as_layers,
        validator=_gate_params_list,
    )
    output: LinearParams = attrs.field(validator=_linear_params)

    def __attrs_post_init__(self) -> None:
        _check_stack("MultiLayerLSTMModel", "layers", self.layers, None)
        _, hidden = _lstm_sizes(self.layers[0], "layers[0]")
        in_features, _ = _linear_sizes(self.output, "output")
        _same("MultiLayerLSTMModel", "output.in_features", in_features, "the hidden size", hidden)
        self._check()

    @property
    def input_size(self) -> int:
        return _lstm_sizes(self.layers[0], "layers[0]")[0]

    @property
    def hidden_size(self) -> int:
        return _lstm_sizes(self.layers[0], "layers[0]")[1]

    @property
    def output_size(self) -> int:
        return self.output.out_features

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def _num_lstm_layers(self) -> int:
        return self.num_layers

    @classmethod
    def init(
        cls,
        input_size: int,
        hidden_size: int,
        output_size: int,
        num_layers: int,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> MultiLayerLSTMModel:
        gen = as_generator(rng)
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        layers = [_init_lstm(size, hidden_size, gen, dtype) for size in sizes]
        return cls(layers, LinearParams.init(hidden_size, output_size, gen, dtype))

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {"layers": _layers("lstm.", layers), "output": _LinearSlot("head.")}

    def _build(self) -> SpecChain:
        i, h, o = self.input_size, self.hidden_size, self.output_size
        return zoo.stacked(i, h, o, num_layers=self.num_layers)

    def _stateful_chain(self) -> SpecChain:
        i, h, o, n = self.input_size, self.hidden_size, self.output_size, self.num_layers
        return self._cached(
            "stateful",
            lambda: _stateful(
                LSTM(i, h, num_layers=n, return_state=True), Linear(h, o, name="head")
            ),
        )


@attrs.frozen(eq=False)
class MultiLayerLSTMModelGrads:
    """Gradients of a ``MultiLayerLSTMModel``: one ``LSTMGrads`` per layer, and the output's."""

    layers: tuple[LSTMGrads, ...]
    output: LinearGrads


def _check_stack(
    model: str, field: str, layers: tuple[LSTMGateParams, ...], input_size: int | None
) -> None:
    """Layer 0 reads ``input_size`` (any if None); every later layer reads the hidden size."""
    if not layers:
        raise SpecError(f"{model}.{field} needs at least one LSTM layer")
    _, hidden = _lstm_sizes(layers[0], f"{field}[0]")
    for k, layer in enumerate(layers):
        reads, size = _lstm_sizes(layer, f"{field}[{k}]")
        _same(model, f"{field}[{k}].hidden_size", size, f"{field}[0].hidden_size", hidden)
        if k > 0:
            _same(model, f"{field}[{k}].input_size", reads, f"{field}[{k - 1}].hidden_size", hidden)
        elif input_size is not None:
            _same(model, f"{field}[0].input_size", reads, "the embedding size", input_size)


@attrs.frozen(eq=False)
class LSTMClassifier(_Model):
    """An LSTM over ``[T, B, I]`` and a linear ``classifier`` (``H`` -> ``C``) on its final
    hidden state. Chain: ``zoo.classifier`` (nodes ``lstm``, ``last_step``, ``head``)."""

    lstm: LSTMGateParams = attrs.field(validator=_gate_params)
    classifier: LinearParams = attrs.field(validator=_linear_params)

    def __attrs_post_init__(self) -> None:
        _, hidden = _lstm_sizes(self.lstm, "lstm")
        in_features, _ = _linear_sizes(self.classifier, "classifier")
        _same("LSTMClassifier", "classifier.in_features", in_features, "lstm.hidden_size", hidden)
        self._check()

    @property
    def input_size(self) -> int:
        return _lstm_sizes(self.lstm, "lstm")[0]

    @property
    def hidden_size(self) -> int:
        return _lstm_sizes(self.lstm, "lstm")[1]

    @property
    def num_classes(self) -> int:
        return self.classifier.out_features

    @classmethod
    def init(
        cls,
        input_size: int,
        hidden_size: int,
        num_classes: int,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> LSTMClassifier:
        gen = as_generator(rng)
        return cls(
            _init_lstm(input_size, hidden_size, gen, dtype),
            LinearParams.init(hidden_size, num_classes, gen, dtype),
        )

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {"lstm": _LSTMSlot("lstm.", "_l0"), "classifier": _LinearSlot("head.")}

    def _build(self) -> SpecChain:
        return zoo.classifier(self.input_size, self.hidden_size, self.num_classes)


@attrs.frozen(eq=False)
class LSTMGenerator(_Model):
    """Many-to-many over a vocabulary: a linear ``embedding`` (``V`` -> ``H``), an LSTM
    ``H`` -> ``H`` and an ``output_projection`` ``H`` -> ``V`` per timestep.

    Chain (``to_chain(tokens=False)``): ``embedding`` (``Linear``, after ``OneHot`` for integer
    tokens), ``lstm``, ``projection``. Inputs are ``[T, B, V]`` vectors, as in TorchLean, or
    integer tokens ``[T, B]`` (one-hot encoded).
    """

    embedding: LinearParams = attrs.field(validator=_linear_params)
    lstm: LSTMGateParams = attrs.field(validator=_gate_params)
    output_projection: LinearParams = attrs.field(validator=_linear_params)

    def __attrs_post_init__(self) -> None:
        _check_vocab_model("LSTMGenerator", self.embedding, self.output_projection)
        reads, hidden = _lstm_sizes(self.lstm, "lstm")
        emb = self.embedding.out_features
        _same("LSTMGenerator", "lstm.input_size", reads, "embedding.out_features", emb)
        _same("LSTMGenerator", "lstm.hidden_size", hidden, "embedding.out_features", emb)
        self._check()

    @property
    def vocab_size(self) -> int:
        return self.embedding.in_features

    @property
    def hidden_size(self) -> int:
        return self.embedding.out_features

    @classmethod
    def init(
        cls, vocab_size: int, hidden_size: int, rng: RngLike = None, dtype: Any = np.float32
    ) -> LSTMGenerator:
        gen = as_generator(rng)
        return cls(
            LinearParams.init(vocab_size, hidden_size, gen, dtype),
            _init_lstm(hidden_size, hidden_size, gen, dtype),
            LinearParams.init(hidden_size, vocab_size, gen, dtype),
        )

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {
            "embedding": _LinearSlot("embedding."),
            "lstm": _LSTMSlot("lstm.", "_l0"),
            "output_projection": _LinearSlot("projection."),
        }

    def to_chain(self, tokens: bool = False) -> SpecChain:
        """``[T, B, V]`` vectors (or ``int [T, B]`` tokens) -> logits ``[T, B, V]``."""
        v, h = self.vocab_size, self.hidden_size
        return _loaded(
            self,
            lambda: serial(_embed(v, h, tokens), LSTM(h, h), Linear(h, v, name="projection")),
        )

    def _stateful_chain(self, tokens: bool) -> SpecChain:
        v, h = self.vocab_size, self.hidden_size
        return self._cached(
            ("stateful", tokens),
            lambda: _stateful(
                LSTM(h, h, return_state=True),
                Linear(h, v, name="projection"),
                _embed(v, h, tokens),
            ),
        )


def _check_vocab_model(model: str, embedding: LinearParams, projection: LinearParams) -> None:
    vocab, emb = _linear_sizes(embedding, "embedding")
    reads, writes = _linear_sizes(projection, "output_projection")
    _same(model, "output_projection.in_features", reads, "embedding.out_features", emb)
    _same(model, "output_projection.out_features", writes, "embedding.in_features", vocab)


@attrs.frozen(eq=False)
class BiLSTMModel(_Model):
    """A forward LSTM over ``[T, B, I]``, a backward LSTM over the reversed sequence, and an
    output layer ``2H`` -> ``O`` on their per-timestep concatenation (forward first).
    Chain: ``zoo.bilstm``, one ``nn.LSTM(bidirectional=True)`` (nodes ``lstm``, ``head``)."""

    forward_lstm: LSTMGateParams = attrs.field(validator=_gate_params)
    backward_lstm: LSTMGateParams = attrs.field(validator=_gate_params)
    output: LinearParams = attrs.field(validator=_linear_params)

    def __attrs_post_init__(self) -> None:
        fwd_in, fwd_h = _lstm_sizes(self.forward_lstm, "forward_lstm")
        bwd_in, bwd_h = _lstm_sizes(self.backward_lstm, "backward_lstm")
        name = "BiLSTMModel"
        _same(name, "backward_lstm.input_size", bwd_in, "forward_lstm.input_size", fwd_in)
        _same(name, "backward_lstm.hidden_size", bwd_h, "forward_lstm.hidden_size", fwd_h)
        in_features, _ = _linear_sizes(self.output, "output")
        _same(name, "output.in_features", in_features, "2 * forward_lstm.hidden_size", 2 * fwd_h)
        self._check()

    @property
    def input_size(self) -> int:
        return _lstm_sizes(self.forward_lstm, "forward_lstm")[0]

    @property
    def hidden_size(self) -> int:
        return _lstm_sizes(self.forward_lstm, "forward_lstm")[1]

    @property
    def output_size(self) -> int:
        return self.output.out_features

    @classmethod
    def init(
        cls,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> BiLSTMModel:
        gen = as_generator(rng)
        return cls(
            _init_lstm(input_size, hidden_size, gen, dtype),
            _init_lstm(input_size, hidden_size, gen, dtype),
            LinearParams.init(2 * hidden_size, output_size, gen, dtype),
        )

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {
            "forward_lstm": _LSTMSlot("lstm.", "_l0"),
            "backward_lstm": _LSTMSlot("lstm.", "_l0_reverse"),
            "output": _LinearSlot("head."),
        }

    @property
    def _state_count(self) -> int:
        return 2  # nn.LSTM's h0 [2, B, H]: forward, then backward

    def _build(self) -> SpecChain:
        return zoo.bilstm(self.input_size, self.hidden_size, self.output_size)


@attrs.frozen(eq=False)
class BiLSTMModelGrads:
    """Gradients of a ``BiLSTMModel``, field for field."""

    forward_lstm: LSTMGrads
    backward_lstm: LSTMGrads
    output: LinearGrads


@attrs.frozen(eq=False)
class LSTMLanguageModel(_Model):
    """A linear ``embedding`` (``V`` -> ``H``), stacked LSTM layers ``H`` -> ``H``, TorchLean's
    deterministic dropout ``y = (1 - dropout_rate) * x`` (``ScaledDropout``) and an
    ``output_projection`` ``H`` -> ``V``.

    Chain (``to_chain(tokens=False)``): ``embedding`` (after ``OneHot`` for tokens), ``lstm`` (one
    ``nn.LSTM(num_layers=L)``), ``scaled_dropout``, ``projection``.
    """

    embedding: LinearParams = attrs.field(validator=_linear_params)
    lstm_layers: tuple[LSTMGateParams, ...] = attrs.field(
        converter=_as_layers,
        validator=_gate_params_list,
    )
    output_projection: LinearParams = attrs.field(validator=_linear_params)
    dropout_rate: float = attrs.field(default=0.0, converter=float)

    def __attrs_post_init__(self) -> None:
        name = "LSTMLanguageModel"
        if not 0.0 <= self.dropout_rate <= 1.0:
            raise SpecError(f"{name}.dropout_rate must be in [0, 1], got {self.dropout_rate}")
        _check_vocab_model(name, self.embedding, self.output_projection)
        emb = self.embedding.out_features
        _check_stack(name, "lstm_layers", self.lstm_layers, emb)
        _, hidden = _lstm_sizes(self.lstm_layers[0], "lstm_layers[0]")
        _same(name, "lstm_layers[0].hidden_size", hidden, "embedding.out_features", emb)
        self._check()

    @property
    def vocab_size(self) -> int:
        return self.embedding.in_features

    @property
    def hidden_size(self) -> int:
        return self.embedding.out_features

    @property
    def num_layers(self) -> int:
        return len(self.lstm_layers)

    @property
    def _num_lstm_layers(self) -> int:
        return self.num_layers

    @classmethod
    def init(
        cls,
        vocab_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout_rate: float = 0.0,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> LSTMLanguageModel:
        gen = as_generator(rng)
        embedding = LinearParams.init(vocab_size, hidden_size, gen, dtype)
        layers = [_init_lstm(hidden_size, hidden_size, gen, dtype) for _ in range(num_layers)]
        projection = LinearParams.init(hidden_size, vocab_size, gen, dtype)
        return cls(embedding, layers, projection, dropout_rate)

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {
            "embedding": _LinearSlot("embedding."),
            "lstm_layers": _layers("lstm.", layers),
            "output_projection": _LinearSlot("projection."),
        }

    @classmethod
    def _options_from(cls, chain: SpecChain) -> dict[str, Any]:
        rates = [spec.p for spec in map(chain.spec, chain.nodes) if isinstance(spec, ScaledDropout)]
        if len(rates) > 1:
            raise SpecError(f"{cls.__name__}.from_chain: the chain has {len(rates)} ScaledDropout")
        return {"dropout_rate": rates[0] if rates else 0.0}

    def _head(self) -> SpecChain:
        h, v = self.hidden_size, self.vocab_size
        return ScaledDropout(self.dropout_rate) >> Linear(h, v, name="projection")

    def to_chain(self, tokens: bool = False) -> SpecChain:
        """``[T, B, V]`` vectors (or ``int [T, B]`` tokens) -> logits ``[T, B, V]``."""
        v, h, n = self.vocab_size, self.hidden_size, self.num_layers
        return _loaded(
            self, lambda: serial(_embed(v, h, tokens), LSTM(h, h, num_layers=n), self._head())
        )

    def _stateful_chain(self, tokens: bool) -> SpecChain:
        v, h, n = self.vocab_size, self.hidden_size, self.num_layers
        return self._cached(
            ("stateful", tokens),
            lambda: _stateful(
                LSTM(h, h, num_layers=n, return_state=True), self._head(), _embed(v, h, tokens)
            ),
        )


@attrs.frozen(eq=False)
class LSTMLanguageModelGrads:
    """Gradients of an ``LSTMLanguageModel``, field for field (one ``LSTMGrads`` per layer)."""

    embedding: LinearGrads
    lstm_layers: tuple[LSTMGrads, ...]
    output_projection: LinearGrads


@attrs.frozen(eq=False)
class AttentionLSTMModel(_Model):
    """TorchLean's attention encoder/decoder (equations in ``specchain.modules.attention``):
    ``encoder`` LSTM ``I`` -> ``H``, ``decoder`` LSTM cell ``I + H`` -> ``H``,
    ``attention_weights`` linear ``2H`` -> ``1``, ``output`` linear ``H`` -> ``O``.
    Chain: ``zoo.attention_seq2seq`` (one ``AttentionLSTM`` node, ``attention``)."""

    encoder: LSTMGateParams = attrs.field(validator=_gate_params)
    decoder: LSTMGateParams = attrs.field(validator=_gate_params)
    attention_weights: LinearParams = attrs.field(validator=_linear_params)
    output: LinearParams = attrs.field(validator=_linear_params)

    def __attrs_post_init__(self) -> None:
        name = "AttentionLSTMModel"
        i, h = _lstm_sizes(self.encoder, "encoder")
        dec_in, dec_h = _lstm_sizes(self.decoder, "decoder")
        _same(name, "decoder.hidden_size", dec_h, "encoder.hidden_size", h)
        _same(name, "decoder.input_size", dec_in, "encoder input_size + hidden_size", i + h)
        att_in, att_out = _linear_sizes(self.attention_weights, "attention_weights")
        _same(name, "attention_weights.in_features", att_in, "2 * encoder.hidden_size", 2 * h)
        _same(name, "attention_weights.out_features", att_out, "one score", 1)
        out_in, _ = _linear_sizes(self.output, "output")
        _same(name, "output.in_features", out_in, "encoder.hidden_size", h)
        self._check()

    @property
    def input_size(self) -> int:
        return _lstm_sizes(self.encoder, "encoder")[0]

    @property
    def hidden_size(self) -> int:
        return _lstm_sizes(self.encoder, "encoder")[1]

    @property
    def output_size(self) -> int:
        return self.output.out_features

    @classmethod
    def init(
        cls,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> AttentionLSTMModel:
        gen = as_generator(rng)
        i, h = input_size, hidden_size
        return cls(
            _init_lstm(i, h, gen, dtype),
            _init_lstm(i + h, h, gen, dtype),
            LinearParams.init(2 * h, 1, gen, dtype),
            LinearParams.init(h, output_size, gen, dtype),
        )

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        return {
            "encoder": _LSTMSlot("attention.encoder.", "_l0"),
            "decoder": _LSTMSlot("attention.decoder.", ""),
            "attention_weights": _LinearSlot("attention.attention_weights."),
            "output": _LinearSlot("attention.output."),
        }

    def _build(self) -> SpecChain:
        return zoo.attention_seq2seq(self.input_size, self.hidden_size, self.output_size)


@attrs.frozen(eq=False)
class AttentionLSTMModelGrads:
    """Gradients of an ``AttentionLSTMModel``, field for field."""

    encoder: LSTMGrads
    decoder: LSTMGrads
    attention_weights: LinearGrads
    output: LinearGrads


# --- input and state checks ------------------------------------------------------------------


def _sequence(x: Any, features: int, dtype: np.dtype[Any], what: str) -> np.ndarray:
    """A float ``[T, B, F]`` or ``[T, F]`` array of the model's dtype."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what} must be a numpy array, got {type(x).__name__}")
    if x.dtype.kind != "f" or x.ndim not in (2, 3) or x.shape[-1] != features:
        raise ShapeError(
            f"{what} must be a float [T, B, {features}] or [T, {features}], "
            f"got {x.dtype}{_shape(x)}"
        )
    if x.dtype != dtype:
        raise TypeError(
            f"{what} dtype {x.dtype} != the model's {dtype}; cast with .astype(np.{dtype})"
        )
    return x


def _vocab_input(x: Any, vocab: int, dtype: np.dtype[Any], what: str) -> tuple[np.ndarray, bool]:
    """Integer tokens ``[T, B]`` / ``[T]`` (True) or float vectors ``[T, B, V]`` (False)."""
    if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
        if x.ndim not in (1, 2):
            raise ShapeError(f"{what} tokens must be int [T, B] or [T], got {_shape(x)}")
        return x, True
    return _sequence(x, vocab, dtype, what), False


def _batch(x: np.ndarray, tokens: bool = False) -> tuple[int, ...]:
    return tuple(int(n) for n in (x.shape[1:] if tokens else x.shape[1:-1]))


def _state(
    state: Any, batch: tuple[int, ...], hidden: int, dtype: np.dtype[Any], what: str
) -> State:
    """``state`` checked against ``[B, H]`` (or ``[H]``); zeros for None."""
    expected = (*batch, hidden)
    if state is None:
        return np.zeros(expected, dtype), np.zeros(expected, dtype)
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise TypeError(f"{what} must be a pair (h, c), got {type(state).__name__}")
    for name, value in zip(("h", "c"), state):
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{what} {name} must be a numpy array, got {type(value).__name__}")
        if value.shape != expected:
            layout = "[B, H]" if batch else "[H] for a single example"
            raise ShapeError(
                f"{what} {name} has shape {_shape(value)}, expected {list(expected)} ({layout})"
            )
        if value.dtype != dtype:
            raise TypeError(f"{what} {name} dtype {value.dtype} != the model's {dtype}")
    return state[0], state[1]


def _states(
    states: Sequence[Any] | None,
    count: int,
    batch: tuple[int, ...],
    hidden: int,
    dtype: np.dtype[Any],
    model: str,
) -> State:
    """Per-layer states stacked like ``nn.LSTM``'s ``(h0 [L, B, H], c0 [L, B, H])``."""
    if states is None:
        states = [None] * count
    elif len(states) != count:
        raise SpecError(
            f"{model} has {count} LSTM layers but {len(states)} initial states were given; "
            "pass one (h, c) per layer"
        )
    pairs = [_state(s, batch, hidden, dtype, f"initial_states[{k}]") for k, s in enumerate(states)]
    return np.stack([h for h, _ in pairs]), np.stack([c for _, c in pairs])


def _one(state: Any, batch: tuple[int, ...], hidden: int, dtype: np.dtype[Any]) -> State:
    h, c = _state(state, batch, hidden, dtype, "initial_state")
    return h[None], c[None]


def _unstack(h: np.ndarray, c: np.ndarray) -> list[State]:
    return [(h[k], c[k]) for k in range(h.shape[0])]


# --- SimpleLSTMModel -------------------------------------------------------------------------


def simple_lstm_sequence_forward(
    model: SimpleLSTMModel, inputs: np.ndarray, initial_state: State | None = None
) -> tuple[np.ndarray, State]:
    """TorchLean's ``simpleLstmSequenceForward``: ``inputs [T, B, I]`` and ``(h0, c0)`` (each
    ``[B, H]``, zeros if None) -> ``(outputs [T, B, O], (h_T, c_T))``."""
    xs = _sequence(inputs, model.input_size, model.dtype, "inputs")
    state = _one(initial_state, _batch(xs), model.hidden_size, model.dtype)
    ys, (h, c) = model._stateful_chain()((xs, state))
    return ys, (h[0], c[0])


def simple_lstm_forward(
    model: SimpleLSTMModel, x: np.ndarray, state: State | None = None
) -> tuple[np.ndarray, State]:
    """TorchLean's ``simpleLstmForward``, one step: ``x [B, I]`` and ``(h, c)`` (each ``[B, H]``)
    -> ``(y [B, O], (h', c'))``; unbatched ``[I]`` and ``[H]`` work too."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
    ys, final = simple_lstm_sequence_forward(model, x[None], state)
    return ys[0], final


def simple_lstm_backward(
    model: SimpleLSTMModel,
    inputs: np.ndarray,
    initial_state: State | None,
    grad_outputs: np.ndarray,
) -> tuple[SimpleLSTMModelGrads, np.ndarray, State]:
    """TorchLean's ``simpleLstmBackward`` (BPTT): ``grad_outputs [T, B, O]`` is dL/d outputs of
    ``simple_lstm_sequence_forward``. Returns ``(grads, d inputs [T, B, I], (dh0, dc0))``."""
    xs = _sequence(inputs, model.input_size, model.dtype, "inputs")
    state = _one(initial_state, _batch(xs), model.hidden_size, model.dtype)
    chain = model._state_chain()
    _, tape = chain.forward((xs, state))
    (dxs, (dh0, dc0)), grads = chain.backward(tape, grad_outputs)
    return model._grads(SimpleLSTMModelGrads, grads), dxs, (dh0[0], dc0[0])


def simple_lstm_mse_loss(
    model: SimpleLSTMModel,
    inputs: np.ndarray,
    targets: np.ndarray,
    initial_state: State | None = None,
) -> float:
    """TorchLean's ``simpleLstmMseLoss``: the mean squared error of the outputs
    ``[T, B, O]`` against ``targets [T, B, O]``."""
    outputs, _ = simple_lstm_sequence_forward(model, inputs, initial_state)
    return float(mse(outputs, targets))


def simple_lstm_mse_grad(
    model: SimpleLSTMModel,
    inputs: np.ndarray,
    targets: np.ndarray,
    initial_state: State | None = None,
) -> tuple[float, SimpleLSTMModelGrads]:
    """TorchLean's ``simpleLstmMseGrad``: ``(loss, grads)`` of ``simple_lstm_mse_loss``."""
    xs = _sequence(inputs, model.input_size, model.dtype, "inputs")
    state = _one(initial_state, _batch(xs), model.hidden_size, model.dtype)
    loss, grads = model._state_chain().value_and_grad((xs, state), targets, loss=mse, train=False)
    return loss, model._grads(SimpleLSTMModelGrads, grads)


# --- LSTMClassifier ---------------------------------------------------------------------------


def lstm_classifier_forward(
    model: LSTMClassifier, inputs: np.ndarray, initial_state: State | None = None
) -> np.ndarray:
    """TorchLean's ``lstmClassifierForward``: ``inputs [T, B, I]`` -> logits ``[B, C]`` from the
    final hidden state (``[T, I]`` -> ``[C]``)."""
    xs = _sequence(inputs, model.input_size, model.dtype, "inputs")
    state = _one(initial_state, _batch(xs), model.hidden_size, model.dtype)
    logits: np.ndarray = model._state_chain()((xs, state))
    return logits


def lstm_classifier_backward(
    model: LSTMClassifier,
    inputs: np.ndarray,
    initial_state: State | None,
    grad_logits: np.ndarray,
) -> tuple[LinearGrads, LSTMGrads, np.ndarray]:
    """TorchLean's ``lstmClassifierBackward``: ``grad_logits [B, C]`` -> ``(classifier grads,
    LSTM grads, d inputs [T, B, I])`` (TorchLean's order; it drops the state's gradient)."""
    xs = _sequence(inputs, model.input_size, model.dtype, "inputs")
    state = _one(initial_state, _batch(xs), model.hidden_size, model.dtype)
    chain = model._state_chain()
    _, tape = chain.forward((xs, state))
    (dxs, _), grads = chain.backward(tape, grad_logits)
    parts = _read(model._layout(), grads, grads=True)
    return parts["classifier"], parts["lstm"], dxs


# --- LSTMGenerator ---------------------------------------------------------------------------


def lstm_generator_forward(
    model: LSTMGenerator, inputs: np.ndarray, initial_state: State | None = None
) -> tuple[np.ndarray, State]:
    """TorchLean's ``lstmGeneratorForward``: ``inputs`` (``[T, B, V]`` vectors or int tokens
    ``[T, B]``) and ``(h0, c0)`` -> ``(logits [T, B, V], (h_T, c_T))``."""
    xs, tokens = _vocab_input(inputs, model.vocab_size, model.dtype, "inputs")
    state = _one(initial_state, _batch(xs, tokens), model.hidden_size, model.dtype)
    logits, (h, c) = model._stateful_chain(tokens)((xs, state))
    return logits, (h[0], c[0])


# --- BiLSTMModel -----------------------------------------------------------------------------


def _bi_states(
    model: BiLSTMModel, xs: np.ndarray, forward_state: Any, backward_state: Any
) -> State:
    """The two directions' states stacked like ``nn.LSTM``'s ``[2, B, H]``, forward first."""
    batch, h = _batch(xs), model.hidden_size
    pairs = [
        _state(s, batch, h, model.dtype, what)
        for s, what in ((forward_state, "forward_state"), (backward_state, "backward_state"))
    ]
    return np.stack([h for h, _ in pairs]), np.stack([c for _, c in pairs])


def bilstm_forward(
    model: BiLSTMModel,
    inputs: np.ndarray,
    forward_state: State | None = None,
    backward_state: State | None = None,
) -> np.ndarray:
    """TorchLean's ``bilstmForward``: ``inputs [T, B, I]`` -> ``outputs [T, B, O]``; the backward
    LSTM starts from ``backward_state`` at the last timestep."""
    xs = _sequence(inputs, model.input_size, model.dtype, "inputs")
    states = _bi_states(model, xs, forward_state, backward_state)
    ys: np.ndarray = model._state_chain()((xs, states))
    return ys


def bilstm_backward(
    model: BiLSTMModel,
    inputs: np.ndarray,
    forward_state: State | None,
    backward_state: State | None,
    grad_outputs: np.ndarray,
) -> tuple[BiLSTMModelGrads, np.ndarray, tuple[State, State]]:
    """Backward of ``bilstm_forward`` (TorchLean has none): ``grad_outputs [T, B, O]`` ->
    ``(grads, d inputs [T, B, I], (d forward_state, d backward_state))``."""
    xs = _sequence(inputs, model.input_size, model.dtype, "inputs")
    chain = model._state_chain()
    _, tape = chain.forward((xs, _bi_states(model, xs, forward_state, backward_state)))
    (dxs, (dh0, dc0)), grads = chain.backward(tape, grad_outputs)
    d_forward, d_backward = _unstack(dh0, dc0)
    return model._grads(BiLSTMModelGrads, grads), dxs, (d_forward, d_backward)


# --- MultiLayerLSTMModel ---------------------------------------------------------------------


def multilayer_lstm_forward(
    model: MultiLayerLSTMModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None = None,
) -> tuple[np.ndarray, list[State]]:
    """TorchLean's ``multilayerLstmForward``: ``inputs [T, B, I]`` and one ``(h0, c0)`` per layer
    -> ``(outputs [T, B, O], final state per layer)``."""
    xs = _sequence(inputs, model.input_size, model.dtype, "inputs")
    name, n, h = "MultiLayerLSTMModel", model.num_layers, model.hidden_size
    states = _states(initial_states, n, _batch(xs), h, model.dtype, name)
    ys, (h_n, c_n) = model._stateful_chain()((xs, states))
    return ys, _unstack(h_n, c_n)


def multilayer_lstm_backward(
    model: MultiLayerLSTMModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None,
    grad_outputs: np.ndarray,
) -> tuple[MultiLayerLSTMModelGrads, np.ndarray, list[State]]:
    """Backward of ``multilayer_lstm_forward`` (TorchLean has none): ``grad_outputs [T, B, O]`` ->
    ``(grads, d inputs [T, B, I], d initial state per layer)``."""
    xs = _sequence(inputs, model.input_size, model.dtype, "inputs")
    name, n, h = "MultiLayerLSTMModel", model.num_layers, model.hidden_size
    chain = model._state_chain()
    _, tape = chain.forward((xs, _states(initial_states, n, _batch(xs), h, model.dtype, name)))
    (dxs, (dh0, dc0)), grads = chain.backward(tape, grad_outputs)
    return model._grads(MultiLayerLSTMModelGrads, grads), dxs, _unstack(dh0, dc0)


# --- LSTMLanguageModel -----------------------------------------------------------------------


def _lm_inputs(
    model: LSTMLanguageModel, inputs: np.ndarray, initial_states: Sequence[State] | None
) -> tuple[tuple[np.ndarray, State], bool]:
    xs, tokens = _vocab_input(inputs, model.vocab_size, model.dtype, "inputs")
    batch, name = _batch(xs, tokens), "LSTMLanguageModel"
    states = _states(initial_states, model.num_layers, batch, model.hidden_size, model.dtype, name)
    return (xs, states), tokens


def lstm_lm_forward(
    model: LSTMLanguageModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None = None,
) -> tuple[np.ndarray, list[State]]:
    """TorchLean's ``lstmLmForward`` (teacher forcing): ``inputs`` (``[T, B, V]`` vectors or int
    tokens ``[T, B]``) and one ``(h0, c0)`` per layer -> ``(logits [T, B, V], final states)``.

    TorchLean passes the embedded input through unchanged when the layer and state lists differ
    in length; this raises instead, naming both lengths."""
    x, tokens = _lm_inputs(model, inputs, initial_states)
    logits, (h_n, c_n) = model._stateful_chain(tokens)(x)
    return logits, _unstack(h_n, c_n)


def lstm_lm_backward(
    model: LSTMLanguageModel,
    inputs: np.ndarray,
    initial_states: Sequence[State] | None,
    grad_logits: np.ndarray,
) -> tuple[LSTMLanguageModelGrads, np.ndarray | None, list[State]]:
    """Backward of ``lstm_lm_forward`` (TorchLean has none): ``grad_logits [T, B, V]`` ->
    ``(grads, d inputs [T, B, V] or None for tokens, d initial state per layer)``."""
    x, tokens = _lm_inputs(model, inputs, initial_states)
    chain = model._stateful_chain(tokens)
    _, tape = chain.forward(x)
    (d_inputs, (dh0, dc0)), grads = chain.backward(tape, (grad_logits, (None, None)))
    return model._grads(LSTMLanguageModelGrads, grads), d_inputs, _unstack(dh0, dc0)


# --- AttentionLSTMModel ----------------------------------------------------------------------


def _attention_inputs(
    model: AttentionLSTMModel, source: np.ndarray, decoder_inputs: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], bool]:
    """Both sequences batched (``[S, I]`` / ``[T, I]`` get a batch of one); True if unbatched."""
    i, dtype = model.input_size, model.dtype
    src = _sequence(source, i, dtype, "source")
    dec = _sequence(decoder_inputs, i, dtype, "decoder_inputs")
    if src.ndim != dec.ndim:
        raise ShapeError(
            f"source {_shape(src)} and decoder_inputs {_shape(dec)} must both be batched "
            "[len, B, I] or both single examples [len, I]"
        )
    if src.ndim == 2:
        return (src[:, None], dec[:, None]), True
    return (src, dec), False


def attention_lstm_forward(
    model: AttentionLSTMModel, source: np.ndarray, decoder_inputs: np.ndarray
) -> np.ndarray:
    """The attention encoder/decoder (TorchLean defines only the record): ``source [S, B, I]`` and
    teacher-forced ``decoder_inputs [T, B, I]`` -> ``outputs [T, B, O]``."""
    x, unbatched = _attention_inputs(model, source, decoder_inputs)
    ys: np.ndarray = model._cached("chain", model._build)(x)
    return ys[:, 0] if unbatched else ys


def attention_lstm_backward(
    model: AttentionLSTMModel,
    source: np.ndarray,
    decoder_inputs: np.ndarray,
    grad_outputs: np.ndarray,
) -> tuple[AttentionLSTMModelGrads, np.ndarray, np.ndarray]:
    """Backward of ``attention_lstm_forward``: ``grad_outputs [T, B, O]`` ->
    ``(grads, d source [S, B, I], d decoder_inputs [T, B, I])``."""
    x, unbatched = _attention_inputs(model, source, decoder_inputs)
    chain = model._cached("chain", model._build)
    _, tape = chain.forward(x)
    dy = grad_outputs
    if unbatched and isinstance(dy, np.ndarray):
        dy = dy[:, None]
    (d_source, d_decoder), grads = chain.backward(tape, dy)
    if unbatched:
        d_source, d_decoder = d_source[:, 0], d_decoder[:, 0]
    return model._grads(AttentionLSTMModelGrads, grads), d_source, d_decoder


# --- TorchLean's chain builders and packagers --------------------------------------------------


def simple_lstm_model_spec(lstm: LSTMGateParams, output: LinearParams) -> SpecChain:
    """TorchLean's ``simpleLstmModelSpec``: LSTM then a per-timestep linear head,
    ``[T, B, I]`` -> ``[T, B, O]`` (``zoo.seq2seq`` with these weights)."""
    return SimpleLSTMModel(lstm, output).to_chain()


def lstm_classifier_model_spec(lstm: LSTMGateParams, classifier: LinearParams) -> SpecChain:
    """TorchLean's ``lstmClassifierModelSpec``: ``[T, B, I]`` -> ``[B, C]`` (``zoo.classifier``)."""
    return LSTMClassifier(lstm, classifier).to_chain()


def multilayer_lstm_spec(
    lstm1: LSTMGateParams, lstm2: LSTMGateParams, output: LinearParams
) -> SpecChain:
    """TorchLean's ``multilayerLstmSpec``: two LSTMs as two specs and a per-timestep head,
    ``[T, B, I]`` -> ``[T, B, O]`` (``zoo.two_layer``: nodes ``lstm1``, ``lstm2``, ``head``)."""
    model = MultiLayerLSTMModel((lstm1, lstm2), output)
    layout: Layout = {
        "layers": (_LSTMSlot("lstm1.", "_l0"), _LSTMSlot("lstm2.", "_l0")),
        "output": _LinearSlot("head."),
    }
    with _library_generator_untouched():
        chain = zoo.two_layer(model.input_size, model.hidden_size, model.output_size)
    chain.to(model.dtype)
    chain.load_state_dict(_state_of(layout, {"layers": model.layers, "output": output}))
    return chain


def lstm_language_model_spec(
    embedding: LinearParams, lstm: LSTMGateParams, output: LinearParams, tokens: bool = False
) -> SpecChain:
    """TorchLean's ``lstmLanguageModelSpec``: linear embedding, LSTM, linear projection,
    ``[T, B, V]`` (or int tokens ``[T, B]`` with ``tokens=True``) -> ``[T, B, V]``. It is the
    ``LSTMGenerator``'s chain."""
    return LSTMGenerator(embedding, lstm, output).to_chain(tokens=tokens)


def simple_lstm_to_module_spec(model: SimpleLSTMModel) -> SpecChain:
    """TorchLean's ``simpleLSTMToModuleSpec``: ``model.to_chain()`` (zero initial state)."""
    return model.to_chain()


def lstm_classifier_to_module_spec(model: LSTMClassifier) -> SpecChain:
    """TorchLean's ``lstmClassifierToModuleSpec``: ``model.to_chain()`` (zero initial state)."""
    return model.to_chain()


def bilstm_to_module_spec(model: BiLSTMModel) -> SpecChain:
    """TorchLean's ``biLSTMToModuleSpec``: ``model.to_chain()`` (zero initial states)."""
    return model.to_chain()
