"""Weights back from PyTorch: ``load_torch_state`` fills a spec from a torch module or state_dict,
the exported module's or a hand-written one whose keys differ (``fc.weight`` for ``head.weight``)
given a ``key_map``. When keys do not match, one error lists the unmatched keys on both sides and
a suggested ``key_map`` (same shapes, similar names), ready to paste.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from specchain.chain import SpecChain
from specchain.exporters.pytorch.naming import assign_names
from specchain.state import StateDictError

#: ``{checkpoint key or module prefix: the export's}``, or a function of a checkpoint key.
KeyMap = Mapping[str, str] | Callable[[str], str]


def load_torch_state(
    model: SpecChain, state: Any, class_name: str = "Model", *, key_map: KeyMap | None = None
) -> None:
    """Fill ``model`` from a torch module or state_dict whose keys are the exported module's
    (``assign_names``), or become them through ``key_map``.

    ``key_map`` renames checkpoint keys: a dict maps a whole key (``{"fc.weight":
    "head.weight"}``) or a module prefix (``{"fc": "head"}`` renames ``fc.weight`` and ``fc.bias``;
    an exact key wins over a prefix, a longer prefix over a shorter); keys it does not name are
    kept. A callable gets each checkpoint key and returns the export's key. Loading is strict and
    all-or-nothing: missing, unexpected, doubly-mapped, mis-shaped and mis-typed entries are
    reported at once in one ``StateDictError`` (naming the checkpoint key and the key it maps to),
    with a suggested ``key_map`` when keys are unmatched; the model is left unchanged."""
    if hasattr(state, "state_dict") and callable(state.state_dict):
        state = state.state_dict()
    if not isinstance(state, Mapping):
        raise TypeError(
            f"expected a torch module or a state_dict mapping, got {type(state).__name__}"
        )
    _check_key_map(key_map)
    names = assign_names(model, class_name)
    current = model.named_parameters()
    ours = {names.state_key(model, key): key for key in current}
    renamed = {key: rename(key, key_map) for key in state}
    problems = _doubly_mapped(renamed)
    found = set(renamed.values())
    missing = [k for k in ours if k not in found]
    unexpected = [k for k, new in renamed.items() if new not in ours]
    if missing or unexpected:
        shown = [k if renamed[k] == k else f"{k} (as {renamed[k]})" for k in unexpected]
        problems.insert(0, f"missing keys: {missing}; unexpected keys: {shown}")
    arrays: dict[str, np.ndarray] = {}
    for key, new in renamed.items():
        if new not in ours:
            continue
        value, expected = _as_numpy(state[key]), current[ours[new]]
        label = new if new == key else f"{key} (as {new})"
        if value.shape != expected.shape:
            problems.append(f"{label}: shape {list(value.shape)} != {list(expected.shape)}")
        elif value.dtype != expected.dtype:
            problems.append(
                f"{label}: dtype {value.dtype} != the model's {expected.dtype} (convert one: "
                f"model.to(np.{value.dtype}) or the state_dict's tensors)"
            )
        arrays[ours[new]] = value
    if problems:
        if missing and unexpected:
            shapes = {k: current[our_key].shape for k, our_key in ours.items()}
            problems.append(_suggestion(state, renamed, missing, unexpected, shapes, key_map))
        if isinstance(key_map, Mapping):
            unused = [k for k in key_map if not any(_applies(k, key) for key in state)]
            if unused:
                problems.append(f"key_map entries that match no checkpoint key: {unused}")
        raise StateDictError("load_torch_state: " + "\n  ".join(problems))
    model.load_state_dict(arrays, strict=True)


def rename(key: str, key_map: KeyMap | None) -> str:
    """``key`` as ``key_map`` renames it (see ``load_torch_state``)."""
    if key_map is None:
        return key
    if not isinstance(key_map, Mapping):
        new = key_map(key)
        if not isinstance(new, str):
            raise TypeError(
                f"key_map({key!r}) returned {type(new).__name__}; it must return the key as a str"
            )
        return new
    if key in key_map:
        return key_map[key]
    prefixes = [p for p in key_map if key.startswith(f"{p}.")]
    if not prefixes:
        return key
    prefix = max(prefixes, key=len)
    return key_map[prefix] + key[len(prefix) :]


def _applies(entry: str, key: str) -> bool:
    return key == entry or key.startswith(f"{entry}.")


def _check_key_map(key_map: object) -> None:
    if key_map is None or callable(key_map):
        return
    if not isinstance(key_map, Mapping):
        raise TypeError(
            f"key_map must be a dict {{checkpoint key: model key}} or a function of a key, got "
            f"{type(key_map).__name__}"
        )
    bad = [(k, v) for k, v in key_map.items() if not (isinstance(k, str) and isinstance(v, str))]
    if bad:
        raise TypeError(f"key_map maps str to str; these entries do not: {bad}")


def _doubly_mapped(renamed: Mapping[str, str]) -> list[str]:
    """One problem per key that two or more checkpoint keys map to."""
    sources: dict[str, list[str]] = {}
    for key, new in renamed.items():
        sources.setdefault(new, []).append(key)
    return [
        f"checkpoint keys {keys} all map to {new!r}; key_map must keep keys distinct"
        for new, keys in sources.items()
        if len(keys) > 1
    ]


def _suggestion(
    state: Mapping[str, Any],
    renamed: Mapping[str, str],
    missing: list[str],
    unexpected: list[str],
    shapes: Mapping[str, tuple[int, ...]],
    key_map: KeyMap | None,
) -> str:
    """A ``key_map`` that pairs unexpected checkpoint keys with missing model keys of the same
    shape (``shapes``: the model's, by export key, in state_dict order), most similar names first
    (difflib), then closest positions in the two state_dicts."""
    order = {k: i / max(len(state) - 1, 1) for i, k in enumerate(state)}
    model_order = {k: i / max(len(shapes) - 1, 1) for i, k in enumerate(shapes)}
    scored = [
        (_similarity(u, m) + 0.25 * (1 - abs(order[u] - model_order[m])), u, m)
        for u in unexpected
        for m in missing
        if _shape(state[u]) == shapes[m]
    ]
    pairs: dict[str, str] = {}
    for _, u, m in sorted(scored, key=lambda s: -s[0]):
        if u not in pairs and m not in pairs.values():
            pairs[u] = m
    if not pairs:
        return "no unexpected key has the shape of a missing one: no key_map can fix this"
    unpaired = len(unexpected) - len(pairs)
    rest = f"; {unpaired} unexpected key(s) have no counterpart" if unpaired else ""
    if not isinstance(key_map, Mapping) and key_map is not None:
        return (
            f"suggested (same shapes, similar names; check it): make key_map return these "
            f"keys for these checkpoint keys: {pairs}{rest}"
        )
    base = {} if key_map is None else dict(key_map)
    suggested = _with_prefixes(base, pairs, list(state), {**renamed, **pairs})
    return f"suggested (same shapes, similar names; check it): key_map={suggested!r}{rest}"


def _with_prefixes(
    base: dict[str, str], pairs: dict[str, str], keys: list[str], wanted: Mapping[str, str]
) -> dict[str, str]:
    """``base`` plus ``pairs``, written as module prefixes (``{"fc": "head"}``) where a prefix
    renames exactly the keys it should, else as whole keys."""
    result = {**base, **pairs}
    groups: dict[tuple[str, str], list[str]] = {}
    for old, new in pairs.items():
        prefix = _module_prefixes(old, new)
        if prefix is not None:
            groups.setdefault(prefix, []).append(old)
    for (old_prefix, new_prefix), olds in groups.items():
        trial = {k: v for k, v in result.items() if k not in olds}
        trial[old_prefix] = new_prefix
        if all(rename(key, trial) == wanted[key] for key in keys):
            result = trial
    return result


def _module_prefixes(old: str, new: str) -> tuple[str, str] | None:
    """``("fc", "head")`` for ``fc.weight`` and ``head.weight``: the parts before the longest
    common dotted suffix, when both are non-empty."""
    a, b = old.split("."), new.split(".")
    common = 0
    while common < min(len(a), len(b)) and a[-1 - common] == b[-1 - common]:
        common += 1
    if common == 0 or common == len(a) or common == len(b):
        return None
    return ".".join(a[: len(a) - common]), ".".join(b[: len(b) - common])


def _similarity(a: str, b: str) -> float:
    """Name similarity in [0, 2]: of the parameter names (after the last dot) and the keys."""
    leaf = difflib.SequenceMatcher(None, a.rsplit(".", 1)[-1], b.rsplit(".", 1)[-1]).ratio()
    return leaf + difflib.SequenceMatcher(None, a, b).ratio()


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in getattr(value, "shape", np.shape(value)))


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return np.asarray(value.detach().cpu().numpy())
    return np.asarray(value)
