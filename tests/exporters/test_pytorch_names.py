"""Hostile node and class names: the generated file always parses, every identifier in it is
unique, it calls and imports only what an audit allows, user text never becomes code, and the
module still matches the spec."""

from __future__ import annotations

import ast
import builtins
import importlib.util
import io
import subprocess
import sys
import tokenize
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specchain as sc
from specchain.examples import example_input
from specchain.exporters import pytorch
from specchain.exporters.pytorch import (
    HELPER_CLASSES,
    ExportError,
    assign_names,
    build_torch_module,
    export,
    load_torch_state,
    verify,
)
from specchain.modules import LSTM, Concat, Linear, Reverse, Tanh
from specchain.spec import RESERVED_NAMES
from specchain.validate import MAX_NODE_NAME_LENGTH

ALLOWED_IMPORTS = {"__future__", "pathlib", "torch", "torch.nn", "torch.nn.functional"}
ALLOWED_IMPORTS |= {"warnings", "safetensors.torch"}  # no numpy: model.py needs torch alone
# callee allowlists, kept to what the exporter and torch_helpers actually write
CALLABLE_NAMES = {"super", "Path", "len", "range", "tuple", "zip", "load_file", "float"}
CALLABLE_NAMES |= {"type", "RuntimeError"}  # load_checkpoint's error
MODULE_FUNCTIONS = {
    "torch": {"flip", "cat", "zeros", "softmax", "einsum", "stack", "from_numpy", "tanh"}
    | {"arange", "where"},
    "nn": {"LSTM", "LSTMCell", "Linear", "Embedding", "Dropout", "Tanh", "Sigmoid", "ReLU"}
    | {"Identity"},
    "F": {"one_hot"},
    "warnings": {"warn"},
}
DOTTED_FUNCTIONS = {"torch.jit.is_tracing"}  # the attention decoder warns under tracing
DOTTED_FUNCTIONS |= {"nn.utils.rnn.pack_padded_sequence", "nn.utils.rnn.pad_packed_sequence"}
SELF_METHODS = {"register_buffer", "state_dict", "load_state_dict"}
# methods called on local values: tensors in the helpers, the set/list/module/Path in load()
VALUE_METHODS = {"select", "to", "expand_as", "long", "detach", "append", "pop"}
VALUE_METHODS |= {"load_state_dict", "eval", "with_name", "values", "items", "split"}
VALUE_METHODS |= {"endswith", "startswith"}  # load_checkpoint's key renaming
VALUE_METHODS |= {"view", "gather", "expand", "squeeze", "dim", "size", "cpu", "narrow"}  # lengths
DUNDERS = {"__file__", "__init__", "__name__"}
COMMENTS = {"# variable -> node name in the specchain graph"}
COMMENTS |= {"# same last name and shape: probably the same tensor"}  # in load_checkpoint

FIXED_NAMES = [
    "class",
    "None",
    "self",
    "forward",
    "torch",
    "nn",
    "F",
    "print",
    "__init__",
    "x",
    "load",
    "training",
]
MORE_NAMES = ["Model", "Reverse", "WEIGHTS", "NODE_NAMES", "np", "Path", "super", "__class__"]
MORE_NAMES += ["to", "state_dict", "_parameters", "__dict__", "lambda", "é", "名前", "1", "_"]


# --- the audit ---------------------------------------------------------------------------------


