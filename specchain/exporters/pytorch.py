"""PyTorch export: idiomatic source + weights + proof of equivalence, and import back.

- ``to_source(model, class_name)`` writes one ``nn.Module`` class: ``__init__`` creates one
  attribute per node (a spec used at several nodes is one shared module), ``forward`` is
  straight-line code in graph order, one line per node. Native modules where they exist
  (``nn.LSTM``, ``nn.LSTMCell``, ``nn.Linear``, ``nn.Embedding``, ``nn.Dropout``, activations);
  small helper classes copied from ``torch_helpers`` for the rest. Every identifier comes from one
  ``Namespace``; every constant is written with ``repr``; user text appears only inside ``repr``'d
  string literals, never in comments or code.
- ``export(model, out_dir)`` writes ``model.py``, ``weights.npz`` (no pickle), ``reference.npz``
  (inputs and outputs recorded now) and ``test_model.py`` (a pytest file that checks them).
- ``verify(model, inputs)`` runs the spec and the generated module side by side and reports the
  largest differences of outputs, input gradients and every parameter gradient.
- ``load_torch_state(model, state_dict_or_module)`` fills a spec from PyTorch weights.
"""

from __future__ import annotations

import ast
import builtins
import json
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from specchain import graph as g
from specchain.chain import SpecChain
from specchain.examples import example_input
from specchain.exporters.namespace import FILE_NAMES, Namespace, is_identifier
from specchain.graph import INPUT, OUTPUT
from specchain.spec import NNModuleSpec
from specchain.state import StateDictError
from specchain.types import SpecError, TupleType, Type

HELPER_CLASSES = (
    "Reverse",
    "LastStep",
    "Concat",
    "Add",
    "Select",
    "Pack",
    "ScaledDropout",
    "MaskedDropout",
    "OneHot",
    "AttentionLSTM",
)
FILE_CONSTANTS = ("WEIGHTS", "NODE_NAMES", "INPUT_TYPE", "OUTPUT_TYPE", "load")


class ExportError(SpecError):
    """A model cannot be exported: a spec without a PyTorch emitter, or a bad class name."""


# --- emitters: one per spec kind ------------------------------------------------------------


@attrs.frozen
class Emitted:
    """How one node appears in the generated module.

    ``constructor`` builds the attribute; ``splat`` passes a tuple input as separate arguments
    (``lstm(x, (h0, c0))``); ``suffix`` post-processes the call (``[0]``: output without state).
    """

    constructor: str
    helper: str | None = None
    splat: bool = False
    suffix: str = ""


