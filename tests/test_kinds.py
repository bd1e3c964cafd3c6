"""The kind registry walk: every built-in layer declares its diagram family and an export decision
(a PyTorch emitter or a stated reason it has none). A new layer that forgets either fails here."""

from __future__ import annotations

import pytest

import specchain.models  # registers the kinds the zoo uses, like a user importing it
import specchain.modules
from specchain.exporters import pytorch
from specchain.spec import SPEC_KINDS, NNModuleSpec, kind_key, lookup_kind

BUILT_IN = {key: cls for key, cls in SPEC_KINDS.items() if key.startswith("specchain.")}


def test_the_walk_sees_every_layer_of_the_package() -> None:
    expected = {*specchain.modules.__all__} - {"LSTMGateParams", "LSTMGrads", "LinearGrads"}
    expected |= {"OneHot", "AttentionLSTM"}
    assert expected <= {cls.__qualname__ for cls in BUILT_IN.values()}


@pytest.mark.parametrize("key", sorted(BUILT_IN))
def test_kind_is_keyed_by_its_qualified_name(key: str) -> None:
    cls = BUILT_IN[key]
    assert issubclass(cls, NNModuleSpec)
    assert kind_key(cls) == key
    assert lookup_kind(key) is cls
    assert lookup_kind(cls.__qualname__) is cls  # old model files name built-ins short


@pytest.mark.parametrize("key", sorted(BUILT_IN))
def test_kind_declares_its_family(key: str) -> None:
    family = BUILT_IN[key].family
    assert isinstance(family, str) and family.isidentifier(), f"{key}: family {family!r}"


@pytest.mark.parametrize("key", sorted(BUILT_IN))
def test_kind_has_an_export_decision(key: str) -> None:
    decision = pytorch.EMITTERS.get(BUILT_IN[key])
    assert isinstance(decision, (pytorch.Emitter, pytorch.NoTwin)), (
        f"{key} has neither a PyTorch emitter nor a no_torch_twin reason; add "
        f"@pytorch.emitter({BUILT_IN[key].__qualname__}) in its file"
    )
    if isinstance(decision, pytorch.NoTwin):
        assert decision.reason.strip()


def test_pointwise_built_ins_are_the_last_axis_layers() -> None:
    """Last-axis layers map over time as they are; layers that read time never claim to."""
    pointwise = set(pytorch.pointwise_kinds())
    assert {"Identity", "Linear", "ReLU", "ScaledDropout", "Sigmoid", "Tanh"} <= pointwise
    time_aware = {"LSTM", "LSTMCell", "Reverse", "LastStep", "TimeDistributed", "AttentionLSTM"}
    assert not pointwise & (time_aware | {"Concat", "Add", "Select", "Pack", "Embedding"})
