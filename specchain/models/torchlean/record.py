"""What the records share: ``Model`` (layout, ``state_dict``, ``to_chain``, ``from_chain``,
``grads_by_field``); ``SequenceModel`` for the records that read float sequences ``[T, B, I]``
with an LSTM and end in one linear head (``cached_chain``); ``OutputModel`` for those of them whose
head is ``output_layer`` (``output_size``, ``output``); ``StateModel`` for those that take initial
LSTM states (``chain_with_initial_state``); ``SizedModel`` for those that ``init`` from
``(input_size, hidden_size, output_size)`` alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import attrs
import numpy as np
from numpy.random import Generator

from specchain.chain import SpecChain
from specchain.models.torchlean.alias import Alias
from specchain.models.torchlean.chains import build_loaded, state_typed
from specchain.models.torchlean.layout import Layout, count_layers, read_parts, slots_of, state_of
from specchain.models.torchlean.parts import LinearParams, linear_sizes, lstm_sizes, same
from specchain.params import FLOAT_DTYPES, RngLike, init_generator
from specchain.types import SpecError

M = TypeVar("M", bound="Model")
S = TypeVar("S", bound="SizedModel")


@attrs.frozen(eq=False)
class Model:
    """What every record shares: its layout, ``state_dict``, ``to_chain``, ``from_chain`` and
    ``grads_by_field``.

    Subclasses are frozen attrs classes whose parameter fields are named in ``_layout_for``; they
    check their sizes in ``_check_sizes``. ``_chains`` keeps the chains the functions run, built
    once per record (see ``_cached``).
    """

    _chains: dict[Any, SpecChain] = attrs.field(init=False, factory=dict, repr=False)

    def __attrs_post_init__(self) -> None:
        self._check_sizes()
        self._check()

    def _check_sizes(self) -> None:
        """Raise if the parts' sizes do not fit each other (messages name the fields)."""
        raise NotImplementedError

    @classmethod
    def _layout_for(cls, layers: int) -> Layout:
        raise NotImplementedError

    @property
    def _num_lstm_layers(self) -> int:
        """How many LSTM layers the record holds (one, unless a subclass stacks more)."""
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
        return state_of(layout, {field: getattr(self, field) for field in layout})

    def to_chain(self) -> SpecChain:
        """The equivalent ``SpecChain`` with this record's weights loaded (a new chain)."""
        return self._loaded(self._build)

    def _loaded(self, build: Callable[[], SpecChain]) -> SpecChain:
        """``build()`` (without touching the library generator), cast and loaded with the record."""
        return build_loaded(build, self.dtype, self.state_dict())

    def _cached(self, key: Any, build: Callable[[], SpecChain]) -> SpecChain:
        """The chain ``build()`` makes, built once per record and ``key``, and loaded with the
        record's current arrays at every call (so edits of the arrays in place are seen)."""
        chain = self._chains.get(key)
        if chain is None:
            chain = self._chains[key] = self._loaded(build)
        else:
            chain.load_state_dict(self.state_dict())
        return chain

    @classmethod
    def from_chain(cls: type[M], chain: SpecChain) -> M:
        """The record of a chain laid out like ``to_chain()`` (biases summed per gate)."""
        state = chain.state_dict()
        layout = cls._layout_for(count_layers(state))
        expected = [k for entry in layout.values() for s in slots_of(entry) for k in s.names()]
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        if missing or unexpected:
            raise SpecError(
                f"{cls.__name__}.from_chain: the chain's parameters are not laid out like "
                f"{cls.__name__}.to_chain(); missing {missing}, unexpected {unexpected}"
            )
        return cls(**read_parts(layout, state, grads=False), **cls._options_from(chain))

    def grads_by_field(self, grads: dict[str, np.ndarray]) -> dict[str, Any]:
        """A chain's parameter gradients (``state_dict`` names, as ``SpecChain.backward`` gives
        them for ``to_chain()`` or the record's other chains) as TorchLean's gradient records, by
        the record's field: ``LSTMGrads`` for an LSTM layer (a tuple of them for a stack),
        ``LinearGrads`` for a linear layer."""
        return read_parts(self._layout(), grads, grads=True)


@attrs.frozen(eq=False)
class SequenceModel(Model):
    """A record over float sequences ``[T, B, I]``: its first LSTM layer is the field named by
    ``_first_field``, its linear head the one named by ``_head_field``."""

    _first_field: ClassVar[str] = "lstm"
    _head_field: ClassVar[str] = "output_layer"

    def _first_sizes(self) -> tuple[int, int]:
        return lstm_sizes(getattr(self, self._first_field), self._first_field)

    @property
    def input_size(self) -> int:
        """I, the features per timestep of the input."""
        return self._first_sizes()[0]

    @property
    def hidden_size(self) -> int:
        """H, the hidden size of the (first) LSTM."""
        return self._first_sizes()[1]

    def _head_params(self) -> LinearParams:
        head: LinearParams = getattr(self, self._head_field)
        return head

    def _check_head(self, reads: str, size: int) -> None:
        """The head's ``in_features`` must be ``size`` (what ``reads`` names)."""
        in_features, _ = linear_sizes(self._head_params(), self._head_field)
        same(type(self).__name__, f"{self._head_field}.in_features", in_features, reads, size)

    def cached_chain(self) -> SpecChain:
        """``to_chain()``, built once per record and reloaded with the record's current arrays
        at every call (so in-place edits of the arrays are seen); ``to_chain()`` builds a new
        chain each time. The functions run this one (or the typed chains below)."""
        return self._cached("chain", self._build)


@attrs.frozen(eq=False)
class OutputModel(SequenceModel):
    """A sequence record whose linear head is ``output_layer`` (``-> O``): ``output_size`` and
    ``output``, the earlier name of ``output_layer``."""

    output = Alias[LinearParams]("output_layer")

    @property
    def output_size(self) -> int:
        """O, the features per timestep of the output (``output_layer.out_features``)."""
        return self._head_params().out_features


@attrs.frozen(eq=False)
class StateModel(SequenceModel):
    """A sequence record whose LSTM takes initial states ``(h0, c0)``."""

    @property
    def _state_count(self) -> int:
        """How many ``(h, c)`` pairs the LSTM of ``_build()`` takes (layers x directions)."""
        return self._num_lstm_layers

    def chain_with_initial_state(self) -> SpecChain:
        """``to_chain()`` typed to take ``(x, (h0, c0))``, each state ``[N, B, H]`` with ``N``
        layers x directions (``nn.LSTM``'s layout), and give what ``to_chain()`` gives. Cached
        and reloaded like ``cached_chain()``."""

        def build() -> SpecChain:
            chain = self._build()
            return state_typed(chain, chain.in_type, self._state_count, self.hidden_size)

        return self._cached("state", build)


@attrs.frozen(eq=False)
class SizedModel(SequenceModel):
    """A sequence record sized by ``(input_size, hidden_size, output_size)`` alone."""

    @classmethod
    def init(
        cls: type[S],
        input_size: int,
        hidden_size: int,
        output_size: int,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> S:
        """PyTorch's default initialisation of every part, from ``rng``."""
        gen = init_generator(rng)
        return cls(*cls._init_parts(input_size, hidden_size, output_size, gen, dtype))

    @classmethod
    def _init_parts(cls, i: int, h: int, o: int, gen: Generator, dtype: Any) -> tuple[Any, ...]:
        """The parts in field order, drawn from ``gen`` in that order."""
        raise NotImplementedError
