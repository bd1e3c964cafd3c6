"""Forward and backward over a ``SpecChain``.

Forward runs the nodes in the chain's deterministic order and, when asked, keeps a ``Tape`` of every
node's output and saved tensors. Backward walks the same order in reverse: cotangents of a value
used several times (fan-out) add up, and a spec that appears at several nodes (shared weights)
receives the sum of its gradients under its first name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from specchain import graph as g
from specchain import padded
from specchain.chain import SpecChain, infer_types
from specchain.graph import INPUT, OUTPUT
from specchain.params import DEFAULT_DTYPE, FLOAT_DTYPES, RngLike, runtime_generator
from specchain.spec import Context, NNModuleSpec, Value
from specchain.types import (
    ELLIPSIS,
    DimEnv,
    ShapeError,
    SpecError,
    TensorType,
    TupleType,
    Type,
    contains_any,
    type_of,
)
from specchain.validate import SpecTypeError

if TYPE_CHECKING:
    from specchain.losses import Loss

Edge = tuple[str, int | None, g.Index]


@attrs.frozen
class Tape:
    """What one forward pass kept for backward: each node's output and saved tensors."""

    chain: SpecChain = attrs.field(repr=False)
    values: dict[str, Value] = attrs.field(repr=False)
    saved: dict[str, Any] = attrs.field(repr=False)
    train: bool


@attrs.frozen
class Step:
    """One node of the execution plan."""

    node: str
    spec: NNModuleSpec
    edges: tuple[Edge, ...]
    whole: bool
    param_names: dict[str, str]  # local name -> full (canonical) name
    in_type: Type  # what the node receives (its roles place time and batch: ``Context.in_type``)
    out_type: Type
    per_step: bool  # lengths of a Padded input ride along (``NNModuleSpec.acts_per_step``)


@attrs.frozen
class Plan:
    """How to run a chain: its steps in order and the edges that deliver its output."""

    steps: tuple[Step, ...]
    out_edges: tuple[Edge, ...]
    out_whole: bool
    parameters: tuple[tuple[str, NNModuleSpec, str], ...]  # (full name, owning spec, local name)


def build_plan(chain: SpecChain) -> Plan:
    """The chain's execution plan (``chain.plan`` caches it)."""
    owners = chain.parameter_owners()
    canonical = {
        (id(chain.spec(node).params), local): full for full, (node, local) in owners.items()
    }
    steps = []
    for node in chain.nodes:
        spec = chain.spec(node)
        edges = tuple(g.in_edges(chain.graph, node))
        names = {local: canonical[(id(spec.params), local)] for local in spec.params}
        data = chain.graph.nodes[node]
        in_type, out_type = data["in_type"], data["out_type"]
        per_step = spec.acts_per_step(in_type)
        steps.append(Step(node, spec, edges, _is_whole(edges), names, in_type, out_type, per_step))
    out_edges = tuple(g.in_edges(chain.graph, OUTPUT))
    parameters = tuple((full, chain.spec(node), local) for full, (node, local) in owners.items())
    return Plan(tuple(steps), out_edges, _is_whole(out_edges), parameters)


def _is_whole(edges: tuple[Edge, ...]) -> bool:
    return len(edges) == 1 and edges[0][1] is None


def _gather(values: dict[str, Value], edges: tuple[Edge, ...], whole: bool) -> Value:
    if whole:
        src, _, index = edges[0]
        return g.select_value(values[src], index)
    return tuple(g.select_value(values[src], index) for src, _, index in edges)


# --- forward ---------------------------------------------------------------------------------


def forward(
    chain: SpecChain, x: Value, train: bool, rng: RngLike, keep: bool
) -> tuple[Value, Tape]:
    plan = chain.plan
    steps, out_edges, out_whole = plan.steps, plan.out_edges, plan.out_whole
    dtype = _params_dtype(steps)
    x = padded.attach(x, chain.in_type)
    check_input(chain, x, dtype)
    train, generator, dtype = bool(train), runtime_generator(rng), dtype or DEFAULT_DTYPE
    values: dict[str, Value] = {INPUT: x}
    saved: dict[str, Any] = {}
    for step in steps:
        inp = _gather(values, step.edges, step.whole)
        ctx = Context(train, generator, dtype, step.in_type)
        try:
            values[step.node], kept = _run(step, inp, ctx)
        except Exception as err:
            _annotate(err, step, inp, "forward")
            raise
        if keep:
            saved[step.node] = kept
    y = _gather(values, out_edges, out_whole)
    return y, Tape(chain, values if keep else {}, saved, bool(train))