def audit(source: str, model: sc.SpecChain, class_name: str = "Model") -> None:
    """Parse ``source`` and check imports, calls, identifiers and comments."""
    tree = ast.parse(source)
    names = assign_names(model, class_name)
    helpers = [n.name for n in tree.body if isinstance(n, ast.ClassDef) and n.name != class_name]
    assert set(helpers) <= set(HELPER_CLASSES)
    allowed_names = CALLABLE_NAMES | {class_name, *helpers}

    for node in tree.body:
        assert isinstance(
            node, (ast.Expr, ast.Import, ast.ImportFrom, ast.Assign, ast.ClassDef, ast.FunctionDef)
        ), ast.dump(node)
        if isinstance(node, ast.Expr):  # only the module docstring
            assert node is tree.body[0] and isinstance(node.value, ast.Constant)

    self_attributes = {
        target.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "self"
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= ALLOWED_IMPORTS, ast.dump(node)
        elif isinstance(node, ast.ImportFrom):
            assert node.module in ALLOWED_IMPORTS and node.level == 0, ast.dump(node)
        elif isinstance(node, ast.Call):
            check_callee(node.func, allowed_names, self_attributes | SELF_METHODS)
        elif isinstance(node, ast.Name) and node.id.startswith("__"):
            assert node.id in DUNDERS, node.id
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            assert node.attr in DUNDERS, node.attr
        assert not isinstance(node, (ast.Lambda, ast.Global, ast.Nonlocal, ast.Delete)), node

    check_identifiers(tree, model, names, class_name, helpers)
    comments = [
        tok.string
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    ]
    assert set(comments) <= COMMENTS, comments  # user text never lands in a comment


def check_callee(func: ast.expr, allowed_names: set[str], self_attributes: set[str]) -> None:
    if isinstance(func, ast.Name):
        assert func.id in allowed_names, f"call of {func.id}"
        return
    assert isinstance(func, ast.Attribute), f"call of {ast.dump(func)}"
    receiver = func.value
    if isinstance(receiver, ast.Attribute):
        assert ast.unparse(func) in DOTTED_FUNCTIONS, f"call of {ast.unparse(func)}"
        return
    if isinstance(receiver, ast.Name) and receiver.id == "self":
        assert func.attr in self_attributes, f"call of self.{func.attr}"
    elif isinstance(receiver, ast.Name) and receiver.id in MODULE_FUNCTIONS:
        assert func.attr in MODULE_FUNCTIONS[receiver.id], f"call of {receiver.id}.{func.attr}"
    elif isinstance(receiver, ast.Call) and ast.unparse(receiver.func) == "super":
        assert func.attr == "__init__", f"call of super().{func.attr}"
    else:
        assert isinstance(receiver, (ast.Name, ast.Call)), ast.dump(func)
        if isinstance(receiver, ast.Name):
            assert receiver.id not in allowed_names, f"call of {receiver.id}.{func.attr}"
        assert func.attr in VALUE_METHODS, f"call of <value>.{func.attr}"


def check_identifiers(
    tree: ast.Module, model: sc.SpecChain, names: Any, class_name: str, helpers: list[str]
) -> None:
    """Attributes unique and as assigned; forward's variables unique, each assigned once, and
    clear of the file's globals and the builtins; NODE_NAMES maps them back to the nodes."""
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    init, forward, load_checkpoint = (n for n in cls.body if isinstance(n, ast.FunctionDef))
    assert (init.name, forward.name) == ("__init__", "forward")
    assert load_checkpoint.name == "load_checkpoint"
    attributes = [
        t.attr
        for stmt in init.body
        if isinstance(stmt, ast.Assign)
        for t in stmt.targets
        if isinstance(t, ast.Attribute)
    ]
    assert len(attributes) == len(set(attributes)), "an attribute is assigned twice"
    assert set(attributes) <= set(names.attribute.values())  # inline nodes have none
    assert not set(attributes) & set(dir(torch.nn.Module())), "an attribute shadows nn.Module"
    *steps, last = forward.body  # straight-line code: one assignment per node, then return
    assert isinstance(last, ast.Return)
    assert all(isinstance(s, ast.Assign) and len(s.targets) == 1 for s in steps)
    arguments = [a.arg for a in forward.args.args]
    assert arguments == ["self", *names.arguments]
    variables = [
        assigned(t) for stmt in forward.body if isinstance(stmt, ast.Assign) for t in stmt.targets
    ]
    assert len(variables) == len(model.nodes)
    assert len(set(variables)) == len(variables), "a variable is assigned twice"
    module_level = {class_name, *helpers, *pytorch.FILE_CONSTANTS, "np", "torch", "nn", "F"}
    module_level |= {"Path", "annotations", "INPUT_TYPE", "OUTPUT_TYPE"}
    for variable in [*variables, *arguments[1:]]:
        assert variable.isidentifier() and variable.isascii()
        assert variable not in module_level and variable not in dir(builtins), variable
        assert variable != "self"
    assert not set(variables) & set(arguments)
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and ast.unparse(stmt.targets[0]) == "NODE_NAMES":
            node_names = ast.literal_eval(stmt.value)
    assert node_names == {names.variable[n]: n for n in model.nodes}
    assert list(node_names) == variables


def assigned(target: ast.expr) -> str:
    """The variable an assignment binds: ``y = ...`` or ``y, _ = self.lstm(x)``."""
    if isinstance(target, ast.Tuple):
        first, *rest = target.elts
        assert all(isinstance(t, ast.Name) and t.id == "_" for t in rest), ast.dump(target)
        target = first
    assert isinstance(target, ast.Name), ast.dump(target)
    return target.id


def hostile_chain(*names: str) -> sc.SpecChain:
    """``Linear(4, 4, name=n1) >> Tanh(name=n2) >> Linear(4, 4, name=n3) >> ... >> Linear(4, 2)``"""
    specs = [Linear(4, 4, name=n) if i % 2 == 0 else Tanh(name=n) for i, n in enumerate(names)]
    return sc.serial(*specs[:-1], Linear(4, 2, name=names[-1])).to(np.float64)


def check_in_memory(model: sc.SpecChain, class_name: str = "Model") -> None:
    source = pytorch.to_source(model, class_name)
    audit(source, model, class_name)
    report = verify(model, class_name=class_name)  # executes the generated source
    assert report.within(1e-7, 1e-9), str(report)
    module = build_torch_module(model, class_name)
    assert type(module).__name__ == class_name
    load_torch_state(model, module, class_name)


def check_on_disk(model: sc.SpecChain, out: Path, class_name: str = "Model") -> Any:
    path = export(model, out, class_name=class_name)
    source = path.read_text(encoding="utf-8")
    audit(source, model, class_name)
    spec = importlib.util.spec_from_file_location(f"hostile_{abs(hash(out))}", path)
    assert spec is not None and spec.loader is not None
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)
    assert {
        assign_names(model, class_name).variable[n]: n for n in model.nodes
    } == generated.NODE_NAMES
    module = generated.load()
    x = example_input(model, 0)
    with torch.no_grad():
        np.testing.assert_allclose(
            module(torch.from_numpy(x)).numpy(), model(x), rtol=1e-7, atol=1e-9
        )
    return generated


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("import torch\n", "import torch\nimport os\n"),
        ("        return ", "        __import__('os').system('true')\n        return "),
        ("        return ", "        eval('1')\n        return "),
        ("        return ", "        print(x)\n        return "),
        ("        return ", "        x.numpy()\n        return "),
        ("        return ", "        torch.load('weights.pt')\n        return "),
        ("        return ", "        self.a_b(x)\n        return "),
        ("        return ", "        a_b = self.c(x)\n        return "),
        ("        return ", "        # a b\n        return "),
        ("    def forward", "    lam = lambda: 0\n\n    def forward"),
    ],
)
def test_the_audit_catches_what_it_should(old: str, new: str) -> None:
    """Each edit of a clean file (an import, a call outside the allowlist, a variable assigned
    twice, a comment) fails the audit: the audit is not vacuous."""
    model = hostile_chain("a b", "b", "c")
    source = pytorch.to_source(model)
    audit(source, model)
    assert old in source
    with pytest.raises(AssertionError):
        audit(source.replace(old, new, 1), model)


