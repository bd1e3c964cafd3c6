"""``Input``: a named, typed input of a graph.

``Input(("T", "B", 8), name="x") >> LSTM(8, 16)`` types the chain by its input and names it;
``parallel(Input(t1, name="tokens") >> embed, Input(t2, name="state")) >> lstm`` takes the tuple
``(tokens, state)``, and its ``in_type`` is a ``TupleType`` whose ``names`` are the input names.
The names become the exported ``forward``'s arguments (``def forward(self, tokens, state)``) and the
diagram's input labels.

An ``Input`` is the identity: forward and backward pass values through unchanged. Its ``infer``
unifies what arrives with its declared type, so an ``Input`` standing inside a graph is a type
assertion. ``lengths=True`` declares a padded batch with per-example lengths: the input must then
come as ``(x, lengths)`` (or a ``specchain.padded.Padded``), and the exported ``forward`` takes a
``<name>_lengths`` argument after ``<name>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from specchain.graph import INPUT
from specchain.padded import Padded
from specchain.spec import Context, NNModuleSpec, Params, flag
from specchain.types import (
    BATCH,
    DimEnv,
    ShapeError,
    SpecError,
    TensorType,
    TupleType,
    Type,
    role_of,
)

if TYPE_CHECKING:
    from specchain.chain import SpecChain

DEFAULT_INPUT_NAME = "x"  # the node name of an Input given no name= (then x_1, x_2, ...)


def _declared_type(value: object) -> TensorType | TupleType:
    """A ``TensorType`` or ``TupleType`` as given; a tuple or list of dims is a float tensor."""
    if isinstance(value, (TensorType, TupleType)):
        return value
    if isinstance(value, (tuple, list)):
        return TensorType(tuple(value))
    raise SpecError(
        f"Input.type must be a TensorType, a TupleType or a tuple of dims such as ('T', 'B', 8), "
        f"got {value!r} ({type(value).__name__})"
    )


@attrs.define(eq=False)
class Input(NNModuleSpec, family="input"):
    """A graph input named ``name`` (default ``"x"``) of type ``type``: a ``TensorType`` such as
    ``[T, B, 8]``, a ``TupleType``, or a tuple of dims (``("T", "B", 8)``: a float tensor).

    Forward is the identity: ``[*type]`` in, the same value out. ``lengths=True`` (keyword only):
    the input is a padded batch ``[T, B, ...]`` with int lengths ``[B]``, given as ``(x,
    lengths)``; without it, a call may still pass lengths (they ride along as usual).
    """

    type: TensorType | TupleType = attrs.field(converter=_declared_type)
    lengths: bool = attrs.field(default=False, kw_only=True, validator=flag)

    takes_lengths = True  # a Padded value passes through whole, lengths and all

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if self.lengths and not isinstance(self.type, TensorType):
            raise SpecError(
                f"Input {self.default_name!r}: lengths=True needs one tensor type such as "
                f"[T, B, 8], got {self.type}; give each sequence its own Input"
            )

    @property
    def default_name(self) -> str:
        return self.name if self.name is not None else DEFAULT_INPUT_NAME

    @property
    def in_type(self) -> Type:
        return self.type

    def describe(self) -> str:
        return f"{self.type}" + (" + lengths [B]" if self.lengths else "")

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        """What arrives, unified with the declared type; a value without the batch axis (an
        unbatched ``[T, 8]`` for ``[T, B, 8]``) is the declared type unbatched, as in PyTorch."""
        what = f"input {self.default_name!r}"
        trial = dims.copy()
        try:
            unified = trial.unify(in_type, self.type, what)
        except ShapeError:
            unbatched = _unbatched(self.type)
            if unbatched == self.type:
                raise
            trial = dims.copy()
            try:
                unified = trial.unify(in_type, unbatched, what)
            except ShapeError:
                return dims.unify(in_type, self.type, what)  # the batched type's message
        dims.bindings, dims.prefix = trial.bindings, trial.prefix
        return unified

    def forward(self, params: Params, x: Any, ctx: Context) -> tuple[Any, None]:
        if self.lengths and not isinstance(x, Padded):
            raise ShapeError(
                f"input {self.default_name!r} takes (x, lengths): a padded batch {self.type} and "
                f"one int length per example; got no lengths. Call the model with "
                f"(x, lengths), or build the Input without lengths=True"
            )
        return x, None

    def backward(self, params: Params, saved: None, dy: Any) -> tuple[Any, Params]:
        return dy, {}


def _unbatched(t: Type) -> Type:
    """``t`` without its batch-role dims (``[T, B, 8]`` -> ``[T, 8]``), item by item."""
    if isinstance(t, TupleType):
        return TupleType((_unbatched(item) for item in t.items), t.names)
    if isinstance(t, TensorType):
        return t.with_dims([d for d in t.dims if role_of(d) != BATCH])
    return t


def _declare_export() -> None:
    """An Input has no PyTorch module (imported here: the exporter itself imports ``Input``)."""
    from specchain.exporters import pytorch

    pytorch.no_torch_twin(
        Input,
        "an Input is an argument of the exported forward, not a module; the exporter writes it "
        "as that argument",
    )


def argument_inputs(chain: SpecChain) -> dict[str, int | None]:
    """The ``Input`` nodes that take the graph's input directly, by node name: the item of the
    input tuple each takes (None: the whole input). These are the graph's named arguments."""
    found: dict[str, int | None] = {}
    for _, node, data in chain.graph.out_edges(INPUT, data=True):
        index = data["index"]
        if isinstance(chain.graph.nodes[node]["spec"], Input) and len(index) <= 1:
            found[node] = index[0] if index else None
    return found


def input_name(chain: SpecChain) -> str | None:
    """The name of the ``Input`` taking the whole input of ``chain``, if one does."""
    whole = [node for node, item in argument_inputs(chain).items() if item is None]
    return whole[0] if len(whole) == 1 else None


_declare_export()
