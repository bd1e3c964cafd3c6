"""Types that flow along the edges of a spec graph.

A ``Dim`` is either a fixed size (``int``) or a symbol (``str``) such as ``"T"`` (time) or ``"B"``
(batch). The symbol ``"..."`` may stand first in a tensor type and means "any number of leading
dims" (``Linear`` accepts ``[..., in_features]``).

Axis roles: ``B`` is the batch axis, ``T`` and ``S`` (a second sequence, such as an attention
source) are time axes; other symbols name sizes and have no role. Two different roles never unify,
so ``[B, T, F]`` never passes for ``[T, B, F]``, and layers that act on time find the time axis by
its role (``time_axis``) whatever the layout.

``TensorType(dims, dtype)`` describes one array; ``dtype`` is the *kind* ``"float"``, ``"int"`` or
``"bool"`` (a mask): the float width (float32 or float64) follows the model's parameters and is
checked at call time, with every other dtype (``specchain.engine.check_input``).
``TupleType(items, names)`` describes a tuple of values (merge inputs, ``output, (h_n, c_n)``).
``ANY`` is the type of an input that is only known when data arrives (a bare ``Concat``).

``DimEnv`` unifies symbols across a whole graph: every spec's ``infer`` states its equalities
through it, and a conflict raises ``ShapeError`` naming the dims that differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs
import numpy as np

Dim = int | str
ELLIPSIS = "..."
KINDS = ("float", "int", "bool")  # the dtype kinds a TensorType states
TIME, BATCH = "time", "batch"
ROLES: dict[str, str] = {"T": TIME, "S": TIME, "B": BATCH}  # symbol -> its axis role


class SpecError(ValueError):
    """Base class of every error specchain raises for a user mistake."""


class ShapeError(SpecError):
    """A shape or type does not fit: at graph build time, or when data arrives."""


def format_dim(dim: Dim) -> str:
    return str(dim)


def role_of(dim: Dim) -> str | None:
    """``"time"``, ``"batch"`` or None (a size). A sum of symbols (``"S+T"``, a ``Concat`` along
    time) has its parts' common role."""
    if not isinstance(dim, str):
        return None
    if "+" in dim:
        roles = {role_of(part) for part in dim.split("+") if not part.isdigit()}
        return roles.pop() if len(roles) == 1 else None
    return ROLES.get(dim)


def role_axis(dims: Sequence[Dim], role: str) -> int | None:
    """The index of the first dim with ``role`` (None if there is none, or after a ``...``)."""
    if dims and dims[0] == ELLIPSIS:
        return None
    return next((k for k, d in enumerate(dims) if role_of(d) == role), None)


def has_roles(dims: Sequence[Dim]) -> bool:
    return any(role_of(d) is not None for d in dims)


def _check_dim(dim: object) -> Dim:
    if isinstance(dim, bool) or not isinstance(dim, (int, str)):
        raise TypeError(f"a dim must be an int or a symbol string, got {dim!r}")
    if isinstance(dim, int) and dim < 0:
        raise ShapeError(f"a dim must be >= 0, got {dim}")
    if isinstance(dim, str) and not dim:
        raise ShapeError("a symbolic dim needs a non-empty name")
    return dim


def _to_dims(dims: Iterable[object]) -> tuple[Dim, ...]:
    checked = tuple(_check_dim(d) for d in dims)
    if ELLIPSIS in checked[1:]:
        raise ShapeError(f"'...' may only stand first in a tensor type, got {list(checked)}")
    return checked


@attrs.frozen(repr=False)
class TensorType:
    """One array: ``dims`` (ints and symbols) and a dtype kind (``"float"``, ``"int"`` or
    ``"bool"``)."""

    dims: tuple[Dim, ...] = attrs.field(converter=_to_dims)
    dtype: str = attrs.field(default="float", validator=attrs.validators.in_(KINDS))

    @property
    def rank(self) -> int | None:
        """Number of dims, or None when the type has a leading ``...``."""
        return None if self.variadic else len(self.dims)

    @property
    def variadic(self) -> bool:
        return bool(self.dims) and self.dims[0] == ELLIPSIS

    def with_dims(self, dims: Sequence[Dim]) -> TensorType:
        return TensorType(tuple(dims), self.dtype)

    @classmethod
    def of(cls, value: np.ndarray) -> TensorType:
        """The concrete type of an array (a dtype the engine refuses, complex or object,
        counts as ``"float"``: ``check_input`` names it before any type is compared)."""
        kind = {"i": "int", "u": "int", "b": "bool"}.get(value.dtype.kind, "float")
        return cls(tuple(int(d) for d in value.shape), kind)

    def __str__(self) -> str:
        body = "[" + ", ".join(format_dim(d) for d in self.dims) + "]"
        return body if self.dtype == "float" else f"{self.dtype}{body}"

    def __repr__(self) -> str:
        args = ", ".join(format_dim(d) for d in self.dims)
        suffix = "" if self.dtype == "float" else f", dtype={self.dtype}"
        return f"TensorType({args}{suffix})"


