"""Text helpers: vocabularies, encoding, language-model chunks and padded batches.

- ``Vocab.chars(source)`` / ``Vocab.words(source)``: a character or word vocabulary of a text (a
  ``str``) or of a file (a ``pathlib.Path``), with a padding token (id 0) and an unknown token
  (id 1) unless turned off; ``encode(text) -> int64[N]``, ``decode(ids) -> str``,
  ``encode_batch(texts) -> Padded``.
- ``lm_data(ids, steps)``: chunks of a token stream with the targets shifted by one, time-major
  ``int64[steps, N]`` inputs and targets, ready for ``fit`` with ``cross_entropy``.
- ``pad_sequences(sequences)``: variable-length examples as one ``Padded`` batch ``[T, N, ...]``
  with their lengths, which ``fit``, ``evaluate`` and every model take as they are.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from specchain.data.dataset import SequenceData
from specchain.padded import Padded
from specchain.types import ShapeError, SpecError
from specchain.validate import check_int_array, check_positive_int, out_of_range

LEVELS = ("char", "word")
WORD = re.compile(r"\w+|[^\w\s]")
"""A word-level token: a run of letters, digits and underscores, or one punctuation mark."""

Source = str | os.PathLike[str]


def read_source(source: Source, encoding: str = "utf-8") -> str:
    """The text itself for a ``str``; the file's text for a path (``pathlib.Path``), read as
    Python reads text files (line endings become ``"\\n"``)."""
    if isinstance(source, str):
        return source
    if isinstance(source, os.PathLike):
        return Path(source).read_text(encoding=encoding)
    raise TypeError(
        f"source must be a text (str) or a file path (pathlib.Path), got {type(source).__name__}"
    )


def _tokens(text: str, level: str, lower: bool) -> list[str]:
    text = text.lower() if lower else text
    return list(text) if level == "char" else WORD.findall(text)


def _token_tuple(tokens: Iterable[str]) -> tuple[str, ...]:
    out = tuple(tokens)
    bad = next((t for t in out if not isinstance(t, str) or not t), None)
    if bad is not None:
        raise SpecError(f"Vocab.tokens must be non-empty strings, got {bad!r}")
    return out


@attrs.frozen
class Vocab:
    """Token strings and their ids: ``tokens[i]`` has id ``i``.

    Attributes:
        tokens: every token, the specials first (``pad`` at 0, then ``unk``).
        level: ``"char"`` (a token is one character) or ``"word"`` (``WORD``'s tokens).
        pad: the padding token (None: none), what ``encode_batch`` pads with.
        unk: the token unknown text encodes to (None: unknown text is an error).
        lower: lower-case text before tokenizing.
    """

    tokens: tuple[str, ...] = attrs.field(converter=_token_tuple)
    level: str = "char"
    pad: str | None = "<pad>"
    unk: str | None = "<unk>"
    lower: bool = False
    _ids: dict[str, int] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.level not in LEVELS:
            raise out_of_range("Vocab", "level", "'char' or 'word'", self.level)
        ids = {token: i for i, token in enumerate(self.tokens)}
        if len(ids) != len(self.tokens):
            repeated = next(t for t in self.tokens if self.tokens.count(t) > 1)
            raise SpecError(f"Vocab.tokens holds {repeated!r} twice; each token needs one id")
        for name in ("pad", "unk"):
            special = getattr(self, name)
            if special is not None and special not in ids:
                raise SpecError(f"Vocab.{name} {special!r} is not one of the tokens")
        object.__setattr__(self, "_ids", ids)

    @classmethod
    def build(
        cls,
        source: Source,
        level: str = "char",
        min_count: int = 1,
        max_size: int | None = None,
        pad: str | None = "<pad>",
        unk: str | None = "<unk>",
        lower: bool = False,
        encoding: str = "utf-8",
    ) -> Vocab:
        """The vocabulary of ``source`` (a ``str`` is the text; a file is a ``pathlib.Path``).

        Tokens seen at least ``min_count`` times are kept, the most frequent first (ties in
        sorted order), at most ``max_size`` of them (None: all); ``pad`` and ``unk`` come first
        (ids 0 and 1). A special token must not also be a token of the text.
        """
        if level not in LEVELS:
            raise out_of_range("Vocab", "level", "'char' or 'word'", level)
        min_count = check_positive_int("Vocab", "min_count", min_count)
        if max_size is not None:
            max_size = check_positive_int("Vocab", "max_size", max_size)
        counts = Counter(_tokens(read_source(source, encoding), level, lower))
        specials = [s for s in (pad, unk) if s is not None]
        if pad is not None and pad == unk:
            raise SpecError(f"Vocab: pad and unk are both {pad!r}; give them different tokens")
        clash = [s for s in specials if s in counts]
        if clash:
            raise SpecError(
                f"Vocab: the special token {clash[0]!r} is also a token of the text; choose "
                "another (pad=..., unk=...) or None"
            )
        frequent = (token for token, count in counts.items() if count >= min_count)
        kept = sorted(frequent, key=lambda token: (-counts[token], token))
        return cls([*specials, *kept[:max_size]], level, pad, unk, lower)

    @classmethod
    def chars(cls, source: Source, **options: Any) -> Vocab:
        """``Vocab.build(source, level="char", ...)``: one token per character."""
        return cls.build(source, "char", **options)

    @classmethod
    def words(cls, source: Source, **options: Any) -> Vocab:
        """``Vocab.build(source, level="word", ...)``: words and punctuation marks."""
        return cls.build(source, "word", **options)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def pad_id(self) -> int | None:
        return None if self.pad is None else self._ids[self.pad]

    @property
    def unk_id(self) -> int | None:
        return None if self.unk is None else self._ids[self.unk]

    def id(self, token: str) -> int:
        """The id of ``token`` (the unknown token's for one not in the vocabulary)."""
        found = self._ids.get(token, self.unk_id)
        if found is None:
            raise SpecError(
                f"{token!r} is not in the vocabulary, which has no unknown token; build it with "
                "unk='<unk>', or from a text that holds it"
            )
        return found

    def tokenize(self, text: str) -> list[str]:
        """``text`` as this vocabulary's tokens (characters, or words and punctuation)."""
        return _tokens(text, self.level, self.lower)

    def encode(self, text: str) -> np.ndarray:
        """``int64[N]``: the id of each token of ``text`` (unknown ones: ``unk_id``)."""
        return np.fromiter(map(self.id, self.tokenize(text)), dtype=np.int64)

    def decode(self, ids: Iterable[int] | np.ndarray, skip_pad: bool = True) -> str:
        """The text of ``ids`` (a 1-D sequence): characters joined as they are, words with
        spaces; padding left out unless ``skip_pad=False``."""
        array = ids if isinstance(ids, np.ndarray) else np.asarray(list(ids), dtype=np.int64)
        array = check_int_array("Vocab.decode", "ids", array)
        if array.ndim != 1:
            raise ShapeError(
                f"Vocab.decode takes one sequence of ids [N], got shape {list(array.shape)}; "
                "decode each column of a [T, B] batch: vocab.decode(batch[:, b])"
            )
        bad = (array < 0) | (array >= len(self.tokens))
        if bad.any():
            i = int(np.argmax(bad))
            raise SpecError(
                f"Vocab.decode: id {int(array[i])} at position {i} is out of range "
                f"[0, {len(self.tokens)})"
            )
        pad = self.pad_id if skip_pad else None
        words = [self.tokens[i] for i in array.tolist() if i != pad]
        return ("" if self.level == "char" else " ").join(words)

    def encode_batch(self, texts: Sequence[str]) -> Padded:
        """Several texts as one padded batch: ``Padded(int64[T, N], lengths [N])`` padded with
        ``pad_id`` (T: the longest text's token count)."""
        if self.pad_id is None:
            raise SpecError("encode_batch pads with the padding token; build the Vocab with pad=")
        return pad_sequences([self.encode(text) for text in texts], value=self.pad_id)


def lm_data(ids: np.ndarray, steps: int, stride: int | None = None) -> SequenceData:
    """Language-model chunks of a token stream ``ids int[N]``: example ``k`` reads ``steps``
    tokens from position ``k * stride`` (default ``stride = steps``: chunks side by side) and its
    targets are the same positions shifted by one (the next token at each step).

    Returns ``SequenceData(inputs int64[steps, K], targets int64[steps, K], lengths [K])``,
    time-major, for ``fit(model, data, sc.losses.cross_entropy, ...)``.
    """
    ids = check_int_array("lm_data", "ids", ids, "an integer numpy array of token ids [N]")
    if ids.ndim != 1:
        raise ShapeError(f"lm_data: ids must be one token stream [N], got {list(ids.shape)}")
    steps = check_positive_int("lm_data", "steps", steps)
    stride = steps if stride is None else check_positive_int("lm_data", "stride", stride)
    if len(ids) < steps + 1:
        raise ShapeError(
            f"lm_data: {len(ids)} tokens make no chunk of steps={steps} (each needs steps + 1 = "
            f"{steps + 1} tokens: the inputs and the next token); use a smaller steps="
        )
    windows = np.lib.stride_tricks.sliding_window_view(ids.astype(np.int64), steps + 1)[::stride]
    chunks = np.ascontiguousarray(windows.T)  # [steps + 1, K]
    lengths = np.full(chunks.shape[1], steps, dtype=np.int64)
    return SequenceData(chunks[:-1].copy(), chunks[1:].copy(), lengths)


def pad_sequences(sequences: Sequence[Any], value: float = 0) -> Padded:
    """Variable-length examples ``[L_i, ...]`` (same trailing shape) as one time-major padded
    batch: ``Padded(data [T, N, ...], lengths int64[N])`` with ``T = max L_i``, filled with
    ``value`` past each length (targets for ``cross_entropy``: ``value=IGNORE_INDEX``)."""
    arrays = [np.asarray(s) for s in sequences]
    if not arrays:
        raise ShapeError("pad_sequences got no sequences; give at least one example")
    for i, array in enumerate(arrays):
        if array.ndim == 0 or len(array) == 0:
            raise ShapeError(
                f"pad_sequences: sequence {i} is empty (shape {list(array.shape)}); every "
                "example needs at least one step, as pack_padded_sequence requires: drop it"
            )
        if array.shape[1:] != arrays[0].shape[1:]:
            raise ShapeError(
                f"pad_sequences: sequence {i} has steps of shape {list(array.shape[1:])}, "
                f"sequence 0 of {list(arrays[0].shape[1:])}; every step needs the same shape"
            )
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    dtype = np.result_type(*arrays)
    data = np.full((int(lengths.max()), len(arrays), *arrays[0].shape[1:]), value, dtype=dtype)
    for i, array in enumerate(arrays):
        data[: len(array), i] = array
    return Padded(data, lengths)


__all__ = ["WORD", "Vocab", "lm_data", "pad_sequences", "read_source"]
