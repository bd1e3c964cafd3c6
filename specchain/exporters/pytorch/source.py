"""``to_source``: the text of a standalone ``model.py`` for a ``SpecChain``.

One ``nn.Module`` class: ``__init__`` creates one attribute per node that needs a module (a spec
used at several nodes is one shared module), ``forward`` is typed, straight-line code in graph
order, one statement per node. Each node's statement comes from the emitter registered for its
spec's class (``emitters.py``): native modules where they exist (``lstm, _ = self.lstm(x)``),
one-line tensor expressions written inline (``torch.cat((a, b), dim=-1)``), helper classes
copied from ``torch_helpers.py`` for the rest. Every identifier comes from one ``Namespace``;
every constant is a literal; user text appears only inside string literals and, made safe, in
docstrings and, ``repr``'d, in the comment naming the nodes a fused module replaces
(``fusion.py``: stacked layers and bidirectional lanes become one ``nn.LSTM``). The layout
is ruff's (``layout.py``): the file passes ``ruff check`` and ``ruff format --check`` with
default settings, and ``torch.jit.script`` compiles the class.
"""

from __future__ import annotations

import ast

from specchain import graph as g
from specchain.chain import SpecChain
from specchain.exporters.pytorch import filetext, fusion, layout, lengths
from specchain.exporters.pytorch.emitters import Emitted, ExportError, emitter_for, helper_classes
from specchain.exporters.pytorch.namespace import Namespace, is_identifier
from specchain.exporters.pytorch.naming import Names, assign_names, shadows_file_name
from specchain.graph import INPUT, OUTPUT
from specchain.inputs import Input
from specchain.types import TensorType, TupleType, Type

BODY = layout.INDENT * 2  # the indentation of a method's statements
LOOPS_OVER_TIME = ("AttentionLSTM", "LSTMVariant")  # exported as Python loops over the steps
TRACE_NOTE = (
    "Tracing (torch.jit.trace, legacy ONNX export) would fix the sequence length of {nodes} "
    "to the traced one: it warns. Script the module instead."
)


def to_source(model: SpecChain, class_name: str = "Model", source: str | None = None) -> str:
    """The text of a standalone ``model.py`` defining ``class_name`` and ``load(weights_path)``.

    ``source`` names the model in the module docstring (e.g. ``"zoo:seq2seq"``); by default
    the docstring describes the graph."""
    from specchain import __version__

    names = assign_names(model, class_name)
    fused = fusion.fuse(model)  # names are those of the fused chain: emit that
    model = fused.chain
    base, super_init = "nn.Module", "super().__init__()"
    temporaries = Namespace(reserved=_taken(names))
    init_lines: list[str] = []
    forward_lines: list[str] = []
    helpers: dict[str, str] = {}  # class name -> its source, in order of first use
    built: set[str] = set()
    classes = helper_classes()
    _check_lengths(model, names)
    carried = lengths.flow(model, _input_lengths(model, names))
    for node in model.nodes:
        if isinstance(model.spec(node), Input):  # an argument, or a type check: no module
            value = _input_expression(model, names, node)
            if value != names.variable[node]:
                forward_lines.append(f"{BODY}{names.variable[node]} = {value}")
            continue
        emitted = _emit(model, node, classes)
        received = carried[node][0]
        if emitted.inline and not _needs_lengths(model, node, received):
            forward_lines += _inline(model, names, node, emitted.inline)
            continue
        if not emitted.constructor:
            raise ExportError(
                f"node {node!r}: the emitter of {model.spec(node).kind} writes it inline only, "
                "which cannot take a padded batch's lengths; export the model without lengths"
            )
        if emitted.helper is not None:
            _add_helper(helpers, node, emitted, classes, names)
        attribute = names.attribute[node]
        if node == names.base and emitted.helper is not None:  # the class is this module
            base = emitted.helper
            super_init = "super().__init__" + emitted.constructor.removeprefix(base)
        elif attribute not in built:
            built.add(attribute)
            init_lines += [f"{BODY}{line}" for line in fused.comments(node)]
            init_lines += _assignment(f"self.{attribute}", emitted.constructor)
        forward_lines += _call(model, names, node, emitted, received, temporaries)
    forward_lines.append(f"{BODY}return {_input_expression(model, names, OUTPUT)}")
    helper_source = "\n\n\n".join(helpers.values())
    summary = _summary(model, names, __version__, source)
    body = [
        f"class {class_name}({base}):",
        *filetext.class_docstring(summary),
        "",
        f"{layout.INDENT}def __init__(self) -> None:",
        f"{BODY}{super_init}",
        *init_lines,
        "",
        *_signature(model, names),
        *forward_lines,
        "",
        *filetext.load_checkpoint_method(),
    ]
    code = "\n".join([helper_source, *body])
    node_names = {names.variable[n]: fused.origin(n) for n in model.nodes}
    header = [
        *filetext.module_docstring(summary),
        "",
        *filetext.imports(code),
        "",
        *filetext.constants(str(model.in_type), str(model.out_type), node_names),
    ]
    sections = ["\n".join(header)]
    if helper_source:
        sections.append(helper_source.rstrip())
    sections += ["\n".join(body), "\n".join(filetext.loader(class_name))]
    return "\n\n\n".join(sections) + "\n"