def _to_items(items: Iterable[Type]) -> tuple[Type, ...]:
    return tuple(items)


@attrs.frozen(repr=False)
class TupleType:
    """A tuple of values; ``names`` label the items for summaries and diagrams."""

    items: tuple[Type, ...] = attrs.field(converter=_to_items)
    names: tuple[str, ...] | None = attrs.field(default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.names is not None and len(self.names) != len(self.items):
            raise ShapeError(f"TupleType has {len(self.items)} items but {len(self.names)} names")

    def __str__(self) -> str:
        if self.names is None:
            return "(" + ", ".join(str(t) for t in self.items) + ")"
        return (
            "(" + ", ".join(f"{n}: {t}" for n, t in zip(self.names, self.items, strict=False)) + ")"
        )

    def __repr__(self) -> str:
        return f"TupleType({', '.join(repr(t) for t in self.items)})"

    @classmethod
    def of(cls, value: tuple[object, ...]) -> TupleType:
        return cls(type_of(v) for v in value)


class AnyType:
    """The type of an input known only when data arrives."""

    def __str__(self) -> str:
        return "any"

    def __repr__(self) -> str:
        return "ANY"


ANY = AnyType()
Type = TensorType | TupleType | AnyType


def type_of(value: object) -> Type:
    """The concrete type of a value: an array or a (nested) tuple of arrays."""
    if isinstance(value, tuple):
        return TupleType.of(value)
    if isinstance(value, np.ndarray):
        return TensorType.of(value)
    raise TypeError(
        f"expected a numpy array or a tuple of arrays, got {type(value).__name__}; "
        "convert it with np.asarray(...)"
    )


def contains_any(t: Type) -> bool:
    if isinstance(t, AnyType):
        return True
    if isinstance(t, TupleType):
        return any(contains_any(i) for i in t.items)
    return False


class DimEnv:
    """A substitution of symbols, grown by unification; shared by all specs of one graph."""

    def __init__(self, at_call: bool = False) -> None:
        self.at_call = at_call  # phrase conflicts as "expected X, got Y" (data) or "X != Y" (build)
        self.bindings: dict[str, Dim] = {}
        self.prefix: tuple[Dim, ...] | None = None  # what ``...`` stands for, once known

    def copy(self) -> DimEnv:
        """An independent continuation of this substitution (extending a chain uses one)."""
        other = DimEnv(self.at_call)
        other.bindings = dict(self.bindings)
        other.prefix = self.prefix
        return other

    def resolve(self, dim: Dim) -> Dim:
        while isinstance(dim, str) and dim in self.bindings:
            dim = self.bindings[dim]
        return dim

    def equal(self, a: Dim, b: Dim, what: str = "dim") -> Dim:
        """Unify ``a`` (what arrives) with ``b`` (what is expected); raise ``ShapeError`` naming
        ``what`` and both values when they conflict."""
        a, b = self.resolve(a), self.resolve(b)
        if a == b:
            return a
        role_a, role_b = role_of(a), role_of(b)
        if role_a and role_b and role_a != role_b:
            raise ShapeError(
                f"{what}: the {role_a} axis {a} cannot be the {role_b} axis {b} (axes of different "
                "roles never unify)"
            )
        if isinstance(a, str) and a != ELLIPSIS and not (role_a and isinstance(b, str)):
            self.bindings[a] = b  # a size symbol takes the role of the symbol it meets
            return b
        if isinstance(b, str) and b != ELLIPSIS:
            self.bindings[b] = a
            return a
        if self.at_call:
            raise ShapeError(f"{what}: expected {b}, got {a}")
        raise ShapeError(f"{what} {a} != {b}")

    def unify(self, a: Type, b: Type, what: str = "type") -> Type:
        """Unify two types dim by dim; returns the unified type."""
        if isinstance(a, AnyType):
            return b
        if isinstance(b, AnyType):
            return a
        if isinstance(a, TupleType) or isinstance(b, TupleType):
            if not (isinstance(a, TupleType) and isinstance(b, TupleType)):
                raise ShapeError(f"{what}: a tuple and a single tensor do not match ({a} vs {b})")
            if len(a.items) != len(b.items):
                raise ShapeError(f"{what}: tuple of {len(a.items)} != tuple of {len(b.items)}")
            return TupleType(
                (
                    self.unify(x, y, f"{what} item {i}")
                    for i, (x, y) in enumerate(zip(a.items, b.items, strict=False))
                ),
                a.names or b.names,
            )
        if a.dtype != b.dtype:
            raise ShapeError(f"{what}: dtype {a.dtype} != {b.dtype}")
        return a.with_dims(self.unify_dims(a.dims, b.dims, what))

    def unify_dims(self, a: tuple[Dim, ...], b: tuple[Dim, ...], what: str) -> tuple[Dim, ...]:
        a_var, b_var = bool(a) and a[0] == ELLIPSIS, bool(b) and b[0] == ELLIPSIS
        a_fixed, b_fixed = a[1:] if a_var else a, b[1:] if b_var else b
        if not a_var and not b_var and len(a) != len(b):
            raise ShapeError(f"{what}: rank {len(a)} != {len(b)} ({_fmt(a)} vs {_fmt(b)})")
        n = min(len(a_fixed), len(b_fixed))
        if (a_var and not b_var and len(b) < len(a_fixed)) or (
            b_var and not a_var and len(a) < len(b_fixed)
        ):
            raise ShapeError(f"{what}: rank too small ({_fmt(a)} vs {_fmt(b)})")
        suffix = [
            self.equal(x, y, _dim_label(len(a_fixed) - n + i, len(a_fixed)))
            for i, (x, y) in enumerate(
                zip(a_fixed[len(a_fixed) - n :], b_fixed[len(b_fixed) - n :], strict=False)
            )
        ]
        longer = a if len(a_fixed) >= len(b_fixed) else b
        head = list(longer[: len(longer) - n])
        if a_var != b_var:
            concrete = b if a_var else a
            self.prefix = tuple(concrete[: len(concrete) - n])
            head = list(self.prefix)
        return tuple(self.resolve(d) for d in head) + tuple(suffix)

    def apply(self, t: Type) -> Type:
        """``t`` with every bound symbol replaced by what it stands for."""
        if isinstance(t, AnyType):
            return t
        if isinstance(t, TupleType):
            return TupleType((self.apply(i) for i in t.items), t.names)
        dims = t.dims
        # "..." became known dims somewhere; a bare [...] (an elementwise op's type) also covers
        # the stated dims of the others, so the prefix does not replace it.
        if t.variadic and len(t.dims) > 1 and self.prefix is not None:
            dims = (*self.prefix, *dims[1:])
        dims = tuple(self.resolve(d) for d in dims)
        return t if dims == t.dims else t.with_dims(dims)

    def expect_role(self, dim: Dim, role: str, symbol: str, what: str) -> None:
        """Refuse a ``dim`` whose role is not ``role`` (an int or a size symbol passes; a size
        symbol becomes ``symbol``, taking its role). Sizes are not bound: two sequences of one
        graph may have different lengths."""
        found = role_of(self.resolve(dim))
        if found is not None and found != role:
            raise ShapeError(
                f"{what}: expected the {role} axis {symbol}, got the {found} axis {dim}"
            )
        resolved = self.resolve(dim)
        if isinstance(resolved, str) and found is None and resolved != ELLIPSIS:
            self.bindings[resolved] = symbol

    def fix_rank(self, t: TensorType, dims: tuple[Dim, ...], what: str) -> TensorType:
        """``t`` (maybe ``[..., F]``) unified with the full ``dims``; a leading ``...`` binds to
        the matching dims, so ``Linear(8, 8) >> LastStep()`` takes ``[T, B, 8]``."""
        return t.with_dims(self.unify_dims(t.dims, dims, what))


def _fmt(dims: Sequence[Dim]) -> str:
    return "[" + ", ".join(format_dim(d) for d in dims) + "]"


def _dim_label(index: int, rank: int) -> str:
    if index == rank - 1:
        return "feature size"
    return f"dim {index}"
