"""The shared validators: normalised values, one message style, both error types."""

from __future__ import annotations

import math
import re
from typing import Any

import attrs
import numpy as np
import pytest

import specchain.spec as spec_module
from specchain import validate as v
from specchain.types import SpecError


def test_wrong_type_is_both_type_error_and_spec_error() -> None:
    with pytest.raises(v.SpecTypeError) as info:
        v.check_positive_int("LSTM", "hidden_size", 2.5)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, SpecError)
    assert str(info.value) == "LSTM.hidden_size must be a positive int, got 2.5 (float)"


def test_out_of_range_is_a_spec_error_without_the_type() -> None:
    with pytest.raises(SpecError) as info:
        v.check_positive_int("LSTM", "hidden_size", 0)
    assert not isinstance(info.value, TypeError)
    assert str(info.value) == "LSTM.hidden_size must be a positive int, got 0"


def test_messages_show_numpy_scalars_as_python_values_and_append_a_fix() -> None:
    assert v.shown(np.float64(1.5)) == "1.5"
    assert v.shown(np.int32(3)) == "3"
    assert v.shown("a") == "'a'"
    long = v.shown(list(range(100)))
    assert len(long) == v.SHOWN_LENGTH and long.startswith("[0, 1, 2") and long.endswith("...")
    err = v.wrong_type("encode", "strings", "a sequence of strings", "BT", "wrap it in a list")
    assert (
        str(err)
        == "encode.strings must be a sequence of strings, got 'BT' (str); wrap it in a list"
    )
    err = v.out_of_range("SGD", "lr", "> 0 and finite", np.float32(-1.0))
    assert str(err) == "SGD.lr must be > 0 and finite, got -1.0"


@pytest.mark.parametrize(
    ("minimum", "value", "message"),
    [
        (None, 1.5, "f.k must be an int, got 1.5 (float)"),
        (0, -1, "f.k must be an int >= 0, got -1"),
        (1, 0, "f.k must be a positive int, got 0"),
        (9, 8, "f.k must be an int >= 9, got 8"),
        (1, True, "f.k must be a positive int, got True (bool)"),
        (1, np.bool_(True), "f.k must be a positive int, got True (bool)"),
        (1, "3", "f.k must be a positive int, got '3' (str)"),
    ],
)
def test_check_int_refuses(minimum: int | None, value: object, message: str) -> None:
    with pytest.raises(SpecError, match=f"^{re.escape(message)}$"):
        v.check_int("f", "k", value, minimum)


def test_check_int_returns_a_python_int() -> None:
    value = v.check_int("f", "k", np.int64(7), minimum=1)
    assert value == 7
    assert type(value) is int
    assert v.check_int("f", "k", -5) == -5
    assert v.check_non_negative_int("f", "k", 0) == 0


def test_check_flag() -> None:
    assert v.check_flag("SGD", "nesterov", np.bool_(True)) is True
    with pytest.raises(TypeError, match=r"^SGD\.nesterov must be True or False, got 1 \(int\)$"):
        v.check_flag("SGD", "nesterov", 1)


def test_check_choice() -> None:
    assert v.check_choice("f", "pad", "pre", ("pre", "post")) == "pre"
    with pytest.raises(SpecError, match=re.escape("f.pad must be one of ('pre', 'post'), got 'x'")):
        v.check_choice("f", "pad", "x", ("pre", "post"))


def test_number_checks_normalise_and_refuse() -> None:
    assert v.check_number("f", "x", np.float32(0.5)) == 0.5
    assert type(v.check_number("f", "x", 2)) is float
    assert v.check_number("f", "x", math.inf) == math.inf
    assert v.check_positive("f", "x", 1e-3) == 1e-3
    assert v.check_non_negative("f", "x", 0) == 0.0
    assert v.check_unit_interval("f", "x", 0.0) == 0.0
    assert v.check_probability("f", "x", 1) == 1.0
    cases: list[tuple[Any, object, type[Exception], str]] = [
        (v.check_number, True, TypeError, "f.x must be a number, got True (bool)"),
        (v.check_number, "1", TypeError, "f.x must be a number, got '1' (str)"),
        (v.check_number, math.nan, SpecError, "f.x must be a number, got nan"),
        (v.check_positive, 0, SpecError, "f.x must be > 0 and finite, got 0"),
        (v.check_positive, math.inf, SpecError, "f.x must be > 0 and finite, got inf"),
        (v.check_non_negative, -0.5, SpecError, "f.x must be >= 0 and finite, got -0.5"),
        (v.check_unit_interval, 1.0, SpecError, "f.x must be in [0, 1), got 1.0"),
        (v.check_probability, 1.5, SpecError, "f.x must be in [0, 1], got 1.5"),
        (v.check_probability, "0.5", TypeError, "f.x must be a float in [0, 1], got '0.5' (str)"),
    ]
    for check, value, error, message in cases:
        with pytest.raises(error, match=f"^{re.escape(message)}$"):
            check("f", "x", value)


