"""The architecture JSON of a model file: node kinds, hyper-parameters, edges, input type.

``architecture_json`` writes it; ``parse_architecture`` reads the text within size and nesting
limits (checked before ``json.loads`` recurses); ``build`` makes the chain, its specs built by
their own validators.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
import networkx as nx
import numpy as np

from specchain.chain import SpecChain
from specchain.graph import INPUT, OUTPUT
from specchain.params import ParamBudgetError
from specchain.saving.errors import ModelFileError, cut, echo
from specchain.saving.kinds import Kinds
from specchain.spec import NNModuleSpec, check_node_name, kind_key
from specchain.types import ANY, AnyType, SpecError, TensorType, TupleType, Type

FORMAT_VERSION = 1
MAX_ARCHITECTURE_BYTES = 8 * 2**20  # UTF-8 bytes of architecture JSON
MAX_DEPTH = 64  # nesting of JSON arrays and objects
MAX_NODES = 10_000
SMALL_INT = 4096  # an int hyper-parameter up to this is always allowed (an index, a class count)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', flags=re.S)


# --- writing ---------------------------------------------------------------------------------


def architecture_json(chain: SpecChain) -> dict[str, Any]:
    """The chain's structure and hyper-parameters as a JSON-ready dict (no weights)."""
    ids: dict[int, int] = {}
    nodes = [{"name": node, **_spec_json(chain.spec(node), ids)} for node in chain.nodes]
    edges = [[u, v, d["port"], list(d["index"])] for u, v, d in chain.graph.edges(data=True)]
    return {
        "format": "specchain",
        "version": FORMAT_VERSION,
        "in_type": type_json(chain.in_type),
        "nodes": nodes,
        "edges": edges,
    }


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
    if isinstance(value, (TensorType, TupleType)):  # an Input's declared type
        return {"__type__": type_json(value)}
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


def parse_architecture(text: bytes) -> Any:
    """The JSON value of ``text`` (UTF-8), refused when longer than ``MAX_ARCHITECTURE_BYTES``
    or nested deeper than ``MAX_DEPTH`` (measured before parsing)."""
    if len(text) > MAX_ARCHITECTURE_BYTES:
        raise ModelFileError(
            f"architecture JSON of {len(text)} bytes is longer than {MAX_ARCHITECTURE_BYTES}"
        )
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise ModelFileError(f"architecture JSON is nested {depth} deep, more than {MAX_DEPTH}")
    try:
        return json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelFileError(f"invalid architecture (not JSON: {cut(str(err))})") from None


def _depth(text: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings (one vectorised pass)."""
    codes = np.frombuffer(_STRING.sub(b'""', text), dtype=np.uint8)
    steps = np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
    steps -= np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


def build(architecture: Any, kinds: Kinds, budget: int) -> SpecChain:
    """The chain an architecture describes, every spec checked by its own validators.

    Before a spec is made, an int hyper-parameter above both ``budget`` (the parameter elements
    the file may hold) and ``SMALL_INT`` is refused: a size that large declares more parameters
    than the budget, and some (``num_layers=10**5``) cost seconds to declare. Raises
    ``ModelFileError`` (or ``UnknownKindError``) naming what is wrong; a spec's own error (its
    validators, a user layer's ``__init__``) is reported inside one. Under
    ``params.without_init``, ``ParamBudgetError`` passes through."""
    try:
        return _build(architecture, _Reader(kinds, max(budget, SMALL_INT)))
    except (ModelFileError, ParamBudgetError):
        raise
    except Exception as err:  # a spec's validator, a cycle (NetworkXUnfeasible), a bad field
        raise ModelFileError(
            f"invalid architecture ({type(err).__name__}: {cut(str(err))})"
        ) from None


@attrs.define
class _Reader:
    """What building specs from JSON needs: the kinds, the largest int, the specs made so far."""

    kinds: Kinds
    largest: int
    specs: dict[int, NNModuleSpec] = attrs.field(factory=dict)


def _build(architecture: Any, reader: _Reader) -> SpecChain:
    if not isinstance(architecture, dict):
        raise ModelFileError(f"expected a JSON object, got {type(architecture).__name__}")
    if architecture.get("format") != "specchain" or architecture.get("version") != FORMAT_VERSION:
        raise ModelFileError(
            f"format {echo(architecture.get('format'))} version "
            f"{echo(architecture.get('version'))} is not specchain version {FORMAT_VERSION}"
        )
    nodes, edges = architecture["nodes"], architecture["edges"]
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise ModelFileError("nodes and edges must be JSON arrays")
    if len(nodes) > MAX_NODES or len(edges) > 4 * MAX_NODES:
        raise ModelFileError(
            f"{len(nodes)} nodes and {len(edges)} edges: more than the {MAX_NODES} nodes a model "
            "file may hold"
        )
    graph = nx.MultiDiGraph()
    graph.add_node(INPUT)
    graph.add_node(OUTPUT)
    for node in nodes:
        name = node["name"]
        if not isinstance(name, str) or name in graph:
            raise ModelFileError(f"node name {echo(name)} is reserved, repeated or no string")
        try:
            check_node_name(name)
        except SpecError as err:
            raise ModelFileError(cut(str(err))) from None
        graph.add_node(name, spec=_spec_from_json(node, reader))
    for u, v, port, index in edges:
        for end in (u, v):
            if not isinstance(end, str) or end not in graph:
                raise ModelFileError(
                    f"edge {echo(u)} -> {echo(v)} names an unknown node {echo(end)}"
                )
        graph.add_edge(u, v, port=port, index=tuple(index))
    chain = SpecChain(graph, type_from_json(architecture["in_type"]))
    chain.lint()
    return chain


def _spec_from_json(data: dict[str, Any], reader: _Reader) -> NNModuleSpec:
    spec_id = data["spec_id"]
    if not isinstance(spec_id, int):
        raise ModelFileError(f"spec_id {echo(spec_id)} is not an int")
    if spec_id in reader.specs:
        return reader.specs[spec_id]
    cls = reader.kinds.resolve(data["kind"])
    config = {k: _config_from_json(k, v, reader) for k, v in data["config"].items()}
    reader.specs[spec_id] = spec = cls(**config, name=data["spec_name"])
    return spec


def _config_from_json(key: str, value: Any, reader: _Reader) -> Any:
    if isinstance(value, dict) and "__spec__" in value:
        return _spec_from_json(value["__spec__"], reader)
    if isinstance(value, dict) and "__type__" in value:
        return type_from_json(value["__type__"])
    if isinstance(value, list):
        return tuple(_config_from_json(key, v, reader) for v in value)
    if type(value) is int and value > reader.largest:
        raise ModelFileError(
            f"hyper-parameter {echo(key)} = {echo(value)} is larger than the file's parameter "
            f"budget ({reader.largest}): refused before building"
        )
    return value