def _assignment(target: str, expression: str) -> list[str]:
    """``target = expression`` in a method body, laid out as ruff would (``layout.py``); an
    emitter's text that does not parse is left as it is (compiling the file refuses it)."""
    try:
        return layout.assignment(target, expression, BODY)
    except SyntaxError:
        return [f"{BODY}{target} = {expression}"]


def _taken(names: Names) -> set[str]:
    """Every identifier of the file, so that temporaries never shadow one."""
    return {
        names.class_name,
        *names.signature(),
        *names.attribute.values(),
        *names.variable.values(),
    }


def _summary(model: SpecChain, names: Names, version: str, source: str | None) -> filetext.Summary:
    modules = [n for n in model.nodes if not isinstance(model.spec(n), Input)]
    nodes = tuple(f"{names.variable[n]} ({model.spec(n).kind})" for n in modules)
    safe = layout.doc_text
    count = f"{len(modules)} layer" + ("" if len(modules) == 1 else "s")
    described = safe(source) if source else f"a specchain SpecChain of {count}"
    arguments = tuple(
        (argument, safe(str(t)))
        for argument, t in zip(names.signature(), _argument_types(model, names))
    )
    # the attention decoder loops over the decoder steps: a trace would fix their number
    looping = [names.variable[n] for n in modules if model.spec(n).kind in LOOPS_OVER_TIME]
    note = TRACE_NOTE.format(nodes=", ".join(looping)) if looping else ""
    return filetext.Summary(
        version, described, names.class_name, arguments, safe(str(model.out_type)), nodes, note
    )


def _argument_types(model: SpecChain, names: Names) -> list[Type]:
    """The type of each ``forward`` argument after ``self`` (a lengths argument is int[B])."""
    in_type = model.in_type
    items = (
        list(in_type.items)
        if len(names.arguments) > 1 and isinstance(in_type, TupleType)
        else [in_type]
    )
    out: list[Type] = []
    for i, item in enumerate(items):
        out.append(item)
        if i in names.lengths:
            out.append(TensorType(("B",), "int"))
    return out


def annotation(t: Type) -> str:
    """The TorchScript-compatible annotation of a value of type ``t``."""
    if isinstance(t, TupleType):
        return f"tuple[{', '.join(annotation(item) for item in t.items)}]"
    return "torch.Tensor"


def _signature(model: SpecChain, names: Names) -> list[str]:
    """``def forward(self, x: torch.Tensor) -> torch.Tensor:``, exploded when long."""
    typed = [
        f"{argument}: {annotation(t)}"
        for argument, t in zip(names.signature(), _argument_types(model, names))
    ]
    tail = f") -> {annotation(model.out_type)}:"
    return layout.bracketed("def forward(", ["self", *typed], tail, layout.INDENT)


