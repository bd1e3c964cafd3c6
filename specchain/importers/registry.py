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
    graph is an ``fx.Node`` and anything else a constant; ``example`` the value the node's first
    argument held when the example inputs ran (a tensor, or a tuple for RNN outputs);
    ``value_type(arg)`` the spec-side type of an argument (``[2, B, 16]`` for an LSTM's ``h_n``:
    fixed sizes are ints, symbolic ones ``T`` and ``B``).
    """

    node: Any
    module: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    example: Any
    value_type: Callable[[Any], Type]

    @property
    def where(self) -> str:
        """``node 'cat' (call_function torch.cat)``: for messages."""
        return f"node {self.node.name!r} ({self.node.op} {describe_target(self)})"

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


def converter(target: Any) -> Callable[[C], C]:
    """Decorator: register ``function(call) -> NNModuleSpec | Converted`` for ``target``: an
    ``nn.Module`` subclass, a function such as ``torch.cat``, or a tensor method's name such as
    ``"relu"``. Registering again replaces the converter (like re-running a notebook cell)::

        @specchain.importers.torch.converter(Scale)
        def _scale(call: Call) -> NNModuleSpec:
            return MyScale(call.module.factor)  # its parameters named as Scale's state_dict
    """

    def register(function: C) -> C:
        if isinstance(target, str):
            METHODS[target] = function
        elif isinstance(target, type):
            MODULES[target] = function
        elif callable(target):
            FUNCTIONS[target] = function
        else:
            raise TypeError(
                f"converter() takes an nn.Module class, a function or a method name, got "
                f"{target!r} ({type(target).__name__})"
            )
        return function

    return register


def generated(class_name: str) -> Callable[[C], C]:
    """Register a converter for a helper class that specchain's exporter writes into
    ``model.py`` (a new class in every file, so it is found by name)."""

    def register(function: C) -> C:
        GENERATED[class_name] = function
        return function

    return register


def module_converter(module: object) -> Converter | None:
    """The converter for a module: registered for its class or a base class, else for a class
    specchain's exporter generates under that name; None when there is none."""
    for cls in type(module).__mro__:
        if cls in MODULES:
            return MODULES[cls]
    return GENERATED.get(type(module).__name__)


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
    return "nn." if cls.__module__.startswith("torch.nn.") else f"{cls.__module__}."