def _call(name: str, *args: Any, **kwargs: Any) -> str:
    """``name(arg, key=value)`` with every constant written by ``repr``."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def _non_default(spec: NNModuleSpec, **defaults: Any) -> dict[str, Any]:
    return {k: getattr(spec, k) for k, d in defaults.items() if getattr(spec, k) != d}


def _helper(name: str, *args: Any) -> Emitted:
    return Emitted(_call(name, *args), helper=name)


def _lstm(spec: Any, in_type: Type) -> Emitted:
    options = _non_default(
        spec,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
    )
    constructor = _call("nn.LSTM", spec.input_size, spec.hidden_size, **options)
    return Emitted(constructor, splat=True, suffix="" if spec.return_state else "[0]")


def _dropout(spec: Any, in_type: Type) -> Emitted:
    if isinstance(in_type, TupleType):
        return _helper("MaskedDropout", spec.p)
    return Emitted(_call("nn.Dropout", spec.p))


def _time_distributed(spec: Any, in_type: Type) -> Emitted:
    inner = spec.spec
    if inner.kind not in POINTWISE:
        raise ExportError(
            f"TimeDistributed({inner.kind}) has no PyTorch emitter: only layers that act on the "
            f"last axis ({', '.join(sorted(POINTWISE))}) map over time natively"
        )
    return EMITTERS[inner.kind](inner, in_type)


EMITTERS: dict[str, Callable[[Any, Type], Emitted]] = {
    "Linear": lambda s, t: Emitted(
        _call("nn.Linear", s.in_features, s.out_features, **_non_default(s, bias=True))
    ),
    "Tanh": lambda s, t: Emitted("nn.Tanh()"),
    "Sigmoid": lambda s, t: Emitted("nn.Sigmoid()"),
    "ReLU": lambda s, t: Emitted("nn.ReLU()"),
    "Identity": lambda s, t: Emitted("nn.Identity()"),
    "Reverse": lambda s, t: _helper("Reverse", s.axis),
    "LastStep": lambda s, t: _helper("LastStep", s.axis),
    "Concat": lambda s, t: _helper("Concat", s.axis),
    "Add": lambda s, t: _helper("Add"),
    "Select": lambda s, t: _helper("Select", s.index),
    "Pack": lambda s, t: _helper("Pack"),
    "TimeDistributed": _time_distributed,
    "LSTM": _lstm,
    "LSTMCell": lambda s, t: Emitted(
        _call("nn.LSTMCell", s.input_size, s.hidden_size, **_non_default(s, bias=True)),
        splat=True,
    ),
    "Embedding": lambda s, t: Emitted(
        _call(
            "nn.Embedding", s.num_embeddings, s.embedding_dim, **_non_default(s, padding_idx=None)
        )
    ),
    "OneHot": lambda s, t: _helper("OneHot", s.num_classes),
    "Dropout": _dropout,
    "ScaledDropout": lambda s, t: _helper("ScaledDropout", s.p),
    "AttentionLSTM": lambda s, t: _helper(
        "AttentionLSTM", s.input_size, s.hidden_size, s.output_size
    ),
}
POINTWISE = frozenset({"Linear", "Tanh", "Sigmoid", "ReLU", "Identity", "ScaledDropout"})


def _sibling(name: str) -> str:
    """The text of a file next to this one, read without importing it (no torch needed)."""
    return (Path(__file__).parent / name).read_text(encoding="utf-8")


def helper_classes() -> dict[str, str]:
    """Source of each class in ``torch_helpers.py``, by name, read as text: exporting works
    without torch installed."""
    text = _sibling("torch_helpers.py")
    return {
        node.name: ast.get_source_segment(text, node) or ""
        for node in ast.parse(text).body
        if isinstance(node, ast.ClassDef)
    }


# --- naming ----------------------------------------------------------------------------------


@attrs.frozen
class Names:
    """Every identifier of one generated file: the class, the forward's arguments, and per node
    its module attribute (shared specs share one) and its output variable."""

    class_name: str
    arguments: tuple[str, ...]
    attribute: dict[str, str]
    variable: dict[str, str]

    def state_key(self, chain: SpecChain, our_key: str) -> str:
        """Our ``node.param`` -> the exported module's ``attribute.param``."""
        node, local = chain.parameter_owners()[our_key]
        return f"{self.attribute[node]}.{local}"


def assign_names(chain: SpecChain, class_name: str = "Model") -> Names:
    """Deterministic identifiers for ``chain`` (the exporter and the importer share them)."""
    _check_class_name(class_name)
    names = Namespace(reserved={class_name, *HELPER_CLASSES, *FILE_CONSTANTS})
    arguments = _argument_names(chain.in_type, names)
    attribute: dict[str, str] = {}
    variable: dict[str, str] = {}
    owner: dict[int, str] = {}
    for node in chain.nodes:
        key = id(chain.spec(node).params)
        variable[node] = names.create(node)
        if key not in owner or not chain.spec(node).params:
            owner[key] = variable[node]
        attribute[node] = owner[key] if chain.spec(node).params else variable[node]
    return Names(class_name, arguments, attribute, variable)


def _check_class_name(class_name: str) -> None:
    if not isinstance(class_name, str) or not is_identifier(class_name):
        raise ExportError(
            f"class_name must be a Python identifier, got {class_name!r}; e.g. class_name='Seq2Seq'"
        )
    # Python compares identifiers in NFKC form: "ｎｐ" is ``np``, so check that form.
    shadowed = {*FILE_NAMES, *HELPER_CLASSES, *FILE_CONSTANTS, *dir(builtins)}
    normal = unicodedata.normalize("NFKC", class_name)
    if normal != class_name or normal in shadowed or normal.startswith("__"):
        raise ExportError(
            f"class_name {class_name!r} would shadow a name the generated file uses (its imports, "
            "helpers, constants or a builtin) or is not in NFKC form; e.g. class_name='Seq2Seq'"
        )


def _argument_names(in_type: Type, names: Namespace) -> tuple[str, ...]:
    if isinstance(in_type, TupleType):
        labels = in_type.names or tuple(f"x{i}" for i in range(len(in_type.items)))
        return tuple(names.create(label, fallback=f"x{i}") for i, label in enumerate(labels))
    return ("x",)