# --- Hypothesis: arbitrary text ----------------------------------------------------------------

node_names = st.text(  # node names hold no control characters (refused when a spec is made)
    st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=MAX_NODE_NAME_LENGTH
).filter(lambda s: s not in RESERVED_NAMES)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(node_names, min_size=3, max_size=3, unique=True))
def test_arbitrary_text_names(names: list[str]) -> None:
    check_in_memory(hostile_chain(*names))


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.text(st.characters(codec="ascii", categories=["Zs", "P", "S"]), min_size=1),
        min_size=3,
        max_size=3,
        unique=True,
    ).filter(lambda names: not set(names) & RESERVED_NAMES)
)
def test_punctuation_and_spaces_only(names: list[str]) -> None:
    """Nothing survives cleaning: every identifier is a fallback ``node``, ``node_1`` ..."""
    model = hostile_chain(*names)
    check_in_memory(model)
    assert set(assign_names(model).variable.values()) == {"node", "node_1", "node_2"}


# --- fixed hostile lists -------------------------------------------------------------------------


def test_reserved_words_as_node_names(tmp_path: Path) -> None:
    model = hostile_chain(*FIXED_NAMES, "output")
    check_in_memory(model)
    check_on_disk(model, tmp_path)
    variables = assign_names(model).variable
    assert variables["class"] == "class_1" and variables["x"] == "x_1"
    assert variables["training"] == "training_1" and variables["__init__"] == "init"


