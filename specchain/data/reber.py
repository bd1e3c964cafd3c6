"""The embedded Reber grammar (Hochreiter & Schmidhuber 1997, experiment 1).

A Reber string walks this automaton from state 0, choosing each arc with probability 1/2, and
stops after ``E`` (state 7)::

    0 -B-> 1      1 -T-> 2   1 -P-> 3      2 -S-> 2   2 -X-> 4      3 -T-> 3   3 -V-> 5
    4 -X-> 3      4 -S-> 6   5 -P-> 4      5 -V-> 6   6 -E-> 7

(``BTXSE``, ``BPVVE``, ``BTSSXXTVVE``, ...). An *embedded* Reber string is ``B``, then ``T`` or
``P`` (the branch), then a Reber string, then the branch symbol again, then ``E``:
``BTBPVVETE``. Predicting that second-to-last symbol needs the second symbol, seen many steps
earlier: the long-term dependency.

Symbols are one-hot over ``SYMBOLS = ("B", "T", "P", "S", "X", "V", "E")`` (index 0..6).

Two tasks:

- ``classification_data(strings)``: the classifier sees ``s[:-2]`` (the string up to and
  including the inner ``E``, i.e. everything before the second-to-last symbol) and predicts
  ``s[-2]`` -- which equals ``s[1]`` -- as class 0 (``T``) or 1 (``P``). Sequences are padded at
  the front by default, so the last step of every example is its real last symbol and
  ``LSTM >> LastStep() >> Linear(H, 2)`` reads it.
- ``language_model_data(strings)``: at step ``t`` the model sees ``s[t]`` (after ``s[:t]``) and
  is trained to predict ``s[t + 1]``; ``legal[t]`` marks every symbol the grammar allows after
  ``s[:t + 1]``. ``prediction_correct`` scores predictions against those sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from specchain.data.dataset import IGNORE_INDEX, SequenceData, float_dtype
from specchain.numerics import softmax
from specchain.params import RngLike, runtime_generator
from specchain.types import ShapeError, SpecError
from specchain.validate import check_int, check_unit_interval, out_of_range, wrong_type

SYMBOLS: tuple[str, ...] = ("B", "T", "P", "S", "X", "V", "E")
SYMBOL_INDEX: dict[str, int] = {s: i for i, s in enumerate(SYMBOLS)}
CLASSES: tuple[str, ...] = ("T", "P")
"""Class indices of ``classification_data``: 0 for ``T``, 1 for ``P``."""

REBER_TRANSITIONS: dict[int, tuple[tuple[str, int], ...]] = {
    0: (("B", 1),),
    1: (("T", 2), ("P", 3)),
    2: (("S", 2), ("X", 4)),
    3: (("T", 3), ("V", 5)),
    4: (("X", 3), ("S", 6)),
    5: (("P", 4), ("V", 6)),
    6: (("E", 7),),
    7: (),
}
REBER_FINAL = 7
MIN_EMBEDDED_LENGTH = 9  # B T BTXSE T E


# --- generation -------------------------------------------------------------------------------


def reber_string(rng: RngLike = None) -> str:
    """One Reber string (every choice between two arcs is a fair coin)."""
    generator = runtime_generator(rng)
    state, out = 0, []
    while state != REBER_FINAL:
        arcs = REBER_TRANSITIONS[state]
        symbol, state = arcs[int(generator.integers(len(arcs)))] if len(arcs) > 1 else arcs[0]
        out.append(symbol)
    return "".join(out)


def embedded_reber_string(rng: RngLike = None) -> str:
    """One embedded Reber string: ``B``, the branch ``T``/``P``, a Reber string, branch, ``E``."""
    generator = runtime_generator(rng)
    branch = CLASSES[int(generator.integers(2))]
    return "B" + branch + reber_string(generator) + branch + "E"


def embedded_reber_strings(n: int, rng: RngLike = 0, max_length: int | None = None) -> list[str]:
    """``n`` embedded Reber strings from a seeded generator (same seed, same strings).

    ``max_length`` rejects and redraws longer strings (this truncates the length distribution,
    which is otherwise geometric-tailed); it must be at least 9, the shortest possible length.
    """
    n = check_int("embedded_reber_strings", "n", n, minimum=0)
    if max_length is not None:
        max_length = check_int(
            "embedded_reber_strings", "max_length", max_length, minimum=MIN_EMBEDDED_LENGTH
        )
    generator = runtime_generator(rng)
    strings: list[str] = []
    while len(strings) < n:
        s = embedded_reber_string(generator)
        if max_length is None or len(s) <= max_length:
            strings.append(s)
    return strings


# --- recognition ------------------------------------------------------------------------------


def _reber_prefix_state(s: str, offset: int = 0, whole: str | None = None) -> int:
    """The automaton state after reading ``s`` (a Reber prefix found at ``offset`` in ``whole``);
    errors name the position in ``whole``."""
    whole = s if whole is None else whole
    state = 0
    for k, symbol in enumerate(s):
        arcs = dict(REBER_TRANSITIONS[state])
        if symbol not in arcs:
            allowed = "".join(arcs) or "nothing (the string is complete)"
            raise SpecError(
                f"not a Reber prefix: symbol {symbol!r} at position {offset + k} of "
                f"{whole!r}; allowed there: {allowed}"
            )
        state = arcs[symbol]
    return state


def legal_next(prefix: str) -> frozenset[str]:
    """The symbols an embedded Reber string may continue ``prefix`` with (empty when complete).

    Raises ``SpecError`` naming the first bad position if ``prefix`` is not a prefix of any
    embedded Reber string.
    """
    if not isinstance(prefix, str):
        raise wrong_type("legal_next", "prefix", "a str", prefix)
    if prefix == "":
        return frozenset("B")
    if prefix[0] != "B":
        raise SpecError(f"not an embedded Reber prefix: {prefix!r} must start with 'B'")
    if len(prefix) == 1:
        return frozenset(CLASSES)
    branch = prefix[1]
    if branch not in CLASSES:
        raise SpecError(f"not an embedded Reber prefix: position 1 of {prefix!r} must be T or P")
    inner = prefix[2:]
    end = inner.find("E")
    if end < 0:  # still inside the embedded Reber string
        state = _reber_prefix_state(inner, offset=2, whole=prefix)
        return frozenset(symbol for symbol, _ in REBER_TRANSITIONS[state])
    _reber_prefix_state(inner[: end + 1], 2, prefix)  # "E" is only legal as the final arc
    tail = inner[end + 1 :]
    expected = branch + "E"
    if not expected.startswith(tail):
        raise SpecError(
            f"not an embedded Reber prefix: {prefix!r} must end the inner string with "
            f"{expected!r} (the branch symbol {branch!r}, then 'E'), got {tail!r}"
        )
    return frozenset(expected[len(tail) :][:1])


def is_embedded_reber(s: str) -> bool:
    """True when ``s`` is a complete embedded Reber string."""
    if not isinstance(s, str):
        raise wrong_type("is_embedded_reber", "s", "a str", s)
    try:
        return len(s) > 0 and legal_next(s) == frozenset() and s.endswith("E")
    except SpecError:
        return False


# --- encoding ---------------------------------------------------------------------------------


def _check_pad(owner: str, pad: str) -> str:
    if pad not in ("pre", "post"):
        raise out_of_range(owner, "pad", "'pre' (zeros before) or 'post' (zeros after)", pad)
    return pad


def _check_strings(owner: str, strings: Sequence[str]) -> list[str]:
    if isinstance(strings, str):
        raise wrong_type(owner, "strings", "a sequence of strings", strings, "wrap it in a list")
    out = list(strings)
    for k, s in enumerate(out):
        if not isinstance(s, str):
            raise wrong_type(owner, f"strings[{k}]", "a str", s)
        bad = [c for c in s if c not in SYMBOL_INDEX]
        if bad:
            raise SpecError(f"string {k} ({s!r}) has symbols {bad} outside {''.join(SYMBOLS)}")
    return out


def symbol_ids(strings: Sequence[str], pad: str = "post", pad_id: int = IGNORE_INDEX) -> np.ndarray:
    """``int64[T, N]`` symbol indices, ``T`` the longest length, ``pad_id`` on padding."""
    strings, pad = _check_strings("symbol_ids", strings), _check_pad("symbol_ids", pad)
    steps = max((len(s) for s in strings), default=0)
    ids = np.full((steps, len(strings)), pad_id, dtype=np.int64)
    for j, s in enumerate(strings):
        if s:
            rows = slice(steps - len(s), steps) if pad == "pre" else slice(0, len(s))
            ids[rows, j] = [SYMBOL_INDEX[c] for c in s]
    return ids


def encode(
    strings: Sequence[str], pad: str = "post", dtype: object = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """One-hot ``[T, N, 7]`` (zero rows on padding) and ``lengths int64[N]``.

    ``pad="post"`` puts the padding after each string, ``"pre"`` before it (so every string ends
    on the last step).
    """
    resolved = float_dtype(dtype)
    strings, pad = _check_strings("encode", strings), _check_pad("encode", pad)
    ids = symbol_ids(strings, pad=pad, pad_id=-1)
    x = np.zeros((*ids.shape, len(SYMBOLS)), dtype=resolved)
    t, j = np.nonzero(ids >= 0)
    x[t, j, ids[t, j]] = 1.0
    lengths = (ids >= 0).sum(axis=0).astype(np.int64)
    return x, lengths


def decode(x: np.ndarray) -> list[str]:
    """The strings of a one-hot ``[T, N, 7]`` array (all-zero rows are padding)."""
    if not isinstance(x, np.ndarray) or x.ndim != 3 or x.shape[-1] != len(SYMBOLS):
        raise ShapeError(f"decode takes one-hot [T, N, {len(SYMBOLS)}], got {np.shape(x)}")
    strings = []
    for j in range(x.shape[1]):
        rows = x[:, j]
        strings.append("".join(SYMBOLS[int(i)] for i in rows[rows.any(axis=-1)].argmax(axis=-1)))
    return strings


# --- tasks ------------------------------------------------------------------------------------


def classification_data(
    strings: Sequence[str], pad: str = "pre", dtype: object = np.float32
) -> SequenceData:
    """The second-to-last-symbol task: inputs ``s[:-2]`` one-hot ``[T, N, 7]`` (padded at the
    front by default), targets ``int64[N]`` = ``CLASSES.index(s[-2])`` (0 for T, 1 for P), and
    the input lengths ``len(s) - 2``. Every string must be an embedded Reber string."""
    strings = _check_strings("classification_data", strings)
    pad = _check_pad("classification_data", pad)
    for k, s in enumerate(strings):
        if not is_embedded_reber(s):
            raise SpecError(f"string {k} ({s!r}) is not an embedded Reber string")
    x, lengths = encode([s[:-2] for s in strings], pad=pad, dtype=dtype)
    y = np.array([CLASSES.index(s[-2]) for s in strings], dtype=np.int64)
    return SequenceData(x, y, lengths)


class LanguageModelData(NamedTuple):
    """Next-symbol prediction (``fit`` takes it as it is; padding is at the end).

    Attributes:
        inputs: one-hot ``[T, N, 7]`` of ``s[:-1]``.
        targets: ``int64[T, N]``, ``s[t + 1]``; ``IGNORE_INDEX`` (-100) on padding.
        lengths: ``int64[N]``, ``len(s) - 1``.
        legal: ``bool[T, N, 7]``, the symbols the grammar allows after ``s[:t + 1]`` (all False
            on padding).
    """

    inputs: np.ndarray
    targets: np.ndarray
    lengths: np.ndarray
    legal: np.ndarray


def legal_masks(strings: Sequence[str]) -> np.ndarray:
    """``bool[T, N, 7]`` with ``T = max len(s) - 1``: the legal continuations of ``s[:t + 1]``."""
    strings = _check_strings("legal_masks", strings)
    steps = max((len(s) - 1 for s in strings), default=0)
    legal = np.zeros((max(steps, 0), len(strings), len(SYMBOLS)), dtype=bool)
    for j, s in enumerate(strings):
        for t in range(len(s) - 1):
            for symbol in legal_next(s[: t + 1]):
                legal[t, j, SYMBOL_INDEX[symbol]] = True
    return legal


def language_model_data(strings: Sequence[str], dtype: object = np.float32) -> LanguageModelData:
    """Inputs, next-symbol targets and legal-symbol masks of embedded Reber strings."""
    strings = _check_strings("language_model_data", strings)
    for k, s in enumerate(strings):
        if not is_embedded_reber(s):
            raise SpecError(f"string {k} ({s!r}) is not an embedded Reber string")
    x, lengths = encode([s[:-1] for s in strings], pad="post", dtype=dtype)
    y = symbol_ids([s[1:] for s in strings], pad="post", pad_id=IGNORE_INDEX)
    return LanguageModelData(x, y, lengths, legal_masks(strings))


def prediction_correct(
    logits: np.ndarray, legal: np.ndarray, threshold: float | None = None
) -> np.ndarray:
    """``bool[T, N]``: whether the prediction at each step is legal (False on padding).

    With ``threshold=None`` a prediction is correct when its argmax symbol is legal. With a
    threshold, the symbols whose softmax probability exceeds it must be non-empty and all legal.
    """
    if not isinstance(logits, np.ndarray) or logits.shape != legal.shape:
        raise ShapeError(
            f"logits {list(np.shape(logits))} and legal {list(legal.shape)} must have one shape "
            f"[T, N, {len(SYMBOLS)}]"
        )
    valid = legal.any(axis=-1)
    if threshold is None:
        picked = np.take_along_axis(legal, logits.argmax(axis=-1)[..., None], axis=-1)[..., 0]
        return picked & valid
    threshold = check_unit_interval("prediction_correct", "threshold", threshold)
    probs = softmax(logits.astype(np.float64))
    active = probs > threshold
    return active.any(axis=-1) & ~(active & ~legal).any(axis=-1) & valid


def language_model_accuracy(
    logits: np.ndarray, legal: np.ndarray, threshold: float | None = None
) -> tuple[float, float]:
    """``(step accuracy, string accuracy)``: the fraction of real steps predicted legally, and of
    strings whose every step is (``prediction_correct`` defines "legally")."""
    correct = prediction_correct(logits, legal, threshold)
    valid = legal.any(axis=-1)
    if not valid.any():
        raise SpecError("no steps to score: every position is padding")
    per_string = (correct | ~valid).all(axis=0)
    return float(correct.sum() / valid.sum()), float(per_string.mean())
