"""The checks every spec, optimizer, training loop, loss and dataset applies to its arguments.

One message style everywhere::

    <Owner>.<field> must be <what>, got <value> (<type>)[; <fix>]

``Owner`` is the class (``LSTM``, ``SGD``, ``CrossEntropyLoss``) or the function (``fit``,
``copy_task``) that takes the value, and ``field`` the argument's name. The value's type is named
when the type is what is wrong (``got 2.5 (float)``); a value of the right type out of its range
shows the value alone (``got 0``).

A value of the wrong type raises ``SpecTypeError``, which is both a ``TypeError`` (Python's
convention) and a ``SpecError`` (the base of every specchain error for a user mistake); a value
of the right type out of range raises ``SpecError``.

Each ``check_*(owner, name, value)`` returns the value normalised (a Python ``int``, ``float`` or
``bool``), so callers can store what they checked. The attrs validators (``positive_int``,
``flag``, ...) are built from the same functions: the owner is the spec's class name and the
field the attribute's name.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from specchain.types import SpecError

AttrsValidator = Callable[[Any, "attrs.Attribute[Any]", Any], None]
RESERVED_NAMES = frozenset({"<input>", "<output>"})
MAX_NODE_NAME_LENGTH = 200  # characters; a name becomes a file key and a diagram label


class SpecTypeError(SpecError, TypeError):
    """An argument of the wrong type: catchable as ``TypeError`` and as ``SpecError``."""


# --- the message style ------------------------------------------------------------------------


SHOWN_LENGTH = 80


def shown(value: object) -> str:
    """``repr`` of a value, numpy scalars as their Python equivalent (``1.5``, not
    ``np.float64(1.5)``), cut to ``SHOWN_LENGTH`` characters (an array passed by mistake)."""
    text = repr(value.item()) if isinstance(value, np.generic) else repr(value)
    return text if len(text) <= SHOWN_LENGTH else text[: SHOWN_LENGTH - 3] + "..."


def _subject(owner: str, name: str) -> str:
    return f"{owner}.{name}" if owner else name


def _tail(fix: str | None) -> str:
    return f"; {fix}" if fix else ""


def wrong_type(
    owner: str, name: str, what: str, value: object, fix: str | None = None
) -> SpecTypeError:
    """``<owner>.<name> must be <what>, got <value> (<type>)[; <fix>]``, to raise."""
    got = f"{shown(value)} ({type(value).__name__})"
    return SpecTypeError(f"{_subject(owner, name)} must be {what}, got {got}{_tail(fix)}")


def out_of_range(
    owner: str, name: str, what: str, value: object, fix: str | None = None
) -> SpecError:
    """``<owner>.<name> must be <what>, got <value>[; <fix>]``, to raise."""
    return SpecError(f"{_subject(owner, name)} must be {what}, got {shown(value)}{_tail(fix)}")


# --- integers and flags -----------------------------------------------------------------------


def _int_wording(minimum: int | None) -> str:
    if minimum is None:
        return "an int"
    if minimum == 1:
        return "a positive int"
    return f"an int >= {minimum}"


def check_int(owner: str, name: str, value: object, minimum: int | None = None) -> int:
    """An ``int`` (or numpy integer; never a ``bool``) that is ``>= minimum`` when given."""
    what = _int_wording(minimum)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise wrong_type(owner, name, what, value)
    if minimum is not None and value < minimum:
        raise out_of_range(owner, name, what, value)
    return int(value)


def check_positive_int(owner: str, name: str, value: object) -> int:
    """An int >= 1 (a size, a count of layers or epochs)."""
    return check_int(owner, name, value, minimum=1)


def check_non_negative_int(owner: str, name: str, value: object) -> int:
    """An int >= 0 (an axis, an index, an optional size where 0 means "none")."""
    return check_int(owner, name, value, minimum=0)


def check_flag(owner: str, name: str, value: object) -> bool:
    """``True`` or ``False`` (a numpy bool too); ``1`` and ``"yes"`` are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise wrong_type(owner, name, "True or False", value)
    return bool(value)


def check_choice(owner: str, name: str, value: object, choices: Sequence[object]) -> Any:
    """One of ``choices`` (compared with ``==``); returns it unchanged."""
    if value not in choices:
        raise out_of_range(owner, name, f"one of {tuple(choices)}", value)
    return value


# --- real numbers -----------------------------------------------------------------------------


