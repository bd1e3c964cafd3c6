"""``NNModuleSpec``: the base of every layer, and the validators its hyper-parameters use.

A spec is an ``attrs`` class. Its fields are validated hyper-parameters; ``params`` holds its
parameter arrays under PyTorch's names and layouts. It provides, side by side:

- ``in_type``: the input it expects when it stands first in a graph (``[T, B, 8]``);
- ``infer(in_type, dims) -> out_type``: the shape contract, stating equalities through ``dims``;
- ``forward(params, x, ctx) -> (y, saved)`` and ``backward(params, saved, dy) -> (dx, dparams)``.

Backward receives everything it needs as arguments; nothing is cached on the spec, so one spec may
appear several times in a graph (weight sharing) and its gradients add up.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any, ClassVar, TypeGuard

import attrs
import numpy as np

from specchain import params as _params
from specchain import validate as _validate
from specchain.types import ANY, ELLIPSIS, AnyType, DimEnv, SpecError, TensorType, Type

if TYPE_CHECKING:
    from specchain.chain import SpecChain

Params = dict[str, np.ndarray]
Value = Any  # an array or a (nested) tuple of arrays
SPEC_KINDS: dict[str, type[NNModuleSpec]] = {}  # qualified name -> class; see ``register_kind``
_NOT_CONFIG = ("name", "rng")


@attrs.frozen
class Context:
    """What a forward pass may depend on besides its input: mode, its random generator (the
    call's ``rng=`` or the run-time stream, never the initialisation stream), the model's float
    dtype (for layers without parameters that make floats, like ``OneHot``), and the node's
    inferred input type, whose axis roles say where time and batch are (``ANY`` when a spec is
    called outside a graph: layers then fall back to time-major)."""

    train: bool = False
    rng: np.random.Generator = attrs.field(factory=_params.runtime_generator)
    dtype: np.dtype[Any] = _params.DEFAULT_DTYPE
    in_type: Type = ANY


# --- validators: defined in ``specchain.validate``; specs and user code import them from here

positive_int = _validate.positive_int
non_negative_int = _validate.non_negative_int
probability = _validate.probability
flag = _validate.flag
node_name = _validate.node_name
check_node_name = _validate.check_node_name
RESERVED_NAMES = _validate.RESERVED_NAMES


def _states_nothing(t: Type) -> TypeGuard[TensorType]:
    return isinstance(t, TensorType) and t.dims == (ELLIPSIS,)


def _open_ended(t: Type) -> TypeGuard[TensorType]:
    """``[..., F]``-style: leading dims left open, trailing ones stated."""
    return isinstance(t, TensorType) and t.variadic and len(t.dims) > 1


# --- the kind registry: keyed by qualified name ------------------------------------------------


def kind_key(cls: type[NNModuleSpec]) -> str:
    """``specchain.modules.linear.Linear``: the registry key a model file stores."""
    return f"{cls.__module__}.{cls.__qualname__}"


def register_kind(cls: type[NNModuleSpec]) -> None:
    """Add ``cls`` under its qualified name (``NNModuleSpec`` subclasses call this themselves).

    A user class never replaces a built-in of the same short name: they have different keys. The
    same key may be taken again only by a redefinition of that class (``attrs`` rebuilding it with
    slots, a re-run notebook cell or a class made inside a function); any other clash is an error
    naming both classes.
    """
    key = kind_key(cls)
    old = SPEC_KINDS.get(key)
    if old is not None and old is not cls and not _redefines(cls, old):
        raise SpecError(
            f"two spec classes share the kind {key!r}: {_where(old)} and {_where(cls)}; rename "
            "one of them (model files name kinds by module and class name)"
        )
    SPEC_KINDS[key] = cls


def _redefines(new: type, old: type) -> bool:
    rebuilt_by_attrs = "__attrs_attrs__" not in old.__dict__ and "__attrs_attrs__" in new.__dict__
    rerun = new.__module__ == "__main__" or "<locals>" in new.__qualname__
    reloaded = _origin(new)[0] == _origin(old)[0]  # the same file, run again (maybe edited)
    return rebuilt_by_attrs or rerun or reloaded


def _origin(cls: type) -> tuple[str, int]:
    origin: tuple[str, int] = getattr(cls, "_specchain_origin", ("?", 0))
    return origin


def _where(cls: type) -> str:
    file, line = _origin(cls)
    return f"{cls!r} ({file}:{line})"


def known_kinds() -> list[str]:
    """Registered kinds for messages: built-ins by short name, others qualified."""
    return sorted(
        cls.__qualname__ if key.startswith("specchain.") else key for key, cls in SPEC_KINDS.items()
    )


def lookup_kind(key: str) -> type[NNModuleSpec] | None:
    """The class for a model file's ``kind``: a qualified name, or (files written before kinds
    were qualified) a built-in's short name such as ``"Linear"``."""
    if key in SPEC_KINDS:
        return SPEC_KINDS[key]
    if "." not in key:
        for qualified, cls in SPEC_KINDS.items():
            if qualified.startswith("specchain.") and cls.__qualname__ == key:
                return cls
    return None


