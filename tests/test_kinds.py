"""The kind registry walk: every built-in layer declares its diagram family and an export decision
(a PyTorch emitter or a stated reason it has none). A new layer that forgets either fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import attrs
import pytest

import specchain.models  # registers the kinds the zoo uses, like a user importing it
import specchain.modules
from specchain.exporters import pytorch
from specchain.modules import Identity
from specchain.spec import SPEC_KINDS, NNModuleSpec, kind_key, lookup_kind
from specchain.types import SpecError

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


LAYER_SOURCE = '''
import attrs
from specchain.modules import Identity


@attrs.define(eq=False)
class Marker(Identity):
    """Version {n}."""
'''


def import_as(name: str, path: Path) -> None:
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module_spec.loader.exec_module(importlib.util.module_from_spec(module_spec))


def test_two_user_classes_with_one_qualified_name_are_an_error_naming_both(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "a" / "clashing_layers.py", tmp_path / "b" / "clashing_layers.py"
    for n, path in enumerate((first, second)):
        path.parent.mkdir()
        path.write_text(LAYER_SOURCE.format(n=n) + "\n" * n, encoding="utf-8")
    import_as("clashing_layers", first)
    try:
        with pytest.raises(SpecError) as info:
            import_as("clashing_layers", second)
        message = str(info.value)
        assert message.startswith("two spec classes share the kind 'clashing_layers.Marker': ")
        assert f"{first}:" in message and f"{second}:" in message
        assert "rename one of them" in message
    finally:
        SPEC_KINDS.pop("clashing_layers.Marker", None)


def test_a_user_class_named_like_a_built_in_lives_beside_it() -> None:
    @attrs.define(eq=False)
    class Linear(Identity):
        pass

    assert lookup_kind("Linear") is specchain.modules.Linear
    assert lookup_kind(kind_key(Linear)) is Linear
    assert kind_key(specchain.modules.Linear) == "specchain.modules.linear.Linear"