# --- source ----------------------------------------------------------------------------------


def to_source(model: SpecChain, class_name: str = "Model") -> str:
    """The text of a standalone ``model.py`` defining ``class_name`` and ``load(weights_path)``."""
    from specchain import __version__

    names = assign_names(model, class_name)
    init_lines: list[str] = []
    forward_lines: list[str] = []
    helpers: list[str] = []
    built: set[str] = set()
    for node in model.nodes:
        spec = model.spec(node)
        in_type = model.graph.nodes[node]["in_type"]
        emitter = EMITTERS.get(spec.kind)
        if emitter is None:
            raise ExportError(f"node {node!r}: no PyTorch emitter for {spec.kind}")
        emitted = emitter(spec, in_type)
        if emitted.helper and emitted.helper not in helpers:
            helpers.append(emitted.helper)
        attribute = names.attribute[node]
        if attribute not in built:
            built.add(attribute)
            init_lines.append(f"self.{attribute} = {emitted.constructor}")
        call = f"self.{attribute}({_arguments(model, names, node, emitted.splat)}){emitted.suffix}"
        forward_lines.append(f"{names.variable[node]} = {call}")
    forward_lines.append(f"return {_input_expression(model, names, OUTPUT)}")
    node_names = {names.variable[n]: n for n in model.nodes}
    classes = helper_classes()
    helper_source = "\n\n".join(classes[h] for h in helpers)
    signature = ", ".join(("self", *names.arguments))
    header = [
        f'"""PyTorch module generated by specchain {__version__}; regenerate rather than edit.',
        "",
        "Weights load by exact state_dict names with strict=True; see load().",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from pathlib import Path",
        "",
        "import numpy as np",
        "import torch",
        *(["import torch.nn.functional as F"] if "F." in helper_source else []),
        "from torch import nn",
        "",
        f"INPUT_TYPE = {str(model.in_type)!r}",
        f"OUTPUT_TYPE = {str(model.out_type)!r}",
        f"NODE_NAMES = {node_names!r}  # variable -> node name in the specchain graph",
        'WEIGHTS = Path(__file__).with_name("weights.npz")',
    ]
    body = [
        f"class {class_name}(nn.Module):",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *(f"        {line}" for line in init_lines),
        "",
        f"    def forward({signature}):",
        *(f"        {line}" for line in forward_lines),
    ]
    loader = [
        f"def load(weights_path: str | Path = WEIGHTS) -> {class_name}:",
        '    """The module with its weights (strict), in eval mode, in the weights\' dtype."""',
        "    with np.load(weights_path, allow_pickle=False) as data:",
        "        state = {key: torch.from_numpy(data[key]) for key in data.files}",
        f"    model = {class_name}()",
        "    dtypes = {tensor.dtype for tensor in state.values()}",
        "    if len(dtypes) == 1:",
        "        model.to(dtypes.pop())",
        "    model.load_state_dict(state, strict=True)",
        "    return model.eval()",
    ]
    sections = ["\n".join(header)]
    if helper_source:
        sections.append(helper_source.rstrip())
    sections += ["\n".join(body), "\n".join(loader)]
    return "\n\n\n".join(sections) + "\n"


def _arguments(model: SpecChain, names: Names, node: str, splat: bool) -> str:
    edges = g.in_edges(model.graph, node)
    if len(edges) == 1 and edges[0][1] is None:
        expression = _value(names, *edges[0][0:1], edges[0][2])
        is_tuple = isinstance(model.graph.nodes[node]["in_type"], TupleType)
        return f"*{expression}" if splat and is_tuple else expression
    items = [_value(names, src, index) for src, _, index in edges]
    return ", ".join(items) if splat else _tuple(items)


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


# --- export ----------------------------------------------------------------------------------


def torch_state(model: SpecChain, names: Names) -> dict[str, np.ndarray]:
    """Our parameters under the exported module's state_dict keys."""
    return {names.state_key(model, key): value for key, value in model.state_dict().items()}


