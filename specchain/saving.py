"""``save`` / ``load``: a chain as one ``.npz`` file, never a pickle.

The file holds ``__specchain__`` (the architecture as JSON text: node kinds, hyper-parameters,
edges, input type) and one array per parameter under its ``state_dict`` name. ``load`` reads with
``allow_pickle=False`` and validates everything; any problem raises ``ModelFileError`` naming the
file and the key.
"""

from __future__ import annotations

import json
import zipfile
import zlib
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


def load(path: str | Path) -> SpecChain:
    """Read a chain written by ``save``. Raises ``ModelFileError`` naming the file and key."""
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
        chain = _build(architecture)
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


def _build(architecture: dict[str, Any]) -> SpecChain:
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
        graph.add_node(node["name"], spec=_spec_from_json(node, specs))
    for u, v, port, index in architecture["edges"]:
        for end in (u, v):
            if end not in graph:
                raise ModelFileError(f"edge {u!r} -> {v!r} names an unknown node {end!r}")
        graph.add_edge(u, v, port=port, index=tuple(index))
    chain = SpecChain(graph, type_from_json(architecture["in_type"]))
    chain.lint()
    return chain


def _spec_from_json(data: dict[str, Any], specs: dict[int, NNModuleSpec]) -> NNModuleSpec:
    spec_id = data["spec_id"]
    if spec_id in specs:
        return specs[spec_id]
    kind = data["kind"]
    cls = lookup_kind(kind) if isinstance(kind, str) else None
    if cls is None:
        module = kind.rpartition(".")[0] if isinstance(kind, str) else ""
        hint = f"; import {module} first" if module else ""
        raise ModelFileError(f"unknown spec kind {kind!r}{hint}; known kinds: {known_kinds()}")
    config = {k: _config_from_json(v, specs) for k, v in data["config"].items()}
    specs[spec_id] = spec = cls(**config, name=data["spec_name"], rng=0)
    return spec


def _config_from_json(value: Any, specs: dict[int, NNModuleSpec]) -> Any:
    if isinstance(value, dict) and "__spec__" in value:
        return _spec_from_json(value["__spec__"], specs)
    if isinstance(value, list):
        return tuple(_config_from_json(v, specs) for v in value)
    return value
