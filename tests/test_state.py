"""state_dict / load_state_dict: PyTorch names, copies, strictness, all-or-nothing loading."""

from __future__ import annotations

import re

import numpy as np
import pytest

import specchain as sc
from specchain.modules import Linear, Reverse, Tanh, TimeDistributed


@pytest.fixture
def model() -> sc.SpecChain:
    return Reverse() >> Linear(4, 3) >> Tanh() >> Linear(3, 2)


def snapshot(chain: sc.SpecChain) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in chain.named_parameters().items()}


def assert_unchanged(chain: sc.SpecChain, before: dict[str, np.ndarray]) -> None:
    after = chain.named_parameters()
    assert list(after) == list(before)
    for key, value in before.items():
        assert after[key].dtype == value.dtype
        np.testing.assert_array_equal(after[key], value)


def test_state_dict_keys_shapes_and_dtypes(model: sc.SpecChain) -> None:
    sd = model.state_dict()
    assert list(sd) == ["linear.weight", "linear.bias", "linear_1.weight", "linear_1.bias"]
    assert sd["linear.weight"].shape == (3, 4)  # PyTorch layout [out, in]
    assert sd["linear_1.bias"].shape == (2,)
    assert all(v.dtype == np.float32 for v in sd.values())


def test_state_dict_returns_copies(model: sc.SpecChain) -> None:
    before = snapshot(model)
    sd = model.state_dict()
    for key, value in sd.items():
        assert value is not model.named_parameters()[key]
        value[...] = 99.0
    sd["linear.weight"] = np.zeros((3, 4), dtype=np.float32)
    del sd["linear.bias"]
    assert_unchanged(model, before)
    assert list(model.state_dict()) == list(before)


def test_shared_spec_is_listed_once() -> None:
    lin = Linear(4, 4, name="lin")
    m = lin >> Tanh() >> lin >> TimeDistributed(Linear(4, 2))
    assert list(m.state_dict()) == [
        "lin.weight",
        "lin.bias",
        "time_distributed.weight",
        "time_distributed.bias",
    ]


def test_load_state_dict_round_trip_between_models(model: sc.SpecChain) -> None:
    sc.seed(7)
    other = Reverse() >> Linear(4, 3) >> Tanh() >> Linear(3, 2)
    x = np.random.default_rng(0).standard_normal((3, 2, 4)).astype(np.float32)
    assert not np.array_equal(model(x), other(x))
    other.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(model(x), other(x))


def test_loaded_arrays_are_copied_in(model: sc.SpecChain) -> None:
    sd = model.state_dict()
    sd["linear.weight"] = np.ones((3, 4), dtype=np.float32)
    model.load_state_dict(sd)
    sd["linear.weight"][0, 0] = 7.0  # the caller keeps its array; the model keeps its own
    assert model.named_parameters()["linear.weight"][0, 0] == 1.0


def test_loading_into_a_shared_spec_updates_every_use() -> None:
    lin = Linear(3, 3, name="lin")
    m = lin >> Tanh() >> lin
    sd = m.state_dict()
    sd["lin.weight"] = np.eye(3, dtype=np.float32)
    m.load_state_dict(sd)
    assert m.spec("lin_1").params["weight"] is m.spec("lin").params["weight"]
    np.testing.assert_array_equal(m.spec("lin_1").params["weight"], np.eye(3))


def test_missing_and_unexpected_keys_reported_together(model: sc.SpecChain) -> None:
    before = snapshot(model)
    sd = model.state_dict()
    del sd["linear.bias"]
    sd["linear_2.weight"] = np.zeros((2, 2), dtype=np.float32)
    sd["linear.weight"] = sd["linear.weight"] + 1.0  # a valid change that must not be applied
    with pytest.raises(sc.StateDictError) as info:
        model.load_state_dict(sd)
    assert str(info.value) == (
        "load_state_dict failed:\n"
        "  missing keys: ['linear.bias']\n"
        "  unexpected keys: ['linear_2.weight']"
    )
    assert_unchanged(model, before)


