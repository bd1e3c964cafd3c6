"""``save`` / ``load``: a chain as one ``.npz`` file, never a pickle.

The file holds ``__specchain__`` (the architecture as JSON text: node kinds, hyper-parameters,
edges, input type) and one array per parameter under its ``state_dict`` name. ``load`` reads with
``allow_pickle=False`` and validates everything; any problem raises ``ModelFileError`` naming the
file and the key.
"""

from __future__ import annotations

import json
import sys
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from specchain.chain import SpecChain
from specchain.graph import INPUT, OUTPUT
from specchain.params import FLOAT_DTYPES
from specchain.spec import NNModuleSpec, check_node_name, kind_key, known_kinds, lookup_kind
from specchain.types import ANY, AnyType, SpecError, TensorType, TupleType, Type

ARCHITECTURE_KEY = "__specchain__"
FORMAT_VERSION = 1
# what malformed architecture JSON raises while it is rebuilt (a cycle: NetworkXUnfeasible)
_MALFORMED = (SpecError, ValueError, TypeError, KeyError, AttributeError, nx.NetworkXException)


class ModelFileError(SpecError):
    """A model file cannot be read: truncated, corrupted, pickled, or not a specchain model."""


class UnknownKindError(ModelFileError):
    """A model file names a spec kind that no imported class and no ``custom`` class provides.

    ``kind`` is the stored kind (``"mylayers.LayerNorm"``); ``module`` the module it was saved
    from (``"mylayers"``, ``"__main__"`` for a script), or None for an unknown short name.
    """

    def __init__(self, message: str, kind: str, module: str | None) -> None:
        super().__init__(message)
        self.kind = kind
        self.module = module


# --- writing ---------------------------------------------------------------------------------


def save(chain: SpecChain, path: str | Path) -> None:
    """Write ``chain`` to ``path`` (``.npz``): architecture JSON plus the parameter arrays."""
    ids: dict[int, int] = {}
    nodes = [{"name": node, **_spec_json(chain.spec(node), ids)} for node in chain.nodes]
    edges = [[u, v, d["port"], list(d["index"])] for u, v, d in chain.graph.edges(data=True)]
    architecture = {
        "format": "specchain",
        "version": FORMAT_VERSION,
        "in_type": type_json(chain.in_type),
        "nodes": nodes,
        "edges": edges,
    }
    arrays = {ARCHITECTURE_KEY: np.array(json.dumps(architecture))}
    for name, value in chain.state_dict().items():
        if name == ARCHITECTURE_KEY:
            raise SpecError(f"parameter name {name!r} is reserved")
        arrays[name] = value
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]


def _spec_json(spec: NNModuleSpec, ids: dict[int, int]) -> dict[str, Any]:
    first = id(spec) not in ids
    ids.setdefault(id(spec), len(ids))
    out: dict[str, Any] = {
        "spec_id": ids[id(spec)],
        "kind": kind_key(type(spec)),
        "spec_name": spec.name,
    }
    if first:
        out["config"] = {k: _config_json(v, ids) for k, v in spec.config().items()}
    return out


