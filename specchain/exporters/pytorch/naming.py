"""Every identifier of a generated file: the class name (checked), the ``forward`` arguments and,
per node, its module attribute and output variable, all from one ``Namespace``; and each
parameter's ``state_dict`` key in the export (after ``fusion``)."""

from __future__ import annotations

import builtins
import unicodedata

import attrs
import numpy as np

from specchain.chain import SpecChain
from specchain.exporters.pytorch import fusion
from specchain.exporters.pytorch.emitters import HELPER_CLASSES, ExportError
from specchain.exporters.pytorch.namespace import FILE_NAMES, Namespace, is_identifier
from specchain.inputs import Input, argument_inputs
from specchain.types import TupleType, Type

FILE_CONSTANTS = ("WEIGHTS", "NODE_NAMES", "INPUT_TYPE", "OUTPUT_TYPE", "load")


@attrs.frozen
class Names:
    """Every identifier of one generated file: the class, the forward's arguments, and per node
    of the fused chain (``fusion.fuse``) its module attribute (shared specs share one) and its
    output variable. ``keys``: the model's parameter names -> the export's state_dict keys.
    ``base``: the node whose module the class is (``fusion.base_node``), or None."""

    class_name: str
    arguments: tuple[str, ...]
    attribute: dict[str, str]
    variable: dict[str, str]
    lengths: dict[int, str] = attrs.field(factory=dict)  # argument index -> its lengths argument
    keys: dict[str, str] = attrs.field(factory=dict)
    base: str | None = None

    def signature(self) -> tuple[str, ...]:
        """``forward``'s arguments after ``self``: each input, its lengths right after it."""
        out: list[str] = []
        for i, argument in enumerate(self.arguments):
            out.append(argument)
            if i in self.lengths:
                out.append(self.lengths[i])
        return tuple(out)

    def state_key(self, chain: SpecChain, our_key: str) -> str:
        """Our ``node.param`` -> the exported module's ``attribute.param`` (``lstm2.weight_ih_l0``
        -> ``lstm.weight_ih_l1`` when fused; ``encoder.weight_ih_l0`` for the ``base`` node)."""
        if our_key not in self.keys:
            raise KeyError(f"{our_key!r} is not a parameter of the model these names are for")
        return self.keys[our_key]


def assign_names(chain: SpecChain, class_name: str = "Model") -> Names:
    """Deterministic identifiers for ``chain``, named after its fused form (``fusion.fuse``; the
    exporter and the importer share them)."""
    _check_class_name(class_name)
    fused = fusion.fuse(chain)
    chain = fused.chain
    names = Namespace(reserved={class_name, *HELPER_CLASSES, *FILE_CONSTANTS})
    bound = _bound_inputs(chain)
    arguments = _argument_names(chain.in_type, bound, names)
    lengths = {
        item: names.create(f"{arguments[item]}_lengths")
        for item, node in bound.items()
        if _input_spec(chain, node).lengths
    }
    attribute: dict[str, str] = {}
    variable: dict[str, str] = {}
    owner: dict[int, str] = {}
    argument_of = {node: arguments[item] for item, node in bound.items()}
    for node in chain.nodes:
        key = id(chain.spec(node).params)
        variable[node] = argument_of.get(node) or names.create(node)
        if key not in owner or not chain.spec(node).params:
            owner[key] = variable[node]
        attribute[node] = owner[key] if chain.spec(node).params else variable[node]
    base = fusion.base_node(chain)
    if base is not None:  # the class is that module: it calls its method, owns its parameters
        attribute[base] = fusion.BASE_METHOD
    keys: dict[str, str] = {}
    owners = chain.parameter_owners()
    for ours, theirs in fused.keys.items():
        node, local = owners[theirs]
        keys[ours] = local if node == base else f"{attribute[node]}.{local}"
    return Names(class_name, arguments, attribute, variable, lengths, keys, base)


def torch_state(model: SpecChain, names: Names) -> dict[str, np.ndarray]:
    """Our parameters under the exported module's state_dict keys."""
    return {names.state_key(model, key): value for key, value in model.state_dict().items()}


def _check_class_name(class_name: str) -> None:
    if not isinstance(class_name, str) or not is_identifier(class_name):
        raise ExportError(
            f"class_name must be a Python identifier, got {class_name!r}; e.g. class_name='Seq2Seq'"
        )
    if shadows_file_name(class_name):
        raise ExportError(
            f"class_name {class_name!r} would shadow a name the generated file uses (its imports, "
            "helpers, constants or a builtin) or is not in NFKC form; e.g. class_name='Seq2Seq'"
        )


def shadows_file_name(name: str) -> bool:
    """True if a class called ``name`` would shadow a name every generated file uses."""
    # Python compares identifiers in NFKC form: "ｎｐ" is ``np``, so check that form.
    shadowed = {*FILE_NAMES, *HELPER_CLASSES, *FILE_CONSTANTS, *dir(builtins)}
    normal = unicodedata.normalize("NFKC", name)
    return normal != name or normal in shadowed or normal.startswith("__")


def _bound_inputs(chain: SpecChain) -> dict[int, str]:
    """Argument index -> the ``Input`` node that is that argument (the first, if several take
    the same one): item ``i`` of a tuple input, or index 0 for a whole input."""
    bound: dict[int, str] = {}
    for node, item in argument_inputs(chain).items():
        if item is None and isinstance(chain.in_type, TupleType):
            continue  # an Input of the whole tuple: an argument of its own would not fit
        bound.setdefault(0 if item is None else item, node)
    return bound


def _input_spec(chain: SpecChain, node: str) -> Input:
    spec = chain.spec(node)
    assert isinstance(spec, Input)
    return spec


def _argument_names(in_type: Type, bound: dict[int, str], names: Namespace) -> tuple[str, ...]:
    """One identifier per argument: the ``Input``'s name, else the tuple type's item name, else
    ``x0, x1, ...`` (``x`` for a single input, as in every generated file)."""
    if isinstance(in_type, TupleType):
        labels = in_type.names or tuple(f"x{i}" for i in range(len(in_type.items)))
        labels = tuple(bound.get(i, label) for i, label in enumerate(labels))
    else:
        labels = (bound.get(0, "x"),)
    arguments: list[str] = []
    for i, label in enumerate(labels):  # "x" is reserved for an argument: the first one so named
        given = "x" not in arguments and label == "x"
        arguments.append("x" if given else names.create(label, fallback=f"x{i}"))
    return tuple(arguments)