def test_shape_mismatch_names_the_key(model: sc.SpecChain) -> None:
    before = snapshot(model)
    sd = model.state_dict()
    sd["linear_1.weight"] = np.zeros((2, 4), dtype=np.float32)
    with pytest.raises(
        sc.StateDictError, match=re.escape("linear_1.weight: shape [2, 4] != expected [2, 3]")
    ):
        model.load_state_dict(sd)
    assert_unchanged(model, before)


def test_dtype_mismatch_names_the_key_and_the_fix(model: sc.SpecChain) -> None:
    before = snapshot(model)
    sd = model.state_dict()
    sd["linear.bias"] = sd["linear.bias"].astype(np.float64)
    msg = (
        "linear.bias: dtype float64 != the model's float32; cast the array with "
        ".astype(np.float32) or the model with model.to(np.float64)"
    )
    with pytest.raises(sc.StateDictError, match=re.escape(msg)):
        model.load_state_dict(sd)
    assert_unchanged(model, before)


def test_integer_arrays_are_not_told_to_cast_the_model(model: sc.SpecChain) -> None:
    sd = model.state_dict()
    sd["linear.weight"] = np.zeros((3, 4), dtype=np.int64)
    with pytest.raises(sc.StateDictError) as info:
        model.load_state_dict(sd)
    assert "linear.weight: dtype int64 != the model's float32; cast the array with " in str(
        info.value
    )
    assert "model.to" not in str(info.value)


def test_every_problem_is_listed(model: sc.SpecChain) -> None:
    before = snapshot(model)
    sd = model.state_dict()
    del sd["linear_1.bias"]
    sd["extra"] = np.zeros(1)
    sd["linear.weight"] = np.zeros((4, 3), dtype=np.float32)
    sd["linear.bias"] = np.zeros(3, dtype=np.float64)
    with pytest.raises(sc.StateDictError) as info:
        model.load_state_dict(sd)
    lines = str(info.value).splitlines()
    assert lines[0] == "load_state_dict failed:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "missing keys",
        "unexpected keys",
        "linear.weight",
        "linear.bias",
    ]
    assert_unchanged(model, before)


def test_strict_false_tolerates_missing_and_unexpected(model: sc.SpecChain) -> None:
    before = snapshot(model)
    new_weight = np.full((3, 4), 0.5, dtype=np.float32)
    model.load_state_dict({"linear.weight": new_weight, "other.weight": np.zeros(2)}, strict=False)
    after = model.named_parameters()
    np.testing.assert_array_equal(after["linear.weight"], new_weight)
    for key in ("linear.bias", "linear_1.weight", "linear_1.bias"):
        np.testing.assert_array_equal(after[key], before[key])


def test_strict_false_still_checks_shapes_and_dtypes(model: sc.SpecChain) -> None:
    before = snapshot(model)
    with pytest.raises(sc.StateDictError, match=re.escape("linear.weight: shape [4, 3]")):
        model.load_state_dict({"linear.weight": np.zeros((4, 3), dtype=np.float32)}, strict=False)
    with pytest.raises(sc.StateDictError, match=re.escape("linear.bias: dtype float64")):
        model.load_state_dict({"linear.bias": np.zeros(3)}, strict=False)
    assert_unchanged(model, before)


def test_float64_model_takes_float64_arrays(model: sc.SpecChain) -> None:
    sd32 = model.state_dict()
    model.to(np.float64)
    with pytest.raises(sc.StateDictError, match="dtype float32 != the model's float64"):
        model.load_state_dict(sd32)
    model.load_state_dict({k: v.astype(np.float64) for k, v in sd32.items()})
    assert model.dtype == np.float64


def test_array_likes_are_accepted(model: sc.SpecChain) -> None:
    sd = {k: v.tolist() for k, v in model.state_dict().items()}  # nested lists become float64
    with pytest.raises(sc.StateDictError, match="dtype float64"):
        model.load_state_dict(sd)
    model.to(np.float64)
    model.load_state_dict(sd)
    np.testing.assert_array_equal(model.named_parameters()["linear.weight"], sd["linear.weight"])


def test_state_dict_error_is_a_spec_error() -> None:
    assert issubclass(sc.StateDictError, sc.SpecError)
