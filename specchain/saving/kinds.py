"""The classes a model file's kinds name: ``custom`` classes first, then the registry."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from specchain.saving.errors import ModelFileError, UnknownKindError, echo
from specchain.spec import SPEC_KINDS, NNModuleSpec, kind_key, known_kinds, lookup_kind

# --- kinds: the classes a file's kinds name ----------------------------------------------------

_SCRIPT = "__main__."  # the kind prefix of a class defined in the script that saved the file
_KINDS_SHOWN = 24  # how many known kinds an error lists
_MAX_KIND_LENGTH = 160  # a module path and class name


class Kinds:
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
            raise ModelFileError(f"spec kind {echo(kind)} is not a string")
        if len(kind) > _MAX_KIND_LENGTH:
            raise ModelFileError(f"spec kind {echo(kind)} is longer than {_MAX_KIND_LENGTH}")
        if kind in self.exact:
            return self.exact[kind]
        built_in = lookup_kind(kind) if "." not in kind else None
        if built_in is not None:  # a built-in's short name, from files before kinds were qualified
            return built_in
        by_name = kind[len(_SCRIPT) :] if kind.startswith(_SCRIPT) else kind
        if kind.startswith(_SCRIPT) or "." not in kind:  # a script's class, or an older file's
            candidates = self.by_name.get(by_name, [])
            if len(candidates) > 1:
                raise ModelFileError(
                    f"spec kind {kind!r} matches {len(candidates)} classes of custom by name: "
                    f"{', '.join(kind_key(c) for c in candidates)}; pass only one of them"
                )
            if candidates:
                return candidates[0]
        if "." not in kind:  # an older file's user layer: the one imported class of that name
            imported = [c for key, c in SPEC_KINDS.items() if c.__qualname__ == kind]
            if len(imported) == 1:
                return imported[0]
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
