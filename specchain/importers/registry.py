"""The converter registry: what turns one node of a traced PyTorch graph into a spec.

A converter is ``function(call: Call) -> NNModuleSpec | Converted``, registered for a module
class (``nn.LSTM``, looked up along the module's MRO), a function (``torch.cat``,
``operator.add``) or a tensor method's name (``"relu"``) with ``@converter(target)``. It returns
the spec alone when the node's tensor arguments are its input (one argument: the whole input;
several: a tuple), or ``Converted(spec, inputs)`` to say which values feed it. A module's weights
are copied afterwards by their ``state_dict`` names, so the spec's parameter names must be the
module's (``weight_ih_l0``, ``weight``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from specchain.spec import NNModuleSpec
from specchain.types import SpecError, Type

CONVERTING_DOC = "docs/importing.md"


class TorchImportError(SpecError):
    """A PyTorch module specchain cannot read: an op without a converter, an argument a
    converter does not support, or weights that do not fit the spec it built."""


@attrs.frozen
class Call:
    """One node of the traced graph, as a converter sees it.

    ``node`` is the ``torch.fx.Node``; ``module`` the called ``nn.Module`` (``call_module``
    nodes) or None; ``args``/``kwargs`` the node's arguments, where an argument computed by the
    graph is an ``fx.Node`` and anything else a constant; ``value_type(arg)`` the spec-side type
    of an argument (``[2, B, 16]`` for an LSTM's ``h_n``: fixed sizes are ints, symbolic ones
    ``T`` and ``B``).
    """

    node: Any
    module: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    value_type: Callable[[Any], Type]

    @property
    def where(self) -> str:
        """``node 'cat' (call_function torch.cat)``, ``node 'head.0' (call_module nn.Linear)``
        (a module's path: the name its node gets): for messages."""
        node = self.node
        name = node.target if node.op == "call_module" else node.name
        return f"node {name!r} ({node.op} {describe_target(self)})"

    def fail(self, problem: str, fix: str) -> TorchImportError:
        """An error naming this node, what is wrong and how to fix it (raise it)."""
        return TorchImportError(f"cannot import {self.where}: {problem}; {fix}")


@attrs.frozen
class Converted:
    """A converter's answer when the spec's input is not simply the node's tensor arguments:
    ``inputs`` is one value or a (nested) tuple of values (``fx.Node``), as the spec takes it.
    ``only_item=k``: the module returns a tuple of which the graph reads item ``k`` alone, and
    the spec returns that item itself (``out, _ = self.lstm(x)`` -> an LSTM without its state).
    ``then``: specs applied after ``spec``, in series (``x[0]`` is ``Reverse`` then
    ``LastStep``).
    """

    spec: NNModuleSpec
    inputs: Any
    only_item: int | None = None
    then: tuple[NNModuleSpec, ...] = ()


Converter = Callable[[Call], "NNModuleSpec | Converted"]
C = TypeVar("C", bound=Converter)

MODULES: dict[type, Converter] = {}
FUNCTIONS: dict[Any, Converter] = {}
METHODS: dict[str, Converter] = {}
GENERATED: dict[str, Converter] = {}  # classes specchain's exporter writes, by class name


def converter(target: Any, *, replace: bool = False) -> Callable[[C], C]:
    """Decorator: register ``function(call) -> NNModuleSpec | Converted`` for ``target``: an
    ``nn.Module`` subclass, a function such as ``torch.cat``, or a tensor method's name such as
    ``"relu"``. The function is returned unchanged::

        @specchain.importers.torch.converter(Scale)
        def _scale(call: Call) -> NNModuleSpec:
            return MyScale(call.module.factor)  # its parameters named as Scale's state_dict

    Registering again replaces your converter (like re-running a notebook cell); replacing a
    built-in one (``nn.LSTM``'s) changes every import in the process, so it needs
    ``replace=True``.
    """
    table = _table(target)

    def register(function: C) -> C:
        old = table.get(target)
        if (
            old is not None
            and old.__module__.startswith("specchain.")
            and old.__module__ != function.__module__
            and not replace
        ):
            raise TorchImportError(
                f"{target!r} has the built-in converter {old.__module__}.{old.__qualname__}; "
                f"registering {function.__module__}.{function.__qualname__} would change every "
                "import of it in this process: pass converter(..., replace=True) to mean it"
            )
        table[target] = function
        return function

    return register


def _table(target: Any) -> dict[Any, Converter]:
    if isinstance(target, str):
        return METHODS
    if isinstance(target, type):
        return MODULES
    if callable(target):
        return FUNCTIONS
    raise TypeError(
        f"converter() takes an nn.Module class, a function or a method name, got {target!r} "
        f"({type(target).__name__})"
    )


def generated(class_name: str) -> Callable[[C], C]:
    """Register a converter for a helper class that specchain's exporter writes into
    ``model.py`` (a new class in every file, so it is found by name)."""

    def register(function: C) -> C:
        GENERATED[class_name] = function
        return function

    return register


def module_converter(module: object) -> Converter | None:
    """The converter for a module: registered for its class or a base class, else for a class
    (or base class) specchain's exporter generates under that name; None when there is none."""
    found = converted_class(module)
    if found is None:
        return None
    return MODULES[found] if found in MODULES else GENERATED[found.__name__]


def converted_class(module: object) -> type | None:
    """The class of ``module``'s MRO that has a converter (``nn.LSTM``, ``AttentionLSTM``). A
    subclass of a registered class counts only while it keeps that class's ``forward`` (a
    ``class MyLSTM(nn.LSTM)`` with its own ``forward`` is traced, not read as an ``nn.LSTM``)."""
    own = type(module)
    mro = own.__mro__
    forward = getattr(own, "forward", None)
    registered = (
        c for c in mro if c in MODULES and (c is own or forward is getattr(c, "forward", None))
    )
    return next(registered, None) or next((c for c in mro if c.__name__ in GENERATED), None)


def convert(call: Call) -> NNModuleSpec | Converted:
    """Run the node's converter; an exception in it (a user's converter too) names the node and
    the converter."""
    function = converter_for(call)
    try:
        return function(call)
    except TorchImportError:
        raise
    except Exception as err:
        raise TorchImportError(
            f"the converter {function.__module__}.{function.__qualname__} failed on "
            f"{call.where}: {type(err).__name__}: {err}"
        ) from err


def converter_for(call: Call) -> Converter:
    """The converter for a node, or the error naming the node, its op and how to map it."""
    node = call.node
    found: Converter | None
    if node.op == "call_module":
        found = module_converter(call.module)
    elif node.op == "call_method":
        found = METHODS.get(node.target)
    else:
        found = FUNCTIONS.get(node.target)
    if found is None:
        raise call.fail(
            "specchain has no converter for it",
            f"register one that returns the equivalent spec: "
            f"@specchain.importers.torch.converter({_registration_key(call)}) def convert(call): "
            f"return MySpec(...); see {CONVERTING_DOC}",
        )
    return found


def describe_target(call: Call) -> str:
    """``nn.Conv1d``, ``torch.cat``, ``operator.mul`` or ``.view``."""
    node = call.node
    if node.op == "call_module":
        cls = type(call.module)
        return f"{_module_prefix(cls)}{cls.__qualname__}"
    if node.op == "call_method":
        return f".{node.target}"
    target = node.target
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", repr(target))
    module = "operator" if module == "_operator" else module
    return f"{module}.{name}" if module else name


def _registration_key(call: Call) -> str:
    if call.node.op == "call_method":
        return repr(call.node.target)
    return describe_target(call)


def _module_prefix(cls: type) -> str:
    """``nn.`` for PyTorch's layers; your own classes go by their name."""
    return "nn." if cls.__module__.startswith("torch.nn.") else ""