def check_number(owner: str, name: str, value: object) -> float:
    """A real number (int, float or numpy scalar; not a ``bool``, not NaN), as a ``float``.
    Infinities pass; the range checks below refuse them where they make no sense."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise wrong_type(owner, name, "a number", value)
    number = float(value)
    if math.isnan(number):
        raise out_of_range(owner, name, "a number", value)
    return number


def check_positive(owner: str, name: str, value: object) -> float:
    """A finite number > 0 (a learning rate)."""
    number = check_number(owner, name, value)
    if not 0.0 < number < math.inf:
        raise out_of_range(owner, name, "> 0 and finite", value)
    return number


def check_non_negative(owner: str, name: str, value: object) -> float:
    """A finite number >= 0 (a momentum, a weight decay, a temperature)."""
    number = check_number(owner, name, value)
    if not 0.0 <= number < math.inf:
        raise out_of_range(owner, name, ">= 0 and finite", value)
    return number


def check_unit_interval(owner: str, name: str, value: object) -> float:
    """A number in ``[0, 1)`` (Adam's betas, a probability threshold)."""
    number = check_number(owner, name, value)
    if not 0.0 <= number < 1.0:
        raise out_of_range(owner, name, "in [0, 1)", value)
    return number


def check_probability(owner: str, name: str, value: object) -> float:
    """A number in ``[0, 1]`` (a dropout probability)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise wrong_type(owner, name, "a float in [0, 1]", value)
    if not 0.0 <= float(value) <= 1.0:
        raise out_of_range(owner, name, "in [0, 1]", value)
    return float(value)


# --- arrays -----------------------------------------------------------------------------------


def _check_array(owner: str, name: str, value: object, kinds: str, what: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in kinds:
        got = f"{value.dtype} array" if isinstance(value, np.ndarray) else type(value).__name__
        raise SpecTypeError(f"{_subject(owner, name)} must be {what}, got {got}")
    return value


def check_float_array(owner: str, name: str, value: object) -> np.ndarray:
    """A numpy array of floats, returned as it is (not copied, not cast).

    The message names the array's dtype, or the type of what came instead:
    ``mse.input must be a float numpy array, got int64 array``.
    """
    return _check_array(owner, name, value, "f", "a float numpy array")


def check_int_array(
    owner: str, name: str, value: object, what: str = "an integer numpy array"
) -> np.ndarray:
    """A numpy array of (signed or unsigned) integers, returned as it is; ``what`` may say
    more about it (``"an integer numpy array of token ids [T, B]"``)."""
    return _check_array(owner, name, value, "iu", what)


# --- node names -------------------------------------------------------------------------------


def check_node_name(name: str) -> None:
    """Refuse the graph's own ``<input>``/``<output>``, names longer than
    ``MAX_NODE_NAME_LENGTH`` characters, control characters (NUL, newline, ...) and names no
    UTF-8 file can hold."""
    if name in RESERVED_NAMES:
        raise SpecError(f"the node name {name!r} is reserved for the graph's own input/output")
    if len(name) > MAX_NODE_NAME_LENGTH:
        raise SpecError(
            f"the node name {shown(name)} has {len(name)} characters, more than the "
            f"{MAX_NODE_NAME_LENGTH} a node name may have; choose a shorter name"
        )
    controls = [i for i, char in enumerate(name) if unicodedata.category(char) == "Cc"]
    if controls:
        raise SpecError(
            f"the node name {name!r} has a control character {name[controls[0]]!r} at index "
            f"{controls[0]}, which files, code and diagrams cannot show; choose another name"
        )
    surrogates = [i for i, char in enumerate(name) if "\ud800" <= char <= "\udfff"]
    if surrogates:
        raise SpecError(
            f"the node name {name!r} has a lone surrogate {name[surrogates[0]]!r} at index "
            f"{surrogates[0]}, which no UTF-8 file (saved model, export) can hold; decode the "
            "text that made it with errors='replace', or choose another name"
        )


def check_optional_node_name(owner: str, name: str, value: object) -> str | None:
    """None (the spec picks its default name) or a usable node name."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise wrong_type(owner, name, "a non-empty string", value)
    check_node_name(value)
    return value


# --- attrs validators built from the checks ---------------------------------------------------


def attrs_validator(check: Callable[[str, str, Any], object], label: str) -> AttrsValidator:
    """The attrs validator that runs ``check(<spec class name>, <field name>, value)``."""

    def validate(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        check(type(inst).__name__, attribute.name, value)

    validate.__name__ = validate.__qualname__ = label
    validate.__doc__ = check.__doc__
    return validate


def choice(*choices: object) -> AttrsValidator:
    """The attrs validator accepting one of ``choices`` (``choice("mean", "sum", "none")``)."""

    def check(owner: str, name: str, value: object) -> object:
        return check_choice(owner, name, value, choices)

    return attrs_validator(check, "choice")


positive_int = attrs_validator(check_positive_int, "positive_int")
non_negative_int = attrs_validator(check_non_negative_int, "non_negative_int")
integer = attrs_validator(check_int, "integer")
probability = attrs_validator(check_probability, "probability")
flag = attrs_validator(check_flag, "flag")
node_name = attrs_validator(check_optional_node_name, "node_name")