def _run(step: Step, inp: Value, ctx: Context) -> tuple[Value, Any]:
    """One node's forward. A ``Padded`` input goes as it is to a spec that takes lengths; a
    per-step spec gets the data and its output gets the lengths back; any other spec refuses."""
    spec = step.spec
    carried = [] if spec.takes_lengths else padded.found(inp)
    if not carried:
        return spec.forward(spec.params, inp, ctx)
    if not step.per_step:
        raise ShapeError(
            f"{spec.kind} acts across time steps and cannot take a padded batch with lengths; "
            "call the model without lengths, or give the layer takes_lengths = True and a "
            "forward that reads specchain.padded.Padded values (see docs/custom_layers.md)"
        )
    if any(not np.array_equal(carried[0].lengths, p.lengths) for p in carried[1:]):
        raise ShapeError(
            f"{spec.kind} joins padded batches with different lengths "
            f"({[p.lengths.tolist() for p in carried]}); give every input the same lengths"
        )
    y, kept = spec.forward(spec.params, padded.strip(inp), ctx)
    return padded.rewrap(y, step.out_type, carried[0]), kept


def _params_dtype(steps: tuple[Step, ...]) -> np.dtype[Any] | None:
    """The parameters' float dtype, read from the plan (cheap: no graph walk per call)."""
    dtypes = {p.dtype for step in steps for p in step.spec.params.values()}
    if len(dtypes) > 1:
        raise SpecError(f"parameters mix dtypes {sorted(map(str, dtypes))}; call model.to(...)")
    return dtypes.pop() if dtypes else None


def check_input(chain: SpecChain, x: Value, model_dtype: np.dtype[Any] | None) -> None:
    """Check the input's dtypes, its type against ``chain.in_type`` (symbols bind to sizes), then
    its float width against the parameters'. A leaf is a float32/float64 array, or an integer or
    bool array that the graph's types place (token ids, a dropout mask); other dtypes (complex,
    float16, object, strings, datetimes, ...) are refused before any arithmetic runs."""
    x = padded.strip(x)
    concrete = type_of(x)  # refuses what is not an array or a tuple of arrays
    named = _paths(x)
    for path, leaf in named:
        _refuse_unsupported(path, leaf.dtype, model_dtype)
    chain.check_input_type(concrete)
    for path, leaf in named:
        if model_dtype is not None and leaf.dtype.kind == "f" and leaf.dtype != model_dtype:
            fix = f"cast the input with {_cast(_expr('x', path), leaf.dtype, model_dtype)}"
            if leaf.dtype in FLOAT_DTYPES:  # model.to only takes float32 / float64
                fix += f" or the model with model.to(np.{leaf.dtype})"
            raise SpecTypeError(
                f"input dtype {leaf.dtype} does not match the model's parameter dtype "
                f"{model_dtype}{_where('input', path)}; {fix}"
            )


def _refuse_unsupported(
    path: tuple[int, ...], dtype: np.dtype[Any], model_dtype: np.dtype[Any] | None
) -> None:
    """Refuse a dtype specchain never computes with (a float of another width is left to the
    comparison with the model's dtype, which names both)."""
    if (
        dtype.kind in "iub"
        or dtype in FLOAT_DTYPES
        or (dtype.kind == "f" and model_dtype is not None)
    ):
        return
    target, expr = model_dtype or DEFAULT_DTYPE, _expr("x", path)
    if dtype.kind in "cf":
        fix = f"cast it with {_cast(expr, dtype, target)}"
    else:
        fix = f"convert it to numbers: {expr}.astype(np.{target}), or .astype(np.int64) for ids"
    raise SpecTypeError(
        f"input dtype {dtype} is not supported{_where('input', path)}: specchain computes with "
        f"float32 or float64 arrays (integer or bool ones where the graph takes ids or masks); "
        f"{fix}"
    )