def export(
    model: SpecChain,
    out_dir: str | Path,
    class_name: str = "Model",
    example: Any = None,
) -> Path:
    """Write ``model.py``, ``weights.npz``, ``reference.npz`` and ``test_model.py`` into
    ``out_dir``; returns the path of ``model.py``. ``example`` is the reference input (default:
    a seeded random input of the model's type)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = assign_names(model, class_name)
    source = to_source(model, class_name)
    (out / "model.py").write_text(source, encoding="utf-8")  # Python source's encoding
    with open(out / "weights.npz", "wb") as handle:
        np.savez(handle, **torch_state(model, names))  # type: ignore[arg-type]
    inputs = example if example is not None else example_input(model, rng=0)
    outputs = model(inputs)
    arguments = inputs if len(names.arguments) > 1 else (inputs,)
    reference = _flatten_named("input", arguments) | _flatten_named("output", (outputs,))
    reference["structure"] = np.array(
        json.dumps({"inputs": _structure(arguments), "outputs": _structure((outputs,))})
    )
    with open(out / "reference.npz", "wb") as handle:
        np.savez(handle, **reference)  # type: ignore[arg-type]
    (out / "test_model.py").write_text(_sibling("reference_check.py"), encoding="utf-8")
    return out / "model.py"


def _flatten_named(prefix: str, value: Any) -> dict[str, np.ndarray]:
    leaves = _leaves(value)
    return {f"{prefix}_{i}": leaf for i, leaf in enumerate(leaves)}


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _structure(value: Any, counter: list[int] | None = None) -> Any:
    """Nested lists of leaf numbers, to rebuild tuples from the flat reference file."""
    counter = [0] if counter is None else counter
    if isinstance(value, (tuple, list)):
        return [_structure(item, counter) for item in value]
    counter[0] += 1
    return counter[0] - 1


# --- verify and import -------------------------------------------------------------------


@attrs.frozen
class VerifyReport:
    """Largest absolute and relative differences per compared tensor (spec vs torch)."""

    diffs: dict[str, tuple[float, float]]
    loss: tuple[float, float] | None = None

    @property
    def max_abs(self) -> float:
        return max((a for a, _ in self.diffs.values()), default=0.0)

    def ok(self, rtol: float, atol: float) -> bool:
        """Every tensor within ``atol + rtol * |reference|`` elementwise (checked at build)."""
        return all(a <= atol or r <= rtol for a, r in self.diffs.values())

    def __str__(self) -> str:
        width = max((len(k) for k in self.diffs), default=4)
        rows = [
            f"{k:<{width}}  max|diff| {a:.3e}  max rel {r:.3e}" for k, (a, r) in self.diffs.items()
        ]
        return "specchain vs exported torch module:\n  " + "\n  ".join(rows)


def load_module_class(source: str, class_name: str) -> Any:
    """Execute generated source in a fresh module namespace and return the class."""
    import types

    module = types.ModuleType("specchain_exported")
    module.__dict__["__file__"] = "<specchain export>"
    exec(compile(source, "<specchain export>", "exec"), module.__dict__)
    return getattr(module, class_name)


def build_torch_module(model: SpecChain, class_name: str = "Model") -> Any:
    """The generated module class, instantiated, in the model's dtype, with its weights."""
    import torch

    names = assign_names(model, class_name)
    module = load_module_class(to_source(model, class_name), class_name)()
    if model.dtype is not None:
        module.to(getattr(torch, str(model.dtype)))
    state = {k: torch.from_numpy(v) for k, v in torch_state(model, names).items()}
    module.load_state_dict(state, strict=True)
    return module