def test_more_reserved_and_odd_names(tmp_path: Path) -> None:
    model = hostile_chain(*MORE_NAMES)
    check_in_memory(model)
    check_on_disk(model, tmp_path)


def injection_names(sentinel: Path) -> list[str]:
    touch = f'__import__("os").system("touch {sentinel}")'
    return [
        touch,
        f'"); {touch}; ("',
        f"'); {touch}; ('",
        f"'''\u2028{touch}\u2028'''",  # line separators: node names hold no control characters
        f'"""\u2029{touch}\u2029"""',
        f"\u2028{touch}\u2028#",
        f"\\\u2028{touch}",
        f"x = 1\u2028{touch}",
        f"{{{touch}}}",
        f"\u2029{touch}\u2028\u00a0",
        f"# {touch}",
        f"self.__class__.__init__({touch})",
    ]


def test_code_in_names_never_runs(tmp_path: Path) -> None:
    sentinel = tmp_path / "SENTINEL"
    names = injection_names(sentinel)
    model = hostile_chain(*names)
    check_in_memory(model)
    generated = check_on_disk(model, tmp_path / "out")
    assert list(generated.NODE_NAMES.values()) == names  # kept verbatim, as inert data
    source = (tmp_path / "out" / "model.py").read_text(encoding="utf-8")
    used = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
    assert not used & {"__import__", "os", "system", "exec", "eval"}
    assert not sentinel.exists()