def _paths(tree: Value, path: tuple[int, ...] = ()) -> list[tuple[tuple[int, ...], Any]]:
    """``(index path, leaf)`` for every leaf of ``tree``, depth first."""
    if isinstance(tree, (tuple, list)):
        return [pair for i, item in enumerate(tree) for pair in _paths(item, (*path, i))]
    return [(path, tree)]


def _where(what: str, path: tuple[int, ...]) -> str:
    """Which leaf of a tuple a message is about: `` (input item 1.0)``; nothing for one array."""
    return f" ({what} item {'.'.join(map(str, path))})" if path else ""


def _expr(symbol: str, path: tuple[int, ...]) -> str:
    """The expression a fix uses for a leaf: ``x[1][0]``."""
    return symbol + "".join(f"[{i}]" for i in path)


def _cast(expr: str, dtype: np.dtype[Any], target: np.dtype[Any]) -> str:
    """The cast that turns an array of ``dtype`` into ``target`` (complex: its real part)."""
    return f"{expr}{'.real' if dtype.kind == 'c' else ''}.astype(np.{target})"


def check_input_type(chain: SpecChain, concrete: Type) -> None:
    """Check a call's input type against ``chain.in_type`` (``chain.check_input_type`` caches
    the types already accepted: types are immutable)."""
    try:
        if _unchecked(chain.in_type):
            raise ShapeError("input type is only known now")
        DimEnv(at_call=True).unify(concrete, chain.in_type, "input")
    except ShapeError:
        # A rank the declared type does not cover may still be valid (unbatched [T, F] input):
        # inferring the whole graph on the concrete type decides, and names the node if not.
        infer_types(chain.graph.copy(), concrete, at_call=True)


def _unchecked(t: Type) -> bool:
    """True if (part of) ``t`` is ANY or ``[...]``: types that state nothing a unification could
    check (``Tanh() >> Linear(6, 2)`` takes ``[...]``), so the whole graph is inferred instead."""
    if isinstance(t, TupleType):
        return any(_unchecked(i) for i in t.items)
    return contains_any(t) or (isinstance(t, TensorType) and t.dims == (ELLIPSIS,))


def _annotate(err: Exception, step: Step, inp: Value, phase: str) -> None:
    """Add the node, its kind and its input types to an error, once."""
    if getattr(err, "_specchain_node", None) is not None:
        return
    received = _describe(padded.strip(inp))
    context = f"in {phase} of node {step.node!r} ({step.spec.kind}, input {received})"
    err._specchain_node = step.node  # type: ignore[attr-defined]
    if isinstance(err, SpecError) and err.args and isinstance(err.args[0], str):
        err.args = (f"{context}: {err.args[0]}", *err.args[1:])
    elif hasattr(err, "add_note"):
        err.add_note(context)


# --- backward --------------------------------------------------------------------------------


def backward(chain: SpecChain, tape: Tape, dy: Value) -> tuple[Value, dict[str, np.ndarray]]:
    if tape.chain is not chain:
        raise SpecError("this tape was recorded by another chain; pass the tape from its forward")
    if not tape.values:
        raise SpecError("this forward kept no tape; call model.forward(x, ...) to record one")
    plan = chain.plan
    steps, out_edges, out_whole = plan.steps, plan.out_edges, plan.out_whole
    cotangents: dict[str, Any] = {}
    output = _gather(tape.values, out_edges, out_whole)
    _route(cotangents, tape.values, out_edges, out_whole, _check_cotangent(dy, output))
    grads: dict[str, np.ndarray] = {}
    for step in reversed(steps):
        if step.node not in cotangents:
            continue
        dy_node = materialize(cotangents.pop(step.node), tape.values[step.node])
        try:
            dx, dparams = step.spec.backward(step.spec.params, tape.saved[step.node], dy_node)
        except Exception as err:
            _annotate(err, step, _gather(tape.values, step.edges, step.whole), "backward")
            raise
        for local, d in dparams.items():
            _check_grad(step, local, d)
            full = step.param_names[local]
            grads[full] = grads[full] + d if full in grads else d
        _route(cotangents, tape.values, step.edges, step.whole, dx)
    dx = materialize(cotangents.get(INPUT), tape.values[INPUT])
    return dx, {  # every parameter, in the order of named_parameters()
        full: grads[full] if full in grads else np.zeros_like(spec.params[local])
        for full, spec, local in plan.parameters
    }


