"""The errors a model file raises, and the cap on what a message echoes from a file."""

from __future__ import annotations

from specchain.types import SpecError

MESSAGE_ECHO = 200  # characters of a value read from a file that a message shows
KEYS_SHOWN = 8  # how many keys a message lists


class ModelFileError(SpecError):
    """A model file cannot be read: truncated, corrupted, pickled, too big for its budget, or not
    a specchain model. The message names the file and what is wrong."""


class UnknownKindError(ModelFileError):
    """A model file names a spec kind that no imported class and no ``custom`` class provides.

    ``kind`` is the stored kind (``"mylayers.LayerNorm"``); ``module`` the module it was saved
    from (``"mylayers"``, ``"__main__"`` for a script), or None for an unknown short name.
    """

    def __init__(self, message: str, kind: str, module: str | None) -> None:
        super().__init__(message)
        self.kind = kind
        self.module = module


# their public home (``specchain.saving``) is what tracebacks and reprs name
ModelFileError.__module__ = UnknownKindError.__module__ = "specchain.saving"


def cut(text: str) -> str:
    """``text`` cut to ``MESSAGE_ECHO`` characters: a file cannot flood a message."""
    return text if len(text) <= MESSAGE_ECHO else text[: MESSAGE_ECHO - 3] + "..."


def echo(value: object) -> str:
    """``repr(value)``, cut like ``cut``."""
    return cut(repr(value))


def some_keys(keys: list[str]) -> str:
    """At most ``KEYS_SHOWN`` keys, then how many more: ``['a', 'b'] (and 3 more)``."""
    shown = repr(keys[:KEYS_SHOWN])
    more = len(keys) - KEYS_SHOWN
    return cut(shown) + (f" (and {more} more)" if more > 0 else "")