def snake_case(name: str) -> str:
    """``LSTMCell`` -> ``lstm_cell``, ``TimeDistributed`` -> ``time_distributed``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return spaced.lower()


@attrs.define(eq=False)
class NNModuleSpec:
    """Base class of all layers. Subclasses add validated fields and the methods below."""

    name: str | None = attrs.field(default=None, kw_only=True, validator=node_name)
    rng: _params.RngLike = attrs.field(default=None, kw_only=True, repr=False)
    params: Params = attrs.field(init=False, factory=dict, repr=False)

    kind: ClassVar[str] = "NNModuleSpec"  # the class's short name, shown in summaries
    _specchain_origin: ClassVar[tuple[str, int]]  # file and line of the class statement
    family: ClassVar[str | None] = None  # diagram family, declared on the class
    keeps_unknown: ClassVar[bool] = False  # an ANY input gives an ANY output (see infer_type)
    takes_lengths: ClassVar[bool] = False  # forward reads ``Padded`` values (see specchain.padded)

    def __init_subclass__(cls, family: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = cls.__name__
        if "_specchain_origin" not in cls.__dict__:  # attrs' slotted rebuild copies it over
            caller = sys._getframe(1)  # the code running the class statement
            cls._specchain_origin = (caller.f_code.co_filename, caller.f_lineno)
        if family is not None:
            if not isinstance(family, str) or not family.isidentifier():
                raise SpecError(
                    f"{cls.__qualname__}: family must be an identifier such as 'recurrent', "
                    f"got {family!r}"
                )
            cls.family = family
        if cls.forward is not NNModuleSpec.forward:  # shared bases are not loadable kinds
            register_kind(cls)

    def __attrs_post_init__(self) -> None:
        self.params = _params.initialise(self.declare_params(), self.rng)
        self.rng = None  # used once: the spec keeps no generator

    # --- what subclasses provide ------------------------------------------------------------

    def declare_params(self) -> dict[str, _params.ParamDecl]:
        """Parameter names (PyTorch's), shapes and default initialisers, in creation order."""
        return {}

    @property
    def in_type(self) -> Type:
        """The input this spec expects when it is the first node of a graph."""
        return ANY

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        """The output type for ``in_type``; raise ``ShapeError`` with the differing dim.

        ``in_type`` is never ``ANY`` here: ``infer_type`` handles an input known only at call
        time once for every spec."""
        raise NotImplementedError

    def infer_type(self, in_type: Type, dims: DimEnv) -> Type:
        """What the graph calls. An input known only at call time (``ANY``) gives an output known
        only then for specs that declare ``keeps_unknown`` or take any input; other specs read it
        as their own ``in_type`` (``Linear(8, 4)`` then outputs ``[..., 4]``). A tensor that
        states nothing (``[...]``, from an elementwise first node) is read as the spec's own
        ``[..., F]``-style ``in_type`` of the same dtype (``Tanh() >> Linear(8, 4)``)."""
        own = self.in_type
        if isinstance(in_type, AnyType):
            if self.keeps_unknown or isinstance(own, AnyType):
                return ANY
            in_type = own
        elif _states_nothing(in_type) and _open_ended(own) and in_type.dtype == own.dtype:
            in_type = own
        return self.infer(in_type, dims)

    def forward(self, params: Params, x: Value, ctx: Context) -> tuple[Value, Any]:
        """``(y, saved)``: the output and what ``backward`` needs."""
        raise NotImplementedError

    def backward(self, params: Params, saved: Any, dy: Value) -> tuple[Value, Params]:
        """``(dx, dparams)``: the input cotangent (None for integer inputs) and parameter grads."""
        raise NotImplementedError

    def acts_per_step(self, in_type: Type) -> bool:
        """True if this layer treats every time step of ``in_type`` on its own, so the lengths of
        a ``Padded`` batch ride along to its output (``specchain.padded``). By default: when its
        own ``in_type`` states trailing dims only (``[..., F]`` or ``[...]``). A layer that acts
        across time instead reads ``Padded`` values itself (``takes_lengths = True``) or is
        refused one."""
        own = self.in_type
        return _states_nothing(own) or _open_ended(own)

    # --- shared behaviour ---------------------------------------------------------------------

    @property
    def default_name(self) -> str:
        return self.name if self.name is not None else snake_case(self.kind)

    def components(self) -> SpecChain | None:
        """For a composite spec (a stacked or bidirectional LSTM, the attention decoder): its
        inside as a chain of smaller specs, which diagrams draw as an expandable cluster."""
        return None

    def config(self) -> dict[str, Any]:
        """Hyper-parameters, by field name (what ``save`` stores and ``summary`` shows)."""
        return {
            a.name: getattr(self, a.name)
            for a in attrs.fields(type(self))
            if a.init and a.name not in _NOT_CONFIG
        }

    def describe(self) -> str:
        """Key hyper-parameters for summaries and diagrams, e.g. ``8 -> 32``."""
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    @property
    def num_params(self) -> int:
        return sum(int(p.size) for p in self.params.values())

    def as_chain(self) -> SpecChain:
        from specchain.chain import SpecChain

        return SpecChain.of(self)

    def __rshift__(self, other: NNModuleSpec | SpecChain) -> SpecChain:
        return self.as_chain() >> other

    def __call__(self, x: Value) -> Value:
        """Inference forward of this spec alone (as a one-node chain)."""
        return self.as_chain()(x)

    def to(self, dtype: object) -> NNModuleSpec:
        """Cast every parameter to ``dtype`` in place (like ``module.double()``)."""
        resolved = _params.check_float_dtype(dtype)
        for key, value in self.params.items():
            self.params[key] = value.astype(resolved)
        return self
