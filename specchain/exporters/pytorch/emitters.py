"""The emitter registry: how each spec class appears in a generated PyTorch module.

A layer registers its emitter by class, next to the class (or in the user's own file)::

    from specchain.exporters import pytorch

    @pytorch.emitter(Linear, pointwise=True)
    def _emit_linear(spec: Linear, in_type: Type) -> pytorch.Emitted:
        return pytorch.Emitted(pytorch.call("nn.Linear", spec.in_features, spec.out_features))

Lookup is by exact class: a subclass does not inherit its base's emitter (its ``forward`` may
differ), so it registers its own. Registering a class again replaces the earlier entry, like
re-running a notebook cell. A layer that has no PyTorch twin says so with ``no_torch_twin``, and
exporting it raises ``ExportError`` with that reason.

This module imports only ``attrs`` and the spec base: layer files import it at no cost, and it never
imports torch.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs

from specchain.exporters.pytorch.layout import literal
from specchain.pack import Pack
from specchain.spec import NNModuleSpec
from specchain.types import SpecError, Type

HELPER_CLASSES = (
    "Reverse",
    "LastStep",
    "ScaledDropout",
    "MaskedDropout",
    "OneHot",
    "AttentionLSTM",
)
CUSTOM_LAYERS_DOC = "docs/custom_layers.md"

S = TypeVar("S", bound=NNModuleSpec)


class ExportError(SpecError):
    """A model cannot be exported: a spec without a PyTorch emitter, or a bad class name."""


@attrs.frozen
class Emitted:
    """How one node appears in the generated module.

    ``constructor`` builds the attribute (``nn.Linear(8, 4)``); ``helper`` names the class it
    needs, copied into the file: one of ``torch_helpers.py``, or a class of your own whose source
    (``class Name(nn.Module): ...``, using only ``torch``, ``nn`` and ``F``) is ``helper_source``;
    ``splat`` passes a tuple input as separate arguments (``lstm(x, (h0, c0))``);
    ``drop_state`` says the call returns ``(output, state)`` of which the node keeps the output
    (written ``lstm, _ = self.lstm(x)``); ``suffix`` post-processes the call (``[0]``).
    ``inline`` is a one-line tensor expression written instead of a module call when the node
    takes no lengths (``torch.cat({items}, dim=-1)``): ``{x}`` is the input expression, ``{0}``,
    ``{1}``, ... the items of a tuple input and ``{items}`` their tuple; an inline-only node has
    an empty ``constructor`` and no attribute (see ``pytorch.inline``). ``lengths`` says how
    the node takes a padded batch's lengths, when its input carries them: ``"pack"`` (its first
    argument is wrapped with ``pack_padded_sequence`` and its output's first item unpacked, as
    ``nn.LSTM`` needs) or ``"argument"`` (the lengths follow as extra arguments, one per padded
    input).
    """

    constructor: str
    helper: str | None = None
    splat: bool = False
    suffix: str = ""
    helper_source: str | None = None
    lengths: str = attrs.field(default="", validator=attrs.validators.in_(("", "pack", "argument")))
    drop_state: bool = False
    inline: str = ""


EmitFunction = Callable[[Any, Type], Emitted]


@attrs.frozen
class Emitter:
    """A registered emitter. ``pointwise``: the layer acts on the last axis only, so it maps over
    time as it is (``TimeDistributed`` of it emits the layer itself)."""

    emit: EmitFunction
    pointwise: bool = False


@attrs.frozen
class NoTwin:
    """A declared decision: the layer has no PyTorch twin, for the ``reason`` users read."""

    reason: str


EMITTERS: dict[type[NNModuleSpec], Emitter | NoTwin] = {}  # exact class -> its export decision


def emitter(
    cls: type[S], *, pointwise: bool = False, replace: bool = False
) -> Callable[[Callable[[S, Type], Emitted]], Callable[[S, Type], Emitted]]:
    """Decorator: register ``function(spec, in_type) -> Emitted`` as the emitter of ``cls``.

    ``in_type`` is the node's input type (an emitter may depend on it, as ``Dropout`` does for
    ``(x, mask)``). ``pointwise=True`` for layers that act on the last axis only. The function is
    returned unchanged. Registering again for a class of yours replaces the emitter (like
    re-running a notebook cell); replacing a built-in's emitter from another module changes every
    export in the process, so it needs ``replace=True``.
    """
    _check_class(cls, "@pytorch.emitter(MyLayer)")

    def register(function: Callable[[S, Type], Emitted]) -> Callable[[S, Type], Emitted]:
        old = EMITTERS.get(cls)
        built_in = cls.__module__.startswith("specchain.")
        elsewhere = isinstance(old, Emitter) and old.emit.__module__ != function.__module__
        if built_in and elsewhere and not replace:
            assert isinstance(old, Emitter)
            raise ExportError(
                f"{cls.__name__} is a built-in layer with the emitter "
                f"{old.emit.__module__}.{old.emit.__qualname__}; registering "
                f"{function.__module__}.{function.__qualname__} would change every export "
                f"of it in this process: pass @pytorch.emitter({cls.__name__}, replace=True) "
                "to mean it, or subclass it and register the subclass"
            )
        EMITTERS[cls] = Emitter(function, pointwise=pointwise)
        return function

    return register


def no_torch_twin(cls: type[NNModuleSpec], reason: str) -> None:
    """Declare that ``cls`` has no PyTorch twin; exporting it raises ``ExportError`` with
    ``reason`` (say why, and what to do instead)."""
    _check_class(cls, "pytorch.no_torch_twin(MyLayer, 'why, and what to do instead')")
    if not isinstance(reason, str) or not reason.strip():
        raise TypeError(f"no_torch_twin({cls.__name__}, reason): reason must be a non-empty str")
    EMITTERS[cls] = NoTwin(reason)


def _check_class(cls: object, example: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, NNModuleSpec)):
        what = example.lstrip("@").split("(")[0]
        raise TypeError(f"{what} takes an NNModuleSpec subclass, got {cls!r}; e.g. {example}")


def emitter_for(spec: NNModuleSpec, node: str) -> Emitter:
    """The emitter registered for ``type(spec)`` (exactly), or an ``ExportError`` naming the
    node, the kind and the fix."""
    cls = type(spec)
    found = EMITTERS.get(cls)
    if isinstance(found, Emitter):
        return found
    if isinstance(found, NoTwin):
        raise ExportError(f"node {node!r}: {cls.__name__} has no PyTorch twin: {found.reason}")
    inherited = next((base for base in cls.__mro__[1:] if base in EMITTERS), None)
    note = f" (emitters are not inherited from {inherited.__name__})" if inherited else ""
    raise ExportError(
        f"node {node!r}: no PyTorch emitter for {cls.__name__}{note}; register one with "
        f"@pytorch.emitter({cls.__name__}); see {CUSTOM_LAYERS_DOC}"
    )


def pointwise_kinds() -> list[str]:
    """The built-in kinds registered with ``pointwise=True`` (for messages)."""
    return sorted(
        cls.__name__
        for cls, entry in EMITTERS.items()
        if isinstance(entry, Emitter)
        and entry.pointwise
        and cls.__module__.startswith("specchain.")
    )


# --- what emitters write -----------------------------------------------------------------------


def call(name: str, *args: Any, **kwargs: Any) -> str:
    """``name(arg, key=value)`` with every constant written as a literal (``repr``; strings in
    double quotes, as ruff formats them)."""
    parts = [literal(a) for a in args] + [f"{k}={literal(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def non_default(spec: NNModuleSpec, **defaults: Any) -> dict[str, Any]:
    """The fields of ``spec`` that differ from the given defaults, in the given order."""
    return {k: getattr(spec, k) for k, d in defaults.items() if getattr(spec, k) != d}


def helper(name: str, *args: Any, source: str | None = None) -> Emitted:
    """An attribute built from the helper class ``name``: one of ``torch_helpers.py``, or, with
    ``source``, a class of your own (its ``class name(nn.Module)`` definition as text)."""
    return Emitted(call(name, *args), helper=name, helper_source=source)


def inline(template: str) -> Emitted:
    """A node written as a one-line tensor expression, with no module: ``template`` uses
    ``{x}`` (the input), ``{0}``, ``{1}``, ... (the items of a tuple input) and ``{items}``
    (their tuple), e.g. ``pytorch.inline("torch.cat({items}, dim=-1)")``."""
    return Emitted("", inline=template)


def sibling_text(name: str) -> str:
    """The text of a file of this package, read without importing it (no torch needed)."""
    return (Path(__file__).parent / name).read_text(encoding="utf-8")


def helper_classes() -> dict[str, str]:
    """Source of each class in ``torch_helpers.py``, by name, read as text: exporting works
    without torch installed."""
    text = sibling_text("torch_helpers.py")
    lines = text.splitlines()  # classes start at column 0: whole lines (faster than
    return {  # ast.get_source_segment, which splits the text again for every class)
        node.name: "\n".join(lines[node.lineno - 1 : node.end_lineno])
        for node in ast.parse(text).body
        if isinstance(node, ast.ClassDef)
    }


@emitter(Pack)
def _emit_pack(spec: Pack, in_type: Type) -> Emitted:
    """The graph's own tuple-grouping node (``specchain.pack``): the tuple of its inputs."""
    return inline("{items}")