def test_code_in_names_never_runs_in_the_generated_test(tmp_path: Path) -> None:
    sentinel = tmp_path / "SENTINEL"
    export(hostile_chain(*injection_names(sentinel)[:5]), tmp_path / "out")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(tmp_path / "out" / "test_model.py"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path / "out",
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not sentinel.exists()


def test_names_that_collide_after_cleaning(tmp_path: Path) -> None:
    model = hostile_chain("a-b", "a_b", "a b", "a.b", "a_b_1")
    check_in_memory(model)
    check_on_disk(model, tmp_path)
    variables = assign_names(model).variable
    assert [variables[n] for n in ("a-b", "a_b", "a b", "a.b", "a_b_1")] == [
        "a_b",
        "a_b_1",
        "a_b_2",
        "a_b_3",
        "a_b_1_1",
    ]


def test_longest_names(tmp_path: Path) -> None:
    n = MAX_NODE_NAME_LENGTH
    names = ["a" * n, "a" * (n - 1) + "b", "a" * (n - 1) + "c", "\u2028" * n]
    model = hostile_chain(*names)
    check_in_memory(model)
    generated = check_on_disk(model, tmp_path)
    assert list(generated.NODE_NAMES.values()) == names
    variables = assign_names(model).variable
    assert all(len(v) <= 60 for v in variables.values())
    assert len(set(variables.values())) == len(names)


def test_hostile_names_on_composite_graphs() -> None:
    """Inline operations (Reverse, Concat) and LSTMs under hostile names (lanes of different
    sizes: not fused into one bidirectional nn.LSTM)."""
    forward = LSTM(4, 3, name="Reverse")
    backward = sc.serial(Reverse(name="Concat"), LSTM(4, 2, name="Model"), Reverse(name="\u2028"))
    model = sc.branch(forward, backward) >> Concat(name="torch") >> Linear(5, 2, name="F")
    model.to(np.float64)
    check_in_memory(model)
    source = pytorch.to_source(model)
    assert "self.Reverse_1 = nn.LSTM(4, 3)" in source
    assert "        Concat = torch.flip(x, dims=(0,))\n" in source  # no class Concat any more
    assert "        torch_1 = torch.cat((Reverse_1, node), dim=-1)\n" in source


def test_state_keys_of_renamed_nodes() -> None:
    """``load_torch_state`` speaks the exported module's keys, not the node names."""
    model = hostile_chain("a b", "tanh", "class")
    module = build_torch_module(model)
    assert list(module.state_dict()) == ["a_b.weight", "a_b.bias", "class_1.weight", "class_1.bias"]
    state = module.state_dict()
    state["class_1.weight"] = torch.zeros(3, 3, dtype=torch.float64)
    with pytest.raises(sc.StateDictError, match=r"class_1\.weight: shape \[3, 3\] != \[2, 4\]"):
        load_torch_state(model, state)
    del state["a_b.bias"]
    with pytest.raises(sc.StateDictError, match=r"missing keys: \['a_b\.bias'\]"):
        load_torch_state(model, state)


# --- class names ---------------------------------------------------------------------------------

BAD_CLASS_NAMES = ["", "2Model", "class", "my model", "Model!", "None", "lambda"]
SHADOWING_CLASS_NAMES = ["np", "torch", "nn", "F", "Path", "load", "WEIGHTS", "NODE_NAMES"]
SHADOWING_CLASS_NAMES += ["INPUT_TYPE", "Reverse", "OneHot", "tuple", "print", "super", "self"]
SHADOWING_CLASS_NAMES += ["__init__", "__name__", "annotations", "ｎｐ", "ﬁle"]


@pytest.mark.parametrize("class_name", BAD_CLASS_NAMES)
def test_invalid_class_names_are_refused(class_name: str, tmp_path: Path) -> None:
    model = hostile_chain("a", "b", "c")
    message = r"^class_name must be a Python identifier, got .*; e\.g\. class_name='Seq2Seq'$"
    with pytest.raises(ExportError, match=message):
        pytorch.to_source(model, class_name)
    with pytest.raises(ExportError, match=message):
        verify(model, class_name=class_name)
    with pytest.raises(ExportError, match=message):
        pytorch.export(model, tmp_path / "out", class_name=class_name)
    assert not (tmp_path / "out").exists()  # nothing is left behind


@pytest.mark.parametrize("class_name", [None, 3, b"Model"])
def test_non_string_class_names_are_refused(class_name: Any) -> None:
    with pytest.raises(ExportError, match="class_name must be a Python identifier"):
        pytorch.to_source(hostile_chain("a", "b", "c"), class_name)


@pytest.mark.parametrize("class_name", SHADOWING_CLASS_NAMES)
def test_class_names_that_shadow_the_files_names_are_refused(
    class_name: str, tmp_path: Path
) -> None:
    model = sc.branch(Reverse(), Tanh()) >> Concat()  # uses the Reverse and Concat helpers
    with pytest.raises(ExportError, match=rf"^class_name {class_name!r} would shadow a name"):
        export(model, tmp_path, class_name=class_name)
    assert not (tmp_path / "model.py").exists()


@pytest.mark.parametrize("class_name", ["Seq2Seq", "Model_2", "Modèle", "X"])
def test_valid_class_names(class_name: str, tmp_path: Path) -> None:
    model = hostile_chain("a", "b", "c")
    check_in_memory(model, class_name)
    generated = check_on_disk(model, tmp_path, class_name)
    assert isinstance(getattr(generated, class_name)(), torch.nn.Module)
