"""Loading models with the user's own layers: kinds by qualified name, ``sc.load(custom=...)``,
and the error that names the module to import."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

import specchain as sc
from specchain.modules import Linear as BuiltinLinear
from specchain.modules import Tanh
from specchain.modules.activation import Elementwise
from specchain.saving import ARCHITECTURE_KEY, UnknownKindError
from specchain.spec import Context, Params, kind_key
from specchain.types import DimEnv, Type
from tests.user_code import run_python, save_from_a_script, save_with_layers, write_layers


@attrs.define(eq=False)
class Linear(sc.NNModuleSpec):
    """A user layer sharing its short name with the built-in on purpose: y = x + 1, any shape."""

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return in_type

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, None]:
        return x + 1.0, None

    def backward(self, params: Params, saved: None, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        return dy, {}


BUILTIN = "specchain.modules.linear.Linear"


def stored_kinds(path: Path) -> list[str]:
    with safe_open(path, framework="np") as data:
        architecture = json.loads(data.metadata()[ARCHITECTURE_KEY])
    return [node["kind"] for node in architecture["nodes"]]


def with_kinds(path: Path, kinds: list[str], out: Path) -> Path:
    """A copy of the model file at ``path`` whose nodes name ``kinds``."""
    with safe_open(path, framework="np") as data:
        metadata = data.metadata()
        arrays = {key: data.get_tensor(key) for key in data.keys()}  # noqa: SIM118
    architecture: dict[str, Any] = json.loads(metadata[ARCHITECTURE_KEY])
    for node, kind in zip(architecture["nodes"], kinds, strict=True):
        node["kind"] = kind
    metadata[ARCHITECTURE_KEY] = json.dumps(architecture)
    save_file(arrays, out, metadata=metadata)
    return out


# --- a user Linear beside the built-in ----------------------------------------------------------


def test_user_linear_does_not_break_the_builtin(tmp_path: Path, rng: np.random.Generator) -> None:
    assert kind_key(Linear) != BUILTIN
    path = tmp_path / "builtin.safetensors"
    model = BuiltinLinear(3, 4) >> Tanh()
    model.save(path)
    assert stored_kinds(path)[0] == BUILTIN
    for custom in ([], [Linear]):
        loaded = sc.load(path, custom=custom)
        assert type(loaded.spec("linear")) is BuiltinLinear
        x = rng.standard_normal((2, 3)).astype(np.float32)
        np.testing.assert_array_equal(loaded(x), model(x))


def test_user_linear_round_trips_beside_the_builtin(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    path = tmp_path / "both.safetensors"
    model = BuiltinLinear(3, 4) >> Linear(name="mine")
    model.save(path)
    assert stored_kinds(path) == [BUILTIN, kind_key(Linear)]
    loaded = sc.load(path)
    assert type(loaded.spec("linear")) is BuiltinLinear
    assert type(loaded.spec("mine")) is Linear
    x = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))


def test_old_short_kind_is_the_builtin_even_with_a_user_linear(tmp_path: Path) -> None:
    path = tmp_path / "new.safetensors"
    (BuiltinLinear(3, 4) >> Tanh()).save(path)
    old = with_kinds(path, ["Linear", "Tanh"], tmp_path / "old.safetensors")
    assert type(sc.load(old, custom=[Linear]).spec("linear")) is BuiltinLinear


@attrs.define(eq=False)
class PlusOne(Linear):
    """A user layer whose short name no built-in has."""


def test_an_older_files_short_user_kind_is_the_one_imported_class(tmp_path: Path) -> None:
    """Files written before kinds were qualified name a user layer by class name only."""
    path = tmp_path / "new.safetensors"
    (BuiltinLinear(3, 4) >> PlusOne()).save(path)
    old = with_kinds(path, ["Linear", "PlusOne"], tmp_path / "old.safetensors")
    for custom in ([], [PlusOne]):
        loaded = sc.load(old, custom=custom)
        assert type(loaded.spec("linear")) is BuiltinLinear
        assert type(loaded.spec("plus_one")) is PlusOne


# --- custom= --------------------------------------------------------------------------------


def test_a_kind_saved_from_a_script_loads_with_custom(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    (BuiltinLinear(3, 4) >> Linear(name="mine")).save(path)
    scripted = with_kinds(path, [BUILTIN, "__main__.Linear"], tmp_path / "scripted.safetensors")
    message = (
        f"{scripted}: key '__specchain__': unknown spec kind '__main__.Linear': the class Linear "
        "was defined in the script that saved the file (module __main__), so no import finds it; "
        "pass the class, from the module that defines it now: sc.load(path, custom=[Linear])"
    )
    with pytest.raises(UnknownKindError, match="^" + re.escape(message) + "$") as info:
        sc.load(scripted)
    assert (info.value.kind, info.value.module) == ("__main__.Linear", "__main__")
    loaded = sc.load(scripted, custom=[Linear])
    assert type(loaded.spec("linear")) is BuiltinLinear  # a built-in is never matched by name
    assert type(loaded.spec("mine")) is Linear


def test_two_custom_classes_of_one_name_are_ambiguous(tmp_path: Path) -> None:
    def make() -> type[sc.NNModuleSpec]:
        @attrs.define(eq=False)
        class Twin(Linear):
            pass

        return Twin

    path = tmp_path / "model.safetensors"
    make()().as_chain().save(path)
    scripted = with_kinds(path, [f"__main__.{make().__qualname__}"], tmp_path / "twin.safetensors")
    with pytest.raises(sc.ModelFileError, match=r"matches 2 classes of custom by name: .*Twin"):
        sc.load(scripted, custom=[make(), make()])


@pytest.mark.parametrize(
    ("custom", "message"),
    [
        (
            [3],
            r"^custom\[0\] must be a layer class \(a subclass of specchain.NNModuleSpec\), got 3$",
        ),
        ([Linear, dict], r"^custom\[1\] must be a layer class .*, got the class dict$"),
        ([Tanh()], r"^custom\[0\] must be a layer class, got an instance of Tanh; pass the class"),
        ([Elementwise], r"^custom\[0\] is specchain.modules.activation.Elementwise, a base class"),
        (Linear, r"^custom must be a list of layer classes, such as custom=\[LayerNorm\], got"),
        ("Linear", r"^custom must be a list of layer classes"),
    ],
)
def test_custom_entries_must_be_layer_classes(tmp_path: Path, custom: Any, message: str) -> None:
    path = tmp_path / "model.safetensors"
    BuiltinLinear(3, 4).as_chain().save(path)
    with pytest.raises(TypeError, match=message):
        sc.load(path, custom=custom)


def test_an_unknown_short_kind_lists_few_known_kinds(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    BuiltinLinear(3, 4).as_chain().save(path)
    bogus = with_kinds(path, ["Bogus"], tmp_path / "bogus.safetensors")
    with pytest.raises(UnknownKindError, match="no built-in layer has this name") as info:
        sc.load(bogus)
    listed = str(info.value).partition("known kinds: ")[2]
    assert "'Linear'" in listed and len(re.findall(r"'[^']*'", listed)) <= 24


def test_a_missing_class_of_an_imported_module(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    BuiltinLinear(3, 4).as_chain().save(path)
    gone = with_kinds(path, ["specchain.modules.linear.Gone"], tmp_path / "gone.safetensors")
    with pytest.raises(
        UnknownKindError,
        match=re.escape(
            "module 'specchain.modules.linear' is imported but has no spec class 'Gone'"
        ),
    ):
        sc.load(gone)


# --- a fresh process, as a user meets it --------------------------------------------------------

LOAD = """
import sys
import specchain as sc
{setup}
model = sc.load(sys.argv[1]{custom})
print(type(model.spec("scale")).__module__, type(model.spec("scale")).__qualname__)
"""


def test_loading_in_a_fresh_process_names_the_module_to_import(tmp_path: Path) -> None:
    saved = save_with_layers(tmp_path)
    lib = tmp_path / "lib"

    def load(setup: str = "", custom: str = "") -> Any:
        code = LOAD.format(setup=setup, custom=custom)
        return run_python("-c", code, str(saved), cwd=tmp_path, path=(lib,))

    failed = load()
    assert failed.returncode == 1
    message = (
        f"specchain.saving.UnknownKindError: {saved}: key '__specchain__': unknown spec kind "
        "'mylayers.Scale': it was saved from module 'mylayers', which is not imported; import "
        "mylayers first, or pass sc.load(path, custom=[Scale])"
    )
    assert failed.stderr.splitlines()[-1] == message
    imported = load(setup="import mylayers")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["mylayers", "Scale"]
    passed = load(setup="from mylayers import Scale", custom=", custom=[Scale]")
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.split() == ["mylayers", "Scale"]


def test_a_layer_saved_from_a_script_loads_from_its_module_with_custom(tmp_path: Path) -> None:
    saved = save_from_a_script(tmp_path)
    assert stored_kinds(saved) == [BUILTIN, "__main__.Scale"]
    lib = tmp_path / "lib"
    write_layers(lib)
    setup = "from mylayers import Scale"
    code = LOAD.format(setup=setup, custom="")
    without = run_python("-c", code, str(saved), cwd=tmp_path, path=(lib,))
    assert without.returncode == 1
    assert "was defined in the script that saved the file" in without.stderr.splitlines()[-1]
    code = LOAD.format(setup=setup, custom=", custom=[Scale]")
    passed = run_python("-c", code, str(saved), cwd=tmp_path, path=(lib,))
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.split() == ["mylayers", "Scale"]
