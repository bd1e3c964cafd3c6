"""``summary(input_shape=...)``: concrete shapes per node and memory, like torchinfo's
``input_size=``; its bad inputs are refused with a fitting example."""

from __future__ import annotations

import re

import numpy as np
import pytest

import specchain as sc
from specchain.models import ZOO
from specchain.modules import LSTM, LastStep, Linear
from specchain.summary import bind_shape, human_bytes, nbytes
from specchain.types import ShapeError, TensorType, TupleType


def rows(text: str) -> dict[str, list[str]]:
    """The table's rows by node name, cells split on runs of two or more spaces."""
    lines = text.splitlines()
    body = lines[2 : lines.index(lines[1], 2)]
    return {cells[0]: cells for cells in (re.split(r"\s{2,}", line.strip()) for line in body)}


def test_concrete_shapes_per_node_and_memory_in_the_models_dtype() -> None:
    sc.seed(0)
    model = LSTM(8, 32) >> LastStep() >> Linear(32, 3, name="head")
    text = model.summary(input_shape=(20, 4, 8))
    table = rows(text)
    assert table["lstm"][2:5] == ["[20, 4, 8]", "[20, 4, 32]", "5,376"]
    assert table["last_step"][2:4] == ["[20, 4, 32]", "[4, 32]"]
    assert table["head"][2:4] == ["[4, 32]", "[4, 3]"]
    assert table["lstm"][-1] == human_bytes(20 * 4 * 32 * 4) == "10.0 KiB"
    activations = (20 * 4 * 32 + 4 * 32 + 4 * 3) * 4
    assert f"activation memory: {human_bytes(activations)} (every node's output, float32)" in text
    assert f"parameter memory: {human_bytes(model.num_params * 4)}" in text
    assert f"input memory: {human_bytes(20 * 4 * 8 * 4)}" in text
    doubled = model.to(np.float64).summary(input_shape=(20, 4, 8))
    assert f"parameter memory: {human_bytes(model.num_params * 8)}" in doubled
    assert "float64" in doubled
    assert "[T, B, 8]" in model.summary()  # without input_shape: symbolic, as before
    assert "memory" not in model.summary()


def test_tuple_and_integer_inputs() -> None:
    attention = ZOO["attention_seq2seq"].build()
    text = attention.summary(input_shape=((12, 4, 8), (10, 4, 8)))
    assert "(source: [12, 4, 8], decoder_inputs: [10, 4, 8])" in text
    assert rows(text)["attention"][3] == "[10, 4, 4]"
    lm = ZOO["language_model"].build()
    text = lm.summary(input_shape=(20, 4))
    assert rows(text)["embedding"][2:4] == ["int[20, 4]", "[20, 4, 64]"]
    assert "input memory: 640 B" in text  # token ids count as int64


def test_nbytes_and_human_bytes() -> None:
    pair = TupleType((TensorType((2, 3)), TensorType((4,), "int"), TensorType((5,), "bool")))
    assert nbytes(pair, 4) == 2 * 3 * 4 + 4 * 8 + 5
    assert [human_bytes(n) for n in (0, 1023, 1024, 1536 * 1024, 3 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 MiB",
        "3.0 GiB",
    ]
    with pytest.raises(ShapeError, match=r"cannot count the bytes of \[T, 2\]"):
        nbytes(TensorType(("T", 2)), 4)


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        (
            (20, 4),
            r"input_shape \(20, 4\) does not fit the input \[T, B, 8\]: give 3 sizes .*"
            r"e\.g\. \(20, 4, 8\)",
        ),
        ((20, 4, 9), r"size 9 where the model needs 8; e\.g\. \(20, 4, 8\)"),
        ((20, -1, 8), r"non-negative ints"),
        ((20, 4.0, 8), r"non-negative ints"),
        ("20,4,8", r"give 3 sizes"),
    ],
)
def test_bad_input_shapes_say_what_fits(shape: object, match: str) -> None:
    model = LSTM(8, 16) >> Linear(16, 2)
    with pytest.raises(ShapeError, match=match):
        model.summary(input_shape=shape)


def test_a_tuple_input_needs_one_shape_per_item_and_one_size_per_symbol() -> None:
    attention = ZOO["attention_seq2seq"].build()
    with pytest.raises(
        ShapeError,
        match=r"give one shape per item \(2\), e\.g\. "
        r"\(\(12, 4, 8\), \(20, 4, 8\)\)",
    ):
        attention.summary(input_shape=(12, 4, 8))
    with pytest.raises(ShapeError, match="batch"):  # B = 4 for the source, 5 for the decoder
        attention.summary(input_shape=((12, 4, 8), (10, 5, 8)))


def test_bind_shape_keeps_item_names() -> None:
    t = TupleType((TensorType(("S", "B", 3)), TensorType(("T", "B", 3))), ("a", "b"))
    bound = bind_shape(t, [(2, 1, 3), (4, 1, 3)])
    assert str(bound) == "(a: [2, 1, 3], b: [4, 1, 3])"