def _check_cotangent(dy: Value, output: Value, path: tuple[int, ...] = ()) -> Value:
    """``dy`` checked against the output: the same structure, and for every float output leaf
    None (zero) or an array of its shape and exactly its dtype (never cast: a float16 ``dy``
    would give float16 gradients, a float64 one silently wider ones). The cotangent of a
    ``Padded`` output is that of its data (a ``Padded`` ``dy`` counts as its data)."""
    output, dy = padded.strip(output), padded.strip(dy)
    if isinstance(output, tuple):
        if not isinstance(dy, (tuple, list)) or len(dy) != len(output):
            raise ShapeError(
                f"dy must match the output structure {type_of(output)}, got {_describe(dy)}"
            )
        return tuple(
            _check_cotangent(d, o, (*path, i))
            for i, (d, o) in enumerate(zip(dy, output, strict=False))
        )
    if dy is None:
        return None
    dy = np.asarray(dy)
    if dy.shape != output.shape:
        raise ShapeError(f"dy has shape {list(dy.shape)}, the output has {list(output.shape)}")
    if output.dtype.kind == "f" and dy.dtype != output.dtype:
        raise SpecTypeError(
            f"dy dtype {dy.dtype} does not match the output dtype {output.dtype}"
            f"{_where('dy', path)}; cast it with {_cast(_expr('dy', path), dy.dtype, output.dtype)}"
        )
    return dy


def _check_grad(step: Step, local: str, grad: np.ndarray) -> None:
    """A spec's backward must return each gradient in its parameter's dtype and shape (a custom
    layer that computes in another precision is named here, not found later in the optimizer)."""
    param = step.spec.params[local]
    if grad.dtype != param.dtype or grad.shape != param.shape:
        raise SpecError(
            f"in backward of node {step.node!r} ({step.spec.kind}): the gradient of {local!r} "
            f"is {grad.dtype}{list(grad.shape)}, the parameter {param.dtype}{list(param.shape)}; "
            "a spec's backward returns each gradient in its parameter's dtype and shape"
        )


def _describe(value: Any) -> str:
    try:
        return str(type_of(value))
    except TypeError:
        return type(value).__name__


def _route(
    cotangents: dict[str, Any],
    values: dict[str, Value],
    edges: tuple[Edge, ...],
    whole: bool,
    d: Any,
) -> None:
    """Send a node's input cotangent ``d`` back along its in-edges, adding up at the sources."""
    for src, port, index in edges:
        piece = d if whole else d[port]
        if piece is None:
            continue
        cotangents[src] = add_at(cotangents.get(src), index, piece, values[src])


def add_at(current: Any, index: g.Index, piece: Any, value: Value) -> Any:
    """``current`` with ``piece`` added at the tuple path ``index`` (None means zero)."""
    if not index:
        return _add(current, piece)
    items = list(current) if current is not None else [None] * len(value)
    items[index[0]] = add_at(items[index[0]], index[1:], piece, value[index[0]])
    return items


def _add(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, (list, tuple)):
        return [_add(x, y) for x, y in zip(a, b, strict=False)]
    return a + b


def materialize(cotangent: Any, value: Value) -> Value:
    """A full cotangent for ``value``: zeros where nothing flowed, None for integer arrays (of a
    ``Padded`` value: of its data)."""
    if isinstance(value, padded.Padded):
        value = value.data
    if isinstance(value, tuple):
        items = cotangent if cotangent is not None else [None] * len(value)
        return tuple(materialize(c, v) for c, v in zip(items, value, strict=False))
    if value.dtype.kind != "f":
        return None
    return cotangent if cotangent is not None else np.zeros_like(value)


def value_and_grad(
    chain: SpecChain, x: Value, target: Value, loss: Loss, train: bool, rng: RngLike
) -> tuple[float, dict[str, np.ndarray]]:
    y, tape = forward(chain, x, train=train, rng=rng, keep=True)
    value, dy = loss.value_and_grad(y, target)
    _, grads = backward(chain, tape, dy)
    return value, grads
