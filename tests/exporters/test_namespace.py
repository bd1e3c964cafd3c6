"""The identifier namespace: every name the exporter writes is a safe, unique Python identifier."""

from __future__ import annotations

import builtins
import keyword

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from specchain.exporters.pytorch.namespace import (
    FILE_NAMES,
    MAX_LENGTH,
    MODULE_ATTRIBUTES,
    Namespace,
    is_identifier,
)


def assert_safe(name: str) -> None:
    assert name.isidentifier(), name
    assert name.isascii(), name
    assert not keyword.iskeyword(name), name
    assert not name.startswith("__"), name
    assert name not in dir(builtins), name
    assert name not in FILE_NAMES | MODULE_ATTRIBUTES, name


@pytest.mark.parametrize("word", keyword.kwlist)
def test_keywords_get_a_suffix(word: str) -> None:
    made = Namespace().create(word)
    assert_safe(made)
    assert made == f"{word}_1"


@pytest.mark.parametrize("name", ["print", "len", "super", "object", "type", "id", "list"])
def test_builtins_are_never_shadowed(name: str) -> None:
    made = Namespace().create(name)
    assert made == f"{name}_1"


@pytest.mark.parametrize("name", sorted(FILE_NAMES))
def test_the_files_own_names_are_reserved(name: str) -> None:
    assert Namespace().create(name) == f"{name}_1"


def test_every_nn_module_attribute_is_reserved() -> None:
    """Any attribute of a live ``nn.Module`` (``training``, ``to``, ``_parameters`` ...): the
    identifier made from it is not an attribute, so ``self.<identifier> = ...`` breaks nothing."""
    module = torch.nn.Module()
    attributes = set(dir(module)) | set(vars(module))
    names = Namespace()
    for attribute in sorted(attributes):
        made = names.create(attribute)
        assert made not in attributes, (attribute, made)
        assert_safe(made)


def test_reserved_argument_is_honoured() -> None:
    names = Namespace(reserved={"Model", "Reverse"})
    assert names.create("Model") == "Model_1"
    assert names.create("Reverse") == "Reverse_1"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1abc", "node_1abc"),
        ("123", "node_123"),
        ("_1", "node_1"),
        ("lstm 1", "lstm_1"),
        ("a-b", "a_b"),
        ("  spaced  out  ", "spaced_out"),
        ("__init__", "init"),
        ("__import__('os')", "import___os"),
    ],
)
def test_sanitize(raw: str, expected: str) -> None:
    assert Namespace.sanitize(raw) == expected


@pytest.mark.parametrize("raw", ["", "_", "__", "!!!", "   ", "\x00\n\t", "é", "名前", "🙂"])
def test_empty_after_cleaning_uses_the_fallback(raw: str) -> None:
    names = Namespace()
    assert names.create(raw) == "node"
    assert names.create(raw) == "node_1"
    assert names.create(raw, fallback="x0") == "x0"


def test_unicode_is_replaced_and_ascii_kept() -> None:
    names = Namespace()
    assert names.create("lstm→1") == "lstm_1"
    assert names.create("encodeur_é") == "encodeur"
    assert names.create("ａｂｃ") == "node"  # fullwidth letters are not ASCII


def test_names_that_collide_after_cleaning_are_told_apart() -> None:
    names = Namespace()
    made = [names.create(n) for n in ("a-b", "a_b", "a b", "a.b", "a+-b")]
    assert made == ["a_b", "a_b_1", "a_b_2", "a_b_3", "a_b_4"]


def test_a_suffix_never_reuses_a_name_taken_literally() -> None:
    names = Namespace()
    assert names.create("a_1") == "a_1"
    assert names.create("a") == "a"
    assert names.create("a") == "a_2"
    assert names.create("a_2") == "a_2_1"


def test_long_names_are_truncated_and_stay_unique() -> None:
    names = Namespace()
    first = names.create("a" * 10_000)
    second = names.create("a" * 9_999 + "b")  # differs only after the cut
    third = names.create("a" * 10_000)
    assert len(first) == MAX_LENGTH
    assert len({first, second, third}) == 3
    for made in (first, second, third):
        assert_safe(made)
        assert len(made) <= MAX_LENGTH + 4


def test_truncation_never_leaves_a_trailing_underscore() -> None:
    made = Namespace().create("a" * (MAX_LENGTH - 1) + "_" + "b" * 10)
    assert made == "a" * (MAX_LENGTH - 1)


def test_is_identifier() -> None:
    assert is_identifier("Seq2Seq")
    assert not is_identifier("class")
    assert not is_identifier("2model")
    assert not is_identifier("my model")
    assert not is_identifier("")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), max_size=30))
def test_any_names_give_distinct_safe_identifiers(raw: list[str]) -> None:
    names = Namespace(reserved={"Model"})
    made = [names.create(n) for n in raw]
    assert len(set(made)) == len(made)
    for name in made:
        assert_safe(name)
        assert name != "Model"