def _needs_lengths(model: SpecChain, node: str, received: lengths.Carried) -> bool:
    """True when ``node`` takes the lengths its input carries (a module call, not inline)."""
    spec, in_type = model.spec(node), model.graph.nodes[node]["in_type"]
    used = lengths.carried_names(received)
    return bool(used) and spec.takes_lengths and not spec.acts_per_step(in_type)


def _check_lengths(model: SpecChain, names: Names) -> None:
    """An ``Input`` with ``lengths=True`` must be one of the model's arguments."""
    with_lengths = {names.arguments[item] for item in names.lengths}
    for node in model.nodes:
        spec = model.spec(node)
        if isinstance(spec, Input) and spec.lengths and names.variable[node] not in with_lengths:
            raise ExportError(
                f"input {node!r} has lengths=True but is not one of the model's arguments; "
                "give lengths=True only to an Input that takes the model's input"
            )


def _input_lengths(model: SpecChain, names: Names) -> lengths.Carried:
    """What the graph input carries: each argument's lengths argument, or None."""
    if isinstance(model.in_type, TupleType):
        return tuple(names.lengths.get(i) for i in range(len(model.in_type.items)))
    return names.lengths.get(0)


def _call(
    model: SpecChain,
    names: Names,
    node: str,
    emitted: Emitted,
    received: lengths.Carried,
    temporaries: Namespace,
) -> list[str]:
    """The forward statements of one module node: its call, and with lengths, how it takes
    them."""
    spec = model.spec(node)
    variable, callee = names.variable[node], f"self.{names.attribute[node]}"
    arguments = _argument_list(model, names, node, emitted.splat)
    if _needs_lengths(model, node, received):
        used = lengths.carried_names(received)
        if emitted.lengths == "pack":
            items = _argument_items(model, names, node)
            in_type = model.graph.nodes[node]["in_type"]
            packed = lengths.PackedCall(variable, callee, items, used[0], in_type, BODY)
            return packed.lines(emitted.drop_state, emitted.suffix, temporaries)
        if emitted.lengths != "argument":
            raise ExportError(
                f"node {node!r}: {spec.kind} takes a padded batch's lengths, but its emitter "
                "does not say how the exported module takes them (pytorch.Emitted(..., "
                "lengths='pack' or 'argument')); export the model without lengths"
            )
        arguments += _lengths_arguments(received)
    target = f"{variable}, _" if emitted.drop_state else variable
    lines = layout.call(target, callee, arguments, BODY)
    if emitted.suffix:
        lines[-1] += emitted.suffix
    return lines


def _inline(model: SpecChain, names: Names, node: str, template: str) -> list[str]:
    """``variable = expression``: the emitter's template filled with the input's expressions."""
    items = _argument_items(model, names, node)
    whole = _input_expression(model, names, node)
    try:
        expression = template.format(*items, x=whole, items=_tuple(items))
    except (IndexError, KeyError) as error:
        raise ExportError(
            f"node {node!r}: the inline template {template!r} of {model.spec(node).kind} "
            f"names {error}, which its input does not have ({len(items)} item(s)); use {{x}}, "
            "{items} or {0} .. {n}"
        ) from None
    return _assignment(names.variable[node], expression)