def test_array_checks() -> None:
    a = np.zeros(3)
    assert v.check_float_array("mse", "input", a) is a
    ids = np.zeros(3, np.uint8)
    assert v.check_int_array("generate", "prompt", ids) is ids
    with pytest.raises(TypeError, match=r"^mse\.input must be a float numpy array, got list$"):
        v.check_float_array("mse", "input", [0.0])
    with pytest.raises(
        TypeError, match=r"^generate\.prompt must be an integer numpy array, got float64 array$"
    ):
        v.check_int_array("generate", "prompt", a)


def test_node_names() -> None:
    assert v.check_optional_node_name("Tanh", "name", None) is None
    assert v.check_optional_node_name("Tanh", "name", "act") == "act"
    with pytest.raises(TypeError, match=r"^Tanh\.name must be a non-empty string, got 3 \(int\)$"):
        v.check_optional_node_name("Tanh", "name", 3)
    with pytest.raises(SpecError, match="'<input>' is reserved"):
        v.check_optional_node_name("Tanh", "name", "<input>")
    with pytest.raises(SpecError, match="lone surrogate"):
        v.check_node_name("a\ud800")


@pytest.mark.parametrize(("name", "index"), [("a\x00b", 1), ("\n", 0), ("x\x85", 1)])
def test_node_names_with_control_characters_are_refused(name: str, index: int) -> None:
    message = (
        f"the node name {name!r} has a control character {name[index]!r} at index {index}, "
        "which files, code and diagrams cannot show; choose another name"
    )
    with pytest.raises(SpecError, match="^" + re.escape(message) + "$"):
        v.check_node_name(name)


def test_node_names_longer_than_the_limit_are_refused() -> None:
    v.check_node_name("a" * v.MAX_NODE_NAME_LENGTH)
    message = (
        f"the node name '{'a' * 76}... has {v.MAX_NODE_NAME_LENGTH + 1} characters, more than "
        f"the {v.MAX_NODE_NAME_LENGTH} a node name may have; choose a shorter name"
    )
    with pytest.raises(SpecError, match="^" + re.escape(message) + "$"):
        v.check_node_name("a" * (v.MAX_NODE_NAME_LENGTH + 1))


@attrs.define
class _Owner:
    size: int = attrs.field(validator=v.positive_int)
    axis: int = attrs.field(default=0, validator=v.non_negative_int)
    offset: int = attrs.field(default=0, validator=v.integer)
    p: float = attrs.field(default=0.0, validator=v.probability)
    on: bool = attrs.field(default=False, validator=v.flag)
    mode: str = attrs.field(default="a", validator=v.choice("a", "b"))
    name: str | None = attrs.field(default=None, validator=v.node_name)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"size": 0}, SpecError, "_Owner.size must be a positive int, got 0"),
        ({"size": 1, "axis": -1}, SpecError, "_Owner.axis must be an int >= 0, got -1"),
        ({"size": 1, "offset": 0.5}, TypeError, "_Owner.offset must be an int, got 0.5 (float)"),
        ({"size": 1, "p": 2}, SpecError, "_Owner.p must be in [0, 1], got 2"),
        ({"size": 1, "on": "y"}, TypeError, "_Owner.on must be True or False, got 'y' (str)"),
        ({"size": 1, "mode": "c"}, SpecError, "_Owner.mode must be one of ('a', 'b'), got 'c'"),
        (
            {"size": 1, "name": ""},
            TypeError,
            "_Owner.name must be a non-empty string, got '' (str)",
        ),
    ],
)
def test_attrs_validators_name_class_and_field(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        _Owner(**kwargs)


def test_attrs_validators_accept_valid_values_and_have_names() -> None:
    owner = _Owner(size=np.int64(2), p=np.float32(0.5), on=np.bool_(False), name="x")
    assert owner.size == 2
    assert v.positive_int.__name__ == "positive_int"
    assert v.choice("a").__name__ == "choice"


def test_spec_module_keeps_exporting_the_validators() -> None:
    for name in (
        "positive_int",
        "non_negative_int",
        "probability",
        "flag",
        "node_name",
        "check_node_name",
        "RESERVED_NAMES",
    ):
        assert getattr(spec_module, name) is getattr(v, name)