def _config_json(value: Any, ids: dict[int, int]) -> Any:
    if isinstance(value, NNModuleSpec):
        return {"__spec__": _spec_json(value, ids)}
    if isinstance(value, (tuple, list)):
        return [_config_json(v, ids) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise SpecError(f"cannot save a hyper-parameter of type {type(value).__name__}: {value!r}")


def type_json(t: Type) -> Any:
    if isinstance(t, AnyType):
        return "any"
    if isinstance(t, TupleType):
        return {"tuple": [type_json(i) for i in t.items], "names": t.names}
    return {"dims": list(t.dims), "dtype": t.dtype}


def type_from_json(data: Any) -> Type:
    if data == "any":
        return ANY
    if "tuple" in data:
        names = tuple(data["names"]) if data.get("names") is not None else None
        return TupleType((type_from_json(i) for i in data["tuple"]), names)
    return TensorType(tuple(data["dims"]), data["dtype"])


# --- reading ---------------------------------------------------------------------------------


def load(path: str | Path, custom: Iterable[type[NNModuleSpec]] = ()) -> SpecChain:
    """Read a chain written by ``save``. Raises ``ModelFileError`` naming the file and key.

    A file names each layer's kind by module and class, ``mylayers.LayerNorm``. A kind is found,
    in this order, among the classes of ``custom``, then among every spec class imported so far
    (every built-in is). A class in ``custom`` serves the kind that equals its own qualified name,
    and also a kind saved from a script, ``__main__.LayerNorm``, whose class name (``__qualname__``)
    is its own: a layer a script defined and saved loads elsewhere from the module it now lives in,
    with ``custom=[LayerNorm]``. Built-in kinds are never matched by class name, so a user class
    called ``Linear`` does not replace ``specchain.modules.Linear``.

    So a model with layers from ``mylayers`` loads after ``import mylayers``, or with
    ``custom=[LayerNorm, ...]``; otherwise ``UnknownKindError`` (a ``ModelFileError``) names the
    kind and the module to import. An entry of ``custom`` that is not a layer class (an
    ``NNModuleSpec`` subclass with a ``forward``) raises ``TypeError`` naming the entry.
    """
    kinds = _Kinds(custom)
    where = str(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.files)
            if ARCHITECTURE_KEY not in keys:
                raise ModelFileError(
                    f"{where}: key {ARCHITECTURE_KEY!r} is missing: not a specchain model file"
                )
            arrays = {key: _read(data, key, where) for key in keys}
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise ModelFileError(f"{where}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ModelFileError(f"{where}: not a readable .npz file ({err})") from None
    try:
        architecture = json.loads(str(arrays.pop(ARCHITECTURE_KEY)))
        chain = _build(architecture, kinds)
    except UnknownKindError as err:
        raise UnknownKindError(
            f"{where}: key {ARCHITECTURE_KEY!r}: {err}", err.kind, err.module
        ) from None
    except ModelFileError as err:
        raise ModelFileError(f"{where}: key {ARCHITECTURE_KEY!r}: {err}") from None
    except _MALFORMED as err:
        raise ModelFileError(
            f"{where}: key {ARCHITECTURE_KEY!r}: invalid architecture ({err!r})"
        ) from None
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) == 1 and next(iter(dtypes)) in FLOAT_DTYPES:  # else load_state_dict names it
        chain.to(dtypes.pop())
    try:
        chain.load_state_dict(arrays)
    except SpecError as err:
        raise ModelFileError(f"{where}: {err}") from None
    return chain


def _read(data: Any, key: str, where: str) -> np.ndarray:
    try:
        value = data[key]
    except ValueError as err:  # object arrays need pickle: refused before anything is unpickled
        raise ModelFileError(f"{where}: key {key!r}: refused ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ModelFileError(f"{where}: key {key!r}: corrupted ({err})") from None
    if not isinstance(value, np.ndarray) or value.dtype.kind == "O":
        raise ModelFileError(f"{where}: key {key!r}: not a plain numeric array")
    return value


def _build(architecture: dict[str, Any], kinds: _Kinds) -> SpecChain:
    if not isinstance(architecture, dict):
        raise ModelFileError(f"expected a JSON object, got {type(architecture).__name__}")
    if architecture.get("format") != "specchain" or architecture.get("version") != FORMAT_VERSION:
        raise ModelFileError(
            f"format {architecture.get('format')!r} version {architecture.get('version')!r} "
            f"is not specchain version {FORMAT_VERSION}"
        )
    specs: dict[int, NNModuleSpec] = {}
    graph = nx.MultiDiGraph()
    graph.add_node(INPUT)
    graph.add_node(OUTPUT)
    for node in architecture["nodes"]:
        if not isinstance(node["name"], str) or node["name"] in graph:
            raise ModelFileError(f"node name {node['name']!r} is reserved, repeated or no string")
        try:
            check_node_name(node["name"])
        except SpecError as err:
            raise ModelFileError(str(err)) from None
        graph.add_node(node["name"], spec=_spec_from_json(node, specs, kinds))
    for u, v, port, index in architecture["edges"]:
        for end in (u, v):
            if end not in graph:
                raise ModelFileError(f"edge {u!r} -> {v!r} names an unknown node {end!r}")
        graph.add_edge(u, v, port=port, index=tuple(index))
    chain = SpecChain(graph, type_from_json(architecture["in_type"]))
    chain.lint()
    return chain


def _spec_from_json(
    data: dict[str, Any], specs: dict[int, NNModuleSpec], kinds: _Kinds
) -> NNModuleSpec:
    spec_id = data["spec_id"]
    if spec_id in specs:
        return specs[spec_id]
    cls = kinds.resolve(data["kind"])
    config = {k: _config_from_json(v, specs, kinds) for k, v in data["config"].items()}
    specs[spec_id] = spec = cls(**config, name=data["spec_name"], rng=0)
    return spec


def _config_from_json(value: Any, specs: dict[int, NNModuleSpec], kinds: _Kinds) -> Any:
    if isinstance(value, dict) and "__spec__" in value:
        return _spec_from_json(value["__spec__"], specs, kinds)
    if isinstance(value, list):
        return tuple(_config_from_json(v, specs, kinds) for v in value)
    return value


# --- kinds: the classes a file's kinds name ----------------------------------------------------

_SCRIPT = "__main__."  # the kind prefix of a class defined in the script that saved the file
_KINDS_SHOWN = 24  # how many known kinds an error lists


class _Kinds:
    """``load``'s lookup of a stored kind: ``custom`` classes first, then the registry."""

    def __init__(self, custom: Iterable[type[NNModuleSpec]]) -> None:
        if isinstance(custom, (str, type)) or not isinstance(custom, Iterable):
            raise TypeError(
                "custom must be a list of layer classes, such as custom=[LayerNorm], "
                f"got {custom!r}"
            )
        self.exact: dict[str, type[NNModuleSpec]] = {}
        self.by_name: dict[str, list[type[NNModuleSpec]]] = {}
        for i, entry in enumerate(custom):
            _check_custom(entry, i)
            self.exact[kind_key(entry)] = entry
            same_name = self.by_name.setdefault(entry.__qualname__, [])
            if entry not in same_name:
                same_name.append(entry)

    def resolve(self, kind: object) -> type[NNModuleSpec]:
        if not isinstance(kind, str):
            raise ModelFileError(f"spec kind {kind!r} is not a string")
        if kind in self.exact:
            return self.exact[kind]
        if kind.startswith(_SCRIPT):
            candidates = self.by_name.get(kind[len(_SCRIPT) :], [])
            if len(candidates) > 1:
                raise ModelFileError(
                    f"spec kind {kind!r} matches {len(candidates)} classes of custom by name: "
                    f"{', '.join(kind_key(c) for c in candidates)}; pass only one of them"
                )
            if candidates:
                return candidates[0]
        cls = lookup_kind(kind)
        if cls is None:
            raise _unknown_kind(kind)
        return cls


def _check_custom(entry: object, i: int) -> None:
    where = f"custom[{i}]"
    if isinstance(entry, NNModuleSpec):
        raise TypeError(
            f"{where} must be a layer class, got an instance of {type(entry).__qualname__}; "
            f"pass the class itself: custom=[{type(entry).__qualname__}]"
        )
    if not isinstance(entry, type) or not issubclass(entry, NNModuleSpec):
        what = f"the class {entry.__qualname__}" if isinstance(entry, type) else repr(entry)
        raise TypeError(
            f"{where} must be a layer class (a subclass of specchain.NNModuleSpec), got {what}"
        )
    if entry.forward is NNModuleSpec.forward:
        raise TypeError(
            f"{where} is {kind_key(entry)}, a base class without forward (not a kind a model "
            "file can hold); pass the layer classes derived from it"
        )


def _unknown_kind(kind: str) -> UnknownKindError:
    if "." not in kind:  # only built-ins were ever saved under a short name
        return UnknownKindError(
            f"unknown spec kind {kind!r}: no built-in layer has this name; known kinds: "
            f"{_some_kinds()}",
            kind,
            None,
        )
    if kind.startswith(_SCRIPT):
        name = kind[len(_SCRIPT) :]
        return UnknownKindError(
            f"unknown spec kind {kind!r}: the class {name} was defined in the script that saved "
            f"the file (module __main__), so no import finds it; pass the class, from the module "
            f"that defines it now: sc.load(path, custom=[{name}])",
            kind,
            "__main__",
        )
    module, _, name = kind.rpartition(".")
    if module in sys.modules:
        return UnknownKindError(
            f"unknown spec kind {kind!r}: module {module!r} is imported but has no spec class "
            f"{name!r} (renamed, moved or removed?); pass the class that replaces it: "
            "sc.load(path, custom=[...])",
            kind,
            module,
        )
    return UnknownKindError(
        f"unknown spec kind {kind!r}: it was saved from module {module!r}, which is not "
        f"imported; import {module} first, or pass sc.load(path, custom=[{name}])",
        kind,
        module,
    )


def _some_kinds() -> str:
    kinds = known_kinds()
    shown = ", ".join(repr(k) for k in kinds[:_KINDS_SHOWN])
    more = len(kinds) - _KINDS_SHOWN
    return f"{shown} (and {more} more)" if more > 0 else shown
