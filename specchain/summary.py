"""``summary``: a table of a chain's nodes, like Keras' ``model.summary()``; with
``input_shape=`` it shows the concrete shapes of one call and its memory, like torchinfo's
``summary(model, input_size=...)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from specchain.graph import INPUT
from specchain.inputs import argument_inputs
from specchain.types import ShapeError, SpecError, TensorType, TupleType, Type

if TYPE_CHECKING:
    from specchain.chain import SpecChain

Shape = Sequence[Any]  # a tuple of ints for one input, or a tuple of those for a tuple input


def summary(chain: SpecChain, input_shape: Shape | None = None) -> str:
    """Columns: node, kind (with key hyper-parameters), input type, output type, parameters.
    The model's named inputs (``Input`` nodes taking its input) come first, in argument order;
    a row ``(input)`` stands for the input when other nodes take it too.

    ``input_shape``: concrete sizes of one call's input, e.g. ``(20, 4, 8)`` for ``[T, B, 8]``,
    or one shape per item of a tuple input (``((12, 4, 8), (10, 4, 8))`` for
    ``(source [S, B, 8], decoder_inputs [T, B, 8])``). The graph is re-inferred with those
    sizes bound, so every node shows concrete shapes, and the table adds each node's output
    memory and totals for the input, the parameters and the activations (the outputs of every
    node in one forward pass), in bytes of the model's dtype.
    """
    if input_shape is None:
        return _table(chain, memory=None)
    concrete = chain.retyped(bind_shape(chain.in_type, input_shape))
    itemsize = _itemsize(chain)
    return _table(concrete, memory=itemsize)


def bind_shape(in_type: Type, shape: Shape) -> Type:
    """``in_type`` with its dims replaced by the sizes of ``shape`` (nested like the type: a
    tuple of ints per tensor, a tuple of those per tuple). Fixed sizes must match; the chain's
    shape inference checks that a symbol (``T``, ``B``) gets one size everywhere."""
    if isinstance(in_type, TupleType):
        if not _is_sequence(shape) or len(shape) != len(in_type.items):
            raise ShapeError(
                f"input_shape {shape!r} does not fit the input {in_type}: give one shape per item "
                f"({len(in_type.items)}), e.g. {_example(in_type)}"
            )
        items = tuple(bind_shape(t, s) for t, s in zip(in_type.items, shape, strict=True))
        return TupleType(items, in_type.names)
    if not isinstance(in_type, TensorType) or in_type.variadic:
        raise ShapeError(f"input_shape cannot be bound to the input {in_type}")
    if (
        not _is_sequence(shape)
        or len(shape) != len(in_type.dims)
        or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape)
        or any(d < 0 for d in shape)
    ):
        raise ShapeError(
            f"input_shape {shape!r} does not fit the input {in_type}: give {len(in_type.dims)} "
            f"sizes (non-negative ints), e.g. {_example(in_type)}"
        )
    for dim, size in zip(in_type.dims, shape, strict=True):
        if isinstance(dim, int) and dim != size:
            raise ShapeError(
                f"input_shape {tuple(shape)} does not fit the input {in_type}: size {size} where "
                f"the model needs {dim}; e.g. {_example(in_type)}"
            )
    return in_type.with_dims(tuple(int(d) for d in shape))


def _is_sequence(value: object) -> bool:
    return isinstance(value, (tuple, list))


def _example(t: Type) -> str:
    """An ``input_shape`` that fits ``t`` (``T`` = 20, ``B`` = 4, ``S`` = 12, others 1)."""
    sizes = {"T": 20, "B": 4, "S": 12}
    if isinstance(t, TupleType):
        return "(" + ", ".join(_example(item) for item in t.items) + ")"
    if isinstance(t, TensorType):
        dims = [d if isinstance(d, int) else sizes.get(str(d), 1) for d in t.dims]
        return "(" + ", ".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")"
    return "..."


def _itemsize(chain: SpecChain) -> int:
    """Bytes per float element: the parameters' dtype (float32 for a model without any)."""
    try:
        dtype = chain.dtype
    except SpecError:  # mixed dtypes: count the widest
        dtype = max((p.dtype for p in chain.named_parameters().values()), key=lambda d: d.itemsize)
    return np.dtype(np.float32 if dtype is None else dtype).itemsize


def nbytes(t: Type, itemsize: int) -> int:
    """Bytes of a value of the concrete type ``t``: floats of ``itemsize`` bytes, ints as
    int64 and bools as one byte each, summed over the items of a tuple."""
    if isinstance(t, TupleType):
        return sum(nbytes(item, itemsize) for item in t.items)
    sizes = [d for d in t.dims if isinstance(d, int)] if isinstance(t, TensorType) else []
    if not isinstance(t, TensorType) or len(sizes) != len(t.dims):
        raise ShapeError(f"cannot count the bytes of {t}: its sizes are not all known")
    per = {"float": itemsize, "int": 8, "bool": 1}[t.dtype]
    return int(np.prod(sizes, dtype=np.int64)) * per


def human_bytes(count: int) -> str:
    """``512 B``, ``17.4 KiB``, ``3.2 MiB``, ``1.5 GiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _table(chain: SpecChain, memory: int | None) -> str:
    """The table; ``memory``: the float item size, adding an ``output memory`` column and the
    memory totals (the chain's types are then concrete)."""
    header: tuple[str, ...] = ("node", "kind", "input", "output", "params")
    if memory is not None:
        header = (*header, "output memory")
    named = sorted(argument_inputs(chain).items(), key=lambda item: item[1] or 0)
    inputs = [node for node, _ in named]  # the model's named inputs come first, in order
    rows: list[tuple[str, ...]] = []
    if not set(chain.graph.successors(INPUT)) <= set(inputs):
        rows.append(("(input)", "", "", str(chain.in_type), "", *([""] if memory else [])))
    owners = {node for node, _ in chain.parameter_owners().values()}
    counted: set[int] = set()
    activations = 0
    for node in [*inputs, *(n for n in chain.nodes if n not in inputs)]:
        spec = chain.spec(node)
        details = spec.describe()
        kind = f"{spec.kind}({details})" if details else spec.kind
        count = f"{spec.num_params:,}"
        if spec.params and (node not in owners or id(spec.params) in counted):
            count = f"shared ({spec.num_params:,})"
        counted.add(id(spec.params))
        data = chain.graph.nodes[node]
        row: tuple[str, ...] = (node, kind, str(data["in_type"]), str(data["out_type"]), count)
        if memory is not None:
            size = nbytes(data["out_type"], memory)
            activations += size
            row = (*row, human_bytes(size))
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()

    rule = "-" * len(line(tuple("-" * w for w in widths)))
    total = chain.num_params
    footer = [
        f"total parameters: {total:,}",
        f"{INPUT[1:-1]}: {chain.in_type}  ->  output: {chain.out_type}",
    ]
    if memory is not None:
        footer += _memory_lines(chain, memory, activations)
    return "\n".join([line(header), rule, *(line(r) for r in rows), rule, *footer])


def _memory_lines(chain: SpecChain, itemsize: int, activations: int) -> list[str]:
    """Input, parameter, activation and total memory, torchinfo-style."""
    params = sum(int(p.nbytes) for p in chain.named_parameters().values())
    data = nbytes(chain.in_type, itemsize)
    dtype = f"float{8 * itemsize}"
    return [
        f"input memory: {human_bytes(data)}",
        f"parameter memory: {human_bytes(params)}",
        f"activation memory: {human_bytes(activations)} (every node's output, {dtype})",
        f"estimated total: {human_bytes(data + params + activations)}",
    ]