def _emit(model: SpecChain, node: str, classes: dict[str, str]) -> Emitted:
    """The registered emitter's output for ``node``; its errors are re-raised naming the node."""
    spec = model.spec(node)
    found = emitter_for(spec, node)
    try:
        emitted = found.emit(spec, model.graph.nodes[node]["in_type"])
    except ExportError as error:
        raise ExportError(f"node {node!r}: {error}") from None
    if not isinstance(emitted, Emitted):
        raise ExportError(
            f"node {node!r}: the emitter of {spec.kind} returned {type(emitted).__name__}; it must "
            "return pytorch.Emitted(constructor, ...)"
        )
    if (
        emitted.helper is not None
        and emitted.helper_source is None
        and emitted.helper not in classes
    ):
        raise ExportError(
            f"node {node!r}: the emitter of {spec.kind} asks for the helper class "
            f"{emitted.helper!r}, which torch_helpers.py does not define (it has "
            f"{', '.join(sorted(classes))}); pass the source of your own class as "
            "pytorch.helper(name, ..., source=...)"
        )
    return emitted


def _add_helper(
    helpers: dict[str, str], node: str, emitted: Emitted, classes: dict[str, str], names: Names
) -> None:
    """Record the class ``emitted`` needs; a class of the user's own is checked first."""
    name = emitted.helper
    assert name is not None
    source = classes[name] if emitted.helper_source is None else emitted.helper_source
    if emitted.helper_source is not None:
        _check_user_helper(node, name, source, names)
    if helpers.get(name, source) != source:
        raise ExportError(
            f"node {node!r}: two different classes are both called {name!r} in one export; "
            "give one of them another name"
        )
    helpers[name] = source


def _check_user_helper(node: str, name: str, source: str, names: Names) -> None:
    where = f"node {node!r}: the helper class {name!r}"
    taken = {
        names.class_name,
        *names.signature(),
        *names.attribute.values(),
        *names.variable.values(),
    }
    if not is_identifier(name) or shadows_file_name(name) or name in taken:
        raise ExportError(
            f"{where} must be an identifier that no import, built-in helper, constant, builtin "
            "or node of the generated file uses; rename the class"
        )
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ExportError(f"{where}: its source does not parse: {err}") from None
    defined = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    if defined != [name] or len(tree.body) != 1:
        raise ExportError(
            f"{where}: its source must be exactly one top-level class {name}(nn.Module), got "
            f"{len(tree.body)} statement(s) defining {defined}"
        )


def _argument_list(model: SpecChain, names: Names, node: str, splat: bool) -> list[str]:
    """The positional arguments of a node's call: each item of a tuple input when ``splat``
    (``x, (h0, c0)``), else the input as one value."""
    if splat:
        return _argument_items(model, names, node)
    return [_input_expression(model, names, node)]


def _lengths_arguments(received: lengths.Carried) -> list[str]:
    """The lengths a helper takes after its input: one per item of a tuple input (``None`` for
    an item without lengths), or the one of a tensor input."""
    if isinstance(received, tuple):
        return [(lengths.carried_names(item) or ["None"])[0] for item in received]
    return lengths.carried_names(received)


def _argument_items(model: SpecChain, names: Names, node: str) -> list[str]:
    """Each positional argument of a splatted call on its own (``x``, ``(h0, c0)``)."""
    edges = g.in_edges(model.graph, node)
    if len(edges) == 1 and edges[0][1] is None:
        expression = _value(names, edges[0][0], edges[0][2])
        in_type = model.graph.nodes[node]["in_type"]
        if isinstance(in_type, TupleType):
            return [f"{expression}[{i}]" for i in range(len(in_type.items))]
        return [expression]
    return [_value(names, src, index) for src, _, index in edges]


def _input_expression(model: SpecChain, names: Names, node: str) -> str:
    edges = g.in_edges(model.graph, node)
    if len(edges) == 1 and edges[0][1] is None:
        return _value(names, edges[0][0], edges[0][2])
    return _tuple([_value(names, src, index) for src, _, index in edges])


def _tuple(items: list[str]) -> str:
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _value(names: Names, src: str, index: g.Index) -> str:
    if src == INPUT:
        if len(names.arguments) > 1:
            if not index:
                return "(" + ", ".join(names.arguments) + ")"
            base, index = names.arguments[index[0]], index[1:]
        else:
            base = names.arguments[0]
    else:
        base = names.variable[src]
    return base + "".join(f"[{i!r}]" for i in index)
