"""Every identifier of a generated file: the class name (checked), the ``forward`` arguments and,
per node, its module attribute and output variable, all from one ``Namespace``."""

from __future__ import annotations

import builtins
import unicodedata

import attrs
import numpy as np

from specchain.chain import SpecChain
from specchain.exporters.pytorch.emitters import HELPER_CLASSES, ExportError
from specchain.exporters.pytorch.namespace import FILE_NAMES, Namespace, is_identifier
from specchain.types import TupleType, Type

FILE_CONSTANTS = ("WEIGHTS", "NODE_NAMES", "INPUT_TYPE", "OUTPUT_TYPE", "load")


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


def _argument_names(in_type: Type, names: Namespace) -> tuple[str, ...]:
    if isinstance(in_type, TupleType):
        labels = in_type.names or tuple(f"x{i}" for i in range(len(in_type.items)))
        return tuple(names.create(label, fallback=f"x{i}") for i, label in enumerate(labels))
    return ("x",)