def verify(
    model: SpecChain,
    inputs: Any = None,
    targets: Any = None,
    loss: Any = None,
    train: bool = False,
    class_name: str = "Model",
) -> VerifyReport:
    """Run the spec and its exported module on the same inputs (and cotangent) and compare
    outputs, the input gradients and every parameter gradient (by state_dict name).

    Training mode is only comparable without random masks (dropout p = 0)."""
    import torch

    names = assign_names(model, class_name)
    module = build_torch_module(model, class_name)
    module.train(train)
    inputs = inputs if inputs is not None else example_input(model, rng=0)
    y, tape = model.forward(inputs, train=train, rng=0)
    if loss is not None:
        value, dy = loss.value_and_grad(y, targets)
    else:
        value, dy = None, _cotangent_like(y, np.random.default_rng(7))
    dx, grads = model.backward(tape, dy)

    leaves = [torch.from_numpy(np.array(a)) for a in _leaves(inputs)]
    for leaf in leaves:
        if leaf.is_floating_point():
            leaf.requires_grad_(True)
    rebuilt = _rebuild(inputs, iter(leaves))
    arguments = rebuilt if len(names.arguments) > 1 else (rebuilt,)
    out = module(*arguments)
    out_leaves = _leaves(out)
    dy_leaves = _leaves(dy)
    if len(out_leaves) != len(_leaves(y)):
        raise ExportError(
            f"the exported module returns {len(out_leaves)} arrays, the spec "
            f"{len(_leaves(y))}: {_structure((out,))} != {_structure((y,))}"
        )
    diffs: dict[str, tuple[float, float]] = {}
    for i, (ours, theirs) in enumerate(zip(_leaves(y), out_leaves)):
        diffs[f"output[{i}]"] = _diff(f"output[{i}]", ours, theirs.detach().numpy())
    pairs = [
        (o, torch.from_numpy(np.asarray(d))) for o, d in zip(out_leaves, dy_leaves) if d is not None
    ]
    torch.autograd.backward([o for o, _ in pairs], [d for _, d in pairs])
    for i, (ours, leaf) in enumerate(zip(_leaves(dx), leaves)):
        if ours is not None and leaf.is_floating_point():  # no gradient in torch: zero
            theirs = np.zeros_like(ours) if leaf.grad is None else leaf.grad.numpy()
            diffs[f"input_grad[{i}]"] = _diff(f"input_grad[{i}]", ours, theirs)
    torch_params = dict(module.named_parameters())
    for key, grad in grads.items():
        torch_key = names.state_key(model, key)
        theirs = torch_params[torch_key].grad
        reference = np.zeros_like(grad) if theirs is None else theirs.numpy()
        diffs[torch_key] = _diff(torch_key, grad, reference)
    loss_pair = None
    if loss is not None and value is not None:
        torch_value = float(
            loss(_rebuild(y, iter(o.detach().numpy() for o in out_leaves)), targets)
        )
        loss_pair = (float(value), torch_value)
    return VerifyReport(diffs, loss_pair)


def _diff(key: str, ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    if ours.shape != theirs.shape:  # never broadcast one onto the other
        raise ExportError(
            f"{key}: specchain has shape {list(ours.shape)}, the exported module "
            f"{list(theirs.shape)}"
        )
    if ours.size == 0:
        return 0.0, 0.0
    delta = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    scale = np.abs(theirs.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(delta == 0, 0.0, delta / scale)
    return float(delta.max()), float(np.nanmax(rel))


def _cotangent_like(value: Any, rng: np.random.Generator) -> Any:
    if isinstance(value, tuple):
        return tuple(_cotangent_like(v, rng) for v in value)
    return rng.standard_normal(value.shape).astype(value.dtype)


def _rebuild(template: Any, leaves: Any) -> Any:
    if isinstance(template, (tuple, list)):
        return tuple(_rebuild(item, leaves) for item in template)
    return next(leaves)


def load_torch_state(model: SpecChain, state: Any, class_name: str = "Model") -> None:
    """Fill ``model`` from a torch module or state_dict with the exported module's key names
    (strict: missing, unexpected and mis-shaped entries are all reported at once)."""
    if hasattr(state, "state_dict") and callable(state.state_dict):
        state = state.state_dict()
    if not isinstance(state, Mapping):
        raise TypeError(
            f"expected a torch module or a state_dict mapping, got {type(state).__name__}"
        )
    names = assign_names(model, class_name)
    current = model.named_parameters()
    ours = {names.state_key(model, key): key for key in current}
    missing = [k for k in ours if k not in state]
    unexpected = [k for k in state if k not in ours]
    problems: list[str] = []
    if missing or unexpected:
        problems.append(f"missing keys: {missing}; unexpected keys: {unexpected}")
    arrays: dict[str, np.ndarray] = {}
    for key, our_key in ours.items():  # named by the torch keys, which the caller knows
        if key in state:
            value, expected = _as_numpy(state[key]), current[our_key]
            if value.shape != expected.shape:
                problems.append(f"{key}: shape {list(value.shape)} != {list(expected.shape)}")
            elif value.dtype != expected.dtype:
                problems.append(f"{key}: dtype {value.dtype} != the model's {expected.dtype}")
            arrays[our_key] = value
    if problems:
        raise StateDictError("load_torch_state: " + "\n  ".join(problems))
    model.load_state_dict(arrays, strict=True)


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return np.asarray(value.detach().cpu().numpy())
    return np.asarray(value)
